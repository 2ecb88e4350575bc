/**
 * Redis commands that become atomic operations: each is planned as steps
 * and a way to turn the steps' results into its reply, so that one command
 * alone, or many queued by MULTI, run as one operation. Replies and error
 * texts are Redis's (7.0).
 *
 * @module
 */

import {
  type AtomicStep,
  ExpireFlag,
  MAX_EXPIRE_MS,
  MAX_KEY_SIZE,
  respArray,
  respBulk,
  respError,
  respInteger,
  respSimple,
  SetFlag,
  StepKind,
  type StepResult,
} from "../protocol/mod.ts";

const decoder = new TextDecoder();

/** A command as steps, and its reply from their results. */
export interface Plan {
  steps: AtomicStep[];
  /** Builds the reply from this command's results (one per non-CHECK step). */
  reply(results: StepResult[]): Uint8Array;
}

/**
 * A command that cannot be queued (wrong number of arguments, or one KVNDB
 * cannot run in a transaction): the error to answer with. Other errors,
 * such as an argument that is not a number, are the plan's reply, as in
 * Redis, where they surface when the command runs.
 */
export interface PlanError {
  error: string;
}

/** A plan that only answers `error`, with no step. */
function failing(error: string): Plan {
  return { steps: [], reply: () => respError(error) };
}

/** Commands planned here; the rest take the session's other paths. */
export const ATOMIC_COMMANDS: ReadonlySet<string> = new Set([
  "SETNX",
  "GETSET",
  "GETDEL",
  "INCR",
  "DECR",
  "INCRBY",
  "DECRBY",
  "INCRBYFLOAT",
  "APPEND",
  "SETEX",
  "PSETEX",
  "GETEX",
  "EXPIRE",
  "PEXPIRE",
  "EXPIREAT",
  "PEXPIREAT",
  "PERSIST",
  "TTL",
  "PTTL",
]);

/** Commands a transaction (MULTI … EXEC) may hold. */
export const TRANSACTION_COMMANDS: ReadonlySet<string> = new Set([
  ...ATOMIC_COMMANDS,
  "GET",
  "MGET",
  "SET",
  "MSET",
  "DEL",
  "UNLINK",
  "EXISTS",
  "STRLEN",
  "TYPE",
]);

const NOT_INTEGER = "ERR value is not an integer or out of range";
const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;

function wrongArity(name: string): PlanError {
  return {
    error: `ERR wrong number of arguments for '${name.toLowerCase()}' command`,
  };
}

function integerArgument(bytes: Uint8Array): bigint | undefined {
  const text = decoder.decode(bytes);
  // As Redis reads one: no leading zeros, no "-0".
  if (!/^(0|-?[1-9][0-9]{0,18})$/.test(text)) return undefined;
  const n = BigInt(text);
  return n < I64_MIN || n > I64_MAX ? undefined : n;
}

function result(results: StepResult[], i: number): StepResult {
  return results[i] ?? { kind: "nil" };
}

function errorOr(
  r: StepResult,
  reply: (r: StepResult) => Uint8Array,
): Uint8Array {
  return r.kind === "error" ? respError(r.message) : reply(r);
}

function bulk(r: StepResult): Uint8Array {
  return respBulk(r.kind === "bytes" ? r.value : null);
}

function integer(r: StepResult): Uint8Array {
  return respInteger(r.kind === "integer" ? r.value : 0);
}

function keyError(key: Uint8Array): Plan | undefined {
  if (key.length === 0 || key.length > MAX_KEY_SIZE) {
    return failing(
      `ERR key of ${key.length} bytes (KVNDB keys are 1 to ${MAX_KEY_SIZE} bytes)`,
    );
  }
  return undefined;
}

function checkKeys(keys: Uint8Array[]): Plan | undefined {
  for (const key of keys) {
    const error = keyError(key);
    if (error !== undefined) return error;
  }
  return undefined;
}

/**
 * Reads an expiry argument of `command` as Redis does: an integer, in
 * seconds (`EX`, `EXAT`) or ms, turned into ms. `positive` refuses zero and
 * below, as SET, SETEX and GETEX do. Returns the error reply's text when it
 * is not one.
 */
function expiryArgument(
  bytes: Uint8Array,
  seconds: boolean,
  command: string,
  positive: boolean,
): number | string {
  const n = integerArgument(bytes);
  if (n === undefined) return NOT_INTEGER;
  const ms = seconds ? n * 1000n : n;
  if (
    (positive && n <= 0n) || ms > BigInt(MAX_EXPIRE_MS) ||
    ms < -BigInt(MAX_EXPIRE_MS)
  ) {
    return `ERR invalid expire time in '${command}' command`;
  }
  return Number(ms);
}

/** SET's and GETEX's expiry options, by name: whether in seconds, whether absolute. */
const EXPIRY_OPTIONS: Record<string, [seconds: boolean, absolute: boolean]> = {
  EX: [true, false],
  PX: [false, false],
  EXAT: [true, true],
  PXAT: [false, true],
};

/** Plans `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL]`. */
function planSet(args: Uint8Array[]): Plan | PlanError {
  if (args.length < 2) return wrongArity("SET");
  let flags = 0;
  let time: number | undefined;
  let when: [Uint8Array, boolean] | undefined;
  let timed = false;
  for (let i = 2; i < args.length; i++) {
    const name = decoder.decode(args[i]!).toUpperCase();
    const expiry = EXPIRY_OPTIONS[name];
    if (name === "NX" && !(flags & SetFlag.XX)) flags |= SetFlag.NX;
    else if (name === "XX" && !(flags & SetFlag.NX)) flags |= SetFlag.XX;
    else if (name === "GET") flags |= SetFlag.GET;
    else if (name === "KEEPTTL" && !timed) {
      flags |= SetFlag.KEEP_TTL;
      timed = true;
    } else if (expiry !== undefined && !timed && i + 1 < args.length) {
      // Checked once every option has been read: a syntax error goes first.
      when = [args[++i]!, expiry[0]];
      flags |= expiry[1] ? SetFlag.EXPIRE_AT : SetFlag.EXPIRE_IN;
      timed = true;
    } else return failing("ERR syntax error");
  }
  if (when !== undefined) {
    const ms = expiryArgument(when[0], when[1], "set", true);
    if (typeof ms === "string") return failing(ms);
    time = ms;
  }
  const [key, value] = args as [Uint8Array, Uint8Array];
  const step: AtomicStep = time === undefined
    ? { kind: StepKind.SET, key, value, flags }
    : { kind: StepKind.SET, key, value, flags, time };
  return {
    steps: [step],
    reply: (results) => {
      const r = result(results, 0);
      if (flags & SetFlag.GET) return bulk(r);
      return r.kind === "integer" && r.value === 0n
        ? respBulk(null)
        : respSimple("OK");
    },
  };
}

/** Plans `SETEX key seconds value` and `PSETEX key ms value`. */
function planSetex(name: string, args: Uint8Array[]): Plan | PlanError {
  if (args.length !== 3) return wrongArity(name);
  const [key, when, value] = args as [Uint8Array, Uint8Array, Uint8Array];
  const ms = expiryArgument(when, name === "SETEX", name.toLowerCase(), true);
  if (typeof ms === "string") return failing(ms);
  return keyError(key) ?? {
    steps: [{
      kind: StepKind.SET,
      key,
      value,
      flags: SetFlag.EXPIRE_IN,
      time: ms,
    }],
    reply: () => respSimple("OK"),
  };
}

/** Plans `GETEX key [EX s|PX ms|EXAT t|PXAT t|PERSIST]`. */
function planGetex(args: Uint8Array[]): Plan | PlanError {
  if (args.length === 0) return wrongArity("GETEX");
  const key = args[0]!;
  const steps: AtomicStep[] = [{ kind: StepKind.GET, key }];
  if (args.length > 1) {
    const name = decoder.decode(args[1]!).toUpperCase();
    const expiry = EXPIRY_OPTIONS[name];
    if (name === "PERSIST" && args.length === 2) {
      steps.push({
        kind: StepKind.EXPIRE,
        key,
        flags: ExpireFlag.PERSIST,
        time: 0,
      });
    } else if (expiry !== undefined && args.length === 3) {
      const ms = expiryArgument(args[2]!, expiry[0], "getex", true);
      if (typeof ms === "string") return failing(ms);
      steps.push({
        kind: StepKind.EXPIRE,
        key,
        flags: expiry[1] ? 0 : ExpireFlag.RELATIVE,
        time: ms,
      });
    } else return failing("ERR syntax error");
  }
  return keyError(key) ?? {
    steps,
    reply: (results) => bulk(result(results, 0)),
  };
}

/** Plans `EXPIRE key seconds [NX|XX|GT|LT]` and its siblings. */
function planExpire(name: string, args: Uint8Array[]): Plan | PlanError {
  if (args.length < 2) return wrongArity(name);
  const [key, when] = args as [Uint8Array, Uint8Array];
  let flags = name === "EXPIRE" || name === "PEXPIRE" ? ExpireFlag.RELATIVE : 0;
  for (const option of args.slice(2)) {
    const text = decoder.decode(option);
    const bit = (ExpireFlag as Record<string, number>)[text.toUpperCase()];
    if (bit === undefined || bit > ExpireFlag.LT) {
      return failing(`ERR Unsupported option ${text}`);
    }
    flags |= bit;
  }
  const conditions = flags & 15;
  if (conditions & ExpireFlag.NX && conditions !== ExpireFlag.NX) {
    return failing(
      "ERR NX and XX, GT or LT options at the same time are not compatible",
    );
  }
  if ((conditions & 12) === 12) {
    return failing("ERR GT and LT options at the same time are not compatible");
  }
  const seconds = name === "EXPIRE" || name === "EXPIREAT";
  const ms = expiryArgument(when, seconds, name.toLowerCase(), false);
  if (typeof ms === "string") return failing(ms);
  return keyError(key) ?? {
    steps: [{ kind: StepKind.EXPIRE, key, flags, time: ms }],
    reply: (results) => integer(result(results, 0)),
  };
}

/**
 * Plans one command as atomic steps, or says why it cannot run. `name` is
 * upper case; `args` are the arguments after the name.
 */
export function planCommand(
  name: string,
  args: Uint8Array[],
): Plan | PlanError {
  switch (name) {
    case "GET": {
      if (args.length !== 1) return wrongArity(name);
      const key = args[0]!;
      return checkKeys([key]) ?? {
        steps: [{ kind: StepKind.GET, key }],
        reply: (results) => bulk(result(results, 0)),
      };
    }
    case "MGET": {
      if (args.length === 0) return wrongArity(name);
      return checkKeys(args) ?? {
        steps: args.map((key) => ({ kind: StepKind.GET, key })),
        reply: (results) =>
          respArray(args.map((_, i) => bulk(result(results, i)))),
      };
    }
    case "EXISTS":
    case "STRLEN":
    case "TYPE": {
      if (name === "EXISTS" ? args.length === 0 : args.length !== 1) {
        return wrongArity(name);
      }
      return checkKeys(args) ?? {
        steps: args.map((key) => ({ kind: StepKind.GET, key })),
        reply: (results) => {
          if (name === "EXISTS") {
            return respInteger(
              results.filter((r) => r.kind === "bytes").length,
            );
          }
          const r = result(results, 0);
          if (name === "TYPE") {
            return respSimple(r.kind === "bytes" ? "string" : "none");
          }
          return respInteger(r.kind === "bytes" ? r.value.length : 0);
        },
      };
    }
    case "SET": {
      const error = args.length > 0 ? keyError(args[0]!) : undefined;
      return error ?? planSet(args);
    }
    case "MSET": {
      if (args.length === 0 || args.length % 2 !== 0) return wrongArity(name);
      const steps: AtomicStep[] = [];
      for (let i = 0; i < args.length; i += 2) {
        const error = keyError(args[i]!);
        if (error !== undefined) return error;
        steps.push({
          kind: StepKind.SET,
          key: args[i]!,
          value: args[i + 1]!,
          flags: 0,
        });
      }
      return { steps, reply: () => respSimple("OK") };
    }
    case "SETNX": {
      if (args.length !== 2) return wrongArity(name);
      const [key, value] = args as [Uint8Array, Uint8Array];
      return keyError(key) ?? {
        steps: [{ kind: StepKind.SET, key, value, flags: SetFlag.NX }],
        reply: (results) => integer(result(results, 0)),
      };
    }
    case "GETSET": {
      if (args.length !== 2) return wrongArity(name);
      const [key, value] = args as [Uint8Array, Uint8Array];
      return keyError(key) ?? {
        steps: [{ kind: StepKind.SET, key, value, flags: SetFlag.GET }],
        reply: (results) => bulk(result(results, 0)),
      };
    }
    case "GETDEL": {
      if (args.length !== 1) return wrongArity(name);
      const key = args[0]!;
      return keyError(key) ?? {
        steps: [{ kind: StepKind.GET, key }, { kind: StepKind.DELETE, key }],
        reply: (results) => bulk(result(results, 0)),
      };
    }
    case "DEL":
    case "UNLINK": {
      if (args.length === 0) return wrongArity(name);
      return checkKeys(args) ?? {
        steps: args.map((key) => ({ kind: StepKind.DELETE, key })),
        reply: (results) =>
          respInteger(
            results.filter((r) => r.kind === "integer" && r.value === 1n)
              .length,
          ),
      };
    }
    case "INCR":
    case "DECR":
    case "INCRBY":
    case "DECRBY": {
      const by = name === "INCRBY" || name === "DECRBY";
      if (args.length !== (by ? 2 : 1)) return wrongArity(name);
      const key = args[0]!;
      let delta = 1n;
      if (by) {
        const n = integerArgument(args[1]!);
        if (n === undefined) return failing(NOT_INTEGER);
        if (name === "DECRBY" && n === I64_MIN) {
          return failing("ERR decrement would overflow");
        }
        delta = n;
      }
      if (name.startsWith("DECR")) delta = -delta;
      return keyError(key) ?? {
        steps: [{ kind: StepKind.ADD, key, delta }],
        reply: (results) => errorOr(result(results, 0), integer),
      };
    }
    case "INCRBYFLOAT": {
      if (args.length !== 2) return wrongArity(name);
      const key = args[0]!;
      const text = decoder.decode(args[1]!);
      const n = Number(text);
      if (
        text.length === 0 || text.length > 64 || text.trim() !== text ||
        Number.isNaN(n)
      ) {
        return failing("ERR value is not a valid float");
      }
      if (!Number.isFinite(n)) {
        return failing("ERR increment would produce NaN or Infinity");
      }
      return keyError(key) ?? {
        steps: [{ kind: StepKind.ADD_FLOAT, key, delta: text }],
        reply: (results) => errorOr(result(results, 0), bulk),
      };
    }
    case "SETEX":
    case "PSETEX":
      return planSetex(name, args);
    case "GETEX":
      return planGetex(args);
    case "EXPIRE":
    case "PEXPIRE":
    case "EXPIREAT":
    case "PEXPIREAT":
      return planExpire(name, args);
    case "PERSIST": {
      if (args.length !== 1) return wrongArity(name);
      const key = args[0]!;
      return keyError(key) ?? {
        steps: [{
          kind: StepKind.EXPIRE,
          key,
          flags: ExpireFlag.PERSIST,
          time: 0,
        }],
        reply: (results) => integer(result(results, 0)),
      };
    }
    case "TTL":
    case "PTTL": {
      if (args.length !== 1) return wrongArity(name);
      const key = args[0]!;
      return keyError(key) ?? {
        steps: [{ kind: StepKind.TTL, key }],
        reply: (results) => {
          const r = result(results, 0);
          const ms = r.kind === "integer" ? r.value : -2n;
          // Seconds rounded to the nearest, as Redis answers TTL.
          return respInteger(
            name === "PTTL" || ms < 0n ? ms : (ms + 500n) / 1000n,
          );
        },
      };
    }
    case "APPEND": {
      if (args.length !== 2) return wrongArity(name);
      const [key, value] = args as [Uint8Array, Uint8Array];
      return keyError(key) ?? {
        steps: [{ kind: StepKind.APPEND, key, value }],
        reply: (results) => errorOr(result(results, 0), integer),
      };
    }
    default:
      return {
        error: `ERR KVNDB cannot run '${name.toLowerCase()}' in a transaction`,
      };
  }
}

/** How many results a plan's steps give (CHECK steps give none). */
export function resultCount(plan: Plan): number {
  let count = 0;
  for (const step of plan.steps) if (step.kind !== StepKind.CHECK) count++;
  return count;
}
