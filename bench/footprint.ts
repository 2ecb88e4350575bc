// Memory and full-sync figures side by side with Redis, in one run:
//   1. memory per key: N keys (16-byte keys, 100-byte values) in a KVNDB
//      memory database (its process's RSS and V8 heap, before and after)
//      against redis-server's `used_memory` (and RSS) for the same keys;
//   2. full sync of those keys: a second KVNDB memory database (reset) until
//      ready, against a Redis replica (master: repl-diskless-sync yes,
//      repl-diskless-sync-delay 0) until its link is up and the load is done;
//   3. router memory during a timed write load, sampled every 5 s.
//
//   deno run -A bench/footprint.ts [--keys 1m] [--load-seconds 60]
//
// Needs redis-server and redis-cli (Debian: redis-server, redis-tools).
// For heap figures after a full GC, set
// KVNDB_BENCH_DENO_FLAGS=--v8-flags=--expose-gc.

import { parseArgs } from "node:util";
import { type NodeHandle, readyWithin, startCluster } from "./_cluster.ts";
import { runLoad } from "./_load.ts";
import {
  keyOf,
  machineLine,
  mib,
  onCleanup,
  parseCounts,
  rssOf,
  runMain,
  sleep,
  tempDir,
  thousands,
  valueOf,
} from "./_util.ts";

const encoder = new TextEncoder();

/** A redis-server child process on a free port. */
class RedisServer {
  readonly port: number;
  readonly #child: Deno.ChildProcess;
  constructor(port: number, dir: string, extra: string[] = []) {
    this.port = port;
    this.#child = new Deno.Command("redis-server", {
      args: [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir,
        ...extra,
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    onCleanup(() => this.stop());
  }
  get pid(): number {
    return this.#child.pid;
  }
  async cli(...args: string[]): Promise<string> {
    const out = await new Deno.Command("redis-cli", {
      args: ["-p", String(this.port), ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return new TextDecoder().decode(out.stdout);
  }
  async info(section: string): Promise<Record<string, string>> {
    const text = await this.cli("INFO", section);
    const fields: Record<string, string> = {};
    for (const line of text.split(/\r?\n/)) {
      const at = line.indexOf(":");
      if (at > 0) fields[line.slice(0, at)] = line.slice(at + 1);
    }
    return fields;
  }
  async waitUp(): Promise<void> {
    for (let i = 0; i < 200; i++) {
      if ((await this.cli("PING")).trim() === "PONG") return;
      await sleep(25);
    }
    throw new Error(`redis-server on ${this.port} did not start`);
  }
  stop(): void {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** SET commands in RESP for keys 0 … count-1, as `redis-cli --pipe` reads them. */
async function writeRespLoad(
  path: string,
  count: number,
  valueSize: number,
): Promise<void> {
  using file = await Deno.open(path, { write: true, create: true });
  const value = new TextDecoder().decode(valueOf(valueSize));
  let batch = "";
  for (let i = 0; i < count; i++) {
    const key = keyOf(i);
    batch +=
      `*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}\r\n$${value.length}\r\n${value}\r\n`;
    if (batch.length > 1 << 20) {
      await file.write(encoder.encode(batch));
      batch = "";
    }
  }
  await file.write(encoder.encode(batch));
}

await runMain(async () => {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      keys: { type: "string", default: "1m" },
      "value-size": { type: "string", default: "100" },
      "load-seconds": { type: "string", default: "60" },
    },
  });
  const keys = parseCounts(values.keys)[0]!;
  const valueSize = Number(values["value-size"]);
  const loadSeconds = Number(values["load-seconds"]);
  const dir = await tempDir();
  console.log(`Footprint: ${machineLine()}`);
  console.log(
    `${thousands(keys)} keys of 16 bytes, ${valueSize}-byte values\n`,
  );

  // ---- Redis: memory per key, then a replica's full sync.
  const master = new RedisServer(freePort(), dir, [
    "--repl-diskless-sync",
    "yes",
    "--repl-diskless-sync-delay",
    "0",
  ]);
  await master.waitUp();
  const loadFile = `${dir}/load.resp`;
  await writeRespLoad(loadFile, keys, valueSize);
  const redisBefore = Number((await master.info("memory")).used_memory);
  const redisRssBefore = rssOf(master.pid);
  const pipe = await new Deno.Command("sh", {
    args: ["-c", `redis-cli -p ${master.port} --pipe < ${loadFile}`],
    stdout: "null",
    stderr: "null",
  }).output();
  if (!pipe.success) throw new Error("redis-cli --pipe failed");
  const redisAfter = Number((await master.info("memory")).used_memory);
  const redisRssAfter = rssOf(master.pid);
  const dbsize = Number((await master.cli("DBSIZE")).trim());
  if (dbsize !== keys) throw new Error(`Redis holds ${dbsize} keys`);
  console.error(`redis-server: ${thousands(dbsize)} keys loaded`);

  const replicaDir = `${dir}/replica`;
  await Deno.mkdir(replicaDir);
  const replicaStart = performance.now();
  const replica = new RedisServer(freePort(), replicaDir, [
    "--replicaof",
    "127.0.0.1",
    String(master.port),
  ]);
  let redisSyncMs = NaN;
  for (let i = 0; i < 6000; i++) {
    const info = await replica.info("replication").catch(() => ({}));
    const fields = info as Record<string, string>;
    if (
      fields.master_link_status === "up" &&
      fields.master_sync_in_progress === "0"
    ) {
      redisSyncMs = performance.now() - replicaStart;
      break;
    }
    await sleep(10);
  }
  const replicaKeys = Number((await replica.cli("DBSIZE")).trim());
  console.error(
    `redis replica: in sync after ${redisSyncMs.toFixed(0)} ms with ${
      thousands(replicaKeys)
    } keys`,
  );
  replica.stop();
  master.stop();

  // ---- KVNDB: the same keys in a memory database, then a full sync.
  const cluster = await startCluster("proc");
  onCleanup(() => cluster.close());
  const source = await cluster.startNode({ backend: "memory" });
  await readyWithin(cluster, source, 60_000);
  const heapBefore = await source.memory(true);
  const rssBefore = rssOf(source.pid!);
  await runLoad({
    port: cluster.port,
    clients: 4,
    inflight: 256,
    valueSize,
    count: keys,
    progress: true,
  });
  await sleep(1000);
  const heapAfter = await source.memory(true);
  const rssAfter = rssOf(source.pid!);
  const held = await source.count();
  if (held !== keys) throw new Error(`The memory database holds ${held} keys`);

  const target: NodeHandle = await cluster.startNode({
    backend: "memory",
    reset: true,
  });
  const kvndbSyncMs = await target.ready();
  const targetKeys = await target.count();
  console.error(
    `KVNDB: synced ${thousands(targetKeys)} keys in ${
      kvndbSyncMs.toFixed(0)
    } ms`,
  );

  const perKey = (bytes: number) => (bytes / keys).toFixed(0);
  console.log("| measure | Redis | KVNDB memory database | KVNDB / Redis |");
  console.log("| ------- | ----: | --------------------: | ------------: |");
  const redisBytes = redisAfter - redisBefore;
  const heapBytes = heapAfter.heapUsed + heapAfter.external -
    heapBefore.heapUsed - heapBefore.external;
  console.log(
    `| bytes a key: Redis used_memory, KVNDB V8 heap + external${
      heapAfter.collected ? " (after a full GC)" : ""
    } | ${perKey(redisBytes)} | ${perKey(heapBytes)} | ${
      (heapBytes / redisBytes).toFixed(2)
    }× |`,
  );
  const redisRss = redisRssAfter - redisRssBefore;
  const kvndbRss = rssAfter - rssBefore;
  console.log(
    `| bytes a key: process RSS growth | ${perKey(redisRss)} | ${
      perKey(kvndbRss)
    } | ${(kvndbRss / redisRss).toFixed(2)}× |`,
  );
  console.log(
    `| full sync of ${thousands(keys)} keys (s) | ${
      (redisSyncMs / 1000).toFixed(2)
    } | ${(kvndbSyncMs / 1000).toFixed(2)} | ${
      (kvndbSyncMs / redisSyncMs).toFixed(2)
    }× |`,
  );
  console.log(
    `\nRSS after loading: Redis ${mib(redisRssAfter)} MiB, KVNDB database ${
      mib(rssAfter)
    } MiB\n`,
  );
  await target.close();

  // ---- The router under a timed write load.
  const samples: string[] = [];
  const sample = () =>
    samples.push(
      `${((performance.now() - started) / 1000).toFixed(0)} s: ${
        mib(rssOf(cluster.routerPid!))
      }`,
    );
  const started = performance.now();
  sample();
  const timer = setInterval(sample, 5000);
  const load = await runLoad({
    port: cluster.port,
    clients: 4,
    inflight: 64,
    valueSize,
    first: keys,
    seconds: loadSeconds,
    warmupSeconds: 0,
  });
  clearInterval(timer);
  sample();
  console.log(
    `Router RSS (MiB) during ${loadSeconds} s of writes (${
      thousands(load.rate)
    } writes/s, new keys):`,
  );
  console.log(samples.join(", "));
  await cluster.close();
  await Deno.remove(dir, { recursive: true });
});
