// Expiry end to end: keys set with an expiry through the router vanish from
// every read path on each database alone, travel with a full sync, and are
// deleted for real by the router's sweep on every database.

import assert from "node:assert/strict";
import { KvDatabase, MemoryDatabase } from "../database/mod.ts";
import { runConsole } from "../console/mod.ts";
import { Cluster, waitFor, waitForDatabases } from "./_cluster.ts";

const decoder = new TextDecoder();

async function allKeys(
  client: Awaited<ReturnType<Cluster["client"]>>,
): Promise<string[]> {
  const out: string[] = [];
  for await (const page of client.keys()) out.push(...page);
  return out;
}

Deno.test("an expired key is gone from every read path on each database alone, and its expiry travels with a sync", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kvndb_expiry_" });
  try {
    // No sweep: what the reads leave out, they leave out by themselves.
    await using cluster = await Cluster.start({
      databases: 0,
      expirySweepInterval: 0,
    });
    const memory = await cluster.addDatabase();
    const kv = await cluster.addDatabase({
      database: await KvDatabase.open(`${dir}/kv.sqlite3`),
    });
    await waitForDatabases(cluster.router, 2);
    const client = await cluster.client();
    const start = Date.now();
    for (let i = 0; i < 10; i++) {
      await client.set(`short:${i}`, "gone soon", { expireIn: 300 });
    }
    await client.set("long", "stays", { expireIn: 600_000 });
    await client.set("plain", "stays");
    await client.set("persisted", "stays", { expireIn: 300 });
    assert.equal(await client.persist("persisted"), true);
    await client.set("overwritten", "x", { expireIn: 300 });
    await client.set("overwritten", "stays");
    await client.set("lock", "old holder", { expireIn: 300 });
    await client.set("counter", "41", { expireIn: 300 });
    const long = await client.getEntry("long");
    assert.ok(long?.expiresAt !== undefined);
    assert.ok(long.expiresAt >= start + 600_000);
    assert.ok(await client.ttl("short:0") > 0n);
    // Past every short expiry, by the router's clock and the databases'.
    await waitFor(() => Date.now() > start + 400, "the short keys to expire");

    const check = async (label: string) => {
      for (let i = 0; i < 10; i++) {
        assert.equal(await client.get(`short:${i}`), null, label);
        assert.equal(await client.ttl(`short:${i}`), -2n, label);
      }
      assert.deepEqual(
        (await allKeys(client)).sort(),
        ["long", "overwritten", "persisted", "plain"],
        label,
      );
      assert.equal(await client.count(), 4, label);
      assert.equal(await client.ttl("plain"), -1n, label);
      assert.equal(await client.ttl("persisted"), -1n, label);
      assert.ok(await client.ttl("long") > 500_000n, label);
      assert.equal((await client.getEntry("long"))?.expiresAt, long.expiresAt);
    };
    // The memory database alone, then the Deno KV one alone.
    await kv.close();
    await waitForDatabases(cluster.router, 1);
    await check("memory database alone");
    await cluster.nodes[1]!.close();
    const reopened = await cluster.addDatabase({
      database: await KvDatabase.open(`${dir}/kv.sqlite3`),
    });
    await waitForDatabases(cluster.router, 2);
    await memory.close();
    await waitForDatabases(cluster.router, 1);
    await check("Deno KV database alone");
    // A new memory database copies the Deno KV one: the expiries come along.
    await cluster.addDatabase();
    await waitForDatabases(cluster.router, 2);
    await reopened.close();
    await waitForDatabases(cluster.router, 1);
    await check("a memory database synced from the Deno KV one");

    // Atomic operations see an expired key as absent: a lock can be taken,
    // a counter starts again from nothing.
    const lock = await client.atomic().setIfAbsent("lock", "me").commit();
    assert.ok(lock.ok);
    assert.equal(
      lock.results[0]?.kind === "integer" && lock.results[0].value,
      1n,
    );
    assert.equal(await client.increment("counter"), 1n);
    assert.equal(await client.ttl("counter"), -1n);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the sweep deletes expired keys for real on every database, in batches", async () => {
  await using cluster = await Cluster.start({
    databases: 0,
    expirySweepInterval: 20,
  });
  const memory = new MemoryDatabase();
  const kv = await KvDatabase.open(":memory:");
  await cluster.addDatabase({ database: memory });
  await cluster.addDatabase({ database: kv });
  await waitForDatabases(cluster.router, 2);
  const client = await cluster.client();
  // More than two batches of 128, some with large values, and keys that stay.
  const writes: Promise<unknown>[] = [];
  for (let i = 0; i < 300; i++) {
    const value = i % 50 === 0 ? "v".repeat(100_000) : `v${i}`;
    writes.push(client.set(`temp:${i}`, value, { expireIn: 100 }));
  }
  for (let i = 0; i < 10; i++) {
    writes.push(client.set(`kept:${i}`, "v", { expireIn: 600_000 }));
    writes.push(client.set(`plain:${i}`, "v"));
  }
  await Promise.all(writes);
  // Counted without a time: what is stored, expired or not.
  await waitFor(
    async () => await memory.count() === 20 && await kv.count() === 20,
    "the sweep to delete every expired key on both databases",
  );
  assert.deepEqual(await memory.expired(Date.now() + 1_000, 10), []);
  assert.deepEqual(await kv.expired(Date.now() + 1_000, 10), []);
  // The databases agree, key by key, and the keys that stay keep their expiry.
  const keys = (await allKeys(client)).sort();
  assert.equal(keys.length, 20);
  for (const key of keys) {
    const bytes = new TextEncoder().encode(key);
    const [a, b] = [await memory.get(bytes), await kv.get(bytes)];
    assert.equal(a?.version, b?.version, key);
    assert.equal(a?.expiresAt, b?.expiresAt, key);
    assert.equal(decoder.decode(a?.value), decoder.decode(b?.value), key);
  }
});

Deno.test("the console's set … ex, expire, ttl and persist work against a router", async () => {
  await using cluster = await Cluster.start({ databases: 1 });
  const client = await cluster.client();
  let output = "";
  const status = await runConsole(client, {
    input: ReadableStream.from([
      "set s v ex 100\nttl s\nexpire s 30\nttl s\npersist s\nttl s\n" +
      "expire s 0\nget s\n",
    ]).pipeThrough(new TextEncoderStream()),
    output: new WritableStream({
      write(chunk) {
        output += decoder.decode(chunk, { stream: true });
      },
    }),
    interactive: false,
  });
  assert.equal(output, "100\n30\n-1\nError: Key 's' not found!\n");
  assert.equal(status, 1);
});

Deno.test("the sweep splits a batch too costly for one atomic operation (long keys), instead of spinning on it", async () => {
  await using cluster = await Cluster.start({
    databases: 0,
    expirySweepInterval: 20,
  });
  const memory = new MemoryDatabase();
  await cluster.addDatabase({ database: memory });
  const client = await cluster.client();
  // 130 keys of 700 bytes: deleting 128 at once would cost more Deno KV
  // bytes than one atomic operation may.
  await Promise.all(
    Array.from(
      { length: 130 },
      (_, i) => client.set(`${i}:`.padEnd(700, "k"), "v", { expireIn: 50 }),
    ),
  );
  await waitFor(
    async () => await memory.count() === 0,
    "the sweep to delete every long expired key",
  );
});
