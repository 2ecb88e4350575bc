/**
 * The router's backlog: the most recent writes, as encoded WRITE frames,
 * bounded in bytes. A database that rejoins after a short absence receives
 * what it missed from here instead of a full sync.
 *
 * @module
 */

/**
 * What one entry costs beside its frame's bytes (the Uint8Array, its own
 * buffer, the array slots), so that the limit bounds memory, not just data.
 * Measured on Deno 2.9: 225,000 entries of 138-byte frames took 68 MiB of
 * heap and 41 MiB outside it, about 480 bytes each.
 */
const ENTRY_OVERHEAD = 340;

/**
 * A ring of recent writes, oldest dropped first once over its byte limit.
 *
 * @example
 * ```ts
 * import { Backlog } from "./backlog.ts";
 * const backlog = new Backlog(1024);
 * backlog.push(1, new Uint8Array(10));
 * backlog.push(2, new Uint8Array(10));
 * console.log(backlog.covers(0), [...backlog.after(1)].length); // true 1
 * ```
 */
export class Backlog {
  #seqs: number[] = [];
  #frames: Uint8Array[] = [];
  #head = 0;
  #bytes = 0;
  #maxBytes: number;
  // The highest sequence number ever dropped (or skipped); writes after it are all here.
  #dropped = 0;

  /** @param maxBytes The most bytes of frames to keep. */
  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** Bytes of frames held. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The highest sequence number no longer held: every write after it is. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Writes held. */
  get length(): number {
    return this.#seqs.length - this.#head;
  }

  /**
   * Adds a write. Sequence numbers must increase.
   *
   * @param seq The write's sequence number.
   * @param frame Its encoded WRITE frame.
   */
  push(seq: number, frame: Uint8Array): void {
    this.#seqs.push(seq);
    this.#frames.push(frame);
    this.#bytes += frame.length + ENTRY_OVERHEAD;
    while (this.#bytes > this.#maxBytes && this.length > 0) {
      this.#bytes -= this.#frames[this.#head]!.length + ENTRY_OVERHEAD;
      this.#dropped = this.#seqs[this.#head]!;
      this.#head++;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#seqs.length) {
      this.#seqs = this.#seqs.slice(this.#head);
      this.#frames = this.#frames.slice(this.#head);
      this.#head = 0;
    }
  }

  /**
   * Forgets everything up to and including `seq`: used when the router
   * adopts a sequence number it has no writes for.
   *
   * @param seq The new floor.
   */
  reset(seq: number): void {
    this.#seqs = [];
    this.#frames = [];
    this.#head = 0;
    this.#bytes = 0;
    this.#dropped = seq;
  }

  /**
   * Tells whether every write after `applied` is still held.
   *
   * @param applied The last sequence number a database has.
   * @returns `true` when a replay from here is complete.
   */
  covers(applied: number): boolean {
    return applied >= this.#dropped;
  }

  /**
   * Bytes of the frames of the writes after `applied`.
   *
   * @param applied The last sequence number a database has.
   * @returns What a replay from there would send.
   */
  bytesAfter(applied: number): number {
    let bytes = 0;
    for (const frame of this.after(applied)) bytes += frame.length;
    return bytes;
  }

  /**
   * Iterates over the frames of the writes after `applied`, oldest first.
   *
   * @param applied The last sequence number a database has.
   * @returns The frames to replay.
   */
  *after(applied: number): Generator<Uint8Array> {
    // Binary search for the first write after `applied`.
    let low = this.#head;
    let high = this.#seqs.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.#seqs[mid]! <= applied) low = mid + 1;
      else high = mid;
    }
    for (let i = low; i < this.#seqs.length; i++) yield this.#frames[i]!;
  }
}
