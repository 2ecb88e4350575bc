// A router or a database node in a process of its own, for the benchmarks
// (bench/_cluster.ts starts it). It talks to its parent over standard
// input/output, one line each way, and exits when its standard input closes,
// so that it never outlives a benchmark that died.
//
//   deno run -A bench/_server.ts router
//     prints "port PORT"
//   deno run -A bench/_server.ts node PORT memory|kv [PATH] [--max-batch N] [--reset]
//     prints "ready MS" once node.ready() resolves, MS after DatabaseNode.start;
//     answers "count" with "count N"; "quit" or end of input closes the node.
//   Both answer "mem" (or "mem gc") with "mem JSON" (Deno.memoryUsage()), and
//   the router "stats" with "stats JSON" (router.stats()).
//
// Logs as `-v` does to standard error, which the parent keeps (the last few
// KiB) to show when something fails, or echoes with KVNDB_BENCH_VERBOSE=1.

import { parseArgs } from "node:util";
import { setupLogging } from "../cli/logging.ts";
import { Router } from "../router/mod.ts";
import {
  type Database,
  DatabaseNode,
  KvDatabase,
  MemoryDatabase,
} from "../database/mod.ts";

const encoder = new TextEncoder();

function say(line: string): void {
  Deno.stdout.writeSync(encoder.encode(line + "\n"));
}

/**
 * This process's memory as JSON, after a full garbage collection when asked
 * and possible (with KVNDB_BENCH_DENO_FLAGS=--v8-flags=--expose-gc).
 */
function memory(collect: boolean): string {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (collect && gc !== undefined) gc();
  return JSON.stringify({ ...Deno.memoryUsage(), collected: collect && !!gc });
}

/** Yields standard input's lines until it closes. */
async function* lines(): AsyncGenerator<string> {
  let buffer = "";
  for await (
    const text of Deno.stdin.readable.pipeThrough(new TextDecoderStream())
  ) {
    buffer += text;
    let i;
    while ((i = buffer.indexOf("\n")) >= 0) {
      yield buffer.slice(0, i).trim();
      buffer = buffer.slice(i + 1);
    }
  }
}

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    "max-batch": { type: "string" },
    reset: { type: "boolean", default: false },
  },
});
const [role] = positionals;
// Everything (joins, syncs, warnings; nothing per request) to standard
// error, which the parent keeps for diagnostics.
await setupLogging({ verbose: true });

if (role === "router") {
  const router = await Router.start({ hostname: "127.0.0.1", port: 0 });
  say(`port ${router.port}`);
  for await (const line of lines()) {
    if (line === "quit") break;
    if (line.startsWith("mem")) say(`mem ${memory(line === "mem gc")}`);
    if (line === "stats") say(`stats ${JSON.stringify(router.stats())}`);
  }
  await router.close();
} else if (role === "node") {
  const port = Number(positionals[1]);
  const backend = positionals[2];
  let database: Database;
  if (backend === "memory") database = new MemoryDatabase();
  else if (backend === "kv") database = await KvDatabase.open(positionals[3]);
  else throw new Error(`Unknown backend ${backend}`);
  const started = performance.now();
  const node = DatabaseNode.start({
    database,
    hostname: "127.0.0.1",
    port,
    reset: values.reset,
    maxBatch: values["max-batch"] === undefined
      ? undefined
      : Number(values["max-batch"]),
  });
  node.ready().then(
    () => say(`ready ${(performance.now() - started).toFixed(1)}`),
    (error) => say(`failed ${String(error)}`),
  );
  for await (const line of lines()) {
    if (line === "quit") break;
    if (line === "count") say(`count ${await database.count()}`);
    if (line.startsWith("mem")) say(`mem ${memory(line === "mem gc")}`);
  }
  await node.close();
} else {
  console.error(
    "usage: _server.ts router | node PORT memory|kv [PATH] [--max-batch N] [--reset]",
  );
  Deno.exit(2);
}
Deno.exit(0);
