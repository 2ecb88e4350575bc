// Counters, conditional sets and transactions through the Redis-protocol
// port, compared with a real redis-server: the same commands to both, the
// replies compared byte for byte; then through ioredis, with races.

import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { Cluster } from "./_cluster.ts";
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
