// A database node's reads: GET, KEYS and COUNT forwarded by the router,
// served a bounded number at a time, and their answers held back until the
// APPLIED that covers what they may have seen has gone out.

import { getLogger } from "@logtape/logtape";
import {
  decodeDigest,
  decodeExpired,
  decodeGet,
  decodeKeys,
  decodeRange,
  DEFAULT_KEYS_LIMIT,
  encodeDigestReply,
  encodeEntries,
  encodeKeyPage,
  encodeU64,
  encodeValue,
  ErrorCode,
  type Frame,
  type FramedConnection,
  MAX_ENTRIES_BYTES,
  MAX_KEY_SIZE,
  MAX_PAGE_BYTES,
  Opcode,
  toKvndbError,
} from "../protocol/mod.ts";
import type { Database, StoredEntry } from "./types.ts";

/**
 * The entry as a read sees it: nothing once it has expired by this
 * database's clock. (Atomic operations judge by the router's time instead,
 * so that every database decides alike; docs/architecture.md, "Expiry".)
 */
function live(entry: StoredEntry | null): StoredEntry | null {
  return entry === null || entry.expiresAt === undefined ||
      entry.expiresAt > Date.now()
    ? entry
    : null;
}

const log = getLogger(["kvndb", "database"]);

/** Reads a node works on at once. */
const MAX_CONCURRENT_READS = 64;

/** Answers queued for the router past which the node serves no more reads until they leave. */
const READ_HIGH_WATER = 4 * 1024 * 1024;

/** The reads of one node, and the answers it holds. */
export class NodeReads {
  #db: Database;
  #queue: Frame[] = [];
  #active = 0;
  #waiting = false;
  /** Answers held until APPLIED covers the state they may have seen. */
  #held: { upTo: number; bytes: Uint8Array }[] = [];
  #keysCount = 0;
  #counting = false;
  #keysCountedAt = -Infinity;
  /** How long the last count took, in ms. */
  #countTook = 0;
  /** The last seq of the batch being applied (0 when none is): answers wait. */
  applyingUpTo = 0;

  constructor(db: Database) {
    this.#db = db;
  }

  /** Takes a GET, KEYS or COUNT from the router. */
  take(conn: FramedConnection, frame: Frame): void {
    // A backend that reads without I/O answers a GET now, unless reads are
    // queued (they go first) or answers are piling up unsent.
    if (
      frame.opcode === Opcode.GET && this.#db.getNow !== undefined &&
      this.#queue.length === 0 && conn.bufferedBytes <= READ_HIGH_WATER
    ) {
      try {
        const entry = live(this.#db.getNow(decodeGet(frame.payload)));
        this.answer(conn, encodeValue(frame.id, entry));
      } catch (error) {
        this.answerError(conn, frame.id, error);
      }
      return;
    }
    // Copy: the read may wait in the queue, and the frame views a read buffer.
    this.#queue.push({ ...frame, payload: frame.payload.slice() });
    this.#serve(conn);
  }

  /** Sends the answers held for what is now applied. */
  release(conn: FramedConnection): void {
    if (this.#held.length === 0) return;
    const held = this.#held;
    this.#held = [];
    for (const answer of held) conn.send(answer.bytes);
  }

  /** Forgets the queue and the held answers: the connection is gone. */
  reset(): void {
    this.#queue = [];
    this.#held = [];
  }

  /** The data changed wholesale (a sync ended): count again at the next chance. */
  recount(): void {
    this.#keysCountedAt = -Infinity;
  }

  /** The key count, as last counted; counts again in the background when due. */
  countKeys(): number {
    // Counting lists every key on Deno KV: refresh no more often than a
    // hundred times what the last count took, and at most every 10 s, so a
    // memory database (a count costs nothing) is fresh at every heartbeat.
    // One count at a time: on a large store a count can outlast the interval,
    // and counts piling up would slow everything else down.
    const now = performance.now();
    const interval = Math.min(10_000, this.#countTook * 100);
    if (!this.#counting && now - this.#keysCountedAt > interval) {
      this.#counting = true;
      this.#db.count(Date.now()).then((count) => this.#keysCount = count).catch(
        () => {},
      ).finally(() => {
        this.#counting = false;
        this.#keysCountedAt = performance.now();
        this.#countTook = this.#keysCountedAt - now;
      });
    }
    return this.#keysCount;
  }

  /**
   * Serves queued reads, a bounded number at a time, and pauses while the
   * answers already queued for the router are many: a burst of large reads
   * then costs bounded memory.
   */
  async #serve(conn: FramedConnection): Promise<void> {
    while (this.#queue.length > 0 && this.#active < MAX_CONCURRENT_READS) {
      if (conn.bufferedBytes > READ_HIGH_WATER) {
        if (this.#waiting) return;
        this.#waiting = true;
        await conn.flushed(1_000);
        this.#waiting = false;
        if (conn.isClosed) {
          this.#queue = [];
          return;
        }
        continue;
      }
      const frame = this.#queue.shift()!;
      this.#active++;
      const answer = frame.opcode === Opcode.GET
        ? this.#answerGet(conn, frame)
        : frame.opcode === Opcode.KEYS
        ? this.#answerKeys(conn, frame)
        : frame.opcode === Opcode.EXPIRED
        ? this.#answerExpired(conn, frame)
        : frame.opcode === Opcode.RANGE
        ? this.#answerRange(conn, frame)
        : frame.opcode === Opcode.DIGEST
        ? this.#answerDigest(conn, frame)
        : this.#answerCount(conn, frame);
      answer.finally(() => {
        this.#active--;
        this.#serve(conn);
      });
    }
  }

  /**
   * Sends a read's answer, but never before the APPLIED that covers what the
   * read may have seen: a read that overlapped a commit may see its writes,
   * and the router must know this database has them before the answer
   * arrives (it uses that to keep every later read at least as new).
   */
  answer(conn: FramedConnection, bytes: Uint8Array): void {
    if (this.applyingUpTo === 0) {
      conn.send(bytes);
    } else {
      this.#held.push({ upTo: this.applyingUpTo, bytes });
    }
  }

  async #answerGet(conn: FramedConnection, frame: Frame): Promise<void> {
    try {
      const entry = live(await this.#db.get(decodeGet(frame.payload)));
      this.answer(conn, encodeValue(frame.id, entry));
    } catch (error) {
      this.answerError(conn, frame.id, error);
    }
  }

  async #answerKeys(conn: FramedConnection, frame: Frame): Promise<void> {
    try {
      const request = decodeKeys(frame.payload);
      const limit = request.limit === 0 ? DEFAULT_KEYS_LIMIT : request.limit;
      const keys = await this.#db.keys({
        prefix: request.prefix,
        after: request.cursor,
        limit: limit + 1,
        maxBytes: MAX_PAGE_BYTES,
        now: Date.now(),
      });
      let more = keys.length > limit;
      if (more) keys.length = limit;
      let bytes = 0;
      for (const key of keys) bytes += key.length;
      // Cut short by the byte budget: there may be more.
      if (bytes + MAX_KEY_SIZE > MAX_PAGE_BYTES) more = true;
      const cursor = more && keys.length > 0
        ? keys[keys.length - 1]!
        : new Uint8Array(0);
      this.answer(conn, encodeKeyPage(frame.id, { keys, cursor }));
    } catch (error) {
      this.answerError(conn, frame.id, error);
    }
  }

  async #answerRange(conn: FramedConnection, frame: Frame): Promise<void> {
    try {
      const request = decodeRange(frame.payload);
      const answer = await this.#db.range({
        ...request,
        maxBytes: MAX_ENTRIES_BYTES,
        now: Date.now(),
      });
      this.answer(conn, encodeEntries(frame.id, answer));
    } catch (error) {
      this.answerError(conn, frame.id, error);
    }
  }

  /**
   * A digest of a range, or its entries, as stored: expired entries count
   * too, since every database holds them until the same sequenced sweep.
   */
  async #answerDigest(conn: FramedConnection, frame: Frame): Promise<void> {
    try {
      const request = decodeDigest(frame.payload);
      // Entries go back in one frame; a digest covers the whole range.
      const read = await this.#db.range({
        start: request.start,
        end: request.end,
        limit: request.limit,
        reverse: false,
        maxBytes: request.mode === 1 ? MAX_ENTRIES_BYTES : Infinity,
      });
      if (request.mode === 1) {
        this.answer(conn, encodeEntries(frame.id, read));
        return;
      }
      const { entries } = read;
      let size = 0;
      for (const e of entries) {
        size += 2 + e.key.length + 17 + 4 + e.value.length;
      }
      const bytes = new Uint8Array(size);
      const view = new DataView(bytes.buffer);
      let at = 0;
      for (const e of entries) {
        view.setUint16(at, e.key.length);
        bytes.set(e.key, at + 2);
        at += 2 + e.key.length;
        view.setFloat64(at, e.version);
        view.setUint8(at + 8, e.expiresAt === undefined ? 0 : 1);
        view.setFloat64(at + 9, e.expiresAt ?? 0);
        view.setUint32(at + 17, e.value.length);
        bytes.set(e.value, at + 21);
        at += 21 + e.value.length;
      }
      const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
      this.answer(
        conn,
        encodeDigestReply(frame.id, {
          count: entries.length,
          lastKey: entries.at(-1)?.key ?? new Uint8Array(0),
          hash,
        }),
      );
    } catch (error) {
      this.answerError(conn, frame.id, error);
    }
  }

  async #answerExpired(conn: FramedConnection, frame: Frame): Promise<void> {
    try {
      const { now, limit } = decodeExpired(frame.payload);
      const keys = await this.#db.expired(now, limit);
      this.answer(
        conn,
        encodeKeyPage(frame.id, { keys, cursor: new Uint8Array(0) }),
      );
    } catch (error) {
      this.answerError(conn, frame.id, error);
    }
  }

  async #answerCount(conn: FramedConnection, frame: Frame): Promise<void> {
    try {
      const count = await this.#db.count(Date.now());
      this.#keysCount = count;
      this.answer(conn, encodeU64(Opcode.COUNT_REPLY, frame.id, count));
    } catch (error) {
      this.answerError(conn, frame.id, error);
    }
  }

  answerError(conn: FramedConnection, id: number, error: unknown): void {
    const reason = toKvndbError(error);
    if (reason.code === ErrorCode.INTERNAL) {
      log.error("Backend error: {error}", { error: String(error) });
    }
    conn.sendError(id, reason);
  }
}
