/**
 * The sequencer: the router's sequence numbers, the position it adopted
 * from a database, the ceiling a state file has reserved, and the backlog of
 * the writes numbered since. They move together: adopting a position resets
 * the backlog there, so that no database replays a write numbered before it.
 * See `docs/architecture.md`, "Router restart and membership".
 *
 * @module
 */

import { Backlog } from "./backlog.ts";

/** How many sequence numbers one reservation saves ahead. */
export const NUMBER_BLOCK = 1_000_000;

/**
 * Sequence numbers, the adopted position, the reserved ceiling, the backlog.
 *
 * @example
 * ```ts
 * import { Sequencer } from "./sequencer.ts";
 * const sequencer = new Sequencer({ backlogBytes: 1024, reserved: Infinity });
 * sequencer.adopt(41);
 * const seq = sequencer.next();
 * sequencer.keep(seq, new Uint8Array(8));
 * console.log(seq, sequencer.movedSinceAdopted, sequencer.backlog.covers(41)); // 42 true true
 * ```
 */
export class Sequencer {
  #seq = 0;
  #adopted = 0;
  #reserved: number;
  /** The most recent writes' frames, for databases that rejoin. */
  readonly backlog: Backlog;
  /** Told whenever a position is adopted (the backlog then starts anew). */
  onAdopt?: (seq: number) => void;

  /**
   * Creates a Sequencer.
   *
   * @param options The backlog's byte limit, and the ceiling already
   *   reserved: `Infinity` without a state file, else what it says.
   */
  constructor(options: { backlogBytes: number; reserved: number }) {
    this.backlog = new Backlog(options.backlogBytes);
    this.#reserved = options.reserved;
  }

  /** The last sequence number given out. */
  get seq(): number {
    return this.#seq;
  }

  /**
   * The highest number the state file allows: no write is numbered above
   * it until a higher ceiling is saved.
   */
  get reserved(): number {
    return this.#reserved;
  }

  /** Whether a write was numbered since the position was last adopted. */
  get movedSinceAdopted(): boolean {
    return this.#seq !== this.#adopted;
  }

  /** Whether another write can be numbered before a higher ceiling is saved. */
  get canNumber(): boolean {
    return this.#seq + 1 <= this.#reserved;
  }

  /** Whether half of the reserved block is used: time to reserve more. */
  get wantsReservation(): boolean {
    return this.#seq + NUMBER_BLOCK / 2 > this.#reserved;
  }

  /** The ceiling the next reservation saves. */
  get nextCeiling(): number {
    return this.#seq + NUMBER_BLOCK;
  }

  /** Records that a ceiling of `ceiling` is saved. */
  reserve(ceiling: number): void {
    this.#reserved = Math.max(this.#reserved, ceiling);
  }

  /**
   * Takes `seq` as the cluster's position, learned from a database or a
   * state file: nothing numbered at or below it is in the backlog.
   */
  adopt(seq: number): void {
    this.#seq = seq;
    this.#adopted = seq;
    this.backlog.reset(seq);
    this.onAdopt?.(seq);
  }

  /**
   * Makes the present position the adopted one and forgets the backlog:
   * the writes numbered since the database now used as reference left off
   * are given up, and no database may replay them.
   */
  giveUpBacklog(): void {
    this.adopt(this.#seq);
  }

  /**
   * Numbers the next write. The caller checks {@linkcode canNumber} first,
   * then hands the write's frame to {@linkcode keep}.
   *
   * @returns The write's sequence number.
   */
  next(): number {
    return ++this.#seq;
  }

  /** Keeps the frame of write `seq`, just numbered, in the backlog. */
  keep(seq: number, frame: Uint8Array): void {
    this.backlog.push(seq, frame);
  }
}
