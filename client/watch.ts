/**
 * A watch from the client library's side: the batches of changes the router
 * pushes for one WATCH, as an async iterator. See `Client.watch`.
 *
 * @module
 */

import type { ChangeBatch } from "../protocol/mod.ts";

/**
 * The changes of a watch, batch by batch, in version order. Ending the
 * iteration (`break`, `return()`, the signal) ends the watch on the router.
 * Each batch's `upTo` is where to resume from (`watch({ from })`) after a
 * reconnect.
 *
 * @example
 * ```ts
 * import { WatchStream } from "./watch.ts";
 * const stream = new WatchStream(() => {});
 * stream.push({ upTo: 3, changes: [] });
 * console.log((await stream.next()).value?.upTo); // 3
 * ```
 */
export class WatchStream implements AsyncIterableIterator<ChangeBatch> {
  #queue: ChangeBatch[] = [];
  #waiter?: PromiseWithResolvers<IteratorResult<ChangeBatch>>;
  #error?: unknown;
  #done = false;
  #stop: () => void;

  /**
   * Made by `Client.watch`, which passes how to end the watch.
   *
   * @param stop Tells the router to end the watch.
   */
  constructor(stop: () => void) {
    this.#stop = stop;
  }

  /** Takes a batch from the router. */
  push(batch: ChangeBatch): void {
    if (this.#done) return;
    if (this.#waiter !== undefined) {
      const waiter = this.#waiter;
      this.#waiter = undefined;
      waiter.resolve({ value: batch, done: false });
    } else this.#queue.push(batch);
  }

  /** The router ended the watch with an error (or the connection closed). */
  fail(error: unknown): void {
    if (this.#done) return;
    this.#done = true;
    this.#error = error;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.reject(error);
  }

  /** The next batch. */
  next(): Promise<IteratorResult<ChangeBatch>> {
    const batch = this.#queue.shift();
    if (batch !== undefined) {
      return Promise.resolve({ value: batch, done: false });
    }
    if (this.#error !== undefined) return Promise.reject(this.#error);
    if (this.#done) return Promise.resolve({ value: undefined, done: true });
    this.#waiter = Promise.withResolvers();
    return this.#waiter.promise;
  }

  /** Ends the watch. */
  return(): Promise<IteratorResult<ChangeBatch>> {
    if (!this.#done) {
      this.#done = true;
      this.#stop();
    }
    this.#queue = [];
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.resolve({ value: undefined, done: true });
    return Promise.resolve({ value: undefined, done: true });
  }

  /** The stream itself, for `for await`. */
  [Symbol.asyncIterator](): this {
    return this;
  }
}
