/**
 * Range reads: the keys from one key (inclusive) to another (exclusive),
 * with their values, versions and expiries, forwards or backwards (RANGE,
 * answered by ENTRIES). The Deno KV front end's reads are made of them. See
 * `docs/protocol.md`, "RANGE and ENTRIES".
 *
 * @module
 */

import { FrameWriter, PayloadReader } from "./frame.ts";
import { entrySize, readEntry, writeEntry } from "./_entry.ts";
import { ProtocolError } from "./errors.ts";
import { checkKey } from "./messages.ts";
import { MAX_KEY_SIZE } from "./constants.ts";
import { Opcode } from "./opcodes.ts";

/** The most entries one RANGE may ask for. */
export const MAX_RANGE_LIMIT = 1000;
/** Bytes of keys and values one ENTRIES answer holds at most (one entry may pass it alone). */
export const MAX_ENTRIES_BYTES = 512 * 1024;

/** A range read. */
export interface RangeRequest {
  /** The first key, inclusive; empty for the first key there is. */
  start: Uint8Array;
  /** The key after the last, exclusive; empty for no end. */
  end: Uint8Array;
  /** The most entries, 1 to {@linkcode MAX_RANGE_LIMIT}. */
  limit: number;
  /** From the end backwards. */
  reverse: boolean;
}

/** One entry of a range. */
export interface RangeEntry {
  /** The key. */
  key: Uint8Array;
  /** The value. */
  value: Uint8Array;
  /** The sequence number of the write that stored it. */
  version: number;
  /** When it expires, ms since the epoch; absent when it does not. */
  expiresAt?: number;
}

/** The answer to a range read. */
export interface Entries {
  /** The entries, in the order read. */
  entries: RangeEntry[];
  /** Whether the byte budget cut the answer short of the limit: ask again after the last key. */
  more: boolean;
}

/**
 * The least key after `key` in byte order: `key` and a 0x00 byte. A range
 * that starts there resumes just past `key`; one that ends there holds
 * `key` alone.
 *
 * @param key The key.
 * @returns A new array.
 * @example
 * ```ts
 * import { keyAfter } from "./range.ts";
 * console.log(keyAfter(new Uint8Array([97]))); // Uint8Array(2) [ 97, 0 ]
 * ```
 */
export function keyAfter(key: Uint8Array): Uint8Array {
  const out = new Uint8Array(key.length + 1);
  out.set(key);
  return out;
}

/**
 * The end of the range of the keys that start with `prefix`: the least key
 * after all of them, or empty (no end) when every key does or none can
 * follow them (a prefix of 0xFF bytes only).
 *
 * @param prefix The prefix.
 * @returns A new array; empty for no end.
 * @example
 * ```ts
 * import { prefixEnd } from "./range.ts";
 * console.log(prefixEnd(new Uint8Array([97, 0xff]))); // Uint8Array(1) [ 98 ]
 * ```
 */
export function prefixEnd(prefix: Uint8Array): Uint8Array {
  let end = prefix.length;
  while (end > 0 && prefix[end - 1] === 0xff) end--;
  const out = prefix.slice(0, end);
  if (end > 0) out[end - 1]! += 1;
  return out;
}

/**
 * Checks a range bound: a key, one byte past a key (a prefix's end or
 * {@linkcode keyAfter}), or empty.
 *
 * @param key The bound.
 * @throws {TooLargeError} When longer than a key and one byte.
 * @example
 * ```ts
 * import { checkBound } from "./range.ts";
 * checkBound(new Uint8Array(0));
 * ```
 */
export function checkBound(key: Uint8Array): void {
  if (key.length > MAX_KEY_SIZE + 1) checkKey(key);
}

/**
 * Encodes RANGE.
 *
 * @param id The request id.
 * @param request The range.
 * @returns The frame's bytes.
 * @example
 * ```ts
 * import { encodeRange } from "./range.ts";
 * encodeRange(1, { start: new Uint8Array([1]), end: new Uint8Array([2]), limit: 10, reverse: false });
 * ```
 */
export function encodeRange(id: number, request: RangeRequest): Uint8Array {
  checkBound(request.start);
  checkBound(request.end);
  if (
    !Number.isInteger(request.limit) || request.limit < 1 ||
    request.limit > MAX_RANGE_LIMIT
  ) {
    throw new ProtocolError(
      `RANGE limit ${request.limit} is outside 1 to ${MAX_RANGE_LIMIT}`,
    );
  }
  return new FrameWriter(
    Opcode.RANGE,
    id,
    2 + request.start.length + 2 + request.end.length + 2 + 1,
  ).bytes16(request.start).bytes16(request.end).u16(request.limit).u8(
    request.reverse ? 1 : 0,
  ).finish();
}

/**
 * Decodes RANGE.
 *
 * @param payload The frame's payload.
 * @returns The range; its keys are views.
 * @throws {ProtocolError} When it is malformed.
 * @example
 * ```ts
 * import { decodeRange, encodeRange } from "./range.ts";
 * const bytes = encodeRange(1, { start: new Uint8Array(0), end: new Uint8Array(0), limit: 3, reverse: true });
 * console.log(decodeRange(bytes.subarray(10)).reverse); // true
 * ```
 */
export function decodeRange(payload: Uint8Array): RangeRequest {
  const reader = new PayloadReader(payload, "RANGE");
  const start = reader.bytes16();
  const end = reader.bytes16();
  const limit = reader.u16();
  const reverse = reader.u8();
  reader.end();
  checkBound(start);
  checkBound(end);
  if (limit < 1 || limit > MAX_RANGE_LIMIT || reverse > 1) {
    throw new ProtocolError(
      `Malformed RANGE frame: limit ${limit} (1 to ${MAX_RANGE_LIMIT}), reverse ${reverse}`,
    );
  }
  return { start, end, limit, reverse: reverse === 1 };
}

/**
 * Encodes ENTRIES.
 *
 * @param id The request id.
 * @param answer The entries, and whether more may follow.
 * @returns The frame's bytes.
 * @example
 * ```ts
 * import { encodeEntries } from "./range.ts";
 * encodeEntries(1, { entries: [], more: false });
 * ```
 */
export function encodeEntries(id: number, answer: Entries): Uint8Array {
  let size = 1 + 2;
  for (const e of answer.entries) size += entrySize(e);
  const writer = new FrameWriter(Opcode.ENTRIES, id, size).u8(
    answer.more ? 1 : 0,
  ).u16(answer.entries.length);
  for (const e of answer.entries) writeEntry(writer, e);
  return writer.finish();
}

/**
 * Decodes ENTRIES.
 *
 * @param payload The frame's payload.
 * @returns The entries; keys and values are views.
 * @throws {ProtocolError} When it is malformed.
 * @example
 * ```ts
 * import { decodeEntries, encodeEntries } from "./range.ts";
 * console.log(decodeEntries(encodeEntries(1, { entries: [], more: true }).subarray(10)).more); // true
 * ```
 */
export function decodeEntries(payload: Uint8Array): Entries {
  const reader = new PayloadReader(payload, "ENTRIES");
  const more = reader.u8();
  const count = reader.u16();
  if (more > 1 || count * 14 > reader.remaining) {
    throw new ProtocolError(
      `Malformed ENTRIES frame: ${count} entries cannot fit in ${reader.remaining} bytes`,
    );
  }
  const entries: RangeEntry[] = new Array(count);
  for (let i = 0; i < count; i++) entries[i] = readEntry(reader, "ENTRIES");
  reader.end();
  return { entries, more: more === 1 };
}
