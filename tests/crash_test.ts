// Crashes under load, with real processes: kill -9 of a Deno KV database and
// of the router while writers run. Afterwards every acknowledged write must
// be there, and every database must hold the same contents.

import assert from "node:assert/strict";
import { type Client, connect } from "../client/mod.ts";
import { KvDatabase } from "../database/mod.ts";
import { KvndbProcess } from "./_process.ts";
import { restartablePort } from "./_ports.ts";

const decoder = new TextDecoder();

/** Writers that keep writing unique keys, reconnecting when they must. */
class Load {
  readonly acknowledged = new Map<string, string>();
  #running = true;
  #lanes: Promise<void>[];

  constructor(port: () => number, lanes = 4) {
    this.#lanes = Array.from(
      { length: lanes },
      (_, lane) => this.#lane(port, lane),
    );
  }

  async #lane(port: () => number, lane: number): Promise<void> {
    let client: Client | undefined;
    let i = 0;
    while (this.#running) {
      try {
        client ??= await connect({ port: port(), timeout: 3000 });
        const key = `w${lane}-${i}`;
        const value = `value-${lane}-${i}`;
        await client.set(key, value);
        this.acknowledged.set(key, value);
        i++;
      } catch {
        // Down for now: drop the connection and try again shortly.
        await client?.close();
        client = undefined;
        i++;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    await client?.close();
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#lanes);
  }
}

async function waitForCount(
  process: KvndbProcess,
  pattern: RegExp,
  count: number,
  timeout = 30_000,
): Promise<void> {
  const deadline = performance.now() + timeout;
  while ((process.stderr.match(pattern) ?? []).length < count) {
    if (performance.now() > deadline || !process.running) {
      throw new Error(
        `Timed out waiting for ${count} × ${pattern}:\n${process.stderr}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function readAll(path: string): Promise<Map<string, string>> {
  await using db = await KvDatabase.open(path);
  const out = new Map<string, string>();
  for await (const chunk of db.snapshot({ chunkBytes: 256 * 1024 })) {
    for (const entry of chunk) {
      out.set(decoder.decode(entry.key), decoder.decode(entry.value));
    }
  }
  return out;
}

const READY = /is ready at sequence/g;

Deno.test("a Deno KV database killed with kill -9 under load and restarted keeps every acknowledged write", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/node.db`;
  try {
    await using router = KvndbProcess.start([
      "router",
      "127.0.0.1",
      "0",
      "-v",
      "--state",
      `${dir}/router.json`,
    ]);
    const port = await router.port();
    let node = KvndbProcess.start(["kv", "127.0.0.1", String(port), path]);
    try {
      await waitForCount(router, READY, 1);
      const load = new Load(() => port);
      await new Promise((resolve) => setTimeout(resolve, 700));
      await node.kill("SIGKILL");
      const before = load.acknowledged.size;
      node = KvndbProcess.start(["kv", "127.0.0.1", String(port), path]);
      await waitForCount(router, READY, 2);
      await new Promise((resolve) => setTimeout(resolve, 400));
      await load.stop();
      assert.ok(before > 50, `only ${before} writes before the kill`);
      await using client = await connect({ port });
      for (const [key, value] of load.acknowledged) {
        assert.equal(await client.get(key), value, key);
      }
    } finally {
      await node.kill("SIGTERM");
    }
    const stored = await readAll(path);
    assert.ok(stored.size >= 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a router killed with kill -9 under load and restarted loses no acknowledged write", async () => {
  const dir = await Deno.makeTempDir();
  const paths = [`${dir}/a.db`, `${dir}/b.db`];
  const state = `${dir}/router.json`;
  let port = 0;
  let router = KvndbProcess.start([
    "router",
    "127.0.0.1",
    String(restartablePort()),
    "-v",
    "--state",
    state,
  ]);
  const nodes: KvndbProcess[] = [];
  let load: Load | undefined;
  try {
    port = await router.port();
    for (const path of paths) {
      nodes.push(KvndbProcess.start(["kv", "127.0.0.1", String(port), path]));
    }
    await waitForCount(router, READY, 2);
    load = new Load(() => port);
    await new Promise((resolve) => setTimeout(resolve, 700));
    await router.kill("SIGKILL");
    const before = load.acknowledged.size;
    router = KvndbProcess.start([
      "router",
      "127.0.0.1",
      String(port),
      "-v",
      "--state",
      state,
    ]);
    await waitForCount(router, READY, 2);
    await new Promise((resolve) => setTimeout(resolve, 400));
    await load.stop();
    assert.ok(before > 50, `only ${before} writes before the kill`);
    assert.ok(
      load.acknowledged.size > before,
      "writes resumed after the restart",
    );
    {
      await using client = await connect({ port });
      const seq = (await client.stats()).seq;
      const deadline = performance.now() + 10_000;
      while (
        !(await client.stats()).databases.every((db) => db.applied >= seq)
      ) {
        assert.ok(performance.now() < deadline, "databases did not catch up");
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  } finally {
    await load?.stop();
    for (const node of nodes) await node.kill("SIGTERM");
    await router.kill("SIGKILL");
  }
  try {
    const [a, b] = await Promise.all(paths.map(readAll));
    assert.deepEqual([...a!].sort(), [...b!].sort(), "same contents");
    for (const [key, value] of load!.acknowledged) {
      assert.equal(a!.get(key), value, key);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a database started with -r while a writer runs serves every last value and no deleted key once the first is killed", async () => {
  await using router = KvndbProcess.start([
    "router",
    "127.0.0.1",
    "0",
    "-v",
    "--state",
    "none",
  ]);
  const port = await router.port();
  await using first = KvndbProcess.start(["memory", "127.0.0.1", String(port)]);
  await waitForCount(router, READY, 1);
  await using client = await connect({ port });
  const model = new Map<string, string | null>();
  for (let i = 0; i < 2000; i += 100) {
    await Promise.all(
      Array.from({ length: 100 }, (_, j) => {
        model.set(`k${i + j}`, `initial${i + j}`);
        return client.set(`k${i + j}`, `initial${i + j}`);
      }),
    );
  }
  let writing = true;
  const writer = (async () => {
    for (let i = 0; writing; i++) {
      const key = `k${(i * 7919) % 2500}`;
      if (i % 3 === 0) {
        await client.delete(key);
        model.set(key, null);
      } else {
        await client.set(key, `w${i}`);
        model.set(key, `w${i}`);
      }
    }
  })();
  await using second = KvndbProcess.start([
    "ram",
    "127.0.0.1",
    String(port),
    "-r",
  ]);
  await waitForCount(router, READY, 2);
  await new Promise((resolve) => setTimeout(resolve, 200));
  writing = false;
  await writer;
  await first.kill("SIGKILL");
  for (const [key, value] of model) {
    assert.equal(await client.get(key), value, key);
  }
  assert.ok(second.running);
});
