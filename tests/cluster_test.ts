// Integration tests: a real router, real memory database nodes and real
// clients on loopback ports the OS picks.

import assert from "node:assert/strict";
import { connect } from "../client/mod.ts";
import {
  AuthError,
  decodeError,
  decodeFrame,
  encodeHello,
  encodeJoin,
  encodeOpaque,
  ErrorCode,
  FramedConnection,
  FrameWriter,
  handshake,
  KvndbError,
  MAX_VALUE_SIZE,
  Opcode,
  PROTOCOL_VERSION,
  Role,
  TooLargeError,
  VersionMismatchError,
} from "../protocol/mod.ts";
import { DatabaseNode, MemoryDatabase } from "../database/mod.ts";
import { Router } from "../router/mod.ts";
import { Cluster, waitFor } from "./_cluster.ts";
import { sendRaw } from "./_raw.ts";
import { contains, Relay } from "./_relay.ts";
import { restartablePort } from "./_ports.ts";

const encoder = new TextEncoder();

Deno.test("a write by one client is read by another through either database", async () => {
  await using cluster = await Cluster.start({ databases: 2 });
  const writer = await cluster.client();
  const reader = await cluster.client();
  await writer.set("greeting", "hello");
  for (let i = 0; i < 20; i++) {
    assert.equal(await reader.get("greeting"), "hello");
  }
  assert.equal(await reader.get("missing"), null);
  await writer.delete("greeting");
  assert.equal(await reader.get("greeting"), null);
});

Deno.test("get returns the version of the last write to a key", async () => {
  await using cluster = await Cluster.start();
  const client = await cluster.client();
  const first = await client.set("k", "1");
  const second = await client.set("k", "2");
  assert.ok(second > first);
  const entry = await client.getEntry("k");
  assert.equal(entry?.version, second);
  assert.deepEqual(entry?.value, encoder.encode("2"));
});

Deno.test("either database can stop and every acknowledged key stays readable", async () => {
  for (const victim of [0, 1]) {
    await using cluster = await Cluster.start({ databases: 2 });
    const client = await cluster.client();
    await Promise.all(
      Array.from({ length: 300 }, (_, i) => client.set(`key${i}`, `value${i}`)),
    );
    await cluster.nodes[victim]!.close();
    for (let i = 0; i < 300; i++) {
      assert.equal(await client.get(`key${i}`), `value${i}`);
    }
  }
});

Deno.test("reads and writes with no database answer a clear error at once", async () => {
  await using cluster = await Cluster.start({ databases: 0 });
  const client = await cluster.client();
  const start = performance.now();
  await assert.rejects(
    () => client.get("a"),
    (error: unknown) =>
      error instanceof KvndbError && error.code === ErrorCode.NO_DATABASE &&
      /No database available/.test(error.message),
  );
  await assert.rejects(
    () => client.set("a", "1"),
    (error: unknown) =>
      error instanceof KvndbError && error.code === ErrorCode.NO_DATABASE,
  );
  assert.ok(performance.now() - start < 1000);
  assert.ok(await client.ping() >= 0);
});

Deno.test("a wrong password fails clearly after a delay, the right one works", async () => {
  await using cluster = await Cluster.start({
    password: "correct horse",
    authFailureDelay: 200,
  });
  const start = performance.now();
  await assert.rejects(
    () => connect({ port: cluster.port, password: "wrong" }),
    (error: unknown) =>
      error instanceof AuthError && /wrong password/.test(error.message),
  );
  assert.ok(performance.now() - start >= 150);
  await assert.rejects(
    () => connect({ port: cluster.port }),
    (error: unknown) =>
      error instanceof AuthError && error.code === ErrorCode.AUTH_REQUIRED,
  );
  const client = await cluster.client();
  await client.set("a", "1");
  assert.equal(await client.get("a"), "1");
});

Deno.test("the password never crosses the wire, in clear or hashed", async () => {
  const password = "s3cret-Pa55word-that-must-not-leak";
  await using cluster = await Cluster.start({ password });
  await using relay = new Relay({ hostname: "127.0.0.1", port: cluster.port });
  await using client = await connect({ port: relay.port, password });
  await client.set("a", "1");
  assert.equal(await client.get("a"), "1");
  await assert.rejects(() => connect({ port: relay.port, password: "nope" }));
  const wire = relay.captured();
  assert.ok(wire.length > 100);
  const bytes = encoder.encode(password);
  const sha256 = new Uint8Array(
    await crypto.subtle.digest("SHA-256", bytes),
  );
  assert.equal(contains(wire, bytes), false);
  assert.equal(contains(wire, sha256), false);
  assert.equal(contains(wire, encoder.encode("s3cret")), false);
});

Deno.test("a recorded authentication replayed on a new connection fails", async () => {
  await using cluster = await Cluster.start({
    password: "pw",
    authFailureDelay: 0,
  });
  // Record a successful exchange's AUTH frame.
  const first = new FramedConnection(
    await Deno.connect({ hostname: "127.0.0.1", port: cluster.port }),
  );
  const sent: Uint8Array[] = [];
  const send = first.send.bind(first);
  first.send = (bytes: Uint8Array) => {
    sent.push(bytes);
    return send(bytes);
  };
  await handshake(first, { role: Role.CLIENT, password: "pw" });
  first.close();
  const authFrame = sent.find((bytes) => bytes[4] === Opcode.AUTH)!;
  // Replay it after a fresh HELLO: the router's new nonce makes it invalid.
  const second = new FramedConnection(
    await Deno.connect({ hostname: "127.0.0.1", port: cluster.port }),
  );
  second.send(sent[0]!);
  await second.readFrame({ timeout: 2000 });
  second.send(authFrame);
  const answer = await second.readFrame({ timeout: 2000 });
  assert.equal(answer.opcode, Opcode.ERROR);
  assert.equal(decodeError(answer.payload).code, ErrorCode.AUTH_FAILED);
  second.close();
});

Deno.test("a peer with another protocol version gets an error naming both versions", async () => {
  await using cluster = await Cluster.start();
  const conn = new FramedConnection(
    await Deno.connect({ hostname: "127.0.0.1", port: cluster.port }),
  );
  await assert.rejects(
    () => handshake(conn, { role: Role.CLIENT, version: PROTOCOL_VERSION + 1 }),
    (error: unknown) =>
      error instanceof VersionMismatchError &&
      error.message.includes(`speaks ${PROTOCOL_VERSION}`) &&
      error.message.includes(`speaks ${PROTOCOL_VERSION + 1}`),
  );
  conn.close();
});

Deno.test("garbage on the router's port ends that connection and disturbs no one", async (t) => {
  await using cluster = await Cluster.start();
  const client = await cluster.client();
  await client.set("a", "1");
  const hostile: [string, Uint8Array][] = [
    ["an HTTP request", encoder.encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n")],
    ["a length prefix of 4 GiB", new Uint8Array([0xff, 0xff, 0xff, 0xff])],
    ["a zero-length frame", new Uint8Array([0, 0, 0, 0])],
    ["an unknown opcode", new Uint8Array([0, 0, 0, 6, 0x7e, 0, 0, 0, 0, 1])],
    [
      "reserved flags",
      new Uint8Array([0, 0, 0, 6, Opcode.PING, 1, 0, 0, 0, 1]),
    ],
    ["a request before the handshake", encodeOpaque(Opcode.PING, 1)],
    [
      "a TLS ClientHello",
      new Uint8Array([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc]),
    ],
    [
      "a HELLO with the wrong magic",
      (() => {
        const bytes = encodeHello({
          version: 1,
          role: 1,
          nonce: new Uint8Array(24),
        });
        bytes[10] = 0x58;
        return bytes;
      })(),
    ],
  ];
  for (const [name, bytes] of hostile) {
    await t.step(name, async () => {
      const answer = await sendRaw(cluster.port, bytes);
      const decoded = decodeFrame(answer);
      assert.ok(decoded, `expected an ERROR frame, got ${answer.length} bytes`);
      assert.equal(decoded.frame.opcode, Opcode.ERROR);
      assert.ok(decodeError(decoded.frame.payload).message.length > 0);
      assert.ok(await client.ping() >= 0);
      assert.equal(await client.get("a"), "1");
    });
  }
});

Deno.test("a truncated frame followed by close is never applied", async () => {
  await using cluster = await Cluster.start();
  const client = await cluster.client();
  const conn = new FramedConnection(
    await Deno.connect({ hostname: "127.0.0.1", port: cluster.port }),
  );
  await handshake(conn, { role: Role.CLIENT });
  const frame = new FrameWriter(Opcode.SET, 1, 1 + 2 + 1 + 4 + 1).u8(0).u16(1)
    .raw(encoder.encode("t")).u32(1).raw(encoder.encode("v")).finish();
  conn.send(frame.subarray(0, frame.length - 3));
  await conn.flushed();
  conn.close();
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(await client.get("t"), null);
});

Deno.test("a value over the limit gets an error answer and the connection stays usable", async () => {
  await using cluster = await Cluster.start();
  const client = await cluster.client();
  await assert.rejects(
    () => client.set("big", new Uint8Array(MAX_VALUE_SIZE + 1)),
    TooLargeError,
  );
  // Bypass the client's own check: the router refuses it too.
  const conn = new FramedConnection(
    await Deno.connect({ hostname: "127.0.0.1", port: cluster.port }),
  );
  await handshake(conn, { role: Role.CLIENT });
  const size = MAX_VALUE_SIZE + 1;
  conn.send(
    new FrameWriter(Opcode.SET, 7, 1 + 2 + 1 + 4 + size).u8(0).u16(1).raw(
      encoder.encode("b"),
    ).u32(size).raw(new Uint8Array(size)).finish(),
  );
  const answer = await conn.readFrame({ timeout: 2000 });
  assert.equal(answer.opcode, Opcode.ERROR);
  assert.equal(answer.id, 7);
  assert.equal(decodeError(answer.payload).code, ErrorCode.TOO_LARGE);
  conn.send(encodeOpaque(Opcode.PING, 8));
  assert.equal((await conn.readFrame({ timeout: 2000 })).opcode, Opcode.PONG);
  conn.close();
  await client.set("max", new Uint8Array(MAX_VALUE_SIZE));
  assert.equal((await client.getBytes("max"))?.length, MAX_VALUE_SIZE);
});

Deno.test("keys pages through every key exactly once, even while others are written", async () => {
  await using cluster = await Cluster.start({ databases: 2 });
  const client = await cluster.client();
  const stable = new Set<string>();
  await Promise.all(
    Array.from({ length: 1200 }, (_, i) => {
      const key = `user:${String(i).padStart(5, "0")}`;
      stable.add(key);
      return client.set(key, "x");
    }),
  );
  await client.set("other:1", "x");
  const seen: string[] = [];
  let churn = 0;
  for await (const page of client.keys({ prefix: "user:", pageSize: 100 })) {
    seen.push(...page);
    // Writes during the scan: new keys and deletions of keys never listed.
    await client.set(`user:x${churn++}`, "y");
    await client.delete(`user:x${churn - 1}`);
  }
  const stableSeen = seen.filter((key) => stable.has(key));
  assert.equal(stableSeen.length, stable.size);
  assert.equal(new Set(seen).size, seen.length, "no key comes back twice");
  assert.ok(seen.every((key) => key.startsWith("user:")));
  assert.deepEqual(seen, [...seen].sort());
});

Deno.test("binary keys and values round-trip byte for byte", async () => {
  await using cluster = await Cluster.start();
  const client = await cluster.client();
  const key = new Uint8Array([0, 255, 1, 128, 0]);
  const value = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 31) % 256);
  await client.set(key, value);
  assert.deepEqual(await client.getBytes(key), value);
  const pages = [];
  for await (const page of client.keysBytes()) pages.push(...page);
  assert.deepEqual(pages, [key]);
});

Deno.test("a database that stops answering has its reads moved to another", async () => {
  await using cluster = await Cluster.start({ databases: 1 });
  const client = await cluster.client();
  await client.set("a", "1");
  // A deliberately broken database: joins, then never answers reads.
  const fake = new FramedConnection(
    await Deno.connect({ hostname: "127.0.0.1", port: cluster.port }),
  );
  await handshake(fake, { role: Role.DATABASE });
  const state = cluster.router.stats();
  const clusterId = Uint8Array.from(
    state.clusterId.match(/../g)!.map((h) => parseInt(h, 16)),
  );
  fake.send(
    encodeJoin({
      clusterId,
      nodeId: new Uint8Array(16),
      applied: state.seq,
      reset: false,
      complete: true,
    }),
  );
  await waitFor(
    () =>
      cluster.router.stats().databases.filter((d) => d.state === "ready")
        .length === 2,
    "the fake database to be ready",
  );
  let swallowed = 0;
  fake.setHandler((frame) => {
    if (frame.opcode === Opcode.GET) swallowed++;
  });
  const reads = Array.from({ length: 40 }, () => client.get("a"));
  await waitFor(() => swallowed > 0, "a read to reach the fake database");
  fake.close();
  const values = await Promise.all(reads);
  assert.ok(values.every((value) => value === "1"));
});

Deno.test("a write waits for every ready database with acks=all, one with acks=one", async () => {
  await using cluster = await Cluster.start({ databases: 2, acks: "all" });
  const client = await cluster.client();
  const seq = await client.set("a", "1");
  const stats = cluster.router.stats();
  assert.ok(stats.databases.every((db) => db.applied >= seq));
  const quick = await client.set("b", "2", { acks: "one" });
  assert.equal(await client.get("b"), "2", "read-your-writes with acks=one");
  assert.ok(quick > seq);
  await assert.rejects(
    // deno-lint-ignore no-explicit-any
    () => client.set("c", "3", { acks: "most" as any }),
    /Unknown acknowledgement level/,
  );
});

Deno.test("stats reports databases, clients and operation counts", async () => {
  await using cluster = await Cluster.start({ databases: 2 });
  const client = await cluster.client();
  await client.set("a", "1");
  await client.get("a");
  const stats = await client.stats();
  assert.equal(stats.clients, 1);
  assert.equal(stats.databases.length, 2);
  for (const db of stats.databases) {
    assert.equal(db.state, "ready");
    assert.ok(db.applied >= 1);
    assert.equal(typeof db.outstanding, "number");
    assert.equal(typeof db.keys, "number");
  }
  assert.equal(stats.operations.set, 1);
  assert.equal(stats.operations.get, 1);
});

Deno.test("a database started with reset copies the data while writes go on", async () => {
  await using cluster = await Cluster.start({ databases: 1 });
  const client = await cluster.client();
  await Promise.all(
    Array.from({ length: 3000 }, (_, i) => client.set(`k${i}`, `v${i}`)),
  );
  let writing = true;
  const expected = new Map<string, string | null>();
  const writer = (async () => {
    let i = 0;
    while (writing) {
      const key = `k${i % 3500}`;
      if (i % 7 === 0) {
        await client.delete(key);
        expected.set(key, null);
      } else {
        await client.set(key, `w${i}`);
        expected.set(key, `w${i}`);
      }
      i++;
    }
  })();
  await cluster.addDatabase({ reset: true });
  writing = false;
  await writer;
  await cluster.nodes[0]!.close();
  for (let i = 0; i < 3500; i++) {
    const key = `k${i}`;
    const want = expected.has(key)
      ? expected.get(key)
      : i < 3000
      ? `v${i}`
      : null;
    assert.equal(await client.get(key), want, key);
  }
});

Deno.test("a restarted router loses no acknowledged write", async () => {
  const router = await Router.start({
    hostname: "127.0.0.1",
    port: restartablePort(),
  });
  const port = router.port;
  // Databases pointed at the first router's port.
  const nodes = [0, 1].map(() =>
    DatabaseNode.start({
      database: new MemoryDatabase(),
      port,
      hostname: "127.0.0.1",
      backoff: { min: 20, max: 100 },
    })
  );
  try {
    await Promise.all(nodes.map((node) => node.ready()));
    const client = await connect({ port });
    await Promise.all(
      Array.from({ length: 200 }, (_, i) => client.set(`k${i}`, `v${i}`)),
    );
    await client.close();
    await router.close();
    await using second = await Router.start({ hostname: "127.0.0.1", port });
    await waitFor(
      () =>
        second.stats().databases.filter((d) => d.state === "ready").length ===
          2,
      "both databases to rejoin the new router",
    );
    await using again = await connect({ port });
    for (let i = 0; i < 200; i++) {
      assert.equal(await again.get(`k${i}`), `v${i}`);
    }
    await again.set("after", "restart");
    assert.equal(await again.get("after"), "restart");
  } finally {
    await Promise.all(nodes.map((node) => node.close()));
    await router.close();
  }
});
