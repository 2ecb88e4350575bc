// Full-sync time: load a source database through the router (pipelined sets
// of 16-byte keys and 100-byte values), then start a second node with
// reset: true and time DatabaseNode.start → node.ready(). Samples the RSS
// of every process every 100 ms during the sync. Prints a Markdown table.
//
//   deno run -A bench/sync.ts [options]
//
//   --direction LIST    SOURCE-TARGET pairs of memory and kv; default
//                       memory-memory,memory-kv,kv-kv
//   --keys LIST         keys to load (k and m suffixes); default 100k
//   --mode proc|inproc  proc: router and each node in its own process (RSS
//                       per process); inproc: all in this process (one RSS).
//                       Default proc.
//   --value-size B      value bytes; default 100
//   --load-clients N    connections loading the source; default 4
//   --load-inflight N   writes in flight per loading connection; default 256
//   --timeout S         give up on a sync after S seconds; default 600
//   --json              one JSON object per run instead of the table

import { parseArgs } from "node:util";
import { connect } from "../client/mod.ts";
import {
  type Mode,
  type NodeHandle,
  readyWithin,
  startCluster,
} from "./_cluster.ts";
import { runLoad } from "./_load.ts";
import {
  cpuSecondsOf,
  loadAverage,
  machineLine,
  mib,
  onCleanup,
  parseCounts,
  rssOf,
  RssSampler,
  runMain,
  sleep,
  tempDir,
  thousands,
} from "./_util.ts";

type Backend = "memory" | "kv";

await runMain(async () => {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      direction: { type: "string", default: "memory-memory,memory-kv,kv-kv" },
      keys: { type: "string", default: "100k" },
      mode: { type: "string", default: "proc" },
      "value-size": { type: "string", default: "100" },
      "load-clients": { type: "string", default: "4" },
      "load-inflight": { type: "string", default: "256" },
      timeout: { type: "string", default: "600" },
      json: { type: "boolean", default: false },
    },
  });
  const directions = values.direction.split(",").map((d) => {
    const [source, target] = d.split("-");
    for (const b of [source, target]) {
      if (b !== "memory" && b !== "kv") {
        throw new Error(`Unknown direction ${d}`);
      }
    }
    return [source, target] as [Backend, Backend];
  });
  const sizes = parseCounts(values.keys);
  const mode = values.mode as Mode;
  if (mode !== "proc" && mode !== "inproc") {
    throw new Error(`Unknown mode ${mode}`);
  }
  const valueSize = Number(values["value-size"]);
  const timeoutMs = 1000 * Number(values.timeout);

  if (!values.json) {
    console.log(`Full sync: ${machineLine()}`);
    console.log(
      `16-byte keys, ${valueSize}-byte values, mode ${mode}; RSS in MiB, before the sync → peak during it\n`,
    );
    console.log(
      mode === "proc"
        ? "| source → target | keys | load writes/s | sync s | keys/s | MiB/s | router RSS | source RSS | target RSS peak | CPU % router / source / target | load |"
        : "| source → target | keys | load writes/s | sync s | keys/s | MiB/s | process RSS | CPU % | load |",
    );
    console.log(
      mode === "proc"
        ? "| --------------- | ---: | ------------: | -----: | -----: | ----: | ---------- | ---------- | --------------: | ------------------------------ | ---: |"
        : "| --------------- | ---: | ------------: | -----: | -----: | ----: | ----------- | ----: | ---: |",
    );
  }

  for (const [sourceBackend, targetBackend] of directions) {
    for (const keys of sizes) {
      const dir = await tempDir();
      const cluster = await startCluster(mode);
      try {
        const source = await cluster.startNode({
          backend: sourceBackend,
          path: `${dir}/source.sqlite3`,
        });
        await readyWithin(cluster, source, 60_000);
        console.error(
          `${sourceBackend} → ${targetBackend}, ${keys} keys: loading the source`,
        );
        const loaded = await runLoad({
          port: cluster.port,
          clients: Number(values["load-clients"]),
          inflight: Number(values["load-inflight"]),
          valueSize,
          count: keys,
          progress: true,
        });
        console.error(
          `  loaded ${keys} keys in ${loaded.seconds.toFixed(1)} s (${
            Math.round(loaded.rate)
          }/s); syncing`,
        );
        // The router's memory after the load: its heap, and (with
        // KVNDB_BENCH_DENO_FLAGS=--v8-flags=--expose-gc) after a full GC.
        const routerMemory = await cluster.routerMemory(true);
        console.error(
          `  router after the load: rss ${
            mib(routerMemory.rss)
          } MiB, heap used ${mib(routerMemory.heapUsed)} MiB, external ${
            mib(routerMemory.external)
          } MiB${routerMemory.collected ? " (after a full GC)" : ""}`,
        );
        await sleep(500);

        const rss = (pid?: number) => () =>
          pid === undefined ? Deno.memoryUsage().rss : rssOf(pid);
        const before: Record<string, number> = mode === "proc"
          ? {
            router: rss(cluster.routerPid)(),
            source: rss(source.pid)(),
          }
          : { process: rss()() };
        const sampler = new RssSampler(
          mode === "proc"
            ? {
              router: rss(cluster.routerPid),
              source: rss(source.pid),
            }
            : { process: rss() },
        );
        const load = loadAverage();
        const cpuPids: Record<string, number | undefined> = mode === "proc"
          ? { router: cluster.routerPid, source: source.pid }
          : { process: Deno.pid };
        const cpuBefore = Object.fromEntries(
          Object.entries(cpuPids).map(([k, pid]) => [k, cpuSecondsOf(pid!)]),
        );
        const target: NodeHandle = await cluster.startNode({
          backend: targetBackend,
          path: `${dir}/target.sqlite3`,
          reset: true,
        });
        if (mode === "proc") sampler.add("target", rss(target.pid));

        // Progress, from the router's statistics, every 10 s.
        const stats = await connect({
          hostname: "127.0.0.1",
          port: cluster.port,
        });
        const unregister = onCleanup(() => stats.close());
        let lastProgress: unknown;
        const progress = async () => {
          const s = await stats.stats();
          const syncing = (s.databases as { sync?: unknown }[])
            .find((db) => db.sync !== undefined);
          lastProgress = syncing?.sync;
          return lastProgress;
        };
        const ticker = setInterval(() => {
          progress().then((p) => {
            if (p !== undefined) console.error(`  … ${JSON.stringify(p)}`);
          }, () => {});
        }, 10_000);
        let syncMs: number | undefined;
        let timedOut = false;
        try {
          let timer: ReturnType<typeof setTimeout> | undefined;
          syncMs = await Promise.race([
            target.ready(),
            new Promise<undefined>((resolve) => {
              timer = setTimeout(() => resolve(undefined), timeoutMs);
            }),
          ]);
          clearTimeout(timer);
          if (syncMs === undefined) {
            timedOut = true;
            await progress().catch(() => {});
          }
        } finally {
          clearInterval(ticker);
          unregister();
          await stats.close();
        }
        const peaks = sampler.stop();
        // CPU used during the sync, as % of one core; the target's includes
        // its start-up (loading the modules, a few hundred ms of CPU).
        const cpu: Record<string, number> = Object.fromEntries(
          Object.entries(cpuPids).map((
            [k, pid],
          ) => [k, cpuSecondsOf(pid!) - cpuBefore[k]!]),
        );
        if (mode === "proc") cpu.target = cpuSecondsOf(target.pid!);
        const syncSeconds = (syncMs ?? timeoutMs) / 1000;
        for (const k in cpu) cpu[k] = Math.round(100 * cpu[k]! / syncSeconds);
        let counted = NaN;
        if (!timedOut) {
          counted = await target.count();
          if (counted !== keys) {
            throw new Error(`The target holds ${counted} keys, not ${keys}`);
          }
        }
        const seconds = syncSeconds;
        const rate = keys / seconds;
        const mibps = keys * (16 + valueSize) / seconds / 1024 / 1024;
        if (values.json) {
          console.log(JSON.stringify({
            mode,
            source: sourceBackend,
            target: targetBackend,
            keys,
            valueSize,
            loadSeconds: loaded.seconds,
            loadRate: loaded.rate,
            routerMemory,
            syncSeconds: timedOut ? null : seconds,
            timedOut,
            progress: timedOut ? lastProgress : undefined,
            keysPerSecond: timedOut ? null : rate,
            rssBefore: before,
            rssPeak: Object.fromEntries(peaks),
            cpu,
            load,
          }));
        } else {
          const syncText = timedOut
            ? `> ${seconds.toFixed(0)} (stopped; ${
              JSON.stringify(lastProgress)
            })`
            : seconds.toFixed(1);
          const pair = (name: string) =>
            `${mib(before[name]!)} → ${mib(peaks.get(name) ?? NaN)}`;
          const cells = mode === "proc"
            ? `${pair("router")} | ${pair("source")} | ${
              mib(peaks.get("target") ?? NaN)
            }`
            : pair("process");
          const cpuText = mode === "proc"
            ? `${cpu.router} / ${cpu.source} / ${cpu.target}`
            : `${cpu.process}`;
          console.log(
            `| ${sourceBackend} → ${targetBackend} | ${thousands(keys)} | ${
              thousands(loaded.rate)
            } | ${syncText} | ${timedOut ? "–" : thousands(rate)} | ${
              timedOut ? "–" : mibps.toFixed(1)
            } | ${cells} | ${cpuText} | ${load.toFixed(2)} |`,
          );
        }
      } finally {
        await cluster.close();
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      }
    }
  }
});
