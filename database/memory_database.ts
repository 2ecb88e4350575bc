/**
 * The memory backend (`memory`, alias `ram`): a sorted in-memory map. Data
 * lives as long as the process; after a restart the node syncs again.
 *
 * @module
 */

import { type SyncEntry, type Write, WriteOp } from "../protocol/mod.ts";
import { fromBinary, toBinary } from "./_binary_key.ts";
import { createSortedMap, type SortedMap } from "./_sorted_map.ts";
import type {
  Database,
  DatabaseState,
  KeysQuery,
  SnapshotOptions,
  StoredEntry,
} from "./types.ts";

/** A value and its version, as held. */
interface Stored {
  value: string;
  version: number;
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
  #data: SortedMap<string, Stored> = createSortedMap();
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
    const stored = this.#data.get(toBinary(key));
    return stored === undefined
      ? null
      : { value: fromBinary(stored.value), version: stored.version };
  }

  /** Applies writes in order and advances `applied`. */
  apply(writes: Write[]): Promise<void> {
    for (const write of writes) {
      const key = toBinary(write.key);
      if (write.op === WriteOp.SET) {
        // An overwrite changes the entry in place: a lookup instead of an
        // insert, and nothing allocated. Snapshots copy entries as they
        // read them, so none sees a change half made.
        const stored = this.#data.get(key);
        if (stored === undefined) {
          this.#data.set(key, {
            value: toBinary(write.value!),
            version: write.seq,
          });
        } else {
          stored.value = toBinary(write.value!);
          stored.version = write.seq;
        }
      } else {
        this.#data.delete(key);
      }
      this.#state.applied = write.seq;
    }
    return Promise.resolve();
  }

  /** Stores snapshot entries where the key is absent or older. */
  merge(entries: SyncEntry[]): Promise<void> {
    for (const entry of entries) {
      const key = toBinary(entry.key);
      // One descent of the tree when the key is new (a fresh copy's usual
      // case); a second only when it is there already.
      const stored = { value: toBinary(entry.value), version: entry.version };
      if (this.#data.set(key, stored, false)) continue;
      if (this.#data.get(key)!.version < entry.version) {
        this.#data.set(key, stored);
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
    for (const [key] of this.#data.entries(start)) {
      if (key === after) continue;
      if (!key.startsWith(prefix)) break;
      if (out.length >= query.limit || bytes + key.length > query.maxBytes) {
        break;
      }
      out.push(fromBinary(key));
      bytes += key.length;
    }
    return Promise.resolve(out);
  }

  /** Counts the keys. */
  count(): Promise<number> {
    return Promise.resolve(this.#data.size);
  }

  /** Removes every key. */
  clear(): Promise<void> {
    this.#data.clear();
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
        : this.#data.nextHigherKey(after);
      if (start === undefined && after !== undefined) return;
      for (const [key, entry] of this.#data.entries(start)) {
        const size = key.length + entry.value.length;
        // Check before adding: a chunk holds at most chunkBytes unless a
        // single entry is larger on its own.
        if (chunk.length > 0 && bytes + size > options.chunkBytes) {
          full = true;
          break;
        }
        chunk.push({
          key: fromBinary(key),
          value: fromBinary(entry.value),
          version: entry.version,
        });
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
    return Promise.resolve();
  }

  /** Closes the database; for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
