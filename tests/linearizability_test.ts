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

/**
 * A known compare-and-set of `key` from `expected` to `value` over
 * [call, ret] that `succeeded` or not.
 */
function cas(
  client: number,
  [expected, value]: [string | null, string],
  succeeded: boolean,
  [call, ret]: [number, number],
  key = "k",
): Operation {
  return {
    client,
    kind: "cas",
    key,
    expected,
    value,
    succeeded,
    call,
    return: ret,
    status: "ok",
  };
}

/** Marks an operation's outcome unknown, as a recorder does on a timeout. */
function lost(op: Operation): Operation {
  const { output: _, succeeded: __, ...rest } = op;
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
// Compare-and-set.

/** Asserts the checker's verdict on `history`, naming the case on failure. */
function expectVerdict(
  history: Operation[],
  ok: boolean,
  what: string,
): void {
  const result = checkHistory(history, { timeoutMs: 5000 });
  assert.equal(result.timedOut, false, `${what}: timed out`);
  assert.equal(result.ok, ok, `${what}: expected ok to be ${ok}`);
}

Deno.test({
  name: "a sequential history of compare-and-sets is linearizable",
  permissions: "none",
  fn() {
    const result = checkHistory([
      cas(0, [null, "a"], true, [0, 1]),
      cas(1, [null, "b"], false, [2, 3]),
      cas(1, ["a", "b"], true, [4, 5]),
      get(0, "b", [6, 7]),
      del(0, [8, 9]),
      cas(0, ["b", "c"], false, [10, 11]),
      get(1, null, [12, 13]),
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
  name:
    "a compare-and-set that succeeded expecting a value never written is not linearizable",
  permissions: "none",
  fn() {
    const result = checkHistory([
      set(0, "a", [0, 1]),
      cas(1, ["z", "b"], true, [2, 3]),
    ]);
    assert.equal(result.ok, false);
    assert.match(
      result.failures[0]?.reason ?? "",
      /client 1 cas "z" -> "b" succeeded \[2, 3\] expected a value that was never written/,
    );
  },
});

Deno.test({
  name:
    "a compare-and-set that succeeded on a value already overwritten is not linearizable",
  permissions: "none",
  fn() {
    const history = [
      set(0, "a", [0, 1]),
      set(0, "b", [2, 3]),
      cas(1, ["a", "c"], true, [4, 5]),
    ];
    expectVerdict(history, false, "overwritten");
    // Concurrent with the overwrite, it may have come first.
    expectVerdict(
      [
        set(0, "a", [0, 1]),
        set(0, "b", [2, 6]),
        cas(1, ["a", "c"], true, [
          4,
          5,
        ]),
      ],
      true,
      "concurrent",
    );
  },
});

Deno.test({
  name: "two compare-and-sets from one value cannot both succeed",
  permissions: "none",
  fn() {
    expectVerdict(
      [
        set(0, "a", [0, 1]),
        cas(1, ["a", "b"], true, [2, 10]),
        cas(2, ["a", "c"], true, [3, 11]),
      ],
      false,
      "both succeeded",
    );
    expectVerdict(
      [
        set(0, "a", [0, 1]),
        cas(1, ["a", "b"], true, [2, 10]),
        cas(2, ["a", "c"], false, [3, 11]),
        get(0, "b", [12, 13]),
      ],
      true,
      "one succeeded",
    );
    // The loser's failure says the winner came first; a later read of the
    // loser's value cannot follow.
    expectVerdict(
      [
        set(0, "a", [0, 1]),
        cas(1, ["a", "b"], true, [2, 10]),
        cas(2, ["a", "c"], false, [3, 11]),
        get(0, "c", [12, 13]),
      ],
      false,
      "the loser's value read",
    );
  },
});

Deno.test({
  name: "a failed compare-and-set observes the register like a read",
  permissions: "none",
  fn() {
    // Failing while nothing else wrote: the register held "a" throughout.
    expectVerdict(
      [set(0, "a", [0, 1]), cas(1, ["a", "c"], false, [2, 3])],
      false,
      "alone",
    );
    // The failure puts the concurrent write of "b" before it, so a later
    // read of "a" has nothing to explain it. Without the failed
    // compare-and-set the write could come after the read.
    const history = [
      set(0, "a", [0, 1]),
      set(1, "b", [2, 10]),
      cas(2, ["a", "c"], false, [3, 4]),
      get(2, "a", [5, 6]),
    ];
    expectVerdict(history, false, "with a later read of a");
    expectVerdict(
      history.filter((op) => op.kind !== "cas"),
      true,
      "without the compare-and-set",
    );
    expectVerdict(
      [...history.slice(0, 3), get(2, "b", [5, 6])],
      true,
      "with a later read of b",
    );
  },
});

Deno.test({
  name: "an unknown-outcome compare-and-set can explain a read of its value",
  permissions: "none",
  fn() {
    expectVerdict(
      [
        set(0, "a", [0, 1]),
        lost(cas(1, ["a", "b"], true, [2, 3])),
        get(0, "a", [4, 5]),
        get(0, "b", [6, 7]),
      ],
      true,
      "applied late",
    );
    expectVerdict(
      [
        set(0, "a", [0, 1]),
        lost(cas(1, ["a", "b"], true, [2, 3])),
        get(0, "a", [4, 5]),
      ],
      true,
      "never applied",
    );
  },
});

Deno.test({
  name:
    "an unknown-outcome compare-and-set takes effect only where its expected value is held",
  permissions: "none",
  fn() {
    // "a" was held only before the compare-and-set was called.
    expectVerdict(
      [
        set(0, "a", [0, 1]),
        set(0, "c", [2, 3]),
        lost(cas(1, ["a", "b"], true, [4, 5])),
        get(0, "b", [6, 7]),
      ],
      false,
      "expected value gone before the call",
    );
    // "a" was held only until a write that finished before the read.
    expectVerdict(
      [
        set(0, "a", [0, 1]),
        lost(cas(1, ["a", "b"], true, [2, 3])),
        set(0, "c", [4, 5]),
        get(0, "b", [6, 7]),
      ],
      false,
      "expected value gone before the read",
    );
    expectVerdict(
      [
        set(0, "a", [0, 1]),
        lost(cas(1, ["z", "b"], true, [2, 3])),
        get(0, "b", [4, 5]),
      ],
      false,
      "expected value never written",
    );
    // It takes effect at most once: "a" comes back, but "b" cannot twice.
    expectVerdict(
      [
        set(0, "a", [0, 1]),
        lost(cas(1, ["a", "b"], true, [2, 3])),
        get(0, "b", [4, 5]),
        set(0, "a", [6, 7]),
        get(0, "a", [8, 9]),
        get(0, "b", [10, 11]),
      ],
      false,
      "applied twice",
    );
  },
});

Deno.test({
  name: "unknown-outcome writes and compare-and-sets chain to explain a read",
  permissions: "none",
  fn() {
    const chain = [
      set(0, "a", [0, 1]),
      lost(set(1, "e", [2, 3])),
      lost(cas(2, ["e", "f"], true, [2, 3])),
      lost(cas(3, ["f", "g"], true, [2, 3])),
      get(0, "a", [4, 5]),
      get(0, "g", [6, 7]),
    ];
    expectVerdict(chain, true, "the whole chain");
    expectVerdict(
      chain.filter((op) => op.client !== 2),
      false,
      "a link missing",
    );
    // The chain may start from the known state instead of a lost write.
    expectVerdict(
      [
        set(0, "e", [0, 1]),
        lost(cas(2, ["e", "f"], true, [2, 3])),
        lost(cas(3, ["f", "g"], true, [2, 3])),
        get(0, "g", [6, 7]),
      ],
      true,
      "from the known state",
    );
    // A link called after the read cannot help it.
    expectVerdict(
      [
        set(0, "a", [0, 1]),
        lost(set(1, "e", [2, 3])),
        lost(cas(2, ["e", "f"], true, [8, 9])),
        get(0, "f", [6, 7]),
      ],
      false,
      "a link called too late",
    );
    // A chain can meet a known compare-and-set's expected value too.
    expectVerdict(
      [
        set(0, "a", [0, 1]),
        lost(set(1, "e", [2, 3])),
        lost(cas(2, ["e", "f"], true, [2, 3])),
        cas(0, ["f", "h"], true, [4, 5]),
        get(0, "h", [6, 7]),
      ],
      true,
      "to a known compare-and-set",
    );
  },
});

Deno.test({
  name: "an unknown-outcome write can explain a failed compare-and-set",
  permissions: "none",
  fn() {
    for (const write of [lost(set(1, "b", [2, 3])), lost(del(1, [2, 3]))]) {
      expectVerdict(
        [set(0, "a", [0, 1]), write, cas(2, ["a", "c"], false, [4, 5])],
        true,
        `a lost ${write.kind}`,
      );
      // Once used, it stays applied: "a" cannot come back.
      expectVerdict(
        [
          set(0, "a", [0, 1]),
          write,
          cas(2, ["a", "c"], false, [4, 5]),
          get(0, "a", [6, 7]),
        ],
        false,
        `a lost ${write.kind}, then a read of a`,
      );
    }
    // A lost compare-and-set from the expected value can do the same, and
    // its value is then what a later read sees.
    const history = [
      set(0, "a", [0, 1]),
      lost(cas(1, ["a", "b"], true, [2, 3])),
      cas(2, ["a", "c"], false, [4, 5]),
    ];
    expectVerdict(history, true, "a lost compare-and-set");
    expectVerdict(
      [...history, get(0, "b", [6, 7])],
      true,
      "a lost compare-and-set, then a read of its value",
    );
    expectVerdict(
      [...history, get(0, null, [6, 7])],
      false,
      "a lost compare-and-set, then a read of absent",
    );
    // A lost write of a value that nobody reads still counts.
    expectVerdict(
      [
        set(0, "a", [0, 1]),
        lost(set(1, "unread", [2, 3])),
        cas(2, ["a", "c"], false, [4, 5]),
        cas(2, ["b", "c"], false, [6, 7]),
      ],
      true,
      "a lost write of an unread value",
    );
  },
});

Deno.test({
  name: "a compare-and-set's expected value may be absent",
  permissions: "none",
  fn() {
    expectVerdict(
      [cas(0, [null, "a"], true, [0, 1]), get(1, "a", [2, 3])],
      true,
      "set if absent",
    );
    expectVerdict(
      [set(0, "a", [0, 1]), cas(1, [null, "b"], true, [2, 3])],
      false,
      "succeeded on a present key",
    );
    expectVerdict(
      [cas(1, [null, "b"], false, [2, 3])],
      false,
      "failed on an absent key",
    );
    assert.equal(
      checkHistory([cas(1, [null, "b"], false, [2, 3])], {
        initial: { k: "a" },
      }).ok,
      true,
    );
  },
});

Deno.test({
  name: "malformed compare-and-sets are rejected with an error naming them",
  permissions: "none",
  fn() {
    const { succeeded: _, ...noOutcome } = cas(0, ["a", "b"], true, [0, 1]);
    assert.throws(() => checkHistory([noOutcome]), {
      name: "TypeError",
      message: "Operation 0 is a known cas without succeeded",
    });
    const { expected: __, ...noExpected } = cas(0, ["a", "b"], true, [0, 1]);
    assert.throws(() => checkHistory([noExpected]), {
      name: "TypeError",
      message: "Operation 0 is a cas without an expected value",
    });
    const { value: ___, ...noValue } = cas(0, ["a", "b"], true, [0, 1]);
    assert.throws(() => checkHistory([noValue]), {
      name: "TypeError",
      message: "Operation 0 is a cas without a string value",
    });
    // An unknown outcome needs no `succeeded`.
    assert.equal(
      checkHistory([lost(cas(0, ["a", "b"], true, [0, 1]))]).ok,
      true,
    );
  },
});

// ---------------------------------------------------------------------------
// Generated histories.

/** One step of a generated run, before it is turned into an operation. */
interface Step {
  kind: "get" | "set" | "delete" | "cas";
  key: string;
  value: string;
  /** For a cas: the value it expects, unless `fresh`. */
  expected: string | null;
  /** For a cas: expect whatever the register holds, so that it succeeds. */
  fresh: boolean;
  client: number;
  before: number;
  after: number;
  fate: "ok" | "unknown-applied" | "unknown-lost";
}

const stepArbitrary: fc.Arbitrary<Step> = fc.record({
  kind: fc.constantFrom("get", "set", "delete", "cas"),
  key: fc.constantFrom("a", "b", "c"),
  value: fc.constantFrom("x", "y", "z"),
  expected: fc.constantFrom("x", "y", "z", null),
  fresh: fc.boolean(),
  client: fc.integer({ min: 0, max: 7 }),
  before: fc.integer({ min: 0, max: 30 }),
  after: fc.integer({ min: 0, max: 30 }),
  fate: fc.constantFrom("ok", "ok", "ok", "unknown-applied", "unknown-lost"),
});

/**
 * Runs `steps` one at a time on a Map, step i taking effect at time 10·i,
 * and records each as an operation whose interval contains that moment.
 * A lost step is recorded as unknown but never applied; a compare-and-set
 * applies when the model holds its expected value.
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
      case "cas": {
        const current = model.get(step.key) ?? null;
        const expected = step.fresh ? current : step.expected;
        const succeeded = expected === current;
        if (applied && succeeded) model.set(step.key, step.value);
        const op: Operation = {
          ...base,
          kind: "cas",
          expected,
          value: step.value,
          return: end,
          status,
        };
        return status === "ok" ? { ...op, succeeded } : op;
      }
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

/** A known get of "a", for a run that has no get. */
const finalRead: Step = {
  kind: "get",
  key: "a",
  value: "x",
  expected: null,
  fresh: false,
  client: 0,
  before: 0,
  after: 0,
  fate: "ok",
};

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
          // With no get to change, read "a" at the end; the model gives
          // the read its correct output before it is changed.
          const history = recordRun(
            steps.some((step) => step.kind === "get")
              ? steps
              : [...steps, { ...finalRead }],
            false,
          );
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

Deno.test({
  name:
    "a sequential history with one compare-and-set's outcome flipped is always rejected",
  permissions: "none",
  fn() {
    let flipped = 0;
    fc.assert(
      fc.property(
        fc.array(
          stepArbitrary.map((step) => ({ ...step, fate: "ok" as const })),
          { maxLength: 60 },
        ),
        fc.nat(),
        (steps, which) => {
          const history = recordRun(steps, false);
          const cases = history.filter((op) => op.kind === "cas");
          if (cases.length === 0) return;
          const victim = cases[which % cases.length]!;
          victim.succeeded = !victim.succeeded;
          flipped++;
          const result = checkHistory(history, { timeoutMs: 5000 });
          assert.equal(result.ok, false);
          assert.deepEqual(result.failures.map((f) => f.key), [victim.key]);
        },
      ),
      { numRuns: 300 },
    );
    assert.ok(flipped > 100, `only ${flipped} runs had a compare-and-set`);
  },
});

/**
 * The definition, by brute force: is there an order of the known
 * operations and some unknown ones, each placed after every operation
 * that returned before its call, under which every get reads the register
 * and every compare-and-set meets its expected value exactly when it
 * succeeded? An unknown compare-and-set is placed only where its expected
 * value is held; elsewhere it would change nothing, as if left out.
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
      const holds = op.expected === state;
      if (op.kind === "cas") {
        if (op.status === "ok" ? op.succeeded !== holds : !holds) continue;
      }
      const after = op.kind === "set"
        ? op.value!
        : op.kind === "delete"
        ? null
        : op.kind === "cas" && holds
        ? op.value!
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

/**
 * Random operations on one key with a few values and short, overlapping
 * intervals, `kinds` among them, half of unknown outcome.
 */
function smallOperation(
  kinds: readonly Operation["kind"][],
  values: readonly string[],
): fc.Arbitrary<Operation> {
  return fc.record({
    client: fc.integer({ min: 0, max: 3 }),
    kind: fc.constantFrom(...kinds),
    value: fc.constantFrom(...values),
    output: fc.constantFrom(...values, null),
    succeeded: fc.boolean(),
    call: fc.integer({ min: 0, max: 20 }),
    length: fc.integer({ min: 0, max: 10 }),
    unknown: fc.boolean(),
  }).map(
    ({ kind, value, output, succeeded, call, length, unknown, client }) => {
      const ret = unknown ? Infinity : call + length;
      const status = unknown ? "unknown" as const : "ok" as const;
      const base = { client, key: "k", call, return: ret, status };
      switch (kind) {
        case "set":
          return { ...base, kind, value };
        case "delete":
          return { ...base, kind };
        case "cas":
          // `output` serves as the expected value.
          return unknown
            ? { ...base, kind, expected: output, value }
            : { ...base, kind, expected: output, value, succeeded };
        case "get":
          return unknown ? { ...base, kind } : { ...base, kind, output };
      }
    },
  );
}

/**
 * Asserts that the checker agrees with {@linkcode bruteForce} on `runs`
 * random histories of up to `length` operations, and that both verdicts
 * came up often enough for the agreement to mean something.
 */
function agreesWithBruteForce(
  operation: fc.Arbitrary<Operation>,
  { length, runs }: { length: number; runs: number },
): void {
  let accepted = 0;
  fc.assert(
    fc.property(fc.array(operation, { maxLength: length }), (history) => {
      const expected = bruteForce(history);
      if (expected) accepted++;
      assert.equal(checkHistory(history).ok, expected);
    }),
    { numRuns: runs },
  );
  assert.ok(
    accepted > runs / 10 && accepted < runs * 9 / 10,
    `${accepted} of ${runs} accepted`,
  );
}

Deno.test({
  name:
    "the checker agrees with a brute-force search on small random histories",
  permissions: "none",
  fn() {
    agreesWithBruteForce(
      smallOperation(["get", "set", "delete"], ["x", "y"]),
      { length: 7, runs: 2000 },
    );
  },
});

Deno.test({
  name:
    "the checker agrees with a brute-force search on small random histories with compare-and-sets",
  permissions: "none",
  fn() {
    agreesWithBruteForce(
      smallOperation(["get", "set", "delete", "cas", "cas"], ["x", "y"]),
      { length: 7, runs: 3000 },
    );
    // Three values and longer histories make longer chains of unknown
    // compare-and-sets.
    agreesWithBruteForce(
      smallOperation(["get", "set", "cas", "cas", "cas"], ["x", "y", "z"]),
      { length: 8, runs: 2000 },
    );
  },
});

/**
 * A concurrent history on one key: `clients` clients each run `perClient`
 * operations back to back; each takes effect at a random moment inside its
 * interval and gets read the register as of that moment. A `lost` share of
 * the writes time out: half of those take effect some time later, half
 * never do. Values come from a pool of `values`, or are all distinct. A
 * `cas` share of the sets are compare-and-sets instead, expecting the value
 * of the last write planned (any client's) or, from a pool, a value drawn
 * from it; whether they succeed is settled when the run is played out.
 */
function concurrentRun(
  seed: number,
  { clients, perClient, lost = 0, values = 5, cas = 0 }: {
    clients: number;
    perClient: number;
    lost?: number;
    values?: number | "distinct";
    cas?: number;
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
  let lastValue: string | null = null;
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
      // Drawn only when asked for, so that runs without compare-and-sets
      // stay the same.
      if (op.kind === "set" && cas > 0 && next() < cas) {
        const expected = values === "distinct"
          ? lastValue
          : `v${Math.floor(next() * values)}`;
        op = { ...base, kind: "cas", expected, value, succeeded: false };
      }
      if (op.kind === "set" || op.kind === "cas") lastValue = value;
      if (op.kind !== "get" && next() < lost) {
        const { succeeded: _, ...rest } = op;
        op = { ...rest, return: Infinity, status: "unknown" };
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
    else if (op.kind === "get") op.output = register;
    else {
      const succeeded = register === op.expected;
      if (succeeded) register = op.value!;
      if (op.status === "ok") op.succeeded = succeeded;
    }
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
  name:
    "compare-and-sets, some of unknown outcome, in a long concurrent history check quickly",
  permissions: "none",
  fn() {
    // Distinct values with lost operations, as the fault tests write; a
    // pool of five values (many compare-and-sets succeed) without: lost
    // writes drawn from a small pool make the search exponential, with or
    // without compare-and-sets (see checkHistory).
    const runs = [
      { values: "distinct" as const, lost: 0.1 },
      { values: 5, lost: 0 },
    ];
    for (const { values, lost } of runs) {
      for (const seed of [1, 2, 3]) {
        const what = `${values} values, seed ${seed}`;
        const history = concurrentRun(seed, {
          clients: 8,
          perClient: 250,
          lost,
          values,
          cas: 0.5,
        });
        const cases = history.filter((op) => op.kind === "cas");
        assert.ok(cases.some((op) => op.succeeded === true), what);
        assert.ok(cases.some((op) => op.succeeded === false), what);
        if (lost > 0) {
          assert.ok(cases.some((op) => op.status === "unknown"), what);
        }
        const started = performance.now();
        const result = checkHistory(history, { timeoutMs: 10_000 });
        const elapsed = performance.now() - started;
        assert.equal(result.timedOut, false, what);
        assert.equal(result.ok, true, what);
        assert.ok(elapsed < 5000, `${what}: took ${elapsed.toFixed(0)} ms`);
      }
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

Deno.test({
  name:
    "a compare-and-set that failed on the value it expected, late in a long concurrent history, is found",
  permissions: "none",
  fn() {
    for (const lost of [0, 0.1]) {
      const history = concurrentRun(7, {
        clients: 8,
        perClient: 250,
        lost,
        values: "distinct",
        cas: 0.5,
      });
      const lastCall = Math.max(...history.map((op) => op.call));
      const writer = set(99, "late", [lastCall + 100, lastCall + 101]);
      const loser = cas(98, ["late", "after"], false, [
        lastCall + 200,
        lastCall + 201,
      ]);
      assert.equal(checkHistory([...history, writer]).ok, true);
      const started = performance.now();
      const result = checkHistory([...history, writer, loser], {
        timeoutMs: 10_000,
      });
      const elapsed = performance.now() - started;
      assert.equal(result.timedOut, false);
      // A lost write may take effect at any time after its call, between
      // the two as well, which explains the failure.
      assert.equal(result.ok, lost > 0, `lost ${lost}`);
      assert.ok(elapsed < 5000, `took ${elapsed.toFixed(0)} ms`);
    }
  },
});
