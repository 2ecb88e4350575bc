/**
 * Writes numbered and sent, waiting for their acknowledgement level: a ring
 * of parallel arrays in sequence order, settled by position. See
 * `docs/architecture.md`, "Write path".
 *
 * @module
 */

import { AckLevel } from "../protocol/mod.ts";
import type { ClientSession } from "./_links.ts";
import { acknowledgedUpTo } from "./quorum.ts";

/** What the router does with a write that is settled or failed. */
export interface WritesOptions {
  /** The write numbered `seq` for request `id` of `client` is acknowledged. */
  acknowledged(
    client: ClientSession,
    id: number,
    seq: number,
    deadline: number,
  ): void;
  /** The write numbered `seq` for request `id` of `client` fails with `error`. */
  failed(client: ClientSession, id: number, seq: number, error: unknown): void;
}

const INITIAL_CAPACITY = 1024;

/**
 * The pending writes. Entries are pushed in sequence order, so the oldest is
 * at the head; one settle computes each level's acknowledged position once
 * and walks from the head, so a write costs no object and no search.
 *
 * @example
 * ```ts ignore
 * const writes = new PendingWrites({ acknowledged, failed });
 * writes.push(seq, AckLevel.ALL, client, id, deadline);
 * writes.settle([seq]); // the ready databases' positions, highest first
 * ```
 */
export class PendingWrites {
  #options: WritesOptions;
  #seq = new Float64Array(INITIAL_CAPACITY);
  #deadline = new Float64Array(INITIAL_CAPACITY);
  #id = new Float64Array(INITIAL_CAPACITY);
  #level = new Uint8Array(INITIAL_CAPACITY);
  /** 1 once answered (a weaker level may settle before an older write). */
  #done = new Uint8Array(INITIAL_CAPACITY);
  #client: (ClientSession | undefined)[] = new Array(INITIAL_CAPACITY);
  #head = 0;
  #length = 0;
  /** Entries not yet answered (the length counts answered ones too). */
  #open = 0;
  /** Reused by settle: the acknowledged position at each level. */
  #upTo = [0, 0, 0, 0];
  /** Waiting writes at each level. */
  #byLevel = [0, 0, 0, 0];

  /**
   * Creates an empty ring.
   *
   * @param options What to do with settled and failed writes.
   */
  constructor(options: WritesOptions) {
    this.#options = options;
  }

  /** How many writes wait for their acknowledgement. */
  get length(): number {
    return this.#open;
  }

  /** Whether any write numbered above `seq` is waiting. */
  hasAbove(seq: number): boolean {
    for (let i = this.#length - 1; i >= 0; i--) {
      const at = (this.#head + i) & this.#mask;
      if (this.#seq[at]! <= seq) return false;
      if (this.#done[at] === 0) return true;
    }
    return false;
  }

  /** Whether a waiting write asks for fewer than every ready database. */
  get hasWeak(): boolean {
    return this.#byLevel[AckLevel.ONE]! + this.#byLevel[AckLevel.MAJORITY]! > 0;
  }

  get #mask(): number {
    return this.#seq.length - 1;
  }

  /** Adds a write, numbered above every write already here. */
  push(
    seq: number,
    level: number,
    client: ClientSession,
    id: number,
    deadline: number,
  ): void {
    if (this.#length === this.#seq.length) this.#grow();
    const at = (this.#head + this.#length) & this.#mask;
    this.#seq[at] = seq;
    this.#level[at] = level;
    this.#client[at] = client;
    this.#id[at] = id;
    this.#deadline[at] = deadline;
    this.#done[at] = 0;
    this.#length++;
    this.#open++;
    this.#byLevel[level]!++;
  }

  /**
   * Answers every write whose level is met by the ready databases' applied
   * positions, `appliedDescending` (highest first).
   */
  settle(appliedDescending: readonly number[]): void {
    if (this.#open === 0 || appliedDescending.length === 0) return;
    const upTo = this.#upTo;
    upTo[AckLevel.ONE] = acknowledgedUpTo(appliedDescending, AckLevel.ONE);
    upTo[AckLevel.MAJORITY] = acknowledgedUpTo(
      appliedDescending,
      AckLevel.MAJORITY,
    );
    upTo[AckLevel.ALL] = acknowledgedUpTo(appliedDescending, AckLevel.ALL);
    // No write above the highest position a waiting level acknowledges can
    // be settled: with every write at one level, the walk stops at the
    // first write still waiting.
    let highest = 0;
    for (let level = AckLevel.ONE; level <= AckLevel.ALL; level++) {
      if (this.#byLevel[level]! > 0) highest = Math.max(highest, upTo[level]!);
    }
    const mask = this.#mask;
    for (let i = 0; i < this.#length; i++) {
      const at = (this.#head + i) & mask;
      const seq = this.#seq[at]!;
      if (seq > highest) break;
      if (this.#done[at] === 0 && upTo[this.#level[at]!]! >= seq) {
        this.#answer(at);
        this.#options.acknowledged(
          this.#client[at]!,
          this.#id[at]!,
          seq,
          this.#deadline[at]!,
        );
      }
    }
    this.#dropAnsweredHead();
  }

  /** Fails every waiting write numbered above `after` with `error()`. */
  failAbove(after: number, error: () => unknown): void {
    const mask = this.#mask;
    for (let i = this.#length - 1; i >= 0; i--) {
      const at = (this.#head + i) & mask;
      if (this.#seq[at]! <= after) break;
      if (this.#done[at] === 0) {
        const client = this.#client[at]!;
        const id = this.#id[at]!;
        this.#answer(at);
        this.#options.failed(client, id, this.#seq[at]!, error());
      }
    }
    // Every failed entry is above every kept one: trim the tail.
    while (this.#length > 0) {
      const at = (this.#head + this.#length - 1) & mask;
      if (this.#done[at] === 0) break;
      this.#client[at] = undefined;
      this.#length--;
    }
    this.#dropAnsweredHead();
  }

  /** Fails every waiting write whose deadline is before `now`. */
  expire(now: number, error: () => unknown): void {
    if (this.#open === 0) return;
    const mask = this.#mask;
    // Deadlines grow with the sequence numbers (one timeout for all), so the
    // expired writes are a prefix, save for ones answered early.
    for (let i = 0; i < this.#length; i++) {
      const at = (this.#head + i) & mask;
      if (this.#deadline[at]! >= now) break;
      if (this.#done[at] === 0) {
        const client = this.#client[at]!;
        const id = this.#id[at]!;
        this.#answer(at);
        this.#options.failed(client, id, this.#seq[at]!, error());
      }
    }
    this.#dropAnsweredHead();
  }

  #answer(at: number): void {
    this.#done[at] = 1;
    this.#open--;
    this.#byLevel[this.#level[at]!]!--;
  }

  #dropAnsweredHead(): void {
    const mask = this.#mask;
    while (this.#length > 0 && this.#done[this.#head] === 1) {
      this.#client[this.#head] = undefined;
      this.#head = (this.#head + 1) & mask;
      this.#length--;
    }
    if (this.#length === 0) this.#head = 0;
  }

  #grow(): void {
    const capacity = this.#seq.length * 2;
    const order = (from: number) => (this.#head + from) & this.#mask;
    const seq = new Float64Array(capacity);
    const deadline = new Float64Array(capacity);
    const id = new Float64Array(capacity);
    const level = new Uint8Array(capacity);
    const done = new Uint8Array(capacity);
    const client: (ClientSession | undefined)[] = new Array(capacity);
    for (let i = 0; i < this.#length; i++) {
      const at = order(i);
      seq[i] = this.#seq[at]!;
      deadline[i] = this.#deadline[at]!;
      id[i] = this.#id[at]!;
      level[i] = this.#level[at]!;
      done[i] = this.#done[at]!;
      client[i] = this.#client[at];
    }
    this.#seq = seq;
    this.#deadline = deadline;
    this.#id = id;
    this.#level = level;
    this.#done = done;
    this.#client = client;
    this.#head = 0;
  }
}
