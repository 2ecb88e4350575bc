// Signed 64-bit integers in frames, big-endian: the atomic steps' operands
// and their integer results.

import type { FrameWriter, PayloadReader } from "./frame.ts";

/** Reused to encode 64-bit integers: writers copy what they are given. */
const i64Bytes = new Uint8Array(8);
const i64View = new DataView(i64Bytes.buffer);

export function writeI64(writer: FrameWriter, value: bigint): void {
  i64View.setBigInt64(0, value);
  writer.raw(i64Bytes);
}

export function readI64(reader: PayloadReader): bigint {
  const bytes = reader.raw(8);
  return new DataView(bytes.buffer, bytes.byteOffset, 8).getBigInt64(0);
}
