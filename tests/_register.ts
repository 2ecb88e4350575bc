// The per-key search of the linearizability checker (_linearizability.ts):
// one register's operations, get, set, delete and compare-and-set, searched
// for a linearization by Wing and Gong's method as improved by Lowe, with a
// cache of the configurations already explored.

import type { Operation } from "./_linearizability.ts";

/** What the search concluded about one key. */
export type Verdict =
  | { kind: "ok" }
  | { kind: "fail"; reason: string }
  | { kind: "timeout" };

/** How often (in search steps) the clock is read; a power of two minus 1. */
const CLOCK_MASK = 1023;

/**
 * The most runs of unknown operations enumerated for one need (see
 * checkRegister). Past it the key is reported as timed out rather than
 * judged: cutting the list short could make a correct history fail.
 */
const MAX_RUNS = 4096;

/** A known operation's precondition: none, register equal, or different. */
const ANY = 0;
const EQUAL = 1;
const DIFFERENT = 2;

/**
 * A one-line description of an operation for failure reasons.
 *
 * @param op The operation.
 * @returns For example `client 1 cas "a" -> "b" failed [2, 3]`.
 */
export function describe(op: Operation): string {
  let text = `client ${op.client} ${op.kind}`;
  if (op.kind === "set") text += ` ${JSON.stringify(op.value)}`;
  if (op.kind === "get") text += ` -> ${JSON.stringify(op.output)}`;
  if (op.kind === "cas") {
    text += ` ${JSON.stringify(op.expected)} -> ${JSON.stringify(op.value)}`;
    if (op.status === "ok") text += op.succeeded ? " succeeded" : " failed";
  }
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
 * Two reductions keep the search small. First, values: a value that no
 * operation observes (no get reads it, no compare-and-set expects it) can
 * be told apart from another such value by no operation, so all of them
 * share one state, and so do the configurations that hold them.
 *
 * Second, operations of unknown outcome. Only operations with a known
 * outcome are events in the list. An unknown one has no deadline: it never
 * forces a backtrack and could go at any point after its call (a
 * compare-and-set only where the register holds its expected value; where
 * it does not, applying it changes nothing), and letting the scan try every
 * such point multiplies the search by the number of places each could go.
 * Instead the search uses a canonical form that loses no linearization.
 * Take any linearization and a run of applied unknown operations between
 * two known ones, A and then B; only the state the run hands to B matters.
 * - If B needs no state (a set or a delete), or the run ends the history,
 *   drop the run.
 * - If B needs the register to equal v (a get of v, a compare-and-set
 *   expecting v that succeeded) and it did so without the run, drop the
 *   run. Otherwise keep only what produced v: the last operation that made
 *   the register v, and, if that is a compare-and-set from w, recursively
 *   what made it w. With repeated values cut out, that is a simple chain:
 *   a blind write or a compare-and-set from A's state, then
 *   compare-and-sets, each from the value the previous one wrote, to v.
 * - If B needs the register to differ from x (a compare-and-set expecting
 *   x that failed) and it already does, move the run past B, which does not
 *   change the register, to be judged at the next known operation. If it
 *   equals x, keep the run's first operation that changed the register (a
 *   blind write of another value or a compare-and-set from x) and move the
 *   rest past B, where it starts from that operation's value as before.
 * Unknown operations with the same effect (blind writes of one value,
 * compare-and-sets with the same expected and new value) are
 * interchangeable, and the i-th applied can be the i-th called, whose call
 * is no later. So a run of unknown operations is only ever applied right
 * before the known operation whose precondition needs it, as one of the
 * chains above, each link the earliest-called unused operation with its
 * effect; the rest never happen. With blind writes only, every chain is a
 * single write of the value a get reads, which is where this began.
 *
 * The cache stays exact: the future of a configuration depends only on the
 * register's state and on which operations are linearized, and since the
 * unknown ones with each effect are used in call order, the linearized set also
 * says how many of each are spent.
 */
export function checkRegister(
  ops: readonly Operation[],
  initial: string | null,
  timeoutMs: number,
): Verdict {
  // Values become small integers; 0 is every value nobody observes.
  const observed = new Set<string | null>();
  for (const op of ops) {
    if (op.kind === "get") observed.add(op.output ?? null);
    if (op.kind === "cas") observed.add(op.expected ?? null);
  }
  const ids = new Map<string | null, number>();
  const idOf = (value: string | null): number => {
    if (!observed.has(value)) return 0;
    let id = ids.get(value);
    if (id === undefined) ids.set(value, id = ids.size + 1);
    return id;
  };
  /** The value an operation writes when it takes effect, or -1. */
  const writeOf = (op: Operation): number =>
    op.kind === "get" || (op.kind === "cas" && op.status === "ok" &&
        !op.succeeded)
      ? -1
      : idOf(op.kind === "delete" ? null : op.value ?? null);
  /** What a known operation requires of the register, and of which value. */
  const needOf = (op: Operation): [number, number] =>
    op.kind === "get"
      ? [EQUAL, idOf(op.output ?? null)]
      : op.kind === "cas"
      ? [op.succeeded ? EQUAL : DIFFERENT, idOf(op.expected ?? null)]
      : [ANY, -1];
  const initialId = idOf(initial);
  const written = new Set<number>([initialId]);
  for (const op of ops) if (writeOf(op) >= 0) written.add(writeOf(op));
  // A known operation that needs a value no write could have produced
  // fails whatever the order; saying so directly beats a search that
  // explains nothing.
  for (const op of ops) {
    if (op.status !== "ok") continue;
    const [need, value] = needOf(op);
    if (need === EQUAL && !written.has(value)) {
      const verb = op.kind === "get" ? "read" : "expected";
      return {
        kind: "fail",
        reason: `${describe(op)} ${verb} a value that was never written`,
      };
    }
  }

  // Known operations first, then the unknown ones that some chain could
  // use (the others are never applied, see above), each in call order. A
  // chain ends in a value a known operation needs and runs back through
  // the expected values of unknown compare-and-sets; a known failed
  // compare-and-set can use any single write, so then all are kept.
  const byCall = (a: Operation, b: Operation) => a.call - b.call;
  const knownOps = ops.filter((op) => op.status === "ok").sort(byCall);
  const unknownAll = ops.filter((op) => op.status !== "ok");
  const useful = new Set<number>();
  let anyDifferent = false;
  for (const op of knownOps) {
    const [need, value] = needOf(op);
    if (need === EQUAL) useful.add(value);
    if (need === DIFFERENT) anyDifferent = true;
  }
  for (let grown = true; grown;) {
    grown = false;
    for (const op of unknownAll) {
      if (op.kind !== "cas" || !useful.has(writeOf(op))) continue;
      const from = idOf(op.expected ?? null);
      if (!useful.has(from)) {
        useful.add(from);
        grown = true;
      }
    }
  }
  const unknownOps = unknownAll
    .filter((op) => anyDifferent || useful.has(writeOf(op)))
    .sort(byCall);
  const all = [...knownOps, ...unknownOps];
  const k = knownOps.length;
  const n = all.length;
  // For each known operation: its precondition, the value it concerns,
  // and the value it writes (-1 when it leaves the register alone).
  const need = new Uint8Array(k);
  const needValue = new Int32Array(k);
  const writes = new Int32Array(k);
  knownOps.forEach((op, i) => {
    [need[i], needValue[i]] = needOf(op);
    writes[i] = writeOf(op);
  });

  // The unknown operations by effect: a blind write of a value, or a
  // compare-and-set from one value to another. Per effect, its operations in
  // call order and how many of them the current path has applied.
  const effectIds = new Map<string, number>();
  const effectFrom: number[] = [];
  const effectTo: number[] = [];
  const queues: number[][] = [];
  const blindEffect = new Map<number, number>();
  const casInto = new Map<number, number[]>();
  const casFrom = new Map<number, number[]>();
  for (let op = k; op < n; op++) {
    const operation = all[op]!;
    const to = writeOf(operation);
    const from = operation.kind === "cas"
      ? idOf(operation.expected ?? null)
      : -1;
    const name = `${from}>${to}`;
    let id = effectIds.get(name);
    if (id === undefined) {
      effectIds.set(name, id = queues.length);
      effectFrom.push(from);
      effectTo.push(to);
      queues.push([]);
      if (from < 0) {
        blindEffect.set(to, id);
      } else if (from !== to) {
        // A compare-and-set to the value it expects never changes a thing.
        const into = casInto.get(to) ?? [];
        into.push(id);
        casInto.set(to, into);
        const out = casFrom.get(from) ?? [];
        out.push(id);
        casFrom.set(from, out);
      }
    }
    queues[id]!.push(op);
  }
  const used = new Int32Array(queues.length);

  // The runs of unknown operations (as effects, in the order applied) that
  // can meet a precondition the state does not, per (need, value, state);
  // shortest first. Null when there are more than MAX_RUNS.
  const runCache = new Map<number, Int32Array[] | null>();
  const values = ids.size + 1;
  const runsFor = (
    condition: number,
    target: number,
    from: number,
  ): Int32Array[] | null => {
    const key = (condition * values + target) * values + from;
    let runs = runCache.get(key);
    if (runs === undefined) {
      runs = condition === EQUAL ? chainsTo(target, from) : changesFrom(target);
      runs?.sort((a, b) => a.length - b.length);
      runCache.set(key, runs);
    }
    return runs;
  };
  // Simple chains that make the register `target` from `from`, walked
  // backwards from the target.
  const chainsTo = (target: number, from: number): Int32Array[] | null => {
    const runs: Int32Array[] = [];
    const suffix: number[] = [];
    const visited = new Set<number>([target]);
    const emit = (first: number) => {
      runs.push(Int32Array.from([first, ...suffix.toReversed()]));
    };
    const walk = (value: number): boolean => {
      const blind = blindEffect.get(value);
      if (blind !== undefined) emit(blind);
      for (const cas of casInto.get(value) ?? []) {
        const before = effectFrom[cas]!;
        if (before === from) emit(cas);
        else if (!visited.has(before)) {
          visited.add(before);
          suffix.push(cas);
          const within = walk(before);
          suffix.pop();
          visited.delete(before);
          if (!within) return false;
        }
        if (runs.length > MAX_RUNS) return false;
      }
      return runs.length <= MAX_RUNS;
    };
    return walk(target) ? runs : null;
  };
  // Single operations that change the register from `value` (which it
  // holds) to something else.
  const changesFrom = (value: number): Int32Array[] => {
    const runs: Int32Array[] = [];
    for (const [to, effect] of blindEffect) {
      if (to !== value) runs.push(Int32Array.of(effect));
    }
    for (const effect of casFrom.get(value) ?? []) {
      runs.push(Int32Array.of(effect));
    }
    return runs;
  };

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

  // Whether each link of `run` has an unused operation called before the
  // first pending known operation returned, so that the run can go right
  // before the operation at `entry`. The scan reached `entry` without
  // meeting a return, so that return lies further on.
  const available = (run: Int32Array, entry: number): boolean => {
    while (isCall[entry]) entry = next[entry]!;
    const deadline = entry === tail ? Infinity : all[entryOp[entry]!]!.return;
    for (const effect of run) {
      const op = queues[effect]![used[effect]!];
      if (op === undefined || all[op]!.call > deadline) return false;
    }
    return true;
  };

  const linearized = new LinearizedSet(k, n - k);
  const cache = new ConfigurationCache();
  // Per linearized known operation: its call entry, the state before it,
  // the run of unknown operations applied just before it (or null) and
  // that run's index among the runs tried.
  const stackEntry = new Int32Array(k);
  const stackState = new Int32Array(k);
  const stackRun: (Int32Array | null)[] = new Array(k).fill(null);
  const stackOption = new Int32Array(k);
  let depth = 0;
  let state = initialId;
  // For the failure reason: the deepest point the search reached.
  let bestDepth = -1;
  let stuckOp = -1;
  const started = performance.now();
  let steps = 0;

  // Linearizes the known operation at `entry`, after `run` if not null,
  // unless the configuration that makes was explored already.
  const move = (
    entry: number,
    run: Int32Array | null,
    option: number,
  ): boolean => {
    const op = entryOp[entry]!;
    let before = state;
    if (run !== null) {
      for (const effect of run) {
        linearized.add(queues[effect]![used[effect]!]!);
        before = effectTo[effect]!;
      }
    }
    linearized.add(op);
    const after = writes[op]! >= 0 ? writes[op]! : before;
    if (!cache.add(linearized, after)) {
      linearized.remove(op);
      if (run !== null) {
        for (const effect of run) {
          linearized.remove(queues[effect]![used[effect]!]!);
        }
      }
      return false;
    }
    stackEntry[depth] = entry;
    stackState[depth] = state;
    stackRun[depth] = run;
    stackOption[depth] = option;
    depth++;
    if (run !== null) {
      for (const effect of run) used[effect]!++;
    }
    state = after;
    unlink(entry);
    unlink(match[entry]!);
    return true;
  };

  // Moves that need unknown operations are tried only once every plain
  // move from the configuration has failed: a precondition is far more
  // often met by known writes, and spending an unknown operation early
  // starves the one that really needed it.
  const anyUnknown = n > k;
  let helping = false;
  let option = 0;
  let entry = next[0]!;
  search: while (depth < k) {
    if ((++steps & CLOCK_MASK) === 0 && timeoutMs !== Infinity) {
      if (performance.now() - started > timeoutMs) return { kind: "timeout" };
    }
    if (isCall[entry]) {
      const op = entryOp[entry]!;
      const condition = need[op]!;
      const holds = condition === ANY ||
        (condition === EQUAL) === (needValue[op] === state);
      if (!helping) {
        if (holds && move(entry, null, 0)) {
          entry = next[0]!;
          continue;
        }
      } else if (!holds) {
        const runs = runsFor(condition, needValue[op]!, state);
        if (runs === null) return { kind: "timeout" };
        for (; option < runs.length; option++) {
          const run = runs[option]!;
          if (available(run, entry) && move(entry, run, option)) {
            helping = false;
            option = 0;
            entry = next[0]!;
            continue search;
          }
        }
      }
      option = 0;
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
    const run = stackRun[depth] ?? null;
    state = stackState[depth]!;
    linearized.remove(entryOp[undone]!);
    if (run !== null) {
      for (const effect of run) {
        used[effect]!--;
        linearized.remove(queues[effect]![used[effect]!]!);
      }
    }
    relink(match[undone]!);
    relink(undone);
    // Resume the scan where the move was made: a plain move at the next
    // entry, a move with a run at the same entry with the next run.
    if (run !== null) {
      helping = true;
      option = stackOption[depth]! + 1;
      entry = undone;
    } else {
      helping = false;
      option = 0;
      entry = next[undone]!;
    }
  }
  return { kind: "ok" };
}
