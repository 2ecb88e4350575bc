// Keys as "binary strings": one character per byte (Latin-1). JavaScript
// compares such strings by code unit, which is byte order, and V8 stores them
// one byte a character, so they make compact, ordered map keys.

import { Buffer } from "node:buffer";

/**
 * From this many bytes on, Node's Latin-1 decoder beats building the string
 * in JavaScript: 0.25 µs against 0.8 µs for 100 bytes, while for a 16-byte
 * key the JavaScript way is a little faster (measured on the development
 * machine).
 */
const NATIVE_FROM = 48;

/** Turns key bytes into a binary string. */
export function toBinary(bytes: Uint8Array): string {
  if (bytes.length >= NATIVE_FROM) {
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
      .toString("latin1");
  }
  return String.fromCharCode.apply(null, bytes as unknown as number[]);
}

/** Turns a binary string, from character `from` on, back into bytes. */
export function fromBinary(text: string, from = 0): Uint8Array {
  const out = new Uint8Array(text.length - from);
  for (let i = 0; i < out.length; i++) out[i] = text.charCodeAt(i + from);
  return out;
}
