// One Deno program of bench/kv_connect.ts: opens a Deno KV (a URL or a file),
// waits until the start time it is given, then repeats one operation until
// the end time and prints how many it completed.
//
//   deno run -A --unstable-kv bench/_kv_worker.ts TARGET OP START END ID

const [target, op, start, end, id] = Deno.args;
const kv = await Deno.openKv(target);
const me = Number(id);
// Keys the gets find: written before the start.
if (op === "get") await kv.set(["bench", me, 0], "v".repeat(100));
await new Promise((resolve) => setTimeout(resolve, Number(start) - Date.now()));
let count = 0;
const stop = Number(end);
while (Date.now() < stop) {
  if (op === "set") {
    await kv.set(["bench", me, count % 1000], "v".repeat(100));
  } else if (op === "get") {
    await kv.get(["bench", me, 0]);
  } else {
    await kv.atomic().sum(["bench", "counter", me], 1n).commit();
  }
  count++;
}
kv.close();
console.log(count);
