/**
 * The router: accepts every connection, checks version and password, orders
 * writes and sends them to every database, spreads reads, and syncs
 * databases that join. See `docs/architecture.md`.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import {
  DEFAULT_PORT,
  deriveScramKeys,
  describeEndpoint,
  type Endpoint,
  ErrorCode,
  KvndbError,
  listen,
  parseAckLevel,
  type RouterStats,
  type ScramKeys,
  toHex,
} from "../protocol/mod.ts";
import { Databases } from "./databases.ts";
import { Gate } from "./gate.ts";
import type { RouterOptions } from "./options.ts";
import { Reads } from "./reads.ts";
import { Recovery } from "./recovery.ts";
import { percent, Syncs } from "./syncs.ts";
import type { DatabaseLink } from "./_links.ts";
import { WritePath } from "./write_path.ts";
import { Requests } from "./requests.ts";
import { connectionBytes } from "../protocol/mod.ts";
import { ExpirySweeper } from "./expiry_sweeper.ts";
import { KvConnectFrontEnd } from "./kv_connect.ts";
import { Watches } from "./watches.ts";
import { Latencies } from "./latency.ts";
import { Sequencer } from "./sequencer.ts";
import { IS_LOCAL_PEER, isLoopback } from "./_peer.ts";
import { StateFile } from "./state_file.ts";
import { Membership } from "./membership.ts";
import { MemberRecord } from "./member_record.ts";
import { RespFrontEnd } from "./resp_front_end.ts";
import { HttpFrontEnd } from "./http_front_end.ts";

const log = getLogger(["kvndb", "router"]);

export type { RouterOptions };

/**
 * A running router.
 *
 * @example Start a router on a free port, then stop it
 * ```ts
 * import { Router } from "./router.ts";
 * await using router = await Router.start({ hostname: "127.0.0.1", port: 0 });
 * console.log(router.port > 0); // true
 * ```
 */
export class Router implements AsyncDisposable {
  #gate: Gate;
  #endpoint: Endpoint;
  #keys?: ScramKeys;
  #defaultLevel: number;
  #requestTimeout: number;
  #maxInFlight: number;
  #maxBufferedBytes: number;
  #databases = new Map<number, DatabaseLink>();
  #dbs!: Databases;
  #sequencer: Sequencer;
  #stateFile?: StateFile;
  /** The members, whether a weak acknowledgement happened, and their saving. */
  #record: MemberRecord;
  /** The last sequence number given out, as the state file had it at start. */
  #savedSeq = 0;
  /** Set after a restart until the databases that were ready are back. */
  #recovery!: Recovery;
  #writePath!: WritePath;
  #reads: Reads;
  #syncs: Syncs;
  #requests!: Requests;
  #started = performance.now();
  #timer: ReturnType<typeof setInterval>;
  #closed = false;
  /** Aborted by close(): ends throttles and retry waits at once. */
  #closing = new AbortController();
  #resp?: RespFrontEnd;
  #http?: HttpFrontEnd;
  #sweeper?: ExpirySweeper;
  #kv?: KvConnectFrontEnd;
  #watches: Watches;
  #latencies = new Latencies();

  private constructor(
    listener: Deno.Listener,
    endpoint: Endpoint,
    options: RouterOptions,
    keys: ScramKeys | undefined,
    stateFile: StateFile | undefined,
  ) {
    this.#endpoint = endpoint;
    this.#keys = keys;
    const level = parseAckLevel(options.acks ?? "all");
    if (level === undefined) {
      throw new KvndbError(
        ErrorCode.INVALID_ARGUMENT,
        `Unknown acknowledgement level '${options.acks}' (expected one, majority or all)`,
      );
    }
    this.#defaultLevel = level;
    this.#requestTimeout = options.requestTimeout ?? 10_000;
    const heartbeatInterval = options.heartbeatInterval ?? 1_000;
    this.#syncs = new Syncs(this.#databases, {
      seq: () => this.#sequencer.seq,
      finished: (db) => this.#dbs.markReady(db),
    });
    this.#reads = new Reads(this.#databases, {
      balance: options.balance ?? "least-loaded",
      requestTimeout: this.#requestTimeout,
      fail: (client, id, error) => this.#requests.fail(client, id, error),
      noDatabase,
      latencies: this.#latencies,
      durable: () => this.#dbs.durablePosition(),
    });
    this.#maxInFlight = options.maxInFlight ?? 10_000;
    this.#maxBufferedBytes = options.maxBufferedBytes ?? 64 * 1024 * 1024;
    // With a state file, no write is numbered above the ceiling the file
    // says may have been given out until a higher one is saved, and a
    // restarted router starts above it: no number is ever used for two
    // different writes (a database holding the old write under that number
    // would take itself for up to date).
    this.#sequencer = new Sequencer({
      backlogBytes: options.backlogBytes ?? 64 * 1024 * 1024,
      reserved: stateFile === undefined ? Infinity : 0,
    });
    this.#stateFile = stateFile;
    this.#watches = new Watches(() => this.#sequencer.backlog, 0);
    this.#sequencer.onAdopt = (seq) => this.#watches.reset(seq);
    this.#record = new MemberRecord({
      stateFile,
      volatileGrace: options.volatileGrace ?? 10_000,
      position: () => ({
        clusterId: this.#dbs.clusterId,
        seq: this.#sequencer.seq,
        reserved: this.#sequencer.reserved,
      }),
      saved: () => this.#writePath.settle(),
      signal: this.#closing.signal,
    });
    this.#writePath = new WritePath({
      databases: this.#databases,
      sequencer: this.#sequencer,
      record: this.#record,
      reads: this.#reads,
      defaultLevel: this.#defaultLevel,
      requestTimeout: this.#requestTimeout,
      reserves: stateFile !== undefined,
      isReadyNode: (id) => this.#dbs.isReadyNode(id),
      count: (kind) => this.#requests.operations[kind]++,
      answerError: (client, id, error) =>
        this.#requests.answerError(client, id, error),
      fail: (client, id, error) => this.#requests.fail(client, id, error),
      noDatabase,
      watches: this.#watches,
      latencies: this.#latencies,
    });
    this.#recovery = new Recovery({
      record: this.#record,
      databases: this.#databases,
      timeout: options.recoveryTimeout ?? Infinity,
      view: () => ({
        clusterId: this.#dbs.clusterId!,
        seq: this.#sequencer.seq,
      }),
      acknowledged: () => Math.max(this.#reads.floor, this.#savedSeq),
      recover: (decision) => this.#dbs.recover(decision),
    });
    this.#requests = new Requests({
      maxInFlight: this.#maxInFlight,
      reads: this.#reads,
      writePath: this.#writePath,
      watches: this.#watches,
      holdError: () => this.#recovery.error(),
      forget: (ids) => this.#recovery.forget(ids),
      saved: () => this.#record.settled(),
      stats: () => this.stats(),
    });
    this.#dbs = new Databases(this.#databases, {
      sequencer: this.#sequencer,
      record: this.#record,
      recovery: this.#recovery,
      writePath: this.#writePath,
      reads: this.#reads,
      syncs: this.#syncs,
      maxBufferedBytes: this.#maxBufferedBytes,
      heartbeatInterval,
      heartbeatTimeout: options.heartbeatTimeout ?? 5_000,
    });
    if (stateFile !== undefined) {
      const saved = stateFile.load();
      if (saved !== undefined) {
        this.#dbs.clusterId = saved.clusterId;
        this.#savedSeq = saved.seq;
        // Start above every number the last run may have given out.
        const start = Math.max(saved.ceiling ?? 0, saved.seq);
        this.#sequencer.adopt(start);
        this.#sequencer.reserve(start);
        const members = new Membership({
          volatileGrace: this.#record.members.volatileGrace,
        });
        const now = performance.now();
        for (const id of saved.members.map(toHex)) {
          members.restore(
            id,
            saved.details?.[id] ?? { volatile: false, address: "" },
            now,
          );
        }
        this.#record.restore(members, saved.weak ?? false);
        if (members.size > 0) this.#recovery.start(members);
      }
    }
    this.#timer = setInterval(
      () => this.#tick(),
      Math.min(250, heartbeatInterval),
    );
    const sweepInterval = options.expirySweepInterval ?? 250;
    if (sweepInterval > 0) {
      this.#sweeper = new ExpirySweeper({
        attach: (link) => this.#requests.attach(link, { internal: true }),
        interval: sweepInterval,
        batch: 128,
        signal: this.#closing.signal,
      });
    }
    this.#gate = new Gate(listener, {
      keys,
      protectedMode: options.password === undefined &&
        !(options.insecure ?? false) && endpoint.type !== "unix" &&
        !isLoopback(endpoint.hostname),
      isLocalPeer: (options as { [IS_LOCAL_PEER]?: (a: string) => boolean })[
        IS_LOCAL_PEER
      ] ?? isLoopback,
      maxConnections: options.maxConnections ?? 10_000,
      otherConnections: () => this.#resp?.sessions ?? 0,
      maxBufferedBytes: this.#maxBufferedBytes,
      handshakeTimeout: options.handshakeTimeout ?? 5_000,
      throttle: {
        delay: options.authFailureDelay ?? 1_000,
        allowed: options.authFailuresAllowed ?? 3,
        window: options.authFailureWindow ?? 60_000,
      },
      onClient: (conn) => this.#requests.addClient(conn),
      onDatabase: (conn) => this.#dbs.add(conn),
    });
  }

  /**
   * Starts a router listening on its endpoint.
   *
   * @param options Where to listen, the password, and policies.
   * @returns The running router.
   * @throws {Deno.errors.AddrInUse} When the port is taken.
   * @example
   * ```ts
   * import { Router } from "./router.ts";
   * const router = await Router.start({ hostname: "127.0.0.1", port: 0, acks: "majority" });
   * await router.close();
   * ```
   */
  static async start(options: RouterOptions = {}): Promise<Router> {
    const endpoint: Endpoint = options.endpoint ?? {
      type: "tcp",
      hostname: options.hostname ?? "0.0.0.0",
      port: options.port ?? DEFAULT_PORT,
    };
    const keys = options.password === undefined
      ? undefined
      : await deriveScramKeys(options.password);
    const stateFile = options.stateFile === undefined
      ? undefined
      : StateFile.open(options.stateFile);
    let router: Router;
    try {
      const listener = listen(endpoint);
      try {
        router = new Router(listener, endpoint, options, keys, stateFile);
      } catch (error) {
        listener.close();
        throw error;
      }
    } catch (error) {
      stateFile?.close();
      throw error;
    }
    if (options.respPort !== undefined) {
      try {
        router.#startResp(
          endpoint.type === "unix" || endpoint.type === "tls"
            ? "127.0.0.1"
            : endpoint.hostname,
          options.respPort,
        );
      } catch (error) {
        await router.close();
        throw error;
      }
    }
    if (options.httpPort !== undefined) {
      try {
        router.#startHttp(endpoint, options.httpPort);
      } catch (error) {
        await router.close();
        throw error;
      }
    }
    if (options.kvPort !== undefined) {
      try {
        router.#startKv(endpoint, options.kvPort);
      } catch (error) {
        await router.close();
        throw error;
      }
    }
    log.info("Router listening on {endpoint}", {
      endpoint: describeEndpoint(router.endpoint),
    });
    return router;
  }

  /** The endpoint actually listened on (with the port the OS chose). */
  get endpoint(): Endpoint {
    const addr = this.#gate.addr;
    if (addr.transport === "tcp") {
      return { ...this.#endpoint, hostname: addr.hostname, port: addr.port };
    }
    return this.#endpoint;
  }

  /** The Redis-protocol port, when `respPort` was given. */
  get respPort(): number | undefined {
    return this.#resp?.port;
  }

  /** The KV Connect port, when `kvPort` was given. */
  get kvPort(): number | undefined {
    return this.#kv?.port;
  }

  /** The HTTP port (`/health`), when `httpPort` was given. */
  get httpPort(): number | undefined {
    return this.#http?.port;
  }

  /**
   * Where an HTTP port (the status port, KV Connect) listens, and how the
   * router's password and protected mode guard it: HTTPS beside a TLS
   * endpoint, with its certificate; on loopback beside a Unix socket.
   */
  #httpSetup(endpoint: Endpoint, port: number) {
    const tls = endpoint.type === "tls";
    return {
      tls,
      listen: {
        hostname: endpoint.type === "unix" ? "127.0.0.1" : endpoint.hostname,
        port,
        ...(tls
          ? {
            cert: Deno.readTextFileSync(endpoint.certFile!),
            key: Deno.readTextFileSync(endpoint.keyFile!),
          }
          : {}),
      },
      guard: {
        passwordRequired: this.#keys !== undefined,
        checkPassword: (password: string, address: string) =>
          this.#gate.checkPlainPassword(password, address),
        refuse: (address: string) => this.#gate.refusal(address),
      },
    };
  }

  #startHttp(endpoint: Endpoint, port: number): void {
    const { tls, listen, guard } = this.#httpSetup(endpoint, port);
    this.#http = new HttpFrontEnd(listen, {
      ...guard,
      stats: () => this.stats(),
    });
    log.info("HTTP{s} on port {port}", {
      s: tls ? "S" : "",
      port: this.#http.port,
    });
  }

  #startKv(endpoint: Endpoint, port: number): void {
    const { tls, listen, guard } = this.#httpSetup(endpoint, port);
    this.#kv = new KvConnectFrontEnd(listen, {
      ...guard,
      attach: (link) => this.#requests.attach(link),
    });
    log.info("KV Connect{s} on port {port}", {
      s: tls ? " (TLS)" : "",
      port: this.#kv.port,
    });
  }

  #startResp(hostname: string, port: number): void {
    this.#resp = new RespFrontEnd({ hostname, port }, {
      attach: (link) => this.#requests.attach(link),
      passwordRequired: this.#keys !== undefined,
      checkPassword: (password, address) =>
        this.#gate.checkPlainPassword(password, address),
      // RESP connections count against the same limit as native ones.
      refuse: (address) => this.#gate.refusal(address),
      stats: () => this.stats(),
      maxInFlight: this.#maxInFlight,
    });
    log.info("Redis protocol on {hostname}:{port}", {
      hostname,
      port: this.#resp.port,
    });
  }

  /** The TCP port listened on (0 for Unix sockets). */
  get port(): number {
    const addr = this.#gate.addr;
    return addr.transport === "tcp" ? addr.port : 0;
  }

  /**
   * The router's statistics, as `stats` reports them.
   *
   * @returns A JSON-ready object.
   */
  stats(): RouterStats {
    const now = performance.now();
    const hold = this.#recovery.current;
    return {
      clusterId: this.#dbs.clusterId ? toHex(this.#dbs.clusterId) : "",
      seq: this.#sequencer.seq,
      clients: this.#requests.clients,
      databases: [...this.#databases.values()].map((db) => ({
        id: db.id,
        peer: db.conn.peer,
        state: db.state,
        applied: db.applied,
        outstanding: db.outstanding,
        volatile: db.volatile,
        keys: db.keys,
        ...(db.sync === undefined ? {} : {
          sync: {
            keys: db.sync.keys,
            keysPerSecond: Math.round(
              db.sync.keys / Math.max(0.001, (now - db.sync.started) / 1000),
            ),
            percent: percent(db),
          },
        }),
      })),
      recovering: hold !== undefined,
      ...(hold === undefined ? {} : {
        hold: {
          seconds: Math.round((now - hold.started) / 1000),
          needed: hold.needed,
          held: hold.held.length,
          reason: hold.describe(now),
        },
      }),
      members: this.#recovery.known().stats(now),
      operations: { ...this.#requests.operations },
      pendingWrites: this.#writePath.pending,
      // Writes held until the state file has room for more sequence numbers,
      // and whether a save is under way (acknowledgements wait for it).
      waitingForState: this.#writePath.held,
      savingState: this.#record.saving ||
        this.#writePath.reserving,
      waitingReads: this.#reads.waiting,
      readFloor: this.#reads.floor,
      backlog: {
        writes: this.#sequencer.backlog.length,
        bytes: this.#sequencer.backlog.bytes,
      },
      authFailures: this.#gate.authFailures,
      latency: this.#latencies.snapshot(),
      bytes: { ...connectionBytes },
      ...(this.#sweeper === undefined ? {} : {
        expiry: {
          swept: this.#sweeper.swept,
          caughtUpAt: this.#sweeper.caughtUpAt,
        },
      }),
      uptime: Math.round((now - this.#started) / 1000),
    };
  }

  /** Stops listening and closes every connection. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.abort();
    clearInterval(this.#timer);
    this.#watches.close();
    await this.#resp?.close();
    await this.#kv?.close();
    // The gate first: it ends the login throttle's waits, which an HTTP
    // request may be in, and the HTTP server waits for its requests.
    await this.#gate.close();
    await this.#http?.close();
    await this.#stateFile?.settled();
    this.#stateFile?.close();
    await this.#gate.closed();
    log.info("Router stopped");
  }

  /** Closes the router; for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ------------------------------------------------------------ connections

  /**
   * Opens a connection to this router without a socket, for a database node
   * in the same process (`serve`). It goes through the same handshake and
   * limits as any peer; only the system calls are saved.
   *
   * @returns The node's end of the connection.
   * @throws {KvndbError} When the router is closed.
   * @example
   * ```ts
   * import { Router } from "./router.ts";
   * import { DatabaseNode, MemoryDatabase } from "../database/mod.ts";
   * await using router = await Router.start({ hostname: "127.0.0.1", port: 0 });
   * await using node = DatabaseNode.start({
   *   database: new MemoryDatabase(),
   *   dial: () => router.connectInProcess(),
   * });
   * await node.ready();
   * ```
   */
  connectInProcess(): Deno.Conn {
    if (this.#closed) {
      throw new KvndbError(ErrorCode.UNAVAILABLE, "The router is closed");
    }
    return this.#gate.connectInProcess();
  }

  // ------------------------------------------------------------ timers

  #tick(): void {
    const now = performance.now();
    this.#recovery.check();
    this.#syncs.report(now);
    this.#gate.prune(now);
    this.#dbs.heartbeat(now);
    // Request timeouts.
    this.#writePath.expire(now);
    this.#reads.expire(now);
  }
}

function noDatabase(): KvndbError {
  return new KvndbError(
    ErrorCode.NO_DATABASE,
    "No database available: start one with 'kvndb memory HOST PORT' or 'kvndb kv HOST PORT'",
  );
}
