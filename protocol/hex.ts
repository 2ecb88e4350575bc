/**
 * Byte strings as lowercase hex and back (node and cluster ids in logs and
 * the router's state file, SCAN cursors on the RESP port), as binary
 * strings, and compared.
 *
 * @module
 */

import { Buffer } from "node:buffer";

/**
 * Formats bytes as lowercase hex.
 *
 * @param bytes The bytes.
 * @returns Two hex digits a byte.
 * @example
 * ```ts
 * import { toHex } from "./hex.ts";
 * console.log(toHex(new Uint8Array([1, 255]))); // "01ff"
 * ```
 */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Parses lowercase hex.
 *
 * @param text Two hex digits a byte (an empty string gives no bytes).
 * @returns The bytes, or `undefined` when `text` is not lowercase hex.
 * @example
 * ```ts
 * import { fromHex } from "./hex.ts";
 * console.log(fromHex("01ff")); // Uint8Array(2) [ 1, 255 ]
 * console.log(fromHex("xyz")); // undefined
 * ```
 */
export function fromHex(text: string): Uint8Array | undefined {
  if (!/^([0-9a-f]{2})*$/.test(text)) return undefined;
  return Uint8Array.from(text.match(/../g) ?? [], (h) => parseInt(h, 16));
}

/**
 * From this many bytes on, Node's Latin-1 decoder beats building the string
 * in JavaScript: 0.25 µs against 0.8 µs for 100 bytes, while for a 16-byte
 * key the JavaScript way is a little faster (measured on the development
 * machine).
 */
const NATIVE_FROM = 48;

/**
 * Bytes as a binary string, one character a byte: a map key that compares
 * in byte order (JavaScript compares strings by code unit).
 *
 * @param bytes The bytes, a key most often.
 * @returns The string.
 * @example
 * ```ts
 * import { binaryString } from "./hex.ts";
 * console.log(binaryString(new Uint8Array([97, 98])) < binaryString(new Uint8Array([98]))); // true
 * ```
 */
export function binaryString(bytes: Uint8Array): string {
  if (bytes.length >= NATIVE_FROM) {
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
      .toString("latin1");
  }
  return String.fromCharCode.apply(null, bytes as unknown as number[]);
}

/**
 * Whether two byte arrays hold the same bytes.
 *
 * @param a One array.
 * @param b The other.
 * @returns `true` when they are equal, byte for byte.
 * @example
 * ```ts
 * import { equalBytes } from "./hex.ts";
 * console.log(equalBytes(new Uint8Array([1]), new Uint8Array([1]))); // true
 * ```
 */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
