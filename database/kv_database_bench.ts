// Acknowledged-write throughput of KvDatabase.apply() on a temporary file:
// one write per call (an atomic commit, and a WAL sync, per write) against
// group commit (the whole batch in as few commits as Deno KV's limits allow).
// Each benchmark iteration applies `count` writes, so writes/s is `count`
// times the iterations per second that `deno bench` reports.
//
//   deno bench -A database/kv_database_bench.ts

import { type Write, WriteOp } from "../protocol/mod.ts";
import { KvDatabase } from "./kv_database.ts";

const dir = await Deno.makeTempDir({ prefix: "kvndb_bench_" });
globalThis.addEventListener("unload", () => {
  Deno.removeSync(dir, { recursive: true });
});

const encoder = new TextEncoder();
let files = 0;
let seq = 0;

/** `count` sets of fresh keys with values of `size` bytes. */
function writes(count: number, size: number): Write[] {
  return Array.from({ length: count }, () => {
    seq++;
    return {
      seq,
      op: WriteOp.SET,
      key: encoder.encode(`user:${seq}`),
      value: new Uint8Array(size).fill(seq & 0xff),
    };
  });
}

for (
  const [count, size] of [[100, 100], [1_000, 100], [1_000, 4_096]] as const
) {
  const group = `${count} writes of ${size} B`;
  // One write per call is slow (a sync per write); a few rounds suffice.
  const rounds = { n: count >= 1_000 ? 5 : 20, warmup: 1 };

  Deno.bench({
    name: `${group}, one apply() per write`,
    group,
    ...rounds,
    async fn(b) {
      await using db = await KvDatabase.open(`${dir}/${files++}.sqlite3`);
      const batch = writes(count, size);
      b.start();
      for (const write of batch) await db.apply([write]);
      b.end();
    },
  });

  Deno.bench({
    name: `${group}, one apply() for all (group commit)`,
    group,
    baseline: true,
    ...rounds,
    async fn(b) {
      await using db = await KvDatabase.open(`${dir}/${files++}.sqlite3`);
      const batch = writes(count, size);
      b.start();
      await db.apply(batch);
      b.end();
    },
  });
}
