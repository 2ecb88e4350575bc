/**
 * The Redis-protocol front end (`--resp-port`): RESP2 clients such as
 * `redis-cli`, `redis-benchmark`, `ioredis` and `redis` talk to the router as
 * if it were a Redis server. Each command becomes one or more native requests
 * that go through the router exactly as a native client's would (same
 * ordering, acknowledgement, limits); replies go back in command order.
 *
 * @module
 */

import {
  type Frame,
  type KvndbError,
  respError,
  type RouterStats,
} from "../protocol/mod.ts";
import { RespSession } from "./resp_session.ts";

/** What a session sends into the router, and how the router answers it. */
export interface ClientLink {
  /** The peer's address, for logs. */
  readonly peer: string;
  /** Whether the link is closed. */
  readonly isClosed: boolean;
  /** Takes one encoded answer frame from the router. */
  send(bytes: Uint8Array): boolean;
  /**
   * Takes an answer without its frame: the router calls this, when the link
   * has it, instead of encoding a frame for `send` to decode again.
   */
  answer?(id: number, opcode: number, payload: Uint8Array): void;
  /** Takes a write's acknowledgement without its frame, like `answer`. */
  acknowledge?(id: number, seq: number): void;
  /** Takes an error answer from the router. */
  sendError(id: number, error: KvndbError): void;
  /** The router ends the session with an error. */
  fail(error: KvndbError): Promise<void>;
}

/** A session's way into the router. */
export interface RouterSession {
  /** Submits a request as a native frame (its payload may be a view). */
  submit(frame: Frame): void;
  /**
   * Submits a GET of request id `id`; `payload` is the GET frame's payload
   * (a 16-bit length, then the key), owned by the router from now on.
   */
  get(id: number, payload: Uint8Array): void;
  /** Submits a SET at the default level; `key` and `value` may be views. */
  set(id: number, key: Uint8Array, value: Uint8Array): void;
  /** The session ended. */
  detach(): void;
}

/** The router's side, as the front end sees it. */
export interface RespHost {
  /** Registers a session; returns how to submit its requests and to leave. */
  attach(link: ClientLink): RouterSession;
  /** Whether the router has a password. */
  readonly passwordRequired: boolean;
  /** Checks a password, with the router's throttling for `address`. */
  checkPassword(
    password: string,
    address: string | undefined,
  ): Promise<boolean>;
  /** Refuses a peer, or returns `undefined` to accept it (protected mode). */
  refuse(address: string | undefined): string | undefined;
  /** The router's statistics. */
  stats(): RouterStats;
  /** Unanswered commands per connection before it stops being read. */
  readonly maxInFlight: number;
}

/**
 * Listens for RESP clients and serves them through a {@linkcode RespHost}.
 *
 * @example
 * ```ts ignore
 * import { RespFrontEnd } from "./resp_front_end.ts";
 * // The router builds one when given `respPort`.
 * ```
 */
export class RespFrontEnd {
  #listener: Deno.Listener;
  #host: RespHost;
  #sessions = new Set<RespSession>();
  #accepting: Promise<void>;
  #closed = false;

  /**
   * @param options Where to listen.
   * @param host The router.
   */
  constructor(options: { hostname: string; port: number }, host: RespHost) {
    this.#listener = Deno.listen(options);
    this.#host = host;
    this.#accepting = this.#accept();
  }

  /** The port listened on. */
  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  /** Stops listening and ends every session. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
    await this.#accepting;
    for (const session of this.#sessions) session.close();
    await Promise.all([...this.#sessions].map((s) => s.done));
  }

  /** Open RESP connections. */
  get sessions(): number {
    return this.#sessions.size;
  }

  async #accept(): Promise<void> {
    while (!this.#closed) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch {
        if (this.#closed) return;
        continue;
      }
      const address = conn.remoteAddr.transport === "tcp"
        ? (conn.remoteAddr as Deno.NetAddr).hostname
        : undefined;
      const refusal = this.#host.refuse(address);
      if (refusal !== undefined) {
        conn.write(respError(`DENIED ${refusal}`)).catch(() => {}).finally(
          () => {
            try {
              conn.close();
            } catch {
              // Already closed.
            }
          },
        );
        continue;
      }
      (conn as Deno.TcpConn).setNoDelay?.(true);
      const session = new RespSession(conn, this.#host, address);
      this.#sessions.add(session);
      session.done.then(() => this.#sessions.delete(session));
    }
  }
}
