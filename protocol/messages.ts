/**
 * Encoders and decoders of the requests and answers of single keys (GET,
 * VALUE, WRITE, DONE, EXPIRED), STATS, ERROR, and the key and value checks,
 * one pair per opcode. Each encoder computes the exact payload size first and
 * allocates once; each decoder reads a payload with bounds checks and returns
 * views, not copies. Other families have files of their own: the handshake
 * (`handshake_messages.ts`), KEYS (`keys.ts`), FORGET (`forget.ts`),
 * replication (`replication_messages.ts`), atomic operations (`atomic.ts`),
 * RANGE (`range.ts`), watches (`watch.ts`) and digests (`digest.ts`).
 * Byte layouts are in `docs/protocol.md`, "Messages".
 *
 * @module
 */

import { MAX_KEY_SIZE, MAX_VALUE_SIZE } from "./constants.ts";
import {
  InvalidArgumentError,
  ProtocolError,
  TooLargeError,
} from "./errors.ts";
import { FrameWriter, PayloadReader } from "./frame.ts";
import { allocate } from "./_pool.ts";
import { Opcode } from "./opcodes.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Checks a key against the protocol's limits.
 *
 * @param key The key.
 * @throws {TooLargeError} When longer than {@linkcode MAX_KEY_SIZE}.
 * @throws {InvalidArgumentError} When empty.
 * @example
 * ```ts
 * import { checkKey } from "./messages.ts";
 * checkKey(new TextEncoder().encode("user:1"));
 * ```
 */
export function checkKey(key: Uint8Array): void {
  if (key.length === 0) {
    throw new InvalidArgumentError("Key must not be empty");
  }
  if (key.length > MAX_KEY_SIZE) {
    throw new TooLargeError(
      `Key of ${key.length} bytes exceeds the maximum key size (${MAX_KEY_SIZE} bytes)`,
    );
  }
}

/**
 * Checks a value against the protocol's limits.
 *
 * @param value The value.
 * @throws {TooLargeError} When longer than {@linkcode MAX_VALUE_SIZE}.
 * @example
 * ```ts
 * import { checkValue } from "./messages.ts";
 * checkValue(new Uint8Array(10));
 * ```
 */
export function checkValue(value: Uint8Array): void {
  if (value.length > MAX_VALUE_SIZE) {
    throw new TooLargeError(
      `Value of ${value.length} bytes exceeds the maximum value size (${MAX_VALUE_SIZE} bytes)`,
    );
  }
}

// ---------------------------------------------------------------- operations

/**
 * Encodes a GET request.
 *
 * @param id The request id.
 * @param key The key.
 * @returns The frame's bytes.
 * @example
 * ```ts
 * import { encodeGet } from "./messages.ts";
 * encodeGet(1, new TextEncoder().encode("a"));
 * ```
 */
export function encodeGet(id: number, key: Uint8Array): Uint8Array {
  return new FrameWriter(Opcode.GET, id, 2 + key.length).bytes16(key).finish();
}

/**
 * Encodes the payload of a GET request alone (a 16-bit length, then the
 * key), for a front end that hands requests to the router without frames.
 *
 * @param key The key.
 * @returns The payload's bytes, in a buffer of their own.
 * @example
 * ```ts
 * import { decodeGet, encodeGetPayload } from "./messages.ts";
 * const key = new TextEncoder().encode("a");
 * console.log(decodeGet(encodeGetPayload(key)).length); // 1
 * ```
 */
export function encodeGetPayload(key: Uint8Array): Uint8Array {
  const payload = allocate(2 + key.length);
  payload[0] = key.length >> 8;
  payload[1] = key.length & 0xff;
  payload.set(key, 2);
  return payload;
}

/**
 * Decodes a GET request.
 *
 * @param payload The frame's payload.
 * @returns The key (a view).
 * @example
 * ```ts
 * import { decodeGet, encodeGet } from "./messages.ts";
 * console.log(decodeGet(encodeGet(1, new Uint8Array([97])).subarray(10))); // Uint8Array [97]
 * ```
 */
export function decodeGet(payload: Uint8Array): Uint8Array {
  const reader = new PayloadReader(payload, "GET");
  const key = reader.bytes16();
  reader.end();
  checkKey(key);
  return key;
}

/** A stored value with its version. */
export interface Entry {
  /** The value's bytes. */
  value: Uint8Array;
  /** The sequence number of the write that stored it. */
  version: number;
  /** When it expires, in ms since the epoch; absent when it does not. */
  expiresAt?: number;
}

/** The most keys one EXPIRED request may ask for. */
export const MAX_EXPIRED_LIMIT = 512;

/**
 * Encodes EXPIRED: asks for keys that have expired at `now` and are still
 * stored, earliest expiry first (the router's sweep). Answered with
 * KEY_PAGE, its cursor empty.
 *
 * @param id The request id.
 * @param now The time, in ms since the epoch.
 * @param limit The most keys to return, 1 to {@linkcode MAX_EXPIRED_LIMIT}.
 * @returns The frame's bytes.
 * @example
 * ```ts
 * import { encodeExpired } from "./messages.ts";
 * encodeExpired(1, Date.now(), 128);
 * ```
 */
export function encodeExpired(
  id: number,
  now: number,
  limit: number,
): Uint8Array {
  return new FrameWriter(Opcode.EXPIRED, id, 8 + 2).u64(now).u16(limit)
    .finish();
}

/**
 * Decodes EXPIRED.
 *
 * @param payload The frame's payload.
 * @returns The time and the limit.
 * @throws {ProtocolError} When it is malformed or the limit out of range.
 * @example
 * ```ts
 * import { decodeExpired, encodeExpired } from "./messages.ts";
 * console.log(decodeExpired(encodeExpired(1, 5, 128).subarray(10)).limit); // 128
 * ```
 */
export function decodeExpired(
  payload: Uint8Array,
): { now: number; limit: number } {
  const reader = new PayloadReader(payload, "EXPIRED");
  const now = reader.u64();
  const limit = reader.u16();
  reader.end();
  if (limit < 1 || limit > MAX_EXPIRED_LIMIT) {
    throw new ProtocolError(
      `EXPIRED limit ${limit} is outside 1 to ${MAX_EXPIRED_LIMIT}`,
    );
  }
  return { now, limit };
}

/**
 * Encodes VALUE, the answer to GET.
 *
 * @param id The request id.
 * @param entry The value found, or `null` when the key does not exist.
 * @returns The frame's bytes.
 * @example
 * ```ts
 * import { encodeValue } from "./messages.ts";
 * encodeValue(1, { value: new Uint8Array([49]), version: 3 });
 * ```
 */
export function encodeValue(id: number, entry: Entry | null): Uint8Array {
  if (entry === null) {
    return new FrameWriter(Opcode.VALUE, id, 1).u8(0).finish();
  }
  if (entry.expiresAt !== undefined) {
    return new FrameWriter(
      Opcode.VALUE,
      id,
      1 + 8 + 8 + 4 + entry.value.length,
    ).u8(2).u64(entry.version).u64(entry.expiresAt).bytes32(entry.value)
      .finish();
  }
  return new FrameWriter(Opcode.VALUE, id, 1 + 8 + 4 + entry.value.length)
    .u8(1).u64(entry.version).bytes32(entry.value).finish();
}

/**
 * Decodes VALUE.
 *
 * @param payload The frame's payload.
 * @returns The entry, or `null` for a missing key.
 * @example
 * ```ts
 * import { decodeValue, encodeValue } from "./messages.ts";
 * console.log(decodeValue(encodeValue(1, null).subarray(10))); // null
 * ```
 */
export function decodeValue(payload: Uint8Array): Entry | null {
  const reader = new PayloadReader(payload, "VALUE");
  const found = reader.u8();
  if (found === 0) {
    reader.end();
    return null;
  }
  if (found > 2) throw new ProtocolError(`Invalid VALUE flag ${found}`);
  const version = reader.u64();
  if (found === 2) {
    const expiresAt = reader.u64();
    const value = reader.bytes32();
    reader.end();
    return { value, version, expiresAt };
  }
  const value = reader.bytes32();
  reader.end();
  return { value, version };
}

/** A write as a client requests it. */
export interface WriteRequest {
  /** {@linkcode AckLevel}; 0 defers to the router's default. */
  acks: number;
  /** The key. */
  key: Uint8Array;
  /** The value for a set; absent for a delete. */
  value?: Uint8Array;
}

/**
 * Encodes SET or DELETE, depending on whether a value is given.
 *
 * @param id The request id.
 * @param request The write.
 * @returns The frame's bytes.
 * @example
 * ```ts
 * import { encodeWriteRequest } from "./messages.ts";
 * const key = new TextEncoder().encode("a");
 * encodeWriteRequest(1, { acks: 0, key, value: new Uint8Array([49]) });
 * ```
 */
export function encodeWriteRequest(
  id: number,
  request: WriteRequest,
): Uint8Array {
  const { acks, key, value } = request;
  if (value === undefined) {
    return new FrameWriter(Opcode.DELETE, id, 1 + 2 + key.length).u8(acks)
      .bytes16(key).finish();
  }
  return new FrameWriter(Opcode.SET, id, 1 + 2 + key.length + 4 + value.length)
    .u8(acks).bytes16(key).bytes32(value).finish();
}

/**
 * Decodes SET or DELETE.
 *
 * @param opcode `Opcode.SET` or `Opcode.DELETE`.
 * @param payload The frame's payload.
 * @returns The write; the key and value are views.
 * @throws {TooLargeError} When the key or value is over its limit.
 * @example
 * ```ts
 * import { decodeWriteRequest, encodeWriteRequest } from "./messages.ts";
 * import { Opcode } from "./opcodes.ts";
 * const bytes = encodeWriteRequest(1, { acks: 0, key: new Uint8Array([97]) });
 * console.log(decodeWriteRequest(Opcode.DELETE, bytes.subarray(10)).value); // undefined
 * ```
 */
export function decodeWriteRequest(
  opcode: number,
  payload: Uint8Array,
): WriteRequest {
  const reader = new PayloadReader(
    payload,
    opcode === Opcode.SET ? "SET" : "DELETE",
  );
  const acks = reader.u8();
  if (acks > 3) {
    throw new ProtocolError(`Unknown acknowledgement level ${acks}`);
  }
  const key = reader.bytes16();
  checkKey(key);
  if (opcode !== Opcode.SET) {
    reader.end();
    return { acks, key };
  }
  const value = reader.bytes32();
  reader.end();
  checkValue(value);
  return { acks, key, value };
}

/**
 * Encodes DONE, the answer to a write: the write's sequence number.
 *
 * @param id The request id.
 * @param seq The sequence number the router gave the write.
 * @returns The frame's bytes.
 * @example
 * ```ts
 * import { encodeDone } from "./messages.ts";
 * encodeDone(1, 42);
 * ```
 */
export function encodeDone(id: number, seq: number): Uint8Array {
  return new FrameWriter(Opcode.DONE, id, 8).u64(seq).finish();
}

/**
 * Decodes a payload that is one 64-bit number: DONE, APPLIED, SYNC_END.
 *
 * @param payload The frame's payload.
 * @param what The frame's name, for errors.
 * @returns The number.
 * @example
 * ```ts
 * import { decodeU64, encodeDone } from "./messages.ts";
 * console.log(decodeU64(encodeDone(1, 42).subarray(10), "DONE")); // 42
 * ```
 */
export function decodeU64(payload: Uint8Array, what: string): number {
  const reader = new PayloadReader(payload, what);
  const value = reader.u64();
  reader.end();
  return value;
}

/**
 * Encodes a frame whose payload is one 64-bit number (APPLIED, SYNC_END).
 *
 * @param opcode The opcode.
 * @param id The request id.
 * @param value The number.
 * @returns The frame's bytes.
 * @example
 * ```ts
 * import { encodeU64 } from "./messages.ts";
 * import { Opcode } from "./opcodes.ts";
 * encodeU64(Opcode.APPLIED, 0, 17);
 * ```
 */
export function encodeU64(
  opcode: number,
  id: number,
  value: number,
): Uint8Array {
  return new FrameWriter(opcode, id, 8).u64(value).finish();
}

/**
 * Encodes a frame with an opaque payload (PING, PONG) or none (STATS).
 *
 * @param opcode The opcode.
 * @param id The request id.
 * @param payload The payload.
 * @returns The frame's bytes.
 * @example
 * ```ts
 * import { encodeOpaque } from "./messages.ts";
 * import { Opcode } from "./opcodes.ts";
 * encodeOpaque(Opcode.PING, 1);
 * ```
 */
export function encodeOpaque(
  opcode: number,
  id: number,
  payload: Uint8Array = new Uint8Array(0),
): Uint8Array {
  return new FrameWriter(opcode, id, payload.length).raw(payload).finish();
}

/**
 * Encodes STATS_REPLY: a JSON document.
 *
 * @param id The request id.
 * @param stats Anything JSON can hold.
 * @returns The frame's bytes.
 * @example
 * ```ts
 * import { encodeStatsReply } from "./messages.ts";
 * encodeStatsReply(1, { clients: 1 });
 * ```
 */
export function encodeStatsReply(id: number, stats: unknown): Uint8Array {
  return encodeOpaque(
    Opcode.STATS_REPLY,
    id,
    encoder.encode(JSON.stringify(stats)),
  );
}

/**
 * Decodes STATS_REPLY.
 *
 * @param payload The frame's payload.
 * @returns The parsed JSON.
 * @throws {ProtocolError} When it is not JSON.
 * @example
 * ```ts
 * import { decodeStatsReply, encodeStatsReply } from "./messages.ts";
 * console.log(decodeStatsReply(encodeStatsReply(1, { a: 1 }).subarray(10))); // { a: 1 }
 * ```
 */
export function decodeStatsReply(payload: Uint8Array): unknown {
  try {
    return JSON.parse(decoder.decode(payload));
  } catch (cause) {
    throw new ProtocolError("Malformed STATS_REPLY frame: not JSON", { cause });
  }
}

/** An ERROR frame's content. */
export interface ErrorMessage {
  /** {@linkcode ErrorCode}. */
  code: number;
  /** What went wrong, for a person. */
  message: string;
}

/**
 * Encodes ERROR. Messages longer than 4 KiB are cut.
 *
 * @param id The request id the error answers, or 0 for the connection.
 * @param error The code and message.
 * @returns The frame's bytes.
 * @example
 * ```ts
 * import { encodeError } from "./messages.ts";
 * encodeError(1, { code: 4, message: "Key not found" });
 * ```
 */
export function encodeError(id: number, error: ErrorMessage): Uint8Array {
  let text = encoder.encode(error.message);
  if (text.length > 4096) {
    // Cut before a UTF-8 continuation byte, so the message stays valid text.
    let end = 4096;
    while ((text[end]! & 0xc0) === 0x80) end--;
    text = text.subarray(0, end);
  }
  return new FrameWriter(Opcode.ERROR, id, 2 + 2 + text.length).u16(
    error.code,
  ).bytes16(text).finish();
}

/**
 * Decodes ERROR.
 *
 * @param payload The frame's payload.
 * @returns The code and message.
 * @example
 * ```ts
 * import { decodeError, encodeError } from "./messages.ts";
 * console.log(decodeError(encodeError(1, { code: 4, message: "x" }).subarray(10)).code); // 4
 * ```
 */
export function decodeError(payload: Uint8Array): ErrorMessage {
  const reader = new PayloadReader(payload, "ERROR");
  const code = reader.u16();
  const message = decoder.decode(reader.bytes16());
  reader.end();
  return { code, message };
}
