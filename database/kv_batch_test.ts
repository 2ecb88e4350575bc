// The Deno KV write batcher: an atomic operation's effects are planned
// together or not at all, so that a commit never holds part of them.

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  atomicWriteCost,
  MAX_ATOMIC_MUTATIONS,
  MAX_ATOMIC_SET_KEY_BYTES,
  MAX_ATOMIC_WRITE_BYTES,
  MAX_KEY_SIZE,
  MAX_VALUE_SIZE,
} from "../protocol/mod.ts";
import {
  Batch,
  emptyCost,
  type KeyState,
  planWrite,
  REMOTE_LIMITS,
  stateCost,
} from "./_kv_batch.ts";
import { STATE_HEADER_BYTES } from "./_kv_layout.ts";
import { storedKey } from "./_kv_key.ts";
import { toBinary } from "./_binary_key.ts";
import { ExpiryIndex } from "./_expiry.ts";

const key = (n: number) => new TextEncoder().encode(`key:${n}`);

/** Value sizes, crowding where a value stops fitting its entry. */
const valueLength = fc.oneof(
  fc.integer({ min: 0, max: MAX_VALUE_SIZE }),
  fc.integer({ min: 59_990, max: 65_536 }),
);

function batchFor(count: number): Batch {
  const keys = new Map<string, KeyState>();
  for (let i = 0; i < count; i++) {
    keys.set(toBinary(key(i)), {
      stored: storedKey(key(i)),
      chunks: 0,
      version: null,
      expiring: false,
    });
  }
  return new Batch(keys, new Map(), new ExpiryIndex(), emptyCost());
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

Deno.test("a remote batch keeps a KVNDB router's estimate, but takes one operation's writes alone whatever it", () => {
  // Forty writes of 4,096-byte keys: within Deno KV's own limits together,
  // more than a router estimates it takes in one write.
  const long = (i: number) => new Uint8Array(4096).fill(i + 1);
  const keys = new Map<string, KeyState>();
  for (let i = 0; i < 40; i++) {
    keys.set(toBinary(long(i)), {
      stored: storedKey(long(i)),
      chunks: 0,
      version: null,
      expiring: false,
    });
  }
  const writes = Array.from({ length: 40 }, (_, i) => ({
    key: long(i),
    value: new Uint8Array(100),
  }));
  const local = new Batch(keys, new Map(), new ExpiryIndex(), emptyCost());
  assert.ok(local.addAll(writes, 1), "a local store takes them together");
  const remote = () =>
    new Batch(keys, new Map(), new ExpiryIndex(), emptyCost(), REMOTE_LIMITS);
  const grouped = remote();
  let taken = 0;
  while (
    taken < writes.length &&
    grouped.add(writes[taken]!.key, writes[taken]!.value, 1)
  ) {
    taken++;
  }
  assert.ok(taken > 0 && taken < writes.length, `${taken} of 40 taken`);
  // The same writes as one atomic operation's: alone, they go in.
  const alone = remote();
  assert.ok(alone.addAll(writes, 1));
  assert.equal(alone.addAll([{ key: long(0), value: null }], 2), false);
});

Deno.test("atomicWriteCost bounds what a Deno KV database plans for a write, whatever the sizes", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: MAX_KEY_SIZE }),
      fc.option(valueLength, { nil: null }),
      fc.option(valueLength, { nil: null }),
      fc.boolean(),
      (keyLength, oldLength, newLength, expiring) => {
        const key = new Uint8Array(keyLength).fill(7);
        const stored = storedKey(key);
        // What the store holds: the chunks of the old value, if chunked.
        const before = oldLength === null ? null : new Uint8Array(oldLength);
        const chunks = before === null ? 0 : planWrite(
          { stored, chunks: 0, version: null, expiring: false },
          before,
          1,
        ).chunks;
        const plan = planWrite(
          { stored, chunks, version: null, expiring },
          newLength === null ? null : new Uint8Array(newLength),
          2,
          expiring ? 1_000 : undefined,
        );
        const estimate = atomicWriteCost(
          keyLength,
          oldLength,
          newLength,
          expiring,
        );
        assert.ok(plan.cost.mutations <= estimate.mutations, "mutations");
        assert.ok(plan.cost.bytes <= estimate.bytes, "bytes");
        assert.ok(plan.cost.setKeyBytes <= estimate.setKeyBytes, "set keys");
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("atomicWriteCost bounds what a Deno KV database plans for every key length", () => {
  const values = [0, 60_000, 60_001].map((n) => new Uint8Array(n));
  for (let length = 1; length <= MAX_KEY_SIZE; length++) {
    const stored = storedKey(new Uint8Array(length).fill(0xff));
    for (const value of values) {
      for (const expiring of [false, true]) {
        const plan = planWrite(
          { stored, chunks: 2, version: null, expiring },
          value,
          2,
          expiring ? 1_000 : undefined,
        );
        const estimate = atomicWriteCost(
          length,
          65_536,
          value.length,
          expiring,
        );
        const where = `key of ${length}, value of ${value.length}`;
        assert.ok(plan.cost.mutations <= estimate.mutations, where);
        assert.ok(plan.cost.bytes <= estimate.bytes, where);
        assert.ok(plan.cost.setKeyBytes <= estimate.setKeyBytes, where);
      }
    }
  }
});

Deno.test("an atomic operation within the estimated limits commits in one Deno KV operation", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.tuple(
          fc.integer({ min: 1, max: MAX_KEY_SIZE }),
          fc.option(fc.integer({ min: 0, max: 200_000 }), { nil: null }),
        ),
        { minLength: 1, maxLength: 128 },
      ),
      (writes) => {
        const keys = new Map<string, KeyState>();
        const group = writes.map(([length, value], i) => {
          // Distinct keys of the given lengths.
          const key = new Uint8Array(length).fill(1);
          key[0] = i;
          keys.set(toBinary(key), {
            stored: storedKey(key),
            chunks: 0,
            version: null,
            expiring: false,
          });
          return { key, value: value === null ? null : new Uint8Array(value) };
        });
        let bytes = 0;
        let mutations = 0;
        let setKeyBytes = 0;
        for (const { key, value } of group) {
          const cost = atomicWriteCost(key.length, null, value?.length ?? null);
          bytes += cost.bytes;
          mutations += cost.mutations;
          setKeyBytes += cost.setKeyBytes;
        }
        fc.pre(
          bytes <= MAX_ATOMIC_WRITE_BYTES &&
            mutations <= MAX_ATOMIC_MUTATIONS &&
            setKeyBytes <= MAX_ATOMIC_SET_KEY_BYTES,
        );
        // As the Deno KV backend reserves room for its state record.
        const batch = new Batch(
          keys,
          new Map(),
          new ExpiryIndex(),
          stateCost(STATE_HEADER_BYTES + 16),
        );
        assert.ok(batch.addAll(group, 5), "does not fit one commit");
      },
    ),
    { numRuns: 200 },
  );
});
