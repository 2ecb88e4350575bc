// kvndb verify: databases compared by digests over key ranges; a key changed
// behind the router's back on one database is found, and --repair fixes it.

import assert from "node:assert/strict";
import { KvDatabase, MemoryDatabase } from "../database/mod.ts";
import { Cluster, waitForDatabases } from "./_cluster.ts";
import { runKvndb } from "./_process.ts";

const encoder = new TextEncoder();

Deno.test("verify finds keys changed behind the router's back on one database, and --repair fixes them", async () => {
  await using cluster = await Cluster.start({ databases: 0 });
  await cluster.addDatabase({ database: new MemoryDatabase() });
  const kv = await KvDatabase.open(":memory:");
  await cluster.addDatabase({ database: kv });
  await waitForDatabases(cluster.router, 2);
  const client = await cluster.client();
  // More keys than one digest covers (10,000).
  for (let i = 0; i < 12_000; i += 100) {
    const operation = client.atomic();
    for (let j = i; j < i + 100; j++) operation.set(`key:${j}`, `value ${j}`);
    await operation.commit();
  }
  const port = String(cluster.port);
  const agree = await runKvndb(["verify", "127.0.0.1", port]);
  assert.equal(agree.code, 0, agree.stderr);
  assert.match(
    agree.stdout,
    /Compared 12000 keys on databases 1, 2 .*: they agree/,
  );

  // Behind the router's back, on the second database only: one key changed,
  // one key that no write made.
  const changed = (await kv.get(encoder.encode("key:11500")))!;
  await kv.merge([
    {
      key: encoder.encode("key:11500"),
      value: encoder.encode("tampered"),
      version: changed.version + 1,
    },
    { key: encoder.encode("stray"), value: encoder.encode("x"), version: 1 },
  ]);
  const found = await runKvndb(["verify", "127.0.0.1", port]);
  assert.equal(found.code, 1, found.stderr);
  assert.match(
    found.stdout,
    /"key:11500" differs: database 1: version \d+, 11 bytes; database 2: version \d+, 8 bytes/,
  );
  assert.match(
    found.stdout,
    /"stray" differs: database 1: absent; database 2: version 1, 1 bytes/,
  );
  assert.match(found.stdout, /2 keys differ \(kvndb verify --repair/);

  const repaired = await runKvndb(["verify", "127.0.0.1", port, "--repair"]);
  assert.equal(repaired.code, 0, repaired.stdout + repaired.stderr);
  assert.match(repaired.stdout, /repaired 2 keys; 0 still differ/);
  assert.equal(await client.get("key:11500"), "value 11500");
  assert.equal(await client.get("stray"), null);
  assert.equal(
    new TextDecoder().decode(
      (await kv.get(encoder.encode("key:11500")))!.value,
    ),
    "value 11500",
  );
  const again = await runKvndb(["verify", "127.0.0.1", port]);
  assert.equal(again.code, 0, again.stdout);
  assert.match(again.stdout, /they agree/);
});
