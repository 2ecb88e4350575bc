// Reset under load: a database started with --reset while clients write;
// its sync is interrupted by killing the database itself, then its source.
// Every sync must restart cleanly, no read may ever come from a half-synced
// database, and all databases must end identical to the model; a counter
// incremented by atomic operations throughout (which a database being synced
// cannot evaluate itself) ends within its acknowledged increments and those
// of unknown outcome.

import assert from "node:assert/strict";
import { connect } from "../client/mod.ts";
import { waitFor } from "./_cluster.ts";
import { digest, FaultCluster } from "./_harness.ts";

const PRELOAD = 20_000;

async function waitForLog(
  cluster: FaultCluster,
  pattern: RegExp,
  after: number,
  timeout = 30_000,
): Promise<void> {
  const deadline = performance.now() + timeout;
  while (!pattern.test(cluster.router.stderr.slice(after))) {
    if (performance.now() > deadline) {
      throw new Error(
        `No ${pattern} in the router log:\n${
          cluster.router.stderr.slice(after).slice(-3000)
        }`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

Deno.test("interrupted syncs restart cleanly and a half-synced database never serves a read", async () => {
  await using cluster = await FaultCluster.start({ databases: 3 });
  await using client = await connect({ port: cluster.port });
  const value = "p".repeat(64);
  for (let i = 0; i < PRELOAD; i += 1000) {
    await Promise.all(
      Array.from({ length: 1000 }, (_, j) => client.set(`pre:${i + j}`, value)),
    );
  }
  const model = new Map<string, string | null>();
  let running = true;
  let badReads = 0;
  let reads = 0;
  const writer = (async () => {
    await using c = await connect({ port: cluster.port, timeout: 5000 });
    for (let i = 0; running; i++) {
      const key = `live:${i % 500}`;
      try {
        if (i % 4 === 0) {
          await c.delete(key);
          model.set(key, null);
        } else {
          await c.set(key, `w${i}`);
          model.set(key, `w${i}`);
        }
      } catch {
        model.delete(key); // Unknown outcome: exclude from the model.
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
  })();
  let increments = 0;
  let unknownIncrements = 0;
  const counter = (async () => {
    await using c = await connect({ port: cluster.port, timeout: 5000 });
    while (running) {
      try {
        await c.increment("counter");
        increments++;
      } catch {
        unknownIncrements++;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
  })();
  // Readers of preloaded keys nobody changes: a half-synced database would
  // answer some of them with nothing.
  const reader = (async () => {
    await using c = await connect({ port: cluster.port, timeout: 5000 });
    for (let i = 0; running; i++) {
      const key = `pre:${(i * 7919) % PRELOAD}`;
      try {
        const got = await c.get(key);
        reads++;
        if (got !== value) badReads++;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
  })();

  // 1. Reset database 2 and kill it in the middle of its sync.
  let mark = cluster.router.stderr.length;
  await cluster.killDatabase(2);
  cluster.startDatabase(2, ["-r", "--reset-sleep", "0.01"]);
  await waitForLog(cluster, /Syncing \S+ from/, mark);
  await new Promise((resolve) => setTimeout(resolve, 150));
  await cluster.killDatabase(2);
  // Restarted without -r: its data is marked incomplete, so it syncs again.
  mark = cluster.router.stderr.length;
  cluster.startDatabase(2, ["--reset-sleep", "0.01"]);
  await waitForLog(cluster, /Syncing \S+ from/, mark);

  // 2. Kill whichever database is its source, mid-sync.
  await new Promise((resolve) => setTimeout(resolve, 150));
  const match = cluster.router.stderr.slice(mark).match(
    /Syncing (\S+) from (\S+)/,
  );
  assert.ok(match);
  mark = cluster.router.stderr.length;
  const victim = whichDatabase(cluster, match[2]!);
  assert.ok(
    victim !== undefined && victim !== 2,
    "the source is database 0 or 1",
  );
  await cluster.killDatabase(victim);
  await waitForLog(cluster, /restarting the sync|Syncing \S+ from/, mark);
  cluster.startDatabase(victim);
  // The load goes on while the syncs restart, until it has done enough for
  // the checks below to mean something: how long that takes depends on the
  // machine, and reads wait while no database can serve them.
  await waitFor(
    () => reads > 100 && increments > 10,
    "100 reads and 10 increments during the syncs",
    60_000,
  );

  cluster.heal();
  await cluster.waitReady(3, 120_000, false);
  running = false;
  await Promise.all([writer, reader, counter]);
  await cluster.waitReady(3);
  const contents = await cluster.contents();
  const digests = await Promise.all(contents.map(digest));
  assert.ok(digests.every((d) => d === digests[0]), "databases converge");
  for (const [key, want] of model) {
    assert.equal(contents[0]!.get(key) ?? null, want, key);
  }
  for (let i = 0; i < PRELOAD; i++) {
    assert.equal(contents[0]!.get(`pre:${i}`), value);
  }
  const count = Number(contents[0]!.get("counter"));
  assert.ok(increments > 10, `only ${increments} increments during the syncs`);
  assert.ok(
    count >= increments && count <= increments + unknownIncrements,
    `counter ${count}: ${increments} acknowledged, ${unknownIncrements} unknown`,
  );
  assert.ok(reads > 100, `only ${reads} reads during the syncs`);
  assert.equal(badReads, 0, `${badReads} of ${reads} reads saw a half copy`);
});

/** Finds the database behind the relay whose outbound socket is `peer`. */
function whichDatabase(
  cluster: FaultCluster,
  peer: string,
): number | undefined {
  const port = Number(peer.split(":").pop());
  const index = cluster.relays.findIndex((relay) =>
    relay.outboundPorts().includes(port)
  );
  return index < 0 ? undefined : index;
}
