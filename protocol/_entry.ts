// One stored entry as SYNC_CHUNK and ENTRIES carry it: bytes16 key, the
// version as a u64 whose top bit says an expiry (u64) follows, bytes32 value.

import type { FrameWriter, PayloadReader } from "./frame.ts";
import { ProtocolError } from "./errors.ts";
import { checkKey, checkValue } from "./messages.ts";

/** An entry: a key, its value, version and expiry. */
export interface WireEntry {
  key: Uint8Array;
  value: Uint8Array;
  version: number;
  expiresAt?: number;
}

/** The top bit of an entry's version field: an expiry time follows it. */
const EXPIRES = 0x8000_0000;

/** The bytes an entry takes. */
export function entrySize(entry: WireEntry): number {
  return 2 + entry.key.length + 8 + (entry.expiresAt === undefined ? 0 : 8) +
    4 + entry.value.length;
}

/** Writes an entry. */
export function writeEntry(writer: FrameWriter, entry: WireEntry): void {
  writer.bytes16(entry.key);
  if (entry.expiresAt === undefined) writer.u64(entry.version);
  else {
    writer.u32(EXPIRES + Math.floor(entry.version / 0x1_0000_0000))
      .u32(entry.version >>> 0).u64(entry.expiresAt);
  }
  writer.bytes32(entry.value);
}

/**
 * Reads an entry of a `what` frame, checking its key and value.
 *
 * @throws {ProtocolError} When it is malformed.
 */
export function readEntry(reader: PayloadReader, what: string): WireEntry {
  const key = reader.bytes16();
  checkKey(key);
  const high = reader.u32();
  const low = reader.u32();
  const expiring = high >= EXPIRES;
  const versionHigh = expiring ? high - EXPIRES : high;
  if (versionHigh >= 0x20_0000) {
    throw new ProtocolError(
      `Malformed ${what} frame: 64-bit integer beyond 2^53`,
    );
  }
  const version = versionHigh * 0x1_0000_0000 + low;
  const expiresAt = expiring ? reader.u64() : undefined;
  const value = reader.bytes32();
  checkValue(value);
  return expiresAt === undefined
    ? { key, value, version }
    : { key, value, version, expiresAt };
}
