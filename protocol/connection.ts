/**
 * A framed connection: the one transport every role uses. It reads from a
 * `Deno.Conn` (TCP, TLS or Unix), decodes frames incrementally, and writes
 * every frame queued during one turn of the event loop in a single write.
 *
 * @module
 */

import { MAX_FRAME_SIZE } from "./constants.ts";
import {
  ConnectionClosedError,
  isConnectionGone,
  KvndbError,
  TimeoutError,
} from "./errors.ts";
import { ErrorCode } from "./opcodes.ts";
import { type Frame, FrameDecoder } from "./frame.ts";
import { encodeError } from "./messages.ts";

/**
 * Bytes every connection of this process has read and written (native and
 * Redis protocols): one addition per read or write, for `/metrics`.
 *
 * @example
 * ```ts
 * import { connectionBytes } from "./connection.ts";
 * console.log(connectionBytes.in >= 0); // true
 * ```
 */
export const connectionBytes: { in: number; out: number } = { in: 0, out: 0 };

/** Options for {@linkcode FramedConnection}. */
export interface FramedConnectionOptions {
  /** The largest frame accepted from the peer. Defaults to {@linkcode MAX_FRAME_SIZE}. */
  maxFrameSize?: number;
  /**
   * Unsent output, in bytes, past which the connection stops reading until
   * the peer catches up. Defaults to 4 MiB.
   */
  highWaterMark?: number;
  /** Bytes read per `read` call. Defaults to 64 KiB. */
  readSize?: number;
  /**
   * Unsent output past which the peer is deemed stuck and the connection is
   * closed. Defaults to 64 MiB.
   */
  maxBufferedBytes?: number;
}

/** A handler for frames once the connection is established. */
export type FrameHandler = (frame: Frame) => void;

/**
 * A connection that speaks frames. Frames are delivered either to a handler
 * ({@linkcode FramedConnection.setHandler}) or, before one is set, through
 * {@linkcode FramedConnection.readFrame}. A malformed frame from the peer
 * makes it answer one ERROR frame and close.
 *
 * @example
 * ```ts ignore
 * import { FramedConnection } from "./connection.ts";
 * import { encodeOpaque } from "./messages.ts";
 * import { Opcode } from "./opcodes.ts";
 * const conn = new FramedConnection(await Deno.connect({ port: 54565 }));
 * conn.send(encodeOpaque(Opcode.PING, 1));
 * console.log(await conn.readFrame({ timeout: 1000 }));
 * conn.close();
 * ```
 */
export class FramedConnection {
  #conn: Deno.Conn;
  #decoder: FrameDecoder;
  #handler?: FrameHandler;
  #queue: Frame[] = [];
  #waiter?: PromiseWithResolvers<Frame>;
  #out: Uint8Array[] = [];
  #outBytes = 0;
  #flushScheduled = false;
  #writing = false;
  #highWaterMark: number;
  #maxBufferedBytes: number;
  #readSize: number;
  #readBuffer?: Uint8Array;
  #output = new OutputBuffer();
  #drained?: PromiseWithResolvers<void>;
  #closed = false;
  #failing = false;
  #done = Promise.withResolvers<unknown>();
  #reason: unknown;
  /** The peer's address, for logs: `host:port` or a socket path. */
  readonly peer: string;

  /**
   * Creates a FramedConnection.
   *
   * @param conn The connection; this object owns and closes it.
   * @param options Limits.
   */
  constructor(conn: Deno.Conn, options?: FramedConnectionOptions) {
    this.#conn = conn;
    this.#decoder = new FrameDecoder({
      maxFrameSize: options?.maxFrameSize ?? MAX_FRAME_SIZE,
    });
    this.#highWaterMark = options?.highWaterMark ?? 4 * 1024 * 1024;
    this.#readSize = options?.readSize ?? 64 * 1024;
    this.#maxBufferedBytes = options?.maxBufferedBytes ?? 64 * 1024 * 1024;
    this.peer = formatAddr(conn.remoteAddr);
    this.#readLoop();
  }

  /** Whether the connection is closed. */
  get isClosed(): boolean {
    return this.#closed;
  }

  /** Output queued but not yet written, in bytes. */
  get bufferedBytes(): number {
    return this.#outBytes;
  }

  /**
   * Unsent output past which reading stops until the peer catches up.
   * `Infinity` never stops reading (for a link whose other side must always
   * be heard, where stopping both ways could deadlock).
   */
  set highWaterMark(value: number) {
    this.#highWaterMark = value;
  }

  /** The largest frame accepted from the peer; raised after authentication. */
  set maxFrameSize(value: number) {
    this.#decoder.maxFrameSize = value;
  }

  /**
   * Resolves when the connection has closed, with the error that closed it
   * (`undefined` for an orderly close by either side).
   */
  get closed(): Promise<unknown> {
    return this.#done.promise;
  }

  /**
   * Delivers every frame, the ones already queued first, to `handler`.
   *
   * @param handler Called synchronously for each frame, in order.
   */
  setHandler(handler: FrameHandler): void {
    this.#handler = handler;
    const queued = this.#queue;
    this.#queue = [];
    for (const frame of queued) handler(frame);
  }

  /**
   * Waits for the next frame. Only for use before a handler is set.
   *
   * @param options A timeout in milliseconds and an abort signal.
   * @returns The next frame.
   * @throws {TimeoutError} When the timeout passes first.
   * @throws {ConnectionClosedError} When the connection closes first.
   */
  async readFrame(
    options?: { timeout?: number; signal?: AbortSignal },
  ): Promise<Frame> {
    const queued = this.#queue.shift();
    if (queued !== undefined) return queued;
    if (this.#closed) throw this.#closedError();
    this.#waiter = Promise.withResolvers<Frame>();
    const waiter = this.#waiter;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const onAbort = () => waiter.reject(options?.signal?.reason);
    if (options?.timeout !== undefined) {
      timer = setTimeout(
        () =>
          waiter.reject(
            new TimeoutError(`No answer within ${options.timeout} ms`),
          ),
        options.timeout,
      );
    }
    options?.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      options?.signal?.throwIfAborted();
      return await waiter.promise;
    } finally {
      clearTimeout(timer);
      options?.signal?.removeEventListener("abort", onAbort);
      if (this.#waiter === waiter) this.#waiter = undefined;
    }
  }

  /**
   * Queues a frame. Frames queued in the same turn of the event loop leave in
   * one write. Does nothing once the connection is closed.
   *
   * @param bytes An encoded frame.
   * @returns `false` when the connection is closed.
   */
  send(bytes: Uint8Array): boolean {
    if (this.#closed) return false;
    this.#out.push(bytes);
    this.#outBytes += bytes.length;
    if (this.#outBytes > this.#maxBufferedBytes && !this.#failing) {
      // The peer does not read what it is sent: drop it rather than grow.
      this.#failing = true;
      this.#close(
        new KvndbError(
          ErrorCode.UNAVAILABLE,
          `Peer ${this.peer} left ${this.#outBytes} bytes unread (the limit is ${this.#maxBufferedBytes})`,
        ),
      );
      return false;
    }
    if (!this.#flushScheduled && !this.#writing) {
      this.#flushScheduled = true;
      queueMicrotask(() => this.#flush());
    }
    return true;
  }

  /**
   * Sends an ERROR frame.
   *
   * @param id The request id it answers, or 0 for the connection.
   * @param error The error; its code goes on the wire.
   */
  sendError(id: number, error: KvndbError): void {
    this.send(encodeError(id, { code: error.code, message: error.message }));
  }

  /**
   * Sends an ERROR frame, waits (briefly) for it to leave, then closes.
   *
   * @param error The error to tell the peer.
   */
  async fail(error: KvndbError): Promise<void> {
    if (this.#closed || this.#failing) return;
    // Nothing the peer sent after this point is acted on.
    this.#failing = true;
    this.sendError(0, error);
    await this.flushed(1000);
    this.#close(error);
  }

  /**
   * Resolves once all queued output is written, or after `timeout` ms.
   *
   * @param timeout The most to wait, in milliseconds.
   */
  async flushed(timeout = 5000): Promise<void> {
    if (this.#outBytes === 0 || this.#closed) return;
    this.#drained ??= Promise.withResolvers<void>();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#drained.promise,
      new Promise<void>((resolve) => timer = setTimeout(resolve, timeout)),
      this.#done.promise,
    ]);
    clearTimeout(timer);
  }

  /** Closes the connection. Idempotent. */
  close(): void {
    this.#close(undefined);
  }

  /** Closes the connection; for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #closedError(): ConnectionClosedError {
    const reason = this.#reason;
    if (
      reason instanceof KvndbError && !(reason instanceof ConnectionClosedError)
    ) {
      return new ConnectionClosedError(`Connection closed: ${reason.message}`, {
        cause: reason,
      });
    }
    return new ConnectionClosedError("Connection closed", { cause: reason });
  }

  #close(reason: unknown): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#reason = reason;
    try {
      this.#conn.close();
    } catch (error) {
      if (!isConnectionGone(error)) throw error;
    }
    this.#waiter?.reject(this.#closedError());
    this.#drained?.resolve();
    this.#out = [];
    this.#outBytes = 0;
    this.#done.resolve(reason);
  }

  #deliver(frame: Frame): void {
    if (this.#failing) return;
    if (this.#handler !== undefined) {
      this.#handler(frame);
    } else if (this.#waiter !== undefined) {
      const waiter = this.#waiter;
      this.#waiter = undefined;
      waiter.resolve(frame);
    } else {
      this.#queue.push(frame);
    }
  }

  async #readLoop(): Promise<void> {
    try {
      while (!this.#closed) {
        if (this.#outBytes > this.#highWaterMark) {
          // The peer is not reading its answers: stop reading its requests.
          this.#drained ??= Promise.withResolvers<void>();
          await this.#drained.promise;
          continue;
        }
        // One read buffer for the connection's life; decoded frames are views,
        // so they get a copy of just the bytes read (a fresh 64 KiB buffer per
        // read cost more than everything else on the path).
        this.#readBuffer ??= new Uint8Array(this.#readSize);
        const count = await this.#conn.read(this.#readBuffer);
        if (count === null) break;
        connectionBytes.in += count;
        const frames = this.#decoder.push(this.#readBuffer.slice(0, count));
        for (const frame of frames) {
          if (this.#closed) return;
          this.#deliver(frame);
        }
      }
      this.#close(undefined);
    } catch (error) {
      if (this.#closed) return;
      if (error instanceof KvndbError) {
        await this.fail(error);
      } else if (isConnectionGone(error)) {
        this.#close(undefined);
      } else {
        this.#close(error);
      }
    }
  }

  async #flush(): Promise<void> {
    this.#flushScheduled = false;
    if (this.#writing) return;
    this.#writing = true;
    try {
      while (this.#out.length > 0 && !this.#closed) {
        const chunks = this.#out;
        this.#out = [];
        const bytes = this.#output.join(chunks);
        let written = 0;
        while (written < bytes.length) {
          const count = await this.#conn.write(bytes.subarray(written));
          connectionBytes.out += count;
          written += count;
        }
        this.#outBytes -= bytes.length;
      }
      if (this.#outBytes === 0 && this.#drained !== undefined) {
        const drained = this.#drained;
        this.#drained = undefined;
        drained.resolve();
      }
    } catch (error) {
      this.#close(isConnectionGone(error) ? undefined : error);
    } finally {
      this.#writing = false;
    }
  }
}

/** The largest output buffer a connection keeps between writes. */
const REUSED_OUTPUT_MAX = 64 * 1024;

/**
 * Joins the byte strings of one write into a buffer kept for the next one
 * when they fit (up to 64 KiB): a fresh array per write was a tenth of the
 * router's CPU profile under load. The result is only valid until the next
 * `join`, so a connection must not join again before its write is done.
 *
 * @example
 * ```ts
 * import { OutputBuffer } from "./connection.ts";
 * const output = new OutputBuffer();
 * const bytes = output.join([new Uint8Array([1]), new Uint8Array([2, 3])]);
 * console.log(bytes.length); // 3
 * ```
 */
export class OutputBuffer {
  #buffer?: Uint8Array;

  /**
   * Joins `parts` in order.
   *
   * @param parts The byte strings to write together.
   * @returns One array: `parts[0]` itself when alone, else a view of the kept
   *   buffer, or a fresh array for more than 64 KiB.
   */
  join(parts: Uint8Array[]): Uint8Array {
    if (parts.length === 1) return parts[0]!;
    let size = 0;
    for (const part of parts) size += part.length;
    if (size > REUSED_OUTPUT_MAX) return concatBytes(parts);
    if (this.#buffer === undefined || this.#buffer.length < size) {
      this.#buffer = new Uint8Array(
        Math.min(REUSED_OUTPUT_MAX, Math.max(4096, size * 2)),
      );
    }
    let offset = 0;
    for (const part of parts) {
      this.#buffer.set(part, offset);
      offset += part.length;
    }
    return this.#buffer.subarray(0, size);
  }
}

/**
 * Joins byte strings into one.
 *
 * @param chunks The pieces, in order.
 * @returns One array holding them all.
 * @example
 * ```ts
 * import { concatBytes } from "./connection.ts";
 * console.log(concatBytes([new Uint8Array([1]), new Uint8Array([2])])); // Uint8Array [1, 2]
 * ```
 */
export function concatBytes(chunks: Uint8Array[]): Uint8Array {
  let size = 0;
  for (const chunk of chunks) size += chunk.length;
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/**
 * Formats an address for logs.
 *
 * @param addr A Deno address.
 * @returns `host:port`, `[v6]:port` or the socket path.
 * @example
 * ```ts
 * import { formatAddr } from "./connection.ts";
 * console.log(formatAddr({ transport: "tcp", hostname: "127.0.0.1", port: 1 })); // "127.0.0.1:1"
 * ```
 */
export function formatAddr(addr: Deno.Addr): string {
  if (addr.transport === "tcp" || addr.transport === "udp") {
    return addr.hostname.includes(":")
      ? `[${addr.hostname}]:${addr.port}`
      : `${addr.hostname}:${addr.port}`;
  }
  if (addr.transport === "unix" || addr.transport === "unixpacket") {
    return addr.path || "unix";
  }
  return String(addr.transport);
}
