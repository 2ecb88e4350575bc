// Counters, conditional sets and transactions through the Redis-protocol
// port, compared with a real redis-server: the same commands to both, the
// replies compared byte for byte; then through ioredis, with races.

import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { Cluster, waitFor } from "./_cluster.ts";
import { RedisServer } from "./_redis.ts";
import { command, exchange } from "./_resp.ts";

/** Splits a run of RESP replies into one string each, for readable diffs. */
function replies(text: string): string[] {
  const out: string[] = [];
  let at = 0;
  const one = (): void => {
    const end = text.indexOf("\r\n", at);
    const line = text.slice(at, end);
    at = end + 2;
    if (line[0] === "$" && line !== "$-1") at += Number(line.slice(1)) + 2;
    if (line[0] === "*" && line !== "*-1") {
      for (let i = Number(line.slice(1)); i > 0; i--) one();
    }
  };
  while (at < text.length) {
    const start = at;
    one();
    out.push(text.slice(start, at));
  }
  return out;
}

async function bothAnswer(
  sequence: string[][],
): Promise<{ kvndb: string[]; redis: string[] }> {
  const text = sequence.map((args) => command(...args)).join("");
  await using redis = await RedisServer.start();
  await using cluster = await Cluster.start({ respPort: 0, databases: 2 });
  const redisReplies = replies(await exchange(await redis.connect(), text));
  const kvndbReplies = replies(
    await exchange(cluster.router.respPort!, text),
  );
  return { kvndb: kvndbReplies, redis: redisReplies };
}

function compare(
  sequence: string[][],
  result: { kvndb: string[]; redis: string[] },
) {
  assert.equal(result.kvndb.length, sequence.length);
  for (let i = 0; i < sequence.length; i++) {
    assert.equal(
      result.kvndb[i],
      result.redis[i],
      `${sequence[i]!.join(" ")}: KVNDB ${
        JSON.stringify(result.kvndb[i])
      }, redis-server ${JSON.stringify(result.redis[i])}`,
    );
  }
}

Deno.test("RESP conformance: counters answer as redis-server does, errors included", async () => {
  const sequence = [
    ["INCR", "n"],
    ["INCRBY", "n", "41"],
    ["DECR", "n"],
    ["DECRBY", "n", "-10"],
    ["GET", "n"],
    ["INCRBY", "n", "abc"],
    ["INCRBY", "n", "007"],
    ["SET", "word", "hello"],
    ["INCR", "word"],
    ["SET", "big", "9223372036854775807"],
    ["INCR", "big"],
    ["DECRBY", "neg", "-9223372036854775808"],
    ["SET", "f", "10.50"],
    ["INCRBYFLOAT", "f", "0.1"],
    ["INCRBYFLOAT", "f", "-5"],
    ["SET", "g", "5.0e3"],
    ["INCRBYFLOAT", "g", "2.0e2"],
    ["INCRBYFLOAT", "word", "1"],
    ["INCRBYFLOAT", "f", "x"],
    ["INCR"],
    ["APPEND", "s", "Hello"],
    ["APPEND", "s", " World"],
    ["GET", "s"],
    ["STRLEN", "s"],
    ["STRLEN", "missing"],
    ["TYPE", "s"],
    ["TYPE", "missing"],
  ];
  compare(sequence, await bothAnswer(sequence));
});

Deno.test("RESP conformance: conditional sets, GETSET, GETDEL, DEL and MSET answer as redis-server does", async () => {
  const sequence = [
    ["SET", "lock", "a", "NX"],
    ["SET", "lock", "b", "NX"],
    ["GET", "lock"],
    ["SET", "lock", "c", "XX"],
    ["SET", "nothing", "c", "XX"],
    ["EXISTS", "nothing"],
    ["SET", "lock", "d", "GET"],
    ["SET", "fresh", "e", "NX", "GET"],
    ["SET", "lock", "x", "NX", "XX"],
    ["SET", "lock", "x", "BOGUS"],
    ["SETNX", "lock", "z"],
    ["SETNX", "other", "z"],
    ["GETSET", "lock", "f"],
    ["GETSET", "newkey", "g"],
    ["GETDEL", "lock"],
    ["GETDEL", "lock"],
    ["MSET", "a", "1", "b", "2", "c", "3"],
    ["MGET", "a", "b", "c", "d"],
    ["DEL", "a", "b", "d"],
    ["EXISTS", "a", "b", "c"],
    ["MSET", "a"],
    ["FLUSHDB"],
    ["DBSIZE"],
    ["GET", "c"],
    ["SET", "x", "1"],
    ["FLUSHALL", "ASYNC"],
    ["EXISTS", "x"],
    ["FLUSHDB", "BOGUS"],
  ];
  compare(sequence, await bothAnswer(sequence));
});

Deno.test("RESP conformance: MULTI/EXEC, DISCARD and their errors answer as redis-server does", async () => {
  const sequence = [
    ["EXEC"],
    ["DISCARD"],
    ["MULTI"],
    ["MULTI"],
    ["SET", "k", "1"],
    ["INCR", "k"],
    ["INCRBY", "k", "x"],
    ["SET", "s", "text"],
    ["INCR", "s"],
    ["GET", "k"],
    ["MGET", "k", "s", "none"],
    ["DEL", "s"],
    ["WATCH", "k"],
    ["EXEC"],
    ["GET", "k"],
    ["EXISTS", "s"],
    ["MULTI"],
    ["SET", "k", "100"],
    ["DISCARD"],
    ["GET", "k"],
    ["MULTI"],
    ["GET"],
    ["SET", "k", "200"],
    ["EXEC"],
    ["GET", "k"],
    ["MULTI"],
    ["EXEC"],
  ];
  compare(sequence, await bothAnswer(sequence));
});

Deno.test("RESP conformance: expiry (SET EX/PX/EXAT/PXAT/KEEPTTL, SETEX, PSETEX, GETEX, EXPIRE and its family, TTL, PTTL, PERSIST) answers as redis-server does", async () => {
  // Expiries of many seconds, so that TTL (rounded to seconds) reads the
  // same on both; expiries in the past take effect at once.
  const sequence = [
    ["SET", "k", "v", "EX", "100"],
    ["TTL", "k"],
    ["PTTL", "nothing"],
    ["TTL", "nothing"],
    ["SET", "k", "v"],
    ["TTL", "k"],
    ["PTTL", "k"],
    ["SET", "k", "v", "PX", "100000"],
    ["TTL", "k"],
    ["SET", "k", "v2", "KEEPTTL"],
    ["TTL", "k"],
    ["GET", "k"],
    ["SET", "k", "v", "EX", "0"],
    ["SET", "k", "v", "EX", "-5"],
    ["SET", "k", "v", "PX", "abc"],
    ["SET", "k", "v", "EX"],
    ["SET", "k", "v", "EX", "10", "PX", "100"],
    ["SET", "k", "v", "KEEPTTL", "EX", "10"],
    ["SET", "k", "v", "EX", "9999999999999999"],
    ["SET", "k", "v", "EX", "0", "BOGUS"],
    ["SET", "k", "v", "EXAT", "1"],
    ["GET", "k"],
    ["EXISTS", "k"],
    ["SET", "k", "v", "NX", "EX", "100"],
    ["SET", "k", "w", "NX", "EX", "100"],
    ["SET", "k", "w", "XX", "GET", "EX", "50"],
    ["TTL", "k"],
    ["SET", "k", "x", "PXAT", "4102444800000"],
    ["EXPIRE", "k", "100", "LT"],
    ["TTL", "k"],
    ["SETEX", "s", "100", "val"],
    ["TTL", "s"],
    ["SETEX", "s", "0", "val"],
    ["SETEX", "s", "abc", "val"],
    ["SETEX", "s", "100"],
    ["PSETEX", "p", "100000", "val"],
    ["TTL", "p"],
    ["PSETEX", "p", "-1", "val"],
    ["GETEX", "s"],
    ["GETEX", "s", "PERSIST"],
    ["TTL", "s"],
    ["GETEX", "s", "EX", "200"],
    ["TTL", "s"],
    ["GETEX", "s", "EX", "0"],
    ["GETEX", "s", "FOO"],
    ["GETEX", "s", "EXAT", "1"],
    ["GET", "s"],
    ["GETEX", "missing", "EX", "10"],
    ["EXPIRE", "e", "100"],
    ["SET", "e", "v"],
    ["EXPIRE", "e", "100"],
    ["TTL", "e"],
    ["EXPIRE", "e", "50", "NX"],
    ["EXPIRE", "e", "50", "XX"],
    ["EXPIRE", "e", "200", "LT"],
    ["EXPIRE", "e", "200", "GT"],
    ["TTL", "e"],
    ["EXPIRE", "e", "10", "NX", "XX"],
    ["EXPIRE", "e", "10", "GT", "LT"],
    ["EXPIRE", "e", "10", "FOO"],
    ["EXPIRE", "e", "abc"],
    ["EXPIRE", "e"],
    ["PERSIST", "e"],
    ["PERSIST", "e"],
    ["PERSIST", "missing"],
    ["TTL", "e"],
    ["EXPIRE", "e", "100", "GT"],
    ["EXPIRE", "e", "100", "LT"],
    ["PEXPIRE", "e", "300000"],
    ["TTL", "e"],
    ["EXPIREAT", "e", "4102444800"],
    ["PEXPIREAT", "e", "4102444800000", "XX"],
    ["EXPIREAT", "e", "1"],
    ["EXISTS", "e"],
    ["PEXPIREAT", "missing", "1"],
    ["SET", "e", "v"],
    ["EXPIRE", "e", "-1"],
    ["GET", "e"],
    ["TYPE", "e"],
    ["SET", "c", "1", "EX", "100"],
    ["INCR", "c"],
    ["TTL", "c"],
    ["APPEND", "c", "0"],
    ["INCRBYFLOAT", "c", "1.5"],
    ["TTL", "c"],
    ["GETSET", "c", "5"],
    ["TTL", "c"],
    ["MULTI"],
    ["SET", "m", "1", "EX", "100"],
    ["TTL", "m"],
    ["EXPIRE", "m", "50"],
    ["PTTL", "nothing"],
    ["PERSIST", "m"],
    ["TTL", "m"],
    ["EXEC"],
  ];
  compare(sequence, await bothAnswer(sequence));
});

Deno.test("RESP: WATCH aborts EXEC with a null reply when another client changed the key, as in Redis", async () => {
  await using redis = await RedisServer.start();
  await using cluster = await Cluster.start({ respPort: 0, databases: 2 });
  for (
    const options of [
      { path: redis.path },
      { host: "127.0.0.1", port: cluster.router.respPort! },
    ]
  ) {
    const a = new Redis({ ...options, lazyConnect: true });
    const b = new Redis({ ...options, lazyConnect: true });
    try {
      await a.connect();
      await b.connect();
      await a.set("balance", "10");
      await a.watch("balance");
      await b.set("balance", "20");
      const aborted = await a.multi().set("balance", "30").exec();
      assert.equal(aborted, null, JSON.stringify(options));
      assert.equal(await a.get("balance"), "20");
      await a.watch("balance");
      const done = await a.multi().incrby("balance", 5).get("balance").exec();
      assert.deepEqual(done, [[null, 25], [null, "25"]]);
      // UNWATCH forgets: a change after it no longer aborts.
      await a.watch("balance");
      await a.unwatch();
      await b.set("balance", "1");
      assert.deepEqual(await a.multi().incr("balance").exec(), [[null, 2]]);
      // WATCH of a missing key: creating it aborts.
      await a.watch("fresh");
      await b.set("fresh", "x");
      assert.equal(await a.multi().set("fresh", "y").exec(), null);
    } finally {
      a.disconnect();
      b.disconnect();
    }
  }
});

Deno.test("RESP: ioredis takes a lock with SET NX PX that expires, and reads TTLs, through two databases", async () => {
  await using cluster = await Cluster.start({
    respPort: 0,
    databases: 2,
    expirySweepInterval: 20,
  });
  const redis = new Redis({
    host: "127.0.0.1",
    port: cluster.router.respPort!,
  });
  try {
    // The lock pattern: one holder until its expiry, then the next.
    assert.equal(await redis.set("lock", "a", "PX", 150, "NX"), "OK");
    assert.equal(await redis.set("lock", "b", "PX", 150, "NX"), null);
    const pttl = await redis.pttl("lock");
    assert.ok(pttl > 0 && pttl <= 150, `PTTL ${pttl}`);
    await waitFor(
      async () => await redis.set("lock", "b", "PX", 30_000, "NX") === "OK",
      "the first lock to expire",
    );
    assert.equal(await redis.get("lock"), "b");
    assert.equal(await redis.ttl("lock"), 30);
    assert.equal(await redis.setex("session", 100, "s"), "OK");
    assert.equal(await redis.ttl("session"), 100);
    assert.equal(await redis.expire("session", 10, "GT"), 0);
    assert.equal(await redis.persist("session"), 1);
    assert.equal(await redis.ttl("session"), -1);
    assert.equal(await redis.getex("session", "PX", 100), "s");
    await waitFor(
      async () => await redis.exists("session") === 0,
      "the session to expire",
    );
    assert.equal(await redis.ttl("session"), -2);
    assert.equal(await redis.dbsize(), 1);
  } finally {
    redis.disconnect();
  }
});

Deno.test("RESP: racing INCR, SET NX locks and WATCH/MULTI/EXEC updates through two databases lose nothing", async () => {
  await using cluster = await Cluster.start({ respPort: 0, databases: 2 });
  const port = cluster.router.respPort!;
  const clients = Array.from(
    { length: 8 },
    () => new Redis({ host: "127.0.0.1", port }),
  );
  try {
    await Promise.all(
      clients.map(async (client) => {
        const pipeline = client.pipeline();
        for (let i = 0; i < 100; i++) pipeline.incr("hits");
        await pipeline.exec();
      }),
    );
    assert.equal(await clients[0]!.get("hits"), "800");
    const locks = await Promise.all(
      clients.map((client, i) => client.set("lock", `c${i}`, "NX")),
    );
    assert.equal(locks.filter((reply) => reply === "OK").length, 1);
    await clients[0]!.set("total", "0");
    await Promise.all(
      clients.map(async (client) => {
        for (let done = 0; done < 10;) {
          await client.watch("total");
          const total = Number(await client.get("total"));
          const result = await client.multi().set("total", String(total + 1))
            .exec();
          if (result !== null) done++;
        }
      }),
    );
    assert.equal(await clients[0]!.get("total"), "80");
  } finally {
    for (const client of clients) client.disconnect();
  }
});

Deno.test("RESP: commands whose reply would not fit a frame, or over the value limit, get an error and the cluster goes on", async () => {
  await using cluster = await Cluster.start({ respPort: 0, databases: 2 });
  const client = new Redis({
    host: "127.0.0.1",
    port: cluster.router.respPort!,
  });
  try {
    const big = "x".repeat(512 * 1024);
    await client.set("a", big);
    await client.set("b", big);
    // Returning the old value and writing the new: over a frame.
    await assert.rejects(() => client.set("a", big, "GET"), /split it/);
    // Two whole values returned by one transaction.
    await assert.rejects(
      () => client.multi().get("a").get("b").exec(),
      /split it/,
    );
    // A value over the limit, on the promise-free path: an error reply.
    await assert.rejects(
      () => client.setnx("c", big + "x"),
      /exceeds the maximum value size/,
    );
    assert.equal(await client.strlen("a"), big.length);
    assert.equal(await client.incr("n"), 1);
    // DEL and MSET past an operation's limits fall back to separate writes.
    await client.mset("a", big, "b", big);
    assert.equal(await client.del("a", "b", "none"), 2);
  } finally {
    client.disconnect();
  }
});
