// close() returns promptly: no backoff, throttle or retry outlives it.

import assert from "node:assert/strict";
import { DatabaseNode, MemoryDatabase } from "../database/mod.ts";
import { waitFor } from "./_cluster.ts";

Deno.test("DatabaseNode.close() does not wait out its reconnect backoff", async () => {
  // A port nobody listens on: the node fails to connect and backs off 30 s.
  const free = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = free.addr.port;
  free.close();
  const node = DatabaseNode.start({
    database: new MemoryDatabase(),
    hostname: "127.0.0.1",
    port,
    backoff: { min: 30_000, max: 30_000 },
  });
  await waitFor(() => node.status === "connecting", "the node to try");
  // Let the first attempt fail, so that the node is in its backoff.
  await waitFor(async () => {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return false;
    } catch {
      return true;
    }
  }, "the port to refuse");
  const started = performance.now();
  await node.close();
  const took = performance.now() - started;
  assert.ok(took < 5_000, `close() took ${took} ms`);
});

Deno.test("a program that closed its router ends though a login was being throttled", async () => {
  // The throttle's 30 s wait used to keep the process alive after close().
  const script = `
    import { configure } from "@logtape/logtape";
    import { connect } from "${new URL("../client/mod.ts", import.meta.url)}";
    import { Router } from "${new URL("../router/mod.ts", import.meta.url)}";
    const refused = Promise.withResolvers();
    await configure({
      sinks: {
        memory: (record) => {
          if (String(record.message[0]).startsWith("Handshake with ")) {
            refused.resolve();
          }
        },
      },
      loggers: [
        { category: "kvndb", lowestLevel: "warning", sinks: ["memory"] },
        { category: ["logtape", "meta"], lowestLevel: "warning", sinks: [] },
      ],
    });
    const router = await Router.start({
      hostname: "127.0.0.1",
      port: 0,
      password: "right",
      authFailureDelay: 30_000,
    });
    const attempt = connect({ port: router.port, password: "wrong" })
      .catch((error) => error);
    await refused.promise;
    await router.close();
    console.log(await attempt instanceof Error);
  `;
  const started = performance.now();
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      "--config",
      new URL("../deno.json", import.meta.url).pathname,
      script,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const took = performance.now() - started;
  assert.equal(
    new TextDecoder().decode(output.stdout).trim(),
    "true",
    new TextDecoder().decode(output.stderr),
  );
  assert.ok(took < 20_000, `the program took ${took} ms to end`);
});
