/**
 * A connected pair of in-process byte streams that behave like a socket for
 * what KVNDB uses of `Deno.Conn` (read, write, close, the addresses). `serve`
 * links its database node to its router with one: the same frames, handshake
 * and limits as over TCP, without a system call per message.
 *
 * @module
 */

import { allocate } from "./_pool.ts";

/** Bytes a side may hold unread before its writer waits. */
const MAX_QUEUED = 4 * 1024 * 1024;

const ADDRESS: Deno.UnixAddr = { transport: "unix", path: "in-process" };

class PipeEnd {
  #peer!: PipeEnd;
  #chunks: Uint8Array[] = [];
  #offset = 0;
  #queued = 0;
  #reader?: {
    buffer: Uint8Array;
    resolve(count: number | null): void;
    reject(error: unknown): void;
  };
  #writers: (() => void)[] = [];
  #closed = false;
  #ended = false;

  static pair(): [PipeEnd, PipeEnd] {
    const a = new PipeEnd();
    const b = new PipeEnd();
    a.#peer = b;
    b.#peer = a;
    return [a, b];
  }

  get localAddr(): Deno.Addr {
    return ADDRESS;
  }

  get remoteAddr(): Deno.Addr {
    return ADDRESS;
  }

  read(buffer: Uint8Array): Promise<number | null> {
    if (this.#closed) {
      return Promise.reject(new Deno.errors.BadResource("Connection closed"));
    }
    if (this.#queued > 0) return Promise.resolve(this.#take(buffer));
    if (this.#ended) return Promise.resolve(null);
    if (this.#reader !== undefined) {
      return Promise.reject(new Deno.errors.Busy("A read is already pending"));
    }
    return new Promise((resolve, reject) => {
      this.#reader = { buffer, resolve, reject };
    });
  }

  async write(bytes: Uint8Array): Promise<number> {
    if (this.#closed) throw new Deno.errors.BadResource("Connection closed");
    const peer = this.#peer;
    if (peer.#closed) throw new Deno.errors.BrokenPipe("The peer closed");
    // Copy: the caller may reuse its buffer as soon as this resolves.
    const copy = allocate(bytes.length);
    copy.set(bytes);
    peer.#push(copy);
    if (peer.#queued > MAX_QUEUED) {
      // Backpressure, as a full socket buffer would give.
      await new Promise<void>((resolve) => peer.#writers.push(resolve));
    }
    return bytes.length;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#chunks = [];
    this.#queued = 0;
    const reader = this.#reader;
    this.#reader = undefined;
    reader?.reject(new Deno.errors.BadResource("Connection closed"));
    this.#wakeWriters();
    this.#peer.#end();
  }

  closeWrite(): Promise<void> {
    this.#peer.#end();
    return Promise.resolve();
  }

  #push(chunk: Uint8Array): void {
    if (this.#closed || chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#queued += chunk.length;
    const reader = this.#reader;
    if (reader !== undefined) {
      this.#reader = undefined;
      reader.resolve(this.#take(reader.buffer));
    }
  }

  #end(): void {
    this.#ended = true;
    if (this.#queued === 0 && this.#reader !== undefined) {
      const reader = this.#reader;
      this.#reader = undefined;
      reader.resolve(null);
    }
    // Writers into this side wait for room that will never come.
    this.#peer.#wakeWriters();
  }

  #take(buffer: Uint8Array): number {
    let count = 0;
    while (count < buffer.length && this.#chunks.length > 0) {
      const chunk = this.#chunks[0]!;
      const take = Math.min(chunk.length - this.#offset, buffer.length - count);
      buffer.set(chunk.subarray(this.#offset, this.#offset + take), count);
      count += take;
      this.#offset += take;
      if (this.#offset === chunk.length) {
        this.#chunks.shift();
        this.#offset = 0;
      }
    }
    this.#queued -= count;
    if (this.#queued <= MAX_QUEUED) this.#wakeWriters();
    return count;
  }

  #wakeWriters(): void {
    const writers = this.#writers;
    this.#writers = [];
    for (const wake of writers) wake();
  }
}

/**
 * Creates two connected ends: what one writes, the other reads.
 *
 * @returns The two ends, typed as `Deno.Conn`; only `read`, `write`,
 *   `close`, `closeWrite` and the addresses are supported.
 * @example
 * ```ts
 * import { inProcessPair } from "./in_process.ts";
 * const [a, b] = inProcessPair();
 * await a.write(new Uint8Array([1, 2, 3]));
 * const buffer = new Uint8Array(8);
 * console.log(await b.read(buffer)); // 3
 * a.close();
 * console.log(await b.read(buffer)); // null
 * b.close();
 * ```
 */
export function inProcessPair(): [Deno.Conn, Deno.Conn] {
  const [a, b] = PipeEnd.pair();
  return [a as unknown as Deno.Conn, b as unknown as Deno.Conn];
}
