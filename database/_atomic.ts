// Evaluating an atomic operation against a database's state at the
// operation's position in the write stream. Pure given what `read` returns:
// every database with the same data reaches the same outcome and effects,
// which is what lets each evaluate on its own (docs/architecture.md,
// "Atomic operations").

import {
  AtomicFlag,
  type AtomicReply,
  type AtomicStep,
  atomicWriteCost,
  ExpireFlag,
  HEADER_SIZE,
  KvValueTag,
  MAX_ATOMIC_MUTATIONS,
  MAX_ATOMIC_SET_KEY_BYTES,
  MAX_ATOMIC_WRITE_BYTES,
  MAX_FRAME_SIZE,
  MAX_KEY_SIZE,
  MAX_VALUE_SIZE,
  outcomeSize,
  SetFlag,
  StepKind,
  type StepResult,
  toHex,
  versionstampOf,
  type Write,
  WriteOp,
} from "../protocol/mod.ts";
import { toBinary } from "./_binary_key.ts";
import type { StoredEntry } from "./types.ts";

/** What evaluating an operation gives: the reply, and the writes to apply. */
export interface Evaluated {
  reply: AtomicReply;
  /** Plain writes numbered with the operation's seq; empty when nothing changed. */
  effects: Write[];
  /** The effects' keys as binary strings, in the same order. */
  ids: string[];
}

interface Slot {
  key: Uint8Array;
  id: string;
  /** The length of the value stored before the operation (0 when absent). */
  oldLength: number;
  /** The value as the steps see it: `null` when absent or expired. */
  value: Uint8Array | null;
  version: number | null;
  /** When the value expires; `undefined` when it does not. */
  expiresAt: number | undefined;
  /** Whether a value was stored, expired or not. */
  existed: boolean;
  /** Whether the stored value had an expiry. */
  oldExpiring: boolean;
  changed: boolean;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
/** A decimal integer as Redis accepts one: no sign on zero, no leading zeros. */
const INTEGER = /^(0|-?[1-9][0-9]{0,19})$/;

/** Redis's texts, so that RESP clients see what redis-server says. */
export const NOT_INTEGER = "ERR value is not an integer or out of range";
export const OVERFLOW = "ERR increment or decrement would overflow";
export const NOT_FLOAT = "ERR value is not a valid float";
export const NOT_FINITE = "ERR increment would produce NaN or Infinity";
export const TOO_BIG =
  `ERR string exceeds maximum allowed size (${MAX_VALUE_SIZE} bytes)`;
export const NOT_U64 = "ERR value is not a Deno.KvU64";

function readU64Value(value: Uint8Array | null): bigint | undefined {
  if (value === null) return undefined;
  if (value.length !== 9 || value[0] !== KvValueTag.U64) return undefined;
  return new DataView(value.buffer, value.byteOffset + 1, 8).getBigUint64(
    0,
    true,
  );
}

function u64Value(n: bigint): Uint8Array {
  const out = new Uint8Array(9);
  out[0] = KvValueTag.U64;
  new DataView(out.buffer).setBigUint64(1, n, true);
  return out;
}

/**
 * The key of a SET_VERSIONSTAMPED step: its own, then the operation's
 * versionstamp as a tuple string element (0x02, 20 hex digits, 0x00).
 */
function versionstampedKey(key: Uint8Array, seq: number): Uint8Array {
  const hex = toHex(versionstampOf(seq));
  const out = new Uint8Array(key.length + 22);
  out.set(key);
  out[key.length] = 0x02;
  for (let i = 0; i < 20; i++) out[key.length + 1 + i] = hex.charCodeAt(i);
  out[key.length + 21] = 0x00;
  return out;
}

/** ASCII text as bytes, without a TextEncoder call (digits, mostly). */
function ascii(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

function parseInteger(value: Uint8Array): bigint | undefined {
  // Up to 15 digits, plain arithmetic is exact and cheaper than text.
  if (value.length > 0 && value.length <= 15) {
    let i = value[0] === 0x2d ? 1 : 0;
    if (i === value.length) return undefined;
    // No leading zeros, and no "-0".
    if (value[i] === 0x30 && (value.length > i + 1 || i === 1)) {
      return undefined;
    }
    let n = 0;
    for (; i < value.length; i++) {
      const digit = value[i]! - 0x30;
      if (digit < 0 || digit > 9) return undefined;
      n = n * 10 + digit;
    }
    return BigInt(value[0] === 0x2d ? -n : n);
  }
  if (value.length > 20) return undefined;
  const text = decoder.decode(value);
  if (!INTEGER.test(text)) return undefined;
  const n = BigInt(text);
  return n < I64_MIN || n > I64_MAX ? undefined : n;
}

function parseFloatStrict(text: string): number | undefined {
  // Redis refuses spaces, and empty or partial numbers.
  if (text.length === 0 || text.trim() !== text) return undefined;
  const n = Number(text);
  return Number.isNaN(n) ? undefined : n;
}

/** Reads a key's entry, at once or later; `id` is its binary string. */
export type Reader = (
  key: Uint8Array,
  id: string,
) => StoredEntry | null | Promise<StoredEntry | null>;

/**
 * Evaluates `steps` numbered `seq` against the entries `read` returns (the
 * state after every earlier write), at the operation's time `now` (the
 * router's clock, carried by the operation): a value whose expiry is at or
 * before it is absent to the steps, whatever the database's own clock says.
 */
export async function evaluate(
  seq: number,
  flags: number,
  steps: readonly AtomicStep[],
  read: Reader,
  now = 0,
): Promise<Evaluated> {
  // Versionstamped keys are known only now, from the operation's number.
  if (steps.some((step) => step.kind === StepKind.SET_VERSIONSTAMPED)) {
    const named: AtomicStep[] = [];
    for (const step of steps) {
      if (step.kind !== StepKind.SET_VERSIONSTAMPED) {
        named.push(step);
        continue;
      }
      const key = versionstampedKey(step.key, seq);
      if (key.length > MAX_KEY_SIZE) {
        return refuse(
          seq,
          `ERR a versionstamped key of ${key.length} bytes exceeds the limit of ${MAX_KEY_SIZE}`,
        );
      }
      named.push({ ...step, kind: StepKind.SET, key });
    }
    steps = named;
  }
  const slots = new Map<string, Slot>();
  // One binary string a step, computed once.
  const order: Slot[] = new Array(steps.length);
  for (let i = 0; i < steps.length; i++) {
    const key = steps[i]!.key;
    const id = toBinary(key);
    let slot = slots.get(id);
    if (slot === undefined) {
      let entry = read(key, id);
      if (entry instanceof Promise) entry = await entry;
      const expiresAt = entry?.expiresAt;
      const live = entry !== null &&
        (expiresAt === undefined || expiresAt > now);
      slot = {
        key,
        id,
        value: live ? entry!.value : null,
        version: live ? entry!.version : null,
        expiresAt: live ? expiresAt : undefined,
        existed: entry !== null,
        oldExpiring: expiresAt !== undefined,
        oldLength: entry?.value.length ?? 0,
        changed: false,
      };
      slots.set(id, slot);
    }
    order[i] = slot;
  }
  // Every check holds, wherever it stands among the steps, or nothing applies.
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i]!;
    if (step.kind !== StepKind.CHECK) continue;
    if (order[i]!.version !== step.version) {
      return {
        reply: { committed: false, version: seq, results: [] },
        effects: [],
        ids: [],
      };
    }
  }
  const results: StepResult[] = [];
  const bytes = (value: Uint8Array | null): StepResult =>
    value === null ? { kind: "nil" } : { kind: "bytes", value };
  const set = (slot: Slot, value: Uint8Array | null) => {
    slot.value = value;
    if (value === null) slot.expiresAt = undefined;
    slot.changed = true;
  };
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i]!;
    const slot = order[i]!;
    switch (step.kind) {
      case StepKind.CHECK:
        break;
      case StepKind.GET:
        results.push(bytes(slot.value));
        break;
      case StepKind.SET: {
        const exists = slot.value !== null;
        const old = slot.value;
        const skip = (step.flags & SetFlag.NX && exists) ||
          (step.flags & SetFlag.XX && !exists);
        if (!skip) {
          const expiresAt = step.flags & SetFlag.KEEP_TTL
            ? slot.expiresAt
            : step.flags & SetFlag.EXPIRE_AT
            ? step.time!
            : step.flags & SetFlag.EXPIRE_IN
            ? now + step.time!
            : undefined;
          // Set already expired, it is gone at once, as in Redis.
          if (expiresAt !== undefined && expiresAt <= now) {
            set(slot, null);
          } else {
            set(slot, step.value);
            slot.expiresAt = expiresAt;
          }
        }
        results.push(
          step.flags & SetFlag.GET
            ? bytes(old)
            : { kind: "integer", value: skip ? 0n : 1n },
        );
        break;
      }
      case StepKind.DELETE:
        results.push({ kind: "integer", value: slot.value === null ? 0n : 1n });
        if (slot.value !== null) set(slot, null);
        break;
      case StepKind.EXPIRE:
        results.push({ kind: "integer", value: expire(slot, step, now) });
        break;
      case StepKind.TTL:
        results.push({
          kind: "integer",
          value: slot.value === null
            ? -2n
            : slot.expiresAt === undefined
            ? -1n
            : BigInt(slot.expiresAt - now),
        });
        break;
      case StepKind.SUM_U64:
      case StepKind.MIN_U64:
      case StepKind.MAX_U64: {
        const current = readU64Value(slot.value);
        if (slot.value !== null && current === undefined) {
          results.push({ kind: "error", message: NOT_U64 });
          break;
        }
        const next = current === undefined
          ? step.operand
          : step.kind === StepKind.SUM_U64
          ? BigInt.asUintN(64, current + step.operand)
          : step.kind === StepKind.MIN_U64
          ? (current < step.operand ? current : step.operand)
          : (current > step.operand ? current : step.operand);
        if (next !== current) set(slot, u64Value(next));
        results.push({ kind: "nil" });
        break;
      }
      case StepKind.SWEEP: {
        // Stored but absent to the steps: expired. Deleted for real now.
        const expired = slot.value === null && slot.existed && !slot.changed;
        if (expired) set(slot, null);
        results.push({ kind: "integer", value: expired ? 1n : 0n });
        break;
      }
      case StepKind.ADD: {
        const current = slot.value === null ? 0n : parseInteger(slot.value);
        if (current === undefined) {
          results.push({ kind: "error", message: NOT_INTEGER });
          break;
        }
        const next = current + step.delta;
        if (next < I64_MIN || next > I64_MAX) {
          results.push({ kind: "error", message: OVERFLOW });
          break;
        }
        set(slot, ascii(next.toString()));
        results.push({ kind: "integer", value: next });
        break;
      }
      case StepKind.MIN:
      case StepKind.MAX: {
        if (slot.value === null) {
          set(slot, encoder.encode(step.delta.toString()));
          results.push({ kind: "integer", value: step.delta });
          break;
        }
        const current = parseInteger(slot.value);
        if (current === undefined) {
          results.push({ kind: "error", message: NOT_INTEGER });
          break;
        }
        const keep = step.kind === StepKind.MIN
          ? (current < step.delta ? current : step.delta)
          : (current > step.delta ? current : step.delta);
        if (keep !== current) set(slot, encoder.encode(keep.toString()));
        results.push({ kind: "integer", value: keep });
        break;
      }
      case StepKind.ADD_FLOAT: {
        const current = slot.value === null
          ? 0
          : parseFloatStrict(decoder.decode(slot.value));
        const delta = parseFloatStrict(step.delta);
        if (current === undefined || delta === undefined) {
          results.push({ kind: "error", message: NOT_FLOAT });
          break;
        }
        const next = current + delta;
        if (!Number.isFinite(next)) {
          results.push({ kind: "error", message: NOT_FINITE });
          break;
        }
        const value = encoder.encode(formatFloat(next));
        set(slot, value);
        results.push({ kind: "bytes", value });
        break;
      }
      case StepKind.APPEND: {
        const old = slot.value ?? new Uint8Array(0);
        const length = old.length + step.value.length;
        if (length > MAX_VALUE_SIZE) {
          results.push({ kind: "error", message: TOO_BIG });
          break;
        }
        const value = new Uint8Array(length);
        value.set(old);
        value.set(step.value, old.length);
        set(slot, value);
        results.push({ kind: "integer", value: BigInt(length) });
        break;
      }
    }
  }
  if (
    flags & AtomicFlag.ALL_OR_NOTHING &&
    results.some((result) => result.kind === "error")
  ) {
    return {
      reply: { committed: false, version: seq, results },
      effects: [],
      ids: [],
    };
  }
  const effects: Write[] = [];
  const ids: string[] = [];
  let costBytes = 0;
  let mutations = 0;
  let setKeyBytes = 0;
  for (const slot of slots.values()) {
    if (!slot.changed || (slot.value === null && !slot.existed)) continue;
    const cost = atomicWriteCost(
      slot.key.length,
      slot.existed ? slot.oldLength : null,
      slot.value?.length ?? null,
      slot.oldExpiring || slot.expiresAt !== undefined,
    );
    costBytes += cost.bytes;
    mutations += cost.mutations;
    setKeyBytes += cost.setKeyBytes;
    ids.push(slot.id);
    effects.push(
      slot.value === null
        ? { seq, op: WriteOp.DELETE, key: slot.key }
        : slot.expiresAt === undefined
        ? { seq, op: WriteOp.SET, key: slot.key, value: slot.value }
        : {
          seq,
          op: WriteOp.SET,
          key: slot.key,
          value: slot.value,
          expiresAt: slot.expiresAt,
        },
    );
  }
  // The OUTCOME frame carries the reply and the writes: it must fit a frame,
  // with some room to spare.
  const outcome = 64 + outcomeSize(results, effects);
  // Every database refuses alike: the same state gives the same estimates.
  const limit = costBytes > MAX_ATOMIC_WRITE_BYTES
    ? `would cost about ${costBytes} bytes of Deno KV mutations, more than the limit of ${MAX_ATOMIC_WRITE_BYTES}`
    : mutations > MAX_ATOMIC_MUTATIONS
    ? `would cost about ${mutations} Deno KV mutations, more than the limit of ${MAX_ATOMIC_MUTATIONS}`
    : setKeyBytes > MAX_ATOMIC_SET_KEY_BYTES
    ? `would set about ${setKeyBytes} bytes of Deno KV keys, more than the limit of ${MAX_ATOMIC_SET_KEY_BYTES}`
    : outcome > MAX_FRAME_SIZE - HEADER_SIZE
    ? `would return and write ${outcome} bytes, more than a frame holds (${MAX_FRAME_SIZE})`
    : undefined;
  if (limit !== undefined) {
    return {
      reply: {
        committed: false,
        version: seq,
        results: [{
          kind: "error",
          message: `ERR the atomic operation ${limit}; split it`,
        }],
      },
      effects: [],
      ids: [],
    };
  }
  return { reply: { committed: true, version: seq, results }, effects, ids };
}

/** An operation refused whole, with the reason as its one result. */
function refuse(seq: number, message: string): Evaluated {
  return {
    reply: {
      committed: false,
      version: seq,
      results: [{ kind: "error", message }],
    },
    effects: [],
    ids: [],
  };
}

/**
 * Carries out an EXPIRE step on its key's slot, with Redis's rules: 0 when
 * the key is absent or a condition does not hold; an expiry at or before
 * `now` deletes the key.
 */
function expire(
  slot: Slot,
  step: { flags: number; time: number },
  now: number,
): bigint {
  if (slot.value === null) return 0n;
  const current = slot.expiresAt;
  if (step.flags & ExpireFlag.PERSIST) {
    if (current === undefined) return 0n;
    slot.expiresAt = undefined;
    slot.changed = true;
    return 1n;
  }
  const at = step.flags & ExpireFlag.RELATIVE ? now + step.time : step.time;
  // No expiry counts as an infinite one for GT and LT.
  if (
    (step.flags & ExpireFlag.NX && current !== undefined) ||
    (step.flags & ExpireFlag.XX && current === undefined) ||
    (step.flags & ExpireFlag.GT && (current === undefined || at <= current)) ||
    (step.flags & ExpireFlag.LT && current !== undefined && at >= current)
  ) {
    return 0n;
  }
  if (at <= now) {
    slot.value = null;
    slot.expiresAt = undefined;
  } else slot.expiresAt = at;
  slot.changed = true;
  return 1n;
}

/**
 * A float as INCRBYFLOAT answers it: plain decimal, no exponent, no
 * trailing zeros. Redis computes in long double; this is a double, so the
 * last digits of long fractions can differ.
 */
export function formatFloat(n: number): string {
  if (Number.isInteger(n)) return BigInt(n).toString();
  const text = String(n);
  if (!text.includes("e")) return text;
  // Expand an exponent into plain digits, as Redis never prints one.
  return n.toFixed(20).replace(/\.?0+$/, "");
}
