/**
 * The router: accepts every connection, checks version and password, orders
 * writes and sends them to every database, spreads reads, and syncs
 * databases that join. See `docs/architecture.md`.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import {
  decodeJoin,
  decodeU64,
  DEFAULT_PORT,
  deriveScramKeys,
  describeEndpoint,
  encodeJoined,
  encodeOpaque,
  type Endpoint,
  ErrorCode,
  type Frame,
  type FramedConnection,
  type Join,
  JoinMode,
  KvndbError,
  listen,
  Opcode,
  opcodeName,
  parseAckLevel,
  ProtocolError,
  randomBytes,
  type RouterStats,
  type ScramKeys,
  taskNow,
  TimeoutError,
  toHex,
  toKvndbError,
} from "../protocol/mod.ts";
import { Gate } from "./gate.ts";
import type { RouterOptions } from "./options.ts";
import { Reads } from "./reads.ts";
import { equalBytes } from "./hold.ts";
import { type Recovered, Recovery } from "./recovery.ts";
import { percent, Syncs } from "./syncs.ts";
import { DatabaseLink, describeReason } from "./_links.ts";
import { WritePath } from "./write_path.ts";
import { Requests } from "./requests.ts";
import { planJoin } from "./join_policy.ts";
import { Sequencer } from "./sequencer.ts";
import { IS_LOCAL_PEER, isLoopback } from "./_peer.ts";
import { StateFile } from "./state_file.ts";
import { Membership } from "./membership.ts";
import { MemberRecord } from "./member_record.ts";
import { RespFrontEnd } from "./resp_front_end.ts";

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
  #heartbeatInterval: number;
  #heartbeatTimeout: number;
  #maxInFlight: number;
  #maxBufferedBytes: number;
  #databases = new Map<number, DatabaseLink>();
  #nextDatabaseId = 1;
  #clusterId?: Uint8Array;
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
    this.#heartbeatInterval = options.heartbeatInterval ?? 1_000;
    this.#heartbeatTimeout = options.heartbeatTimeout ?? 5_000;
    this.#syncs = new Syncs(this.#databases, {
      seq: () => this.#sequencer.seq,
      finished: (db) => this.#markReady(db),
    });
    this.#reads = new Reads(this.#databases, {
      balance: options.balance ?? "least-loaded",
      requestTimeout: this.#requestTimeout,
      fail: (client, id, error) => this.#requests.fail(client, id, error),
      noDatabase,
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
    this.#record = new MemberRecord({
      stateFile,
      volatileGrace: options.volatileGrace ?? 10_000,
      position: () => ({
        clusterId: this.#clusterId,
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
      isReadyNode: this.#isReadyNode,
      count: (kind) => this.#requests.operations[kind]++,
      answerError: (client, id, error) =>
        this.#requests.answerError(client, id, error),
      fail: (client, id, error) => this.#requests.fail(client, id, error),
      noDatabase,
    });
    this.#recovery = new Recovery({
      record: this.#record,
      databases: this.#databases,
      timeout: options.recoveryTimeout ?? Infinity,
      view: () => ({ clusterId: this.#clusterId!, seq: this.#sequencer.seq }),
      acknowledged: () => Math.max(this.#reads.floor, this.#savedSeq),
      recover: (decision) => this.#recover(decision),
    });
    this.#requests = new Requests({
      maxInFlight: this.#maxInFlight,
      reads: this.#reads,
      writePath: this.#writePath,
      holdError: () => this.#recovery.error(),
      forget: (ids) => this.#recovery.forget(ids),
      saved: () => this.#record.settled(),
      stats: () => this.stats(),
    });
    if (stateFile !== undefined) {
      const saved = stateFile.load();
      if (saved !== undefined) {
        this.#clusterId = saved.clusterId;
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
      Math.min(250, this.#heartbeatInterval),
    );
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
      onDatabase: (conn) => this.#addDatabase(conn),
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
      clusterId: this.#clusterId ? toHex(this.#clusterId) : "",
      seq: this.#sequencer.seq,
      clients: this.#requests.clients,
      databases: [...this.#databases.values()].map((db) => ({
        id: db.id,
        peer: db.conn.peer,
        state: db.state,
        applied: db.applied,
        outstanding: db.outstanding,
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
      uptime: Math.round((now - this.#started) / 1000),
    };
  }

  /** Stops listening and closes every connection. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.abort();
    clearInterval(this.#timer);
    await this.#resp?.close();
    await this.#gate.close();
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

  #hasPendingDatabase(): boolean {
    for (const db of this.#databases.values()) {
      if (db.state !== "joining") return true;
    }
    return false;
  }

  // ------------------------------------------------------------ databases

  #addDatabase(conn: FramedConnection): void {
    // Always hear a database out (acknowledgements, answers): if both sides
    // stopped reading while their output piled up, they would deadlock. What
    // it does not read is bounded by maxBufferedBytes instead.
    conn.highWaterMark = Infinity;
    const db = new DatabaseLink(this.#nextDatabaseId++, conn);
    this.#databases.set(db.id, db);
    log.info("Database {peer} connected (#{id})", {
      peer: conn.peer,
      id: db.id,
    });
    conn.setHandler((frame) => {
      db.lastSeen = taskNow();
      try {
        this.#onDatabaseFrame(db, frame);
      } catch (error) {
        const reason = toKvndbError(error);
        log.warn("Dropping database {peer}: {reason}", {
          peer: conn.peer,
          reason: reason.message,
        });
        conn.fail(reason);
      }
    });
    conn.closed.then((reason) => this.#removeDatabase(db, reason));
  }

  #onDatabaseFrame(db: DatabaseLink, frame: Frame): void {
    switch (frame.opcode) {
      case Opcode.JOIN:
        if (db.state !== "joining" || db.nodeId !== "") {
          throw new ProtocolError("JOIN sent twice");
        }
        {
          const join = decodeJoin(frame.payload);
          db.nodeId = toHex(join.nodeId) || `#${db.id}`;
          db.volatile = join.volatile ?? false;
          this.#record.members.present(db.nodeId, db.conn.peer, db.volatile);
          this.#recovery.present(db);
          if (this.#recovery.current !== undefined) {
            this.#recovery.hold(db, join);
            return;
          }
          this.#join(db, join);
          return;
        }
      case Opcode.APPLIED:
        this.#onApplied(db, decodeU64(frame.payload, "APPLIED"));
        return;
      case Opcode.VALUE:
      case Opcode.KEY_PAGE:
      case Opcode.COUNT_REPLY:
      case Opcode.ERROR:
        this.#reads.answered(db, frame);
        return;
      case Opcode.PONG:
        if (frame.payload.length === 8) {
          db.keys = decodeU64(frame.payload, "PONG");
        }
        return;
      case Opcode.PING:
        db.conn.send(encodeOpaque(Opcode.PONG, frame.id, frame.payload));
        return;
      case Opcode.SYNC_CHUNK:
      case Opcode.SYNC_ACK:
      case Opcode.SYNC_END:
        this.#syncs.onFrame(db, frame);
        return;
      default:
        throw new ProtocolError(
          `Unexpected ${opcodeName(frame.opcode)} frame from a database`,
        );
    }
  }

  /** Serves again after a hold, as its decision says. */
  #recover(decision: Recovered): void {
    if (decision.seq > this.#sequencer.seq) {
      this.#sequencer.adopt(decision.seq);
    }
    log.info("Recovered cluster {cluster} at sequence {seq}", {
      cluster: toHex(this.#clusterId!),
      seq: decision.seq,
    });
    // A restarted router starts above every number its last run gave out:
    // the reference takes that position, and the others copy from it.
    const reference = decision.reference;
    if (reference !== undefined) {
      reference.db.nodeId = toHex(reference.join.nodeId) || reference.db.nodeId;
      if (this.#sequencer.backlog.covers(reference.join.applied)) {
        // Still in the run that numbered the writes it lacks (the router
        // held joins without restarting): they are in the backlog, and every
        // database must get them, so it replays them like any other.
        this.#admitDatabase(
          reference.db,
          JoinMode.REPLAY,
          reference.join.applied,
        );
      } else {
        this.#jumpTo(reference.db, reference.join.applied);
      }
    }
    this.#joinAll(decision.joins);
  }

  /** Processes joins that were held, each as if it had just arrived. */
  #joinAll(joins: { db: DatabaseLink; join: Join }[]): void {
    for (const { db, join } of joins) {
      if (db.state !== "joining" || db.conn.isClosed) continue;
      try {
        this.#join(db, join);
      } catch (error) {
        const reason = toKvndbError(error);
        log.warn("Dropping database {peer}: {reason}", {
          peer: db.conn.peer,
          reason: reason.message,
        });
        db.conn.fail(reason);
      }
    }
  }

  /**
   * Makes `db`, which has applied up to `applied`, ready at the router's
   * position although it lacks the writes numbered since: no connected
   * database can supply them, as none follows this run's stream. None of
   * them was acknowledged (an acknowledgement needs the writes on a member,
   * and `db` is the most advanced one), so they are given up everywhere:
   * their clients learn that the outcome is unknown, the backlog forgets
   * them so that no one replays them, and every other database rejoins to
   * copy from `db`, so that none keeps one of them.
   */
  #jumpTo(db: DatabaseLink, applied: number): void {
    // After a restart the numbers up to the ceiling were never given out in
    // this run: nothing to give up.
    const givingUp = this.#sequencer.backlog.bytesAfter(applied) > 0 ||
      this.#writePath.hasPendingAbove(applied);
    if (givingUp) {
      log.warn(
        "Writes {from} to {to} reached no database that is here: giving them up",
        { from: applied + 1, to: this.#sequencer.seq },
      );
      this.#writePath.failAbove(
        "The database that had this write left before it was acknowledged; it may or may not have been applied",
        applied,
      );
      this.#dropOthers(
        db,
        "The cluster gave up writes this database may hold: rejoin to copy the cluster",
      );
    }
    this.#sequencer.giveUpBacklog();
    this.#admitDatabase(db, JoinMode.READY, this.#sequencer.seq);
  }

  #join(db: DatabaseLink, join: Join): void {
    log.debug(
      "Database {peer} joins: node {node}, applied {applied}, complete {complete}, reset {reset}",
      {
        peer: db.conn.peer,
        node: db.nodeId,
        applied: join.applied,
        complete: join.complete,
        reset: join.reset,
      },
    );
    const readySources = [...this.#databases.values()].filter((other) =>
      other !== db && other.state === "ready"
    );
    if (this.#clusterId === undefined) {
      // A fresh router adopts the cluster of the first database with data.
      if (join.clusterId.length > 0 && join.complete && !join.reset) {
        this.#clusterId = join.clusterId.slice();
        this.#sequencer.adopt(join.applied);
        log.info("Adopted cluster {cluster} at sequence {seq} from {peer}", {
          cluster: toHex(this.#clusterId),
          seq: this.#sequencer.seq,
          peer: db.conn.peer,
        });
      } else {
        this.#clusterId = randomBytes(16);
        log.info("Started cluster {cluster}", {
          cluster: toHex(this.#clusterId),
        });
      }
    }
    const clusterId = this.#clusterId;
    const sameCluster = join.clusterId.length > 0 &&
      equalBytes(join.clusterId, clusterId);
    const current = sameCluster && join.complete && !join.reset;
    const backlog = this.#sequencer.backlog;
    const plan = planJoin({
      foreign: join.clusterId.length > 0 && !sameCluster,
      current,
      applied: join.applied,
      seq: this.#sequencer.seq,
      movedSinceAdopted: this.#sequencer.movedSinceAdopted,
      backlogCovers: backlog.covers(join.applied),
      backlogBytesAfter: backlog.bytesAfter(join.applied),
      maxReplayBytes: this.#maxBufferedBytes / 2,
      readySources: readySources.length,
      anyReplaying: [...this.#databases.values()].some((other) =>
        other.state === "replaying"
      ),
      members: this.#record.members.size,
      isMember: this.#record.members.has(db.nodeId),
      weak: this.#record.weak,
      reset: join.reset,
      fresh: join.clusterId.length === 0 && join.applied === 0 &&
        this.#sequencer.seq === 0,
    });
    const where = {
      peer: db.conn.peer,
      applied: join.applied,
      seq: this.#sequencer.seq,
    };
    switch (plan.kind) {
      case "refuse":
        throw new KvndbError(
          ErrorCode.CLUSTER_MISMATCH,
          `This database holds data of cluster ${
            toHex(join.clusterId)
          }, but the router serves cluster ${
            toHex(clusterId)
          }: start it with --reset to discard its data and copy this cluster's, or point it at its own router`,
        );
      case "ready":
        this.#admitDatabase(db, JoinMode.READY, join.applied);
        return;
      case "adopt":
        log.warn(
          "Database {peer} is ahead of the router ({applied} > {seq}): adopting its position",
          where,
        );
        this.#sequencer.adopt(join.applied);
        this.#writePath.failAbove(
          "The cluster's position changed before the write was acknowledged; it may or may not have been applied",
        );
        this.#dropOthers(
          db,
          "The cluster moved ahead of this database: rejoin to catch up",
        );
        this.#admitDatabase(db, JoinMode.READY, join.applied);
        return;
      case "replay":
        this.#admitDatabase(db, JoinMode.REPLAY, join.applied);
        return;
      case "sync":
        if (current && join.applied > this.#sequencer.seq) {
          log.warn(
            "Database {peer} is ahead of the cluster ({applied} > {seq}); its extra writes were never acknowledged here: full sync",
            where,
          );
        }
        this.#startFullSync(
          db,
          readySources,
          plan.waitForSource,
        );
        return;
      case "hold":
        log.warn(
          "Database {peer} is behind and no database known to have every acknowledged write is here: holding it until they return",
          { peer: db.conn.peer },
        );
        this.#recovery.hold(db, join);
        return;
      case "empty-sync":
      case "jump":
        if (plan.behind) {
          log.warn(
            "Database {peer} joins behind the cluster (applied {applied}, sequence {seq}) and no other database can sync it: serving what it has",
            where,
          );
        }
        if (plan.kind === "empty-sync") this.#startFullSync(db, []);
        else this.#jumpTo(db, join.applied);
        return;
    }
  }

  /** Drops every database past its join but `keep`: they rejoin and copy. */
  #dropOthers(keep: DatabaseLink, message: string): void {
    for (const other of this.#databases.values()) {
      if (other !== keep && other.state !== "joining") {
        other.conn.fail(new KvndbError(ErrorCode.UNAVAILABLE, message));
      }
    }
  }

  /** Answers JOINED and starts sending live writes. */
  #admitDatabase(db: DatabaseLink, mode: number, applied: number): void {
    db.conn.send(
      encodeJoined({ clusterId: this.#clusterId!, mode, from: applied + 1 }),
    );
    db.applied = applied;
    if (mode === JoinMode.REPLAY) {
      db.state = "replaying";
      db.readyAt = this.#sequencer.seq;
      let count = 0;
      for (const bytes of this.#sequencer.backlog.after(applied)) {
        db.conn.send(bytes);
        count++;
      }
      log.info("Database {peer} replays {count} writes from the backlog", {
        peer: db.conn.peer,
        count,
      });
      if (applied >= db.readyAt) this.#markReady(db);
    } else if (mode === JoinMode.READY) {
      this.#markReady(db);
    } else {
      db.state = "syncing";
    }
  }

  #markReady(db: DatabaseLink): void {
    db.state = "ready";
    db.conn.send(encodeOpaque(Opcode.READY, 0));
    this.#record.ready(db, this.#reads.floor);
    log.info("Database {peer} is ready at sequence {applied}", {
      peer: db.conn.peer,
      applied: db.applied,
    });
    if (this.#recovery.current !== undefined) {
      // Joins held for want of a database with every write can go on: this
      // one follows the stream, so it can be their source.
      const held = this.#recovery.release();
      log.info("Database {peer} can sync the {count} held databases", {
        peer: db.conn.peer,
        count: held.length,
      });
      this.#joinAll(held);
    }
    this.#syncs.startWaiting(this.#readyDatabases());
    this.#writePath.settle();
    this.#reads.retryWaiting();
  }

  /** Whether a ready database has node id `id`. */
  #isReadyNode = (id: string): boolean => {
    for (const db of this.#databases.values()) {
      if (db.nodeId === id && db.state === "ready") return true;
    }
    return false;
  };

  #startFullSync(
    db: DatabaseLink,
    sources: DatabaseLink[],
    waitForSource = false,
  ): void {
    const from = this.#sequencer.seq;
    this.#admitDatabase(db, JoinMode.FULL_SYNC, from);
    this.#syncs.start(db, from, sources, waitForSource);
  }

  #onApplied(db: DatabaseLink, upTo: number): void {
    if (upTo < db.applied) {
      throw new ProtocolError(
        `APPLIED went backwards (${upTo} after ${db.applied})`,
      );
    }
    if (upTo > this.#sequencer.seq) {
      throw new ProtocolError(
        `APPLIED ${upTo} is beyond the last write (${this.#sequencer.seq})`,
      );
    }
    db.applied = upTo;
    if (db.state === "replaying" && upTo >= db.readyAt) {
      this.#markReady(db);
      return;
    }
    if (db.state === "ready") {
      this.#writePath.settle();
      this.#reads.retryWaiting();
      this.#record.admitPending(this.#reads.floor);
    }
  }

  #removeDatabase(db: DatabaseLink, reason: unknown): void {
    if (!this.#databases.delete(db.id)) return;
    if (
      db.nodeId !== "" &&
      ![...this.#databases.values()].some((other) => other.nodeId === db.nodeId)
    ) {
      const now = performance.now();
      this.#record.members.absent(db.nodeId, now);
      this.#recovery.absent(db.nodeId, now);
    }
    this.#recovery.check();
    const stillThere = this.#isReadyNode(db.nodeId);
    // Only another ready *member* (one known to have every acknowledged
    // write) can take over; a ready database still catching up cannot.
    const othersReady = [...this.#databases.values()].some((other) =>
      other.state === "ready" && other.nodeId !== db.nodeId &&
      this.#record.members.has(other.nodeId)
    );
    // The last ready database stays a member: no write can be acknowledged
    // without one, so it still holds every acknowledged write. Once weaker
    // acknowledgements happened, a member that leaves may hold a write no
    // other database has: it stays a member.
    this.#record.left(db, stillThere, othersReady);
    log.info("Database {peer} left{reason}", {
      peer: db.conn.peer,
      reason: describeReason(reason),
    });
    // Its reads go to another database; the client notices nothing.
    this.#reads.reroute(db);
    // Syncs it was the source of restart from another source; a target
    // that left needs its source to stop.
    this.#syncs.left(db, this.#readyDatabases());
    this.#afterMembershipChange();
  }

  #readyDatabases(): DatabaseLink[] {
    return [...this.#databases.values()].filter((db) => db.state === "ready");
  }

  #afterMembershipChange(): void {
    this.#syncs.startWaiting(this.#readyDatabases());
    if (!this.#hasPendingDatabase()) {
      this.#writePath.failAbove(
        "Every database left before the write was acknowledged; it may or may not have been applied",
      );
    }
    this.#writePath.settle();
    this.#reads.retryWaiting();
  }

  // ------------------------------------------------------------ timers

  #tick(): void {
    const now = performance.now();
    this.#recovery.check();
    this.#syncs.report(now);
    this.#gate.prune(now);
    // Heartbeats: a database silent for too long is dropped.
    for (const db of this.#databases.values()) {
      if (now - db.lastSeen > this.#heartbeatTimeout) {
        log.warn("Database {peer} silent for {ms} ms: dropping it", {
          peer: db.conn.peer,
          ms: Math.round(now - db.lastSeen),
        });
        db.conn.fail(
          new TimeoutError("Heartbeat timed out"),
        );
        continue;
      }
      if (now - db.lastPing >= this.#heartbeatInterval) {
        db.lastPing = now;
        db.conn.send(encodeOpaque(Opcode.PING, 0));
      }
    }
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
