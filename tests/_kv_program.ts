// A Deno program that uses KVNDB through Deno's own KV client, as any
// program would: `deno run --unstable-kv tests/_kv_program.ts URL MODE`.
// It prints one JSON object of what it saw; tests/kv_connect_test.ts runs it
// in a subprocess and checks the object.

const [url, mode = "tour", ...rest] = Deno.args;
const kv = await Deno.openKv(url);
const out: Record<string, unknown> = {};

function show(value: unknown): unknown {
  if (value instanceof Deno.KvU64) return `u64:${value.value}`;
  if (value instanceof Uint8Array) return `bytes:${[...value].join(",")}`;
  return value;
}

async function keysOf(
  selector: Deno.KvListSelector,
  options?: Deno.KvListOptions,
): Promise<unknown[]> {
  const keys: unknown[] = [];
  for await (const entry of kv.list(selector, options)) keys.push(entry.key);
  return keys;
}

if (mode === "tour") {
  const first = await kv.set(["users", 1], { name: "Ada", born: 1815 });
  out.set = first.ok && first.versionstamp.length === 20;
  const entry = await kv.get<{ name: string }>(["users", 1]);
  out.get = entry.value;
  out.sameVersionstamp = entry.versionstamp === first.versionstamp;
  await kv.set(["users", 2], "Grace");
  await kv.set(["users", 3], new Uint8Array([1, 2, 3]));
  await kv.set(["users", 4], 4.5);
  out.missing = (await kv.get(["users", 99])).versionstamp;
  out.many = (await kv.getMany([["users", 2], ["users", 99], ["users", 3]]))
    .map((e) => show(e.value));
  out.list = await keysOf({ prefix: ["users"] });
  out.reverse = await keysOf({ prefix: ["users"] }, {
    reverse: true,
    limit: 2,
  });
  out.range = await keysOf({ start: ["users", 2], end: ["users", 4] });
  // Paging past one batch of the client's (100): 250 keys, 3 pages.
  // (Two atomic writes: KVNDB takes at most 128 mutations in one.)
  const atomic = kv.atomic();
  for (let i = 0; i < 125; i++) atomic.set(["many", i], i);
  await atomic.commit();
  const second = kv.atomic();
  for (let i = 125; i < 250; i++) second.set(["many", i], i);
  await second.commit();
  const many = await keysOf({ prefix: ["many"] });
  out.paged = many.length;
  out.pagedInOrder = many.every((k, i) => (k as unknown[])[1] === i);
  // A cursor: the first page, then on from where it stopped.
  const page = kv.list({ prefix: ["many"] }, { limit: 10 });
  for await (const _ of page) { /* the first 10 */ }
  const next: unknown[] = [];
  for await (
    const e of kv.list({ prefix: ["many"] }, { limit: 3, cursor: page.cursor })
  ) next.push(e.key[1]);
  out.cursor = next;
  // Checks that hold and that fail.
  const stale = await kv.atomic().check({
    key: ["users", 1],
    versionstamp: null,
  }).set(["users", 1], "x").commit();
  out.staleCheck = stale.ok;
  const fresh = await kv.atomic().check(entry).set(["users", 1], {
    name: "Ada Lovelace",
  }).delete(["users", 2]).commit();
  out.freshCheck = fresh.ok;
  out.afterCheck = [
    (await kv.get(["users", 1])).value,
    (await kv.get(["users", 2])).value,
  ];
  // Sums, minimums and maximums of Deno.KvU64.
  await kv.atomic().sum(["n"], 5n).sum(["n"], 3n).commit();
  await kv.atomic().max(["hi"], 7n).max(["hi"], 4n).min(["lo"], 7n).min(
    ["lo"],
    4n,
  ).commit();
  await kv.atomic().sum(["wrap"], 0xffff_ffff_ffff_ffffn).sum(["wrap"], 2n)
    .commit();
  out.u64 = [
    show((await kv.get(["n"])).value),
    show((await kv.get(["hi"])).value),
    show((await kv.get(["lo"])).value),
    show((await kv.get(["wrap"])).value),
  ];
  try {
    await kv.atomic().sum(["users", 1], 1n).commit();
    out.sumOfObject = "no error";
  } catch (error) {
    out.sumOfObject = (error as Error).message;
  }
  // Versionstamped keys: the commit's versionstamp as the last key part.
  const stamped = await kv.atomic().set(
    ["log", kv.commitVersionstamp()],
    "entry",
  ).commit();
  const log = await keysOf({ prefix: ["log"] });
  out.versionstamped = stamped.ok &&
    (log[0] as unknown[])[1] === stamped.versionstamp;
  // Expiry: gone once expired.
  await kv.set(["temp"], "soon gone", { expireIn: 300 });
  out.beforeExpiry = (await kv.get(["temp"])).value;
  await new Promise((resolve) => setTimeout(resolve, 400));
  out.afterExpiry = (await kv.get(["temp"])).value;
  out.listAfterExpiry = await keysOf({ prefix: ["temp"] });
  await kv.delete(["users", 3]);
  out.deleted = (await kv.get(["users", 3])).value;
  // Watch: the current entry first, then each change.
  const stream = kv.watch([["w"]]);
  const reader = stream.getReader();
  const seen: unknown[] = [];
  seen.push((await reader.read()).value![0]!.value);
  await kv.set(["w"], "one");
  seen.push((await reader.read()).value![0]!.value);
  await kv.set(["w"], "two");
  seen.push((await reader.read()).value![0]!.value);
  await kv.delete(["w"]);
  seen.push((await reader.read()).value![0]!.value);
  await reader.cancel();
  out.watch = seen;
  // Queues are refused, with a text that says so.
  try {
    await kv.enqueue("job");
    out.enqueue = "accepted";
  } catch (error) {
    out.enqueue = (error as Error).message;
  }
} else if (mode === "counter") {
  // Compare-and-set appends of this program's ids to one list, retried until
  // each commits. A write whose outcome is unknown (a 409) is settled by
  // reading the list: its id is there or not.
  const [name = "p", times = "25"] = rest;
  let conflicts = 0;
  for (let done = 0; done < Number(times);) {
    const id = `${name}-${done}`;
    try {
      const entry = await kv.get<string[]>(["counter"]);
      const result = await kv.atomic().check(entry).set(
        ["counter"],
        [...(entry.value ?? []), id],
      ).commit();
      if (result.ok) done++;
      else conflicts++;
    } catch (error) {
      out.lastError = (error as Error).message;
      const list = (await kv.get<string[]>(["counter"])).value ?? [];
      if (list.includes(id)) done++;
    }
  }
  out.conflicts = conflicts;
} else if (mode === "long") {
  // Keys as long as Deno takes (2,048 bytes encoded: 6 for "long", 2,031 + 2
  // for the text, 9 for the number), twenty of them sharing their first
  // 2,039 bytes, between a shorter key and a later one.
  const text = "a".repeat(2031);
  const atomic = kv.atomic();
  for (let i = 19; i >= 0; i--) atomic.set(["long", text, i], i);
  atomic.set(["long", "a".repeat(1690)], "shorter");
  atomic.set(["long", "b"], "later");
  out.commit = (await atomic.commit()).ok;
  const bucket = { prefix: ["long", text] };
  // Several times each, so that both databases serve them.
  const lists: string[] = [];
  for (let round = 0; round < 4; round++) {
    lists.push(JSON.stringify({
      all: (await keysOf({ prefix: ["long"] })).map((k) =>
        (k as unknown[]).slice(1).map((p) =>
          typeof p === "string" ? p.length : p
        )
      ),
      reverse: (await keysOf(bucket, { reverse: true, limit: 3 })).map((k) =>
        (k as unknown[])[2]
      ),
      range: (await keysOf({
        start: ["long", text, 5],
        end: ["long", text, 9],
      })).map((k) => (k as unknown[])[2]),
    }));
  }
  out.sameEachTime = lists.every((l) => l === lists[0]);
  Object.assign(out, JSON.parse(lists[0]!));
  // Paging through the bucket with a cursor, three at a time.
  const paged: unknown[] = [];
  let cursor: string | undefined;
  do {
    const page = kv.list(bucket, { limit: 3, cursor });
    let n = 0;
    for await (const e of page) {
      paged.push(e.key[2]);
      n++;
    }
    cursor = n === 3 ? page.cursor : undefined;
  } while (cursor);
  out.paged = paged;
  out.many = (await kv.getMany([["long", text, 7], ["long", text, 20]])).map(
    (e) => e.value,
  );
  // A check on a long key, and a versionstamped long key.
  const seven = await kv.get(["long", text, 7]);
  out.check = (await kv.atomic().check(seven).set(["long", text, 7], "seven")
    .commit()).ok;
  out.staleCheck = (await kv.atomic().check(seven).set(["long", text, 7], "x")
    .commit()).ok;
  const stamped = await kv.atomic().set(
    ["long", "c".repeat(2000), kv.commitVersionstamp()],
    "stamped",
  ).commit();
  const stampedKeys = await keysOf({ prefix: ["long", "c".repeat(2000)] });
  out.versionstamped = stamped.ok &&
    (stampedKeys[0] as unknown[])[2] === stamped.versionstamp;
  await kv.delete(["long", text, 0]);
  out.afterDelete = (await kv.get(["long", text, 0])).value;
  out.value = (await kv.get(["long", text, 7])).value;
} else if (mode === "read") {
  out.value = (await kv.get([rest[0]!])).value;
}

kv.close();
console.log(JSON.stringify(out));
