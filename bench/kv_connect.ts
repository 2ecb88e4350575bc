// Deno KV through KVNDB's KV Connect port against a local Deno KV file: the
// same Deno programs (bench/_kv_worker.ts) doing kv.set, kv.get or an atomic
// sum for a fixed time, 1 and 16 at once, first against `kvndb serve
// --memory --kv-port` (a router and a memory database in one process), then
// against a SQLite file opened with Deno.openKv(path). Prints operations per
// second, and for KVNDB the server process's CPU time per operation.
//
//   deno run -A bench/kv_connect.ts [--seconds 5] [--programs 1,16]

import { parseArgs } from "node:util";
import {
  cpuSecondsOf,
  machineLine,
  onCleanup,
  parseCounts,
  runMain,
  tempDir,
  thousands,
} from "./_util.ts";

const WORKER = new URL("./_kv_worker.ts", import.meta.url).pathname;
const MAIN = new URL("../main.ts", import.meta.url).pathname;

interface Row {
  target: string;
  op: string;
  programs: number;
  perSecond: number;
  cpuMicros?: number;
}

async function runWorkers(
  target: string,
  op: string,
  programs: number,
  seconds: number,
): Promise<number> {
  // Time for every program to start and open the database first.
  const start = Date.now() + 3_000 + programs * 150;
  const end = start + seconds * 1000;
  const runs = Array.from(
    { length: programs },
    (_, i) =>
      new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--unstable-kv",
          WORKER,
          target,
          op,
          String(start),
          String(end),
          String(i),
        ],
        env: { DENO_KV_ACCESS_TOKEN: "bench" },
        stdout: "piped",
        stderr: "piped",
      }).output(),
  );
  const outputs = await Promise.all(runs);
  let total = 0;
  for (const output of outputs) {
    if (!output.success) {
      throw new Error(new TextDecoder().decode(output.stderr));
    }
    total += Number(new TextDecoder().decode(output.stdout).trim());
  }
  return total;
}

async function startKvndb(): Promise<{ url: string; pid: number }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      MAIN,
      "serve",
      "127.0.0.1",
      "0",
      "--memory",
      "--kv-port",
      "0",
      "--state",
      "none",
    ],
    env: { KVNDB_PASSWORD: "bench" },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  onCleanup(async () => {
    try {
      child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    await child.status;
  });
  // It says where it serves on standard error, with its logs.
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (true) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`kvndb serve exited: ${text}`);
    text += value;
    const port = text.match(/KV Connect \(Deno\.openKv\) on port (\d+)/)?.[1];
    if (port !== undefined) {
      // Keep reading, so that its logs never fill the pipe.
      (async () => {
        while (!(await reader.read()).done) { /* discard */ }
      })().catch(() => {});
      return { url: `http://127.0.0.1:${port}`, pid: child.pid };
    }
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      seconds: { type: "string", default: "5" },
      programs: { type: "string", default: "1,16" },
    },
  });
  const seconds = Number(values.seconds);
  const counts = parseCounts(values.programs);
  console.log(`# ${machineLine()}`);
  const rows: Row[] = [];
  const kvndb = await startKvndb();
  for (const op of ["set", "get", "atomic"]) {
    for (const programs of counts) {
      const cpu = cpuSecondsOf(kvndb.pid);
      const done = await runWorkers(kvndb.url, op, programs, seconds);
      const used = cpuSecondsOf(kvndb.pid) - cpu;
      rows.push({
        target: "KVNDB (serve --memory --kv-port)",
        op,
        programs,
        perSecond: done / seconds,
        // The server's CPU over the whole run (the programs' start included)
        // per operation done.
        cpuMicros: used * 1e6 / done,
      });
    }
  }
  const dir = await tempDir();
  for (const op of ["set", "get", "atomic"]) {
    for (const programs of counts) {
      const done = await runWorkers(
        `${dir}/bench-${op}-${programs}.sqlite3`,
        op,
        programs,
        seconds,
      );
      rows.push({
        target: "Deno.openKv(path), local SQLite file",
        op,
        programs,
        perSecond: done / seconds,
      });
    }
  }
  console.log(
    "| target | operation | programs | operations/s | server CPU µs/op |",
  );
  console.log("| --- | --- | ---: | ---: | ---: |");
  for (const row of rows) {
    console.log(
      `| ${row.target} | ${row.op} | ${row.programs} | ${
        thousands(Math.round(row.perSecond))
      } | ${row.cpuMicros === undefined ? "" : row.cpuMicros.toFixed(1)} |`,
    );
  }
}

runMain(main);
