// The quick default benchmark set (`deno task bench`): end-to-end write
// throughput for memory, Deno KV with and without group commit, then full
// sync of 100,000 keys in each direction. About two minutes. Each script
// runs in a process of its own, so that one's memory does not colour the
// other's; see BENCHMARKS.md for the full set and each script's flags.
//
//   deno run -A bench/run.ts

const scripts: string[][] = [
  ["bench/kv_writes.ts"],
  ["bench/sync.ts", "--keys", "100k"],
];

const root = new URL("..", import.meta.url).pathname;
let failed = false;
for (const args of scripts) {
  console.log(`\n$ deno run -A ${args.join(" ")}\n`);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", `${root}deno.json`, ...args],
    cwd: root,
    stdin: "null",
  }).spawn();
  // Forward Ctrl-C to the script, which cleans up after itself.
  const forward = () => {
    try {
      child.kill("SIGINT");
    } catch {
      // Already gone.
    }
  };
  Deno.addSignalListener("SIGINT", forward);
  const status = await child.status;
  Deno.removeSignalListener("SIGINT", forward);
  if (!status.success) {
    console.error(`${args[0]} failed (exit code ${status.code})`);
    failed = true;
    if (status.code === 130) break;
  }
}
Deno.exit(failed ? 1 : 0);
