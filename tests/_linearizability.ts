// A linearizability checker for key/value histories recorded by the tests.
//
// Each key is a register holding a string or null (absent). Linearizability
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
// Writes whose outcome is unknown are kept out of the list and applied
// only where a read needs them (see checkRegister), so that a handful of
// timeouts does not multiply the search by every place each could go.

/** What an operation does to its key's register. */
export type OperationKind = "get" | "set" | "delete";

/**
 * Whether the client learned the outcome. `"unknown"` means the request
 * timed out or its connection died: it may have taken effect at any moment
 * after its call, or never. An operation that failed for certain (the
 * server answered with an error) must not be recorded at all.
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
  /** For `set`: the value written. */
  value?: string;
  /** For a `get` with status `"ok"`: the value read, or null if absent. */
  output?: string | null;
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

/** What the search concluded about one key. */
type Verdict =
  | { kind: "ok" }
  | { kind: "fail"; reason: string }
  | { kind: "timeout" };

/** How often (in search steps) the clock is read; a power of two minus 1. */
const CLOCK_MASK = 1023;

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
 * without a value or a known `get` without an output).
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
  if (op.kind !== "get" && op.kind !== "set" && op.kind !== "delete") {
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
  if (op.kind === "set" && typeof op.value !== "string") {
    throw new TypeError(`${where} is a set without a string value`);
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

/** A one-line description of an operation for failure reasons. */
function describe(op: Operation): string {
  let text = `client ${op.client} ${op.kind}`;
  if (op.kind === "set") text += ` ${JSON.stringify(op.value)}`;
  if (op.kind === "get") text += ` -> ${JSON.stringify(op.output)}`;
  const end = op.status === "ok" ? String(op.return) : "?";
  return `${text} [${op.call}, ${end}]`;
}

/** A 32-bit mix of `x` (the murmur3 finalizer), for Zobrist hashing. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) | 0;
}

/**
 * The set of linearized operations, as bitsets with an incremental hash.
 *
 * Operations are numbered with the known ones first, in call order, then
 * the unknown ones. A linearized set is closed under real-time order (an
 * operation that returned before a linearized one's call is linearized
 * too), so in call order it is a run of ones, a short window no wider than
 * the concurrency, then zeros. The cache stores only that window (plus the
 * few unknown operations' bits), which keeps each configuration a handful
 * of words however long the history is.
 */
class LinearizedSet {
  /** Bits of the known operations, 0 to `knownCount - 1`. */
  readonly known: Uint32Array;
  /** Bits of the unknown operations, numbered from `knownCount`. */
  readonly unknown: Uint32Array;
  readonly #knownCount: number;
  /** Every known operation below `low` is in the set. */
  low = 0;
  /** No known operation at or above `high` is in the set. */
  high = 0;
  /** Zobrist hashes: the XOR of a per-operation word over the members. */
  h1 = 0;
  h2 = 0;

  constructor(knownCount: number, unknownCount: number) {
    this.#knownCount = knownCount;
    this.known = new Uint32Array((knownCount + 31) >>> 5);
    this.unknown = new Uint32Array((unknownCount + 31) >>> 5);
  }

  /** Adds operation `op`, which is not in the set. */
  add(op: number): void {
    this.#hash(op);
    const count = this.#knownCount;
    if (op >= count) {
      this.unknown[(op - count) >>> 5]! |= 1 << ((op - count) & 31);
      return;
    }
    this.known[op >>> 5]! |= 1 << (op & 31);
    if (op >= this.high) this.high = op + 1;
    if (op === this.low) {
      do this.low++; while (this.low < count && this.#has(this.low));
    }
  }

  /** Removes operation `op`, which is in the set. */
  remove(op: number): void {
    this.#hash(op);
    const count = this.#knownCount;
    if (op >= count) {
      this.unknown[(op - count) >>> 5]! &= ~(1 << ((op - count) & 31));
      return;
    }
    this.known[op >>> 5]! &= ~(1 << (op & 31));
    if (op < this.low) this.low = op;
    if (op === this.high - 1) {
      do this.high--; while (this.high > 0 && !this.#has(this.high - 1));
    }
  }

  #has(op: number): boolean {
    return ((this.known[op >>> 5]! >>> (op & 31)) & 1) === 1;
  }

  #hash(op: number): void {
    this.h1 ^= mix32(2 * op + 0x3c6ef372);
    this.h2 ^= mix32(2 * op + 0x5be0cd19);
  }
}

/**
 * The configurations the search has explored: (linearized set, register
 * value), in an open-addressing hash table over typed arrays so that a
 * configuration costs no allocation. A hash match is confirmed against the
 * stored words, so a collision can never prune a live branch.
 */
class ConfigurationCache {
  /** Per slot: 1 + the record's offset in the pool, or 0 when empty. */
  #slots = new Int32Array(1024);
  #hashes1 = new Int32Array(1024);
  #hashes2 = new Int32Array(1024);
  #size = 0;
  /** Records: state, first window word, window length, window, unknown. */
  #pool = new Uint32Array(4096);
  #used = 0;

  /** Records the configuration; false if it was already there. */
  add(set: LinearizedSet, state: number): boolean {
    const hash1 = set.h1 ^ mix32(state);
    const hash2 = set.h2 ^ mix32(~state);
    const start = set.low >>> 5;
    const end = set.high > set.low ? ((set.high - 1) >>> 5) + 1 : start;
    const mask = this.#slots.length - 1;
    let slot = hash1 & mask;
    for (; this.#slots[slot] !== 0; slot = (slot + 1) & mask) {
      if (
        this.#hashes1[slot] === hash1 && this.#hashes2[slot] === hash2 &&
        this.#matches(this.#slots[slot]! - 1, set, state, start, end)
      ) {
        return false;
      }
    }
    const offset = this.#store(set, state, start, end);
    this.#slots[slot] = offset + 1;
    this.#hashes1[slot] = hash1;
    this.#hashes2[slot] = hash2;
    if (++this.#size * 2 > this.#slots.length) this.#grow();
    return true;
  }

  #matches(
    offset: number,
    set: LinearizedSet,
    state: number,
    start: number,
    end: number,
  ): boolean {
    const pool = this.#pool;
    if (pool[offset] !== state || pool[offset + 1] !== start) return false;
    if (pool[offset + 2] !== end - start) return false;
    let at = offset + 3;
    for (let word = start; word < end; word++) {
      if (pool[at++] !== set.known[word]) return false;
    }
    for (let word = 0; word < set.unknown.length; word++) {
      if (pool[at++] !== set.unknown[word]) return false;
    }
    return true;
  }

  #store(set: LinearizedSet, state: number, start: number, end: number) {
    const length = 3 + end - start + set.unknown.length;
    if (this.#used + length > this.#pool.length) {
      const pool = new Uint32Array(2 * (this.#pool.length + length));
      pool.set(this.#pool);
      this.#pool = pool;
    }
    const offset = this.#used;
    const pool = this.#pool;
    pool[offset] = state;
    pool[offset + 1] = start;
    pool[offset + 2] = end - start;
    pool.set(set.known.subarray(start, end), offset + 3);
    pool.set(set.unknown, offset + 3 + end - start);
    this.#used += length;
    return offset;
  }

  #grow(): void {
    const slots = this.#slots;
    const hashes1 = this.#hashes1;
    const hashes2 = this.#hashes2;
    const capacity = 2 * slots.length;
    this.#slots = new Int32Array(capacity);
    this.#hashes1 = new Int32Array(capacity);
    this.#hashes2 = new Int32Array(capacity);
    const mask = capacity - 1;
    for (let old = 0; old < slots.length; old++) {
      if (slots[old] === 0) continue;
      let slot = hashes1[old]! & mask;
      while (this.#slots[slot] !== 0) slot = (slot + 1) & mask;
      this.#slots[slot] = slots[old]!;
      this.#hashes1[slot] = hashes1[old]!;
      this.#hashes2[slot] = hashes2[old]!;
    }
  }
}

/**
 * Runs the WGL search over one register's operations (unknown gets
 * already dropped).
 *
 * Only operations with a known outcome are events in the list. An unknown
 * write has no deadline: it never forces a backtrack and could go at any
 * point after its call, and letting the scan try every such point
 * multiplies the search by the number of places each could go. Instead
 * the search uses a canonical form that loses no linearization. Take any
 * linearization; an applied unknown write that is not directly followed by
 * a get can be dropped (whatever comes next overwrites it, or nothing
 * does), and so can one applied while the register already holds its
 * value. Each remaining one directly precedes a get that reads its value.
 * Unknown writes of one value are interchangeable, and the i-th applied
 * can be the i-th called, whose call is no later. So an unknown write is
 * only ever applied together with the get it explains, and only the
 * earliest-called unused one of that value; the rest never happen.
 */
function checkRegister(
  ops: readonly Operation[],
  initial: string | null,
  timeoutMs: number,
): Verdict {
  // Values become small integers: 0 is null (absent).
  const ids = new Map<string | null, number>([[null, 0]]);
  const intern = (value: string | null): number => {
    let id = ids.get(value);
    if (id === undefined) ids.set(value, id = ids.size);
    return id;
  };
  const valueOf = (op: Operation): number =>
    op.kind === "set" ? intern(op.value ?? null) : 0;
  const initialId = intern(initial);
  const read = new Set<number>();
  for (const op of ops) {
    if (op.kind === "get") read.add(intern(op.output ?? null));
  }
  const written = new Set<number>([initialId]);
  for (const op of ops) if (op.kind !== "get") written.add(valueOf(op));
  // A read of a value no write could have produced fails whatever the
  // order; saying so directly beats a search that explains nothing.
  for (const op of ops) {
    if (op.kind === "get" && !written.has(intern(op.output ?? null))) {
      return {
        kind: "fail",
        reason: `${describe(op)} read a value that was never written`,
      };
    }
  }

  // Known operations first, then the unknown writes of a value somebody
  // read (the others are never applied, see above), each in call order.
  const byCall = (a: Operation, b: Operation) => a.call - b.call;
  const knownOps = ops.filter((op) => op.status === "ok").sort(byCall);
  const unknownOps = ops
    .filter((op) => op.status !== "ok" && read.has(valueOf(op)))
    .sort(byCall);
  const all = [...knownOps, ...unknownOps];
  const k = knownOps.length;
  const n = all.length;
  // For each operation: the value it writes, or -1 for a get, and the
  // value a get requires.
  const writes = new Int32Array(n);
  const expects = new Int32Array(n).fill(-1);
  all.forEach((op, i) => {
    writes[i] = op.kind === "get" ? -1 : valueOf(op);
    if (op.kind === "get") expects[i] = intern(op.output ?? null);
  });
  // Per value, the unknown writes of it in call order, and how many of
  // them the current path has applied.
  const queues: number[][] = Array.from({ length: ids.size }, () => []);
  for (let op = k; op < n; op++) queues[writes[op]!]!.push(op);
  const used = new Int32Array(ids.size);

  // Events 2i (call) and 2i+1 (return) of the known operations, ordered by
  // time. On a tie a call comes before a return: operations whose ends
  // touch count as concurrent, which never turns a correct history into a
  // failure.
  const time = (event: number): number => {
    const op = all[event >> 1]!;
    return event & 1 ? op.return : op.call;
  };
  const events = Array.from({ length: 2 * k }, (_, i) => i);
  events.sort((a, b) => time(a) - time(b) || (a & 1) - (b & 1) || a - b);

  // The doubly linked list over entries 1..2k, with a head (0) and a tail
  // (2k+1) sentinel. `match` maps a call entry to its return entry.
  const tail = 2 * k + 1;
  const next = new Int32Array(tail + 1);
  const prev = new Int32Array(tail + 1);
  const entryOp = new Int32Array(tail + 1).fill(-1);
  const isCall = new Uint8Array(tail + 1);
  const match = new Int32Array(tail + 1);
  const callEntry = new Int32Array(k);
  for (let position = 0; position < events.length; position++) {
    const entry = position + 1;
    const event = events[position]!;
    const op = event >> 1;
    entryOp[entry] = op;
    if (event & 1) {
      match[callEntry[op]!] = entry;
    } else {
      isCall[entry] = 1;
      callEntry[op] = entry;
    }
  }
  for (let entry = 0; entry <= tail; entry++) {
    next[entry] = entry + 1;
    prev[entry] = entry - 1;
  }

  // Lifting removes a call and its return; unlifting restores them. Lifts
  // and unlifts nest like a stack, so the stale links a removed entry keeps
  // are exactly the ones needed to put it back.
  const unlink = (entry: number): void => {
    next[prev[entry]!] = next[entry]!;
    prev[next[entry]!] = prev[entry]!;
  };
  const relink = (entry: number): void => {
    next[prev[entry]!] = entry;
    prev[next[entry]!] = entry;
  };

  // The unknown write that could explain a get at `entry` reading
  // `value`, or -1: the next unused one of that value, if it was called
  // before the first pending known operation returned. The scan reached
  // `entry` without meeting a return, so that return lies further on.
  const unknownWriteFor = (value: number, entry: number): number => {
    const queue = queues[value]!;
    const op = queue[used[value]!];
    if (op === undefined) return -1;
    while (isCall[entry]) entry = next[entry]!;
    const deadline = entry === tail ? Infinity : all[entryOp[entry]!]!.return;
    return all[op]!.call <= deadline ? op : -1;
  };

  const linearized = new LinearizedSet(k, n - k);
  const cache = new ConfigurationCache();
  // Per linearized known operation: its call entry, the state before it
  // and the unknown write applied just before it (or -1).
  const stackEntry = new Int32Array(k);
  const stackState = new Int32Array(k);
  const stackHelper = new Int32Array(k);
  let depth = 0;
  let state = initialId;
  // For the failure reason: the deepest point the search reached.
  let bestDepth = -1;
  let stuckOp = -1;
  const started = performance.now();
  let steps = 0;

  // Moves that need an unknown write are tried only once every plain move
  // from the configuration has failed: a read is far more often explained
  // by a known write, and spending an unknown one early starves the read
  // that really needed it.
  const anyUnknown = n > k;
  let helping = false;
  let entry = next[0]!;
  while (depth < k) {
    if ((++steps & CLOCK_MASK) === 0 && timeoutMs !== Infinity) {
      if (performance.now() - started > timeoutMs) return { kind: "timeout" };
    }
    if (isCall[entry]) {
      const op = entryOp[entry]!;
      const value = writes[op]!;
      const wanted = expects[op]!;
      let helper = -1;
      if (helping) {
        if (value < 0 && wanted !== state) {
          helper = unknownWriteFor(wanted, entry);
        }
      }
      if (helping ? helper >= 0 : value >= 0 || wanted === state) {
        const after = value >= 0 ? value : wanted;
        if (helper >= 0) linearized.add(helper);
        linearized.add(op);
        if (cache.add(linearized, after)) {
          stackEntry[depth] = entry;
          stackState[depth] = state;
          stackHelper[depth] = helper;
          depth++;
          if (helper >= 0) used[wanted]!++;
          state = after;
          unlink(entry);
          unlink(match[entry]!);
          helping = false;
          entry = next[0]!;
          continue;
        }
        linearized.remove(op);
        if (helper >= 0) linearized.remove(helper);
      }
      entry = next[entry]!;
      continue;
    }
    // A return event: the operation it closes was not linearized in time
    // on this path.
    if (!helping && anyUnknown) {
      helping = true;
      entry = next[0]!;
      continue;
    }
    if (depth > bestDepth) {
      bestDepth = depth;
      stuckOp = entryOp[entry]!;
    }
    if (depth === 0) {
      const stuck = all[stuckOp];
      return {
        kind: "fail",
        reason: `No linearization exists: at best ${bestDepth} of the ${k} ` +
          `operations with a known outcome could be ordered before ` +
          (stuck === undefined ? "the end" : describe(stuck)) +
          ` had to take effect`,
      };
    }
    depth--;
    const undone = stackEntry[depth]!;
    const op = entryOp[undone]!;
    const helper = stackHelper[depth]!;
    state = stackState[depth]!;
    linearized.remove(op);
    if (helper >= 0) {
      linearized.remove(helper);
      used[writes[helper]!]!--;
    }
    relink(match[undone]!);
    relink(undone);
    // Resume the scan, in the phase that made the move.
    helping = helper >= 0;
    entry = next[undone]!;
  }
  return { kind: "ok" };
}
