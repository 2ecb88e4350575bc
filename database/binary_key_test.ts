import assert from "node:assert/strict";
import fc from "fast-check";
import { fromBinary, toBinary } from "./_binary_key.ts";

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!;
  }
  return a.length - b.length;
}

Deno.test("binary strings round-trip every byte string, short and long, views included", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 9000 }),
      fc.nat({ max: 16 }),
      (bytes, offset) => {
        const padded = new Uint8Array(offset + bytes.length);
        padded.set(bytes, offset);
        const view = padded.subarray(offset);
        const text = toBinary(view);
        assert.equal(text.length, bytes.length);
        assert.deepEqual(fromBinary(text), bytes);
      },
    ),
    { numRuns: 500 },
  );
});

Deno.test("binary strings compare in byte order", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 80 }),
      fc.uint8Array({ maxLength: 80 }),
      (a, b) => {
        const x = toBinary(a);
        const y = toBinary(b);
        assert.equal(
          Math.sign(x < y ? -1 : x > y ? 1 : 0),
          Math.sign(compareBytes(a, b)),
        );
      },
    ),
    { numRuns: 2000 },
  );
});
