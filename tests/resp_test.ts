// The Redis-protocol front end, driven by raw sockets and by ioredis.

import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { Router } from "../router/mod.ts";
import { Cluster } from "./_cluster.ts";
import { command, exchange } from "./_resp.ts";

Deno.test("RESP: raw commands get Redis answers, in order, and unknown ones an error", async () => {
  await using cluster = await Cluster.start({ respPort: 0 });
  const port = cluster.router.respPort!;
  const answer = await exchange(
    port,
    command("SET", "a", "1") + command("GET", "a") + command("GET", "zz") +
      "PING\r\n" + command("HGETALL", "h") + command("ECHO", "hi") +
      command("MSET", "b", "2", "c", "3") + command("MGET", "a", "b", "x") +
      command("EXISTS", "a", "x", "b") + command("DEL", "a", "x") +
      command("KEYS", "*") + command("SELECT", "0") + command("QUIT") +
      command("GET", "b"),
  );
  assert.equal(
    answer,
    "+OK\r\n$1\r\n1\r\n$-1\r\n+PONG\r\n" +
      "-ERR unknown command 'HGETALL', with args beginning with: 'h' \r\n" +
      "$2\r\nhi\r\n+OK\r\n*3\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n:2\r\n:1\r\n" +
      "*2\r\n$1\r\nb\r\n$1\r\nc\r\n+OK\r\n+OK\r\n",
  );
});

Deno.test("RESP: ioredis works unchanged, pipelines included", async () => {
  await using cluster = await Cluster.start({ databases: 2, respPort: 0 });
  const redis = new Redis({
    port: cluster.router.respPort!,
    host: "127.0.0.1",
    lazyConnect: true,
    maxRetriesPerRequest: 0,
  });
  try {
    await redis.connect();
    assert.equal(await redis.ping(), "PONG");
    assert.equal(await redis.set("user:1", "Ada"), "OK");
    assert.equal(await redis.get("user:1"), "Ada");
    const pipeline = redis.pipeline();
    for (let i = 0; i < 200; i++) pipeline.set(`p:${i}`, `v${i}`);
    for (let i = 0; i < 200; i++) pipeline.get(`p:${i}`);
    const results = await pipeline.exec();
    assert.equal(results!.length, 400);
    assert.equal(results![399]![1], "v199");
    assert.deepEqual(await redis.mget("user:1", "p:0", "none"), [
      "Ada",
      "v0",
      null,
    ]);
    assert.equal(await redis.exists("user:1", "none"), 1);
    assert.equal((await redis.keys("p:1*")).length, 111);
    const seen = new Set<string>();
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(
        cursor,
        "MATCH",
        "p:*",
        "COUNT",
        50,
      );
      for (const key of keys) seen.add(key);
      cursor = next;
    } while (cursor !== "0");
    assert.equal(seen.size, 200);
    assert.equal(await redis.del("user:1"), 1);
    assert.equal(await redis.get("user:1"), null);
    assert.match(await redis.info(), /redis_version/);
    await assert.rejects(
      () => redis.call("OBJECT", "ENCODING", "x"),
      /unknown command/,
    );
    assert.equal(await redis.get("p:5"), "v5", "still usable after an error");
  } finally {
    redis.disconnect();
  }
});

Deno.test("RESP: with a password, nothing before AUTH, and wrong passwords are refused", async () => {
  await using router = await Router.start({
    hostname: "127.0.0.1",
    port: 0,
    password: "pw",
    respPort: 0,
    authFailureDelay: 10,
  });
  const port = router.respPort!;
  const answer = await exchange(
    port,
    command("GET", "a") + command("AUTH", "wrong") + command("AUTH", "pw") +
      command("PING"),
  );
  assert.equal(
    answer,
    "-NOAUTH Authentication required.\r\n" +
      "-WRONGPASS invalid username-password pair or user is disabled.\r\n" +
      "+OK\r\n+PONG\r\n",
  );
});

Deno.test("RESP: malformed input ends that connection with an error, others go on", async () => {
  await using cluster = await Cluster.start({ respPort: 0 });
  const port = cluster.router.respPort!;
  const bad = await exchange(port, "*1\r\n$99999999999\r\n");
  assert.match(bad, /^-Protocol error/);
  const good = await exchange(
    port,
    command("SET", "k", "v") + command("GET", "k"),
  );
  assert.equal(good, "+OK\r\n$1\r\nv\r\n");
});

Deno.test("RESP: connections count against the router's connection limit", async () => {
  await using cluster = await Cluster.start({ respPort: 0, maxConnections: 2 });
  const port = cluster.router.respPort!;
  // The database's link holds one slot; one RESP connection takes the other.
  const held = await Deno.connect({ hostname: "127.0.0.1", port });
  await held.write(new TextEncoder().encode(command("PING")));
  const buffer = new Uint8Array(64);
  assert.ok((await held.read(buffer)) !== null);
  const refused = await exchange(port, command("PING"));
  assert.match(refused, /^-DENIED too many connections/);
  held.close();
});

Deno.test("RESP: DBSIZE counts a key written just before it, on each database", async () => {
  await using cluster = await Cluster.start({ databases: 2, respPort: 0 });
  const port = cluster.router.respPort!;
  // One exchange a step: pipelined commands run at once, so a DBSIZE in the
  // same pipeline may count the writes after it too.
  const steps: [string, string][] = [
    [command("DBSIZE"), ":0\r\n"],
    [command("SET", "a", "1") + command("DBSIZE"), "+OK\r\n:1\r\n"],
    [command("MSET", "b", "2", "c", "3"), "+OK\r\n"],
    [command("DBSIZE"), ":3\r\n"],
    [command("DEL", "a") + command("DBSIZE"), ":1\r\n:2\r\n"],
    [
      command("DBSIZE", "x"),
      "-ERR wrong number of arguments for 'dbsize' command\r\n",
    ],
  ];
  for (const [request, expected] of steps) {
    assert.equal(await exchange(port, request), expected);
  }
  // The native client's count() is the same read.
  const client = await cluster.client();
  for (let i = 0; i < 4; i++) assert.equal(await client.count(), 2);
});

Deno.test("RESP: a GET or SET over the limits gets an error and the connection goes on", async () => {
  await using cluster = await Cluster.start({ respPort: 0 });
  const port = cluster.router.respPort!;
  const big = "x".repeat(512 * 1024 + 1);
  const answer = await exchange(
    port,
    command("GET", "") + command("SET", "k", big) +
      command("SET", "k".repeat(4097), "v") + command("SET", "k", "v") +
      command("GET", "k"),
  );
  assert.equal(
    answer,
    "-ERR key of 0 bytes (KVNDB keys are 1 to 4096 bytes)\r\n" +
      `-ERR Value of ${big.length} bytes exceeds the maximum value size (524288 bytes)\r\n` +
      "-ERR key of 4097 bytes (KVNDB keys are 1 to 4096 bytes)\r\n" +
      "+OK\r\n$1\r\nv\r\n",
  );
});

Deno.test("RESP: command names are case-blind, and near misses of GET and SET are unknown commands, worded as Redis words them", async () => {
  await using cluster = await Cluster.start({ respPort: 0 });
  const port = cluster.router.respPort!;
  assert.equal(
    await exchange(port, command("set", "a", "1") + command("gEt", "a")),
    "+OK\r\n$1\r\n1\r\n",
  );
  assert.equal(
    await exchange(port, command("SeT", "a", "2") + command("get", "a")),
    "+OK\r\n$1\r\n2\r\n",
  );
  // The texts below are redis-server 7.0's, byte for byte.
  assert.equal(
    await exchange(
      port,
      command("GEX", "a") + command("SEU", "a", "1") + command("FLUSHALX") +
        command("FOO", "a", "b", "c", "d", "e"),
    ),
    "-ERR unknown command 'GEX', with args beginning with: 'a' \r\n" +
      "-ERR unknown command 'SEU', with args beginning with: 'a' '1' \r\n" +
      "-ERR unknown command 'FLUSHALX', with args beginning with: \r\n" +
      "-ERR unknown command 'FOO', with args beginning with: 'a' 'b' 'c' 'd' 'e' \r\n",
  );
});

Deno.test("RESP: a read in a pipeline sees the writes before it and none after it, as in Redis", async () => {
  await using cluster = await Cluster.start({ respPort: 0, databases: 2 });
  const port = cluster.router.respPort!;
  let text = "";
  let expected = "";
  for (let i = 0; i < 300; i++) {
    // Writes and reads of one key in turn, with runs of each, and reads of
    // several kinds.
    if (i % 7 !== 3) {
      text += command("SET", "k", `v${i}`);
      expected += "+OK\r\n";
    }
    const value = `v${i % 7 === 3 ? i - 1 : i}`;
    if (i % 5 === 0) {
      text += command("MGET", "k", "k");
      expected +=
        `*2\r\n$${value.length}\r\n${value}\r\n$${value.length}\r\n${value}\r\n`;
    } else {
      text += command("GET", "k");
      expected += `$${value.length}\r\n${value}\r\n`;
    }
    if (i % 11 === 0) {
      text += command("GET", "k") + command("GET", "k");
      expected += `$${value.length}\r\n${value}\r\n`.repeat(2);
    }
  }
  text += command("DEL", "k") + command("EXISTS", "k");
  expected += ":1\r\n:0\r\n";
  assert.equal(await exchange(port, text), expected);
});
