// Reads of the Deno KV backend's layout: listings in KVNDB's byte order, a
// value from its entry (and its chunks), and the version and chunk count
// stored under keys, in windows of concurrent reads.

import { DamagedDataError } from "../protocol/mod.ts";
import { toBinary } from "./_binary_key.ts";
import type { KeyState } from "./_kv_batch.ts";
import {
  bytesOf,
  CHUNK,
  CHUNK_BYTES,
  DATA,
  decodeInfo,
  KV_MAX_GET_MANY,
  readU32,
} from "./_kv_layout.ts";
import {
  compareBytes,
  keyOf,
  lowerBound,
  partsOf,
  REPAIR,
  storedKey,
  upperBound,
} from "./_kv_key.ts";
import type { StoredEntry } from "./types.ts";

/**
 * `getMany` calls in flight at once while `merge()` reads the entries it may
 * replace. Measured on a local file: 16 reads 1000 entries in 14 ms, one at a
 * time in 30 ms, 100 at a time no faster.
 */
const READ_CONCURRENCY = 16;

/** An entry listed from `["d", …]`, with the KVNDB key it is stored for. */
export interface ListedEntry {
  /** The KVNDB key. */
  key: Uint8Array;
  /** The parts it is stored under. */
  parts: Uint8Array[];
  /**
   * The Deno KV entry; `null` for a long key's, whose value the listing let
   * go while it sorted the key's bucket: {@linkcode listedValue} reads it.
   */
  entry: Deno.KvEntry<unknown> | null;
}

/**
 * Lists the entries of the KVNDB keys from `start` (inclusive) to `end`
 * (exclusive; `null` for no end), in byte order of keys, or the reverse. Deno
 * KV lists a bucket of long keys sharing a head in hash order (`_kv_key.ts`):
 * each bucket is read whole and sorted, so a listing holds the keys of one
 * bucket beside its batch (not their values, which are read again when
 * wanted). The caller stops the listing when it has enough: this passes no
 * limit to Deno KV, which could cut a bucket.
 */
export async function* listEntries(
  kv: Deno.Kv,
  range: {
    start: Uint8Array;
    end: Uint8Array | null;
    reverse?: boolean;
    batchSize: number;
  },
): AsyncGenerator<ListedEntry> {
  const { start, end } = range;
  const reverse = range.reverse ?? false;
  const iterator = kv.list(selector(start, end), {
    reverse,
    batchSize: range.batchSize,
  });
  const inRange = (key: Uint8Array) =>
    compareBytes(key, start) >= 0 &&
    (end === null || compareBytes(key, end) < 0);
  let bucket: ListedEntry[] = [];
  function* flush(): Generator<ListedEntry> {
    bucket.sort((a, b) =>
      reverse ? compareBytes(b.key, a.key) : compareBytes(a.key, b.key)
    );
    for (const listed of bucket) if (inRange(listed.key)) yield listed;
    bucket = [];
  }
  for await (const entry of iterator) {
    const parts = partsOf(entry.key);
    const { tail } = decodeInfo(bytesOf(entry.value, entry.key));
    const key = keyOf(parts, tail ?? null);
    if (
      bucket.length > 0 &&
      (parts.length === 1 || compareBytes(parts[0]!, bucket[0]!.parts[0]!))
    ) yield* flush();
    // Neither the entry nor its tail (a view of its value) is kept in a
    // bucket, so a bucket's values never pile up in memory.
    if (parts.length === 2) bucket.push({ key, parts, entry: null });
    else if (inRange(key)) yield { key, parts, entry };
  }
  yield* flush();
}

/** The selector of the entries of keys from `start` (inclusive) to `end` (exclusive, or the last key), and maybe a few more around them. */
function selector(
  start: Uint8Array,
  end: Uint8Array | null,
): Deno.KvListSelector {
  if (end !== null) {
    return {
      start: [DATA, ...lowerBound(start)],
      end: [DATA, ...upperBound(end)],
    };
  }
  if (start.length > 0) {
    return { prefix: [DATA], start: [DATA, ...lowerBound(start)] };
  }
  return { prefix: [DATA] };
}

/** The value of a listed entry, read again if the listing let it go; `null` once deleted. */
export async function listedValue(
  kv: Deno.Kv,
  listed: ListedEntry,
): Promise<StoredEntry | null> {
  const entry = listed.entry ?? await kv.get([DATA, ...listed.parts]);
  return await readValue(kv, listed.parts, entry);
}

/**
 * Turns an entry read from `["d", ...parts]` into the value it describes,
 * fetching its chunks if it has any.
 */
export async function readValue(
  kv: Deno.Kv,
  parts: Uint8Array[],
  entry: Deno.KvEntryMaybe<unknown>,
): Promise<StoredEntry | null> {
  while (true) {
    if (entry.value === null) return null;
    const bytes = bytesOf(entry.value, entry.key);
    const { version, chunks, header, expiresAt } = decodeInfo(bytes);
    if (chunks === 0) {
      const value = bytes.subarray(header);
      return expiresAt === undefined
        ? { value, version }
        : { value, version, expiresAt };
    }
    const size = readU32(bytes, header);
    // One getMany is one snapshot read; the versionstamps prove it anyway,
    // since a value's chunks commit with its entry and no other way.
    const keys: Deno.KvKey[] = [[DATA, ...parts]];
    for (let i = 0; i < chunks; i++) keys.push([CHUNK, ...parts, i]);
    const [again, ...pieces] = await kv.getMany<unknown[]>(keys);
    if (again!.versionstamp !== entry.versionstamp) {
      // Rewritten between the two reads: start over from the new entry.
      entry = again!;
      continue;
    }
    const value = new Uint8Array(size);
    let offset = 0;
    for (const [i, part] of pieces.entries()) {
      const chunk = part.versionstamp === entry.versionstamp
        ? bytesOf(part.value, part.key)
        : null;
      // The entry stood still, so its chunks did too: a mismatch means the
      // store was changed behind KVNDB's back.
      if (chunk?.length !== Math.min(CHUNK_BYTES, size - offset)) {
        throw new DamagedDataError(
          `Chunk ${i} of a value of ${size} bytes is missing or stale in Deno KV; ${REPAIR}`,
        );
      }
      value.set(chunk, offset);
      offset += chunk.length;
    }
    return expiresAt === undefined
      ? { value, version }
      : { value, version, expiresAt };
  }
}

/**
 * Reads the version and chunk count stored under each key, ten keys a
 * round trip, for `merge()`.
 */
export async function readInfo(
  kv: Deno.Kv,
  keys: Uint8Array[],
  large: Map<string, number>,
  expiries: { get(id: string): number | undefined },
): Promise<Map<string, KeyState>> {
  const states = new Map<string, KeyState>();
  for (const key of keys) {
    const id = toBinary(key);
    if (!states.has(id)) {
      // Chunks the map knows of stay in the count, even if the entry
      // disowns them, so that they get deleted.
      states.set(id, {
        stored: storedKey(key),
        chunks: large.get(id) ?? 0,
        version: null,
        expiring: expiries.get(id) !== undefined,
      });
    }
  }
  const all = [...states.values()];
  const groups: KeyState[][] = [];
  for (let i = 0; i < all.length; i += KV_MAX_GET_MANY) {
    groups.push(all.slice(i, i + KV_MAX_GET_MANY));
  }
  // A window of reads at a time keeps at most that many entries' values
  // (up to 64 KiB each) in memory, whatever the batch's size.
  for (let i = 0; i < groups.length; i += READ_CONCURRENCY) {
    await Promise.all(
      groups.slice(i, i + READ_CONCURRENCY).map(async (group) => {
        const entries = await kv.getMany<unknown[]>(
          group.map((s) => [DATA, ...s.stored.parts]),
        );
        entries.forEach((entry, j) => {
          if (entry.value === null) return;
          const info = decodeInfo(bytesOf(entry.value, entry.key));
          const state = group[j]!;
          state.version = info.version;
          state.chunks = Math.max(state.chunks, info.chunks);
          if (info.expiresAt !== undefined) state.expiring = true;
        });
      }),
    );
  }
  return states;
}
