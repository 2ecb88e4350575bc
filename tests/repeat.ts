// Runs the whole test suite again and again, optionally with every core kept
// busy, and counts the runs that passed: the way to show that `deno task test`
// is green every time, not just once.
//
//   deno task test:repeat [RUNS] [--load N]
//
// RUNS defaults to 20. `--load N` starts N busy-looping processes for as long
// as the runs last (N = 2 fills both cores of the CI machine). The output of
// every failed run is kept in a temporary folder, named at the end.

import { parseArgs } from "node:util";

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    load: { type: "string", default: "0" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  console.log(
    "Usage: deno task test:repeat [RUNS] [--load N]\n" +
      "Runs `deno task test` RUNS times (default 20), with N busy processes " +
      "beside it (default 0), and prints how many runs passed.",
  );
  Deno.exit(0);
}
const runs = Number(positionals[0] ?? 20);
const load = Number(values.load);
if (
  !Number.isInteger(runs) || runs < 1 || !Number.isInteger(load) || load < 0
) {
  console.error("RUNS must be a whole number ≥ 1 and --load one ≥ 0");
  Deno.exit(2);
}

const root = new URL("..", import.meta.url).pathname;
const busy = Array.from(
  { length: load },
  () =>
    new Deno.Command(Deno.execPath(), {
      args: ["eval", "for (;;) {}"],
      stdout: "null",
      stderr: "null",
    }).spawn(),
);
const kept = await Deno.makeTempDir({ prefix: "kvndb-repeat-" });
let passed = 0;
const failures: string[] = [];
try {
  for (let run = 1; run <= runs; run++) {
    const started = performance.now();
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["test", "-A", "--doc", "--parallel"],
      cwd: root,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const seconds = ((performance.now() - started) / 1000).toFixed(0);
    const text = new TextDecoder().decode(output.stdout) +
      new TextDecoder().decode(output.stderr);
    if (output.success) {
      passed++;
      console.log(`run ${run}/${runs}: passed in ${seconds} s`);
    } else {
      const file = `${kept}/run-${run}.log`;
      await Deno.writeTextFile(file, text);
      // deno test lists the failed tests under "ERRORS" as "name => file:line".
      const failed = [...new Set(text.match(/^.+ => \S+:\d+:\d+$/gm) ?? [])];
      failures.push(`run ${run}: ${failed.join("; ") || "see the log"}`);
      console.log(
        `run ${run}/${runs}: FAILED in ${seconds} s (${file})\n  ${
          failed.join("\n  ")
        }`,
      );
    }
  }
} finally {
  for (const child of busy) {
    child.kill("SIGKILL");
    await child.status;
  }
}
if (failures.length === 0) await Deno.remove(kept, { recursive: true });
console.log(
  `test:repeat (${load} busy processes): ${passed} passed, ${failures.length} failed`,
);
for (const failure of failures) console.log(`  ${failure}`);
Deno.exit(failures.length === 0 ? 0 : 1);
