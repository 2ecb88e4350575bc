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
 * Plans `SET key value [NX|XX] [GET]`. Expiry options are refused: KVNDB
 * does not expire keys yet.
 */
function planSet(args: Uint8Array[]): Plan | PlanError {
  if (args.length < 2) return wrongArity("SET");
  let flags = 0;
  for (const option of args.slice(2)) {
    const name = decoder.decode(option).toUpperCase();
    if (name === "NX" && !(flags & SetFlag.XX)) flags |= SetFlag.NX;
    else if (name === "XX" && !(flags & SetFlag.NX)) flags |= SetFlag.XX;
    else if (name === "GET") flags |= SetFlag.GET;
    else if (["EX", "PX", "EXAT", "PXAT", "KEEPTTL"].includes(name)) {
      return failing(
        `ERR KVNDB does not expire keys yet: SET's ${name} option is not supported`,
      );
    } else return failing("ERR syntax error");
  }
  const [key, value] = args as [Uint8Array, Uint8Array];
  return {
    steps: [{ kind: StepKind.SET, key, value, flags }],
    reply: (results) => {
      const r = result(results, 0);
      if (flags & SetFlag.GET) return bulk(r);
      return r.kind === "integer" && r.value === 0n
        ? respBulk(null)
        : respSimple("OK");
    },
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
