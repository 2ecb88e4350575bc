// Limits against abuse: login throttling, protected mode, handshake deadline,
// connection cap, unread output, oversized frames, frozen and slow databases.
// Each case checks that another client is still served.

import assert from "node:assert/strict";
import { connect } from "../client/mod.ts";
import {
  AuthError,
  decodeError,
  decodeFrame,
  decodeWelcome,
  encodeHello,
  encodeJoin,
  ErrorCode,
  FramedConnection,
  handshake,
  Opcode,
  PROTOCOL_VERSION,
  Role,
} from "../protocol/mod.ts";
import { Router } from "../router/mod.ts";
import { IS_LOCAL_PEER, isLoopback } from "../router/_peer.ts";
import { Cluster, waitFor } from "./_cluster.ts";
import { KvndbProcess } from "./_process.ts";
import { drain } from "./_raw.ts";

function firstError(bytes: Uint8Array): { code: number; message: string } {
  const decoded = decodeFrame(bytes);
  assert.ok(decoded, "an ERROR frame");
  assert.equal(decoded.frame.opcode, Opcode.ERROR);
  return decodeError(decoded.frame.payload);
}

Deno.test("wrong passwords get the same error every time, are throttled, and the right one still works", async () => {
  await using cluster = await Cluster.start({
    password: "right",
    authFailureDelay: 40,
    authFailuresAllowed: 2,
  });
  const messages = new Set<string>();
  const durations: number[] = [];
  for (let i = 0; i < 5; i++) {
    const start = performance.now();
    await assert.rejects(
      () => connect({ port: cluster.port, password: `guess${i}` }),
      (error: unknown) => {
        assert.ok(error instanceof AuthError);
        messages.add(error.message);
        return true;
      },
    );
    durations.push(performance.now() - start);
  }
  assert.equal(messages.size, 1, "one message for every failure");
  // Attempts 3, 4 and 5 wait 40, 80 and 160 ms more before they even start.
  assert.ok(durations[4]! > durations[1]! + 120, durations.join(", "));
  const client = await cluster.client();
  assert.ok(await client.ping() >= 0);
});

Deno.test("protected mode: with no password on a public address, only local peers are served", async () => {
  assert.equal(isLoopback("127.0.0.1"), true);
  assert.equal(isLoopback("::1"), true);
  assert.equal(isLoopback("::ffff:127.0.0.1"), true);
  assert.equal(isLoopback("10.0.0.1"), false);
  assert.equal(isLoopback("fd00::2"), false);
  // Every peer is treated as remote here: the router must refuse it.
  await using router = await Router.start(
    {
      hostname: "0.0.0.0",
      port: 0,
      [IS_LOCAL_PEER]: () => false,
    } as Parameters<typeof Router.start>[0],
  );
  await assert.rejects(
    () => connect({ port: router.port }),
    (error: unknown) =>
      error instanceof Error && /protected mode/.test(error.message) &&
      /--password/.test(error.message) && /--insecure/.test(error.message),
  );
  // --insecure opens it; a loopback-only router is never protected.
  await using open = await Router.start(
    {
      hostname: "0.0.0.0",
      port: 0,
      insecure: true,
      [IS_LOCAL_PEER]: () => false,
    } as Parameters<typeof Router.start>[0],
  );
  await using client = await connect({ port: open.port });
  assert.ok(await client.ping() >= 0);
  await using local = await Router.start({ hostname: "0.0.0.0", port: 0 });
  await using localClient = await connect({ port: local.port });
  assert.ok(await localClient.ping() >= 0);
});

Deno.test("a connection that never finishes its handshake is closed after the deadline", async () => {
  await using cluster = await Cluster.start({ handshakeTimeout: 300 });
  const client = await cluster.client();
  const slow = await Deno.connect({
    hostname: "127.0.0.1",
    port: cluster.port,
  });
  // Half a HELLO, then nothing: a slowloris.
  await slow.write(
    encodeHello({
      version: PROTOCOL_VERSION,
      role: Role.CLIENT,
      nonce: new Uint8Array(24),
    }).subarray(0, 7),
  );
  const start = performance.now();
  const answer = await drain(slow);
  assert.ok(performance.now() - start < 2000);
  assert.match(firstError(answer).message, /Handshake not completed/);
  assert.ok(await client.ping() >= 0);
});

Deno.test("past the connection limit a clear error, and a freed slot is usable again", async () => {
  await using cluster = await Cluster.start({ maxConnections: 3 });
  const held = await Promise.all(
    [0, 1, 2].map(() =>
      Deno.connect({ hostname: "127.0.0.1", port: cluster.port })
    ),
  );
  await waitFor(
    async () => {
      const extra = await Deno.connect({
        hostname: "127.0.0.1",
        port: cluster.port,
      });
      const answer = await drain(extra, 1000);
      return answer.length > 0 &&
        firstError(answer).code === ErrorCode.TOO_MANY_CONNECTIONS;
    },
    "the fourth connection to be refused",
  );
  held[0]!.close();
  await waitFor(async () => {
    try {
      const client = await connect({ port: cluster.port, timeout: 1000 });
      await client.close();
      return true;
    } catch {
      return false;
    }
  }, "a freed slot to be usable");
  for (const conn of held.slice(1)) conn.close();
});

Deno.test("a 4 GiB length prefix is refused without allocating it", async () => {
  await using cluster = await Cluster.start();
  const client = await cluster.client();
  const before = Deno.memoryUsage().rss;
  for (let i = 0; i < 20; i++) {
    const conn = await Deno.connect({
      hostname: "127.0.0.1",
      port: cluster.port,
    });
    await conn.write(new Uint8Array([0xff, 0xff, 0xff, 0xff]));
    const answer = await drain(conn);
    assert.equal(firstError(answer).code, ErrorCode.TOO_LARGE);
  }
  const growth = Deno.memoryUsage().rss - before;
  assert.ok(growth < 64 * 1024 * 1024, `RSS grew by ${growth} bytes`);
  assert.ok(await client.ping() >= 0);
});

Deno.test("a client that pipelines without reading is cut off, and others are not slowed", async () => {
  await using cluster = await Cluster.start({
    maxBufferedBytes: 1024 * 1024,
    // Every read the router took in before the cut is still answered by the
    // database: at the default 10,000 in flight that is 1 GB of 100 KB
    // answers, which on a loaded machine delays the other client's pings
    // past their timeout. This test is about the output limit.
    maxInFlight: 500,
  });
  const other = await cluster.client();
  await other.set("big", "x".repeat(100_000));
  // A raw client: after the handshake it never reads its socket again,
  // and asks for far more than it reads.
  const raw = await Deno.connect({ hostname: "127.0.0.1", port: cluster.port });
  const hello = encodeHello({
    version: PROTOCOL_VERSION,
    role: Role.CLIENT,
    nonce: new Uint8Array(24),
  });
  await raw.write(hello);
  // Read only the WELCOME, then never read again.
  const welcome = new Uint8Array(64);
  const count = await raw.read(welcome);
  assert.ok(count !== null);
  decodeWelcome(decodeFrame(welcome.subarray(0, count))!.frame.payload);
  const key = new TextEncoder().encode("big");
  const get = new Uint8Array(10 + 2 + key.length);
  new DataView(get.buffer).setUint32(0, 6 + 2 + key.length);
  get[4] = Opcode.GET;
  new DataView(get.buffer).setUint16(10, key.length);
  get.set(key, 12);
  const burst = new Uint8Array(get.length * 500);
  for (let i = 0; i < 500; i++) {
    get[9] = i % 250 + 1;
    burst.set(get, i * get.length);
  }
  const writer = (async () => {
    try {
      for (let i = 0; i < 200; i++) await raw.write(burst);
    } catch {
      // Cut off by the router, as expected.
    }
  })();
  const latencies: number[] = [];
  for (let i = 0; i < 20; i++) latencies.push(await other.ping());
  await waitFor(
    () => cluster.router.stats().clients === 1,
    "the greedy client to be cut off",
  );
  await writer;
  try {
    raw.close();
  } catch {
    // Already closed.
  }
  // Most pings stay quick; on a loaded CI machine (every test file runs at
  // once) one may wait a second or so, but never as long as the greedy
  // client's backlog would take.
  const sorted = [...latencies].sort((a, b) => a - b);
  assert.ok(sorted[sorted.length >> 1]! < 1000, latencies.join(", "));
  assert.ok(sorted[sorted.length - 1]! < 5000, latencies.join(", "));
  assert.equal(await other.get("big"), "x".repeat(100_000));
});

Deno.test("a frozen database (SIGSTOP) is dropped within seconds and writes go on", async () => {
  await using cluster = await Cluster.start({
    databases: 1,
    heartbeatInterval: 200,
    heartbeatTimeout: 1000,
  });
  await using frozen = KvndbProcess.start([
    "memory",
    "127.0.0.1",
    String(cluster.port),
  ]);
  await waitFor(
    () =>
      cluster.router.stats().databases.filter((d) => d.state === "ready")
        .length === 2,
    "the second database to be ready",
  );
  const client = await cluster.client();
  await client.set("before", "1");
  frozen.child.kill("SIGSTOP");
  try {
    const start = performance.now();
    await client.set("during", "2");
    const waited = performance.now() - start;
    assert.ok(waited < 4000, `the write waited ${waited} ms`);
    await waitFor(
      () => cluster.router.stats().databases.length === 1,
      "the frozen database to be dropped",
      5000,
    );
    assert.equal(await client.get("during"), "2");
  } finally {
    frozen.child.kill("SIGCONT");
  }
});

Deno.test("a database that stops reading is dropped once its queue is full, and writes go on", async () => {
  await using cluster = await Cluster.start({
    databases: 1,
    maxBufferedBytes: 2 * 1024 * 1024,
    heartbeatTimeout: 60_000,
  });
  const client = await cluster.client();
  // A database that joins and then never reads its socket again.
  const framed = new FramedConnection(
    await Deno.connect({ hostname: "127.0.0.1", port: cluster.port }),
  );
  await handshake(framed, { role: Role.DATABASE });
  framed.close();
  const raw = await Deno.connect({ hostname: "127.0.0.1", port: cluster.port });
  await raw.write(
    encodeHello({
      version: PROTOCOL_VERSION,
      role: Role.DATABASE,
      nonce: new Uint8Array(24),
    }),
  );
  const buffer = new Uint8Array(256);
  await raw.read(buffer);
  const stats = cluster.router.stats();
  await raw.write(encodeJoin({
    clusterId: Uint8Array.from(
      stats.clusterId.match(/../g)!.map((h) => parseInt(h, 16)),
    ),
    nodeId: new Uint8Array(16).fill(7),
    applied: stats.seq,
    reset: false,
    complete: true,
  }));
  await waitFor(
    () => cluster.router.stats().databases.length === 2,
    "the stuck database to join",
  );
  // It will not acknowledge, so write with acks=one while its queue fills.
  const value = "v".repeat(200_000);
  for (let i = 0; i < 60; i++) {
    await client.set(`k${i}`, value, { acks: "one" });
  }
  await waitFor(
    () => cluster.router.stats().databases.length === 1,
    "the stuck database to be dropped",
  );
  assert.equal((await client.get("k59"))?.length, 200_000);
  await client.set("after", "ok");
  assert.equal(await client.get("after"), "ok");
  try {
    raw.close();
  } catch {
    // Already closed.
  }
});

Deno.test("requests past the in-flight limit get an error, and the connection stays usable", async () => {
  await using cluster = await Cluster.start({ databases: 1, maxInFlight: 5 });
  const client = await cluster.client();
  const results = await Promise.allSettled(
    Array.from({ length: 50 }, (_, i) => client.set(`k${i}`, "v")),
  );
  const refused = results.filter((r) => r.status === "rejected");
  assert.ok(refused.length > 0);
  for (const r of refused) {
    assert.match(String((r as PromiseRejectedResult).reason), /in flight/);
  }
  assert.ok(await client.ping() >= 0);
  await client.set("after", "v");
  assert.equal(await client.get("after"), "v");
});
