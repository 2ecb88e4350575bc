// A node whose connection drops while its work queue is still busy: the next
// connection must not start (nor join, nor clear) until that work is done.
// The fault suite found acknowledged writes lost when the old queue marked
// a store complete in the middle of the next connection's full sync.

import assert from "node:assert/strict";
import { connect } from "../client/mod.ts";
import {
  type Database,
  DatabaseNode,
  type DatabaseState,
  MemoryDatabase,
} from "../database/mod.ts";
import { Router } from "../router/mod.ts";
import { waitFor } from "./_cluster.ts";
import { Relay } from "./_relay.ts";

/** A memory database whose "sync complete" state write waits for a gate. */
class GatedDatabase extends MemoryDatabase implements Database {
  gate?: PromiseWithResolvers<void>;
  blocked = 0;
  override async setState(state: DatabaseState): Promise<void> {
    if (state.complete && this.gate !== undefined) {
      this.blocked++;
      await this.gate.promise;
    }
    return super.setState(state);
  }
}

Deno.test("a node rejoins only once the work of its last connection is done", async () => {
  await using router = await Router.start({ hostname: "127.0.0.1", port: 0 });
  await using relay = new Relay({ hostname: "127.0.0.1", port: router.port }, {
    capture: false,
  });
  await using a = DatabaseNode.start({
    database: new MemoryDatabase(),
    port: router.port,
  });
  await a.ready();
  await using client = await connect({ port: router.port });
  await Promise.all(
    Array.from({ length: 500 }, (_, i) => client.set(`k${i}`, `v${i}`)),
  );
  const gated = new GatedDatabase();
  gated.gate = Promise.withResolvers<void>();
  await using b = DatabaseNode.start({
    database: gated,
    port: relay.port,
    reset: true,
    backoff: { min: 20, max: 50 },
  });
  // B has copied everything and is recording that it is complete: hold it
  // there, and cut its link.
  await waitFor(() => gated.blocked > 0, "B to finish its sync");
  // Whatever happens, let B's work end, or closing B would wait for ever.
  using _release = { [Symbol.dispose]: () => gated.gate?.resolve() };
  const joinsBefore = relay.outboundPorts().length;
  relay.cut();
  await new Promise((resolve) => setTimeout(resolve, 400));
  const connected = router.stats().databases.length;
  assert.equal(
    connected,
    1,
    "B joined again while its last sync was still being recorded",
  );
  assert.ok(joinsBefore >= 1);
  await client.set("late", "1");
  gated.gate.resolve();
  gated.gate = undefined;
  await b.ready();
  await waitFor(
    async () => (await gated.count()) === 501,
    "B to hold every key",
  );
  assert.equal(
    (await gated.get(new TextEncoder().encode("late")))?.version !== undefined,
    true,
  );
});
