/**
 * Reads: which database serves each one, reads waiting for a database that
 * has what they must see, the read floor, and their deadlines. See
 * `docs/architecture.md`, "Read path".
 *
 * @module
 */

import {
  encodeOpaque,
  ErrorCode,
  type Frame,
  KvndbError,
  Opcode,
  taskNow,
  TimeoutError,
} from "../protocol/mod.ts";
import type { ClientSession, DatabaseLink, ReadRequest } from "./_links.ts";
import { type BalanceMode, pick } from "./balancer.ts";
import { type Latencies, LatencyKind } from "./latency.ts";

/** Options for {@linkcode Reads}. */
export interface ReadsOptions {
  /** How reads are spread over the databases that may serve them. */
  balance: BalanceMode;
  /** How long a read may wait, in ms. */
  requestTimeout: number;
  /** Answers a request with an error, counting it as answered. */
  fail(client: ClientSession, id: number, error: unknown): void;
  /** The error for a read that no database can serve. */
  noDatabase(): KvndbError;
  /** Where answered reads' latencies are counted. */
  latencies?: Latencies;
  /**
   * The position up to which every write is on every ready member (the
   * databases a restarted router trusts), `Infinity` when no member is
   * ready: an answer that may show writes past it waits until it moves.
   */
  durable?: () => number;
}

/** An answer held until what it may show would survive a router restart. */
interface HeldAnswer {
  request: ReadRequest;
  opcode: number;
  payload: Uint8Array;
  /** The serving database's position when it answered. */
  needed: number;
}

/**
 * The router's reads. A read goes to a ready database whose applied
 * position is at least the client's last write and the read floor (the
 * newest state anyone has learned of), so reads are linearizable; with no
 * such database it waits, within its deadline, for one to catch up.
 *
 * @example
 * ```ts ignore
 * const reads = new Reads(databases, options);
 * reads.read(client, frame); // a GET, KEYS or COUNT from a client
 * ```
 */
export class Reads {
  #databases: Map<number, DatabaseLink>;
  #options: ReadsOptions;
  #waiting: ReadRequest[] = [];
  #held: HeldAnswer[] = [];
  #floor = 0;
  /** One array for every read: nothing allocated per read to choose. */
  #candidates: DatabaseLink[] = [];

  /**
   * Creates the read path over the router's databases.
   *
   * @param databases The router's connected databases (shared, not copied).
   * @param options Balance, timeout, and how to answer errors.
   */
  constructor(databases: Map<number, DatabaseLink>, options: ReadsOptions) {
    this.#databases = databases;
    this.#options = options;
  }

  /**
   * No read may be served from a state older than this: the highest seq
   * acknowledged to a client or seen by a read.
   */
  get floor(): number {
    return this.#floor;
  }

  /** Reads waiting for a database that has what they must see. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Raises the floor to `seq` (a write acknowledged to a client). */
  raiseFloor(seq: number): void {
    if (seq > this.#floor) this.#floor = seq;
  }

  /**
   * Takes a client's read.
   *
   * @throws {KvndbError} `NO_DATABASE` when no database is connected.
   */
  read(client: ClientSession, frame: Frame): void {
    // Copy the payload: it may wait, and the read buffer it views is reused.
    this.readKept(client, frame.id, frame.opcode, frame.payload.slice());
  }

  /**
   * Serves a read whose `payload` (as in a client's frame) is its own: not a
   * view of a buffer that will be reused.
   */
  readKept(
    client: ClientSession,
    id: number,
    opcode: number,
    payload: Uint8Array,
  ): void {
    if (this.#databases.size === 0) throw this.#options.noDatabase();
    client.inFlight++;
    this.dispatch({
      client,
      clientId: id,
      opcode,
      payload,
      minSeq: client.lastWriteSeq,
      deadline: taskNow() + this.#options.requestTimeout,
    });
  }

  /**
   * Sends a read to the database `target` names (the router's id of it), as
   * it is: for `kvndb verify`, which compares the databases one by one.
   *
   * @throws {KvndbError} `NO_DATABASE` when no ready database has that id.
   */
  readFrom(client: ClientSession, frame: Frame, target: number): void {
    const db = this.#databases.get(target);
    if (db === undefined || db.state !== "ready") {
      throw new KvndbError(
        ErrorCode.NO_DATABASE,
        `No ready database with id ${target}: see kvndb stats for the ids`,
      );
    }
    client.inFlight++;
    const request: ReadRequest = {
      client,
      clientId: frame.id,
      opcode: frame.opcode,
      payload: frame.payload.slice(),
      minSeq: 0,
      deadline: taskNow() + this.#options.requestTimeout,
      target,
    };
    this.#send(db, request);
  }

  /** Sends a read to a ready database that has what it must see, or waits. */
  dispatch(request: ReadRequest): void {
    if (request.client.conn.isClosed) return;
    if (request.target !== undefined) {
      // The database it was for left: it cannot go to another.
      this.#options.fail(
        request.client,
        request.clientId,
        new KvndbError(
          ErrorCode.NO_DATABASE,
          `Database ${request.target} left before it answered`,
        ),
      );
      return;
    }
    const candidates = this.#candidates;
    candidates.length = 0;
    let anyReady = false;
    const floor = Math.max(request.minSeq, this.#floor);
    for (const db of this.#databases.values()) {
      if (db.state !== "ready") continue;
      anyReady = true;
      if (db.applied >= floor) candidates.push(db);
    }
    if (candidates.length === 0) {
      if (!anyReady && !this.#anyPastJoin()) {
        this.#options.fail(
          request.client,
          request.clientId,
          this.#options.noDatabase(),
        );
        return;
      }
      // A database is catching up (or joining): wait for it, within the timeout.
      this.#waiting.push(request);
      return;
    }
    const db = pick(candidates, this.#options.balance);
    candidates.length = 0;
    this.#send(db, request);
  }

  /** Sends a read to `db`, under a read id of that database's. */
  #send(db: DatabaseLink, request: ReadRequest): void {
    const id = db.nextReadId;
    db.nextReadId = id >= 0xffff_ffff ? 1 : id + 1;
    db.reads.set(id, request);
    db.conn.send(encodeOpaque(request.opcode, id, request.payload));
  }

  /**
   * Tries the waiting reads again, and sends the held answers that may go
   * now (a database caught up, became ready or left).
   */
  retryWaiting(): void {
    this.#releaseHeld();
    if (this.#waiting.length === 0) return;
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const request of waiting) this.dispatch(request);
  }

  /**
   * Relays a database's answer to the read it answers, once every write the
   * database had applied is on every ready member: a read must never show a
   * write that a router restart could give up (the restarted router trusts
   * its members only), or a later read could see the key go back.
   */
  answered(db: DatabaseLink, frame: Frame): void {
    const request = db.reads.get(frame.id);
    if (request === undefined) return;
    db.reads.delete(frame.id);
    if (request.client.conn.isClosed) return;
    const needed = db.applied;
    // Computed afresh each time (a few databases): members come and go.
    if (
      frame.opcode !== Opcode.ERROR &&
      needed > (this.#options.durable?.() ?? Infinity)
    ) {
      this.#held.push({
        request,
        opcode: frame.opcode,
        payload: frame.payload.slice(),
        needed,
      });
      return;
    }
    this.#deliver(request, frame.opcode, frame.payload, needed);
  }

  #deliver(
    request: ReadRequest,
    opcode: number,
    payload: Uint8Array,
    applied: number,
  ): void {
    if (request.client.conn.isClosed) return;
    request.client.inFlight--;
    this.#options.latencies?.observe(
      LatencyKind.READ,
      taskNow() - request.deadline + this.#options.requestTimeout,
    );
    // What this read saw is now the oldest state any later read may see.
    if (opcode !== Opcode.ERROR) this.raiseFloor(applied);
    const link = request.client.conn;
    if (link.answer !== undefined) {
      link.answer(request.clientId, opcode, payload);
    } else {
      link.send(encodeOpaque(opcode, request.clientId, payload));
    }
  }

  /** Sends the answers held for positions the members have now reached. */
  #releaseHeld(): void {
    if (this.#held.length === 0) return;
    const durable = this.#options.durable?.() ?? Infinity;
    const held = this.#held;
    this.#held = [];
    for (const answer of held) {
      if (answer.needed <= durable) {
        this.#deliver(
          answer.request,
          answer.opcode,
          answer.payload,
          answer.needed,
        );
      } else this.#held.push(answer);
    }
  }

  /** Sends the reads `db` had not answered to other databases (it left). */
  reroute(db: DatabaseLink): void {
    const reads = [...db.reads.values()];
    db.reads.clear();
    for (const request of reads) this.dispatch(request);
  }

  /** Fails the reads, sent or waiting, past their deadline. */
  expire(now: number): void {
    const timeout = this.#options.requestTimeout;
    for (const db of this.#databases.values()) {
      for (const [id, request] of db.reads) {
        if (request.deadline < now) {
          db.reads.delete(id);
          this.#options.fail(
            request.client,
            request.clientId,
            new TimeoutError(`No database answered within ${timeout} ms`),
          );
        }
      }
    }
    if (this.#held.length > 0) {
      const held = this.#held;
      this.#held = [];
      for (const answer of held) {
        if (answer.request.deadline < now) {
          this.#options.fail(
            answer.request.client,
            answer.request.clientId,
            new TimeoutError(
              `The members did not reach the read's position within ${timeout} ms`,
            ),
          );
        } else this.#held.push(answer);
      }
    }
    if (this.#waiting.length === 0) return;
    const kept: ReadRequest[] = [];
    for (const request of this.#waiting) {
      if (request.deadline < now) {
        this.#options.fail(
          request.client,
          request.clientId,
          new TimeoutError(`No ready database within ${timeout} ms`),
        );
      } else {
        kept.push(request);
      }
    }
    this.#waiting = kept;
  }

  /** Whether a database is past its join (replaying, syncing or ready). */
  #anyPastJoin(): boolean {
    for (const db of this.#databases.values()) {
      if (db.state !== "joining") return true;
    }
    return false;
  }
}
