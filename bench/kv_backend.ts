// The Deno KV backend alone (no network), for what a sync and a large store
// cost: KvDatabase.apply() (group commit, no reads) against merge() (what a
// sync target runs: it reads each key's stored version first, ten keys per
// getMany), both into an empty store, in chunks the size a 256 KiB sync chunk
// holds; then count() (which a node runs at most every 10 s, when the router
// pings it) and snapshot() (what a sync source runs) over the filled store.
//
//   deno run -A bench/kv_backend.ts [--keys 300k] [--chunk 2200] [--value-size 100]

import { parseArgs } from "node:util";
import { KvDatabase } from "../database/kv_database.ts";
import { WriteOp } from "../protocol/mod.ts";
import {
  cpuSecondsOf,
  keyOf,
  machineLine,
  parseCounts,
  runMain,
  tempDir,
  thousands,
  valueOf,
} from "./_util.ts";

await runMain(async () => {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      keys: { type: "string", default: "300k" },
      chunk: { type: "string", default: "2200" },
      "value-size": { type: "string", default: "100" },
    },
  });
  const keys = parseCounts(values.keys)[0]!;
  const chunk = Number(values.chunk);
  const value = valueOf(Number(values["value-size"]));
  const encoder = new TextEncoder();
  const key = (i: number) => encoder.encode(keyOf(i));
  const dir = await tempDir();

  console.log(`Deno KV backend: ${machineLine()}`);
  console.log(
    `${keys} keys of 16 bytes, ${value.length}-byte values, ${chunk} entries per call, temporary file\n`,
  );
  console.log("| operation | entries | seconds | entries/s | CPU s |");
  console.log("| --------- | ------: | ------: | --------: | ----: |");
  const row = (name: string, n: number, t: number, cpu: number) => {
    const s = (performance.now() - t) / 1000;
    console.log(
      `| ${name} | ${thousands(n)} | ${s.toFixed(2)} | ${thousands(n / s)} | ${
        (cpuSecondsOf(Deno.pid) - cpu).toFixed(2)
      } |`,
    );
  };

  let filled: KvDatabase | undefined;
  for (const variant of ["apply", "merge"] as const) {
    const db = await KvDatabase.open(`${dir}/${variant}.sqlite3`);
    await db.state();
    const t = performance.now();
    const cpu = cpuSecondsOf(Deno.pid);
    for (let i = 0; i < keys; i += chunk) {
      const n = Math.min(chunk, keys - i);
      if (variant === "apply") {
        await db.apply(Array.from({ length: n }, (_, j) => ({
          seq: i + j + 1,
          op: WriteOp.SET,
          key: key(i + j),
          value,
        })));
      } else {
        await db.merge(Array.from({ length: n }, (_, j) => ({
          key: key(i + j),
          value,
          version: i + j + 1,
        })));
      }
    }
    row(
      variant === "apply"
        ? "apply() into an empty store (group commit)"
        : "merge() into an empty store (sync target)",
      keys,
      t,
      cpu,
    );
    if (variant === "apply") filled = db;
    else await db.close();
  }
  try {
    let t = performance.now();
    let cpu = cpuSecondsOf(Deno.pid);
    const counted = await filled!.count();
    row("count()", counted, t, cpu);
    t = performance.now();
    cpu = cpuSecondsOf(Deno.pid);
    let entries = 0;
    for await (const part of filled!.snapshot({ chunkBytes: 256 * 1024 })) {
      entries += part.length;
    }
    row("snapshot() (sync source)", entries, t, cpu);
  } finally {
    await filled!.close();
  }
});
