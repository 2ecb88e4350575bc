import assert from "node:assert/strict";
import { DatabaseNode, MemoryDatabase } from "../database/mod.ts";
import { Router } from "../router/mod.ts";
import { connect, TimeoutError } from "./mod.ts";

/** A memory database whose reads never finish: answers never come. */
class SilentDatabase extends MemoryDatabase {
  constructor() {
    super();
    // Every read must reach get(): no answer in the turn a read arrives.
    Object.defineProperty(this, "getNow", { value: undefined });
  }

  override get(): Promise<null> {
    return new Promise(() => {});
  }
}

async function silentCluster() {
  const router = await Router.start({ hostname: "127.0.0.1", port: 0 });
  const node = DatabaseNode.start({
    database: new SilentDatabase(),
    port: router.port,
  });
  await node.ready();
  return {
    port: router.port,
    async [Symbol.asyncDispose]() {
      await node.close().catch(() => {});
      await router.close();
    },
  };
}

Deno.test("a request without an answer times out with TimeoutError, and the client goes on", async () => {
  await using cluster = await silentCluster();
  await using client = await connect({ port: cluster.port });
  const started = performance.now();
  await assert.rejects(client.get("k", { timeout: 150 }), TimeoutError);
  const waited = performance.now() - started;
  assert.ok(waited >= 150 && waited < 2000, `waited ${waited} ms`);
  assert.equal(client.inFlight, 0);
  await client.set("k", "v");
  assert.ok((await client.ping()) >= 0);
});

Deno.test("an aborted request rejects with the signal's reason at once", async () => {
  await using cluster = await silentCluster();
  await using client = await connect({ port: cluster.port });
  const controller = new AbortController();
  const pending = client.get("k", { signal: controller.signal });
  controller.abort(new Error("changed my mind"));
  await assert.rejects(pending, /changed my mind/);
  assert.equal(client.inFlight, 0);
  // An already aborted signal never sends the request.
  await assert.rejects(
    client.get("k", { signal: AbortSignal.abort(new Error("too late")) }),
    /too late/,
  );
});
