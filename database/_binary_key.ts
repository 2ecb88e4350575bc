// Keys as "binary strings": one character per byte (Latin-1). JavaScript
// compares such strings by code unit, which is byte order, and V8 stores them
// one byte a character, so they make compact, ordered map keys.

/** Turns key bytes into a binary string (protocol/hex.ts `binaryString`). */
export { binaryString as toBinary } from "../protocol/mod.ts";

/** Turns a binary string, from character `from` on, back into bytes. */
export function fromBinary(text: string, from = 0): Uint8Array {
  const out = new Uint8Array(text.length - from);
  for (let i = 0; i < out.length; i++) out[i] = text.charCodeAt(i + from);
  return out;
}
