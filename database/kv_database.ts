/**
 * The Deno KV backend (`kv`): a local SQLite file, `:memory:`, or a remote
 * database over KV Connect. Data survives restarts, and the node's place in
 * the write stream (`applied`) commits in the same atomic operation as the
 * data it covers, so the two agree after a crash.
 *
 * The storage layout is described in `_kv_layout.ts`, where a key is stored
 * in `_kv_key.ts`.
 *
 * @module
 */

import {
  checkKey,
  checkValue,
  type Entries,
  InvalidArgumentError,
  MAX_KEY_SIZE,
  prefixEnd,
  type RangeEntry,
  type SyncEntry,
  type Write,
  WriteOp,
} from "../protocol/mod.ts";
import { fromBinary, toBinary } from "./_binary_key.ts";
import { KvIndexes } from "./_kv_indexes.ts";
import type {
  Database,
  DatabaseState,
  KeysQuery,
  RangeQuery,
  SnapshotOptions,
  StoredEntry,
} from "./types.ts";
import {
  bytesOf,
  CHUNK,
  DATA,
  decodeInfo,
  decodeState,
  encodeState,
  EXPIRY,
  KV_MAX_KEY_BYTES,
  LARGE,
  STATE_HEADER_BYTES,
  STATE_KEY,
} from "./_kv_layout.ts";
import {
  CHUNK_INDEX_BYTES,
  compareBytes,
  keyOf,
  partsOf,
  storedKey,
} from "./_kv_key.ts";
import {
  addCost,
  Batch,
  type CommitLimits,
  type Cost,
  deleteCost,
  DENO_KV_LIMITS,
  emptyCost,
  fits,
  type KeyState,
  REMOTE_LIMITS,
  stateCost,
} from "./_kv_batch.ts";
import { listedValue, listEntries, readInfo, readValue } from "./_kv_read.ts";

/**
 * Entries fetched per round trip when listing. Entries carry their values (up
 * to 64 KiB each), so this bounds what one batch holds to 16 MiB.
 */
const LIST_BATCH_SIZE = 256;

/**
 * A database in Deno KV.
 *
 * The node owns its database: it calls one method at a time and nothing else
 * writes to the KV store. `apply()` and `merge()` rely on that and write
 * without versionstamp checks: `apply()` learns which keys hold chunks from a
 * map loaded once, and `merge()` reads the entries it may replace, then writes.
 * (Checks would not scale anyway: Deno KV allows 100 an operation, which would
 * cap a group commit at 100 keys.) Should something else write meanwhile, the
 * worst outcome is chunks left behind, unread and unlisted: a value is only
 * ever read through its entry, and checked against its versionstamp.
 * `clear()` sweeps such leftovers away.
 *
 * Memory: besides the batch in hand, one map entry per key that holds a value
 * of more than 64 KiB, loaded from `["l"]` by the first write.
 *
 * @example A database in a temporary file
 * ```ts
 * import { KvDatabase } from "./kv_database.ts";
 * const dir = await Deno.makeTempDir();
 * {
 *   await using db = await KvDatabase.open(`${dir}/kvndb.sqlite3`);
 *   const key = new TextEncoder().encode("a");
 *   await db.apply([{ seq: 1, op: 1, key, value: new Uint8Array([49]) }]);
 *   console.log((await db.state()).applied); // 1
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class KvDatabase implements Database {
  /** The backend's name. */
  readonly kind = "kv";
  /** Whether the store is `:memory:`, whose data dies with the process. */
  readonly volatile: boolean;
  #kv: Deno.Kv;
  #limits: CommitLimits;
  #closed = false;
  // The node owns the store, so the state read once stays true until we
  // write it; caching it saves a read on every apply().
  #state: DatabaseState | null = null;
  // What is known of the store's chunked and expiring keys, loaded once.
  #indexes: KvIndexes;

  /**
   * Wraps an open Deno KV handle, which the database then owns and closes.
   *
   * @param kv The handle.
   * @param options Whether the store's data dies with the process
   *   (`:memory:`), and whether it is remote (KV Connect), whose commits are
   *   kept small enough for any server, a KVNDB router among them.
   * @example
   * ```ts
   * import { KvDatabase } from "./kv_database.ts";
   * await using db = new KvDatabase(await Deno.openKv(":memory:"), { volatile: true });
   * console.log(db.kind); // kv
   * ```
   */
  constructor(
    kv: Deno.Kv,
    options?: { volatile?: boolean; remote?: boolean },
  ) {
    this.#kv = kv;
    this.#indexes = new KvIndexes(kv);
    this.volatile = options?.volatile ?? false;
    this.#limits = options?.remote ? REMOTE_LIMITS : DENO_KV_LIMITS;
  }

  /**
   * Opens a database in Deno KV.
   *
   * @param path A file path, `:memory:`, or a KV Connect URL (`https://…`;
   *   Deno reads the token from `DENO_KV_ACCESS_TOKEN`). Omitted, Deno's
   *   default store for the script.
   * @returns The database.
   * @example
   * ```ts
   * import { KvDatabase } from "./kv_database.ts";
   * await using db = await KvDatabase.open(":memory:");
   * console.log(await db.count()); // 0
   * ```
   */
  static async open(path?: string): Promise<KvDatabase> {
    return new KvDatabase(await Deno.openKv(path), {
      volatile: path === ":memory:",
      remote: path !== undefined && /^https?:\/\//i.test(path),
    });
  }

  /**
   * Reads the persisted state.
   *
   * @returns The state; an empty cluster id, 0 and `true` if never set.
   * @example
   * ```ts
   * import { KvDatabase } from "./kv_database.ts";
   * await using db = await KvDatabase.open(":memory:");
   * console.log((await db.state()).complete); // true
   * ```
   */
  async state(): Promise<DatabaseState> {
    if (this.#state === null) {
      const entry = await this.#kv.get(STATE_KEY);
      if (entry.value === null) {
        // A new store: give it its id now, durably, before anyone learns it.
        const fresh = {
          clusterId: new Uint8Array(0),
          nodeId: crypto.getRandomValues(new Uint8Array(16)),
          applied: 0,
          complete: true,
        };
        await this.#kv.set(STATE_KEY, encodeState(fresh));
        this.#state = fresh;
      } else {
        this.#state = decodeState(bytesOf(entry.value, STATE_KEY));
      }
    }
    return {
      ...this.#state,
      clusterId: this.#state.clusterId.slice(),
      nodeId: this.#state.nodeId.slice(),
    };
  }

  /**
   * Replaces the persisted state.
   *
   * @param state The new state.
   * @example
   * ```ts
   * import { KvDatabase } from "./kv_database.ts";
   * await using db = await KvDatabase.open(":memory:");
   * const { nodeId } = await db.state();
   * await db.setState({ clusterId: new Uint8Array([1]), nodeId, applied: 5, complete: false });
   * console.log((await db.state()).applied); // 5
   * ```
   */
  async setState(state: DatabaseState): Promise<void> {
    const copy = {
      ...state,
      clusterId: state.clusterId.slice(),
      nodeId: state.nodeId.slice(),
    };
    await this.#kv.set(STATE_KEY, encodeState(copy));
    this.#state = copy;
  }

  /**
   * Reads one key.
   *
   * @param key The key.
   * @returns Its value and version, or `null` when absent.
   * @example
   * ```ts
   * import { KvDatabase } from "./kv_database.ts";
   * await using db = await KvDatabase.open(":memory:");
   * console.log(await db.get(new Uint8Array([97]))); // null
   * ```
   */
  async get(key: Uint8Array): Promise<StoredEntry | null> {
    // No such key can have been stored, and a longer one might exceed Deno
    // KV's key limit.
    if (key.length === 0 || key.length > MAX_KEY_SIZE) return null;
    const { parts } = storedKey(key);
    return await readValue(
      this.#kv,
      parts,
      await this.#kv.get([DATA, ...parts]),
    );
  }

  /**
   * Applies writes in order and sets `applied` to the last one's `seq`,
   * packing them into as few atomic operations as Deno KV's limits allow
   * (group commit). Each operation also stores the state, with `applied` at
   * the last `seq` it holds, so data and state agree after a crash.
   *
   * @param writes The writes, in ascending `seq`.
   * @throws {TooLargeError} When a key or value exceeds the protocol's limits; nothing is written then.
   * @throws {InvalidArgumentError} When a key is empty or a set lacks its value.
   * @example
   * ```ts
   * import { KvDatabase } from "./kv_database.ts";
   * await using db = await KvDatabase.open(":memory:");
   * const key = new Uint8Array([97]);
   * await db.apply([
   *   { seq: 1, op: 1, key, value: new Uint8Array(100_000) },
   *   { seq: 2, op: 2, key },
   * ]);
   * console.log((await db.state()).applied, await db.count()); // 2 0
   * ```
   */
  async apply(writes: Write[], applied?: number): Promise<void> {
    for (const write of writes) {
      checkKey(write.key);
      if (write.op === WriteOp.SET) {
        if (write.value === undefined) {
          throw new InvalidArgumentError(`Write ${write.seq} sets no value`);
        }
        checkValue(write.value);
      } else if (write.op !== WriteOp.DELETE) {
        throw new InvalidArgumentError(
          `Write ${write.seq} has unknown operation ${write.op}`,
        );
      }
    }
    if (writes.length === 0) {
      // Operations that wrote nothing still move the position.
      if (applied !== undefined) {
        const state = await this.state();
        if (applied > state.applied) await this.setState({ ...state, applied });
      }
      return;
    }
    const state = await this.state();
    const large = await this.#indexes.large();
    const expiries = await this.#indexes.expiries();
    const keys = new Map<string, KeyState>();
    for (const { key } of writes) {
      const id = toBinary(key);
      if (!keys.has(id)) {
        keys.set(id, {
          stored: storedKey(key),
          chunks: large.get(id) ?? 0,
          version: null,
          expiring: expiries.get(id) !== undefined,
        });
      }
    }
    const batch = new Batch(
      keys,
      large,
      expiries,
      stateCost(STATE_HEADER_BYTES + state.clusterId.length),
      this.#limits,
    );
    // Writes sharing a seq (an atomic operation's effects) go into one
    // commit: a crash must never leave part of them.
    for (let i = 0; i < writes.length;) {
      let end = i + 1;
      while (end < writes.length && writes[end]!.seq === writes[i]!.seq) end++;
      const group = writes.slice(i, end).map((write) => ({
        key: write.key,
        value: write.op === WriteOp.SET ? write.value! : null,
        expiresAt: write.expiresAt,
      }));
      const seq = writes[i]!.seq;
      if (!batch.addAll(group, seq)) {
        await this.#commit(batch, state);
        if (!batch.addAll(group, seq)) {
          throw new Error(`Write ${seq} does not fit a Deno KV operation`);
        }
      }
      i = end;
    }
    await this.#commit(batch, state, applied);
  }

  /**
   * Stores snapshot entries, each only where the key is absent or holds an
   * older version, grouped into as few atomic operations as the limits allow.
   * Leaves the state alone.
   *
   * @param entries The entries.
   * @throws {TooLargeError} When a key or value exceeds the protocol's limits; nothing is written then.
   * @throws {InvalidArgumentError} When a key is empty.
   * @example
   * ```ts
   * import { KvDatabase } from "./kv_database.ts";
   * await using db = await KvDatabase.open(":memory:");
   * const key = new Uint8Array([97]);
   * await db.merge([{ key, value: new Uint8Array([2]), version: 2 }]);
   * await db.merge([{ key, value: new Uint8Array([1]), version: 1 }]);
   * console.log((await db.get(key))?.version); // 2
   * ```
   */
  async merge(entries: SyncEntry[]): Promise<void> {
    for (const entry of entries) {
      checkKey(entry.key);
      checkValue(entry.value);
    }
    if (entries.length === 0) return;
    const large = await this.#indexes.large();
    const expiries = await this.#indexes.expiries();
    const keys = await readInfo(
      this.#kv,
      entries.map((e) => e.key),
      large,
      expiries,
    );
    const batch = new Batch(keys, large, expiries, emptyCost(), this.#limits);
    for (const entry of entries) {
      const current = batch.version(entry.key);
      if (current !== null && current >= entry.version) continue;
      const { key, value, version, expiresAt } = entry;
      if (!batch.add(key, value, version, expiresAt)) {
        await this.#commit(batch, null);
        if (!batch.add(key, value, version, expiresAt)) {
          throw new Error(
            `Entry of version ${entry.version} does not fit a Deno KV operation`,
          );
        }
      }
    }
    await this.#commit(batch, null);
  }

  /**
   * Lists keys in byte order.
   *
   * @param query The prefix, the key to start after, and the page's limits.
   * @returns The keys; stops before the one that would pass `maxBytes`.
   * @example
   * ```ts
   * import { KvDatabase } from "./kv_database.ts";
   * await using db = await KvDatabase.open(":memory:");
   * const none = new Uint8Array(0);
   * console.log(await db.keys({ prefix: none, after: none, limit: 10, maxBytes: 1024 })); // []
   * ```
   */
  async keys(query: KeysQuery): Promise<Uint8Array[]> {
    if (query.limit <= 0) return [];
    // Keys with the prefix run from the prefix itself up to its end; a
    // cursor past the prefix moves the start up.
    const fromAfter = query.after.length > 0 &&
      compareBytes(query.after, query.prefix) >= 0;
    const from = fromAfter ? query.after : query.prefix;
    const upTo = prefixEnd(query.prefix);
    const end = upTo.length === 0 ? null : upTo;
    if (end !== null && compareBytes(from, end) >= 0) return [];
    const out: Uint8Array[] = [];
    let bytes = 0;
    const now = query.now;
    const expiries = now === undefined ? null : await this.#indexes.expiries();
    const listing = listEntries(this.#kv, {
      start: from,
      end,
      // One more than the limit, for the cursor's own key.
      batchSize: Math.min(query.limit + 1, LIST_BATCH_SIZE),
    });
    for await (const { key } of listing) {
      if (fromAfter && compareBytes(key, query.after) === 0) continue;
      if (expiries?.isExpired(toBinary(key), now!)) continue;
      if (out.length >= query.limit || bytes + key.length > query.maxBytes) {
        break;
      }
      out.push(key);
      bytes += key.length;
    }
    return out;
  }

  /**
   * Reads the entries of a key range, forwards or backwards, values whole.
   *
   * @param query The range, its limits, and the time expiries are judged by.
   * @returns The entries, and whether the byte budget cut them short.
   * @example
   * ```ts
   * import { KvDatabase } from "./kv_database.ts";
   * await using db = await KvDatabase.open(":memory:");
   * const none = new Uint8Array(0);
   * console.log((await db.range({ start: none, end: none, limit: 5, reverse: false, maxBytes: 1 << 20 })).entries); // []
   * ```
   */
  async range(query: RangeQuery): Promise<Entries> {
    const entries: RangeEntry[] = [];
    if (query.limit <= 0) return { entries, more: false };
    if (
      query.end.length > 0 && compareBytes(query.start, query.end) >= 0
    ) return { entries, more: false };
    const listing = listEntries(this.#kv, {
      start: query.start,
      end: query.end.length === 0 ? null : query.end,
      reverse: query.reverse,
      batchSize: Math.min(query.limit + 1, LIST_BATCH_SIZE),
    });
    let bytes = 0;
    let more = false;
    for await (const listed of listing) {
      if (entries.length >= query.limit) break;
      const { key } = listed;
      const stored = await listedValue(this.#kv, listed);
      if (stored === null) continue;
      if (
        stored.expiresAt !== undefined && query.now !== undefined &&
        stored.expiresAt <= query.now
      ) continue;
      const size = key.length + stored.value.length;
      if (entries.length > 0 && bytes + size > query.maxBytes) {
        more = true;
        break;
      }
      bytes += size;
      entries.push({ key, ...stored });
    }
    return { entries, more };
  }

  /**
   * Counts the keys, by listing them all.
   *
   * @param now Leave out keys expired at this time (ms since the epoch).
   * @returns How many keys there are.
   * @example
   * ```ts
   * import { KvDatabase } from "./kv_database.ts";
   * await using db = await KvDatabase.open(":memory:");
   * console.log(await db.count()); // 0
   * ```
   */
  async count(now?: number): Promise<number> {
    let count = 0;
    const iterator = this.#kv.list({ prefix: [DATA] }, {
      batchSize: LIST_BATCH_SIZE,
    });
    for await (const _ of iterator) count++;
    if (now === undefined) return count;
    return count - (await this.#indexes.expiries()).countExpired(now);
  }

  /**
   * Lists keys that have expired at `now` and are still stored, earliest
   * expiry first.
   *
   * @param now The time, in ms since the epoch.
   * @param limit The most keys to return.
   * @returns The keys.
   * @example
   * ```ts
   * import { KvDatabase } from "./kv_database.ts";
   * await using db = await KvDatabase.open(":memory:");
   * console.log(await db.expired(Date.now(), 10)); // []
   * ```
   */
  async expired(now: number, limit: number): Promise<Uint8Array[]> {
    return (await this.#indexes.expiries()).expired(now, limit).map((id) =>
      fromBinary(id)
    );
  }

  /**
   * Removes every key, with its chunks, in as many atomic operations as the
   * limits need. Leaves the state alone. Not atomic: after a crash part of the
   * data may remain, but never an entry without its chunks.
   *
   * @example
   * ```ts
   * import { KvDatabase } from "./kv_database.ts";
   * await using db = await KvDatabase.open(":memory:");
   * await db.apply([{ seq: 1, op: 1, key: new Uint8Array([97]), value: new Uint8Array(0) }]);
   * await db.clear();
   * console.log(await db.count(), (await db.state()).applied); // 0 1
   * ```
   */
  async clear(): Promise<void> {
    // A load of the expiry index under way would list records being deleted.
    this.#indexes.dropExpiries();
    let atomic = this.#kv.atomic();
    let cost = emptyCost();
    /** The cost of `cost` and deleting `keys` (with their encoded sizes). */
    const plus = (cost: Cost, keys: [Deno.KvKey, number][]) =>
      keys.reduce(
        (sum, [, keyBytes]) => addCost(sum, deleteCost(keyBytes)),
        cost,
      );
    /** Deletes keys in one atomic operation. */
    const remove = async (keys: [Deno.KvKey, number][]) => {
      let next = plus(cost, keys);
      if (cost.mutations > 0 && !fits(next, this.#limits)) {
        await commitOrThrow(atomic);
        atomic = this.#kv.atomic();
        next = plus(emptyCost(), keys);
      }
      for (const [key] of keys) atomic.delete(key);
      cost = next;
    };
    const entries = this.#kv.list({ prefix: [DATA] }, {
      batchSize: LIST_BATCH_SIZE,
    });
    for await (const entry of entries) {
      const parts = partsOf(entry.key);
      const info = decodeInfo(bytesOf(entry.value, entry.key));
      const chunks = info.chunks;
      const entryKeyBytes = storedKey(keyOf(parts, info.tail ?? null))
        .keyBytes;
      // An entry goes with its chunk count, chunks and expiry record, so
      // that no entry outlives its chunks.
      const keys: [Deno.KvKey, number][] = [[entry.key, entryKeyBytes]];
      if (chunks > 0) keys.push([[LARGE, ...parts], entryKeyBytes]);
      if (info.expiresAt !== undefined) {
        keys.push([[EXPIRY, ...parts], entryKeyBytes]);
      }
      for (let i = 0; i < chunks; i++) {
        keys.push([
          [CHUNK, ...parts, i],
          entryKeyBytes + CHUNK_INDEX_BYTES,
        ]);
      }
      await remove(keys);
    }
    // Chunks and counts that no entry owned, which only another writer could
    // have left: normally one empty listing each.
    for (const prefix of [CHUNK, LARGE, EXPIRY]) {
      const orphans = this.#kv.list({ prefix: [prefix] }, {
        batchSize: LIST_BATCH_SIZE,
      });
      for await (const orphan of orphans) {
        await remove([[orphan.key, KV_MAX_KEY_BYTES]]);
      }
    }
    if (cost.mutations > 0) await commitOrThrow(atomic);
    this.#indexes.cleared();
  }

  /**
   * Iterates over every entry in byte order of keys, in chunks of at most
   * `chunkBytes` bytes of keys and values (a single larger entry travels
   * alone). Lists the store in batches, so memory stays flat however many
   * keys there are. Not a point-in-time snapshot: a write applied meanwhile
   * may or may not show, but every value is whole.
   *
   * @param options The chunk size.
   * @returns The chunks.
   * @example
   * ```ts
   * import { KvDatabase } from "./kv_database.ts";
   * await using db = await KvDatabase.open(":memory:");
   * for await (const chunk of db.snapshot({ chunkBytes: 65536 })) console.log(chunk.length);
   * ```
   */
  async *snapshot(options: SnapshotOptions): AsyncGenerator<SyncEntry[]> {
    let chunk: SyncEntry[] = [];
    let bytes = 0;
    const listing = listEntries(this.#kv, {
      start: new Uint8Array(0),
      end: null,
      batchSize: LIST_BATCH_SIZE,
    });
    for await (const listed of listing) {
      const { key } = listed;
      const stored = await listedValue(this.#kv, listed);
      // Deleted since the listing read it.
      if (stored === null) continue;
      const size = key.length + stored.value.length;
      if (chunk.length > 0 && bytes + size > options.chunkBytes) {
        yield chunk;
        chunk = [];
        bytes = 0;
      }
      chunk.push({ key, ...stored });
      bytes += size;
    }
    if (chunk.length > 0) yield chunk;
  }

  /**
   * Closes the Deno KV handle. Idempotent.
   *
   * @example
   * ```ts
   * import { KvDatabase } from "./kv_database.ts";
   * const db = await KvDatabase.open(":memory:");
   * await db.close();
   * await db.close();
   * ```
   */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#kv.close();
    }
    return Promise.resolve();
  }

  /**
   * Closes the database; for `await using`.
   *
   * @example
   * ```ts
   * import { KvDatabase } from "./kv_database.ts";
   * await using db = await KvDatabase.open(":memory:");
   * ```
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Commits a batch's pending operation, with the state when given. */
  async #commit(
    batch: Batch,
    state: DatabaseState | null,
    applied = 0,
  ): Promise<void> {
    if (batch.empty) return;
    const atomic = this.#kv.atomic();
    for (const plan of batch.plans()) {
      for (const [key, value] of plan.sets) atomic.set(key, value);
      for (const key of plan.deletes) atomic.delete(key);
    }
    let next: DatabaseState | null = null;
    if (state !== null) {
      next = { ...state, applied: Math.max(batch.lastVersion, applied) };
      atomic.set(STATE_KEY, encodeState(next));
    }
    try {
      await commitOrThrow(atomic);
    } catch (error) {
      // The commit may have happened all the same (a lost connection to a
      // remote store): keep every chunk it may have written on record, and
      // read the state afresh next time.
      batch.failed();
      this.#state = null;
      this.#indexes.dropExpiries();
      throw error;
    }
    batch.committed();
    if (next !== null) this.#state = next;
  }
}

/** Commits an atomic operation that has no checks, so cannot be refused. */
async function commitOrThrow(atomic: Deno.AtomicOperation): Promise<void> {
  const result = await atomic.commit();
  if (!result.ok) throw new Error("Deno KV refused an unchecked commit");
}
