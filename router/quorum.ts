/**
 * Acknowledgement maths: how many ready databases a write needs at each
 * level, and whether the ready databases' positions meet it. Pure, so that
 * the rule can be read and tested row by row. See `docs/architecture.md`,
 * "Write path".
 *
 * @module
 */

import { AckLevel } from "../protocol/mod.ts";

/**
 * How many of `ready` ready databases must have applied a write at `level`:
 * one, a majority (more than half), or all of them.
 *
 * @param level {@linkcode AckLevel}: `ONE`, `MAJORITY` or `ALL`.
 * @param ready How many databases are ready.
 * @returns The databases needed (0 when none is ready).
 * @example
 * ```ts
 * import { AckLevel } from "../protocol/mod.ts";
 * import { needed } from "./quorum.ts";
 * console.log(needed(AckLevel.MAJORITY, 4)); // 3
 * ```
 */
export function needed(level: number, ready: number): number {
  if (ready === 0) return 0;
  if (level === AckLevel.ONE) return 1;
  if (level === AckLevel.MAJORITY) return Math.floor(ready / 2) + 1;
  return ready;
}

/**
 * The highest sequence number that `level` acknowledges, given the ready
 * databases' applied positions sorted from the highest down: the position
 * of the database that completes the quorum. Every write at or below it has
 * been applied by enough databases.
 *
 * @param appliedDescending The ready databases' applied positions, highest first.
 * @param level {@linkcode AckLevel}: `ONE`, `MAJORITY` or `ALL`.
 * @returns The sequence number; 0 when no database is ready.
 * @example
 * ```ts
 * import { AckLevel } from "../protocol/mod.ts";
 * import { acknowledgedUpTo } from "./quorum.ts";
 * console.log(acknowledgedUpTo([9, 7, 4], AckLevel.MAJORITY)); // 7
 * ```
 */
export function acknowledgedUpTo(
  appliedDescending: readonly number[],
  level: number,
): number {
  const count = needed(level, appliedDescending.length);
  return count === 0 ? 0 : appliedDescending[count - 1]!;
}
