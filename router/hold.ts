/**
 * A hold: after a restart, or when no database known to have every
 * acknowledged write is connected, joins and requests wait for members to
 * return. This file owns what a hold knows and the rule for when it ends;
 * `router/recovery.ts` carries the decision out. See `docs/architecture.md`,
 * "Recovery".
 *
 * @module
 */

import { equalBytes, type Join } from "../protocol/mod.ts";
import type { DatabaseLink } from "./_links.ts";
import { type Membership, seconds } from "./membership.ts";

/** A join waiting for the hold to end, decoded once (its ids copied). */
export interface HeldJoin {
  db: DatabaseLink;
  join: Join;
}

/** What the router should do about a hold, from {@linkcode Hold.decide}. */
export type HoldDecision =
  /** Keep waiting; `remind` when it is time to log the hold again. */
  | { kind: "wait"; remind: boolean }
  /** Nothing is waited for and no database is here: trust the next join. */
  | { kind: "end" }
  /**
   * Serve again: adopt `seq`; `reference` (the most advanced usable join, if
   * it is behind the router) goes first; then every join in `joins`, most
   * advanced first. With `timedOut`, the members still away are given up.
   */
  | {
    kind: "recover";
    seq: number;
    reference?: HeldJoin;
    joins: HeldJoin[];
    timedOut?: { back: number; needed: number; away: string[] };
  };

/** What {@linkcode Hold.decide} needs to know of the cluster. */
export interface HoldView {
  clusterId: Uint8Array;
  /** Whether a write was ever acknowledged by fewer than every database. */
  weak: boolean;
  /** The router's position. */
  seq: number;
  /** Node ids of connected databases in a full sync. */
  syncing: ReadonlySet<string>;
  now: number;
}

/** How often a hold that goes on is logged again, in ms. */
const REMIND_EVERY = 30_000;

/**
 * The members waited for, how many must be back, and the joins held.
 *
 * @example
 * ```ts ignore
 * const hold = new Hold(members, 1, performance.now(), Infinity);
 * hold.held.push({ db, join });
 * const decision = hold.decide({ clusterId, weak: false, seq, syncing, now });
 * ```
 */
export class Hold {
  /** The members waited for, with what is known of them. */
  readonly members: Membership;
  /** How many of them must be back (fewer once volatile ones are gone). */
  needed: number;
  readonly started: number;
  readonly deadline: number;
  /** When the hold was last logged. */
  logged: number;
  /** Joins waiting for the hold to end. */
  held: HeldJoin[] = [];

  /**
   * Starts a hold.
   *
   * @param members The members to wait for (copied).
   * @param needed How many must be back.
   * @param now The time, from `performance.now()`.
   * @param timeout How long to wait before serving without them, in ms.
   */
  constructor(
    members: Membership,
    needed: number,
    now: number,
    timeout: number,
  ) {
    this.members = members.clone();
    this.needed = needed;
    this.started = now;
    this.deadline = now + timeout;
    this.logged = now;
  }

  /** The volatile members away past their grace: their data died with them. */
  gone(now: number): string[] {
    const gone: string[] = [];
    for (const id of this.members) {
      if (this.members.isGone(id, now)) gone.push(id);
    }
    return gone;
  }

  /** The highest position among the held joins. */
  get heldApplied(): number {
    let applied = 0;
    for (const { join } of this.held) applied = Math.max(applied, join.applied);
    return applied;
  }

  /** What the hold waits for, how long it has waited, and the way out. */
  describe(now: number): string {
    const absent = [...this.members].filter((id) => this.members.isAway(id));
    const list = absent.map((id) => this.members.describe(id, now)).join(", ");
    const count = this.needed === this.members.size && this.needed > 1
      ? `all ${this.needed}`
      : `${this.needed} of ${this.members.size}`;
    return `No database known to hold every acknowledged write is connected: for ${
      seconds(now - this.started)
    } s the router has waited for ${count} members to return (absent: ${
      list || "none"
    }). Start one of them, or give up on them with 'kvndb forget HOST PORT --all-absent' (in the console: forget --all-absent), which loses acknowledged writes that only they hold`;
  }

  /**
   * Whether the hold can end, and how: once enough members are back with
   * every write, time is up with a database here, or nothing is left to wait
   * for. Drops held joins whose connection closed.
   */
  decide(view: HoldView): HoldDecision {
    const joins = this.held.filter(({ db }) => !db.conn.isClosed);
    this.held = joins;
    const usable = joins.filter(({ join }) =>
      join.complete && !join.reset && equalBytes(join.clusterId, view.clusterId)
    );
    const back = usable.filter(({ db }) => this.members.has(db.nodeId));
    const backIds = new Set(back.map(({ db }) => db.nodeId));
    if (view.weak) {
      // A member that was cleared for a full sync (connected and syncing, or
      // back marked incomplete or asking a reset) holds nothing of its own:
      // everything it had was on its source. It is back, but cannot be the
      // reference. Waiting for it to be complete would wait forever.
      for (const { db } of joins) {
        if (this.members.has(db.nodeId)) backIds.add(db.nodeId);
      }
      for (const id of view.syncing) {
        if (this.members.has(id)) backIds.add(id);
      }
    }
    const timedOut = view.now > this.deadline;
    const nothingToWaitFor = this.members.size === 0;
    const enough = back.length > 0 && backIds.size >= this.needed;
    if (nothingToWaitFor && joins.length === 0) return { kind: "end" };
    if (!enough && !nothingToWaitFor && !(timedOut && joins.length > 0)) {
      const remind = view.now - this.logged >= REMIND_EVERY;
      if (remind) this.logged = view.now;
      return { kind: "wait", remind };
    }
    const candidates = back.length > 0 ? back : usable;
    let seq = view.seq;
    let reference: HeldJoin | undefined;
    for (const candidate of candidates) {
      seq = Math.max(seq, candidate.join.applied);
      if (
        reference === undefined ||
        candidate.join.applied > reference.join.applied
      ) reference = candidate;
    }
    // Joins that can serve first, the most advanced first, so that the
    // others find a ready source to sync from. An incomplete or reset join
    // taken before any of them would find none and be served empty.
    const usableSet = new Set(usable);
    joins.sort((a, b) =>
      Number(usableSet.has(b)) - Number(usableSet.has(a)) ||
      b.join.applied - a.join.applied
    );
    return {
      kind: "recover",
      seq,
      reference: reference !== undefined && reference.join.applied < seq
        ? reference
        : undefined,
      joins,
      timedOut: !enough && timedOut
        ? {
          back: back.length,
          needed: this.needed,
          away: [...this.members].filter((id) => this.members.isAway(id)),
        }
        : undefined,
    };
  }
}
