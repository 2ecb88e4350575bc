// The client's requests in flight: ids, answers matched to them, deadlines
// swept by one timer, and watches, whose id many CHANGES frames carry.

import {
  ConnectionClosedError,
  decodeChanges,
  decodeError,
  encodeOpaque,
  errorFromCode,
  type Frame,
  type FramedConnection,
  type KvndbError,
  Opcode,
  opcodeName,
  ProtocolError,
  TimeoutError,
} from "../protocol/mod.ts";
import type { RequestOptions } from "./options.ts";
import { WatchStream } from "./watch.ts";

interface Pending {
  /** The answer's opcode when all goes well. */
  expected: number;
  resolve: (frame: Frame) => void;
  reject: (error: unknown) => void;
  /** When it times out, in `performance.now()` time. */
  deadline: number;
  timeout: number;
  /** The caller's signal and its listener, to remove once answered. */
  signal?: AbortSignal;
  onAbort?: () => void;
}

/** Stops listening to a settled request's signal. */
function forget(pending: Pending): void {
  if (pending.onAbort !== undefined) {
    pending.signal?.removeEventListener("abort", pending.onAbort);
  }
}

/** How often a client looks for requests past their deadline, in ms. */
const SWEEP_INTERVAL = 25;

/** Requests waiting for their answers, and open watches, by id. */
export class RequestTable {
  #conn: FramedConnection;
  #timeout: number;
  #nextId = 1;
  #pending = new Map<number, Pending>();
  #watches = new Map<number, WatchStream>();
  /** One timer for every request's deadline: a timer per request cost more than the request. */
  #sweeper?: ReturnType<typeof setInterval>;

  /**
   * @param conn The connection requests go out on.
   * @param timeout The default request timeout in milliseconds.
   */
  constructor(conn: FramedConnection, timeout: number) {
    this.#conn = conn;
    this.#timeout = timeout;
  }

  /** Requests sent and not yet answered. */
  get size(): number {
    return this.#pending.size;
  }

  /** A free id: not used by a request in flight or an open watch. */
  #id(): number {
    let id = this.#nextId;
    this.#nextId = this.#nextId >= 0xffff_ffff ? 1 : this.#nextId + 1;
    while (this.#pending.has(id) || this.#watches.has(id)) {
      id = id >= 0xffff_ffff ? 1 : id + 1;
    }
    return id;
  }

  /** Opens a watch with the WATCH frame `encode` makes for its id. */
  watch(encode: (id: number) => Uint8Array): WatchStream {
    const id = this.#id();
    const stream = new WatchStream(() => {
      this.#watches.delete(id);
      if (!this.#conn.isClosed) {
        this.#conn.send(encodeOpaque(Opcode.UNWATCH, id));
      }
    });
    if (this.#conn.isClosed) {
      stream.fail(new ConnectionClosedError("The client is closed"));
      return stream;
    }
    this.#watches.set(id, stream);
    this.#conn.send(encode(id));
    return stream;
  }

  request(
    encode: (id: number) => Uint8Array,
    expected: number,
    options?: RequestOptions,
  ): Promise<Frame> {
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const id = this.#id();
    const bytes = encode(id);
    const { promise, resolve, reject } = Promise.withResolvers<Frame>();
    const timeout = options?.timeout ?? this.#timeout;
    // One plain record a request, no closures unless there is a signal: on a
    // busy client the closures cost more than the rest of the bookkeeping.
    const pending: Pending = {
      expected,
      resolve,
      reject,
      deadline: performance.now() + timeout,
      timeout,
    };
    if (signal !== undefined) {
      pending.signal = signal;
      pending.onAbort = () => {
        this.#pending.delete(id);
        reject(signal.reason);
      };
      signal.addEventListener("abort", pending.onAbort, { once: true });
    }
    this.#sweeper ??= setInterval(() => this.#expire(), SWEEP_INTERVAL);
    this.#pending.set(id, pending);
    this.#conn.send(bytes);
    return promise;
  }

  onFrame(frame: Frame): void {
    if (frame.id === 0 && frame.opcode === Opcode.ERROR) {
      // An error about the connection itself: the router closes it next.
      const { code, message } = decodeError(frame.payload);
      this.failAll(errorFromCode(code, message));
      return;
    }
    const watch = this.#watches.get(frame.id);
    if (watch !== undefined) {
      if (frame.opcode === Opcode.CHANGES) {
        const batch = decodeChanges(frame.payload);
        // Copy out of the read buffer.
        for (const change of batch.changes) {
          change.key = change.key.slice();
          if (change.value !== null) change.value = change.value.slice();
        }
        watch.push(batch);
      } else {
        this.#watches.delete(frame.id);
        const { code, message } = frame.opcode === Opcode.ERROR
          ? decodeError(frame.payload)
          : { code: 2, message: `Unexpected ${opcodeName(frame.opcode)}` };
        watch.fail(errorFromCode(code, message));
      }
      return;
    }
    const pending = this.#pending.get(frame.id);
    if (pending === undefined) return; // Timed out or aborted earlier.
    this.#pending.delete(frame.id);
    forget(pending);
    if (frame.opcode === pending.expected) {
      pending.resolve(frame);
    } else if (frame.opcode === Opcode.ERROR) {
      const { code, message } = decodeError(frame.payload);
      pending.reject(errorFromCode(code, message));
    } else {
      pending.reject(
        new ProtocolError(
          `Expected ${opcodeName(pending.expected)}, got ${
            opcodeName(frame.opcode) ?? frame.opcode
          }`,
        ),
      );
    }
  }

  /** Fails the requests past their deadline; stops the timer when none is left. */
  #expire(): void {
    const now = performance.now();
    for (const [id, pending] of this.#pending) {
      if (pending.deadline > now) continue;
      this.#pending.delete(id);
      forget(pending);
      pending.reject(
        new TimeoutError(
          `No answer from the router within ${pending.timeout} ms`,
        ),
      );
    }
    if (this.#pending.size === 0) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }

  failAll(error: KvndbError): void {
    for (const watch of this.#watches.values()) watch.fail(error);
    this.#watches.clear();
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    for (const p of pending) {
      forget(p);
      p.reject(error);
    }
  }
}
