/**
 * The memory backend (`memory`, alias `ram`): a hash map for point
 * operations beside a B-tree of the keys for ordered listing. Data lives as
 * long as the process; after a restart the node syncs again.
 *
 * @module
 */

import {
  type Entries,
  type RangeEntry,
  type SyncEntry,
  type Write,
  WriteOp,
} from "../protocol/mod.ts";
import { fromBinary, toBinary } from "./_binary_key.ts";
import { ExpiryIndex } from "./_expiry.ts";
import { createSortedMap, type SortedMap } from "./_sorted_map.ts";
import type {
  Database,
  DatabaseState,
  KeysQuery,
  RangeQuery,
  SnapshotOptions,
  StoredEntry,
} from "./types.ts";

/**
 * A value and its version, as held: one binary string, the version in its
 * first eight characters (big-endian bytes), then the value. An object of
 * two fields beside the string cost 40 bytes a key more.
 */
type Stored = string;

const VERSION_BYTES = 8;
/** Reused to build stored strings: version bytes, then the value. */
let scratch = new Uint8Array(4096);
let scratchView = new DataView(scratch.buffer);

function pack(version: number, value: Uint8Array): Stored {
  const size = VERSION_BYTES + value.length;
  if (scratch.length < size) {
    scratch = new Uint8Array(size * 2);
    scratchView = new DataView(scratch.buffer);
  }
  scratchView.setUint32(0, Math.floor(version / 0x1_0000_0000));
  scratchView.setUint32(4, version >>> 0);
  scratch.set(value, VERSION_BYTES);
  return toBinary(scratch.subarray(0, size));
}

function versionOf(stored: Stored): number {
  let high = 0;
  let low = 0;
  for (let i = 0; i < 4; i++) {
    high = high * 256 + stored.charCodeAt(i);
    low = low * 256 + stored.charCodeAt(i + 4);
  }
  return high * 0x1_0000_0000 + low;
}

function valueOf(stored: Stored): Uint8Array {
  return fromBinary(stored, VERSION_BYTES);
}

/**
 * A database held in memory, ordered by key.
 *
 * @example
 * ```ts
 * import { MemoryDatabase } from "./memory_database.ts";
 * await using db = new MemoryDatabase();
 * const key = new TextEncoder().encode("a");
 * await db.apply([{ seq: 1, op: 1, key, value: new Uint8Array([49]) }]);
 * console.log(await db.count()); // 1
 * ```
 */
export class MemoryDatabase implements Database {
  /** The backend's name. */
  readonly kind = "memory";
  /** Its data dies with the process. */
  readonly volatile = true;
  // Values are kept as binary strings too: V8 stores those on its heap one
  // byte a character, while a Uint8Array per value costs about 300 bytes of
  // objects and off-heap bookkeeping (BENCHMARKS.md, memory per key).
  // Gets, overwrites and deletes of absent keys take one hash lookup; the
  // B-tree of keys (no values: the library then shares one empty values
  // array) changes only when a key is added or removed. B-tree lookups
  // were about half of a memory database's time under load.
  #data = new Map<string, Stored>();
  #order: SortedMap<string, undefined> = createSortedMap();
  // Expiries live apart from the values, so keys without one cost nothing.
  #expiries = new ExpiryIndex();
  #state: DatabaseState = {
    clusterId: new Uint8Array(0),
    nodeId: crypto.getRandomValues(new Uint8Array(16)),
    applied: 0,
    complete: true,
  };

  /** Reads the state. */
  state(): Promise<DatabaseState> {
    return Promise.resolve({ ...this.#state });
  }

  /** Replaces the state. */
  setState(state: DatabaseState): Promise<void> {
    this.#state = {
      ...state,
      clusterId: state.clusterId.slice(),
      nodeId: state.nodeId.slice(),
    };
    return Promise.resolve();
  }

  /** Reads one key. */
  get(key: Uint8Array): Promise<StoredEntry | null> {
    return Promise.resolve(this.getNow(key));
  }

  /** Reads one key, at once. */
  getNow(key: Uint8Array): StoredEntry | null {
    const id = toBinary(key);
    const stored = this.#data.get(id);
    if (stored === undefined) return null;
    const expiresAt = this.#expiries.get(id);
    return expiresAt === undefined
      ? { value: valueOf(stored), version: versionOf(stored) }
      : { value: valueOf(stored), version: versionOf(stored), expiresAt };
  }

  /** Applies writes in order and advances `applied` (to `applied`, when given). */
  apply(writes: Write[], applied?: number): Promise<void> {
    for (const write of writes) {
      const key = toBinary(write.key);
      if (write.op === WriteOp.SET) {
        // An overwrite is one hash lookup; only a new key enters the tree.
        const size = this.#data.size;
        this.#data.set(key, pack(write.seq, write.value!));
        if (this.#data.size > size) this.#order.set(key, undefined);
        if (write.expiresAt !== undefined || this.#expiries.size > 0) {
          this.#expiries.set(key, write.expiresAt);
        }
      } else if (this.#data.delete(key)) {
        this.#order.delete(key);
        this.#expiries.delete(key);
      }
      this.#state.applied = write.seq;
    }
    if (applied !== undefined && applied > this.#state.applied) {
      this.#state.applied = applied;
    }
    return Promise.resolve();
  }

  /** Stores snapshot entries where the key is absent or older. */
  merge(entries: SyncEntry[]): Promise<void> {
    for (const entry of entries) {
      const key = toBinary(entry.key);
      const stored = this.#data.get(key);
      if (stored === undefined) {
        this.#data.set(key, pack(entry.version, entry.value));
        this.#order.set(key, undefined);
        if (entry.expiresAt !== undefined) {
          this.#expiries.set(key, entry.expiresAt);
        }
      } else if (versionOf(stored) < entry.version) {
        this.#data.set(key, pack(entry.version, entry.value));
        this.#expiries.set(key, entry.expiresAt);
      }
    }
    return Promise.resolve();
  }

  /** Lists keys in byte order. */
  keys(query: KeysQuery): Promise<Uint8Array[]> {
    const prefix = toBinary(query.prefix);
    const after = toBinary(query.after);
    const start = after > prefix ? after : prefix;
    const out: Uint8Array[] = [];
    let bytes = 0;
    const now = query.now;
    for (const [key] of this.#order.entries(start)) {
      if (key === after) continue;
      if (!key.startsWith(prefix)) break;
      if (now !== undefined && this.#expiries.isExpired(key, now)) continue;
      if (out.length >= query.limit || bytes + key.length > query.maxBytes) {
        break;
      }
      out.push(fromBinary(key));
      bytes += key.length;
    }
    return Promise.resolve(out);
  }

  /** Reads the entries of a key range, forwards or backwards. */
  range(query: RangeQuery): Promise<Entries> {
    const start = toBinary(query.start);
    const end = query.end.length === 0 ? undefined : toBinary(query.end);
    const entries: RangeEntry[] = [];
    let bytes = 0;
    let more = false;
    const walk = query.reverse
      ? this.#order.entriesReversed(end)
      : this.#order.entries(start);
    for (const [key] of walk) {
      if (query.reverse ? key < start : end !== undefined && key >= end) break;
      if (query.reverse && key === end) continue;
      if (entries.length >= query.limit) break;
      const expiresAt = this.#expiries.get(key);
      if (
        expiresAt !== undefined && query.now !== undefined &&
        expiresAt <= query.now
      ) continue;
      const stored = this.#data.get(key)!;
      if (
        entries.length > 0 &&
        bytes + key.length + stored.length > query.maxBytes
      ) {
        more = true;
        break;
      }
      bytes += key.length + stored.length;
      const entry: RangeEntry = {
        key: fromBinary(key),
        value: valueOf(stored),
        version: versionOf(stored),
      };
      if (expiresAt !== undefined) entry.expiresAt = expiresAt;
      entries.push(entry);
    }
    return Promise.resolve({ entries, more });
  }

  /** Counts the keys; with `now`, those not expired then. */
  count(now?: number): Promise<number> {
    const expired = now === undefined ? 0 : this.#expiries.countExpired(now);
    return Promise.resolve(this.#data.size - expired);
  }

  /** Lists keys expired at `now`, earliest first. */
  expired(now: number, limit: number): Promise<Uint8Array[]> {
    return Promise.resolve(
      this.#expiries.expired(now, limit).map((id) => fromBinary(id)),
    );
  }

  /** Removes every key. */
  clear(): Promise<void> {
    this.#data.clear();
    this.#order.clear();
    this.#expiries.clear();
    return Promise.resolve();
  }

  /** Iterates over every entry in chunks, resuming after the last key sent. */
  async *snapshot(options: SnapshotOptions): AsyncGenerator<SyncEntry[]> {
    let after: string | undefined = undefined;
    while (true) {
      const chunk: SyncEntry[] = [];
      let bytes = 0;
      let full = false;
      // Resume by key rather than by iterator: writes between chunks would
      // invalidate a live B-tree iterator.
      const start: string | undefined = after === undefined
        ? undefined
        : this.#order.nextHigherKey(after);
      if (start === undefined && after !== undefined) return;
      for (const [key] of this.#order.entries(start)) {
        const stored = this.#data.get(key)!;
        const size = key.length + stored.length - VERSION_BYTES;
        // Check before adding: a chunk holds at most chunkBytes unless a
        // single entry is larger on its own.
        if (chunk.length > 0 && bytes + size > options.chunkBytes) {
          full = true;
          break;
        }
        const expiresAt = this.#expiries.get(key);
        chunk.push(
          expiresAt === undefined
            ? {
              key: fromBinary(key),
              value: valueOf(stored),
              version: versionOf(stored),
            }
            : {
              key: fromBinary(key),
              value: valueOf(stored),
              version: versionOf(stored),
              expiresAt,
            },
        );
        bytes += size;
        after = key;
      }
      if (chunk.length === 0) return;
      yield chunk;
      if (!full) return;
    }
  }

  /** Releases the data. Idempotent. */
  close(): Promise<void> {
    this.#data.clear();
    this.#order.clear();
    this.#expiries.clear();
    return Promise.resolve();
  }

  /** Closes the database; for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
