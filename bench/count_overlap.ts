// Diagnostic, not a figure: how many KvDatabase.count() calls run at once on
// Deno KV nodes during a large sync, with router and both nodes in this
// process. A node starts a count whenever the router pings it and the last
// count started over 10 s ago, whether or not that count has finished; on
// a busy thread a count of 1,000,000 keys takes longer than that, so counts
// pile up and slow the sync. Prints every count's duration and, every 10 s,
// how many are running.
//
//   deno run -A bench/count_overlap.ts [--keys 1m] [--seconds 150]

import { parseArgs } from "node:util";
import { Router } from "../router/mod.ts";
import { DatabaseNode, KvDatabase } from "../database/mod.ts";
import { runLoad } from "./_load.ts";
import { onCleanup, parseCounts, runMain, tempDir } from "./_util.ts";

/** A KvDatabase that records its count() calls. */
class WatchedKv extends KvDatabase {
  static running = 0;
  static most = 0;
  static finished: string[] = [];

  constructor(kv: Deno.Kv, readonly name: string) {
    super(kv);
  }

  override async count(): Promise<number> {
    WatchedKv.running++;
    WatchedKv.most = Math.max(WatchedKv.most, WatchedKv.running);
    const started = performance.now();
    try {
      return await super.count();
    } finally {
      WatchedKv.running--;
      WatchedKv.finished.push(
        `${this.name} count() took ${
          ((performance.now() - started) / 1000).toFixed(1)
        } s`,
      );
    }
  }

  static report(): void {
    for (const line of WatchedKv.finished) console.log(`  ${line}`);
    WatchedKv.finished = [];
  }
}

await runMain(async () => {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      keys: { type: "string", default: "1m" },
      seconds: { type: "string", default: "150" },
    },
  });
  const keys = parseCounts(values.keys)[0]!;
  const dir = await tempDir();
  const router = await Router.start({ hostname: "127.0.0.1", port: 0 });
  onCleanup(() => router.close());
  const source = DatabaseNode.start({
    database: new WatchedKv(
      await Deno.openKv(`${dir}/source.sqlite3`),
      "source",
    ),
    hostname: "127.0.0.1",
    port: router.port,
  });
  onCleanup(() => source.close());
  await source.ready();
  const loaded = await runLoad({
    port: router.port,
    clients: 4,
    inflight: 256,
    valueSize: 100,
    count: keys,
  });
  console.log(
    `Loaded ${keys} keys at ${
      Math.round(loaded.rate)
    }/s; at most ${WatchedKv.most} count() at once meanwhile`,
  );
  WatchedKv.report();
  WatchedKv.most = WatchedKv.running;
  const target = DatabaseNode.start({
    database: new WatchedKv(
      await Deno.openKv(`${dir}/target.sqlite3`),
      "target",
    ),
    hostname: "127.0.0.1",
    port: router.port,
    reset: true,
  });
  onCleanup(() => target.close());
  const started = performance.now();
  const ticker = setInterval(() => {
    const stats = router.stats();
    const sync = stats.databases.find((db) => db.sync)?.sync;
    console.log(
      `t+${((performance.now() - started) / 1000).toFixed(0)} s: ${
        sync?.keys ?? "all"
      } keys synced, ${WatchedKv.running} count() running on the two nodes together (at most ${WatchedKv.most})`,
    );
    WatchedKv.report();
  }, 10_000);
  onCleanup(() => clearInterval(ticker));
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    target.ready(),
    new Promise((resolve) => {
      timer = setTimeout(resolve, 1000 * Number(values.seconds));
    }),
  ]);
  clearTimeout(timer);
  console.log(
    `Target ${target.status} after ${
      ((performance.now() - started) / 1000).toFixed(1)
    } s; at most ${WatchedKv.most} count() at once on the two nodes together`,
  );
});
