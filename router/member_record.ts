/**
 * The member record: which databases a restarted router may trust, whether a
 * write was ever acknowledged by fewer than all of them, and saving both to
 * the state file before anything depends on them. See
 * `docs/architecture.md`, "Router restart and membership".
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { fromHex, type MemberInfo, sleep } from "../protocol/mod.ts";
import type { DatabaseLink } from "./_links.ts";
import { Membership } from "./membership.ts";
import type { StateFile } from "./state_file.ts";

const log = getLogger(["kvndb", "router"]);

/** What the record needs from the router. */
export interface MemberRecordOptions {
  /** The state file; without one, nothing is saved and nothing waits. */
  stateFile?: StateFile;
  /** How long a volatile member may be away before it is given up, in ms. */
  volatileGrace: number;
  /** The cluster and the position, saved with the members. */
  position(): { clusterId?: Uint8Array; seq: number; reserved: number };
  /** A save finished: acknowledgements held for it may go on. */
  saved(): void;
  /** Aborted when the router closes: retries of a failed save stop. */
  signal: AbortSignal;
}

/** How long to wait before saving again after a failed save, in ms. */
const RETRY_AFTER = 1_000;

/**
 * The members and the rules that keep each of them holding every
 * acknowledged write, so that a restarted router can trust the first one
 * back: a database is a member only once it has every acknowledged write, a
 * member that leaves stops being one while another ready member remains,
 * and after a weaker acknowledgement (`one`, `majority`) every member stays
 * one, since any of them may hold a write the others lack. Each change is
 * saved before any acknowledgement that depends on it.
 *
 * @example
 * ```ts ignore
 * const record = new MemberRecord({ stateFile, volatileGrace, position, saved, signal });
 * if (record.mayAcknowledge(writes.hasWeak, floor, isReadyNode)) writes.settle(applied);
 * ```
 */
export class MemberRecord {
  #options: MemberRecordOptions;
  #members: Membership;
  #weak = false;
  #weakSaved = false;
  #saving?: Promise<void>;
  /** Ready databases that become members once they have every acknowledged write. */
  #pending = new Set<DatabaseLink>();

  /**
   * Creates an empty record.
   *
   * @param options The state file, and what the record needs of the router.
   */
  constructor(options: MemberRecordOptions) {
    this.#options = options;
    this.#members = new Membership({ volatileGrace: options.volatileGrace });
  }

  /** The members. */
  get members(): Membership {
    return this.#members;
  }

  /** Whether a write may ever have been acknowledged by fewer than all. */
  get weak(): boolean {
    return this.#weak;
  }

  /** Whether a save is under way (acknowledgements wait for it). */
  get saving(): boolean {
    return this.#saving !== undefined;
  }

  /** Resolves once no save is under way. */
  async settled(): Promise<void> {
    while (this.#saving !== undefined) await this.#saving;
  }

  /**
   * Takes what the state file had: the members (as `members`, away since the
   * start) and whether a weak acknowledgement had happened. After one, every
   * member stays a member; otherwise the members are only waited for.
   */
  restore(members: Membership, weak: boolean): void {
    this.#weak = weak;
    this.#weakSaved = weak;
    if (weak) this.#members = members.clone();
  }

  /**
   * How many of `members` members a hold needs back: with every write
   * acknowledged by all ready databases, any member has them all; after a
   * weaker acknowledgement, only all members together do.
   */
  needed(members: number): number {
    return this.#weak ? members : Math.min(1, members);
  }

  /**
   * Whether writes may be acknowledged now, given whether a weak one waits
   * (`weakWaiting`), the read floor (every acknowledged write is at or below
   * it) and which node ids are ready. When not, a change is being saved and
   * `saved()` will be called.
   */
  mayAcknowledge(
    weakWaiting: boolean,
    floor: number,
    isReady: (id: string) => boolean,
  ): boolean {
    if (this.#saving !== undefined) return false;
    if (
      !this.#weakSaved && this.#options.stateFile !== undefined && weakWaiting
    ) {
      // Record, before the first weaker acknowledgement, that one may exist.
      this.#weak = true;
      this.save();
      return false;
    }
    if (this.#weak) return true;
    // A database that could acknowledge is a member first, and members that
    // are not ready stop being members before anything is acknowledged
    // without them.
    if (this.#pending.size > 0) this.admitPending(floor);
    if (this.#saving !== undefined) return false;
    return !this.#pruneAbsent(isReady);
  }

  /** `db` is ready: it becomes a member once it has every acknowledged write. */
  ready(db: DatabaseLink, floor: number): void {
    this.#pending.add(db);
    this.admitPending(floor);
  }

  /** Makes members of the ready databases that have reached `floor`. */
  admitPending(floor: number): void {
    if (this.#pending.size === 0) return;
    let changed = false;
    for (const db of this.#pending) {
      if (db.state !== "ready" || db.conn.isClosed) {
        this.#pending.delete(db);
      } else if (db.applied >= floor) {
        this.#pending.delete(db);
        if (
          this.#members.add(db.nodeId, {
            volatile: db.volatile,
            address: db.conn.peer,
          })
        ) changed = true;
      }
    }
    if (changed) this.save();
  }

  /**
   * `db` left. A ready member stops being one when no other database with
   * its id is ready (`stillThere`) and another ready member remains
   * (`othersReady`): from now on writes are acknowledged without it.
   */
  left(db: DatabaseLink, stillThere: boolean, othersReady: boolean): void {
    this.#pending.delete(db);
    if (
      db.state === "ready" && !stillThere && othersReady &&
      !this.#options.signal.aborted && !this.#weak &&
      this.#members.delete(db.nodeId)
    ) {
      // Writes it may lack must not be acknowledged before the router would
      // remember, after a crash, that it is no longer a complete copy.
      this.save();
    }
  }

  /** Removes members for good; saves the change. Returns whether any was one. */
  forget(ids: string[]): boolean {
    let changed = false;
    for (const id of ids) {
      if (this.#members.delete(id)) changed = true;
    }
    if (changed) this.save();
    return changed;
  }

  /**
   * Saves the record; acknowledgements wait until it is durable. A save that
   * fails is retried every second, and acknowledgements keep waiting: better
   * late answers than a promise the router could not keep.
   */
  save(): void {
    const saving = this.persist();
    this.#saving = saving;
    saving.then(() => {
      if (this.#saving === saving) this.#saving = undefined;
      this.#options.saved();
    });
  }

  /**
   * Writes the state file: cluster, members, position, and a ceiling of at
   * least `ceiling` for the sequence numbers that may be given out.
   * Resolves once it is durable (or the router closed).
   */
  async persist(ceiling = 0): Promise<void> {
    const stateFile = this.#options.stateFile;
    if (stateFile === undefined) return;
    while (!this.#options.signal.aborted) {
      const { clusterId, seq, reserved } = this.#options.position();
      if (clusterId === undefined) return;
      // Databases without a node id of their own cannot be recognized later.
      const members: Uint8Array[] = [];
      const details: Record<string, MemberInfo> = {};
      for (const id of this.#members) {
        const bytes = fromHex(id);
        if (bytes === undefined) continue;
        members.push(bytes);
        details[id] = this.#members.info(id)!;
      }
      const weak = this.#weak;
      try {
        await stateFile.save({
          clusterId,
          members,
          seq,
          weak,
          ceiling: Math.max(ceiling, reserved, seq),
          details,
        });
        if (weak) this.#weakSaved = true;
        return;
      } catch (error) {
        log.error(
          "Cannot save the router state to {path}: {error}; writes wait until it can",
          { path: stateFile.path, error: String(error) },
        );
        await sleep(RETRY_AFTER, this.#options.signal);
      }
    }
  }

  /**
   * Removes the members that are not ready, when a ready member remains to
   * hold every acknowledged write; saves the change. Returns whether it did.
   * A member that is away lacks the writes acknowledged since it left, and a
   * restarted router may trust the first member back.
   */
  #pruneAbsent(isReady: (id: string) => boolean): boolean {
    // On the acknowledgement path: nothing allocated unless there is work.
    let readyMember = false;
    let absent = 0;
    for (const id of this.#members) {
      if (isReady(id)) readyMember = true;
      else absent++;
    }
    if (!readyMember || absent === 0) return false;
    for (const id of [...this.#members]) {
      if (!isReady(id)) this.#members.delete(id);
    }
    log.info(
      "{count} databases that are not ready are no longer members: writes are acknowledged without them",
      { count: absent },
    );
    this.save();
    return true;
  }
}
