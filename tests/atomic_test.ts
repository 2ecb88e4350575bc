// Atomic operations end to end: the client library, a real router and
// memory databases on loopback; contention; a database synced while atomic
// operations go on.

import assert from "node:assert/strict";
import { InvalidArgumentError } from "../client/mod.ts";
import { KvDatabase, MemoryDatabase } from "../database/mod.ts";
import { Cluster, waitForDatabases } from "./_cluster.ts";

const decoder = new TextDecoder();

Deno.test("atomic: sum, min and max keep decimal integers, a missing key counts as 0", async () => {
  await using cluster = await Cluster.start({ databases: 2 });
  const client = await cluster.client();
  assert.equal(await client.increment("n"), 1n);
  assert.equal(await client.increment("n", 41), 42n);
  assert.equal(await client.increment("n", -50n), -8n);
  assert.equal(await client.get("n"), "-8");
  const result = await client.atomic().max("hi", 5).min("lo", 5).max("n", 3)
    .commit();
  assert.ok(result.ok);
  assert.deepEqual(result.results.map((r) => r.kind === "integer" && r.value), [
    5n,
    5n,
    3n,
  ]);
  assert.equal(await client.get("n"), "3");
  const entry = await client.getEntry("n");
  assert.equal(entry?.version, result.version);
});

Deno.test("atomic: a failed check writes nothing; a held check commits every step", async () => {
  await using cluster = await Cluster.start({ databases: 2 });
  const client = await cluster.client();
  const version = await client.set("config", "v1");
  const stale = await client.atomic().check({
    key: "config",
    version: version + 1,
  })
    .set("config", "lost").set("other", "lost").commit();
  assert.equal(stale.ok, false);
  assert.equal(await client.get("config"), "v1");
  assert.equal(await client.get("other"), null);
  const fresh = await client.atomic().check({ key: "config", version })
    .check({ key: "absent", version: null })
    .set("config", "v2").delete("gone").set("other", "kept").commit();
  assert.ok(fresh.ok);
  assert.equal(await client.get("config"), "v2");
  assert.equal(await client.get("other"), "kept");
  assert.equal((await client.getEntry("other"))?.version, fresh.version);
});

Deno.test("atomic: a step on a value that is not an integer undoes the whole operation", async () => {
  await using cluster = await Cluster.start();
  const client = await cluster.client();
  await client.set("word", "hello");
  await assert.rejects(
    () => client.atomic().set("side", "effect").sum("word", 1).commit(),
    (error: unknown) =>
      error instanceof InvalidArgumentError &&
      /not an integer/.test(error.message),
  );
  assert.equal(await client.get("side"), null);
  await client.set("big", "9223372036854775807");
  await assert.rejects(() => client.increment("big"), /overflow/);
  assert.equal(await client.get("big"), "9223372036854775807");
});

Deno.test("atomic: racing increments and locks through two databases are exact", async () => {
  await using cluster = await Cluster.start({ databases: 0 });
  const databases = [new MemoryDatabase(), new MemoryDatabase()];
  for (const database of databases) await cluster.addDatabase({ database });
  const clients = await Promise.all(
    Array.from({ length: 8 }, () => cluster.client()),
  );
  await Promise.all(
    clients.map(async (client) => {
      for (let i = 0; i < 50; i++) await client.increment("counter");
    }),
  );
  assert.equal(await clients[0]!.get("counter"), "400");
  // Every client tries the same lock at once: exactly one holds it.
  const attempts = await Promise.all(
    clients.map((client, i) =>
      client.atomic().check({ key: "lock", version: null }).set(
        "lock",
        `client ${i}`,
      ).commit()
    ),
  );
  assert.equal(attempts.filter((attempt) => attempt.ok).length, 1);
  // Optimistic updates: read, then compare-and-set, retrying on conflict.
  await clients[0]!.set("cas", "0");
  await Promise.all(
    clients.map(async (client) => {
      for (let done = 0; done < 10;) {
        const entry = (await client.getEntry("cas"))!;
        const next = Number(decoder.decode(entry.value)) + 1;
        const result = await client.atomic().check({
          key: "cas",
          version: entry.version,
        }).set("cas", String(next)).commit();
        if (result.ok) done++;
      }
    }),
  );
  assert.equal(await clients[0]!.get("cas"), "80");
  // Both databases hold the same, each read alone.
  await waitForDatabases(cluster.router, 2);
  for (const database of databases) {
    for (const [key, value] of [["counter", "400"], ["cas", "80"]]) {
      const entry = database.getNow(new TextEncoder().encode(key));
      assert.equal(decoder.decode(entry!.value), value);
    }
  }
});

Deno.test("atomic: a database synced while increments go on ends with the exact count", async () => {
  await using cluster = await Cluster.start({ databases: 1 });
  const client = await cluster.client();
  for (let i = 0; i < 2_000; i++) {
    await client.set(`filler:${i}`, "x".repeat(50));
  }
  let running = true;
  let acknowledged = 0;
  const load = (async () => {
    while (running) {
      await client.increment("counter");
      acknowledged++;
    }
  })();
  const target = new MemoryDatabase();
  // Small chunks: the sync takes many round trips, with increments between.
  const node = await cluster.addDatabase({
    database: target,
    reset: true,
    syncChunkBytes: 2048,
  });
  assert.equal(node.status, "ready");
  running = false;
  await load;
  await waitForDatabases(cluster.router, 2);
  // The synced database alone: its copy of the counter is exact.
  const entry = target.getNow(new TextEncoder().encode("counter"));
  assert.equal(decoder.decode(entry!.value), String(acknowledged));
  assert.ok(acknowledged > 0);
});

Deno.test("atomic: an operation that writes nothing still moves each database's stored position", async () => {
  await using cluster = await Cluster.start({ databases: 0 });
  const memory = new MemoryDatabase();
  const kv = await KvDatabase.open(":memory:");
  await cluster.addDatabase({ database: memory });
  await cluster.addDatabase({ database: kv });
  const client = await cluster.client();
  await client.set("lock", "held");
  // A lock taken already, and a failed check: neither writes anything.
  const taken = await client.atomic().setIfAbsent("lock", "me").commit();
  assert.ok(taken.ok);
  const stale = await client.atomic().check({ key: "lock", version: null })
    .set("lock", "me").commit();
  assert.equal(stale.ok, false);
  await waitForDatabases(cluster.router, 2);
  const seq = cluster.router.stats().seq;
  assert.equal((await memory.state()).applied, seq);
  assert.equal((await kv.state()).applied, seq);
});
