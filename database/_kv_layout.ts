// The Deno KV backend's storage layout and Deno KV's own limits: namespaces,
// the entry header, chunking, records and the state. Pure; `_kv_key.ts` says
// where a key is stored, `kv_database.ts` holds the backend itself.
//
// Storage layout (all keys are Deno KV tuples; `k` stands for the parts a
// KVNDB key is stored under, below):
//
// - `["d", k]`: the entry of KVNDB key `k`. Its value is a `Uint8Array`
//   holding a header (a kind byte, the version as a big-endian u64, then the
//   expiry time as a u64 if kind has 2 added, then the key's tail, a u16
//   length and its bytes, if kind has 4 added) followed either by the value
//   itself (kind 0, values that keep the entry within 64 KiB) or by the
//   value's size as a u32 (kind 1).
// - `["c", k, i]`: chunk `i` of a kind 1 value, 64 KiB each, the last one
//   shorter. Chunks are only ever written in the same atomic operation as
//   their entry, so every chunk carries its entry's versionstamp; a reader
//   that sees matching versionstamps has a whole value.
// - `["l", k]`: the chunk count of a kind 1 value (one byte, then the key's
//   tail), present exactly when `["d", k]` is kind 1 and written with it.
//   Listed once, it tells `apply()` which keys hold chunks, so a write need
//   not read the entry it replaces to find the chunks to delete.
// - `["x", k]`: the expiry time of a key that has one (a big-endian u64 of
//   ms since the epoch, then the key's tail), written with its entry, whose
//   kind then has 2 added and whose header carries the same time. Reads take
//   the time from the entry; the records let the sweep and the node's
//   listings know every expiring key from one range, loaded once.
// - `["s"]`: the `DatabaseState` (`types.ts`): `complete` (1 byte), `applied`
//   (big-endian u64), then the cluster id.
//
// A key of up to 1,700 bytes is stored under one part, the key re-packed
// seven bits to a byte, each byte with its top bit set: Deno KV escapes
// every 0x00 byte of a `Uint8Array` key part into two bytes, so a key of
// zeros would soon pass its 2 KiB key limit; the packed form never contains
// 0x00, costs one byte in eight, and keeps byte order, so ranges of
// `["d", k]` list KVNDB keys in byte order. A longer key is stored under two
// parts, its packed first 1,700 bytes and the packed SHA-256 of the whole
// key, and the rest of it (the tail) is kept in its entry and records;
// listings sort the long keys that share their first 1,700 bytes, which Deno
// KV lists together in hash order (see `_kv_key.ts`).

import {
  DamagedDataError,
  MAX_KEY_SIZE,
  MAX_VALUE_SIZE,
} from "../protocol/mod.ts";
import {
  CHUNK_INDEX_BYTES,
  REPAIR,
  SHORT_KEY_MAX,
  storedKeyBytes,
} from "./_kv_key.ts";
import type { DatabaseState } from "./types.ts";

// Deno KV's limits, as measured on Deno 2.9.6 (the messages quoted are what it
// throws one past each limit). A KV Connect server applies the same defaults.

/** Bytes in one value: "Value too large (max 65536 bytes)". A `Uint8Array` is stored raw, so this is its length. */
export const KV_MAX_VALUE_BYTES = 65_536;
/** Bytes in one encoded key, for writes: "Key too large for write (max 2048 bytes)". */
export const KV_MAX_KEY_BYTES = 2_048;
/** Mutations in one atomic operation: "Too many mutations (max 1000)". */
export const KV_MAX_MUTATIONS = 1_000;
/**
 * Bytes in one atomic operation: "Total mutation size too large (max 819200
 * bytes)". A set counts its encoded key twice plus its value; a delete counts
 * its key once.
 */
export const KV_MAX_MUTATION_BYTES = 819_200;
/** Bytes of the keys of the sets in one atomic operation: "Total key size too large (max 81920 bytes)". Deletes do not count. */
export const KV_MAX_SET_KEY_BYTES = 81_920;
/** Keys in one `getMany`: "Too many ranges (max 10)". */
export const KV_MAX_GET_MANY = 10;
// Also measured, and the reason apply() and merge() use no versionstamp
// checks: "Too many checks (max 100)" would cap a group commit at 100 keys.

/** Bytes of the entry header: kind (1) and version (8). */
export const HEADER_BYTES = 9;
/** Bytes of the header of an entry that expires: the expiry time (8) follows. */
export const EXPIRING_HEADER_BYTES = 17;
/** Bytes in a chunk (the last one of a value may be shorter). */
export const CHUNK_BYTES = KV_MAX_VALUE_BYTES;
/** The entry kind of a value stored inline. */
export const KIND_INLINE = 0;
/** The entry kind of a value stored in chunks. */
export const KIND_CHUNKED = 1;
/** Added to the kind of an entry whose header carries an expiry time. */
export const KIND_EXPIRING = 2;
/** Added to the kind of a long key's entry, whose header ends with the key's tail (u16 length, bytes). */
export const KIND_LONG = 4;

/** The key part under which entries live. */
export const DATA = "d";
/** The key part under which chunks live. */
export const CHUNK = "c";
/** The key part under which the chunk counts of large values live. */
export const LARGE = "l";
/** The key part under which the expiry times of expiring keys live. */
export const EXPIRY = "x";
/** The key of the state. */
export const STATE_KEY: Deno.KvKey = ["s"];

/** Bytes of `["s"]`. */
export const STATE_KEY_BYTES = 3;
/** Bytes of the state before the cluster id: complete (1) and applied (8). */
export const STATE_HEADER_BYTES = 10 + 16;

// Every write must fit an atomic operation of its own, beside the state (its
// cluster id aside), or apply() could never commit it. The worst case, more
// than any one write needs: a maximal key, its entry, chunk count and chunks
// set, and as many chunks deleted; a long key's tail in the entry, the chunk
// count and the expiry record.
{
  const chunks = Math.ceil(MAX_VALUE_SIZE / CHUNK_BYTES);
  const entryKey = storedKeyBytes(MAX_KEY_SIZE);
  const chunkKey = entryKey + CHUNK_INDEX_BYTES;
  const tail = Math.max(0, MAX_KEY_SIZE - SHORT_KEY_MAX);
  // The entry, chunk count, expiry record and chunks set; the state.
  const setKeys = 3 * entryKey + chunks * chunkKey + STATE_KEY_BYTES;
  const bytes = 2 * setKeys + EXPIRING_HEADER_BYTES + 4 + 1 + 8 +
    3 * (2 + tail) + MAX_VALUE_SIZE + chunks * chunkKey + STATE_HEADER_BYTES;
  if (
    chunkKey > KV_MAX_KEY_BYTES || 1 + chunks > KV_MAX_GET_MANY ||
    4 + 2 * chunks > KV_MAX_MUTATIONS || setKeys > KV_MAX_SET_KEY_BYTES ||
    bytes > KV_MAX_MUTATION_BYTES ||
    EXPIRING_HEADER_BYTES + 2 + tail + 4 > KV_MAX_VALUE_BYTES
  ) {
    throw new Error("MAX_KEY_SIZE or MAX_VALUE_SIZE outgrew Deno KV's limits");
  }
}

/** What an entry says about the value stored under a key. */
export interface EntryInfo {
  /** The value's version. */
  version: number;
  /** How many chunks it has (0 when inline). */
  chunks: number;
  /** When it expires (ms since the epoch); absent when it does not. */
  expiresAt?: number;
  /** A long key's tail; absent for a short key. */
  tail?: Uint8Array;
  /** Bytes of its header: where an inline value or a chunked size starts. */
  header: number;
}

/** The header's size for an entry with or without an expiry, and with a long key's tail. */
export function headerBytes(
  expiresAt: number | undefined,
  tail: Uint8Array | null = null,
): number {
  return (expiresAt === undefined ? HEADER_BYTES : EXPIRING_HEADER_BYTES) +
    (tail === null ? 0 : 2 + tail.length);
}

/** The largest value stored inside its entry; larger ones go to chunks. */
export function inlineMaxBytes(
  expiresAt: number | undefined,
  tail: Uint8Array | null,
): number {
  return KV_MAX_VALUE_BYTES - headerBytes(expiresAt, tail);
}

function encodeHeader(
  out: Uint8Array,
  kind: number,
  version: number,
  expiresAt: number | undefined,
  tail: Uint8Array | null,
): DataView {
  const view = new DataView(out.buffer);
  view.setUint8(
    0,
    kind + (expiresAt === undefined ? 0 : KIND_EXPIRING) +
      (tail === null ? 0 : KIND_LONG),
  );
  view.setBigUint64(1, BigInt(version));
  let offset = HEADER_BYTES;
  if (expiresAt !== undefined) {
    view.setBigUint64(offset, BigInt(expiresAt));
    offset += 8;
  }
  if (tail !== null) {
    view.setUint16(offset, tail.length);
    out.set(tail, offset + 2);
  }
  return view;
}

/** Encodes the entry of a value stored inline: the header, then a copy of the value. */
export function encodeInlineEntry(
  version: number,
  value: Uint8Array,
  expiresAt?: number,
  tail: Uint8Array | null = null,
): Uint8Array {
  const header = headerBytes(expiresAt, tail);
  const out = new Uint8Array(header + value.length);
  encodeHeader(out, KIND_INLINE, version, expiresAt, tail);
  out.set(value, header);
  return out;
}

/** Encodes the entry of a value stored in chunks: the header, then the size. */
export function encodeChunkedEntry(
  version: number,
  size: number,
  expiresAt?: number,
  tail: Uint8Array | null = null,
): Uint8Array {
  const header = headerBytes(expiresAt, tail);
  const out = new Uint8Array(header + 4);
  encodeHeader(out, KIND_CHUNKED, version, expiresAt, tail).setUint32(
    header,
    size,
  );
  return out;
}

/** Reads an entry's version, chunk count, expiry and tail. */
export function decodeInfo(entry: Uint8Array): EntryInfo {
  const kind = entry[0] ?? -1;
  if (kind < 0 || kind > KIND_CHUNKED + KIND_EXPIRING + KIND_LONG) {
    throw new DamagedDataError(
      `Unknown KVNDB entry kind ${entry[0]} in Deno KV; ${REPAIR}`,
    );
  }
  const version = readU64(entry, 1);
  const expiring = (kind & KIND_EXPIRING) !== 0;
  let header = expiring ? EXPIRING_HEADER_BYTES : HEADER_BYTES;
  let tail: Uint8Array | undefined;
  if (kind & KIND_LONG) {
    const length = (entry[header]! << 8) | entry[header + 1]!;
    tail = entry.subarray(header + 2, header + 2 + length);
    header += 2 + length;
  }
  const chunks = (kind & KIND_CHUNKED) === KIND_INLINE
    ? 0
    : Math.ceil(readU32(entry, header) / CHUNK_BYTES);
  const info: EntryInfo = { version, chunks, header };
  if (expiring) info.expiresAt = readU64(entry, HEADER_BYTES);
  if (tail !== undefined) info.tail = tail;
  return info;
}

/** Encodes a record (`["l", …]`, `["x", …]`): its fixed bytes, then a long key's tail. */
export function encodeRecord(
  fixed: Uint8Array,
  tail: Uint8Array | null,
): Uint8Array {
  if (tail === null) return fixed;
  const out = new Uint8Array(fixed.length + tail.length);
  out.set(fixed);
  out.set(tail, fixed.length);
  return out;
}

/** The tail a record keeps past its `fixed` bytes, for a long key (two parts); `null` for a short one. */
export function recordTail(
  record: Uint8Array,
  fixed: number,
  parts: Uint8Array[],
): Uint8Array | null {
  return parts.length === 1 ? null : record.subarray(fixed);
}

/** Encodes the state: complete, applied, cluster id. */
export function encodeState(state: DatabaseState): Uint8Array {
  const idLength = state.nodeId.length;
  const out = new Uint8Array(10 + idLength + state.clusterId.length);
  const view = new DataView(out.buffer);
  view.setUint8(0, state.complete ? 1 : 0);
  view.setBigUint64(1, BigInt(state.applied));
  view.setUint8(9, idLength);
  out.set(state.nodeId, 10);
  out.set(state.clusterId, 10 + idLength);
  return out;
}

/** Decodes the state. */
export function decodeState(bytes: Uint8Array): DatabaseState {
  const idLength = bytes[9] ?? 0;
  return {
    complete: bytes[0] === 1,
    applied: readU64(bytes, 1),
    nodeId: bytes.slice(10, 10 + idLength),
    clusterId: bytes.slice(10 + idLength),
  };
}

/** Reads a big-endian u64 that fits a JavaScript number. */
export function readU64(bytes: Uint8Array, offset: number): number {
  return Number(
    new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
      .getBigUint64(offset),
  );
}

/** Reads a big-endian u32. */
export function readU32(bytes: Uint8Array, offset: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    .getUint32(offset);
}

/** Checks that a stored value is bytes, as everything KVNDB writes is. */
export function bytesOf(value: unknown, key: Deno.KvKey): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new DamagedDataError(
      `Deno KV entry ${
        Deno.inspect(key)
      } is not KVNDB data (not bytes); ${REPAIR}`,
    );
  }
  return value;
}
