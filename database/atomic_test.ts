// The evaluation of atomic operations (database/_atomic.ts), step by step,
// against a map standing for a database's state.

import assert from "node:assert/strict";
import {
  AtomicFlag,
  type AtomicStep,
  MAX_VALUE_SIZE,
  SetFlag,
  StepKind,
  WriteOp,
} from "../protocol/mod.ts";
import { evaluate, formatFloat } from "./_atomic.ts";
import type { StoredEntry } from "./types.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const k = (text: string) => encoder.encode(text);

function state(entries: Record<string, [string, number]>) {
  const map = new Map<string, StoredEntry>();
  for (const [key, [value, version]] of Object.entries(entries)) {
    map.set(key, { value: encoder.encode(value), version });
  }
  // Answers later, as a Deno KV database would.
  return (key: Uint8Array) =>
    Promise.resolve(map.get(decoder.decode(key)) ?? null);
}

function text(results: { kind: string; value?: unknown; message?: string }[]) {
  return results.map((r) =>
    r.kind === "bytes"
      ? decoder.decode(r.value as Uint8Array)
      : r.kind === "integer"
      ? `:${r.value}`
      : r.kind === "error"
      ? `!${r.message}`
      : "nil"
  );
}

Deno.test("evaluate: a check anywhere decides for every step", async () => {
  const read = state({ a: ["1", 5] });
  const steps: AtomicStep[] = [
    { kind: StepKind.SET, key: k("b"), value: k("x"), flags: 0 },
    { kind: StepKind.CHECK, key: k("a"), version: 4 },
  ];
  const failed = await evaluate(9, 0, steps, read);
  assert.deepEqual(failed, {
    reply: { committed: false, version: 9, results: [] },
    effects: [],
    ids: [],
  });
  steps[1] = { kind: StepKind.CHECK, key: k("a"), version: 5 };
  const held = await evaluate(9, 0, steps, read);
  assert.equal(held.reply.committed, true);
  assert.deepEqual(held.effects, [
    { seq: 9, op: WriteOp.SET, key: k("b"), value: k("x") },
  ]);
  const absent = await evaluate(9, 0, [
    { kind: StepKind.CHECK, key: k("c"), version: null },
    { kind: StepKind.CHECK, key: k("a"), version: null },
  ], read);
  assert.equal(absent.reply.committed, false);
});

Deno.test("evaluate: SET conditions and GET, DELETE's count, later steps see earlier ones", async () => {
  const read = state({ a: ["old", 1] });
  const { reply, effects } = await evaluate(2, 0, [
    { kind: StepKind.SET, key: k("a"), value: k("nx"), flags: SetFlag.NX },
    { kind: StepKind.SET, key: k("b"), value: k("xx"), flags: SetFlag.XX },
    {
      kind: StepKind.SET,
      key: k("a"),
      value: k("new"),
      flags: SetFlag.GET,
    },
    { kind: StepKind.GET, key: k("a") },
    { kind: StepKind.DELETE, key: k("a") },
    { kind: StepKind.DELETE, key: k("a") },
    { kind: StepKind.GET, key: k("a") },
  ], read);
  assert.deepEqual(text(reply.results), [
    ":0",
    ":0",
    "old",
    "new",
    ":1",
    ":0",
    "nil",
  ]);
  // Only the end state is written: `a` deleted, `b` never created.
  assert.deepEqual(effects, [{ seq: 2, op: WriteOp.DELETE, key: k("a") }]);
});

Deno.test("evaluate: ADD, MIN, MAX and ADD_FLOAT on decimal text, with Redis's errors", async () => {
  const read = state({
    n: ["10", 1],
    w: ["word", 1],
    z: ["007", 1],
    big: ["9223372036854775807", 1],
    f: ["10.50", 1],
  });
  const { reply } = await evaluate(3, 0, [
    { kind: StepKind.ADD, key: k("n"), delta: -15n },
    { kind: StepKind.ADD, key: k("new"), delta: 2n },
    { kind: StepKind.ADD, key: k("w"), delta: 1n },
    { kind: StepKind.ADD, key: k("z"), delta: 1n },
    { kind: StepKind.ADD, key: k("big"), delta: 1n },
    { kind: StepKind.MIN, key: k("n"), delta: -7n },
    { kind: StepKind.MAX, key: k("n"), delta: -100n },
    { kind: StepKind.MAX, key: k("fresh"), delta: 4n },
    { kind: StepKind.ADD_FLOAT, key: k("f"), delta: "0.1" },
    { kind: StepKind.ADD_FLOAT, key: k("w"), delta: "1" },
  ], read);
  assert.deepEqual(text(reply.results), [
    ":-5",
    ":2",
    "!ERR value is not an integer or out of range",
    "!ERR value is not an integer or out of range",
    "!ERR increment or decrement would overflow",
    ":-7",
    ":-7",
    ":4",
    "10.6",
    "!ERR value is not a valid float",
  ]);
  assert.equal(reply.committed, true);
});

Deno.test("evaluate: ALL_OR_NOTHING turns a failed step into no write at all", async () => {
  const read = state({ w: ["word", 1] });
  const steps: AtomicStep[] = [
    { kind: StepKind.SET, key: k("side"), value: k("x"), flags: 0 },
    { kind: StepKind.ADD, key: k("w"), delta: 1n },
  ];
  const redis = await evaluate(4, 0, steps, read);
  assert.equal(redis.effects.length, 1);
  const all = await evaluate(4, AtomicFlag.ALL_OR_NOTHING, steps, read);
  assert.equal(all.reply.committed, false);
  assert.deepEqual(all.effects, []);
  assert.equal(all.reply.results[1]?.kind, "error");
});

Deno.test("evaluate: APPEND past the value limit, and writes past the operation's budget, are refused", async () => {
  const half = "x".repeat(MAX_VALUE_SIZE / 2 + 1);
  const read = state({ a: [half, 1], b: [half, 1], c: [half, 1] });
  const grown = await evaluate(5, 0, [
    { kind: StepKind.APPEND, key: k("a"), value: encoder.encode(half) },
  ], read);
  assert.match(text(grown.reply.results)[0]!, /exceeds maximum allowed size/);
  const three = await evaluate(5, 0, [
    { kind: StepKind.APPEND, key: k("a"), value: k("!") },
    { kind: StepKind.APPEND, key: k("b"), value: k("!") },
    { kind: StepKind.APPEND, key: k("c"), value: k("!") },
  ], read);
  assert.equal(three.reply.committed, false);
  assert.match(text(three.reply.results)[0]!, /more than the limit/);
  assert.deepEqual(three.effects, []);
});

Deno.test("formatFloat writes plain decimals, as INCRBYFLOAT does", () => {
  assert.equal(formatFloat(5200), "5200");
  assert.equal(formatFloat(10.6), "10.6");
  assert.equal(formatFloat(-0.5), "-0.5");
  assert.equal(formatFloat(1e21), "1000000000000000000000");
  assert.equal(formatFloat(1.5e-7), "0.00000015");
});

Deno.test("evaluate: integers of up to 15 digits and longer ones parse alike", async () => {
  for (
    const [text, ok] of [
      ["0", true],
      ["-0", false],
      ["007", false],
      ["-", false],
      ["", false],
      ["12a", false],
      ["999999999999999", true],
      ["-999999999999999", true],
      ["1234567890123456", true],
      ["-9223372036854775808", true],
      ["9223372036854775808", false],
    ] as const
  ) {
    const read = state({ n: [text, 1] });
    const { reply } = await evaluate(
      2,
      0,
      [{ kind: StepKind.ADD, key: k("n"), delta: 0n }],
      read,
    );
    const result = reply.results[0]!;
    assert.equal(result.kind === "integer", ok, JSON.stringify(text));
    if (ok && result.kind === "integer") {
      assert.equal(result.value, BigInt(text));
    }
  }
});
