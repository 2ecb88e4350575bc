// The Deno KV write batcher: an atomic operation's effects are planned
// together or not at all, so that a commit never holds part of them.

import assert from "node:assert/strict";
import { Batch, emptyCost, type KeyState } from "./_kv_batch.ts";
import { encodeKey } from "./_kv_layout.ts";
import { toBinary } from "./_binary_key.ts";

const key = (n: number) => new TextEncoder().encode(`key:${n}`);

function batchFor(count: number): Batch {
  const keys = new Map<string, KeyState>();
  for (let i = 0; i < count; i++) {
    keys.set(toBinary(key(i)), {
      packed: encodeKey(key(i)),
      chunks: 0,
      version: null,
    });
  }
  return new Batch(keys, new Map(), emptyCost());
}

Deno.test("Batch.addAll plans a group whole, or leaves the batch as it was", () => {
  const batch = batchFor(4);
  const big = new Uint8Array(300 * 1024);
  assert.ok(batch.add(key(0), big, 1));
  // Two more large values would pass Deno KV's 800 KiB an operation.
  const group = [{ key: key(1), value: big }, { key: key(2), value: big }];
  assert.equal(batch.addAll(group, 2), false);
  assert.equal([...batch.plans()].length, 1, "nothing of the group planned");
  assert.equal(batch.lastVersion, 1);
  // A group that fits is planned with its version.
  assert.ok(batch.addAll([{ key: key(3), value: new Uint8Array(10) }], 3));
  assert.equal([...batch.plans()].length, 2);
  assert.equal(batch.lastVersion, 3);
  // Alone, after a commit, the large group fits.
  batch.committed();
  assert.ok(batch.addAll(group, 2));
  assert.equal([...batch.plans()].length, 2);
});
