// The Deno KV front end: Deno's own KV client (`Deno.openKv("http://…")`, in
// a subprocess) against a router with a memory and a Deno KV database; the
// protocol's edge cases with hand-made requests; compare-and-set from several
// programs while a database is killed and another joins with --reset.

import assert from "node:assert/strict";
import { create, toBinary } from "@bufbuild/protobuf";
import { openKv } from "@deno/kv";
import { DatabaseNode, KvDatabase, MemoryDatabase } from "../database/mod.ts";
import { Router } from "../router/mod.ts";
import {
  AtomicWriteSchema,
  MutationType,
  SnapshotReadSchema,
  ValueEncoding,
} from "../protocol/kv_connect/datapath_pb.ts";
import { Cluster, waitFor, waitForDatabases } from "./_cluster.ts";
import { makeCertificates } from "./_tls.ts";

const PROGRAM = new URL("./_kv_program.ts", import.meta.url).pathname;

async function runProgram(
  url: string,
  args: string[],
  token = "secret",
): Promise<Record<string, unknown>> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-kv", PROGRAM, url, ...args],
    env: { DENO_KV_ACCESS_TOKEN: token },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, `the program failed: ${stderr}`);
  return JSON.parse(stdout.trim().split("\n").at(-1)!);
}

async function twoDatabases(): Promise<Cluster> {
  const cluster = await Cluster.start({
    databases: 0,
    kvPort: 0,
    password: "secret",
  });
  await cluster.addDatabase({ database: new MemoryDatabase() });
  await cluster.addDatabase({ database: await KvDatabase.open(":memory:") });
  await waitForDatabases(cluster.router, 2);
  return cluster;
}

Deno.test("Deno.openKv against KVNDB: get, getMany, set, delete, list, atomic, u64, versionstamped keys, expiry, watch; queues refused", async () => {
  await using cluster = await twoDatabases();
  const url = `http://127.0.0.1:${cluster.router.kvPort}`;
  const seen = await runProgram(url, ["tour"]);
  assert.deepEqual(seen, {
    set: true,
    get: { name: "Ada", born: 1815 },
    sameVersionstamp: true,
    missing: null,
    many: ["Grace", null, "bytes:1,2,3"],
    list: [["users", 1], ["users", 2], ["users", 3], ["users", 4]],
    reverse: [["users", 4], ["users", 3]],
    range: [["users", 2], ["users", 3]],
    paged: 250,
    pagedInOrder: true,
    cursor: [10, 11, 12],
    staleCheck: false,
    freshCheck: true,
    afterCheck: [{ name: "Ada Lovelace" }, null],
    u64: ["u64:8", "u64:7", "u64:4", "u64:1"],
    sumOfObject: seen.sumOfObject,
    versionstamped: true,
    beforeExpiry: "soon gone",
    afterExpiry: null,
    listAfterExpiry: [],
    deleted: null,
    watch: [null, "one", "two", null],
    enqueue: seen.enqueue,
  });
  assert.match(String(seen.sumOfObject), /KvU64/);
  assert.match(String(seen.enqueue), /not supported/);
  // Both databases hold the same entries, versions and all.
  const stats = cluster.router.stats();
  assert.equal(stats.databases.length, 2);
  assert.ok(stats.databases.every((db) => db.applied === stats.seq));
});

Deno.test("Deno.openKv against KVNDB: keys as long as Deno takes (2,048 bytes) list, page, check and stamp in order on both databases", async () => {
  await using cluster = await Cluster.start({
    databases: 0,
    kvPort: 0,
    password: "secret",
  });
  const databases = [new MemoryDatabase(), await KvDatabase.open(":memory:")];
  for (const database of databases) await cluster.addDatabase({ database });
  await waitForDatabases(cluster.router, 2);
  const url = `http://127.0.0.1:${cluster.router.kvPort}`;
  const seen = await runProgram(url, ["long"]);
  const twenty = Array.from({ length: 20 }, (_, i) => i);
  assert.deepEqual(seen, {
    commit: true,
    sameEachTime: true,
    all: [[1690], ...twenty.map((i) => [2031, i]), [1]],
    reverse: [19, 18, 17],
    range: [5, 6, 7, 8],
    paged: twenty,
    many: [7, null],
    check: true,
    staleCheck: false,
    versionstamped: true,
    afterDelete: null,
    value: "seven",
  });
  const stats = cluster.router.stats();
  assert.ok(stats.databases.every((db) => db.applied === stats.seq));
  // Each database, read alone, holds every long key.
  for (const database of databases) {
    const keys = await database.keys({
      prefix: new Uint8Array(0),
      after: new Uint8Array(0),
      limit: 100,
      maxBytes: 1 << 20,
    });
    assert.equal(keys.filter((k) => k.length === 2048).length, 19);
  }
});

Deno.test("KV Connect: a wrong token is a 401 with a text that says what to do", async () => {
  await using cluster = await twoDatabases();
  const url = `http://127.0.0.1:${cluster.router.kvPort}`;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-kv", PROGRAM, url, "read", "k"],
    env: { DENO_KV_ACCESS_TOKEN: "wrong" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.notEqual(output.code, 0);
  assert.match(
    new TextDecoder().decode(output.stderr),
    /401[\s\S]*DENO_KV_ACCESS_TOKEN/,
  );
});

Deno.test("KV Connect: bad requests get a clear 4xx and the router goes on", async () => {
  await using cluster = await twoDatabases();
  const base = `http://127.0.0.1:${cluster.router.kvPort}`;
  const metadata = await fetch(base, {
    method: "POST",
    headers: { authorization: "Bearer secret" },
    body: JSON.stringify({ supportedVersions: [1, 2, 3] }),
  });
  assert.equal(metadata.status, 200);
  const { token, databaseId, endpoints } = await metadata.json();
  const endpoint = endpoints[0].url as string;
  const post = async (
    path: string,
    body: BodyInit,
    headers: Record<string, string> = {},
  ) => {
    const response = await fetch(`${endpoint}/${path}`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${token}`,
        "x-denokv-database-id": databaseId,
        "content-type": "application/x-protobuf",
        ...headers,
      },
      body,
    });
    return { status: response.status, text: await response.text() };
  };
  const write = (
    mutations: { key: Uint8Array; data: Uint8Array; type?: number }[],
  ) =>
    toBinary(
      AtomicWriteSchema,
      create(AtomicWriteSchema, {
        mutations: mutations.map((m) => ({
          key: m.key,
          mutationType: m.type ?? MutationType.M_SET,
          value: { data: m.data, encoding: ValueEncoding.VE_BYTES },
        })),
      }),
    );
  const key = new Uint8Array([2, 107, 0]);
  const cases: [
    string,
    Promise<{ status: number; text: string }>,
    number,
    RegExp,
  ][] = [
    [
      "a GET",
      fetch(base).then(async (r) => ({
        status: r.status,
        text: await r.text(),
      })),
      405,
      /POST/,
    ],
    [
      "no metadata version 3",
      fetch(base, {
        method: "POST",
        headers: { authorization: "Bearer secret" },
        body: JSON.stringify({ supportedVersions: [1] }),
      }).then(async (r) => ({ status: r.status, text: await r.text() })),
      400,
      /version 3/,
    ],
    [
      "a wrong password",
      fetch(base, {
        method: "POST",
        headers: { authorization: "Bearer nope" },
        body: JSON.stringify({ supportedVersions: [3] }),
      }).then(async (r) => ({ status: r.status, text: await r.text() })),
      401,
      /DENO_KV_ACCESS_TOKEN/,
    ],
    [
      "a wrong data path token",
      post("snapshot_read", new Uint8Array(0), {
        authorization: "Bearer nope",
      }),
      401,
      /token/,
    ],
    [
      "a wrong database id",
      post("snapshot_read", new Uint8Array(0), {
        "x-denokv-database-id": crypto.randomUUID(),
      }),
      400,
      /database id/,
    ],
    [
      "malformed protobuf",
      post("atomic_write", new Uint8Array([0xff, 0xff, 0xff])),
      400,
      /Malformed/,
    ],
    [
      "an oversized key",
      post(
        "atomic_write",
        write([{ key: new Uint8Array(5000).fill(2), data: key }]),
      ),
      400,
      /limit of 4096/,
    ],
    [
      "an oversized value",
      post("atomic_write", write([{ key, data: new Uint8Array(70_000) }])),
      400,
      /limit of 65536/,
    ],
    [
      "too many mutations",
      post(
        "atomic_write",
        write(
          Array.from({ length: 200 }, (_, i) => ({
            key: new Uint8Array([2, 107, i, 0]),
            data: key,
          })),
        ),
      ),
      400,
      /limit of 128/,
    ],
    [
      "a sum of bytes",
      post(
        "atomic_write",
        write([{ key, data: key, type: MutationType.M_SUM }]),
      ),
      400,
      /KvU64/,
    ],
    [
      "too many ranges",
      post(
        "snapshot_read",
        toBinary(
          SnapshotReadSchema,
          create(SnapshotReadSchema, {
            ranges: Array.from({ length: 11 }, () => ({
              start: key,
              end: new Uint8Array([3]),
              limit: 1,
            })),
          }),
        ),
      ),
      400,
      /ranges/,
    ],
  ];
  for (const [what, answer, status, text] of cases) {
    const { status: got, text: body } = await answer;
    assert.equal(got, status, `${what}: ${got} ${body}`);
    assert.match(body, text, what);
  }
  // The router goes on: a good write and read through the same port.
  const good = await post("atomic_write", write([{ key, data: key }]));
  assert.equal(good.status, 200);
  assert.equal(cluster.router.stats().databases.length, 2);
});

Deno.test("KV Connect: compare-and-set from four programs is exact while a database is killed and another joins with --reset", async () => {
  await using cluster = await twoDatabases();
  const url = `http://127.0.0.1:${cluster.router.kvPort}`;
  const programs = ["a", "b", "c", "d"].map((name) =>
    runProgram(url, ["counter", name, "25"])
  );
  // Once the programs are under way, the memory database goes, and a new
  // one joins with --reset.
  const start = cluster.router.stats().seq;
  await waitFor(
    () => cluster.router.stats().seq >= start + 20,
    "the programs to commit some writes",
  );
  await cluster.nodes[0]!.close();
  await cluster.addDatabase({ reset: true });
  const results = await Promise.all(programs);
  await waitForDatabases(cluster.router, 2);
  const list = (await runProgram(url, ["read", "counter"])).value as string[];
  assert.equal(list.length, 100, JSON.stringify(results));
  assert.equal(new Set(list).size, 100);
  for (const name of ["a", "b", "c", "d"]) {
    for (let i = 0; i < 25; i++) assert.ok(list.includes(`${name}-${i}`));
  }
});

Deno.test("kvndb kv on KVNDB's own KV Connect port: a cluster whose database is stored in another cluster", async () => {
  await using inner = await Cluster.start({
    databases: 1,
    kvPort: 0,
    password: "secret",
  });
  Deno.env.set("DENO_KV_ACCESS_TOKEN", "secret");
  const innerUrl = `http://127.0.0.1:${inner.router.kvPort}`;
  await using outer = await Cluster.start({ databases: 0 });
  const nested = await outer.addDatabase({
    database: await KvDatabase.open(innerUrl),
  });
  await waitForDatabases(outer.router, 1);
  const client = await outer.client();
  // Group commits of many writes, and a value of 500,000 bytes (8 chunks),
  // each within what one atomic write of the inner cluster may hold.
  await Promise.all(
    Array.from({ length: 500 }, (_, i) => client.set(`k${i}`, `v${i}`)),
  );
  await client.set("big", "b".repeat(500_000));
  // Keys as long as KVNDB takes, in one burst: group commits of them must
  // stay within what the inner router estimates an atomic write costs.
  const long = (i: number) =>
    `${"L".repeat(4090)}${String(i).padStart(6, "0")}`;
  await Promise.all(
    Array.from({ length: 100 }, (_, i) => client.set(long(i), `l${i}`)),
  );
  assert.equal(await client.get(long(42)), "l42");
  await Promise.all(
    Array.from({ length: 50 }, (_, i) => client.delete(long(2 * i))),
  );
  await client.delete("k7");
  // The nested database is replaced by one that starts over with --reset on
  // the same store: it clears the inner cluster's copy (long keys and all,
  // in deletes the inner router takes) and syncs from a memory database.
  await outer.addDatabase({ database: new MemoryDatabase() });
  await waitForDatabases(outer.router, 2);
  await nested.close();
  const restarted = await KvDatabase.open(innerUrl);
  await outer.addDatabase({ database: restarted, reset: true, wait: false });
  await waitForDatabases(outer.router, 2, 60_000);
  const encoder = new TextEncoder();
  for (const i of [41, 43, 99]) {
    const entry = await restarted.get(encoder.encode(long(i)));
    assert.equal(new TextDecoder().decode(entry?.value), `l${i}`);
  }
  assert.equal(await restarted.get(encoder.encode(long(42))), null);
  assert.equal(await client.get("k5"), "v5");
  assert.equal(await client.get("k7"), null);
  assert.equal((await client.get("big"))?.length, 500_000);
  assert.equal(await client.count(), 500 + 50);
  // The inner cluster holds the outer database's layout: an entry a key,
  // the big value's chunks and chunk count, and the state.
  const innerClient = await inner.client();
  assert.equal(await innerClient.count(), 500 + 50 + 8 + 1 + 1);
});

Deno.test("Deno.openKv over https: KV Connect on HTTP/2 with the router's TLS certificate", async () => {
  const certs = await makeCertificates();
  try {
    await using router = await Router.start({
      endpoint: {
        type: "tls",
        hostname: "127.0.0.1",
        port: 0,
        certFile: certs.cert,
        keyFile: certs.key,
      },
      kvPort: 0,
      password: "secret",
      stateFile: undefined,
    });
    await using node = DatabaseNode.start({
      database: new MemoryDatabase(),
      dial: () => router.connectInProcess(),
      password: "secret",
    });
    await node.ready();
    const output = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--unstable-kv",
        `--cert=${certs.ca}`,
        PROGRAM,
        `https://localhost:${router.kvPort}`,
        "read",
        "nothing",
      ],
      env: { DENO_KV_ACCESS_TOKEN: "secret" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, stderr);
    assert.deepEqual(
      JSON.parse(new TextDecoder().decode(output.stdout)),
      { value: null },
    );
  } finally {
    await Deno.remove(certs.dir, { recursive: true });
  }
});

Deno.test("the npm client @deno/kv works against KVNDB too", async () => {
  await using cluster = await twoDatabases();
  // It reads the token from the environment, whatever its options say.
  Deno.env.set("DENO_KV_ACCESS_TOKEN", "secret");
  const kv = await openKv(`http://127.0.0.1:${cluster.router.kvPort}`);
  try {
    const first = await kv.set(["npm", 1], { from: "@deno/kv" });
    assert.ok(first.ok);
    assert.deepEqual((await kv.get(["npm", 1])).value, { from: "@deno/kv" });
    await kv.set(["npm", 2], "two");
    const keys = [];
    for await (const entry of kv.list({ prefix: ["npm"] })) {
      keys.push(entry.key);
    }
    assert.deepEqual(keys, [["npm", 1], ["npm", 2]]);
    const entry = await kv.get(["npm", 2]);
    assert.equal(
      (await kv.atomic().check(entry).set(["npm", 2], "2").commit()).ok,
      true,
    );
    assert.equal(
      (await kv.atomic().check(entry).set(["npm", 2], "x").commit()).ok,
      false,
    );
    await assert.rejects(() => kv.enqueue("job"), /not supported/);
  } finally {
    kv.close();
  }
});
