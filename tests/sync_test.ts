// Reset-and-sync under concurrent writes, as a property: whatever the
// operations during the sync, every database ends with the same contents,
// and those are what the acknowledged writes say.

import assert from "node:assert/strict";
import fc from "fast-check";
import { type Database, KvDatabase, MemoryDatabase } from "../database/mod.ts";
import { Cluster, waitFor } from "./_cluster.ts";

const decoder = new TextDecoder();

type Backend = "memory" | "kv";

async function open(backend: Backend): Promise<Database> {
  return backend === "memory"
    ? new MemoryDatabase()
    : await KvDatabase.open(":memory:");
}

async function contents(db: Database): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const chunk of db.snapshot({ chunkBytes: 64 * 1024 })) {
    for (const entry of chunk) {
      out.set(decoder.decode(entry.key), decoder.decode(entry.value));
    }
  }
  return out;
}

const operation = fc.oneof(
  fc.record({
    kind: fc.constant("set" as const),
    key: fc.integer({ min: 0, max: 60 }),
    value: fc.string({ maxLength: 8 }),
  }),
  fc.record({
    kind: fc.constant("delete" as const),
    key: fc.integer({ min: 0, max: 60 }),
  }),
);

Deno.test("a database synced while writes and deletes go on ends equal to the others, key by key", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom<[Backend, Backend]>(
        ["memory", "memory"],
        ["memory", "kv"],
        ["kv", "memory"],
        ["kv", "kv"],
      ),
      fc.array(fc.integer({ min: 0, max: 60 }), { maxLength: 120 }),
      fc.array(operation, { minLength: 1, maxLength: 80 }),
      fc.integer({ min: 1, max: 4 }),
      async ([sourceKind, targetKind], initial, operations, concurrency) => {
        await using cluster = await Cluster.start({ databases: 0 });
        const source = await open(sourceKind);
        const target = await open(targetKind);
        // Tiny chunks: the sync takes many round trips, interleaved with writes.
        await cluster.addDatabase({ database: source, syncChunkBytes: 40 });
        const client = await cluster.client();
        const model = new Map<string, string>();
        for (const key of initial) {
          await client.set(`k${key}`, `initial${key}`);
          model.set(`k${key}`, `initial${key}`);
        }
        // Start the sync, then run the operations while it goes on, in
        // `concurrency` lanes; each lane's keys are its own, so the model
        // knows the last acknowledged write of every key.
        const joining = cluster.addDatabase({ database: target, reset: true });
        await Promise.all(
          Array.from({ length: concurrency }, async (_, lane) => {
            for (const op of operations) {
              if (op.key % concurrency !== lane) continue;
              const key = `k${op.key}`;
              if (op.kind === "set") {
                await client.set(key, op.value);
                model.set(key, op.value);
              } else {
                await client.delete(key);
                model.delete(key);
              }
            }
          }),
        );
        await joining;
        const seq = cluster.router.stats().seq;
        await waitFor(
          () => cluster.nodes.every((node) => node.applied >= seq),
          "every database to apply every write",
        );
        const expected = [...model].sort();
        assert.deepEqual([...await contents(source)].sort(), expected);
        assert.deepEqual([...await contents(target)].sort(), expected);
      },
    ),
    { numRuns: 12 },
  );
});

Deno.test("a sync copies 20,000 keys in bounded chunks and shows progress in stats", async () => {
  await using cluster = await Cluster.start({ databases: 0 });
  await cluster.addDatabase({ syncChunkBytes: 4096 });
  const client = await cluster.client();
  const value = "v".repeat(100);
  const batch = [];
  for (let i = 0; i < 20_000; i++) {
    batch.push(client.set(`key:${String(i).padStart(6, "0")}`, value));
    if (batch.length === 500) {
      await Promise.all(batch);
      batch.length = 0;
    }
  }
  await Promise.all(batch);
  const target = new MemoryDatabase();
  const node = await cluster.addDatabase({
    database: target,
    reset: true,
    wait: false,
  });
  let sawProgress = false;
  while (node.status !== "ready") {
    const stats = await client.stats();
    if (stats.databases.some((db) => db.sync !== undefined)) sawProgress = true;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.equal(await target.count(), 20_000);
  assert.ok(sawProgress, "stats showed the sync in progress");
});
