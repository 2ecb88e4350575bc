/**
 * Digests of key ranges on one named database, for `kvndb verify`: DIGEST
 * asks the database the router calls `database` for a SHA-256 over the
 * entries of a range (mode 0, answered by DIGEST_REPLY), or for the entries
 * themselves (mode 1, answered by ENTRIES). See `docs/protocol.md`,
 * "DIGEST and DIGEST_REPLY".
 *
 * @module
 */

import { FrameWriter, PayloadReader } from "./frame.ts";
import { ProtocolError } from "./errors.ts";
import { Opcode } from "./opcodes.ts";
import { checkBound, MAX_RANGE_LIMIT } from "./range.ts";

/** The most entries one digest covers. */
export const MAX_DIGEST_LIMIT = 10_000;

/** A digest request. */
export interface DigestRequest {
  /** The database, by the id the router's stats give it. */
  database: number;
  /** The first key, inclusive; empty for the first there is. */
  start: Uint8Array;
  /** The key after the last, exclusive; empty for no end. */
  end: Uint8Array;
  /** The most entries: up to 10,000 for a digest, 1,000 for entries. */
  limit: number;
  /** 0: a digest (DIGEST_REPLY); 1: the entries (ENTRIES). */
  mode: 0 | 1;
}

/** A digest of a range's entries. */
export interface Digest {
  /** How many entries it covers. */
  count: number;
  /** The last key it covers (empty when none). */
  lastKey: Uint8Array;
  /** SHA-256 over every entry's key, version, expiry and value, in key order. */
  hash: Uint8Array;
}

/**
 * Encodes DIGEST.
 *
 * @param id The request id.
 * @param request The database, range, limit and mode.
 * @returns The frame's bytes.
 * @example
 * ```ts
 * import { encodeDigest } from "./digest.ts";
 * encodeDigest(1, { database: 1, start: new Uint8Array(0), end: new Uint8Array(0), limit: 1000, mode: 0 });
 * ```
 */
export function encodeDigest(id: number, request: DigestRequest): Uint8Array {
  checkBound(request.start);
  checkBound(request.end);
  const max = request.mode === 0 ? MAX_DIGEST_LIMIT : MAX_RANGE_LIMIT;
  if (request.limit < 1 || request.limit > max) {
    throw new ProtocolError(
      `DIGEST limit ${request.limit} is outside 1 to ${max}`,
    );
  }
  return new FrameWriter(
    Opcode.DIGEST,
    id,
    4 + 2 + request.start.length + 2 + request.end.length + 2 + 1,
  ).u32(request.database).bytes16(request.start).bytes16(request.end).u16(
    request.limit,
  ).u8(request.mode).finish();
}

/**
 * Decodes DIGEST.
 *
 * @param payload The frame's payload.
 * @returns The request; keys are views.
 * @throws {ProtocolError} When it is malformed.
 * @example
 * ```ts
 * import { decodeDigest, encodeDigest } from "./digest.ts";
 * const none = new Uint8Array(0);
 * const bytes = encodeDigest(1, { database: 2, start: none, end: none, limit: 5, mode: 1 });
 * console.log(decodeDigest(bytes.subarray(10)).database); // 2
 * ```
 */
export function decodeDigest(payload: Uint8Array): DigestRequest {
  const reader = new PayloadReader(payload, "DIGEST");
  const database = reader.u32();
  const start = reader.bytes16();
  const end = reader.bytes16();
  const limit = reader.u16();
  const mode = reader.u8();
  reader.end();
  checkBound(start);
  checkBound(end);
  if (mode > 1) throw new ProtocolError(`Unknown DIGEST mode ${mode}`);
  const max = mode === 0 ? MAX_DIGEST_LIMIT : MAX_RANGE_LIMIT;
  if (limit < 1 || limit > max) {
    throw new ProtocolError(`DIGEST limit ${limit} is outside 1 to ${max}`);
  }
  return { database, start, end, limit, mode: mode as 0 | 1 };
}

/**
 * Encodes DIGEST_REPLY.
 *
 * @param id The request id.
 * @param digest The digest.
 * @returns The frame's bytes.
 * @example
 * ```ts
 * import { encodeDigestReply } from "./digest.ts";
 * encodeDigestReply(1, { count: 0, lastKey: new Uint8Array(0), hash: new Uint8Array(32) });
 * ```
 */
export function encodeDigestReply(id: number, digest: Digest): Uint8Array {
  return new FrameWriter(
    Opcode.DIGEST_REPLY,
    id,
    4 + 2 + digest.lastKey.length + 32,
  ).u32(digest.count).bytes16(digest.lastKey).raw(digest.hash).finish();
}

/**
 * Decodes DIGEST_REPLY.
 *
 * @param payload The frame's payload.
 * @returns The digest; its parts are views.
 * @throws {ProtocolError} When it is malformed.
 * @example
 * ```ts
 * import { decodeDigestReply, encodeDigestReply } from "./digest.ts";
 * const bytes = encodeDigestReply(1, { count: 3, lastKey: new Uint8Array([1]), hash: new Uint8Array(32) });
 * console.log(decodeDigestReply(bytes.subarray(10)).count); // 3
 * ```
 */
export function decodeDigestReply(payload: Uint8Array): Digest {
  const reader = new PayloadReader(payload, "DIGEST_REPLY");
  const count = reader.u32();
  const lastKey = reader.bytes16();
  const hash = reader.raw(32);
  reader.end();
  return { count, lastKey, hash };
}
