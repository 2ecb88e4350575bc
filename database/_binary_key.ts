// Keys as "binary strings": one character per byte (Latin-1). JavaScript
// compares such strings by code unit, which is byte order, and V8 stores them
// one byte a character, so they make compact, ordered map keys.

/** Turns key bytes into a binary string. */
export function toBinary(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 4096) {
    out += String.fromCharCode.apply(
      null,
      bytes.subarray(i, i + 4096) as unknown as number[],
    );
  }
  return out;
}

/** Turns a binary string back into bytes. */
export function fromBinary(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}
