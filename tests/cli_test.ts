// End-to-end tests through the command line, in subprocesses.

import assert from "node:assert/strict";
import { connect } from "../client/mod.ts";
import { KvndbProcess, runKvndb } from "./_process.ts";

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
