// Tests for the linearizability checker: hand-made histories with a known
// answer, properties over generated histories, a brute-force oracle for
// small ones, and a size the fault tests actually produce.

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  checkHistory,
  historyFromJson,
  historyToJson,
  loadHistory,
  type Operation,
  saveHistory,
} from "./_linearizability.ts";

/** A known set of `value` on `key` over [call, ret]. */
function set(
  client: number,
  value: string,
  [call, ret]: [number, number],
  key = "k",
): Operation {
  return { client, kind: "set", key, value, call, return: ret, status: "ok" };
}

/** A known delete of `key` over [call, ret]. */
function del(
  client: number,
  [call, ret]: [number, number],
  key = "k",
): Operation {
  return { client, kind: "delete", key, call, return: ret, status: "ok" };
}

/** A known get of `key` that read `output` over [call, ret]. */
function get(
  client: number,
  output: string | null,
  [call, ret]: [number, number],
  key = "k",
): Operation {
  return { client, kind: "get", key, output, call, return: ret, status: "ok" };
}

/** Marks an operation's outcome unknown, as a recorder does on a timeout. */
function lost(op: Operation): Operation {
  const { output: _, ...rest } = op;
  return { ...rest, return: Infinity, status: "unknown" };
}

Deno.test({
  name: "a sequential history is linearizable",
  permissions: "none",
  fn() {
    const result = checkHistory([
      get(0, null, [0, 1]),
      set(0, "a", [2, 3]),
      get(1, "a", [4, 5]),
      del(1, [6, 7]),
      get(0, null, [8, 9]),
      set(1, "b", [10, 11]),
      get(0, "b", [12, 13]),
    ]);
    assert.deepEqual(result, {
      ok: true,
      keys: 1,
      operations: 7,
      failures: [],
      timedOut: false,
      timedOutKeys: [],
    });
  },
});

Deno.test({
  name: "an empty history is linearizable",
  permissions: "none",
  fn() {
    const result = checkHistory([]);
    assert.equal(result.ok, true);
    assert.equal(result.keys, 0);
    assert.equal(result.operations, 0);
  },
});

Deno.test({
  name: "a get concurrent with a set may see either value",
  permissions: "none",
  fn() {
    for (const output of ["a", "b"]) {
      const result = checkHistory([
        set(0, "a", [0, 1]),
        set(1, "b", [2, 10]),
        get(2, output, [3, 9]),
      ]);
      assert.equal(result.ok, true, `reading ${output}`);
    }
  },
});

Deno.test({
  name: "a stale read after a completed write is not linearizable",
  permissions: "none",
  fn() {
    const history = [
      set(0, "a", [0, 1]),
      set(0, "b", [2, 3]),
      get(1, "a", [4, 5]),
    ];
    const result = checkHistory(history);
    assert.equal(result.ok, false);
    assert.equal(result.timedOut, false);
    assert.equal(result.failures.length, 1);
    const [failure] = result.failures;
    assert.equal(failure?.key, "k");
    assert.deepEqual(failure?.operations, history);
    assert.match(failure?.reason ?? "", /No linearization exists/);
    assert.match(failure?.reason ?? "", /client 1 get -> "a"/);
  },
});

Deno.test({
  name: "a read of a value never written is not linearizable",
  permissions: "none",
  fn() {
    const result = checkHistory([
      set(0, "a", [0, 1]),
      get(1, "z", [0, 5]),
    ]);
    assert.equal(result.ok, false);
    assert.match(result.failures[0]?.reason ?? "", /never written/);
  },
});

Deno.test({
  name:
    "a get that returns the old value after a completed delete is not linearizable",
  permissions: "none",
  fn() {
    const result = checkHistory([
      set(0, "a", [0, 1]),
      del(0, [2, 3]),
      get(1, "a", [4, 5]),
    ]);
    assert.equal(result.ok, false);
  },
});

Deno.test({
  name: "a get that misses a completed set is not linearizable",
  permissions: "none",
  fn() {
    const result = checkHistory([set(0, "a", [0, 1]), get(1, null, [2, 3])]);
    assert.equal(result.ok, false);
  },
});

Deno.test({
  name: "an unknown-outcome write that a later read sees is linearizable",
  permissions: "none",
  fn() {
    const result = checkHistory([
      set(0, "a", [0, 1]),
      lost(set(1, "b", [2, 3])),
      get(0, "a", [10, 11]),
      get(0, "b", [100, 101]),
      get(2, "b", [200, 201]),
    ]);
    assert.equal(result.ok, true);
  },
});

Deno.test({
  name: "an unknown-outcome write that no read ever sees is linearizable",
  permissions: "none",
  fn() {
    const result = checkHistory([
      set(0, "a", [0, 1]),
      lost(set(1, "b", [2, 3])),
      lost(del(1, [4, 5])),
      get(0, "a", [10, 11]),
      get(2, "a", [200, 201]),
    ]);
    assert.equal(result.ok, true);
  },
});

Deno.test({
  name: "an unknown-outcome write cannot take effect before its call",
  permissions: "none",
  fn() {
    const result = checkHistory([
      get(0, "b", [0, 1]),
      lost(set(1, "b", [2, 3])),
    ]);
    assert.equal(result.ok, false);
  },
});

Deno.test({
  name: "an unknown-outcome write takes effect at most once",
  permissions: "none",
  fn() {
    const result = checkHistory([
      lost(set(1, "b", [0, 1])),
      get(0, "b", [2, 3]),
      set(0, "a", [4, 5]),
      get(0, "b", [6, 7]),
    ]);
    assert.equal(result.ok, false);
  },
});

Deno.test({
  name:
    "two unknown-outcome writes of one value can explain two separate reads",
  permissions: "none",
  fn() {
    const history = [
      lost(set(1, "b", [0, 1])),
      get(0, "b", [2, 3]),
      set(0, "a", [4, 5]),
      get(0, "b", [6, 7]),
    ];
    assert.equal(checkHistory(history).ok, false);
    assert.equal(
      checkHistory([lost(set(2, "b", [0, 1])), ...history]).ok,
      true,
    );
  },
});

Deno.test({
  name: "an unknown-outcome get is dropped whatever it carries",
  permissions: "none",
  fn() {
    const result = checkHistory([
      set(0, "a", [0, 1]),
      { ...get(1, "nonsense", [2, 3]), return: Infinity, status: "unknown" },
    ]);
    assert.equal(result.ok, true);
    assert.equal(result.operations, 1);
  },
});

Deno.test({
  name: "keys are checked independently and only the bad one fails",
  permissions: "none",
  fn() {
    const result = checkHistory([
      set(0, "a", [0, 1], "x"),
      set(0, "b", [0, 1], "y"),
      get(1, "a", [2, 3], "x"),
      get(1, null, [2, 3], "z"),
      get(1, "b", [2, 3], "y"),
      get(2, "a", [4, 5], "y"),
    ]);
    assert.equal(result.ok, false);
    assert.equal(result.keys, 3);
    assert.equal(result.operations, 6);
    assert.deepEqual(result.failures.map((failure) => failure.key), ["y"]);
    assert.equal(result.failures[0]?.operations.length, 3);
  },
});

Deno.test({
  name:
    "two readers that see overlapping writes in opposite orders are not linearizable",
  permissions: "none",
  fn() {
    const result = checkHistory([
      set(0, "a", [0, 100]),
      set(1, "b", [0, 100]),
      get(2, "a", [10, 20]),
      get(2, "b", [30, 40]),
      get(3, "b", [10, 20]),
      get(3, "a", [30, 40]),
    ]);
    assert.equal(result.ok, false);
    // One reader alone is fine: the writes may take effect in its order.
    const oneReader = checkHistory([
      set(0, "a", [0, 100]),
      set(1, "b", [0, 100]),
      get(2, "a", [10, 20]),
      get(2, "b", [30, 40]),
    ]);
    assert.equal(oneReader.ok, true);
  },
});

Deno.test({
  name: "operations whose intervals only touch count as concurrent",
  permissions: "none",
  fn() {
    const result = checkHistory([set(0, "a", [0, 5]), get(1, null, [5, 6])]);
    assert.equal(result.ok, true);
  },
});

Deno.test({
  name: "an initial value per key is the register's starting state",
  permissions: "none",
  fn() {
    const history = [get(0, "start", [0, 1]), get(0, null, [0, 1], "other")];
    assert.equal(checkHistory(history).ok, false);
    assert.equal(checkHistory(history, { initial: { k: "start" } }).ok, true);
    assert.equal(
      checkHistory(history, { initial: new Map([["k", "start"]]) }).ok,
      true,
    );
    assert.equal(
      checkHistory([get(0, null, [0, 1])], { initial: { k: "start" } }).ok,
      false,
    );
  },
});

Deno.test({
  name: "malformed operations are rejected with an error naming them",
  permissions: "none",
  fn() {
    const { value: _, ...noValue } = set(0, "a", [0, 1]);
    assert.throws(() => checkHistory([noValue]), {
      name: "TypeError",
      message: "Operation 0 is a set without a string value",
    });
    const { output: __, ...noOutput } = get(0, "a", [0, 1]);
    assert.throws(() => checkHistory([set(0, "a", [0, 1]), noOutput]), {
      name: "TypeError",
      message: "Operation 1 is a known get without an output",
    });
    assert.throws(
      () => checkHistory([{ ...set(0, "a", [0, 1]), return: Infinity }]),
      RangeError,
    );
    assert.throws(() => checkHistory([set(0, "a", [5, 1])]), RangeError);
  },
});

Deno.test({
  name:
    "a search that runs out of its time budget reports a timeout, not a failure",
  permissions: "none",
  fn() {
    // Twenty-four overlapping writes of distinct values, then two reads
    // that disagree once every write is done: unlinearizable, but only an
    // exhaustive search over the orders of the writes can tell.
    const history: Operation[] = [];
    for (let i = 0; i < 24; i++) history.push(set(i, `v${i}`, [0, 100]));
    history.push(get(30, "v0", [200, 201]), get(30, "v1", [202, 203]));
    history.push(set(0, "fine", [0, 1], "other"));
    const started = performance.now();
    const result = checkHistory(history, { timeoutMs: 50 });
    assert.ok(performance.now() - started < 2000);
    assert.equal(result.ok, true);
    assert.equal(result.timedOut, true);
    assert.deepEqual(result.timedOutKeys, ["k"]);
    assert.equal(result.keys, 2);
  },
});

Deno.test({
  name: "a history survives a JSON round trip, unknown returns included",
  permissions: "none",
  fn() {
    const history = [
      set(0, "a", [0.5, 1.25], "x"),
      lost(set(1, "b", [2, 3], "x")),
      del(2, [4, 5], "y"),
      get(3, null, [6, 7], "y"),
      get(3, "a", [8, 9], "x"),
    ];
    const text = historyToJson(history);
    assert.doesNotMatch(text, /Infinity/);
    assert.deepEqual(historyFromJson(text), history);
    assert.throws(() => historyFromJson("[]"), TypeError);
    assert.throws(
      () =>
        historyFromJson('{"operations":[{"client":0,"kind":"set","key":"k"}]}'),
      TypeError,
    );
  },
});

Deno.test("saveHistory() writes a file that loadHistory() replays", async () => {
  const path = await Deno.makeTempFile({ suffix: ".json" });
  try {
    const history = [
      set(0, "a", [0, 1]),
      set(0, "b", [2, 3]),
      get(1, "a", [4, 5]),
    ];
    const failure = checkHistory(history).failures[0];
    assert.ok(failure);
    await saveHistory(path, failure.operations);
    const replayed = await loadHistory(path);
    assert.deepEqual(replayed, history);
    assert.equal(checkHistory(replayed).ok, false);
  } finally {
    await Deno.remove(path);
  }
});

// ---------------------------------------------------------------------------
// Generated histories.

/** One step of a generated run, before it is turned into an operation. */
interface Step {
  kind: "get" | "set" | "delete";
  key: string;
  value: string;
  client: number;
  before: number;
  after: number;
  fate: "ok" | "unknown-applied" | "unknown-lost";
}

const stepArbitrary: fc.Arbitrary<Step> = fc.record({
  kind: fc.constantFrom("get", "set", "delete"),
  key: fc.constantFrom("a", "b", "c"),
  value: fc.constantFrom("x", "y", "z"),
  client: fc.integer({ min: 0, max: 7 }),
  before: fc.integer({ min: 0, max: 30 }),
  after: fc.integer({ min: 0, max: 30 }),
  fate: fc.constantFrom("ok", "ok", "ok", "unknown-applied", "unknown-lost"),
});

/**
 * Runs `steps` one at a time on a Map, step i taking effect at time 10·i,
 * and records each as an operation whose interval contains that moment.
 * A lost step is recorded as unknown but never applied.
 */
function recordRun(steps: readonly Step[], widen: boolean): Operation[] {
  const model = new Map<string, string>();
  return steps.map((step, i) => {
    const at = 10 * i;
    const call = widen ? at - step.before : at;
    const ret = widen ? at + step.after : at + 5;
    const base = { client: step.client, key: step.key, call, return: ret };
    const applied = step.fate !== "unknown-lost";
    const status = step.fate === "ok" ? "ok" as const : "unknown" as const;
    const end = status === "ok" ? ret : Infinity;
    switch (step.kind) {
      case "get":
        return status === "ok"
          ? {
            ...base,
            kind: "get",
            output: model.get(step.key) ?? null,
            status,
          }
          : { ...base, kind: "get", return: end, status };
      case "set":
        if (applied) model.set(step.key, step.value);
        return { ...base, kind: "set", value: step.value, return: end, status };
      case "delete":
        if (applied) model.delete(step.key);
        return { ...base, kind: "delete", return: end, status };
    }
  });
}

Deno.test({
  name: "every history widened around a sequential run is accepted",
  permissions: "none",
  fn() {
    fc.assert(
      fc.property(
        fc.array(stepArbitrary, { maxLength: 80 }),
        fc.boolean(),
        (steps, shuffle) => {
          const history = recordRun(steps, true);
          // The checker must not depend on the order of its input.
          if (shuffle) history.reverse();
          const result = checkHistory(history, { timeoutMs: 5000 });
          assert.equal(result.timedOut, false);
          assert.deepEqual(result.failures, []);
          assert.equal(result.ok, true);
        },
      ),
      { numRuns: 300 },
    );
  },
});

Deno.test({
  name: "a sequential history with one get output changed is always rejected",
  permissions: "none",
  fn() {
    const outputs = ["x", "y", "z", "w", null];
    fc.assert(
      fc.property(
        fc.array(
          stepArbitrary.map((step) => ({ ...step, fate: "ok" as const })),
          { maxLength: 60 },
        ),
        fc.nat(),
        fc.nat({ max: outputs.length - 1 }),
        (steps, which, replacement) => {
          const history = recordRun(steps, false);
          if (!history.some((op) => op.kind === "get")) {
            const at = 10 * history.length;
            history.push(get(0, null, [at, at + 5], "a"));
            // Make the appended get correct before mutating it.
            const last = [...history].reverse().find((op) =>
              op.key === "a" && op.kind !== "get"
            );
            history[history.length - 1]!.output = last?.kind === "set"
              ? last.value!
              : null;
          }
          const gets = history.filter((op) => op.kind === "get");
          const victim = gets[which % gets.length]!;
          let output = outputs[replacement]!;
          if (output === victim.output) {
            output = outputs[(replacement + 1) % outputs.length]!;
          }
          victim.output = output;
          const result = checkHistory(history, { timeoutMs: 5000 });
          assert.equal(result.ok, false);
          assert.deepEqual(result.failures.map((f) => f.key), [victim.key]);
        },
      ),
      { numRuns: 300 },
    );
  },
});

/**
 * The definition, by brute force: is there an order of the known
 * operations and some unknown writes, each placed after every operation
 * that returned before its call, under which every get reads the register?
 */
function bruteForce(history: readonly Operation[]): boolean {
  const ops = history.filter((op) => op.kind !== "get" || op.status === "ok");
  const done = new Array<boolean>(ops.length).fill(false);
  const returnOf = (op: Operation) => op.status === "ok" ? op.return : Infinity;
  const search = (state: string | null): boolean => {
    const pending = ops.filter((op, i) => !done[i] && op.status === "ok");
    if (pending.length === 0) return true;
    const deadline = Math.min(...pending.map(returnOf));
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      // Strictly before: touching intervals are concurrent.
      if (done[i] || deadline < op.call) continue;
      if (op.kind === "get" && op.output !== state) continue;
      const after = op.kind === "set"
        ? op.value!
        : op.kind === "delete"
        ? null
        : state;
      done[i] = true;
      const found = search(after);
      done[i] = false;
      if (found) return true;
    }
    return false;
  };
  return search(null);
}

Deno.test({
  name:
    "the checker agrees with a brute-force search on small random histories",
  permissions: "none",
  fn() {
    const opArbitrary = fc.record({
      client: fc.integer({ min: 0, max: 3 }),
      kind: fc.constantFrom("get", "set", "delete"),
      value: fc.constantFrom("x", "y"),
      output: fc.constantFrom("x", "y", null),
      call: fc.integer({ min: 0, max: 20 }),
      length: fc.integer({ min: 0, max: 10 }),
      unknown: fc.boolean(),
    }).map(({ kind, value, output, call, length, unknown, client }) => {
      const ret = unknown ? Infinity : call + length;
      const status = unknown ? "unknown" as const : "ok" as const;
      const base = { client, key: "k", call, return: ret, status };
      if (kind === "set") return { ...base, kind, value } as Operation;
      if (kind === "delete") return { ...base, kind } as Operation;
      return (unknown
        ? { ...base, kind }
        : { ...base, kind, output }) as Operation;
    });
    let accepted = 0;
    fc.assert(
      fc.property(fc.array(opArbitrary, { maxLength: 7 }), (history) => {
        const expected = bruteForce(history);
        if (expected) accepted++;
        assert.equal(checkHistory(history).ok, expected);
      }),
      { numRuns: 2000 },
    );
    // Both verdicts must be well represented for the comparison to mean
    // anything.
    assert.ok(accepted > 200 && accepted < 1800, `${accepted} accepted`);
  },
});

/**
 * A concurrent history on one key: `clients` clients each run `perClient`
 * operations back to back; each takes effect at a random moment inside its
 * interval and gets read the register as of that moment. A `lost` share of
 * the writes time out: half of those take effect some time later, half
 * never do. Values come from a pool of `values`, or are all distinct.
 */
function concurrentRun(
  seed: number,
  { clients, perClient, lost = 0, values = 5 }: {
    clients: number;
    perClient: number;
    lost?: number;
    values?: number | "distinct";
  },
): Operation[] {
  let random = seed >>> 0;
  const next = (): number => {
    // mulberry32
    let t = (random += 0x6d2b79f5) >>> 0;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const planned: { op: Operation; at: number }[] = [];
  let written = 0;
  for (let client = 0; client < clients; client++) {
    let now = next() * 5;
    for (let i = 0; i < perClient; i++) {
      const call = now;
      const ret = call + 0.5 + next() * 10;
      let at = call + next() * (ret - call);
      const roll = next();
      const base = {
        client,
        key: "k",
        call,
        return: ret,
        status: "ok" as const,
      };
      const value = values === "distinct"
        ? `v${written++}`
        : `v${Math.floor(next() * values)}`;
      let op: Operation = roll < 0.4
        ? { ...base, kind: "set", value }
        : roll < 0.5
        ? { ...base, kind: "delete" }
        : { ...base, kind: "get", output: null };
      if (op.kind !== "get" && next() < lost) {
        op = { ...op, return: Infinity, status: "unknown" };
        at = next() < 0.5 ? at + next() * 100 : Infinity;
      }
      planned.push({ op, at });
      now = ret + next() * 2;
    }
  }
  planned.sort((a, b) => a.at - b.at);
  let register: string | null = null;
  for (const { op, at } of planned) {
    if (at === Infinity) continue;
    if (op.kind === "set") register = op.value!;
    else if (op.kind === "delete") register = null;
    else op.output = register;
  }
  return planned.map(({ op }) => op);
}

Deno.test({
  name: "two thousand operations by eight clients on one key check quickly",
  permissions: "none",
  fn() {
    for (const seed of [1, 2, 3]) {
      const history = concurrentRun(seed, { clients: 8, perClient: 250 });
      const started = performance.now();
      const result = checkHistory(history, { timeoutMs: 10_000 });
      const elapsed = performance.now() - started;
      assert.equal(result.ok, true);
      assert.equal(result.timedOut, false);
      assert.equal(result.operations, 2000);
      assert.ok(elapsed < 5000, `took ${elapsed.toFixed(0)} ms`);
    }
  },
});

Deno.test({
  name: "lost writes in a long concurrent history do not slow the check down",
  permissions: "none",
  fn() {
    for (const seed of [1, 2, 3]) {
      const history = concurrentRun(seed, {
        clients: 8,
        perClient: 250,
        lost: 0.1,
        values: "distinct",
      });
      assert.ok(history.some((op) => op.status === "unknown"));
      const started = performance.now();
      const result = checkHistory(history, { timeoutMs: 10_000 });
      const elapsed = performance.now() - started;
      assert.equal(result.ok, true);
      assert.equal(result.timedOut, false);
      assert.ok(elapsed < 5000, `took ${elapsed.toFixed(0)} ms`);
    }
  },
});

Deno.test({
  name: "a stale read late in a long concurrent history is found",
  permissions: "none",
  fn() {
    const history = concurrentRun(7, { clients: 8, perClient: 250 });
    // A get that reads a value other than the last write finished before
    // it began, with no write overlapping it: no order can explain it.
    history.sort((a, b) => a.call - b.call);
    const lastCall = history.at(-1)!.call;
    const writer = { ...set(99, "late", [lastCall + 100, lastCall + 101]) };
    const reader = get(98, "v0", [lastCall + 200, lastCall + 201]);
    const started = performance.now();
    const result = checkHistory([...history, writer, reader], {
      timeoutMs: 10_000,
    });
    const elapsed = performance.now() - started;
    assert.equal(result.timedOut, false);
    assert.equal(result.ok, false);
    assert.ok(elapsed < 5000, `took ${elapsed.toFixed(0)} ms`);
  },
});
