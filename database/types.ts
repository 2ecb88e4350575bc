/**
 * The `Database` interface every backend implements, so that new backends
 * slot in beside `memory` and `kv`. The node (`node.ts`) drives it: it applies
 * writes strictly in sequence order and never calls two methods at once.
 *
 * @module
 */

import type { Entries, SyncEntry, Write } from "../protocol/mod.ts";

/** A stored value and its version (the sequence number of the write that stored it). */
export interface StoredEntry {
  /** The value. */
  value: Uint8Array;
  /** The version. */
  version: number;
  /**
   * When it expires, in ms since the epoch; absent when it does not. A
   * backend returns the entry as stored, expired or not: the node judges.
   */
  expiresAt?: number;
}

/** Where a database stands in the cluster's write stream. Persisted with the data. */
export interface DatabaseState {
  /** The cluster the data belongs to; empty before the first join. */
  clusterId: Uint8Array;
  /**
   * This database's own id: random, made when the store is created, kept as
   * long as the store. The router remembers which ids were ready.
   */
  nodeId: Uint8Array;
  /** The highest sequence number applied. */
  applied: number;
  /** `false` while a full sync is under way: the data is then partial. */
  complete: boolean;
}

/** Options for {@linkcode Database.keys}. */
export interface KeysQuery {
  /** Only keys that start with these bytes. */
  prefix: Uint8Array;
  /** Only keys strictly after this one in byte order; empty to start at the beginning. */
  after: Uint8Array;
  /** The most keys to return. */
  limit: number;
  /** Stop once the keys returned add up to this many bytes. */
  maxBytes: number;
  /** Leave out keys that have expired at this time (ms since the epoch). */
  now?: number;
}

/** Options for {@linkcode Database.range}. */
export interface RangeQuery {
  /** The first key, inclusive; empty for the first key there is. */
  start: Uint8Array;
  /** The key after the last, exclusive; empty for no end. */
  end: Uint8Array;
  /** The most entries. */
  limit: number;
  /** From the end backwards. */
  reverse: boolean;
  /** Stop once keys and values add up to this many bytes (`more` is then set). */
  maxBytes: number;
  /** Leave out entries expired at this time (ms since the epoch). */
  now?: number;
}

/** Options for {@linkcode Database.snapshot}. */
export interface SnapshotOptions {
  /** Bytes of keys and values a chunk may hold, at most (one entry may exceed it alone). */
  chunkBytes: number;
}

/**
 * A storage backend for a database node.
 *
 * Conventions: keys compare in byte order; every key is 1 to MAX_KEY_SIZE
 * bytes; values are 0 to MAX_VALUE_SIZE bytes. Inputs may be views into
 * network buffers: a backend that keeps them must copy them.
 *
 * @example A backend in use
 * ```ts
 * import { MemoryDatabase } from "./memory_database.ts";
 * const db: import("./types.ts").Database = new MemoryDatabase();
 * await db.apply([{ seq: 1, op: 1, key: new Uint8Array([97]), value: new Uint8Array([49]) }]);
 * console.log((await db.get(new Uint8Array([97])))?.version); // 1
 * await db.close();
 * ```
 */
export interface Database extends AsyncDisposable {
  /** The backend's name, such as `memory` or `kv`. */
  readonly kind: string;

  /**
   * Whether the data dies with the process (memory, or Deno KV on
   * `:memory:`): the router need not wait for such a database to come back.
   */
  readonly volatile: boolean;

  /** Reads the persisted state. */
  state(): Promise<DatabaseState>;

  /** Replaces the persisted state (cluster id, applied, complete). */
  setState(state: DatabaseState): Promise<void>;

  /** Reads one key. */
  get(key: Uint8Array): Promise<StoredEntry | null>;

  /**
   * Reads one key at once, for a backend that needs no I/O to do it (memory):
   * the node then answers a read in the turn it arrives, without queueing it.
   */
  getNow?(key: Uint8Array): StoredEntry | null;

  /**
   * Applies writes, in the order given (ascending `seq`), and sets `applied`
   * to the last one's `seq`, all in one atomic step where the backend can.
   * Consecutive writes that share a `seq` (of distinct keys) are one atomic
   * operation's effects: a backend that splits a batch into several commits
   * must keep them in one. `applied`, when given, is where `applied` ends,
   * at or above the last write's `seq` (atomic operations that wrote nothing
   * move it too, with no write of their own; `writes` may then be empty).
   * Resolves once the writes are durable (for a persistent backend).
   */
  apply(writes: Write[], applied?: number): Promise<void>;

  /**
   * Stores snapshot entries from a sync, each only where the key is absent or
   * holds an older version. Does not change `applied`.
   */
  merge(entries: SyncEntry[]): Promise<void>;

  /** Lists keys in byte order. */
  keys(query: KeysQuery): Promise<Uint8Array[]>;

  /** Reads the entries of a key range, forwards or backwards. */
  range(query: RangeQuery): Promise<Entries>;

  /** Counts the keys; with `now`, those not expired at that time. */
  count(now?: number): Promise<number>;

  /**
   * Lists up to `limit` keys that have expired at `now` and are still
   * stored, earliest expiry first, for the router's sweep to delete.
   */
  expired(now: number, limit: number): Promise<Uint8Array[]>;

  /** Removes every key. Leaves the state as it is. */
  clear(): Promise<void>;

  /**
   * Iterates over every entry in byte order of keys, in chunks. Need not be a
   * point-in-time snapshot: writes applied meanwhile may or may not show.
   */
  snapshot(options: SnapshotOptions): AsyncIterable<SyncEntry[]>;

  /** Closes the backend. Idempotent. */
  close(): Promise<void>;
}
