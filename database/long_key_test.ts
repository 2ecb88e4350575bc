// Keys longer than the Deno KV backend stores whole (SHORT_KEY_MAX bytes),
// up to MAX_KEY_SIZE: the backend agrees with the memory database, which
// keeps keys as they are, on every read, listing and sync, across reopens.

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  MAX_KEY_SIZE,
  type SyncEntry,
  type Write,
  WriteOp,
} from "../protocol/mod.ts";
import { SHORT_KEY_MAX } from "./_kv_key.ts";
import { KvDatabase } from "./kv_database.ts";
import { MemoryDatabase } from "./memory_database.ts";
import type { Database } from "./types.ts";

const none = new Uint8Array(0);

/** A Deno KV database in a temporary file, with a second handle to count raw records. */
async function kvStore() {
  const dir = await Deno.makeTempDir({ prefix: "kvndb_long_key_" });
  const path = `${dir}/kvndb.sqlite3`;
  const raw = await Deno.openKv(path);
  const store = {
    db: await KvDatabase.open(path),
    async reopen() {
      await store.db.close();
      store.db = await KvDatabase.open(path);
    },
    /** Every record but the state. */
    async footprint(): Promise<number> {
      let n = 0;
      for await (const entry of raw.list({ prefix: [] })) {
        if (entry.key[0] !== "s") n++;
      }
      return n;
    },
    async [Symbol.asyncDispose]() {
      await store.db.close();
      raw.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
  return store;
}

/** `length` bytes of `fill`, then `rest`. */
function key(length: number, fill: number, ...rest: number[]): Uint8Array {
  const out = new Uint8Array(length + rest.length).fill(fill);
  out.set(rest, length);
  return out;
}

/** Keys that crowd the boundary: heads, their neighbours, and long keys sharing a head. */
const keyArbitrary: fc.Arbitrary<Uint8Array> = fc.oneof(
  // The head itself, a key one short of it, and shorter prefixes of it.
  fc.constantFrom(SHORT_KEY_MAX, SHORT_KEY_MAX - 1, 1000, 1).map((n) =>
    key(n, 0x61)
  ),
  // A second head, just after the first in byte order.
  fc.constant(key(SHORT_KEY_MAX - 1, 0x61, 0x62)),
  // Long keys under either head, with short tails of extreme bytes.
  fc.tuple(
    fc.constantFrom(0x61, 0x62),
    fc.array(fc.constantFrom(0x00, 0x01, 0x7f, 0xff), {
      minLength: 1,
      maxLength: 4,
    }),
  ).map(([last, tail]) => key(SHORT_KEY_MAX - 1, 0x61, last, ...tail)),
  // Long keys of any length up to the limit, under the first head.
  fc.tuple(
    fc.integer({ min: SHORT_KEY_MAX + 1, max: MAX_KEY_SIZE }),
    fc.constantFrom(0x00, 0x61, 0xff),
  ).map(([length, fill]) => {
    const out = key(length, 0x61);
    out.fill(fill, SHORT_KEY_MAX);
    return out;
  }),
);

/** One write: a set (maybe large, maybe expiring) or a delete. */
const writeArbitrary = fc.record({
  key: keyArbitrary,
  size: fc.option(fc.constantFrom(0, 10, 70_000), { nil: null }),
  expires: fc.boolean(),
});

const hex = (keys: Uint8Array[]) =>
  keys.map((k) => `${k.length}:${k.slice(SHORT_KEY_MAX - 2).toHex()}`);

/** Every key through keys(), `limit` a page. */
async function allKeys(
  db: Database,
  prefix: Uint8Array,
  limit: number,
  now: number,
): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  let after: Uint8Array = none;
  while (true) {
    const keys = await db.keys({
      prefix,
      after,
      limit,
      maxBytes: Number.MAX_SAFE_INTEGER,
      now,
    });
    if (keys.length === 0) return out;
    out.push(...keys);
    after = keys.at(-1)!;
  }
}

/** What a range reads, as comparable text. */
async function rangeOf(
  db: Database,
  start: Uint8Array,
  end: Uint8Array,
  reverse: boolean,
  limit: number,
  now: number,
): Promise<string[]> {
  const { entries } = await db.range({
    start,
    end,
    reverse,
    limit,
    maxBytes: Number.MAX_SAFE_INTEGER,
    now,
  });
  return entries.map((e) =>
    `${hex([e.key])[0]}=${e.version}/${e.value.length}/${e.expiresAt ?? "-"}`
  );
}

/** A snapshot, flattened, as comparable text. */
async function snapshotOf(db: Database): Promise<string[]> {
  const out: SyncEntry[] = [];
  for await (const chunk of db.snapshot({ chunkBytes: 100_000 })) {
    out.push(...chunk);
  }
  return out.map((e) =>
    `${hex([e.key])[0]}=${e.version}/${e.value.length}/${e.expiresAt ?? "-"}`
  );
}

Deno.test("kv: long keys read, list, page, sync and expire as the memory database does, across a reopen", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(writeArbitrary, { minLength: 1, maxLength: 30 }),
      fc.array(
        fc.record({
          start: fc.option(keyArbitrary, { nil: none }),
          end: fc.option(keyArbitrary, { nil: none }),
          reverse: fc.boolean(),
          limit: fc.integer({ min: 1, max: 8 }),
        }),
        { minLength: 1, maxLength: 4 },
      ),
      fc.integer({ min: 1, max: 5 }),
      async (plan, ranges, pageLimit) => {
        await using kv = await kvStore();
        await using memory = new MemoryDatabase();
        const now = 1_000_000;
        const writes: Write[] = plan.map((w, i) =>
          w.size === null ? { seq: i + 1, op: WriteOp.DELETE, key: w.key } : {
            seq: i + 1,
            op: WriteOp.SET,
            key: w.key,
            value: new Uint8Array(w.size).fill(i),
            // Half of the expiring keys have expired at `now`.
            ...(w.expires ? { expiresAt: now + (i % 2 ? 1 : -1) } : {}),
          }
        );
        // Half the writes before a reopen, half after: the chunk counts and
        // expiries of long keys are loaded back from their records.
        const half = Math.ceil(writes.length / 2);
        for (const db of [kv.db, memory]) await db.apply(writes.slice(0, half));
        await kv.reopen();
        for (const db of [kv.db, memory]) await db.apply(writes.slice(half));

        for (
          const prefix of [none, key(1000, 0x61), key(SHORT_KEY_MAX, 0x61)]
        ) {
          assert.deepEqual(
            hex(await allKeys(kv.db, prefix, pageLimit, now)),
            hex(await allKeys(memory, prefix, pageLimit, now)),
          );
        }
        for (const { start, end, reverse, limit } of ranges) {
          assert.deepEqual(
            await rangeOf(kv.db, start, end, reverse, limit, now),
            await rangeOf(memory, start, end, reverse, limit, now),
          );
        }
        assert.deepEqual(await snapshotOf(kv.db), await snapshotOf(memory));
        assert.equal(await kv.db.count(now), await memory.count(now));
        assert.deepEqual(
          hex(await kv.db.expired(now, 100)),
          hex(await memory.expired(now, 100)),
        );
        for (const { key } of plan) {
          assert.deepEqual(await kv.db.get(key), await memory.get(key));
        }
        await kv.db.clear();
        assert.equal(await kv.footprint(), 0, "clear() left records behind");
      },
    ),
    { numRuns: 40 },
  );
});

Deno.test("kv: keys of MAX_KEY_SIZE bytes that differ only in their last byte keep large values apart", async () => {
  await using kv = await kvStore();
  const keys = [0x00, 0x01, 0xfe, 0xff].map((last) =>
    key(MAX_KEY_SIZE - 1, 0x00, last)
  );
  const value = (i: number) => new Uint8Array(200_000).fill(i + 1);
  await kv.db.apply(keys.map((k, i) => ({
    seq: i + 1,
    op: WriteOp.SET,
    key: k,
    value: value(i),
  })));
  await kv.reopen();
  for (const [i, k] of keys.entries()) {
    assert.deepEqual((await kv.db.get(k))?.value, value(i));
  }
  assert.deepEqual(
    hex(await allKeys(kv.db, none, 2, 0)),
    hex(keys),
  );
  // Overwritten small after the reopen, then deleted: no chunk is left.
  await kv.db.apply(keys.map((k, i) => ({
    seq: 10 + i,
    op: WriteOp.SET,
    key: k,
    value: new Uint8Array(1),
  })));
  await kv.db.apply(keys.map((k, i) => ({
    seq: 20 + i,
    op: WriteOp.DELETE,
    key: k,
  })));
  assert.equal(await kv.footprint(), 0);
  assert.equal(await kv.db.get(key(MAX_KEY_SIZE + 1, 0)), null);
});
