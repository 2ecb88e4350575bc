// The Deno KV backend's storage layout and Deno KV's own limits: key parts,
// the entry header, chunking, the state record, and the packed key encoding
// that keeps byte order. Pure; `kv_database.ts` holds the backend itself.
// The layout is described at the top of `kv_database.ts`.

import { MAX_KEY_SIZE, MAX_VALUE_SIZE } from "../protocol/mod.ts";
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
/** The largest value stored inside its entry; larger ones go to chunks. */
export const INLINE_MAX_BYTES = KV_MAX_VALUE_BYTES - HEADER_BYTES;
/** The same for a value that expires, whose header is longer. */
export const EXPIRING_INLINE_MAX_BYTES = KV_MAX_VALUE_BYTES -
  EXPIRING_HEADER_BYTES;
/** Bytes in a chunk (the last one of a value may be shorter). */
export const CHUNK_BYTES = KV_MAX_VALUE_BYTES;
/** The entry kind of a value stored inline. */
export const KIND_INLINE = 0;
/** The entry kind of a value stored in chunks. */
export const KIND_CHUNKED = 1;
/** Added to the kind of an entry whose header carries an expiry time. */
export const KIND_EXPIRING = 2;

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

// Encoded sizes of our keys, for the per-operation budgets. Deno KV encodes a
// string part as 0x02, its bytes, 0x00; a byte part as 0x01, its bytes (0x00
// escaped, which a packed key never contains), 0x00; a number as 0x21 and 8
// bytes.
/** Bytes of `["d", k]` (and of `["l", k]`) beyond the packed key's own. */
export const ENTRY_KEY_OVERHEAD = 3 + 2;
/** Bytes of `["c", k, i]` beyond the packed key's own. */
export const CHUNK_KEY_OVERHEAD = 3 + 2 + 9;
/** Bytes of `["s"]`. */
export const STATE_KEY_BYTES = 3;
/** Bytes of the state before the cluster id: complete (1) and applied (8). */
export const STATE_HEADER_BYTES = 10 + 16;

// Every write must fit an atomic operation of its own, beside the state (its
// cluster id aside), or apply() could never commit it. The worst case, more
// than any one write needs: a maximal key, its entry, chunk count and chunks
// set, and as many chunks deleted.
{
  const packed = Math.ceil(MAX_KEY_SIZE * 8 / 7);
  const chunks = Math.ceil(MAX_VALUE_SIZE / CHUNK_BYTES);
  const entryKey = packed + ENTRY_KEY_OVERHEAD;
  const chunkKey = packed + CHUNK_KEY_OVERHEAD;
  // The entry, chunk count, expiry record and chunks set; the state.
  const setKeys = 3 * entryKey + chunks * chunkKey + STATE_KEY_BYTES;
  const bytes = 2 * setKeys + EXPIRING_HEADER_BYTES + 4 + 1 + 8 +
    MAX_VALUE_SIZE + chunks * chunkKey + STATE_HEADER_BYTES;
  if (
    chunkKey > KV_MAX_KEY_BYTES || 1 + chunks > KV_MAX_GET_MANY ||
    4 + 2 * chunks > KV_MAX_MUTATIONS || setKeys > KV_MAX_SET_KEY_BYTES ||
    bytes > KV_MAX_MUTATION_BYTES
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
  /** Bytes of its header: where an inline value or a chunked size starts. */
  header: number;
}

function encodeHeader(
  out: Uint8Array,
  kind: number,
  version: number,
  expiresAt: number | undefined,
): DataView {
  const view = new DataView(out.buffer);
  view.setUint8(0, kind + (expiresAt === undefined ? 0 : KIND_EXPIRING));
  view.setBigUint64(1, BigInt(version));
  if (expiresAt !== undefined) view.setBigUint64(9, BigInt(expiresAt));
  return view;
}

/** The header's size for an entry with or without an expiry. */
export function headerBytes(expiresAt: number | undefined): number {
  return expiresAt === undefined ? HEADER_BYTES : EXPIRING_HEADER_BYTES;
}

/** Encodes the entry of a value stored inline: the header, then a copy of the value. */
export function encodeInlineEntry(
  version: number,
  value: Uint8Array,
  expiresAt?: number,
): Uint8Array {
  const header = headerBytes(expiresAt);
  const out = new Uint8Array(header + value.length);
  encodeHeader(out, KIND_INLINE, version, expiresAt);
  out.set(value, header);
  return out;
}

/** Encodes the entry of a value stored in chunks: the header, then the size. */
export function encodeChunkedEntry(
  version: number,
  size: number,
  expiresAt?: number,
): Uint8Array {
  const header = headerBytes(expiresAt);
  const out = new Uint8Array(header + 4);
  encodeHeader(out, KIND_CHUNKED, version, expiresAt).setUint32(header, size);
  return out;
}

/** Reads an entry's version, chunk count and expiry. */
export function decodeInfo(entry: Uint8Array): EntryInfo {
  const kind = entry[0] ?? -1;
  if (kind < 0 || kind > KIND_CHUNKED + KIND_EXPIRING) {
    throw new Error(`Unknown KVNDB entry kind ${entry[0]} in Deno KV`);
  }
  const version = readU64(entry, 1);
  const expiring = kind >= KIND_EXPIRING;
  const header = expiring ? EXPIRING_HEADER_BYTES : HEADER_BYTES;
  const chunks = kind - (expiring ? KIND_EXPIRING : 0) === KIND_INLINE
    ? 0
    : Math.ceil(readU32(entry, header) / CHUNK_BYTES);
  return expiring
    ? { version, chunks, header, expiresAt: readU64(entry, HEADER_BYTES) }
    : { version, chunks, header };
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
    throw new Error(
      `Deno KV entry ${Deno.inspect(key)} is not KVNDB data (not bytes)`,
    );
  }
  return value;
}

/** Takes the packed key out of `["d", packed]`. */
export function packedKeyOf(key: Deno.KvKey): Uint8Array {
  const part = key[1];
  if (!(part instanceof Uint8Array)) {
    throw new Error(`Deno KV key ${Deno.inspect(key)} is not a KVNDB key`);
  }
  return part;
}

/**
 * Packs key bytes seven bits to a byte, each with its top bit set: no byte is
 * 0x00 (which Deno KV would escape into two), and byte order is kept, since
 * the packed bits are the key's bits in order, padded with zeros. The length
 * is ⌈8n/7⌉, which grows strictly with n, so the key's length can be
 * recovered.
 */
export function encodeKey(key: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(key.length * 8 / 7));
  let bits = 0;
  let pending = 0;
  let o = 0;
  for (const byte of key) {
    pending = (pending << 8) | byte;
    bits += 8;
    while (bits >= 7) {
      bits -= 7;
      out[o++] = 0x80 | ((pending >>> bits) & 0x7f);
    }
    pending &= (1 << bits) - 1;
  }
  if (bits > 0) out[o] = 0x80 | ((pending << (7 - bits)) & 0x7f);
  return out;
}

/** Unpacks a key packed by {@linkcode encodeKey}. */
export function decodeKey(packed: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.floor(packed.length * 7 / 8));
  let bits = 0;
  let pending = 0;
  let o = 0;
  for (const byte of packed) {
    pending = (pending << 7) | (byte & 0x7f);
    bits += 7;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (pending >>> bits) & 0xff;
      pending &= (1 << bits) - 1;
    }
  }
  return out;
}

/** The selector for packed keys from `start` (inclusive) to `end` (exclusive, or the last key). */
export function selector(
  start: Uint8Array,
  end: Uint8Array | null,
): Deno.KvListSelector {
  if (end !== null) return { start: [DATA, start], end: [DATA, end] };
  if (start.length > 0) return { prefix: [DATA], start: [DATA, start] };
  return { prefix: [DATA] };
}

/** The least key greater than every key that starts with `prefix`; `null` when there is none. */
export function successor(prefix: Uint8Array): Uint8Array | null {
  let end = prefix.length;
  while (end > 0 && prefix[end - 1] === 0xff) end--;
  if (end === 0) return null;
  const out = prefix.slice(0, end);
  out[end - 1] = prefix[end - 1]! + 1;
  return out;
}

/** Compares byte strings in byte order. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!;
  }
  return a.length - b.length;
}
