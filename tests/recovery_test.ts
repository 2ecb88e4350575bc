// Rejoin and router restart: databases on Deno KV files that outlive their
// processes, a router that remembers which databases were ready.

import assert from "node:assert/strict";
import { connect } from "../client/mod.ts";
import { DatabaseNode, KvDatabase } from "../database/mod.ts";
import { ErrorCode, KvndbError } from "../protocol/mod.ts";
import { Router, type RouterOptions } from "../router/mod.ts";
import { waitFor, waitForDatabases } from "./_cluster.ts";
import { Relay } from "./_relay.ts";
import { captureLog } from "./_log.ts";

async function kvNode(
  path: string,
  port: number,
  reset = false,
): Promise<DatabaseNode> {
  return DatabaseNode.start({
    database: await KvDatabase.open(path),
    hostname: "127.0.0.1",
    port,
    backoff: { min: 20, max: 100 },
    reset,
  });
}

async function client0(
  port: number,
  use: (client: Awaited<ReturnType<typeof connect>>) => Promise<unknown>,
): Promise<void> {
  await using client = await connect({ port });
  await use(client);
}

function readyCount(router: Router): number {
  return router.stats().databases.filter((db) => db.state === "ready").length;
}

/**
 * A temporary folder with the routers (sharing one state file) and the
 * Deno KV nodes a test starts; closes them all and removes the folder.
 */
class Scene implements AsyncDisposable {
  readonly nodes: DatabaseNode[] = [];
  readonly routers: Router[] = [];
  private constructor(readonly dir: string) {}

  static async create(): Promise<Scene> {
    return new Scene(await Deno.makeTempDir());
  }

  get stateFile(): string {
    return `${this.dir}/router.json`;
  }

  /** Starts a router on `port` (0: any) with the scene's state file. */
  async router(port = 0, options: RouterOptions = {}): Promise<Router> {
    const router = await Router.start({
      hostname: "127.0.0.1",
      port,
      stateFile: this.stateFile,
      ...options,
    });
    this.routers.push(router);
    return router;
  }

  /** Starts the node of the store `name` against `port` (`reset`: `--reset`). */
  async node(name: string, port: number, reset = false): Promise<DatabaseNode> {
    const node = await kvNode(`${this.dir}/${name}.db`, port, reset);
    this.nodes.push(node);
    return node;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const node of this.nodes) await node.close();
    for (const router of this.routers) await router.close();
    await Deno.remove(this.dir, { recursive: true });
  }
}

Deno.test("a restarted router waits for a database that has every acknowledged write", async () => {
  await using scene = await Scene.create();
  {
    const first = await scene.router();
    const port = first.port;
    const a = await scene.node("a", port);
    await a.ready();
    const b = await scene.node("b", port);
    await b.ready();
    {
      await using client = await connect({ port });
      await Promise.all(
        Array.from({ length: 100 }, (_, i) => client.set(`k${i}`, `v${i}`)),
      );
      // B leaves: what follows is acknowledged by A alone.
      await b.close();
      await waitFor(() => readyCount(first) === 1, "B to leave");
      await Promise.all(
        Array.from(
          { length: 100 },
          (_, i) => client.set(`k${i + 100}`, `v${i + 100}`),
        ),
      );
      await client.delete("k0");
    }
    await a.close();
    await first.close();

    // The router comes back; B, which is behind, returns first.
    const second = await scene.router(port);
    const b2 = await scene.node("b", port);
    await waitFor(
      () => second.stats().hold?.held === 1,
      "B's join to be held",
    );
    assert.equal(readyCount(second), 0, "B must not become the reference");
    {
      await using client = await connect({ port });
      await assert.rejects(
        () => client.get("k1"),
        (error: unknown) =>
          error instanceof KvndbError && error.code === ErrorCode.UNAVAILABLE &&
          /the router has waited for 1 of 1 members to return \(absent: [0-9a-f]{12} \(durable, last at 127\.0\.0\.1:\d+, away [\d.]+ s\)\)/
            .test(error.message),
      );
    }
    const a2 = await scene.node("a", port);
    await Promise.all([a2.ready(), b2.ready()]);
    await using client = await connect({ port });
    const check = async () => {
      assert.equal(await client.get("k0"), null);
      for (let i = 1; i < 200; i++) {
        assert.equal(await client.get(`k${i}`), `v${i}`);
      }
    };
    await check();
    // B alone must now hold everything too.
    await a2.close();
    await waitFor(() => readyCount(second) === 1, "A to leave");
    await check();
  }
});

Deno.test("a database that was away briefly replays only what it missed", async () => {
  const dir = await Deno.makeTempDir();
  const router = await Router.start({ hostname: "127.0.0.1", port: 0 });
  const nodes: DatabaseNode[] = [];
  try {
    const a = await kvNode(`${dir}/a.db`, router.port);
    nodes.push(a);
    await a.ready();
    const b = await kvNode(`${dir}/b.db`, router.port);
    nodes.push(b);
    await b.ready();
    await using client = await connect({ port: router.port });
    for (let i = 0; i < 50; i++) await client.set(`k${i}`, `v${i}`);
    await b.close();
    for (let i = 50; i < 80; i++) await client.set(`k${i}`, `v${i}`);
    await client.delete("k1");
    const b2 = await kvNode(`${dir}/b.db`, router.port);
    nodes.push(b2);
    await b2.ready();
    await a.close();
    assert.equal(await client.get("k1"), null);
    for (let i = 2; i < 80; i++) {
      assert.equal(await client.get(`k${i}`), `v${i}`);
    }
  } finally {
    for (const node of nodes) await node.close();
    await router.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a database holding another cluster's data is refused with a clear message", async () => {
  const dir = await Deno.makeTempDir();
  try {
    {
      await using router = await Router.start({
        hostname: "127.0.0.1",
        port: 0,
      });
      const node = await kvNode(`${dir}/a.db`, router.port);
      await node.ready();
      await using client = await connect({ port: router.port });
      await client.set("a", "1");
      await node.close();
    }
    await using other = await Router.start({ hostname: "127.0.0.1", port: 0 });
    // The other router first gets a cluster of its own.
    const fresh = await kvNode(`${dir}/b.db`, other.port);
    await fresh.ready();
    const foreign = await kvNode(`${dir}/a.db`, other.port);
    const reason = await foreign.stopped;
    assert.ok(reason instanceof KvndbError);
    assert.equal(reason.code, ErrorCode.CLUSTER_MISMATCH);
    assert.match(reason.message, /--reset/);
    await client0(other.port, (c) => c.set("b", "2"));
    // With --reset it joins, copies this cluster's data, and its own is gone.
    const reset = DatabaseNode.start({
      database: await KvDatabase.open(`${dir}/a.db`),
      hostname: "127.0.0.1",
      port: other.port,
      reset: true,
    });
    await reset.ready();
    await fresh.close();
    await using client = await connect({ port: other.port });
    assert.equal(await client.get("a"), null);
    assert.equal(await client.get("b"), "2");
    await reset.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("with no ready database, one that missed writes waits for one that has them", async () => {
  const dir = await Deno.makeTempDir();
  // A backlog too small to replay anything: rejoining means a full sync.
  const router = await Router.start({
    hostname: "127.0.0.1",
    port: 0,
    backlogBytes: 1,
  });
  const nodes: DatabaseNode[] = [];
  try {
    const a = await kvNode(`${dir}/a.db`, router.port);
    nodes.push(a);
    await a.ready();
    const b = await kvNode(`${dir}/b.db`, router.port);
    nodes.push(b);
    await b.ready();
    await using client = await connect({ port: router.port });
    await client.set("early", "1");
    await a.close();
    await waitFor(() => readyCount(router) === 1, "A to leave");
    await client.set("late", "2"); // Only B has it.
    await b.close();
    await waitFor(() => readyCount(router) === 0, "B to leave");
    const a2 = await kvNode(`${dir}/a.db`, router.port);
    nodes.push(a2);
    await waitFor(() => router.stats().hold?.held === 1, "A's join to be held");
    assert.equal(readyCount(router), 0, "A must wait for B");
    const b2 = await kvNode(`${dir}/b.db`, router.port);
    nodes.push(b2);
    await Promise.all([a2.ready(), b2.ready()]);
    await b2.close();
    await waitFor(() => readyCount(router) === 1, "B to leave again");
    assert.equal(await client.get("late"), "2");
    assert.equal(await client.get("early"), "1");
  } finally {
    for (const node of nodes) await node.close();
    await router.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writes numbered while the last database was cut off reach every database, or none", async () => {
  // The fault suite's seed 1356643922 (acks all): the router held joins with
  // no ready database, then made the returning member ready at its own
  // position without the writes numbered while it was cut off, while another
  // database replayed them from the backlog. The copies differed.
  // The router's log, shown if the test fails: the order of the joins matters.
  await using log = await captureLog("debug");
  const lines = log.lines;
  await using scene = await Scene.create();
  const router = await scene.router(0, {
    stateFile: undefined,
    // Room for a few writes only: B, away for many, must be copied whole.
    backlogBytes: 8 * 1024,
    // Short enough to drop A quickly, long enough that a busy machine does
    // not drop the others too.
    heartbeatTimeout: 1000,
    heartbeatInterval: 100,
  });
  await using relay = new Relay(
    { hostname: "127.0.0.1", port: router.port },
    { capture: false },
  );
  {
    const a = await scene.node("a", relay.port);
    await a.ready();
    const b = await scene.node("b", router.port);
    const c = await scene.node("c", router.port);
    await Promise.all([b.ready(), c.ready()]);
    await using client = await connect({ port: router.port, timeout: 5000 });
    await b.close();
    await waitFor(() => readyCount(router) === 2, "B to leave");
    const value = "x".repeat(100);
    for (let i = 0; i < 60; i++) await client.set(`early${i}`, value);
    await c.close();
    await waitFor(() => readyCount(router) === 1, "C to leave");
    // A, the last database, stops hearing the router: these writes are
    // numbered and sent, but nobody applies them.
    relay.mode = { kind: "blackhole" };
    const cutOff = Promise.allSettled(
      [0, 1, 2].map((i) => client.set(`cut${i}`, "1")),
    );
    await waitFor(() => readyCount(router) === 0, "the router to drop A");
    relay.cut();
    relay.mode = { kind: "pass" };
    // B (too far behind for the backlog) and C (within it) come back first.
    const b2 = await scene.node("b", router.port);
    const c2 = await scene.node("c", router.port);
    await Promise.all([b2.ready(), c2.ready()]);
    const outcomes = await cutOff;
    // A was ready before the router dropped it, so a.ready() may resolve
    // before A has rejoined: wait for the router to list all three.
    await waitForDatabases(router, 3);
    for (const node of scene.nodes) await node.close();
    const copies: (string | null)[][] = [];
    for (const name of ["a", "b", "c"]) {
      await using db = await KvDatabase.open(`${scene.dir}/${name}.db`);
      const values: (string | null)[] = [];
      for (const key of ["early59", "cut0", "cut1", "cut2"]) {
        const entry = await db.get(new TextEncoder().encode(key));
        values.push(entry && new TextDecoder().decode(entry.value));
      }
      copies.push(values);
    }
    const log = () => `${JSON.stringify(copies)}\n${lines.join("\n")}`;
    assert.deepEqual(copies[1], copies[0], `B differs from A: ${log()}`);
    assert.deepEqual(copies[2], copies[0], `C differs from A: ${log()}`);
    assert.equal(copies[0]![0], value);
    // What a client was told is done is there.
    outcomes.forEach((outcome, i) => {
      if (outcome.status === "fulfilled") assert.equal(copies[0]![i + 1], "1");
    });
  }
});

Deno.test("after weaker acknowledgements, a member that asks for a reset counts as back and copies from the others", async () => {
  // The fault suite's seed 777947270 (acks majority): the router held joins
  // until every member was back and complete, while one member, cleared for
  // a full sync, could never be complete again: nothing was ever served.
  await using scene = await Scene.create();
  const router = await scene.router(0, { acks: "majority" });
  const a = await scene.node("a", router.port);
  const b = await scene.node("b", router.port);
  await Promise.all([a.ready(), b.ready()]);
  await using client = await connect({ port: router.port });
  await client.set("before", "1");
  await waitFor(
    async () =>
      JSON.parse(await Deno.readTextFile(scene.stateFile)).weak === true,
    "the weak flag to be saved",
  );
  await b.close();
  await waitFor(() => readyCount(router) === 1, "B to leave");
  await client.set("while-b-away", "2");
  await a.close();
  await waitFor(() => readyCount(router) === 0, "A to leave");
  // B comes back asking for a reset: it will hold nothing of its own.
  await scene.node("b", router.port, true);
  const a2 = await scene.node("a", router.port);
  // Before the fix this waited forever.
  await waitFor(() => readyCount(router) === 2, "A and B to be ready");
  await a2.close();
  await waitFor(() => readyCount(router) === 1, "A to leave again");
  assert.equal(await client.get("while-b-away"), "2");
  assert.equal(await client.get("before"), "1");
});

Deno.test("a member away while writes are acknowledged stops being one, so a restarted router does not trust it", async () => {
  // The long fault suite's seed 1046525841 (acks all): B left as the last
  // ready database and stayed a member; A came back and acknowledged writes
  // alone; after a restart B returned first, was trusted, and A copied from
  // it: A's acknowledged writes were lost everywhere.
  await using scene = await Scene.create();
  {
    const first = await scene.router();
    const port = first.port;
    const a = await scene.node("a", port);
    const b = await scene.node("b", port);
    await Promise.all([a.ready(), b.ready()]);
    {
      await using client = await connect({ port });
      await client.set("w1", "1");
      await a.close();
      await waitFor(() => readyCount(first) === 1, "A to leave");
      await client.set("w2", "2"); // B alone.
      await b.close();
      await waitFor(() => readyCount(first) === 0, "B to leave");
      // A comes back, replays w2, and acknowledges w3 alone.
      const a2 = await scene.node("a", port);
      await a2.ready();
      await client.set("w3", "3");
      await a2.close();
    }
    await first.close();

    // B returns first to a restarted router: it must not be trusted.
    const second = await scene.router(port);
    await scene.node("b", port);
    await waitFor(() => second.stats().hold?.held === 1, "B's join to be held");
    assert.equal(readyCount(second), 0, "B was trusted though it lacks w3");
    await scene.node("a", port);
    await waitFor(() => readyCount(second) === 2, "A and B to be ready");
    await client0(port, async (client) => {
      assert.equal(await client.get("w3"), "3");
      assert.equal(await client.get("w2"), "2");
      assert.equal(await client.get("w1"), "1");
    });
  }
});
