// Where a KVNDB key lives in the Deno KV backend: the key parts it is stored
// under, and the bounds that list a range of KVNDB keys in byte order.
//
// Deno KV caps an encoded key at 2,048 bytes and escapes every 0x00 byte of a
// byte part into two, so KVNDB keys are re-packed seven bits a byte
// (encodeKey: no 0x00, byte order kept). A key of up to SHORT_KEY_MAX bytes
// is stored under one part, its packed form. A longer key cannot be stored
// whole in order (there are more 2,049-byte strings than Deno KV keys), so it
// lives under two parts: its packed first SHORT_KEY_MAX bytes (its head) and
// the packed SHA-256 of the whole key; the rest of it (its tail) is kept in
// the values stored for it.
//
// Why listings stay in byte order: all long keys with one head form a
// "bucket" that Deno KV lists right after the short key equal to the head and
// before any other greater key, since no short key but the head itself starts
// with a head (a head is as long as a short key gets). Only inside a bucket is
// Deno KV's order (by hash) not byte order: a listing sorts each bucket
// (listEntries in `_kv_read.ts`).

import { createHash } from "node:crypto";
import { DamagedDataError } from "../protocol/mod.ts";

/** How to get out of a store that holds data KVNDB did not write. */
export const REPAIR =
  "the store was damaged or written by something else: stop this database, move its store away, and start it again with --reset to copy the data from the others";

/**
 * The longest key stored under its packed form alone; longer keys are stored
 * by head and hash. The chunk key of a long key, `["c", head, hash, i]`, is
 * then 3 + (1,943 + 2) + (37 + 2) + 9 = 1,996 bytes, within Deno KV's 2,048.
 */
export const SHORT_KEY_MAX = 1_700;

/** Bytes of a namespace part (`"d"`, `"c"`, …) as Deno KV encodes it: 0x02, the letter, 0x00. */
const NAMESPACE_BYTES = 3;
/** Bytes Deno KV adds to a byte part: 0x01 before, 0x00 after (packed parts hold no 0x00 to escape). */
const PART_OVERHEAD = 2;
/** Bytes of a chunk's index part, a number: 0x21 and 8 bytes. */
export const CHUNK_INDEX_BYTES = 9;

/** Where a KVNDB key is stored. */
export interface StoredKey {
  /** The parts after the namespace: the packed key, or the packed head and hash. */
  parts: Uint8Array[];
  /** Bytes of `[namespace, ...parts]` as Deno KV encodes it. */
  keyBytes: number;
  /** A long key's bytes past its head, kept in its values; `null` for a short key. */
  tail: Uint8Array | null;
}

/** Where `key` is stored. */
export function storedKey(key: Uint8Array): StoredKey {
  if (key.length <= SHORT_KEY_MAX) {
    const packed = encodeKey(key);
    return {
      parts: [packed],
      keyBytes: NAMESPACE_BYTES + packed.length + PART_OVERHEAD,
      tail: null,
    };
  }
  const head = encodeKey(key.subarray(0, SHORT_KEY_MAX));
  const hash = encodeKey(createHash("sha256").update(key).digest());
  return {
    parts: [head, hash],
    keyBytes: NAMESPACE_BYTES + head.length + hash.length + 2 * PART_OVERHEAD,
    tail: key.slice(SHORT_KEY_MAX),
  };
}

/** The bytes of the key stored under `[namespace, ...parts]` for a key of `length` bytes, without storing it. */
export function storedKeyBytes(length: number): number {
  const head = Math.ceil(Math.min(length, SHORT_KEY_MAX) * 8 / 7);
  return length <= SHORT_KEY_MAX
    ? NAMESPACE_BYTES + head + PART_OVERHEAD
    : NAMESPACE_BYTES + head + Math.ceil(256 / 7) + 2 * PART_OVERHEAD;
}

/** Takes the parts out of `[namespace, ...parts]`, checking they are a KVNDB key's. */
export function partsOf(key: Deno.KvKey): Uint8Array[] {
  const parts = key.slice(1);
  if (
    (parts.length !== 1 && parts.length !== 2) ||
    !parts.every((part) => part instanceof Uint8Array)
  ) {
    throw new DamagedDataError(
      `Deno KV key ${Deno.inspect(key)} is not a KVNDB key; ${REPAIR}`,
    );
  }
  return parts as Uint8Array[];
}

/** The KVNDB key stored under `parts`, with its tail when long. */
export function keyOf(
  parts: Uint8Array[],
  tail: Uint8Array | null,
): Uint8Array {
  const head = decodeKey(parts[0]!);
  if (parts.length === 1) return head;
  if (tail === null || head.length !== SHORT_KEY_MAX) {
    throw new DamagedDataError(
      `A long KVNDB key in Deno KV lacks its tail or its head; ${REPAIR}`,
    );
  }
  const out = new Uint8Array(head.length + tail.length);
  out.set(head);
  out.set(tail, head.length);
  return out;
}

/** The parts from which keys at or after `key` are listed (inclusive): its head's, when long. */
export function lowerBound(key: Uint8Array): Deno.KvKeyPart[] {
  return [encodeKey(key.subarray(0, SHORT_KEY_MAX))];
}

/** The parts before which keys before `key` are listed (exclusive): past its head's bucket, when long. */
export function upperBound(key: Uint8Array): Deno.KvKeyPart[] {
  if (key.length <= SHORT_KEY_MAX) return [encodeKey(key)];
  // A string part sorts after every byte part, so after every hash.
  return [encodeKey(key.subarray(0, SHORT_KEY_MAX)), ""];
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

/** Compares byte strings in byte order. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!;
  }
  return a.length - b.length;
}
