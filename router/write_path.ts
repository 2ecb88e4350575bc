/**
 * The write path: a client's SET, DELETE or atomic operation numbered, sent
 * to every database past its join, kept in the backlog, and answered once its
 * acknowledgement level is met (an atomic operation with the outcome the
 * databases report). See `docs/architecture.md`, "Write path".
 *
 * @module
 */

import {
  AckLevel,
  encodeAtomicReply,
  encodeAtomicWrite,
  encodeDone,
  encodeResolved,
  encodeWrite,
  ErrorCode,
  KvndbError,
  Opcode,
  outcomeEffects,
  outcomeReply,
  taskNow,
  TimeoutError,
  WriteOp,
} from "../protocol/mod.ts";
import type { ClientSession, DatabaseLink } from "./_links.ts";
import type { MemberRecord } from "./member_record.ts";
import type { Reads } from "./reads.ts";
import type { Sequencer } from "./sequencer.ts";
import { PendingWrites } from "./writes.ts";
import type { Watches } from "./watches.ts";
import { type Latencies, LatencyKind } from "./latency.ts";

/** What the write path needs from the router. */
export interface WritePathOptions {
  databases: Map<number, DatabaseLink>;
  sequencer: Sequencer;
  record: MemberRecord;
  reads: Reads;
  /** The level of a write that asks for the default. */
  defaultLevel: number;
  /** How long a write may wait for its acknowledgement, in ms. */
  requestTimeout: number;
  /** Whether sequence numbers must be reserved in a state file. */
  reserves: boolean;
  /** Whether a ready database has node id `id`. */
  isReadyNode(id: string): boolean;
  /** Counts a write by kind, for the router's stats. */
  count(kind: "set" | "delete" | "atomic"): void;
  /** Answers request `id` of `client` with an error (not yet counted in flight). */
  answerError(client: ClientSession, id: number, error: unknown): void;
  /** Answers an accepted request of `client` with an error. */
  fail(client: ClientSession, id: number, error: unknown): void;
  /** The error for a write that no database can take. */
  noDatabase(): KvndbError;
  /** The watches, told of numbered atomic operations, effects and acknowledgements. */
  watches?: Watches;
  /** Where acknowledged writes' latencies are counted. */
  latencies?: Latencies;
}

/** A write held until more sequence numbers are saved (its bytes copied). */
interface Held {
  client: ClientSession;
  id: number;
  acks: number;
  key: Uint8Array;
  value?: Uint8Array;
  /** The encoded steps, for an atomic operation. */
  steps?: Uint8Array;
}

/** The key of an atomic operation's held entry: it has none. */
const EMPTY = new Uint8Array(0);

/** An atomic operation numbered and not yet answered. */
interface PendingAtomic {
  /** The reply payload, from the first database that evaluated it. */
  reply?: Uint8Array;
  /** Whether a database being synced waits for its effects (RESOLVED). */
  unresolved: boolean;
  /** Whether the client has had its answer. */
  answered: boolean;
  /**
   * Acknowledged before any OUTCOME reached the router (a database that had
   * evaluated it reconnected without reporting): who waits for the reply.
   */
  waiting?: { client: ClientSession; id: number; deadline: number };
}

/** The error for an operation whose outcome no database is left to report. */
function outcomeLost(): KvndbError {
  return new KvndbError(
    ErrorCode.UNAVAILABLE,
    "The atomic operation was applied, but its outcome was lost with the databases that evaluated it: read the keys it names to learn what it did",
  );
}

/**
 * The router's writes from numbering to acknowledgement.
 *
 * @example
 * ```ts ignore
 * const path = new WritePath(options);
 * path.write(client, id, AckLevel.DEFAULT, key, value);
 * path.settle(); // after an APPLIED
 * ```
 */
export class WritePath {
  #options: WritePathOptions;
  #pending: PendingWrites;
  #held: Held[] = [];
  #reserving?: Promise<void>;
  /** Reused by settling: the ready databases' positions, highest first. */
  #applied: number[] = [];
  /** Atomic operations waiting for their acknowledgement, by seq. */
  #atomics = new Map<number, PendingAtomic>();
  /** How many of those a database being synced waits to be resolved. */
  #unresolved = 0;
  /** The time given to the last atomic operation. */
  #lastNow = 0;
  /** The highest write acknowledged: watches advance to it once a settle. */
  #acknowledged = 0;
  /** Where the watches were last advanced to. */
  #watchedTo = 0;

  /**
   * Creates the write path.
   *
   * @param options The router's parts it works with, and its policies.
   */
  constructor(options: WritePathOptions) {
    this.#options = options;
    this.#pending = new PendingWrites({
      acknowledged: (client, id, seq, deadline) => {
        client.inFlight--;
        options.reads.raiseFloor(seq);
        if (seq > this.#acknowledged) this.#acknowledged = seq;
        const link = client.conn;
        const atomic = this.#atomics.get(seq);
        // Numbered at its deadline less the timeout: no clock kept per write.
        options.latencies?.observe(
          atomic === undefined ? LatencyKind.WRITE : LatencyKind.ATOMIC,
          taskNow() - deadline + options.requestTimeout,
        );
        if (atomic !== undefined) {
          const reply = atomic.reply;
          if (reply !== undefined) {
            this.#answered(seq, atomic);
            this.#reply(client, id, reply);
          } else if (this.#willEvaluate(seq)) {
            // A database that counts for the level joined past it without
            // reporting; one that has yet to apply it will.
            atomic.waiting = {
              client,
              id,
              deadline: taskNow() + options.requestTimeout,
            };
          } else {
            this.#answered(seq, atomic);
            options.watches?.lost(seq);
            options.answerError(client, id, outcomeLost());
          }
          return;
        }
        if (link.acknowledge !== undefined) link.acknowledge(id, seq);
        else link.send(encodeDone(id, seq));
      },
      failed: (client, id, seq, error) => {
        const atomic = this.#atomics.get(seq);
        if (atomic !== undefined) this.#answered(seq, atomic);
        options.watches?.lost(seq);
        options.fail(client, id, error);
      },
    });
  }

  /** Writes waiting for their acknowledgement. */
  get pending(): number {
    return this.#pending.length;
  }

  /** Writes held until more sequence numbers are saved. */
  get held(): number {
    return this.#held.length;
  }

  /** Whether a reservation of sequence numbers is being saved. */
  get reserving(): boolean {
    return this.#reserving !== undefined;
  }

  /** Whether a write numbered above `seq` waits for its acknowledgement. */
  hasPendingAbove(seq: number): boolean {
    return this.#pending.hasAbove(seq);
  }

  /**
   * Numbers a write (a SET with `value`, else a DELETE), sends it to every
   * database past its join, and waits for its acknowledgement level.
   * `key` and `value` may view a read buffer: they are copied into the
   * write's frame, or into the queue when sequence numbers must be saved
   * first.
   *
   * @throws {KvndbError} `NO_DATABASE` when no database can take it.
   */
  write(
    client: ClientSession,
    id: number,
    acks: number,
    key: Uint8Array,
    value: Uint8Array | undefined,
  ): void {
    const options = this.#options;
    const kind = value === undefined ? "delete" : "set";
    const seq = this.#number(kind, client, id, acks, key, value, undefined);
    if (seq === undefined) return;
    const sequencer = options.sequencer;
    const bytes = encodeWrite({
      seq,
      op: value === undefined ? WriteOp.DELETE : WriteOp.SET,
      key,
      value,
    });
    sequencer.keep(seq, bytes);
    for (const db of options.databases.values()) {
      if (db.state !== "joining") db.conn.send(bytes);
    }
    this.#await(client, id, acks, seq);
  }

  /**
   * Numbers an atomic operation, sends it to every database past its join
   * (each evaluates it at its position), and answers with the outcome once
   * its acknowledgement level is met. `steps` (checked by the caller) may
   * view a read buffer: it is copied.
   *
   * @throws {KvndbError} `NO_DATABASE` when no database can take it.
   */
  atomic(
    client: ClientSession,
    id: number,
    acks: number,
    steps: Uint8Array,
  ): void {
    const options = this.#options;
    const seq = this.#number(
      "atomic",
      client,
      id,
      acks,
      EMPTY,
      undefined,
      steps,
    );
    if (seq === undefined) return;
    const sequencer = options.sequencer;
    // The operation's time, never behind an earlier one's: a clock stepped
    // back must not bring expired keys back to life for later operations.
    const now = Math.max(Date.now(), this.#lastNow);
    this.#lastNow = now;
    const bytes = encodeAtomicWrite(seq, now, steps);
    sequencer.keep(seq, bytes);
    options.watches?.numbered(seq);
    let syncing = false;
    for (const db of options.databases.values()) {
      if (db.state === "joining") continue;
      db.conn.send(bytes);
      if (db.state === "syncing") syncing = true;
    }
    this.#atomics.set(seq, { unresolved: syncing, answered: false });
    if (syncing) this.#unresolved++;
    this.#await(client, id, acks, seq);
  }

  /**
   * Takes a database's OUTCOME: the first for an operation is its reply
   * (every database with every write reaches the same one), and its effects
   * go to the databases being synced, which cannot evaluate it themselves.
   */
  outcome(payload: Uint8Array): void {
    // The writes are left encoded: the watches keep them so, and databases
    // being synced get them so.
    const { seq, reply } = outcomeReply(payload);
    const atomic = this.#atomics.get(seq);
    if (atomic === undefined || atomic.reply !== undefined) return;
    const effects = outcomeEffects(payload);
    this.#options.watches?.resolved(seq, effects);
    const waiting = atomic.waiting;
    if (waiting !== undefined) {
      atomic.waiting = undefined;
      atomic.answered = true;
      this.#reply(waiting.client, waiting.id, reply);
    } else if (!atomic.answered) atomic.reply = reply.slice();
    if (atomic.unresolved) {
      atomic.unresolved = false;
      this.#unresolved--;
      const resolved = encodeResolved(seq, effects);
      for (const db of this.#options.databases.values()) {
        if (db.state === "syncing") db.conn.send(resolved);
      }
    }
    if (atomic.answered) this.#atomics.delete(seq);
  }

  /**
   * After a database left: when none is being synced any more, no one waits
   * for effects; when some are and no database can evaluate for them, they
   * are stranded and `drop` is told to drop them (they rejoin and copy).
   */
  checkUnresolved(drop: () => void): void {
    // Clients waiting for an outcome no database is left to report.
    for (const [seq, atomic] of this.#atomics) {
      const waiting = atomic.waiting;
      if (waiting === undefined || this.#willEvaluate(seq)) continue;
      atomic.waiting = undefined;
      this.#answered(seq, atomic);
      this.#options.watches?.lost(seq);
      this.#options.answerError(waiting.client, waiting.id, outcomeLost());
    }
    if (this.#unresolved === 0) return;
    let syncing = false;
    for (const db of this.#options.databases.values()) {
      if (db.state === "syncing") syncing = true;
    }
    // A database that has applied an operation and reconnected will not
    // evaluate it again: only one still short of it can report its effects.
    let oldest = Infinity;
    for (const [seq, atomic] of this.#atomics) {
      if (atomic.unresolved && seq < oldest) oldest = seq;
    }
    if (syncing && this.#willEvaluate(oldest)) return;
    if (syncing) drop();
    for (const [seq, atomic] of this.#atomics) {
      atomic.unresolved = false;
      if (atomic.answered) this.#atomics.delete(seq);
    }
    this.#unresolved = 0;
  }

  /** Whether a ready or replaying database has yet to evaluate `seq`. */
  #willEvaluate(seq: number): boolean {
    for (const db of this.#options.databases.values()) {
      if (
        (db.state === "ready" || db.state === "replaying") && db.applied < seq
      ) return true;
    }
    return false;
  }

  #reply(client: ClientSession, id: number, reply: Uint8Array): void {
    const link = client.conn;
    if (link.answer !== undefined) link.answer(id, Opcode.ATOMIC_REPLY, reply);
    else link.send(encodeAtomicReply(id, reply));
  }

  /** The client has its answer; the entry stays while a sync target waits. */
  #answered(seq: number, atomic: PendingAtomic): void {
    atomic.answered = true;
    atomic.reply = undefined;
    if (!atomic.unresolved) this.#atomics.delete(seq);
  }

  /**
   * The next sequence number for a write of `kind`, or `undefined` when
   * sequence numbers must be saved first: the write is then held, its bytes
   * copied, until they are.
   *
   * @throws {KvndbError} `NO_DATABASE` when no database can take it.
   */
  #number(
    kind: "set" | "delete" | "atomic",
    client: ClientSession,
    id: number,
    acks: number,
    key: Uint8Array,
    value: Uint8Array | undefined,
    steps: Uint8Array | undefined,
  ): number | undefined {
    const options = this.#options;
    if (!this.#writable()) {
      options.count(kind);
      throw options.noDatabase();
    }
    const sequencer = options.sequencer;
    if (!sequencer.canNumber) {
      this.#held.push({
        client,
        id,
        acks,
        key: key.slice(),
        value: value?.slice(),
        steps: steps?.slice(),
      });
      this.#reserve();
      return undefined;
    }
    options.count(kind);
    if (sequencer.wantsReservation) this.#reserve();
    return sequencer.next();
  }

  /** Keeps a numbered write of `client` waiting for its level. */
  #await(client: ClientSession, id: number, acks: number, seq: number): void {
    const options = this.#options;
    const level = acks === AckLevel.DEFAULT ? options.defaultLevel : acks;
    client.inFlight++;
    this.#pending.push(
      seq,
      level,
      client,
      id,
      taskNow() + options.requestTimeout,
    );
    client.lastWriteSeq = seq;
  }

  /** Answers every pending write whose acknowledgement level is met. */
  settle(): void {
    if (this.#pending.length === 0) return;
    const options = this.#options;
    // Each member must hold every acknowledged write: a restarted router
    // trusts the first one back.
    if (
      !options.record.mayAcknowledge(
        this.#pending.hasWeak,
        options.reads.floor,
        options.isReadyNode,
      )
    ) return;
    const applied = this.#applied;
    applied.length = 0;
    for (const db of options.databases.values()) {
      if (db.state === "ready") applied.push(db.applied);
    }
    applied.sort(descending);
    this.#pending.settle(applied);
    // One batch of changes a settle for each watcher, not one a write.
    if (this.#acknowledged > this.#watchedTo) {
      this.#watchedTo = this.#acknowledged;
      options.watches?.advance(this.#acknowledged);
    }
  }

  /**
   * Fails the pending writes numbered above `after` (all by default) with
   * `UNAVAILABLE` and `message`.
   */
  failAbove(message: string, after = 0): void {
    this.#pending.failAbove(
      after,
      () => new KvndbError(ErrorCode.UNAVAILABLE, message),
    );
  }

  /** Fails the pending writes past their deadline. */
  expire(now: number): void {
    this.#pending.expire(
      now,
      () =>
        new TimeoutError(
          `Write not acknowledged within ${this.#options.requestTimeout} ms; it may or may not have been applied`,
        ),
    );
    // Operations acknowledged and still waiting for their outcome.
    for (const [seq, atomic] of this.#atomics) {
      const waiting = atomic.waiting;
      if (waiting === undefined || waiting.deadline > now) continue;
      atomic.waiting = undefined;
      this.#answered(seq, atomic);
      this.#options.watches?.lost(seq);
      this.#options.answerError(waiting.client, waiting.id, outcomeLost());
    }
  }

  #writable(): boolean {
    for (const db of this.#options.databases.values()) {
      if (db.state === "ready" || db.state === "replaying") return true;
    }
    return false;
  }

  /** Saves a higher ceiling for sequence numbers, then lets held writes go. */
  #reserve(): void {
    if (this.#reserving !== undefined || !this.#options.reserves) return;
    const { sequencer, record } = this.#options;
    const target = sequencer.nextCeiling;
    this.#reserving = (async () => {
      await record.persist(target);
      sequencer.reserve(target);
      this.#reserving = undefined;
      const held = this.#held;
      this.#held = [];
      for (const { client, id, acks, key, value, steps } of held) {
        if (client.conn.isClosed) continue;
        try {
          if (steps !== undefined) this.atomic(client, id, acks, steps);
          else this.write(client, id, acks, key, value);
        } catch (error) {
          this.#options.answerError(client, id, error);
        }
      }
    })();
  }
}

function descending(a: number, b: number): number {
  return b - a;
}
