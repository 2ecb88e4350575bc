/**
 * Client requests: the sessions past the gate (native and RESP), the checks
 * every request passes (in-flight limit, hold), dispatch to the read and
 * write paths, error answers, and the operation counts. See
 * `docs/architecture.md`, "Roles and code map".
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import {
  AckLevel,
  checkKey,
  checkValue,
  decodeAtomic,
  decodeDigest,
  decodeExpired,
  decodeForget,
  decodeGet,
  decodeKeys,
  decodeRange,
  decodeWatch,
  decodeWriteRequest,
  encodeForgotten,
  encodeOpaque,
  encodeStatsReply,
  ErrorCode,
  type Frame,
  type FramedConnection,
  KvndbError,
  type MemberStats,
  Opcode,
  opcodeName,
  ProtocolError,
  type RouterStats,
  toHex,
  toKvndbError,
} from "../protocol/mod.ts";
import { ClientSession, describeReason } from "./_links.ts";
import type { Reads } from "./reads.ts";
import type { ClientLink, RouterSession } from "./resp_front_end.ts";
import type { WritePath } from "./write_path.ts";
import type { Watches } from "./watches.ts";

const log = getLogger(["kvndb", "router"]);

/** What the request handling needs from the router. */
export interface RequestsOptions {
  /** Requests one client may have unanswered at once. */
  maxInFlight: number;
  reads: Reads;
  writePath: WritePath;
  watches: Watches;
  /** The error for a request during a hold; `undefined` when none. */
  holdError(): KvndbError | undefined;
  /** Forgets absent members on an operator's word. */
  forget(ids: string[] | "absent"): MemberStats[];
  /** Resolves once the membership is saved. */
  saved(): Promise<void>;
  stats(): RouterStats;
}

/** Opcodes that count against a client's in-flight limit. */
const LIMITED = new Set<number>([
  Opcode.GET,
  Opcode.KEYS,
  Opcode.SET,
  Opcode.DELETE,
  Opcode.COUNT,
  Opcode.ATOMIC,
  Opcode.EXPIRED,
  Opcode.RANGE,
  Opcode.DIGEST,
]);

/** Opcodes served during a hold. */
const DURING_HOLD = new Set<number>([Opcode.PING, Opcode.STATS, Opcode.FORGET]);

/**
 * The router's client sessions and their requests.
 *
 * @example
 * ```ts ignore
 * const requests = new Requests(options);
 * gate.onClient = (conn) => requests.addClient(conn);
 * ```
 */
export class Requests {
  #options: RequestsOptions;
  #clients = new Set<ClientSession>();
  /** Requests served, by kind, for the router's stats. */
  readonly operations: Record<
    | "get"
    | "set"
    | "delete"
    | "atomic"
    | "keys"
    | "range"
    | "count"
    | "ping"
    | "stats"
    | "errors",
    number
  > = {
    get: 0,
    set: 0,
    delete: 0,
    atomic: 0,
    keys: 0,
    range: 0,
    count: 0,
    ping: 0,
    stats: 0,
    errors: 0,
  };

  /**
   * Creates the request handling.
   *
   * @param options The parts requests go to, and the router's policies.
   */
  constructor(options: RequestsOptions) {
    this.#options = options;
  }

  /** How many client sessions are open. */
  get clients(): number {
    return this.#clients.size;
  }

  /** Serves a native client's connection, past the gate. */
  addClient(conn: FramedConnection): void {
    const client = new ClientSession(conn);
    this.#clients.add(client);
    log.info("Client {peer} connected", { peer: conn.peer });
    conn.setHandler((frame) => this.#submit(client, frame));
    conn.closed.then((reason) => {
      this.#leave(client);
      log.info("Client {peer} disconnected{reason}", {
        peer: conn.peer,
        reason: describeReason(reason),
      });
    });
  }

  /**
   * Opens a session for a RESP connection, or for the router's own work
   * (`internal`: the expiry sweep), which is not counted among the clients.
   */
  attach(link: ClientLink, options?: { internal?: boolean }): RouterSession {
    const client = new ClientSession(link);
    if (!options?.internal) this.#clients.add(client);
    const { reads, writePath } = this.#options;
    return {
      submit: (frame) => this.#submit(client, frame),
      // A plain GET or SET goes straight to the read or write path, without
      // a native frame built and decoded in between.
      get: (id, payload) => {
        try {
          this.#admit(client, Opcode.GET);
          checkKey(payload.subarray(2));
          this.operations.get++;
          reads.readKept(client, id, Opcode.GET, payload);
        } catch (error) {
          this.answerError(client, id, error);
        }
      },
      set: (id, key, value) => {
        try {
          this.#admit(client, Opcode.SET);
          checkKey(key);
          checkValue(value);
          writePath.write(client, id, AckLevel.DEFAULT, key, value);
        } catch (error) {
          this.answerError(client, id, error);
        }
      },
      detach: () => this.#leave(client),
    };
  }

  /** A session ends: it is no client any more, and its watches go with it. */
  #leave(client: ClientSession): void {
    this.#clients.delete(client);
    this.#options.watches.unwatch(client);
  }

  /** Answers an accepted request (counted in flight) with an error. */
  fail(client: ClientSession, id: number, error: unknown): void {
    client.inFlight--;
    this.answerError(client, id, error);
  }

  /**
   * Answers request `id` with an error; a protocol error closes the
   * connection instead, since nothing after a malformed frame can be trusted.
   */
  answerError(client: ClientSession, id: number, error: unknown): void {
    this.operations.errors++;
    const kvndbError = toKvndbError(error);
    if (kvndbError.code === ErrorCode.INTERNAL) {
      log.error("Internal error serving {peer}: {error}", {
        peer: client.conn.peer,
        error: String(error),
      });
    }
    if (kvndbError.code === ErrorCode.PROTOCOL) {
      log.warn("Closing {peer}: {reason}", {
        peer: client.conn.peer,
        reason: kvndbError.message,
      });
      client.conn.fail(kvndbError);
      return;
    }
    client.conn.sendError(id, kvndbError);
  }

  /**
   * Refuses a request the router cannot take now: too many in flight on the
   * connection, or a hold (only PING, STATS and FORGET pass one).
   */
  #admit(client: ClientSession, opcode: number): void {
    if (
      client.inFlight >= this.#options.maxInFlight && LIMITED.has(opcode)
    ) {
      throw new KvndbError(
        ErrorCode.UNAVAILABLE,
        `Too many requests in flight on this connection (the limit is ${this.#options.maxInFlight}): wait for answers before sending more`,
      );
    }
    if (!DURING_HOLD.has(opcode)) {
      const held = this.#options.holdError();
      if (held !== undefined) throw held;
    }
  }

  #submit(client: ClientSession, frame: Frame): void {
    try {
      this.#dispatch(client, frame);
    } catch (error) {
      this.answerError(client, frame.id, error);
    }
  }

  #dispatch(client: ClientSession, frame: Frame): void {
    this.#admit(client, frame.opcode);
    const { reads, writePath } = this.#options;
    switch (frame.opcode) {
      case Opcode.GET:
        decodeGet(frame.payload);
        this.operations.get++;
        reads.read(client, frame);
        return;
      case Opcode.KEYS:
        decodeKeys(frame.payload);
        this.operations.keys++;
        reads.read(client, frame);
        return;
      case Opcode.DIGEST: {
        const request = decodeDigest(frame.payload);
        reads.readFrom(client, frame, request.database);
        return;
      }
      case Opcode.WATCH:
        this.#options.watches.watch(
          client,
          frame.id,
          decodeWatch(frame.payload),
        );
        return;
      case Opcode.UNWATCH:
        this.#options.watches.unwatch(client, frame.id);
        return;
      case Opcode.RANGE:
        decodeRange(frame.payload);
        this.operations.range++;
        reads.read(client, frame);
        return;
      case Opcode.EXPIRED:
        // The sweep's listing; not counted among the clients' operations.
        decodeExpired(frame.payload);
        reads.read(client, frame);
        return;
      case Opcode.COUNT:
        if (frame.payload.length !== 0) {
          throw new ProtocolError("Malformed COUNT frame: it has no payload");
        }
        this.operations.count++;
        reads.read(client, frame);
        return;
      case Opcode.SET:
      case Opcode.DELETE: {
        const request = decodeWriteRequest(frame.opcode, frame.payload);
        writePath.write(
          client,
          frame.id,
          request.acks,
          request.key,
          request.value,
        );
        return;
      }
      case Opcode.ATOMIC: {
        // Decoded to check it: databases trust what the router sends them.
        decodeAtomic(frame.payload);
        writePath.atomic(
          client,
          frame.id,
          frame.payload[0]!,
          frame.payload.subarray(1),
        );
        return;
      }
      case Opcode.PING:
        this.operations.ping++;
        client.conn.send(encodeOpaque(Opcode.PONG, frame.id, frame.payload));
        return;
      case Opcode.STATS:
        this.operations.stats++;
        client.conn.send(encodeStatsReply(frame.id, this.#options.stats()));
        return;
      case Opcode.FORGET: {
        const request = decodeForget(frame.payload);
        const forgotten = this.#options.forget(
          request.allAbsent ? "absent" : request.nodeIds.map(toHex),
        );
        // Answered once the change is durable: a router restarted before
        // then would still wait for them.
        this.#options.saved().then(() =>
          client.conn.send(encodeForgotten(frame.id, forgotten))
        );
        return;
      }
      default:
        throw new ProtocolError(
          `Unexpected ${opcodeName(frame.opcode)} frame from a client`,
        );
    }
  }
}
