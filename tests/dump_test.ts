// kvndb dump and restore: a round trip of 10,000 keys through the command
// line, a dump consistent at its sequence number while writes go on, and a
// restore that stops at a malformed line.

import assert from "node:assert/strict";
import { dump, type DumpLine, dumpLine, restore } from "../cli/dump.ts";
import { Cluster } from "./_cluster.ts";
import { runKvndb } from "./_process.ts";

/** The dump's lines without the header and without versions. */
function contents(text: string): string[] {
  const lines = text.trim().split("\n");
  const header = JSON.parse(lines[0]!);
  assert.equal(header.kvndb, "dump");
  return lines.slice(1).map((line) => {
    const { version: _, ...rest } = JSON.parse(line) as DumpLine;
    return JSON.stringify(rest);
  });
}

Deno.test("dump, restore into an empty cluster, dump again: the same 10,000 keys, binary ones and expiring ones included", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kvndb-dump-" });
  try {
    await using source = await Cluster.start({ databases: 2 });
    const client = await source.client();
    const later = Date.now() + 3_600_000;
    for (let i = 0; i < 10_000; i += 100) {
      const operation = client.atomic();
      for (let j = i; j < i + 100; j++) {
        const key = j % 10 === 0
          ? new Uint8Array([0xff, j >> 8, j & 0xff, 0])
          : `key:${j}`;
        const value = j % 7 === 0
          ? new Uint8Array([0x80, j & 0xff, 0xfe])
          : `value ${j} ✓`;
        operation.set(
          key,
          value,
          j % 5 === 0 ? { expireAt: later } : undefined,
        );
      }
      await operation.commit();
    }
    const first = `${dir}/first.ndjson`;
    const dumped = await runKvndb([
      "dump",
      "127.0.0.1",
      String(source.port),
      "-o",
      first,
    ]);
    assert.equal(dumped.code, 0, dumped.stderr);
    assert.match(dumped.stderr, /Dumped 10000 keys at sequence \d+/);
    const text = await Deno.readTextFile(first);
    assert.match(text, /"keyEncoding":"base64"/);
    assert.match(text, /"valueEncoding":"base64"/);
    assert.match(text, new RegExp(`"expiresAt":${later}`));

    await using target = await Cluster.start({ databases: 1 });
    const restored = await runKvndb([
      "restore",
      "127.0.0.1",
      String(target.port),
      "-i",
      first,
    ]);
    assert.equal(restored.code, 0, restored.stderr);
    assert.match(restored.stderr, /Restored 10000 keys/);
    const again = await runKvndb(["dump", "127.0.0.1", String(target.port)]);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(contents(again.stdout), contents(text));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a dump taken while writes go on is consistent at its sequence number", async () => {
  await using cluster = await Cluster.start({ databases: 2 });
  const client = await cluster.client();
  // Every write's sequence number and value, by key.
  const history = new Map<string, [number, string | null][]>();
  const record = (key: string, seq: number, value: string | null) => {
    const list = history.get(key) ?? [];
    list.push([seq, value]);
    history.set(key, list);
  };
  for (let i = 0; i < 3_000; i++) {
    record(`k${i}`, await client.set(`k${i}`, `start ${i}`), `start ${i}`);
  }
  let writing = true;
  const writer = (async () => {
    for (let i = 0; writing; i++) {
      const key = `k${(i * 37) % 4_000}`;
      if (i % 5 === 4) record(key, await client.delete(key), null);
      else record(key, await client.set(key, `write ${i}`), `write ${i}`);
    }
  })();
  const chunks: Uint8Array[] = [];
  const output = new WritableStream<Uint8Array>({
    write(chunk) {
      chunks.push(chunk);
    },
  }).getWriter();
  const dumper = await cluster.client();
  const { sequence } = await dump(dumper, { output });
  writing = false;
  await writer;
  const lines = new TextDecoder().decode(
    new Uint8Array(chunks.flatMap((chunk) => [...chunk])),
  ).trim().split("\n").slice(1).map((line) => JSON.parse(line) as DumpLine);
  const dumped = new Map(lines.map((line) => [line.key, line.value]));
  // The state at the dump's sequence number, from the history.
  const expected = new Map<string, string>();
  for (const [key, writes] of history) {
    let value: string | null = null;
    for (const [seq, written] of writes) if (seq <= sequence) value = written;
    if (value !== null) expected.set(key, value);
  }
  assert.ok(
    [...history.values()].some((writes) =>
      writes.some(([seq]) => seq > sequence)
    ),
    "writes went on after the dump's sequence number",
  );
  assert.deepEqual(
    [...dumped].sort(),
    [...expected].sort(),
  );
});

Deno.test("restore stops at a malformed line, names it, and writes nothing from there on", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kvndb-dump-" });
  try {
    await using cluster = await Cluster.start({ databases: 1 });
    const file = `${dir}/bad.ndjson`;
    await Deno.writeTextFile(
      file,
      [
        JSON.stringify({
          kvndb: "dump",
          format: 1,
          cluster: "00",
          sequence: 3,
          date: new Date().toISOString(),
        }),
        JSON.stringify({ key: "a", value: "1", version: 1 }),
        JSON.stringify({ key: "b", value: "2", version: 2 }),
        '{"key": "c", "value": ',
        JSON.stringify({ key: "d", value: "4", version: 4 }),
      ].join("\n") + "\n",
    );
    const result = await runKvndb([
      "restore",
      "127.0.0.1",
      String(cluster.port),
      "-i",
      file,
    ]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /Line 4: not JSON/);
    const client = await cluster.client();
    assert.equal(await client.get("d"), null);
    assert.equal(await client.get("c"), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("restore of long keys, over them again with replace, in atomic operations the databases take", async () => {
  await using cluster = await Cluster.start({ databases: 1 });
  const client = await cluster.client();
  const later = Date.now() + 3_600_000;
  const key = (i: number) =>
    `${String(i).padStart(4, "0")}:${"k".repeat(3000)}`;
  const lines = [
    JSON.stringify({
      kvndb: "dump",
      format: 1,
      cluster: "00",
      sequence: 300,
      date: new Date().toISOString(),
    }),
    ...Array.from({ length: 300 }, (_, i) =>
      JSON.stringify({
        key: key(i),
        value: "v".repeat(1000),
        version: i + 1,
        ...(i % 2 ? { expiresAt: later } : {}),
      })),
  ];
  const input = () =>
    new Blob([lines.join("\n") + "\n"]).stream() as ReadableStream<Uint8Array>;
  assert.equal((await restore(client, input())).keys, 300);
  assert.equal(await client.count(), 300);
  // Deleting them all first takes as much care.
  assert.equal((await restore(client, input(), { replace: true })).keys, 300);
  assert.equal(await client.count(), 300);
  assert.equal((await client.get(key(299)))?.length, 1000);
});

Deno.test("a dump line keeps UTF-8 as text, and bytes that would not come back the same (a byte-order mark first, invalid UTF-8) as base64", () => {
  const line = (value: Uint8Array) =>
    JSON.parse(dumpLine({ key: new Uint8Array([97]), value, version: 1 }));
  assert.deepEqual(line(new TextEncoder().encode("é ✓")), {
    key: "a",
    value: "é ✓",
    version: 1,
  });
  assert.equal(
    line(new Uint8Array([0xef, 0xbb, 0xbf, 0x61])).valueEncoding,
    "base64",
  );
  assert.equal(line(new Uint8Array([0xc3])).valueEncoding, "base64");
});
