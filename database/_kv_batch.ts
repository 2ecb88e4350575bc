// The Deno KV backend's write batcher: writes grouped into one atomic
// operation at a time within Deno KV's per-operation limits, one plan of sets
// and deletes per key. `kv_database.ts` commits the batches.

import {
  atomicWriteCost,
  MAX_ATOMIC_MUTATIONS,
  MAX_ATOMIC_SET_KEY_BYTES,
  MAX_ATOMIC_WRITE_BYTES,
} from "../protocol/mod.ts";
import {
  CHUNK,
  CHUNK_BYTES,
  DATA,
  encodeChunkedEntry,
  encodeInlineEntry,
  encodeRecord,
  EXPIRY,
  inlineMaxBytes,
  KV_MAX_MUTATION_BYTES,
  KV_MAX_MUTATIONS,
  KV_MAX_SET_KEY_BYTES,
  KV_MAX_VALUE_BYTES,
  LARGE,
  STATE_KEY_BYTES,
} from "./_kv_layout.ts";
import { CHUNK_INDEX_BYTES, type StoredKey } from "./_kv_key.ts";
import { toBinary } from "./_binary_key.ts";
import type { ExpiryIndex } from "./_expiry.ts";

/** The mutations that store (or delete) one key, and what they cost. */
export interface KeyPlan {
  /** Sets, in order. */
  sets: [Deno.KvKey, Uint8Array][];
  /** Deletes. */
  deletes: Deno.KvKey[];
  /** The chunks the key has once committed. */
  chunks: number;
  /** The version the key has once committed; `null` once deleted. */
  version: number | null;
  /** Its expiry once committed; `undefined` when none. */
  expiresAt: number | undefined;
  /** Its cost against the per-operation limits. */
  cost: Cost;
}

/**
 * A cost against the per-operation limits: as Deno KV counts it, and as a
 * KVNDB router behind a KV Connect URL estimates it (`atomicWriteCost`, each
 * mutation a step on the Deno KV key, whatever that key held before), which
 * is more for long keys.
 */
export interface Cost {
  /** Mutations. */
  mutations: number;
  /** Bytes, counted as Deno KV counts them. */
  bytes: number;
  /** Bytes of the keys of sets. */
  setKeyBytes: number;
  /** Mutations a KVNDB router estimates. */
  estimatedMutations: number;
  /** Bytes a KVNDB router estimates. */
  estimatedBytes: number;
  /** Bytes of keys set a KVNDB router estimates. */
  estimatedSetKeyBytes: number;
}

/** The sum of two costs. */
export function addCost(a: Cost, b: Cost): Cost {
  return shift(a, emptyCost(), b);
}

/** `total`, less `minus`, plus `plus`, field by field. */
function shift(total: Cost, minus: Cost, plus: Cost): Cost {
  const out = { ...total };
  for (const field of Object.keys(out) as (keyof Cost)[]) {
    out[field] += plus[field] - minus[field];
  }
  return out;
}

/** One key of a batch: where it is stored and what the store holds for it. */
export interface KeyState {
  /** Where the key is stored. */
  stored: StoredKey;
  /** How many chunks the store may hold for it (an overstatement is harmless). */
  chunks: number;
  /** The stored version; `null` when absent, or unknown to `apply()`, which needs none. */
  version: number | null;
  /** Whether the store may hold an expiry record for it (an overstatement is harmless). */
  expiring: boolean;
}

/**
 * Writes grouped into one pending atomic operation at a time, one plan per
 * key: a later write to a key replaces the earlier one's plan, since only the
 * last one's result survives the operation anyway.
 */
export class Batch {
  #keys: Map<string, KeyState>;
  #large: Map<string, number>;
  #expiries: ExpiryIndex;
  #reserved: Cost;
  #limits: CommitLimits;
  #pending = new Map<string, KeyPlan>();
  #cost: Cost;
  #lastVersion = 0;

  /**
   * @param keys Every key the batch will write, with what the store holds.
   * @param large The database's map of chunk counts, kept up to date.
   * @param expiries The database's expiry times, kept up to date.
   * @param reserved What each operation needs beside the writes (the state).
   * @param limits What one commit may hold: Deno KV's own by default.
   */
  constructor(
    keys: Map<string, KeyState>,
    large: Map<string, number>,
    expiries: ExpiryIndex,
    reserved: Cost,
    limits: CommitLimits = DENO_KV_LIMITS,
  ) {
    this.#limits = limits;
    this.#keys = keys;
    this.#large = large;
    this.#expiries = expiries;
    this.#reserved = reserved;
    this.#cost = { ...reserved };
  }

  get empty(): boolean {
    return this.#pending.size === 0;
  }

  /** The version (or `seq`) of the last write added since the last commit. */
  get lastVersion(): number {
    return this.#lastVersion;
  }

  /** The version a key has once the pending operation commits. */
  version(key: Uint8Array): number | null {
    const id = toBinary(key);
    return (this.#pending.get(id) ?? this.#keys.get(id)!).version;
  }

  /**
   * Plans a write into the pending operation; `false` when it would break a
   * limit, and the operation must be committed first.
   */
  add(
    key: Uint8Array,
    value: Uint8Array | null,
    version: number,
    expiresAt?: number,
  ): boolean {
    const id = toBinary(key);
    const plan = planWrite(this.#keys.get(id)!, value, version, expiresAt);
    const replaced = this.#pending.get(id)?.cost ?? emptyCost();
    const cost = shift(this.#cost, replaced, plan.cost);
    if (!fits(cost, this.#limitsNow())) return false;
    this.#pending.set(id, plan);
    this.#cost = cost;
    this.#lastVersion = version;
    return true;
  }

  /**
   * Plans writes of distinct keys that must commit together (an atomic
   * operation's effects); `false`, with nothing planned, when they would
   * break a limit on top of what is pending.
   */
  addAll(
    writes: { key: Uint8Array; value: Uint8Array | null; expiresAt?: number }[],
    version: number,
  ): boolean {
    let cost = this.#cost;
    const plans: [string, KeyPlan][] = [];
    for (const { key, value, expiresAt } of writes) {
      const id = toBinary(key);
      const plan = planWrite(
        this.#keys.get(id)!,
        value,
        version,
        expiresAt,
      );
      const replaced = this.#pending.get(id)?.cost ?? emptyCost();
      cost = shift(cost, replaced, plan.cost);
      plans.push([id, plan]);
    }
    if (!fits(cost, this.#limitsNow())) return false;
    for (const [id, plan] of plans) this.#pending.set(id, plan);
    this.#cost = cost;
    this.#lastVersion = version;
    return true;
  }

  plans(): IterableIterator<KeyPlan> {
    return this.#pending.values();
  }

  /** Records the pending operation as committed and starts a new one. */
  committed(): void {
    for (const [id, plan] of this.#pending) {
      const state = this.#keys.get(id)!;
      state.chunks = plan.chunks;
      state.version = plan.version;
      state.expiring = plan.expiresAt !== undefined;
      if (plan.chunks > 0) this.#large.set(id, plan.chunks);
      else this.#large.delete(id);
      this.#expiries.set(id, plan.expiresAt);
    }
    this.#reset();
  }

  /** Records that the pending operation may or may not have committed. */
  failed(): void {
    for (const [id, plan] of this.#pending) {
      const state = this.#keys.get(id)!;
      state.chunks = Math.max(state.chunks, plan.chunks);
      if (state.chunks > 0) this.#large.set(id, state.chunks);
      if (plan.expiresAt !== undefined) state.expiring = true;
    }
    this.#reset();
  }

  /**
   * The limits for what is added next. A router's estimate assumes the worst
   * of what each key held, and one atomic operation's writes cannot be
   * split: into an empty batch they go whatever the estimate, to be judged
   * by the router itself.
   */
  #limitsNow(): CommitLimits {
    return this.empty && this.#limits.routerEstimate
      ? { ...this.#limits, routerEstimate: false }
      : this.#limits;
  }

  #reset(): void {
    this.#pending.clear();
    this.#cost = { ...this.#reserved };
  }
}

/** The cost of nothing. */
export function emptyCost(): Cost {
  return {
    mutations: 0,
    bytes: 0,
    setKeyBytes: 0,
    estimatedMutations: 0,
    estimatedBytes: 0,
    estimatedSetKeyBytes: 0,
  };
}

/** The cost of a set of a key of `keyBytes` to a value of `valueBytes`. */
function setCost(keyBytes: number, valueBytes: number): Cost {
  // A KVNDB router's KV Connect front end stores a value with a tag byte.
  const estimate = atomicWriteCost(
    keyBytes,
    KV_MAX_VALUE_BYTES + 1,
    valueBytes + 1,
  );
  return {
    mutations: 1,
    bytes: 2 * keyBytes + valueBytes,
    setKeyBytes: keyBytes,
    estimatedMutations: estimate.mutations,
    estimatedBytes: estimate.bytes,
    estimatedSetKeyBytes: estimate.setKeyBytes,
  };
}

/** The cost of a delete of a key of `keyBytes`. */
export function deleteCost(keyBytes: number): Cost {
  const estimate = atomicWriteCost(keyBytes, KV_MAX_VALUE_BYTES + 1, null);
  return {
    mutations: 1,
    bytes: keyBytes,
    setKeyBytes: 0,
    estimatedMutations: estimate.mutations,
    estimatedBytes: estimate.bytes,
    estimatedSetKeyBytes: estimate.setKeyBytes,
  };
}

/** The cost of storing the state record (`["s"]`) of `stateBytes`. */
export function stateCost(stateBytes: number): Cost {
  return setCost(STATE_KEY_BYTES, stateBytes);
}

/** What one commit may hold. */
export interface CommitLimits {
  /** Mutations, as Deno KV counts them. */
  mutations: number;
  /** Bytes, as Deno KV counts them. */
  bytes: number;
  /** Whether a KVNDB router's estimate must stay within its limits too. */
  routerEstimate: boolean;
}

/** Deno KV's own limits. */
export const DENO_KV_LIMITS: CommitLimits = {
  mutations: KV_MAX_MUTATIONS,
  bytes: KV_MAX_MUTATION_BYTES,
  routerEstimate: false,
};

/**
 * What a remote store may be sent in one commit: a KV Connect server may be
 * a KVNDB router, whose atomic writes hold at most 128 mutations (its
 * atomic operations' steps) and which refuses an operation whose cost it
 * estimates over its limits (MAX_ATOMIC_WRITE_BYTES and the rest).
 */
export const REMOTE_LIMITS: CommitLimits = {
  mutations: 120,
  bytes: 600 * 1024,
  routerEstimate: true,
};

/** Whether an atomic operation of this cost stays within the limits. */
export function fits(
  cost: Cost,
  limits: CommitLimits = DENO_KV_LIMITS,
): boolean {
  return cost.mutations <= limits.mutations &&
    cost.bytes <= limits.bytes &&
    cost.setKeyBytes <= KV_MAX_SET_KEY_BYTES &&
    (!limits.routerEstimate || (
      cost.estimatedMutations <= MAX_ATOMIC_MUTATIONS &&
      cost.estimatedBytes <= MAX_ATOMIC_WRITE_BYTES &&
      cost.estimatedSetKeyBytes <= MAX_ATOMIC_SET_KEY_BYTES
    ));
}

/**
 * Plans the mutations that leave `value` (or nothing) under a key: its entry,
 * its chunks and chunk count, and deletes for the chunks (and count) of the
 * stored value that it does not overwrite.
 */
export function planWrite(
  state: KeyState,
  value: Uint8Array | null,
  version: number,
  expiresAt?: number,
): KeyPlan {
  const { parts, keyBytes: entryKeyBytes, tail } = state.stored;
  const entryKey: Deno.KvKey = [DATA, ...parts];
  const largeKey: Deno.KvKey = [LARGE, ...parts];
  const expiryKey: Deno.KvKey = [EXPIRY, ...parts];
  if (value === null) expiresAt = undefined;
  const chunkKeyBytes = entryKeyBytes + CHUNK_INDEX_BYTES;
  const plan: KeyPlan = {
    sets: [],
    deletes: [],
    chunks: 0,
    version: value === null ? null : version,
    expiresAt,
    cost: emptyCost(),
  };
  const set = (key: Deno.KvKey, keyBytes: number, bytes: Uint8Array) => {
    plan.sets.push([key, bytes]);
    plan.cost = shift(plan.cost, emptyCost(), setCost(keyBytes, bytes.length));
  };
  const remove = (key: Deno.KvKey, keyBytes: number) => {
    plan.deletes.push(key);
    plan.cost = shift(plan.cost, emptyCost(), deleteCost(keyBytes));
  };
  if (value === null) {
    remove(entryKey, entryKeyBytes);
  } else if (value.length <= inlineMaxBytes(expiresAt, tail)) {
    set(
      entryKey,
      entryKeyBytes,
      encodeInlineEntry(version, value, expiresAt, tail),
    );
  } else {
    plan.chunks = Math.ceil(value.length / CHUNK_BYTES);
    set(
      entryKey,
      entryKeyBytes,
      encodeChunkedEntry(version, value.length, expiresAt, tail),
    );
    set(
      largeKey,
      entryKeyBytes,
      encodeRecord(new Uint8Array([plan.chunks]), tail),
    );
    for (let i = 0; i < plan.chunks; i++) {
      // A copy: the caller's buffer may change before the commit.
      const chunk = value.slice(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES);
      set([CHUNK, ...parts, i], chunkKeyBytes, chunk);
    }
  }
  // The expiry record, which lists expiring keys in one range for the sweep.
  if (expiresAt !== undefined) {
    const time = new Uint8Array(8);
    new DataView(time.buffer).setBigUint64(0, BigInt(expiresAt));
    set(expiryKey, entryKeyBytes, encodeRecord(time, tail));
  } else if (state.expiring) remove(expiryKey, entryKeyBytes);
  if (plan.chunks === 0 && state.chunks > 0) remove(largeKey, entryKeyBytes);
  for (let i = plan.chunks; i < state.chunks; i++) {
    remove([CHUNK, ...parts, i], chunkKeyBytes);
  }
  return plan;
}
