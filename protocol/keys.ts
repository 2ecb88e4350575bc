/**
 * KEYS and KEY_PAGE: listing keys a page at a time.
 * Byte layouts are in `docs/protocol.md`, "Messages".
 *
 * @module
 */

import { MAX_KEY_SIZE, MAX_KEYS_LIMIT } from "./constants.ts";
import { ProtocolError, TooLargeError } from "./errors.ts";
import { FrameWriter, PayloadReader } from "./frame.ts";
import { Opcode } from "./opcodes.ts";

/** A KEYS request: one page of the keys that start with `prefix`. */
export interface KeysRequest {
  /** Only keys that start with these bytes. */
  prefix: Uint8Array;
  /** Only keys after this one (exclusive); empty to start at the beginning. */
  cursor: Uint8Array;
  /** The most keys to return; 0 for the default. */
  limit: number;
}

/**
 * Encodes KEYS.
 *
 * @param id The request id.
 * @param request The page wanted.
 * @returns The frame's bytes.
 * @example
 * ```ts
 * import { encodeKeys } from "./keys.ts";
 * encodeKeys(1, { prefix: new Uint8Array(0), cursor: new Uint8Array(0), limit: 100 });
 * ```
 */
export function encodeKeys(id: number, request: KeysRequest): Uint8Array {
  return new FrameWriter(
    Opcode.KEYS,
    id,
    4 + 2 + request.prefix.length + 2 + request.cursor.length,
  ).u32(request.limit).bytes16(request.prefix).bytes16(request.cursor)
    .finish();
}

/**
 * Decodes KEYS.
 *
 * @param payload The frame's payload.
 * @returns The request.
 * @example
 * ```ts
 * import { decodeKeys, encodeKeys } from "./keys.ts";
 * const empty = new Uint8Array(0);
 * console.log(decodeKeys(encodeKeys(1, { prefix: empty, cursor: empty, limit: 5 }).subarray(10)).limit); // 5
 * ```
 */
export function decodeKeys(payload: Uint8Array): KeysRequest {
  const reader = new PayloadReader(payload, "KEYS");
  const limit = reader.u32();
  const prefix = reader.bytes16();
  const cursor = reader.bytes16();
  reader.end();
  if (limit > MAX_KEYS_LIMIT) {
    throw new TooLargeError(
      `Keys limit ${limit} exceeds the maximum page size (${MAX_KEYS_LIMIT} keys)`,
    );
  }
  if (prefix.length > MAX_KEY_SIZE || cursor.length > MAX_KEY_SIZE) {
    throw new TooLargeError(
      `Prefix or cursor exceeds the maximum key size (${MAX_KEY_SIZE} bytes)`,
    );
  }
  return { limit, prefix, cursor };
}

/** One page of keys, the answer to KEYS. */
export interface KeyPage {
  /** The keys, in byte order. */
  keys: Uint8Array[];
  /** Where the next page starts; empty when this is the last page. */
  cursor: Uint8Array;
}

/**
 * Encodes KEY_PAGE.
 *
 * @param id The request id.
 * @param page The page.
 * @returns The frame's bytes.
 * @example
 * ```ts
 * import { encodeKeyPage } from "./keys.ts";
 * encodeKeyPage(1, { keys: [new Uint8Array([97])], cursor: new Uint8Array(0) });
 * ```
 */
export function encodeKeyPage(id: number, page: KeyPage): Uint8Array {
  let size = 4 + 2 + page.cursor.length;
  for (const key of page.keys) size += 2 + key.length;
  const writer = new FrameWriter(Opcode.KEY_PAGE, id, size).u32(
    page.keys.length,
  );
  for (const key of page.keys) writer.bytes16(key);
  return writer.bytes16(page.cursor).finish();
}

/**
 * Decodes KEY_PAGE.
 *
 * @param payload The frame's payload.
 * @returns The page; keys are views.
 * @example
 * ```ts
 * import { decodeKeyPage, encodeKeyPage } from "./keys.ts";
 * const bytes = encodeKeyPage(1, { keys: [], cursor: new Uint8Array(0) });
 * console.log(decodeKeyPage(bytes.subarray(10)).keys.length); // 0
 * ```
 */
export function decodeKeyPage(payload: Uint8Array): KeyPage {
  const reader = new PayloadReader(payload, "KEY_PAGE");
  const count = reader.u32();
  // Each key takes at least two bytes: reject a count the payload cannot hold
  // before allocating for it.
  if (count * 2 > reader.remaining) {
    throw new ProtocolError(
      `Malformed KEY_PAGE frame: ${count} keys cannot fit in ${reader.remaining} bytes`,
    );
  }
  const keys: Uint8Array[] = new Array(count);
  for (let i = 0; i < count; i++) keys[i] = reader.bytes16();
  const cursor = reader.bytes16();
  reader.end();
  return { keys, cursor };
}
