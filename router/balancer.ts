/**
 * Read balancing: which ready database serves a read.
 *
 * @module
 */

/** How reads are spread: `least-loaded` (default) or `random` (the original's way). */
export type BalanceMode = "least-loaded" | "random";

/** What the balancer needs to know of a database. */
export interface Candidate {
  /** Reads sent and not yet answered. */
  readonly outstanding: number;
}

/**
 * Picks one candidate. `least-loaded` takes two at random and keeps the one
 * with fewer outstanding reads ("the power of two choices": nearly as good as
 * scanning all, without herding every read onto the same idle database).
 *
 * @param candidates The databases that may serve the read; must not be empty.
 * @param mode The policy.
 * @returns The chosen one.
 * @example
 * ```ts
 * import { pick } from "./balancer.ts";
 * console.log(pick([{ outstanding: 0 }], "random").outstanding); // 0
 * ```
 */
export function pick<T extends Candidate>(
  candidates: T[],
  mode: BalanceMode,
): T {
  const count = candidates.length;
  const index = Math.floor(Math.random() * count);
  const first = candidates[index]!;
  if (mode === "random" || count === 1) return first;
  // A second, distinct index.
  let other = Math.floor(Math.random() * (count - 1));
  if (other >= index) other++;
  const second = candidates[other]!;
  return second.outstanding < first.outstanding ? second : first;
}
