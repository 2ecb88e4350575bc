// One conformance suite for database backends, run against memory and Deno KV
// alike. A new backend adds a fixture factory and one `databaseSuite()` call
// at the bottom of this file.

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  MAX_KEY_SIZE,
  MAX_VALUE_SIZE,
  type SyncEntry,
  type Write,
  WriteOp,
} from "../protocol/mod.ts";
import { KvDatabase } from "./kv_database.ts";
import { MemoryDatabase } from "./memory_database.ts";
import type { Database, StoredEntry } from "./types.ts";

/** A backend under test, on storage of its own. */
interface Fixture extends AsyncDisposable {
  /** The database; replaced by {@linkcode Fixture.reopen}. */
  db: Database;
  /** Closes the database and opens it again on the same storage. */
  reopen(): Promise<void>;
  /**
   * How many records the underlying store holds, for backends that can tell:
   * it shows leftovers (such as stale chunks) the `Database` API hides.
   */
  footprint?(): Promise<number>;
}

/** Options for {@linkcode databaseSuite}. */
interface SuiteOptions {
  /** Whether the data outlives {@linkcode Fixture.reopen}. */
  persistent?: boolean;
}

const none = new Uint8Array(0);
const encoder = new TextEncoder();

/** Key bytes from text. */
function bytes(text: string): Uint8Array {
  return encoder.encode(text);
}

/** A set write. */
function set(seq: number, key: Uint8Array, value: Uint8Array): Write {
  return { seq, op: WriteOp.SET, key, value };
}

/** A delete write. */
function del(seq: number, key: Uint8Array): Write {
  return { seq, op: WriteOp.DELETE, key };
}

/** A value of `size` bytes that differs with `seed` and along its length, so misplaced or stale chunks show. */
function pattern(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (i * 31 + (i >>> 8) + seed) & 0xff;
  return out;
}

/** Compares byte strings in byte order. */
function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!;
  }
  return a.length - b.length;
}

/** Keys as hex, for assertions that print well. */
function hex(keys: Uint8Array[]): string[] {
  return keys.map((k) =>
    Array.from(k, (b) => b.toString(16).padStart(2, "0")).join("")
  );
}

/** Asserts two byte strings are equal without printing half a megabyte when not. */
function assertBytes(
  actual: Uint8Array | undefined,
  expected: Uint8Array,
  what = "value",
): void {
  assert.ok(actual !== undefined, `${what} is missing`);
  assert.equal(actual.length, expected.length, `${what} has the wrong length`);
  const at = actual.findIndex((b, i) => b !== expected[i]);
  assert.equal(at, -1, `${what} differs at byte ${at}`);
}

/** Asserts a stored entry holds this value and version. */
function assertEntry(
  actual: StoredEntry | null,
  value: Uint8Array,
  version: number,
): void {
  assert.ok(actual !== null, "entry is missing");
  assert.equal(actual.version, version);
  assertBytes(actual.value, value);
}

/** Pages through every key with the prefix. */
async function listAll(
  db: Database,
  prefix: Uint8Array,
  page = { limit: 7, maxBytes: Number.MAX_SAFE_INTEGER },
): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  let after: Uint8Array = none;
  while (true) {
    const keys = await db.keys({ prefix, after, ...page });
    if (keys.length === 0) return out;
    // Strictly ascending past the cursor, or paging would never end.
    for (const key of keys) {
      assert.ok(
        compareBytes(key, after) > 0,
        "keys() went back past its cursor",
      );
      after = key;
    }
    out.push(...keys);
  }
}

/** Collects a snapshot's chunks. */
async function snapshotOf(
  db: Database,
  chunkBytes: number,
): Promise<SyncEntry[][]> {
  const chunks: SyncEntry[][] = [];
  for await (const chunk of db.snapshot({ chunkBytes })) chunks.push(chunk);
  return chunks;
}

/** Registers the conformance tests for one backend. */
function databaseSuite(
  name: string,
  factory: () => Promise<Fixture>,
  options: SuiteOptions = {},
): void {
  function test(
    title: string,
    fn: (fixture: Fixture) => Promise<void>,
    ignore = false,
  ): void {
    Deno.test({
      name: `${name}: ${title}`,
      ignore,
      async fn() {
        await using fixture = await factory();
        await fn(fixture);
      },
    });
  }

  test("get() returns null for a missing key", async ({ db }) => {
    assert.equal(await db.get(bytes("missing")), null);
  });

  test("apply() stores values with the write's seq as their version", async ({ db }) => {
    await db.apply([
      set(1, bytes("a"), bytes("one")),
      set(2, bytes("b"), bytes("two")),
    ]);
    assertEntry(await db.get(bytes("a")), bytes("one"), 1);
    assertEntry(await db.get(bytes("b")), bytes("two"), 2);
    assert.equal(await db.count(), 2);
  });

  test("apply() deletes keys, and deleting a missing key is harmless", async ({ db }) => {
    await db.apply([
      set(1, bytes("a"), bytes("one")),
      del(2, bytes("nothing")),
    ]);
    await db.apply([del(3, bytes("a"))]);
    assert.equal(await db.get(bytes("a")), null);
    assert.equal(await db.count(), 0);
    assert.equal((await db.state()).applied, 3);
  });

  test("apply() applies writes to one key in order, the last one winning", async ({ db }) => {
    const key = bytes("k");
    await db.apply([
      set(1, key, bytes("1")),
      set(2, key, bytes("2")),
      del(3, key),
      set(4, key, bytes("4")),
    ]);
    assertEntry(await db.get(key), bytes("4"), 4);
    await db.apply([set(5, key, bytes("5")), del(6, key)]);
    assert.equal(await db.get(key), null);
  });

  test("apply() with no writes changes nothing", async ({ db }) => {
    await db.apply([set(4, bytes("a"), bytes("x"))]);
    await db.apply([]);
    assert.equal((await db.state()).applied, 4);
    assert.equal(await db.count(), 1);
  });

  test("state() defaults to an empty cluster id, nothing applied, complete", async ({ db }) => {
    const { nodeId, ...rest } = await db.state();
    assert.deepStrictEqual(rest, {
      clusterId: none,
      applied: 0,
      complete: true,
    });
    assert.equal(nodeId.length, 16, "a fresh store has a 16-byte node id");
    assert.deepStrictEqual((await db.state()).nodeId, nodeId, "a stable one");
  });

  test("setState() replaces the state and keeps its own copy of the cluster id", async ({ db }) => {
    const clusterId = new Uint8Array([1, 2, 3]);
    const nodeId = new Uint8Array([4, 5]);
    await db.setState({ clusterId, nodeId, applied: 7, complete: false });
    clusterId[0] = 9;
    nodeId[0] = 9;
    assert.deepStrictEqual(await db.state(), {
      clusterId: new Uint8Array([1, 2, 3]),
      nodeId: new Uint8Array([4, 5]),
      applied: 7,
      complete: false,
    });
  });

  test("apply() sets state.applied to the last seq and keeps the rest of the state", async ({ db }) => {
    await db.setState({
      clusterId: new Uint8Array([5]),
      nodeId: new Uint8Array([6]),
      applied: 10,
      complete: false,
    });
    await db.apply([
      set(11, bytes("a"), bytes("x")),
      set(12, bytes("b"), bytes("y")),
    ]);
    assert.deepStrictEqual(await db.state(), {
      clusterId: new Uint8Array([5]),
      nodeId: new Uint8Array([6]),
      applied: 12,
      complete: false,
    });
  });

  test("apply() copies keys and values that are views into bigger buffers", async ({ db }) => {
    const buffer = pattern(300_000, 1);
    const key = buffer.subarray(10, 20);
    const small = buffer.subarray(100, 200);
    const large = buffer.subarray(1000, 201_000);
    const keyCopy = key.slice();
    const smallCopy = small.slice();
    const largeCopy = large.slice();
    await db.apply([
      set(1, key, small),
      set(2, buffer.subarray(20, 30), large),
    ]);
    buffer.fill(0);
    assertEntry(await db.get(keyCopy), smallCopy, 1);
    assertEntry(
      await db.get(pattern(300_000, 1).subarray(20, 30)),
      largeCopy,
      2,
    );
    assert.deepStrictEqual(
      hex(await listAll(db, none)),
      hex([keyCopy, pattern(30, 1).subarray(20, 30)].sort(compareBytes)),
    );
  });

  test("binary keys with 0x00 and 0xFF bytes list in byte order", async ({ db }) => {
    const keys = [
      [0x00],
      [0x00, 0x00],
      [0x00, 0x01],
      [0x00, 0xff],
      [0x01],
      [0x01, 0x00],
      [0x7f],
      [0x80],
      [0xfe, 0xff, 0xff],
      [0xff],
      [0xff, 0x00],
      [0xff, 0xff],
      [0xff, 0xff, 0xff],
    ].map((k) => new Uint8Array(k));
    keys.push(
      new Uint8Array(MAX_KEY_SIZE),
      new Uint8Array(MAX_KEY_SIZE).fill(0xff),
    );
    const sorted = [...keys].sort(compareBytes);
    // Insert in reverse so that order comes from the backend, not from us.
    await db.apply([...keys].reverse().map((k, i) => set(i + 1, k, k)));
    assert.deepStrictEqual(hex(await listAll(db, none)), hex(sorted));
    for (const key of keys) assertBytes((await db.get(key))?.value, key, "key");
  });

  test("keys of MAX_KEY_SIZE bytes of 0x00 and of 0xFF hold large values", async ({ db }) => {
    const zeros = new Uint8Array(MAX_KEY_SIZE);
    const ones = new Uint8Array(MAX_KEY_SIZE).fill(0xff);
    await db.apply([
      set(1, zeros, pattern(MAX_VALUE_SIZE, 1)),
      set(2, ones, pattern(100_000, 2)),
    ]);
    assertEntry(await db.get(zeros), pattern(MAX_VALUE_SIZE, 1), 1);
    assertEntry(await db.get(ones), pattern(100_000, 2), 2);
    assert.equal(await db.get(new Uint8Array(MAX_KEY_SIZE + 1)), null);
  });

  test("keys() lists only the keys that start with the prefix", async ({ db }) => {
    const keys = [
      [0x61],
      [0x61, 0x00],
      [0x61, 0x62],
      [0x61, 0xff],
      [0x61, 0xff, 0x00],
      [0x61, 0xff, 0xff, 0x01],
      [0x62],
      [0x62, 0x00],
      [0xff],
      [0xff, 0xff],
    ].map((k) => new Uint8Array(k));
    await db.apply(keys.map((k, i) => set(i + 1, k, none)));
    const only = (prefix: number[]) =>
      hex(keys.filter((k) => prefix.every((b, i) => k[i] === b)));
    for (
      const prefix of [
        [],
        [0x61],
        [0x61, 0xff],
        [0x61, 0xff, 0xff],
        [0x62],
        [0xff],
        [0xff, 0xff],
        [0x63],
        [0x61, 0x62, 0x63],
      ]
    ) {
      assert.deepStrictEqual(
        hex(
          await listAll(db, new Uint8Array(prefix), {
            limit: 2,
            maxBytes: 1 << 20,
          }),
        ),
        only(prefix),
        `prefix ${hex([new Uint8Array(prefix)])}`,
      );
    }
  });

  test("keys() pages through keys in byte order with a cursor, each key exactly once", async ({ db }) => {
    const random = fc.sample(fc.uint8Array({ minLength: 1, maxLength: 6 }), {
      numRuns: 300,
      seed: 42,
    });
    const unique = [...new Map(random.map((k) => [hex([k])[0], k])).values()];
    await db.apply(unique.map((k, i) => set(i + 1, k, none)));
    const sorted = hex([...unique].sort(compareBytes));
    for (const limit of [1, 3, 50, 10_000]) {
      assert.deepStrictEqual(
        hex(await listAll(db, none, { limit, maxBytes: 1 << 20 })),
        sorted,
        `limit ${limit}`,
      );
    }
    // A cursor that is not itself a key.
    const after = new Uint8Array([0x80]);
    const page = await db.keys({
      prefix: none,
      after,
      limit: 10_000,
      maxBytes: 1 << 20,
    });
    assert.deepStrictEqual(hex(page), sorted.filter((k) => k > "80"));
  });

  test("keys() respects limit and maxBytes", async ({ db }) => {
    const keys = Array.from(
      { length: 20 },
      (_, i) => bytes(`key-${String(i).padStart(2, "0")}`),
    );
    await db.apply(keys.map((k, i) => set(i + 1, k, none)));
    assert.equal(
      (await db.keys({
        prefix: none,
        after: none,
        limit: 5,
        maxBytes: 1 << 20,
      })).length,
      5,
    );
    assert.deepStrictEqual(
      await db.keys({ prefix: none, after: none, limit: 0, maxBytes: 1 << 20 }),
      [],
    );
    // Six-byte keys: 20 bytes hold three of them, not a fourth.
    const page = await db.keys({
      prefix: none,
      after: none,
      limit: 100,
      maxBytes: 20,
    });
    assert.deepStrictEqual(hex(page), hex(keys.slice(0, 3)));
    const last = await db.keys({
      prefix: bytes("key-1"),
      after: bytes("key-18"),
      limit: 100,
      maxBytes: 1 << 20,
    });
    assert.deepStrictEqual(hex(last), hex([bytes("key-19")]));
    assert.deepStrictEqual(
      await db.keys({
        prefix: bytes("key-0"),
        after: bytes("key-5"),
        limit: 100,
        maxBytes: 1 << 20,
      }),
      [],
    );
  });

  test("values of 0 bytes, around 64 KiB and of MAX_VALUE_SIZE round-trip", async ({ db }) => {
    const sizes = [
      0,
      1,
      65_527,
      65_528,
      65_535,
      65_536,
      65_537,
      131_072,
      131_073,
      300_000,
      MAX_VALUE_SIZE - 1,
      MAX_VALUE_SIZE,
    ];
    await db.apply(
      sizes.map((size, i) => set(i + 1, bytes(`v${size}`), pattern(size, i))),
    );
    for (const [i, size] of sizes.entries()) {
      assertEntry(await db.get(bytes(`v${size}`)), pattern(size, i), i + 1);
    }
    const snapshot = (await snapshotOf(db, 1 << 20)).flat();
    assert.equal(snapshot.length, sizes.length);
    for (const entry of snapshot) {
      const size = Number(new TextDecoder().decode(entry.key).slice(1));
      assertBytes(
        entry.value,
        pattern(size, sizes.indexOf(size)),
        `snapshot of v${size}`,
      );
    }
  });

  test("overwriting a large value with a small one and deleting it leaves nothing stale", async (fixture) => {
    const { db } = fixture;
    const key = bytes("big");
    const other = bytes("other");
    await db.apply([set(1, other, bytes("stays"))]);
    await db.apply([set(2, key, bytes("small"))]);
    const small = await fixture.footprint?.();
    await db.apply([set(3, key, pattern(MAX_VALUE_SIZE, 3))]);
    await db.apply([set(4, key, pattern(70_000, 4))]);
    assertEntry(await db.get(key), pattern(70_000, 4), 4);
    await db.apply([set(5, key, bytes("small again"))]);
    assertEntry(await db.get(key), bytes("small again"), 5);
    assert.equal(await fixture.footprint?.(), small);
    await db.apply([set(6, key, pattern(MAX_VALUE_SIZE, 6))]);
    await db.apply([del(7, key)]);
    assert.equal(await db.get(key), null);
    assert.equal(await db.count(), 1);
    const snapshot = (await snapshotOf(db, 1 << 20)).flat();
    assert.deepStrictEqual(hex(snapshot.map((e) => e.key)), hex([other]));
    const deleted = await fixture.footprint?.();
    if (small !== undefined) assert.equal(deleted, small - 1);
    // The same within a single batch.
    await db.apply([
      set(8, key, pattern(MAX_VALUE_SIZE, 8)),
      set(9, key, pattern(140_000, 9)),
      set(10, key, pattern(MAX_VALUE_SIZE, 10)),
      set(11, key, bytes("small")),
    ]);
    assertEntry(await db.get(key), bytes("small"), 11);
    assert.equal(await fixture.footprint?.(), small);
    await db.apply([set(12, key, pattern(MAX_VALUE_SIZE, 12)), del(13, key)]);
    assert.equal(await fixture.footprint?.(), deleted);
  });

  test("merge() over large values leaves nothing stale", async (fixture) => {
    const { db } = fixture;
    const key = bytes("big");
    await db.apply([set(1, bytes("other"), bytes("stays"))]);
    const before = await fixture.footprint?.();
    await db.merge([{ key, value: bytes("small"), version: 2 }]);
    const small = await fixture.footprint?.();
    await db.merge([{ key, value: pattern(MAX_VALUE_SIZE, 3), version: 3 }]);
    await db.merge([
      { key, value: pattern(200_000, 4), version: 4 },
      { key, value: bytes("small again"), version: 5 },
    ]);
    assertEntry(await db.get(key), bytes("small again"), 5);
    assert.equal(await fixture.footprint?.(), small);
    await db.merge([{ key, value: pattern(MAX_VALUE_SIZE, 6), version: 6 }]);
    await db.apply([del(7, key)]);
    assert.equal(await fixture.footprint?.(), before);
    assert.equal(await db.count(), 1);
  });

  test(
    "a large value overwritten after a reopen leaves nothing stale",
    async (fixture) => {
      const key = bytes("big");
      await fixture.db.apply([set(1, key, bytes("small"))]);
      const small = await fixture.footprint?.();
      await fixture.db.apply([set(2, key, pattern(MAX_VALUE_SIZE, 2))]);
      await fixture.reopen();
      await fixture.db.apply([set(3, key, bytes("small again"))]);
      assertEntry(await fixture.db.get(key), bytes("small again"), 3);
      assert.equal(await fixture.footprint?.(), small);
      await fixture.db.apply([set(4, key, pattern(200_000, 4))]);
      await fixture.reopen();
      await fixture.db.apply([del(5, key)]);
      await fixture.reopen();
      await fixture.db.apply([set(6, key, bytes("small"))]);
      assert.equal(await fixture.footprint?.(), small);
    },
    !options.persistent,
  );

  test("apply() commits batches larger than one atomic operation of the store", async ({ db }) => {
    const writes: Write[] = [];
    let seq = 0;
    for (let i = 0; i < 2_500; i++) {
      writes.push(set(++seq, bytes(`small-${i}`), bytes(`${i}`)));
    }
    for (let i = 0; i < 150; i++) {
      const key = new Uint8Array(MAX_KEY_SIZE).fill(i);
      writes.push(set(++seq, key, bytes(`long-${i}`)));
    }
    for (let i = 0; i < 6; i++) {
      writes.push(set(++seq, bytes(`huge-${i}`), pattern(MAX_VALUE_SIZE, i)));
    }
    for (let i = 0; i < 1_000; i++) {
      writes.push(del(++seq, bytes(`small-${i * 2}`)));
    }
    await db.apply(writes);
    assert.equal((await db.state()).applied, seq);
    assert.equal(await db.count(), 2_500 - 1_000 + 150 + 6);
    assert.equal(await db.get(bytes("small-0")), null);
    assertEntry(await db.get(bytes("small-1")), bytes("1"), 2);
    assertEntry(
      await db.get(new Uint8Array(MAX_KEY_SIZE).fill(149)),
      bytes("long-149"),
      2_650,
    );
    assertEntry(
      await db.get(bytes("huge-5")),
      pattern(MAX_VALUE_SIZE, 5),
      2_656,
    );
  });

  test("state and data persist across close and reopen", async (fixture) => {
    await fixture.db.setState({
      clusterId: new Uint8Array([7, 7]),
      nodeId: new Uint8Array([8]),
      applied: 0,
      complete: false,
    });
    await fixture.db.apply([
      set(1, bytes("a"), bytes("x")),
      set(2, bytes("big"), pattern(200_000, 2)),
    ]);
    await fixture.reopen();
    assert.deepStrictEqual(await fixture.db.state(), {
      clusterId: new Uint8Array([7, 7]),
      nodeId: new Uint8Array([8]),
      applied: 2,
      complete: false,
    });
    assertEntry(await fixture.db.get(bytes("a")), bytes("x"), 1);
    assertEntry(await fixture.db.get(bytes("big")), pattern(200_000, 2), 2);
  }, !options.persistent);

  test("merge() stores absent keys and keeps the newer version of present ones", async ({ db }) => {
    await db.apply([
      set(5, bytes("a"), bytes("a5")),
      set(6, bytes("b"), bytes("b6")),
    ]);
    await db.merge([
      { key: bytes("a"), value: bytes("a3"), version: 3 },
      { key: bytes("a"), value: bytes("a5?"), version: 5 },
      { key: bytes("b"), value: pattern(MAX_VALUE_SIZE, 9), version: 9 },
      { key: bytes("c"), value: bytes("c2"), version: 2 },
      { key: bytes("c"), value: bytes("c1"), version: 1 },
      { key: bytes("d"), value: pattern(100_000, 4), version: 4 },
      { key: bytes("d"), value: bytes("d8"), version: 8 },
    ]);
    assertEntry(await db.get(bytes("a")), bytes("a5"), 5);
    assertEntry(await db.get(bytes("b")), pattern(MAX_VALUE_SIZE, 9), 9);
    assertEntry(await db.get(bytes("c")), bytes("c2"), 2);
    assertEntry(await db.get(bytes("d")), bytes("d8"), 8);
    assert.equal((await db.state()).applied, 6);
    assert.equal(await db.count(), 4);
  });

  test("merge() copies keys and values that are views into bigger buffers", async ({ db }) => {
    const buffer = pattern(200_000, 3);
    await db.merge([{
      key: buffer.subarray(0, 4),
      value: buffer.subarray(4, 100_004),
      version: 1,
    }]);
    const expected = buffer.slice(4, 100_004);
    const key = buffer.slice(0, 4);
    buffer.fill(0);
    assertEntry(await db.get(key), expected, 1);
  });

  test("snapshot() streams every entry in byte order in chunks bounded by chunkBytes", async ({ db }) => {
    const writes: Write[] = [];
    for (let i = 0; i < 300; i++) {
      const size = i % 50 === 7 ? 100_000 : i % 13;
      writes.push(
        set(
          i + 1,
          new Uint8Array([i % 7 === 0 ? 0xff : 0x00, i >> 8, i & 0xff]),
          pattern(size, i),
        ),
      );
    }
    await db.apply(writes);
    const chunkBytes = 256;
    const chunks = await snapshotOf(db, chunkBytes);
    for (const chunk of chunks) {
      assert.ok(chunk.length > 0, "empty chunk");
      const size = chunk.reduce((n, e) => n + e.key.length + e.value.length, 0);
      assert.ok(
        chunk.length === 1 || size <= chunkBytes,
        `chunk of ${chunk.length} entries and ${size} bytes`,
      );
    }
    const entries = chunks.flat();
    const expected = [...writes].sort((a, b) => compareBytes(a.key, b.key));
    assert.deepStrictEqual(
      hex(entries.map((e) => e.key)),
      hex(expected.map((w) => w.key)),
    );
    for (const [i, entry] of entries.entries()) {
      assert.equal(entry.version, expected[i]!.seq);
      assertBytes(entry.value, expected[i]!.value!);
    }
    // A chunk only ends early when the next entry would overflow it.
    for (const [i, chunk] of chunks.entries()) {
      const next = chunks[i + 1]?.[0];
      if (next === undefined) break;
      const size = chunk.reduce((n, e) => n + e.key.length + e.value.length, 0);
      assert.ok(
        size + next.key.length + next.value.length > chunkBytes,
        "chunk ended early",
      );
    }
  });

  test("snapshot() of an empty database yields no chunks", async ({ db }) => {
    assert.deepStrictEqual(await snapshotOf(db, 1024), []);
  });

  test("expiry: a set carries its expiry to get, and a plain set or a delete removes it", async ({ db }) => {
    const at = Date.now() + 60_000;
    const big = pattern(100_000, 7);
    await db.apply([
      { ...set(1, bytes("a"), bytes("one")), expiresAt: at },
      { ...set(2, bytes("big"), big), expiresAt: at + 1 },
      set(3, bytes("plain"), bytes("p")),
    ]);
    assert.equal((await db.get(bytes("a")))?.expiresAt, at);
    const stored = await db.get(bytes("big"));
    assert.equal(stored?.expiresAt, at + 1);
    assertBytes(stored?.value, big, "chunked value with an expiry");
    assert.equal((await db.get(bytes("plain")))?.expiresAt, undefined);
    await db.apply([set(4, bytes("a"), bytes("two")), del(5, bytes("big"))]);
    const a = await db.get(bytes("a"));
    assertEntry(a, bytes("two"), 4);
    assert.equal(a?.expiresAt, undefined);
    assert.deepEqual(await db.expired(at + 10, 10), []);
  });

  test("expiry: keys(), count() and expired() judge by the time given", async ({ db }) => {
    const now = 1_000_000;
    const writes: Write[] = [];
    for (let i = 0; i < 20; i++) {
      writes.push({
        ...set(i + 1, bytes(`k${String(i).padStart(2, "0")}`), bytes("v")),
        // Even keys expire at now - i (already past), odd ones later.
        expiresAt: i % 2 === 0 ? now - i : now + 1_000 + i,
      });
    }
    writes.push(set(21, bytes("stays"), bytes("v")));
    await db.apply(writes);
    const page = await db.keys({
      prefix: new Uint8Array(0),
      after: new Uint8Array(0),
      limit: 100,
      maxBytes: 1 << 20,
      now,
    });
    assert.deepEqual(
      page.map((k) => new TextDecoder().decode(k)),
      [
        ...Array.from(
          { length: 10 },
          (_, j) => `k${String(2 * j + 1).padStart(2, "0")}`,
        ),
        "stays",
      ],
    );
    assert.equal(await db.count(now), 11);
    assert.equal(await db.count(), 21);
    // Earliest expiry first: k18 (now - 18), k16, …
    const expired = await db.expired(now, 3);
    assert.deepEqual(
      expired.map((k) => new TextDecoder().decode(k)),
      ["k18", "k16", "k14"],
    );
    assert.equal((await db.expired(now, 100)).length, 10);
    assert.equal((await db.expired(now + 10_000, 100)).length, 20);
  });

  test("expiry: snapshot() and merge() carry it; an older entry does not replace it", async ({ db }) => {
    const at = Date.now() + 60_000;
    await db.merge([
      { key: bytes("a"), value: bytes("1"), version: 5, expiresAt: at },
      { key: bytes("b"), value: bytes("2"), version: 6 },
    ]);
    await db.merge([{ key: bytes("a"), value: bytes("0"), version: 4 }]);
    const entries = (await snapshotOf(db, 1 << 20)).flat();
    assert.equal(entries.length, 2);
    assert.equal(entries[0]?.expiresAt, at);
    assert.equal(entries[1]?.expiresAt, undefined);
    await db.merge([{ key: bytes("a"), value: bytes("9"), version: 9 }]);
    assert.equal((await db.get(bytes("a")))?.expiresAt, undefined);
    assert.deepEqual(await db.expired(at + 1, 10), []);
  });

  test(
    "expiry: survives a reopen, and clear() removes it",
    async (fixture) => {
      const at = Date.now() + 60_000;
      await fixture.db.apply([
        { ...set(1, bytes("a"), bytes("1")), expiresAt: at },
      ]);
      await fixture.reopen();
      assert.equal((await fixture.db.get(bytes("a")))?.expiresAt, at);
      assert.equal((await fixture.db.expired(at, 10)).length, 1);
      assert.equal(await fixture.db.count(at), 0);
      await fixture.db.clear();
      assert.deepEqual(await fixture.db.expired(at, 10), []);
      await fixture.reopen();
      assert.deepEqual(await fixture.db.expired(at, 10), []);
      assert.equal(await fixture.footprint?.(), 1);
    },
    !options.persistent,
  );

  test("clear() removes every key but keeps the state", async (fixture) => {
    const { db } = fixture;
    await db.setState({
      clusterId: new Uint8Array([1]),
      nodeId: new Uint8Array([2]),
      applied: 0,
      complete: true,
    });
    const empty = await fixture.footprint?.();
    const writes: Write[] = [];
    for (let i = 0; i < 1_200; i++) {
      writes.push(
        set(
          i + 1,
          bytes(`k${i}`),
          i % 100 === 0 ? pattern(200_000, i) : bytes("v"),
        ),
      );
    }
    await db.apply(writes);
    await db.clear();
    assert.equal(await db.count(), 0);
    assert.deepStrictEqual(
      await db.keys({
        prefix: none,
        after: none,
        limit: 10,
        maxBytes: 1 << 20,
      }),
      [],
    );
    assert.deepStrictEqual(await snapshotOf(db, 1024), []);
    assert.equal(await db.get(bytes("k0")), null);
    assert.equal(await fixture.footprint?.(), empty);
    assert.deepStrictEqual(await db.state(), {
      clusterId: new Uint8Array([1]),
      nodeId: new Uint8Array([2]),
      applied: 1_200,
      complete: true,
    });
    await db.apply([set(1_201, bytes("k0"), bytes("again"))]);
    assertEntry(await db.get(bytes("k0")), bytes("again"), 1_201);
  });

  test("close() is idempotent", async ({ db }) => {
    await db.close();
    await db.close();
  });

  test("random batches of writes and merges leave the same contents as a Map model", async () => {
    const key = fc.uint8Array({ minLength: 1, maxLength: 3 }).map((k) =>
      k.map((b) => [0x00, 0x01, 0x7f, 0x80, 0xff][b % 5]!)
    );
    const size = fc.oneof(
      { arbitrary: fc.nat(40), weight: 10 },
      {
        arbitrary: fc.constantFrom(65_527, 65_528, 65_537, 200_000),
        weight: 1,
      },
    );
    const write = fc.record({ key, size: fc.option(size, { freq: 4 }) });
    const step = fc.oneof(
      {
        arbitrary: fc.record({ apply: fc.array(write, { maxLength: 25 }) }),
        weight: 3,
      },
      {
        arbitrary: fc.record({
          merge: fc.array(fc.record({ key, size, version: fc.nat(300) }), {
            maxLength: 10,
          }),
        }),
        weight: 1,
      },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: 6 }), async (steps) => {
        await using fixture = await factory();
        const { db } = fixture;
        const model = new Map<
          string,
          { key: Uint8Array; value: Uint8Array; version: number }
        >();
        let seq = 0;
        for (const s of steps) {
          if ("apply" in s) {
            const writes = s.apply.map((w): Write => {
              seq++;
              return w.size === null
                ? del(seq, w.key)
                : set(seq, w.key, pattern(w.size, seq));
            });
            await db.apply(writes);
            for (const w of writes) {
              const id = hex([w.key])[0]!;
              if (w.op === WriteOp.DELETE) model.delete(id);
              else {model.set(id, {
                  key: w.key,
                  value: w.value!,
                  version: w.seq,
                });}
            }
          } else {
            const entries = s.merge.map((e) => ({
              key: e.key,
              value: pattern(e.size, e.version),
              version: e.version,
            }));
            await db.merge(entries);
            for (const e of entries) {
              const id = hex([e.key])[0]!;
              const current = model.get(id);
              if (current === undefined || current.version < e.version) {
                model.set(id, e);
              }
            }
          }
        }
        const expected = [...model.values()].sort((a, b) =>
          compareBytes(a.key, b.key)
        );
        assert.equal((await db.state()).applied, seq);
        assert.equal(await db.count(), expected.length);
        assert.deepStrictEqual(
          hex(await listAll(db, none, { limit: 3, maxBytes: 1 << 20 })),
          hex(expected.map((e) => e.key)),
        );
        const snapshot = (await snapshotOf(db, 1000)).flat();
        assert.deepStrictEqual(
          hex(snapshot.map((e) => e.key)),
          hex(expected.map((e) => e.key)),
        );
        for (const [i, e] of expected.entries()) {
          assertEntry(await db.get(e.key), e.value, e.version);
          assert.equal(snapshot[i]!.version, e.version);
          assertBytes(snapshot[i]!.value, e.value);
        }
      }),
      { numRuns: 30 },
    );
  });
}

/** A memory database; it keeps nothing across a reopen. */
function memoryFixture(): Promise<Fixture> {
  const fixture: Fixture = {
    db: new MemoryDatabase(),
    reopen() {
      return Promise.reject(
        new Error("A memory database keeps nothing to reopen"),
      );
    },
    [Symbol.asyncDispose]() {
      return fixture.db.close();
    },
  };
  return Promise.resolve(fixture);
}

/** A Deno KV database in a file of a fresh temporary directory, removed afterwards. */
async function kvFixture(): Promise<Fixture> {
  const dir = await Deno.makeTempDir({ prefix: "kvndb_test_" });
  const path = `${dir}/kvndb.sqlite3`;
  // Kept beside the database (which owns and closes it) to count raw entries.
  let kv = await Deno.openKv(path);
  const fixture: Fixture = {
    db: new KvDatabase(kv),
    async reopen() {
      await fixture.db.close();
      kv = await Deno.openKv(path);
      fixture.db = new KvDatabase(kv);
    },
    async footprint() {
      let n = 0;
      for await (const _ of kv.list({ prefix: [] })) n++;
      return n;
    },
    async [Symbol.asyncDispose]() {
      await fixture.db.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
  return fixture;
}

databaseSuite("memory", memoryFixture);
databaseSuite("kv", kvFixture, { persistent: true });

// ------------------------------------------------------ Deno KV only

/**
 * The writes of the crash test, by seq: 37 keys, some deleted, some values
 * large enough to need chunks. Self-contained, as its source is sent to the
 * child process.
 */
function crashWrite(seq: number): Write {
  const key = new TextEncoder().encode(`key-${seq % 37}`);
  if (seq % 11 === 0) return { seq, op: 2, key };
  const size = seq % 5 === 0 ? 70_000 + (seq % 3) * 65_536 : seq % 100;
  const value = new Uint8Array(size);
  for (let i = 0; i < size; i++) value[i] = (seq + i) & 0xff;
  return { seq, op: 1, key, value };
}

Deno.test("kv: after a kill -9 mid-write, the data agrees with state.applied", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kvndb_test_" });
  try {
    const path = `${dir}/kvndb.sqlite3`;
    const module = new URL("./kv_database.ts", import.meta.url).href;
    // The writer resumes where the last one stopped, as a node would.
    const code = `
      import { KvDatabase } from ${JSON.stringify(module)};
      ${crashWrite.toString()}
      const db = await KvDatabase.open(${JSON.stringify(path)});
      const start = (await db.state()).applied;
      for (let seq = start; ;) {
        const writes = [];
        for (let i = 0; i < 40; i++) writes.push(crashWrite(++seq));
        await db.apply(writes);
        if (seq === start + 400) console.log("ready");
      }
    `;
    // A kill lands between two atomic operations of one apply() only some of
    // the time, so crash more than once.
    let last = 0;
    for (let round = 0; round < 5; round++) {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["eval", "--unstable-kv", code],
        cwd: new URL("..", import.meta.url),
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      const reader = child.stdout.getReader();
      const { done } = await reader.read();
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 200));
      child.kill("SIGKILL");
      await child.status;
      await reader.cancel();
      assert.ok(!done, "the writer died before it was ready");

      await using db = await KvDatabase.open(path);
      const { applied } = await db.state();
      assert.ok(applied >= last + 400, `applied is ${applied} after ${last}`);
      last = applied;
      const expected = new Map<string, Write>();
      for (let seq = 1; seq <= applied; seq++) {
        const write = crashWrite(seq);
        expected.set(new TextDecoder().decode(write.key), write);
      }
      let present = 0;
      for (const [key, write] of expected) {
        const entry = await db.get(bytes(key));
        if (write.op === WriteOp.DELETE) {
          assert.equal(entry, null, `${key} should be deleted at ${applied}`);
        } else {
          present++;
          assertEntry(entry, write.value!, write.seq);
        }
      }
      assert.equal(await db.count(), present);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("kv: chunks of a commit that failed yet happened are still cleaned up", async () => {
  const kv = await Deno.openKv(":memory:");
  // A lost connection to a remote store: the commit lands, the caller hears
  // of an error.
  let lose = false;
  const flaky = new Proxy(kv, {
    get(target, property) {
      if (property === "atomic") {
        return () => {
          const atomic = target.atomic();
          const commit = atomic.commit.bind(atomic);
          atomic.commit = async () => {
            const result = await commit();
            if (lose) throw new Error("Connection lost");
            return result;
          };
          return atomic;
        };
      }
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  await using db = new KvDatabase(flaky);
  const footprint = async () => {
    let n = 0;
    for await (const _ of kv.list({ prefix: [] })) n++;
    return n;
  };
  const key = bytes("big");
  await db.apply([set(1, key, bytes("small"))]);
  const small = await footprint();
  lose = true;
  await assert.rejects(
    db.apply([set(2, key, pattern(MAX_VALUE_SIZE, 2))]),
    /Connection lost/,
  );
  lose = false;
  assertEntry(await db.get(key), pattern(MAX_VALUE_SIZE, 2), 2);
  assert.equal((await db.state()).applied, 2);
  await db.apply([set(3, key, bytes("small again"))]);
  assert.equal(await footprint(), small);
});

Deno.test("kv: a load of the expiry index racing clear() does not bring back the expiries it cleared", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kvndb_test_" });
  const path = `${dir}/kvndb.sqlite3`;
  try {
    const at = Date.now() + 60_000;
    const writes: Write[] = [];
    for (let i = 0; i < 3_000; i++) {
      writes.push({ ...set(i + 1, bytes(`k${i}`), bytes("v")), expiresAt: at });
    }
    {
      await using db = await KvDatabase.open(path);
      await db.apply(writes);
    }
    // Reopened, the index is loaded on first use: here by a count that a
    // read started while the node clears the store for a full sync.
    await using db = await KvDatabase.open(path);
    const counting = db.count(Date.now());
    await db.clear();
    await counting;
    assert.deepEqual(await db.expired(at + 1, 10), []);
    assert.equal(await db.count(at + 1), 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
