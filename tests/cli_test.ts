// End-to-end tests through the command line, in subprocesses.

import assert from "node:assert/strict";
import { connect } from "../client/mod.ts";
import { KvndbProcess, runKvndb } from "./_process.ts";
import { waitFor } from "./_cluster.ts";

Deno.test("serve then cmd: set a 1, get a prints 1", async () => {
  await using server = KvndbProcess.start([
    "serve",
    "127.0.0.1",
    "0",
    "--memory",
  ]);
  const port = await server.port();
  const result = await runKvndb(
    ["cmd", "127.0.0.1", String(port)],
    "set a 1\nget a\n",
  );
  assert.equal(result.stdout, "1\n");
  assert.equal(result.code, 0);
});

Deno.test("cmd exits 1 when a command fails, and says why", async () => {
  await using server = KvndbProcess.start([
    "serve",
    "127.0.0.1",
    "0",
    "--memory",
  ]);
  const port = await server.port();
  const result = await runKvndb(
    ["cmd", "127.0.0.1", String(port)],
    "get nothing\nset 'two words' \"a value\"\nget 'two words'\n",
  );
  assert.equal(
    result.stdout,
    "Error: Key 'nothing' not found!\na value\n",
  );
  assert.equal(result.code, 1);
});

Deno.test("a wrong password exits non-zero within seconds with a clear error", async () => {
  await using server = KvndbProcess.start([
    "router",
    "127.0.0.1",
    "0",
    "-p",
    "right",
  ]);
  const port = await server.port();
  const start = performance.now();
  const result = await runKvndb(
    ["cmd", "127.0.0.1", String(port), "-p", "wrong"],
    "get a\n",
  );
  assert.notEqual(result.code, 0);
  assert.match(result.stderr, /Authentication failed: wrong password/);
  assert.ok(performance.now() - start < 5000);
  const fromEnv = await runKvndb(
    ["cmd", "127.0.0.1", String(port)],
    "ping\n",
    { env: { KVNDB_PASSWORD: "right" } },
  );
  assert.equal(fromEnv.code, 0, fromEnv.stderr);
});

Deno.test("either database process can be killed and every acknowledged key is still readable", async () => {
  for (const victim of [0, 1]) {
    await using router = KvndbProcess.start(["router", "127.0.0.1", "0", "-v"]);
    const port = String(await router.port());
    await using first = KvndbProcess.start(["memory", "127.0.0.1", port]);
    await router.waitFor(/is ready at sequence/);
    await using second = KvndbProcess.start(["ram", "127.0.0.1", port]);
    await router.waitFor(/is ready at sequence[\s\S]*is ready at sequence/);
    await using writer = await connect({ port: Number(port) });
    await using reader = await connect({ port: Number(port) });
    await Promise.all(
      Array.from({ length: 500 }, (_, i) => writer.set(`k${i}`, `v${i}`)),
    );
    await [first, second][victim]!.kill("SIGKILL");
    for (let i = 0; i < 500; i++) {
      assert.equal(await reader.get(`k${i}`), `v${i}`);
    }
  }
});

Deno.test("bad arguments print a usage line and exit 2", async () => {
  for (
    const args of [
      ["bogus"],
      [],
      ["router", "127.0.0.1", "notaport"],
      ["cmd", "--acks", "some"],
      ["router", "-e", "tcp:prt=1"],
    ]
  ) {
    const result = await runKvndb(args);
    assert.equal(result.code, 2, args.join(" "));
    assert.match(result.stderr, /^Error: .+\nusage: kvndb MODE/);
  }
});

Deno.test("--help lists every mode and option", async () => {
  const result = await runKvndb(["--help"]);
  assert.equal(result.code, 0);
  for (
    const word of [
      "router",
      "serve",
      "cmd",
      "memory",
      "ram",
      "kv",
      "--type",
      "--endpoint",
      "--password",
      "--verbose",
      "--logfile",
      "--reset",
      "--reset-sleep",
      "KVNDB_PASSWORD",
    ]
  ) {
    assert.ok(result.stdout.includes(word), word);
  }
});

Deno.test("bench reports requests per second and latency percentiles, as JSON too", async () => {
  await using server = KvndbProcess.start([
    "serve",
    "127.0.0.1",
    "0",
    "--memory",
  ]);
  const port = String(await server.port());
  const table = await runKvndb([
    "bench",
    "127.0.0.1",
    port,
    "-c",
    "4",
    "-n",
    "400",
    "-P",
    "4",
    "-d",
    "10",
    "-t",
    "set,get,del,keys",
  ]);
  assert.equal(table.code, 0, table.stderr);
  for (const test of ["SET", "GET", "DEL", "KEYS"]) {
    assert.match(table.stdout, new RegExp(`====== ${test} ======`));
  }
  assert.match(table.stdout, /requests per second/);
  assert.match(table.stdout, /p50 [\d.]+ {2}p99 [\d.]+ {2}p99\.9 [\d.]+/);
  const json = await runKvndb([
    "bench",
    "127.0.0.1",
    port,
    "-n",
    "200",
    "-c",
    "2",
    "--json",
  ]);
  const parsed = JSON.parse(json.stdout);
  assert.equal(parsed.results.length, 2);
  assert.equal(parsed.results[0].requests, 200);
  assert.ok(parsed.results[0].rps > 0);
  const bad = await runKvndb(["bench", "-t", "flush"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /Unknown test 'flush'/);
});

Deno.test("a second router in the same folder exits at once naming the state file, and a router killed with kill -9 restarts", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kvndb-test-" });
  try {
    {
      await using first = KvndbProcess.start(["router", "127.0.0.1", "0"], {
        cwd: dir,
      });
      await first.port();
      const started = performance.now();
      await using second = KvndbProcess.start(["router", "127.0.0.1", "0"], {
        cwd: dir,
      });
      const status = await second.child.status;
      const seconds = (performance.now() - started) / 1000;
      await second.kill();
      assert.equal(status.code, 1, second.stderr);
      assert.match(
        second.stderr,
        /state file kvndb-router\.json is in use by another router: give this one its own file with --state/,
      );
      // Deno's own start-up is most of this; a hang would take far longer.
      assert.ok(seconds < 15, `took ${seconds} s`);
      // The kernel drops the lock with the process: no stale lock after kill -9.
      await first.kill("SIGKILL");
    }
    await using again = KvndbProcess.start(["router", "127.0.0.1", "0"], {
      cwd: dir,
    });
    await again.port();
    assert.ok(again.running);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a router whose memory databases all died serves again within seconds of a fresh one joining, and says what was lost", async () => {
  await using router = KvndbProcess.start(["router", "127.0.0.1", "0"]);
  const port = String(await router.port());
  await using first = KvndbProcess.start(["memory", "127.0.0.1", port]);
  await using second = KvndbProcess.start(["memory", "127.0.0.1", port]);
  await using client = await connect({ port: Number(port), timeout: 3000 });
  await waitFor(
    async () =>
      (await client.stats()).databases.filter((db) => db.state === "ready")
        .length === 2,
    "two databases to be ready",
  );
  await client.set("a", "1");
  await first.kill("SIGKILL");
  await second.kill("SIGKILL");
  await waitFor(
    async () => (await client.stats()).databases.length === 0,
    "both databases to be gone",
  );
  await using _fresh = KvndbProcess.start(["memory", "127.0.0.1", port]);
  const started = performance.now();
  await waitFor(
    async () => {
      try {
        await client.set("b", "2");
        return true;
      } catch {
        return false;
      }
    },
    "the router to serve again",
    30_000,
  );
  const seconds = (performance.now() - started) / 1000;
  // The router waits out the 10 s a live memory database gets to come back.
  assert.ok(seconds < 20, `took ${seconds} s`);
  assert.equal(await client.get("a"), null);
  assert.match(
    router.stderr,
    /Giving up on 1 volatile member, away for more than 10 s: their data died with them/,
  );
});

Deno.test("kvndb forget ends a router's wait for a Deno KV database that is gone for good", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kvndb-test-" });
  try {
    await using router = KvndbProcess.start(["router", "127.0.0.1", "0"], {
      cwd: dir,
    });
    const port = String(await router.port());
    const durable = KvndbProcess.start(
      ["kv", "127.0.0.1", port, `${dir}/lost.db`],
      { cwd: dir },
    );
    await using client = await connect({ port: Number(port), timeout: 3000 });
    await waitFor(
      async () => (await client.stats()).members?.length === 1,
      "the Deno KV database to be a member",
    );
    await client.set("a", "1");
    await durable.kill("SIGKILL");
    await Deno.remove(`${dir}/lost.db`, { recursive: true }).catch(() => {});
    await using _fresh = KvndbProcess.start(["memory", "127.0.0.1", port], {
      cwd: dir,
    });
    await waitFor(
      async () => (await client.stats()).hold !== undefined,
      "the router to hold the fresh database",
    );
    const refused = await runKvndb([
      "forget",
      "127.0.0.1",
      port,
      "--all-absent",
    ]);
    assert.equal(refused.code, 1);
    assert.match(
      refused.stdout,
      /Not confirmed: nothing forgotten \(add --yes/,
    );
    const result = await runKvndb([
      "forget",
      "127.0.0.1",
      port,
      "--all-absent",
      "--yes",
    ]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(
      result.stdout,
      /Forgetting 1 member:\n {2}[0-9a-f]{32} durable, last at 127\.0\.0\.1:\d+, away /,
    );
    await waitFor(async () => {
      try {
        await client.set("b", "2");
        return true;
      } catch {
        return false;
      }
    }, "the router to serve again");
    assert.match(router.stderr, /Forgetting 1 absent member on request/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("kvndb stats prints the router's view, as JSON with --json, and again with --watch until stopped", async () => {
  await using server = KvndbProcess.start([
    "serve",
    "127.0.0.1",
    "0",
    "--memory",
  ]);
  const port = String(await server.port());
  await using client = await connect({ port: Number(port), timeout: 3000 });
  await waitFor(
    async () => (await client.stats()).databases[0]?.state === "ready",
    "the database to be ready",
  );
  await client.set("a", "1");
  const table = await runKvndb(["stats", "127.0.0.1", port]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^cluster\s+[0-9a-f]{32}$/m);
  assert.match(table.stdout, /ready/);
  const json = await runKvndb(["stats", "127.0.0.1", port, "--json"]);
  assert.equal(json.code, 0, json.stderr);
  const stats = JSON.parse(json.stdout);
  assert.equal(stats.databases.length, 1);
  assert.ok(stats.seq >= 1);
  // --watch goes on until a signal: one line of JSON each time.
  await using watcher = KvndbProcess.start([
    "stats",
    "127.0.0.1",
    port,
    "--json",
    "--watch",
    "0.05",
  ]);
  await waitFor(
    () => watcher.stdout.split("\n").filter((line) => line !== "").length >= 3,
    "three snapshots from --watch",
  );
  for (const line of watcher.stdout.split("\n").filter((l) => l !== "")) {
    assert.equal(JSON.parse(line).databases.length, 1);
  }
  const bad = await runKvndb(["stats", "127.0.0.1", port, "--watch", "0"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--watch takes a number of seconds above 0/);
  const misplaced = await runKvndb(["cmd", "127.0.0.1", port, "--json"]);
  assert.equal(misplaced.code, 2);
  assert.match(misplaced.stderr, /--json is for the stats mode only/);
});
