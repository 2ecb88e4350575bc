/**
 * The gate: every connection to the router passes here. It accepts them,
 * refuses other machines in protected mode and peers past the connection
 * limit, runs the handshake within its deadline, throttles failed logins,
 * and hands each admitted peer to the router as a client or a database.
 * See SECURITY.md.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import {
  AuthError,
  checkPassword,
  ErrorCode,
  FramedConnection,
  inProcessPair,
  isConnectionGone,
  KvndbError,
  MAX_HANDSHAKE_FRAME_SIZE,
  Role,
  type ScramKeys,
  TimeoutError,
  toKvndbError,
} from "../protocol/mod.ts";
import { acceptHandshake } from "./_accept_handshake.ts";
import { peerAddress } from "./_peer.ts";
import { LoginThrottle } from "./login_throttle.ts";

const log = getLogger(["kvndb", "router"]);

/** Why a router with no password refuses other machines, and the way out. */
export const PROTECTED_MODE_MESSAGE =
  "KVNDB router in protected mode: it has no password, so it serves only this machine. On the router, set a password with --password (or KVNDB_PASSWORD), or allow everyone with --insecure";

/** Options for {@linkcode Gate}. */
export interface GateOptions {
  /** The router's password keys; none: no password. */
  keys?: ScramKeys;
  /** Refuse peers that are not on this machine (no password, not `--insecure`). */
  protectedMode: boolean;
  /** Whether an address is this machine's. */
  isLocalPeer: (address: string) => boolean;
  /** The most connections at once, native and others together. */
  maxConnections: number;
  /** Connections counted against the limit elsewhere (the RESP port). */
  otherConnections: () => number;
  /** Unread output per connection before it is closed. */
  maxBufferedBytes: number;
  /** How long a peer may take to finish its handshake, in ms. */
  handshakeTimeout: number;
  /** Failed logins before the next wait longer, their delay and memory. */
  throttle: { delay: number; allowed: number; window: number };
  /** Receives each admitted client. */
  onClient(conn: FramedConnection): void;
  /** Receives each admitted database. */
  onDatabase(conn: FramedConnection): void;
}

/**
 * Accepts, limits, authenticates and sorts the router's connections.
 *
 * @example
 * ```ts ignore
 * const gate = new Gate(Deno.listen({ port: 0 }), options);
 * // ... later
 * await gate.close();
 * ```
 */
export class Gate {
  #listener: Deno.Listener;
  #options: GateOptions;
  #connections = new Set<FramedConnection>();
  #closing = new AbortController();
  #throttle: LoginThrottle;
  /** Wrong passwords so far, on every port. */
  authFailures = 0;
  #warnedProtected = false;
  #acceptLoop: Promise<void>;

  /**
   * Creates a Gate and starts accepting.
   *
   * @param listener Where peers connect; the gate owns and closes it.
   * @param options Limits, password and where admitted peers go.
   */
  constructor(listener: Deno.Listener, options: GateOptions) {
    this.#listener = listener;
    this.#options = options;
    this.#throttle = new LoginThrottle({
      ...options.throttle,
      signal: this.#closing.signal,
    });
    this.#acceptLoop = this.#accept();
  }

  /** The address listened on. */
  get addr(): Deno.Addr {
    return this.#listener.addr;
  }

  /** Connections accepted and not yet closed, past the handshake or in it. */
  get connections(): number {
    return this.#connections.size;
  }

  /** Whether the connections, counted everywhere, are at the limit. */
  atLimit(): boolean {
    return this.#connections.size + this.#options.otherConnections() >=
      this.#options.maxConnections;
  }

  /**
   * Why a connection from `address` on another port (RESP) is refused, if
   * it is: protected mode or the connection limit.
   */
  refusal(address: string | undefined): string | undefined {
    if (this.#refusesPeer(address)) return PROTECTED_MODE_MESSAGE;
    if (this.atLimit()) {
      return `too many connections (the limit is ${this.#options.maxConnections})`;
    }
    return undefined;
  }

  /**
   * Checks a password sent in clear (Redis AUTH), throttled like any login.
   *
   * @returns Whether it is the router's password.
   */
  async checkPlainPassword(
    password: string,
    address: string | undefined,
  ): Promise<boolean> {
    await this.#throttle.before(address);
    const keys = this.#options.keys;
    if (keys !== undefined && await checkPassword(keys, password)) {
      this.#throttle.succeeded(address);
      return true;
    }
    this.authFailures++;
    await this.#throttle.failed(address);
    return false;
  }

  /**
   * Opens a connection to the router without a socket (`serve`'s own
   * database), through the same handshake and limits as any peer.
   *
   * @returns The peer's end.
   */
  connectInProcess(): Deno.Conn {
    const [ours, theirs] = inProcessPair();
    this.#enter(this.#frame(ours));
    return theirs;
  }

  /** Forgets old login failures; called on the router's tick. */
  prune(now: number): void {
    this.#throttle.prune(now);
  }

  /** Stops accepting, ends every wait, closes every connection. */
  async close(): Promise<void> {
    if (this.#closing.signal.aborted) return;
    this.#closing.abort();
    try {
      this.#listener.close();
    } catch (error) {
      if (!isConnectionGone(error)) throw error;
    }
    for (const conn of this.#connections) conn.close();
    await this.#acceptLoop;
  }

  /** Resolves once every connection has closed (after {@linkcode close}). */
  async closed(): Promise<void> {
    await Promise.all([...this.#connections].map((conn) => conn.closed));
  }

  #refusesPeer(address: string | undefined): boolean {
    return this.#options.protectedMode && address !== undefined &&
      !this.#options.isLocalPeer(address);
  }

  async #accept(): Promise<void> {
    while (!this.#closing.signal.aborted) {
      let raw: Deno.Conn;
      try {
        raw = await this.#listener.accept();
      } catch (error) {
        if (this.#closing.signal.aborted || isConnectionGone(error)) return;
        // A failed accept (a TLS handshake gone wrong, say) never ends the loop.
        log.warn("Accept failed: {error}", { error: String(error) });
        continue;
      }
      if (raw.remoteAddr.transport === "tcp" && "setNoDelay" in raw) {
        (raw as Deno.TcpConn).setNoDelay(true);
      }
      const conn = this.#frame(raw);
      const address = peerAddress(raw.remoteAddr);
      if (this.#refusesPeer(address)) {
        if (!this.#warnedProtected) {
          this.#warnedProtected = true;
          log.warn(
            "Protected mode: refused {peer}, and will refuse every peer from another machine, because the router has no password. Set one with --password (or KVNDB_PASSWORD), or accept everyone with --insecure",
            { peer: conn.peer },
          );
        }
        conn.fail(
          new KvndbError(ErrorCode.AUTH_REQUIRED, PROTECTED_MODE_MESSAGE),
        );
        continue;
      }
      if (this.atLimit()) {
        log.warn("Refused {peer}: too many connections", { peer: conn.peer });
        conn.fail(
          new KvndbError(
            ErrorCode.TOO_MANY_CONNECTIONS,
            `Too many connections (the limit is ${this.#options.maxConnections})`,
          ),
        );
        continue;
      }
      this.#enter(conn, address);
    }
  }

  /** Frames a new peer's connection, with the limits of the handshake. */
  #frame(raw: Deno.Conn): FramedConnection {
    return new FramedConnection(raw, {
      maxFrameSize: MAX_HANDSHAKE_FRAME_SIZE,
      maxBufferedBytes: this.#options.maxBufferedBytes,
    });
  }

  /** Counts an accepted connection while it lasts and starts its handshake. */
  #enter(conn: FramedConnection, address?: string): void {
    this.#connections.add(conn);
    conn.closed.then(() => this.#connections.delete(conn));
    this.#admit(conn, address);
  }

  async #admit(conn: FramedConnection, address?: string): Promise<void> {
    let role: Role;
    await this.#throttle.before(address);
    if (conn.isClosed || this.#closing.signal.aborted) return;
    try {
      const deadline = AbortSignal.timeout(this.#options.handshakeTimeout);
      ({ role } = await acceptHandshake(conn, {
        keys: this.#options.keys,
        deadline,
      }));
    } catch (error) {
      if (conn.isClosed) {
        log.debug("{peer} left during the handshake", { peer: conn.peer });
        return;
      }
      let reason: KvndbError;
      if (error instanceof KvndbError) {
        reason = error;
      } else if (
        error instanceof DOMException && error.name === "TimeoutError"
      ) {
        reason = new TimeoutError(
          `Handshake not completed within ${this.#options.handshakeTimeout} ms`,
        );
      } else {
        reason = toKvndbError(error);
      }
      log.warn("Handshake with {peer} failed: {reason}", {
        peer: conn.peer,
        reason: reason.message,
      });
      if (reason instanceof AuthError) {
        // Slow down guessing: answer a wrong password only after a delay.
        this.authFailures++;
        await this.#throttle.failed(address);
      }
      await conn.fail(reason);
      return;
    }
    if (this.#closing.signal.aborted) {
      conn.close();
      return;
    }
    this.#throttle.succeeded(address);
    if (role === Role.CLIENT) this.#options.onClient(conn);
    else this.#options.onDatabase(conn);
  }
}
