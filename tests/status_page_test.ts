// The router's status page in a real headless browser (Debian's Chromium):
// a cluster of a memory and a Deno KV database, with a third database held
// in its full sync, shows all three with their states and the sync's
// progress. The screenshot is kept as a test artifact: in $KVNDB_ARTIFACTS
// when set, else in a temporary directory (the path is printed).

import assert from "node:assert/strict";
import { DatabaseNode, KvDatabase, MemoryDatabase } from "../database/mod.ts";
import { Cluster, waitFor, waitForDatabases } from "./_cluster.ts";

const CHROMIUM = ["chromium", "chromium-browser", "google-chrome"].find(
  (name) => {
    try {
      return new Deno.Command("which", { args: [name], stdout: "null" })
        .outputSync().success;
    } catch {
      return false;
    }
  },
);

async function chromium(args: string[]): Promise<string> {
  const home = await Deno.makeTempDir({ prefix: "kvndb-chromium-" });
  try {
    const output = await new Deno.Command(CHROMIUM!, {
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        `--user-data-dir=${home}`,
        "--virtual-time-budget=4000",
        ...args,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return new TextDecoder().decode(output.stdout);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
}

Deno.test({
  name:
    "the status page shows every database with its state, and a sync's progress, in Chromium",
  ignore: CHROMIUM === undefined,
  async fn() {
    await using cluster = await Cluster.start({ databases: 0, httpPort: 0 });
    // Sources that stream small chunks, so that a sync takes many.
    await cluster.addDatabase({
      database: new MemoryDatabase(),
      syncChunkBytes: 4096,
    });
    const dir = await Deno.makeTempDir({ prefix: "kvndb-status-" });
    await cluster.addDatabase({
      database: await KvDatabase.open(`${dir}/kv.sqlite3`),
      syncChunkBytes: 4096,
    });
    await waitForDatabases(cluster.router, 2);
    const client = await cluster.client();
    for (let i = 0; i < 2_000; i += 100) {
      const operation = client.atomic();
      for (let j = i; j < i + 100; j++) {
        operation.set(`key:${j}`, "v".repeat(200));
      }
      await operation.commit();
    }
    // A third database, reset: its full sync pauses a second after each
    // of some hundred chunks, so it is still syncing while the page is
    // looked at.
    await using syncing = DatabaseNode.start({
      database: new MemoryDatabase(),
      hostname: "127.0.0.1",
      port: cluster.port,
      reset: true,
      resetSleep: 1,
      syncChunkBytes: 4096,
    });
    await waitFor(
      () =>
        cluster.router.stats().databases.some((db) =>
          db.state === "syncing" && (db.sync?.keys ?? 0) > 0
        ),
      "the third database to be syncing",
    );
    const url = `http://127.0.0.1:${cluster.router.httpPort}/`;
    const dom = await chromium(["--dump-dom", url]);
    const rows = [...dom.matchAll(/<tr data-state="(\w+)">([\s\S]*?)<\/tr>/g)];
    assert.equal(rows.length, 3, dom);
    assert.deepEqual(
      rows.map((row) => row[1]).sort(),
      ["ready", "ready", "syncing"],
    );
    const syncRow = rows.find((row) => row[1] === "syncing")![2]!;
    assert.match(syncRow, /class="bar"><div style="width: \d+(\.\d+)?%;/);
    assert.match(syncRow, /\d+ % · [\d,]+ keys/);
    const table = rows.map((row) => row[2]).join("\n");
    assert.match(table, /<td>memory<\/td>/);
    assert.match(table, /<td>durable<\/td>/);
    assert.match(dom, /<b id="health">2 of 3 ready<\/b>/);
    assert.match(dom, /class="uplot/, "the chart is drawn");
    const artifacts = Deno.env.get("KVNDB_ARTIFACTS") ??
      await Deno.makeTempDir({ prefix: "kvndb-artifacts-" });
    await Deno.mkdir(artifacts, { recursive: true });
    const shot = `${artifacts}/status-page.png`;
    await chromium([`--screenshot=${shot}`, "--window-size=1280,720", url]);
    const size = (await Deno.stat(shot)).size;
    assert.ok(size > 10_000, `a screenshot of ${size} bytes`);
    console.log(`Screenshot of the status page: ${shot}`);
    await syncing.close();
    await cluster[Symbol.asyncDispose]();
    await Deno.remove(dir, { recursive: true });
  },
});
