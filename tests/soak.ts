// The soak run (`deno task soak`, ten minutes by default): mixed load with
// database churn through the fault harness; at the end no acknowledged
// write may be missing. Every 5 s it samples each process's memory (RSS)
// and open file descriptors into a CSV file, and it fails if the router's
// memory or descriptors keep growing.
//
// KVNDB_SOAK_SECONDS sets the length; KVNDB_SOAK_CSV the output file.

import { connect } from "../client/mod.ts";
import { digest, FaultCluster, Random, seedFromEnv } from "./_harness.ts";

const SECONDS = Number(Deno.env.get("KVNDB_SOAK_SECONDS") ?? "600");
const CSV = Deno.env.get("KVNDB_SOAK_CSV") ?? "soak.csv";

function sample(pid: number): { rss: number; fds: number } {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const rss = Number(status.match(/VmRSS:\s+(\d+)/)?.[1] ?? 0) * 1024;
    let fds = 0;
    for (const _ of Deno.readDirSync(`/proc/${pid}/fd`)) fds++;
    return { rss, fds };
  } catch {
    return { rss: 0, fds: 0 };
  }
}

const seed = seedFromEnv();
const random = new Random(seed);
console.log(`Soak: ${SECONDS} s, seed ${seed}, samples in ${CSV}`);
const cluster = await FaultCluster.start({ databases: 3 });
const rows = ["seconds,process,rss_bytes,open_fds"];
const acknowledged = new Map<string, string>();
let running = true;
let operations = 0;
let failures = 0;

async function lane(id: number): Promise<void> {
  let client = await connect({ port: cluster.port, timeout: 4000 });
  const rng = new Random(seed + id);
  for (let i = 0; running; i++) {
    try {
      const key = `soak:${id}:${i}`;
      const roll = rng.int(10);
      if (roll < 5) {
        await client.set(key, "v".repeat(rng.int(200)));
        acknowledged.set(key, "");
      } else if (roll < 9) {
        await client.get(`soak:${id}:${rng.int(i + 1)}`);
      } else {
        // Deletes only of keys never counted, so the check stays simple.
        await client.delete(`scratch:${id}:${rng.int(100)}`);
      }
      operations++;
    } catch {
      failures++;
      if (client.isClosed) {
        try {
          client = await connect({ port: cluster.port, timeout: 4000 });
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    }
  }
  await client.close();
}

const lanes = [0, 1, 2, 3].map(lane);
const start = performance.now();
let nextSample = 0;
let routerBaseline: { rss: number; fds: number } | undefined;
while (performance.now() - start < SECONDS * 1000) {
  await new Promise((resolve) => setTimeout(resolve, 500 + random.int(1500)));
  const elapsed = (performance.now() - start) / 1000;
  // Churn: databases killed and restarted, links cut; never the router, so
  // that its memory and descriptors can be followed over the whole run.
  const i = random.int(3);
  switch (random.int(4)) {
    case 0:
      await cluster.killDatabase(i);
      cluster.startDatabase(i);
      cluster.count("kill-database");
      break;
    case 1:
      cluster.relays[i]!.cut();
      cluster.count("cut-link");
      break;
    default:
      break;
  }
  if (elapsed >= nextSample) {
    nextSample += 5;
    const router = sample(cluster.router.child.pid);
    rows.push(`${elapsed.toFixed(0)},router,${router.rss},${router.fds}`);
    if (elapsed > 30 && routerBaseline === undefined) routerBaseline = router;
    cluster.nodes.forEach((node, n) => {
      if (node === undefined) return;
      const s = sample(node.child.pid);
      rows.push(`${elapsed.toFixed(0)},db${n},${s.rss},${s.fds}`);
    });
    Deno.writeTextFileSync(CSV, rows.join("\n") + "\n");
  }
}
const routerEnd = sample(cluster.router.child.pid);
cluster.heal();
await cluster.waitReady(3, 120_000, false);
running = false;
await Promise.all(lanes);
await cluster.waitReady(3);
const contents = await cluster.contents();
let lost = 0;
for (const key of acknowledged.keys()) {
  for (const db of contents) if (!db.has(key)) lost++;
}
const digests = await Promise.all(contents.map(digest));
await cluster[Symbol.asyncDispose]();
const summary = {
  seed,
  seconds: SECONDS,
  operations,
  failedOperations: failures,
  acknowledgedWrites: acknowledged.size,
  lost,
  converged: digests.every((d) => d === digests[0]),
  faults: Object.fromEntries(cluster.faults),
  routerRss: { after30s: routerBaseline?.rss, end: routerEnd.rss },
  routerFds: { after30s: routerBaseline?.fds, end: routerEnd.fds },
};
console.log(JSON.stringify(summary, null, 2));
const grew = routerBaseline !== undefined &&
  (routerEnd.rss > routerBaseline.rss * 1.5 + 32 * 1024 * 1024 ||
    routerEnd.fds > routerBaseline.fds + 20);
if (lost > 0 || !summary.converged || grew) {
  console.error("Soak FAILED");
  Deno.exit(1);
}
console.log("Soak passed");
