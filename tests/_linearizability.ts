// A linearizability checker for key/value histories recorded by the tests.
//
// Each key is a register holding a string or null (absent), read by get,
// written by set and delete, and both by compare-and-set. Linearizability
// is local (Herlihy and Wing, 1990): a history is linearizable exactly when
// every per-key sub-history is, so each key is checked on its own and the
// search space is the product of small spaces rather than one huge one.
//
// Per key the search is the one by Wing and Gong (1993) as improved by Lowe
// (2017): call and return events sit in one time-ordered doubly linked list;
// the search walks it from the front, "lifting" an operation out of the list
// when it linearizes it and "unlifting" it on backtrack; reaching a return
// event means the operation it closes can no longer be linearized in the
// current state, so the search backtracks. A cache of the configurations
// already explored, (set of linearized operations, register value), cuts
// the otherwise exponential search to what concurrency makes necessary.
// Operations whose outcome is unknown are kept out of the list and applied
// only where a known operation needs them (see checkRegister in
// _register.ts, which holds the search), so that a handful of timeouts does
// not multiply the search by every place each could go.

import { checkRegister } from "./_register.ts";

/**
 * What an operation does to its key's register. A `cas` (compare-and-set)
 * writes its value if the register holds its expected value, and otherwise
 * changes nothing; either way it observes the register, like a get.
 */
export type OperationKind = "get" | "set" | "delete" | "cas";

/**
 * Whether the client learned the outcome. `"unknown"` means the request
 * timed out or its connection died: it may have taken effect at any moment
 * after its call (a `cas` only at a moment when its condition held), or
 * never. An operation that failed for certain (the server answered with an
 * error) must not be recorded at all; a `cas` whose check did not hold is
 * not such a failure but a known outcome, recorded with `succeeded: false`.
 */
export type OperationStatus = "ok" | "unknown";

/**
 * One operation of a recorded history.
 *
 * Recorder contract: `call` is taken before the request is sent and
 * `return` after its reply arrives, from one monotonic clock (for example
 * `performance.now()`), so the true effect lies within `[call, return]`.
 * Operations that failed for certain are left out; operations whose outcome
 * is unknown are kept with `status: "unknown"` and `return: Infinity`.
 */
export interface Operation {
  /** Which client issued it; reported in failures, not used by the search. */
  client: number;
  /** The operation. */
  kind: OperationKind;
  /** The key it touched. */
  key: string;
  /** For `set` and `cas`: the value written. */
  value?: string;
  /** For a `get` with status `"ok"`: the value read, or null if absent. */
  output?: string | null;
  /**
   * For `cas`: the value the register must hold for the write to happen,
   * or null for absent. A check on a version is a check on the value that
   * version wrote when every write's value is unique.
   */
  expected?: string | null;
  /** For a `cas` with status `"ok"`: whether its condition held. */
  succeeded?: boolean;
  /** When the request was issued. */
  call: number;
  /** When the reply arrived; `Infinity` when the outcome is unknown. */
  return: number;
  /** Whether the outcome is known. */
  status: OperationStatus;
}

/** Options for {@linkcode checkHistory}. */
export interface CheckOptions {
  /**
   * Time budget per key in milliseconds. A key whose search runs longer is
   * reported in `timedOutKeys` instead of being judged. Default: no limit.
   */
  timeoutMs?: number;
  /** Register values before the history began; a key not listed is null. */
  initial?:
    | ReadonlyMap<string, string | null>
    | Readonly<Record<string, string | null>>;
}

/** A key whose sub-history has no linearization. */
export interface KeyFailure {
  /** The key. */
  key: string;
  /** Every operation on the key, in input order, ready for replay. */
  operations: Operation[];
  /** Why the sub-history cannot be linearized, for a human. */
  reason: string;
}

/** The verdict of {@linkcode checkHistory}. */
export interface CheckResult {
  /**
   * True when no key was found non-linearizable. A key that timed out is
   * not judged, so check `timedOut` too before calling a history correct.
   */
  ok: boolean;
  /** How many distinct keys the history touches. */
  keys: number;
  /** How many operations were checked (unknown-outcome gets are dropped). */
  operations: number;
  /** The keys found non-linearizable. */
  failures: KeyFailure[];
  /** True when at least one key ran out of its time budget. */
  timedOut: boolean;
  /** The keys that ran out of their time budget. */
  timedOutKeys: string[];
}

/**
 * Checks a key/value history for linearizability, one key at a time.
 *
 * Checking is fast when concurrency is modest (a few thousand operations
 * by ten clients take tens of milliseconds). It is NP-complete in general,
 * though: many unknown-outcome writes drawn from a small pool of values
 * can make a key's search exponential, so give every set a distinct value
 * where possible and set `timeoutMs` in tests.
 *
 * @param operations The history, in any order.
 * @param options A per-key time budget and initial register values.
 * @returns The verdict, with every non-linearizable key's sub-history.
 * @throws {TypeError} If an operation is malformed (for example a `set`
 * without a value, a known `get` without an output or a known `cas`
 * without `succeeded`).
 * @throws {RangeError} If a timestamp is not a number, a known operation
 * returns before its call or never returns.
 *
 * @example Two overlapping writes and a read that sees either
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkHistory } from "./_linearizability.ts";
 *
 * const result = checkHistory([
 *   { client: 0, kind: "set", key: "k", value: "a", call: 0, return: 10, status: "ok" },
 *   { client: 1, kind: "set", key: "k", value: "b", call: 2, return: 12, status: "ok" },
 *   { client: 2, kind: "get", key: "k", output: "a", call: 20, return: 25, status: "ok" },
 * ]);
 * assert.equal(result.ok, true);
 * ```
 *
 * @example Two compare-and-sets from one value cannot both succeed
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkHistory } from "./_linearizability.ts";
 *
 * const result = checkHistory([
 *   { client: 0, kind: "set", key: "k", value: "a", call: 0, return: 1, status: "ok" },
 *   { client: 1, kind: "cas", key: "k", expected: "a", value: "b", succeeded: true, call: 2, return: 9, status: "ok" },
 *   { client: 2, kind: "cas", key: "k", expected: "a", value: "c", succeeded: true, call: 3, return: 9, status: "ok" },
 * ]);
 * assert.equal(result.ok, false);
 * ```
 */
export function checkHistory(
  operations: readonly Operation[],
  options: CheckOptions = {},
): CheckResult {
  const timeoutMs = options.timeoutMs ?? Infinity;
  const byKey = new Map<string, Operation[]>();
  operations.forEach((op, index) => {
    validateOperation(op, index);
    let list = byKey.get(op.key);
    if (list === undefined) byKey.set(op.key, list = []);
    list.push(op);
  });
  const failures: KeyFailure[] = [];
  const timedOutKeys: string[] = [];
  let checked = 0;
  for (const [key, list] of byKey) {
    // A get whose outcome is unknown read nothing anyone saw.
    const relevant = list.filter((op) =>
      op.kind !== "get" || op.status === "ok"
    );
    checked += relevant.length;
    const verdict = checkRegister(
      relevant,
      initialValue(options.initial, key),
      timeoutMs,
    );
    if (verdict.kind === "fail") {
      failures.push({ key, operations: list, reason: verdict.reason });
    } else if (verdict.kind === "timeout") {
      timedOutKeys.push(key);
    }
  }
  return {
    ok: failures.length === 0,
    keys: byKey.size,
    operations: checked,
    failures,
    timedOut: timedOutKeys.length > 0,
    timedOutKeys,
  };
}

/**
 * Serializes a history to JSON. `Infinity` has no JSON form, so an unknown
 * return is written as null.
 *
 * @param operations The history.
 * @returns The JSON text, one operation a line.
 *
 * @example Round trip
 * ```ts
 * import assert from "node:assert/strict";
 * import { historyFromJson, historyToJson } from "./_linearizability.ts";
 *
 * const history = [
 *   { client: 0, kind: "set" as const, key: "k", value: "a", call: 0, return: Infinity, status: "unknown" as const },
 * ];
 * assert.deepEqual(historyFromJson(historyToJson(history)), history);
 * ```
 */
export function historyToJson(operations: readonly Operation[]): string {
  const lines = operations.map((op) =>
    JSON.stringify({
      ...op,
      return: Number.isFinite(op.return) ? op.return : null,
    })
  );
  return `{"version":1,"operations":[\n${lines.join(",\n")}\n]}\n`;
}

/**
 * Parses a history written by {@linkcode historyToJson}.
 *
 * @param text The JSON text.
 * @returns The operations, with unknown returns restored to `Infinity`.
 * @throws {SyntaxError} If the text is not JSON.
 * @throws {TypeError} If it is not a history or an operation is malformed.
 *
 * @example Parse a saved history
 * ```ts
 * import assert from "node:assert/strict";
 * import { historyFromJson } from "./_linearizability.ts";
 *
 * const [op] = historyFromJson(
 *   '{"version":1,"operations":[{"client":0,"kind":"delete","key":"k","call":1,"return":null,"status":"unknown"}]}',
 * );
 * assert.equal(op?.return, Infinity);
 * ```
 */
export function historyFromJson(text: string): Operation[] {
  const parsed: unknown = JSON.parse(text);
  if (
    typeof parsed !== "object" || parsed === null ||
    !("operations" in parsed) || !Array.isArray(parsed.operations)
  ) {
    throw new TypeError("Not a history: expected an object with operations");
  }
  return parsed.operations.map((raw: unknown, index: number) => {
    if (typeof raw !== "object" || raw === null) {
      throw new TypeError(`Operation ${index} is not an object`);
    }
    const record = raw as Record<string, unknown>;
    const op = {
      ...record,
      return: record.return === null ? Infinity : record.return,
    } as Operation;
    validateOperation(op, index);
    return op;
  });
}

/**
 * Writes a history to a JSON file, typically a failing one, so that it can
 * be replayed with {@linkcode loadHistory} and {@linkcode checkHistory}.
 *
 * @param path Where to write.
 * @param operations The history.
 * @returns When the file is written.
 *
 * @example Save and reload
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadHistory, saveHistory } from "./_linearizability.ts";
 *
 * const path = await Deno.makeTempFile({ suffix: ".json" });
 * try {
 *   await saveHistory(path, []);
 *   assert.deepEqual(await loadHistory(path), []);
 * } finally {
 *   await Deno.remove(path);
 * }
 * ```
 */
export async function saveHistory(
  path: string | URL,
  operations: readonly Operation[],
): Promise<void> {
  await Deno.writeTextFile(path, historyToJson(operations));
}

/**
 * Reads a history written by {@linkcode saveHistory}.
 *
 * @param path The file.
 * @returns The operations.
 * @throws {Deno.errors.NotFound} If the file does not exist.
 * @throws {TypeError} If the file does not hold a valid history.
 *
 * @example Replay a saved history
 * ```ts ignore
 * import { checkHistory, loadHistory } from "./_linearizability.ts";
 *
 * console.log(checkHistory(await loadHistory("failing-history.json")));
 * ```
 */
export async function loadHistory(path: string | URL): Promise<Operation[]> {
  return historyFromJson(await Deno.readTextFile(path));
}

/** Throws unless `op` is a well-formed operation. */
function validateOperation(op: Operation, index: number): void {
  const where = `Operation ${index}`;
  if (
    op.kind !== "get" && op.kind !== "set" && op.kind !== "delete" &&
    op.kind !== "cas"
  ) {
    throw new TypeError(`${where} has an unknown kind: ${String(op.kind)}`);
  }
  if (typeof op.key !== "string") {
    throw new TypeError(`${where} has no string key`);
  }
  if (typeof op.client !== "number") {
    throw new TypeError(`${where} has no client number`);
  }
  if (op.status !== "ok" && op.status !== "unknown") {
    throw new TypeError(`${where} has an unknown status: ${String(op.status)}`);
  }
  if (
    (op.kind === "set" || op.kind === "cas") && typeof op.value !== "string"
  ) {
    throw new TypeError(`${where} is a ${op.kind} without a string value`);
  }
  if (
    op.kind === "cas" && op.expected !== null &&
    typeof op.expected !== "string"
  ) {
    throw new TypeError(`${where} is a cas without an expected value`);
  }
  if (
    op.kind === "cas" && op.status === "ok" &&
    typeof op.succeeded !== "boolean"
  ) {
    throw new TypeError(`${where} is a known cas without succeeded`);
  }
  if (
    op.kind === "get" && op.status === "ok" &&
    op.output !== null && typeof op.output !== "string"
  ) {
    throw new TypeError(`${where} is a known get without an output`);
  }
  if (typeof op.call !== "number" || !Number.isFinite(op.call)) {
    throw new RangeError(`${where} has a call time that is not finite`);
  }
  // An unknown outcome's return is ignored: it is taken to be Infinity.
  if (op.status === "ok") {
    if (typeof op.return !== "number" || !Number.isFinite(op.return)) {
      throw new RangeError(
        `${where} has status ok but a return time that is not finite`,
      );
    }
    if (op.return < op.call) {
      throw new RangeError(`${where} returns before its call`);
    }
  }
}

/** The register's value for `key` before the history began. */
function initialValue(
  initial: CheckOptions["initial"],
  key: string,
): string | null {
  if (initial === undefined) return null;
  if (initial instanceof Map) return initial.get(key) ?? null;
  const record = initial as Readonly<Record<string, string | null>>;
  return Object.hasOwn(record, key) ? record[key] ?? null : null;
}
