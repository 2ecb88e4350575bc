// Acknowledged writes per second end to end: client → router → one database
// node → acknowledgement, with pipelined clients, for a Deno KV node on a
// temporary file with group commit (the default), without it (maxBatch: 1),
// and for a memory node as a reference. Prints a Markdown table.
//
//   deno run -A bench/kv_writes.ts [options]
//
//   --backend LIST   memory, kv (group commit), kv-nobatch (maxBatch: 1);
//                    default memory,kv,kv-nobatch
//   --mode LIST      proc (router, node and client in three processes) and/or
//                    inproc (all in one process); default proc
//   --clients LIST   client connections; default 1
//   --inflight LIST  writes in flight per connection; default 64,256
//   --seconds S      measured window per run; default 5
//   --warmup S       warm-up before the window; default 1
//   --value-size B   value bytes; default 100 (keys are 16 bytes)
//   --repeat N       runs per combination; default 1
//   --json           one JSON object per run instead of the table

import { parseArgs } from "node:util";
import {
  type Mode,
  type NodeSpec,
  readyWithin,
  startCluster,
} from "./_cluster.ts";
import { runLoad } from "./_load.ts";
import {
  cpuSecondsOf,
  loadAverage,
  machineLine,
  parseCounts,
  runMain,
  tempDir,
  thousands,
} from "./_util.ts";

const BACKENDS: Record<string, (dir: string) => NodeSpec> = {
  memory: () => ({ backend: "memory" }),
  kv: (dir) => ({ backend: "kv", path: `${dir}/kv.sqlite3` }),
  "kv-nobatch": (dir) => ({
    backend: "kv",
    path: `${dir}/kv.sqlite3`,
    maxBatch: 1,
  }),
};

await runMain(async () => {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      backend: { type: "string", default: "memory,kv,kv-nobatch" },
      mode: { type: "string", default: "proc" },
      clients: { type: "string", default: "1" },
      inflight: { type: "string", default: "64,256" },
      seconds: { type: "string", default: "5" },
      warmup: { type: "string", default: "1" },
      "value-size": { type: "string", default: "100" },
      repeat: { type: "string", default: "1" },
      json: { type: "boolean", default: false },
    },
  });
  const backends = values.backend.split(",");
  for (const name of backends) {
    if (!(name in BACKENDS)) throw new Error(`Unknown backend ${name}`);
  }
  const modes = values.mode.split(",") as Mode[];
  for (const mode of modes) {
    if (mode !== "proc" && mode !== "inproc") {
      throw new Error(`Unknown mode ${mode}`);
    }
  }
  const clientCounts = parseCounts(values.clients);
  const inflights = parseCounts(values.inflight);
  const seconds = Number(values.seconds);
  const warmup = Number(values.warmup);
  const valueSize = Number(values["value-size"]);
  const repeat = Number(values.repeat);

  if (!values.json) {
    console.log(`Writes end to end: ${machineLine()}`);
    console.log(
      `${valueSize}-byte values, 16-byte keys, ${seconds} s measured after ${warmup} s warm-up\n`,
    );
    console.log(
      "| mode | backend | clients × in flight | writes | writes/s | p50 ms | p99 ms | max ms | CPU % router / node / client | load |",
    );
    console.log(
      "| ---- | ------- | ------------------- | -----: | -------: | -----: | -----: | -----: | ---------------------------- | ---: |",
    );
  }
  for (const mode of modes) {
    for (const backend of backends) {
      for (const clients of clientCounts) {
        for (const inflight of inflights) {
          for (let r = 0; r < repeat; r++) {
            const dir = await tempDir();
            const cluster = await startCluster(mode);
            try {
              const node = await cluster.startNode(BACKENDS[backend]!(dir));
              await readyWithin(cluster, node, 60_000);
              const pids = {
                router: cluster.routerPid,
                node: node.pid,
                client: Deno.pid,
              };
              const cpuAt = () =>
                Object.fromEntries(
                  Object.entries(pids).map((
                    [k, pid],
                  ) => [k, pid === undefined ? NaN : cpuSecondsOf(pid)]),
                );
              let cpuStart: Record<string, number> = {};
              let cpuEnd: Record<string, number> = {};
              const load = loadAverage();
              const result = await runLoad({
                port: cluster.port,
                clients,
                inflight,
                valueSize,
                seconds,
                warmupSeconds: warmup,
                onWindow: (phase) => {
                  if (phase === "start") cpuStart = cpuAt();
                  else cpuEnd = cpuAt();
                },
              });
              const cpu = Object.fromEntries(
                Object.keys(pids).map((k) => [
                  k,
                  Math.round(
                    100 * (cpuEnd[k]! - cpuStart[k]!) / result.seconds,
                  ),
                ]),
              );
              if (values.json) {
                console.log(JSON.stringify({
                  mode,
                  backend,
                  clients,
                  inflight,
                  valueSize,
                  ...result,
                  cpu,
                  load,
                }));
              } else {
                const pct = (n: number) => Number.isFinite(n) ? `${n}` : "–";
                const cpuText = mode === "proc"
                  ? `${pct(cpu.router!)} / ${pct(cpu.node!)} / ${
                    pct(cpu.client!)
                  }`
                  : `${pct(cpu.client!)} (one process)`;
                console.log(
                  `| ${mode} | ${backend} | ${clients} × ${inflight} | ${
                    thousands(result.writes)
                  } | ${thousands(result.rate)} | ${result.p50.toFixed(2)} | ${
                    result.p99.toFixed(2)
                  } | ${result.max.toFixed(1)} | ${cpuText} | ${
                    load.toFixed(2)
                  } |`,
                );
              }
            } finally {
              await cluster.close();
              await Deno.remove(dir, { recursive: true }).catch(() => {});
            }
          }
        }
      }
    }
  }
});
