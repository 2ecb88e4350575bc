// Members that cannot come back: memory databases whose process died, and
// the operator's way out (`forget`) when a durable member is lost for good.

import assert from "node:assert/strict";
import { connect } from "../client/mod.ts";
import {
  type Database,
  DatabaseNode,
  KvDatabase,
  MemoryDatabase,
} from "../database/mod.ts";
import {
  ErrorCode,
  InvalidArgumentError,
  KvndbError,
} from "../protocol/mod.ts";
import { Router, type RouterOptions } from "../router/mod.ts";
import { waitFor, waitForDatabases } from "./_cluster.ts";
import { type CapturedLog, captureLog } from "./_log.ts";
import { restartablePort } from "./_ports.ts";

/** A folder, routers on its state file, nodes; all closed and removed. */
class Scene implements AsyncDisposable {
  readonly nodes: DatabaseNode[] = [];
  readonly routers: Router[] = [];
  private constructor(readonly dir: string, readonly log: CapturedLog) {}

  static async create(): Promise<Scene> {
    return new Scene(await Deno.makeTempDir(), await captureLog());
  }

  async router(port = 0, options: RouterOptions = {}): Promise<Router> {
    const router = await Router.start({
      hostname: "127.0.0.1",
      port,
      stateFile: `${this.dir}/router.json`,
      volatileGrace: 300,
      ...options,
    });
    this.routers.push(router);
    return router;
  }

  node(port: number, database: Database = new MemoryDatabase()): DatabaseNode {
    const node = DatabaseNode.start({
      database,
      hostname: "127.0.0.1",
      port,
      backoff: { min: 20, max: 100 },
    });
    this.nodes.push(node);
    return node;
  }

  /** The log lines at warning level. */
  warnings(): string {
    return this.log.warnings();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const node of this.nodes) await node.close();
    for (const router of this.routers) await router.close();
    await this.log[Symbol.asyncDispose]();
    await Deno.remove(this.dir, { recursive: true });
  }
}

/** Waits until a write through `port` succeeds, then returns its client. */
async function waitForService(port: number): Promise<void> {
  await using client = await connect({ port, timeout: 2000 });
  await waitFor(
    async () => {
      try {
        await client.set("probe", "1");
        return true;
      } catch (error) {
        if (error instanceof KvndbError) return false;
        throw error;
      }
    },
    "the cluster to serve again",
    20_000,
  );
}

Deno.test("a cluster whose memory databases all died serves again once a fresh one joins, and logs the loss", async () => {
  await using scene = await Scene.create();
  const router = await scene.router();
  const a = scene.node(router.port);
  const b = scene.node(router.port);
  await waitForDatabases(router, 2);
  {
    await using client = await connect({ port: router.port });
    await client.set("before", "1");
  }
  await a.close();
  await b.close();
  await waitFor(() => router.stats().databases.length === 0, "A and B to go");
  scene.node(router.port);
  await waitForService(router.port);
  await using client = await connect({ port: router.port });
  // Its only copies died with A and B.
  assert.equal(await client.get("before"), null);
  assert.match(
    scene.warnings(),
    /Giving up on 1 volatile member, away for more than 0\.3 s: their data died with them \(.*volatile \(memory\).*\)\. Acknowledged writes after sequence 0, up to \d+ \(at most \d+ writes\), were held only by them and are lost/,
  );
  assert.deepEqual(
    router.stats().members?.map((member) => member.present),
    [true],
  );
});

Deno.test("without a state file, one memory database that died is replaced by a fresh one", async () => {
  await using scene = await Scene.create();
  const router = await scene.router(0, { stateFile: undefined });
  const a = scene.node(router.port);
  await waitForDatabases(router, 1);
  await a.close();
  scene.node(router.port);
  await waitForService(router.port);
  assert.equal(router.stats().hold, undefined);
});

Deno.test("a router restarted while its memory databases run loses nothing", async () => {
  await using scene = await Scene.create();
  const first = await scene.router(restartablePort(), {
    volatileGrace: 10_000,
  });
  const port = first.port;
  scene.node(port);
  scene.node(port);
  await waitForDatabases(first, 2);
  {
    await using client = await connect({ port });
    for (let i = 0; i < 50; i++) await client.set(`k${i}`, `v${i}`);
  }
  await first.close();
  const second = await scene.router(port, { volatileGrace: 10_000 });
  await waitForDatabases(second, 2);
  await using client = await connect({ port });
  for (let i = 0; i < 50; i++) assert.equal(await client.get(`k${i}`), `v${i}`);
  assert.doesNotMatch(scene.warnings(), /Giving up/);
});

Deno.test("a restarted router whose memory databases died serves once a fresh one joins", async () => {
  await using scene = await Scene.create();
  const first = await scene.router(restartablePort());
  const port = first.port;
  const a = scene.node(port);
  await waitForDatabases(first, 1);
  {
    await using client = await connect({ port });
    await client.set("before", "1");
  }
  await first.close();
  await a.close();
  const second = await scene.router(port);
  assert.equal(second.stats().members?.[0]?.volatile, true);
  scene.node(port);
  await waitForService(port);
  assert.match(scene.warnings(), /Giving up on 1 volatile member,/);
});

Deno.test("a cluster with a Deno KV member waits for it, says what for and how to get out, and forget ends the wait", async () => {
  await using scene = await Scene.create();
  const router = await scene.router();
  const durable = scene.node(
    router.port,
    await KvDatabase.open(`${scene.dir}/a.db`),
  );
  const memory = scene.node(router.port);
  await waitForDatabases(router, 2);
  await using client = await connect({ port: router.port, timeout: 2000 });
  await client.set("before", "1");
  // The memory database leaves first: the Deno KV one is the last member.
  await memory.close();
  await durable.close();
  await waitFor(() => router.stats().databases.length === 0, "both to go");
  scene.node(router.port);
  await waitFor(
    () => router.stats().hold !== undefined,
    "the router to hold the fresh database",
  );
  const kvId = router.stats().members![0]!.id;
  assert.equal(router.stats().members![0]!.volatile, false);
  await assert.rejects(
    () => client.set("during", "1"),
    (error: unknown) =>
      error instanceof KvndbError && error.code === ErrorCode.UNAVAILABLE &&
      error.message.includes(
        `${kvId.slice(0, 12)} (durable, last at 127.0.0.1:`,
      ) &&
      /for [\d.]+ s the router has waited/.test(error.message) &&
      error.message.includes("kvndb forget HOST PORT --all-absent"),
  );
  // Only an absent member can be forgotten, and only a member.
  await assert.rejects(
    () => client.forget(["00112233445566778899aabbccddeeff"]),
    InvalidArgumentError,
  );
  const forgotten = await client.forget("absent");
  assert.deepEqual(forgotten.map((member) => member.id), [kvId]);
  await waitForService(router.port);
  assert.equal(await client.get("before"), null);
  assert.match(scene.warnings(), /Forgetting 1 absent member on request/);
  // The change is durable: a restarted router does not wait for it again.
  const saved = JSON.parse(
    await Deno.readTextFile(`${scene.dir}/router.json`),
  ) as { members: string[] };
  assert.ok(!saved.members.includes(kvId));
});

Deno.test("forget refuses a member that is connected", async () => {
  await using scene = await Scene.create();
  const router = await scene.router();
  scene.node(router.port);
  await waitForDatabases(router, 1);
  await waitFor(
    () => router.stats().members?.length === 1,
    "the database to be a member",
  );
  const id = router.stats().members![0]!.id;
  await using client = await connect({ port: router.port });
  await assert.rejects(
    () => client.forget([id]),
    (error: unknown) =>
      error instanceof InvalidArgumentError &&
      /is connected: only an absent member can be forgotten/.test(
        error.message,
      ),
  );
  assert.deepEqual(await client.forget("absent"), []);
});
