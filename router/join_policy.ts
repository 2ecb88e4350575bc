/**
 * The join policy: what the router does with a database's JOIN, given what
 * it knows of the cluster. Pure: the router gathers the view, asks, and
 * carries the plan out. Each branch is a row of the table in
 * `docs/protocol.md`, "JOIN and JOINED", and `docs/architecture.md`,
 * "Joining".
 *
 * @module
 */

/** What the router knows when a JOIN arrives (the cluster id already settled). */
export interface JoinView {
  /** Whether the database holds another cluster's data. */
  foreign: boolean;
  /** Whether it is of this cluster, complete, and asks no reset. */
  current: boolean;
  /** The database's applied position. */
  applied: number;
  /** The router's sequence number. */
  seq: number;
  /** Whether a write was numbered since the router adopted its position. */
  movedSinceAdopted: boolean;
  /** Whether the backlog holds every write after `applied`. */
  backlogCovers: boolean;
  /** Bytes of backlog after `applied`. */
  backlogBytesAfter: number;
  /** The largest replay worth sending rather than a full copy. */
  maxReplayBytes: number;
  /** Other databases that are ready (sync sources). */
  readySources: number;
  /** Whether a database is replaying the backlog. */
  anyReplaying: boolean;
  /** Members the router knows of. */
  members: number;
  /** Whether this database is one of them. */
  isMember: boolean;
  /** Whether a weaker acknowledgement was recorded (any member may hold writes others lack). */
  weak: boolean;
  /** Whether the database asked to be reset. */
  reset: boolean;
  /** Whether the database is fresh and the cluster has no write yet. */
  fresh: boolean;
}

/** What to do with the JOIN. */
export type JoinPlan =
  /** Refuse: it holds another cluster's data and asked no reset. */
  | { kind: "refuse" }
  /** JOINED READY at its position, which is the router's. */
  | { kind: "ready" }
  /** Take its position as the cluster's, drop the others, JOINED READY. */
  | { kind: "adopt" }
  /** JOINED REPLAY: send it the backlog after its position. */
  | { kind: "replay" }
  /** Full sync from a ready database (`waitForSource`: from one replaying, once ready). */
  | { kind: "sync"; waitForSource: boolean }
  /** Full sync with nothing to copy: it starts empty at the current position. */
  | { kind: "empty-sync"; behind: boolean }
  /** Hold it until a database that has every acknowledged write is back. */
  | { kind: "hold" }
  /**
   * Make it ready at the router's position with what it has (the
   * reference). `behind`: it lacks writes the router numbered.
   */
  | { kind: "jump"; behind: boolean };

/**
 * Decides what to do with a JOIN.
 *
 * @param view What the router knows.
 * @returns The plan.
 * @example
 * ```ts
 * import { planJoin } from "./join_policy.ts";
 * const plan = planJoin({
 *   foreign: false, current: true, applied: 7, seq: 7, movedSinceAdopted: true,
 *   backlogCovers: true, backlogBytesAfter: 0, maxReplayBytes: 1 << 25,
 *   readySources: 1, anyReplaying: false, members: 1, isMember: true,
 *   weak: false, reset: false, fresh: false,
 * });
 * console.log(plan.kind); // ready
 * ```
 */
export function planJoin(view: JoinView): JoinPlan {
  if (view.foreign && !view.reset) return { kind: "refuse" };
  const { current, applied, seq } = view;
  if (current && applied === seq) return { kind: "ready" };
  if (current && applied > seq) {
    // Ahead of a router that has not moved since it learned its position:
    // this database's position is the cluster's. Otherwise its extra writes
    // were never acknowledged here.
    return view.readySources === 0 || !view.movedSinceAdopted
      ? { kind: "adopt" }
      : { kind: "sync", waitForSource: false };
  }
  if (
    current && view.backlogCovers &&
    // A replay larger than a connection may leave unread would only get the
    // database dropped again: copy it whole instead.
    (view.readySources === 0 ||
      view.backlogBytesAfter < view.maxReplayBytes)
  ) {
    return { kind: "replay" };
  }
  if (view.readySources > 0) return { kind: "sync", waitForSource: false };
  // A database replaying the backlog will hold every write there is once
  // ready: copy from it then.
  if (view.anyReplaying) return { kind: "sync", waitForSource: true };
  // No ready database, and this one may lack acknowledged writes: it was not
  // among the last ready ones, or, after weaker acknowledgements, any member
  // may lack what the others hold.
  if (view.members > 0 && (!view.isMember || view.weak)) {
    return { kind: "hold" };
  }
  // Nothing to copy from: a reset or foreign database starts empty at the
  // current position; a current one becomes the reference as it is.
  if (view.reset || !current) {
    return { kind: "empty-sync", behind: !view.fresh };
  }
  return { kind: "jump", behind: !view.fresh && applied < seq };
}
