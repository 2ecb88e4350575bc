/**
 * Watches: a client asks for the changes to some keys (a prefix, or a list)
 * from a version on (WATCH); the router answers with batches of changes
 * (CHANGES), first those it still has from the version asked, then each new
 * one, until the client stops it (UNWATCH) or an ERROR with the watch's id
 * ends it. See `docs/protocol.md`, "WATCH, CHANGES and UNWATCH".
 *
 * @module
 */

import { FrameWriter, PayloadReader } from "./frame.ts";
import { ProtocolError } from "./errors.ts";
import { checkKey, checkValue } from "./messages.ts";
import { MAX_KEY_SIZE } from "./constants.ts";
import { Opcode } from "./opcodes.ts";

/** The most keys one watch may name. */
export const MAX_WATCH_KEYS = 64;

/** What a watch follows. */
export interface WatchRequest {
  /** The version after which changes are wanted; 0 for from now on. */
  from: number;
  /** Keys that start with these bytes (empty: every key), when `keys` is absent. */
  prefix: Uint8Array;
  /** Exactly these keys, when given. */
  keys?: Uint8Array[];
}

/** One change of a key. */
export interface Change {
  /** The sequence number of the write that made it: the key's new version. */
  version: number;
  /** The key. */
  key: Uint8Array;
  /** Its new value; `null` when the key was deleted. */
  value: Uint8Array | null;
  /** When it expires, ms since the epoch; absent when it does not. */
  expiresAt?: number;
}

/** A batch of changes. */
export interface ChangeBatch {
  /** Every change up to this version has been sent: resume from here. */
  upTo: number;
  /** The changes, in version order. */
  changes: Change[];
}

/**
 * Encodes WATCH.
 *
 * @param id The watch's id, which every CHANGES frame carries.
 * @param request What to watch and from where.
 * @returns The frame's bytes.
 * @example
 * ```ts
 * import { encodeWatch } from "./watch.ts";
 * encodeWatch(1, { from: 0, prefix: new TextEncoder().encode("user:") });
 * ```
 */
export function encodeWatch(id: number, request: WatchRequest): Uint8Array {
  if (request.prefix.length > MAX_KEY_SIZE) checkKey(request.prefix);
  const keys = request.keys;
  if (keys !== undefined) {
    if (keys.length === 0 || keys.length > MAX_WATCH_KEYS) {
      throw new ProtocolError(`A watch names 1 to ${MAX_WATCH_KEYS} keys`);
    }
    for (const key of keys) checkKey(key);
  }
  let size = 8 + 1;
  if (keys === undefined) size += 2 + request.prefix.length;
  else {
    size += 2;
    for (const key of keys) size += 2 + key.length;
  }
  const writer = new FrameWriter(Opcode.WATCH, id, size).u64(request.from);
  if (keys === undefined) writer.u8(0).bytes16(request.prefix);
  else {
    writer.u8(1).u16(keys.length);
    for (const key of keys) writer.bytes16(key);
  }
  return writer.finish();
}

/**
 * Decodes WATCH.
 *
 * @param payload The frame's payload.
 * @returns The request; keys are views.
 * @throws {ProtocolError} When it is malformed.
 * @example
 * ```ts
 * import { decodeWatch, encodeWatch } from "./watch.ts";
 * const bytes = encodeWatch(1, { from: 7, prefix: new Uint8Array(0) });
 * console.log(decodeWatch(bytes.subarray(10)).from); // 7
 * ```
 */
export function decodeWatch(payload: Uint8Array): WatchRequest {
  const reader = new PayloadReader(payload, "WATCH");
  const from = reader.u64();
  const mode = reader.u8();
  if (mode === 0) {
    const prefix = reader.bytes16();
    reader.end();
    if (prefix.length > MAX_KEY_SIZE) checkKey(prefix);
    return { from, prefix };
  }
  if (mode !== 1) throw new ProtocolError(`Unknown WATCH mode ${mode}`);
  const count = reader.u16();
  if (count === 0 || count > MAX_WATCH_KEYS) {
    throw new ProtocolError(`A watch names 1 to ${MAX_WATCH_KEYS} keys`);
  }
  const keys: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const key = reader.bytes16();
    checkKey(key);
    keys.push(key);
  }
  reader.end();
  return { from, prefix: new Uint8Array(0), keys };
}

const DELETED = 0;
const SET = 1;
const SET_EXPIRING = 2;

/**
 * The encoded size of a change in CHANGES.
 *
 * @param change The change.
 * @returns Its size in bytes.
 * @example
 * ```ts
 * import { changeSize } from "./watch.ts";
 * console.log(changeSize({ version: 1, key: new Uint8Array(1), value: null })); // 12
 * ```
 */
export function changeSize(change: Change): number {
  return 8 + 2 + change.key.length + 1 +
    (change.value === null
      ? 0
      : 4 + change.value.length + (change.expiresAt === undefined ? 0 : 8));
}

/**
 * Encodes CHANGES.
 *
 * @param id The watch's id.
 * @param batch The changes and the version they cover.
 * @returns The frame's bytes.
 * @example
 * ```ts
 * import { encodeChanges } from "./watch.ts";
 * encodeChanges(1, { upTo: 5, changes: [] });
 * ```
 */
export function encodeChanges(id: number, batch: ChangeBatch): Uint8Array {
  let size = 8 + 2;
  for (const change of batch.changes) size += changeSize(change);
  const writer = new FrameWriter(Opcode.CHANGES, id, size).u64(batch.upTo)
    .u16(batch.changes.length);
  for (const change of batch.changes) {
    writer.u64(change.version).bytes16(change.key);
    if (change.value === null) writer.u8(DELETED);
    else if (change.expiresAt === undefined) {
      writer.u8(SET).bytes32(change.value);
    } else {
      writer.u8(SET_EXPIRING).u64(change.expiresAt).bytes32(change.value);
    }
  }
  return writer.finish();
}

/**
 * Decodes CHANGES.
 *
 * @param payload The frame's payload.
 * @returns The batch; keys and values are views.
 * @throws {ProtocolError} When it is malformed.
 * @example
 * ```ts
 * import { decodeChanges, encodeChanges } from "./watch.ts";
 * console.log(decodeChanges(encodeChanges(1, { upTo: 5, changes: [] }).subarray(10)).upTo); // 5
 * ```
 */
export function decodeChanges(payload: Uint8Array): ChangeBatch {
  const reader = new PayloadReader(payload, "CHANGES");
  const upTo = reader.u64();
  const count = reader.u16();
  if (count * 11 > reader.remaining) {
    throw new ProtocolError(
      `Malformed CHANGES frame: ${count} changes cannot fit in ${reader.remaining} bytes`,
    );
  }
  const changes: Change[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const version = reader.u64();
    const key = reader.bytes16();
    checkKey(key);
    const kind = reader.u8();
    if (kind === DELETED) changes[i] = { version, key, value: null };
    else if (kind === SET || kind === SET_EXPIRING) {
      const expiresAt = kind === SET_EXPIRING ? reader.u64() : undefined;
      const value = reader.bytes32();
      checkValue(value);
      changes[i] = expiresAt === undefined
        ? { version, key, value }
        : { version, key, value, expiresAt };
    } else throw new ProtocolError(`Unknown change kind ${kind}`);
  }
  reader.end();
  return { upTo, changes };
}
