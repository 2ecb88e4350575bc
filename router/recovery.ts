/**
 * Recovery: the hold the router keeps while no database known to have every
 * acknowledged write is connected (after a restart, or when the last member
 * left), the joins it holds, giving up on members (volatile ones gone, a
 * timeout, an operator's `forget`), and the error every held request gets.
 * The router carries out the outcome (`recover`). See
 * `docs/architecture.md`, "Router restart and membership".
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import {
  ErrorCode,
  InvalidArgumentError,
  type Join,
  KvndbError,
  type MemberStats,
} from "../protocol/mod.ts";
import type { DatabaseLink } from "./_links.ts";
import { Hold, type HoldDecision } from "./hold.ts";
import type { MemberRecord } from "./member_record.ts";
import { type Membership, plural, seconds } from "./membership.ts";

const log = getLogger(["kvndb", "router"]);

/** A hold's outcome that serves again. */
export type Recovered = Extract<HoldDecision, { kind: "recover" }>;

/** What recovery needs from the router. */
export interface RecoveryOptions {
  record: MemberRecord;
  databases: Map<number, DatabaseLink>;
  /** How long to wait for members before serving without them, in ms. */
  timeout: number;
  /** The cluster (known whenever there are members) and the position. */
  view(): { clusterId: Uint8Array; seq: number };
  /** The highest sequence number known to be acknowledged. */
  acknowledged(): number;
  /** Serves again as `decision` says: adopt, reference, held joins. */
  recover(decision: Recovered): void;
}

/**
 * The router's hold, from its start to its outcome.
 *
 * @example
 * ```ts ignore
 * const recovery = new Recovery(options);
 * recovery.start(record.members); // after a restart with members
 * recovery.hold(db, join);        // a JOIN while holding
 * ```
 */
export class Recovery {
  #options: RecoveryOptions;
  #hold?: Hold;

  /**
   * Creates recovery with no hold.
   *
   * @param options The router's parts and what to do when a hold ends.
   */
  constructor(options: RecoveryOptions) {
    this.#options = options;
  }

  /** The hold, while there is one. */
  get current(): Hold | undefined {
    return this.#hold;
  }

  /** Holds joins until enough of `members` (the last ready set) are back. */
  start(members: Membership): void {
    const now = performance.now();
    this.#hold = new Hold(
      members,
      this.#options.record.needed(members.size),
      now,
      this.#options.timeout,
    );
    log.warn("{hold}", { hold: this.#hold.describe(now) });
  }

  /** Holds `db`'s join (copied out of its frame), starting a hold if none. */
  hold(db: DatabaseLink, join: Join): void {
    if (this.#hold === undefined) this.start(this.#options.record.members);
    this.#hold!.held.push({ db, join: kept(join) });
    // Members that are volatile and long gone are not waited for.
    this.check();
  }

  /** A database with `db`'s node id connected. */
  present(db: DatabaseLink): void {
    this.#hold?.members.present(db.nodeId, db.conn.peer, db.volatile);
  }

  /** The last database with node id `id` left at `now`. */
  absent(id: string, now: number): void {
    this.#hold?.members.absent(id, now);
  }

  /**
   * Ends the hold without an outcome of its own: a database became ready and
   * can be the source of the joins held, which are returned.
   */
  release(): { db: DatabaseLink; join: Join }[] {
    const held = this.#hold?.held ?? [];
    this.#hold = undefined;
    return held;
  }

  /** The error a request gets during the hold; `undefined` with none. */
  error(): KvndbError | undefined {
    if (this.#hold === undefined) return undefined;
    return new KvndbError(
      ErrorCode.UNAVAILABLE,
      this.#hold.describe(performance.now()),
    );
  }

  /** The members, and those the hold waits for, with what is known of each. */
  known(): Membership {
    const members = this.#options.record.members;
    return (this.#hold?.members ?? members).union(members);
  }

  /** Ends the hold when {@linkcode Hold.decide} says it can. */
  check(): void {
    const hold = this.#hold;
    if (hold === undefined) return;
    const now = performance.now();
    this.#giveUpGone(hold, now);
    const syncing = new Set<string>();
    for (const db of this.#options.databases.values()) {
      if (db.state === "syncing") syncing.add(db.nodeId);
    }
    const { clusterId, seq } = this.#options.view();
    const decision = hold.decide({
      clusterId,
      weak: this.#options.record.weak,
      seq,
      syncing,
      now,
    });
    if (decision.kind === "wait") {
      if (decision.remind) log.warn("{hold}", { hold: hold.describe(now) });
      return;
    }
    this.#hold = undefined;
    if (decision.kind === "end") return;
    if (decision.timedOut !== undefined) {
      log.warn(
        "Recovery timed out with {back} of {needed} ready databases back: serving from the most advanced database present; acknowledged writes held only by the missing ones are lost until they return",
        decision.timedOut,
      );
      // They are no longer waited for, now or after a restart.
      this.#forgetMembers(decision.timedOut.away);
    }
    this.#options.recover(decision);
  }

  /**
   * Gives up on absent members, on an operator's word (`kvndb forget`):
   * `ids` (node ids as hex), or every member not connected. Acknowledged
   * writes that only they hold are lost.
   *
   * @returns The ids forgotten, with what was known of each.
   * @throws {InvalidArgumentError} For an id that is not a member, or one
   * whose database is connected.
   */
  forget(ids: string[] | "absent"): MemberStats[] {
    const now = performance.now();
    const known = this.known();
    const all = known.stats(now);
    const chosen = ids === "absent"
      ? all.filter((member) => !member.present)
      : ids.map((id) => {
        const member = all.find((m) => m.id === id);
        if (member === undefined) {
          throw new InvalidArgumentError(
            `${id} is not a member: 'stats' lists the members`,
          );
        }
        if (member.present) {
          throw new InvalidArgumentError(
            `${
              known.describe(id, now)
            } is connected: only an absent member can be forgotten`,
          );
        }
        return member;
      });
    if (chosen.length === 0) return [];
    log.warn(
      "Forgetting {what} on request: {members}; acknowledged writes that only they held are lost",
      {
        what: plural(chosen.length, "absent member"),
        members: chosen.map((m) => known.describe(m.id, now)).join(", "),
      },
    );
    this.#forgetMembers(chosen.map((member) => member.id));
    this.check();
    return chosen;
  }

  /**
   * Stops waiting for the volatile members that have been away past the
   * grace period: their data died with them, so waiting protects nothing.
   * Logs what was lost with them.
   */
  #giveUpGone(hold: Hold, now: number): void {
    const gone = hold.gone(now);
    if (gone.length === 0) return;
    const described = gone.map((id) => hold.members.describe(id, now));
    const present = hold.heldApplied;
    const acknowledged = this.#options.acknowledged();
    log.warn(
      "Giving up on {what}, away for more than {grace} s: their data died with them ({members}). {loss}",
      {
        what: plural(gone.length, "volatile member"),
        grace: seconds(this.#options.record.members.volatileGrace),
        members: described.join(", "),
        loss: acknowledged > present
          ? `Acknowledged writes after sequence ${present}, up to ${acknowledged} (at most ${
            acknowledged - present
          } writes), were held only by them and are lost`
          : "No acknowledged write is known to be lost with them",
      },
    );
    this.#forgetMembers(gone);
  }

  /** Removes members for good (the hold gave up on them); saves the change. */
  #forgetMembers(ids: string[]): void {
    if (this.#hold !== undefined) {
      for (const id of ids) this.#hold.members.delete(id);
      this.#hold.needed = this.#options.record.needed(this.#hold.members.size);
    }
    this.#options.record.forget(ids);
  }
}

/** A JOIN to keep past its frame: its ids copied out of the read buffer. */
function kept(join: Join): Join {
  return {
    ...join,
    clusterId: join.clusterId.slice(),
    nodeId: join.nodeId.slice(),
  };
}
