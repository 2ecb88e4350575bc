// Hostile input against a live router: random and mutated byte streams, each
// on its own connection, while a well-behaved client keeps being served.

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  encodeGet,
  encodeHello,
  encodeOpaque,
  encodeWriteRequest,
  Opcode,
  PROTOCOL_VERSION,
  Role,
} from "../protocol/mod.ts";
import { Cluster } from "./_cluster.ts";
import { sendRaw } from "./_raw.ts";

const RUNS = Number(Deno.env.get("KVNDB_HOSTILE_RUNS") ?? "500");

const hello = encodeHello({
  version: PROTOCOL_VERSION,
  role: Role.CLIENT,
  nonce: new Uint8Array(24).fill(1),
});
const valid = [
  hello,
  encodeGet(1, new TextEncoder().encode("k")),
  encodeWriteRequest(2, {
    acks: 0,
    key: new TextEncoder().encode("k"),
    value: new Uint8Array(8),
  }),
  encodeOpaque(Opcode.PING, 3),
];

const hostile = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 300 }),
  // A valid handshake followed by garbage.
  fc.uint8Array({ minLength: 1, maxLength: 200 }).map((tail) => {
    const out = new Uint8Array(hello.length + tail.length);
    out.set(hello);
    out.set(tail, hello.length);
    return out;
  }),
  // Valid frames with bytes flipped, cut short, or lengths overwritten.
  fc.tuple(
    fc.constantFrom(...valid),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
      minLength: 1,
      maxLength: 6,
    }),
    fc.nat(),
  ).map(([frame, flips, cut]) => {
    const out = Uint8Array.from([...hello, ...frame]);
    for (const [at, value] of flips) out[at % out.length] = value;
    return out.subarray(0, Math.max(1, out.length - (cut % 8)));
  }),
);

Deno.test("the router survives random and mutated input and keeps serving others", async () => {
  await using cluster = await Cluster.start({ handshakeTimeout: 300 });
  const client = await cluster.client();
  await client.set("canary", "alive");
  const before = Deno.memoryUsage().rss;
  let tried = 0;
  await fc.assert(
    fc.asyncProperty(hostile, async (bytes) => {
      tried++;
      // End our side: the router sees the stream stop mid-frame, as a truncated
      // frame followed by close, and must neither apply nor wait for it.
      await sendRaw(cluster.port, bytes, { timeout: 1000, closeWrite: true });
      assert.equal(await client.get("canary"), "alive");
    }),
    { numRuns: RUNS },
  );
  const growth = Deno.memoryUsage().rss - before;
  console.log(
    `Sent ${tried} hostile inputs to a live router; RSS grew by ${
      (growth / 1024 / 1024).toFixed(1)
    } MiB`,
  );
  assert.ok(growth < 128 * 1024 * 1024);
  assert.ok(await client.ping() >= 0);
  assert.equal(cluster.router.stats().clients, 1);
});
