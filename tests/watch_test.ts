// Watches through the native client: changes pushed in version order,
// atomic operations' effects included, resumed from a version without a
// miss, and a clear error when the router no longer has that far back.

import assert from "node:assert/strict";
import type { Change, ChangeBatch, WatchStream } from "../client/mod.ts";
import { KvndbError } from "../client/mod.ts";
import { Cluster } from "./_cluster.ts";

const decoder = new TextDecoder();

function describe(change: Change): string {
  return `${decoder.decode(change.key)}=${
    change.value === null ? "deleted" : decoder.decode(change.value)
  }${change.expiresAt === undefined ? "" : "+ttl"}`;
}

/** Reads batches until `count` changes have come; returns them and the last upTo. */
async function take(
  watch: WatchStream,
  count: number,
): Promise<{ changes: Change[]; upTo: number }> {
  const changes: Change[] = [];
  let upTo = 0;
  while (changes.length < count) {
    const next = await watch.next();
    assert.ok(!next.done, "the watch ended early");
    const batch: ChangeBatch = next.value;
    changes.push(...batch.changes);
    upTo = batch.upTo;
  }
  return { changes, upTo };
}

Deno.test("a watch gets every change under its prefix in version order, atomic operations included", async () => {
  await using cluster = await Cluster.start({ databases: 2 });
  const client = await cluster.client();
  const watch = client.watch({ prefix: "user:" });
  // The confirmation comes first, with no change.
  const first = await watch.next();
  assert.deepEqual(first.value?.changes, []);
  await client.set("user:1", "Ada");
  await client.set("other", "not watched");
  await client.increment("user:visits");
  await client.set("user:2", "Grace", { expireIn: 60_000 });
  await client.delete("user:1");
  await client.atomic().set("user:3", "x").set("user:4", "y").commit();
  const { changes } = await take(watch, 6);
  assert.deepEqual(changes.map(describe), [
    "user:1=Ada",
    "user:visits=1",
    "user:2=Grace+ttl",
    "user:1=deleted",
    "user:3=x",
    "user:4=y",
  ]);
  for (let i = 1; i < changes.length; i++) {
    assert.ok(changes[i]!.version >= changes[i - 1]!.version);
  }
  await watch.return();
});

Deno.test("a watch resumed from the last version seen misses nothing and repeats nothing", async () => {
  await using cluster = await Cluster.start({ databases: 1 });
  const client = await cluster.client();
  const watch = client.watch({ keys: ["a", "b"] });
  await watch.next();
  await client.set("a", "1");
  await client.set("b", "1");
  const seen = await take(watch, 2);
  await watch.return();
  // Meanwhile, with no one watching: three more changes, one not watched.
  await client.set("a", "2");
  await client.set("c", "1");
  await client.atomic().delete("b").set("a", "3").commit();
  const again = client.watch({ keys: ["a", "b"], from: seen.upTo });
  const missed = await take(again, 3);
  assert.deepEqual(missed.changes.map(describe), [
    "a=2",
    "b=deleted",
    "a=3",
  ]);
  // Then live.
  await client.set("b", "live");
  assert.deepEqual((await take(again, 1)).changes.map(describe), ["b=live"]);
  await again.return();
});

Deno.test("a watch from a version the backlog no longer holds fails at once, saying what to do", async () => {
  await using cluster = await Cluster.start({
    databases: 1,
    backlogBytes: 8 * 1024,
  });
  const client = await cluster.client();
  for (let i = 0; i < 100; i++) await client.set(`k${i}`, "v".repeat(100));
  const watch = client.watch({ prefix: "k", from: 1 });
  await assert.rejects(
    () => watch.next(),
    (error: unknown) =>
      error instanceof KvndbError && /watch from now/.test(error.message),
  );
  // The connection goes on.
  assert.equal(await client.get("k5"), "v".repeat(100));
});

Deno.test("a watch opened on a closed client fails at once, saying the client is closed", async () => {
  await using cluster = await Cluster.start({ databases: 1 });
  const client = await cluster.client();
  await client.close();
  const watch = client.watch({ prefix: "k" });
  await assert.rejects(
    async () => {
      for await (const _ of watch) { /* none comes */ }
    },
    (error: unknown) =>
      error instanceof KvndbError && /client is closed/.test(error.message),
  );
});
