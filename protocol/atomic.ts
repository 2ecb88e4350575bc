/**
 * Atomic operations on the wire, as a client asks for them: the steps it
 * sends (ATOMIC), their limits and Deno KV cost, and the WRITE frame that
 * carries them once numbered. What comes back (ATOMIC_REPLY, OUTCOME,
 * RESOLVED) is in `atomic_outcome.ts`. See `docs/protocol.md`, "Atomic
 * operations".
 *
 * @module
 */

import { FrameWriter, PayloadReader } from "./frame.ts";
import { readI64, writeI64 } from "./_i64.ts";
import { ProtocolError, TooLargeError } from "./errors.ts";
import { checkKey, checkValue } from "./messages.ts";
import { Opcode, WriteOp } from "./opcodes.ts";

/**
 * The kinds of step. See `docs/protocol.md`, "Atomic operations".
 *
 * @example
 * ```ts
 * import { StepKind } from "./atomic.ts";
 * console.log(StepKind.CHECK); // 1
 * ```
 */
export const StepKind = {
  /** The key must have a version (or be absent), or nothing applies. */
  CHECK: 1,
  /** Returns the key's value at this point. */
  GET: 2,
  /** Sets the key, unconditionally or under a condition (`SetFlag`). */
  SET: 3,
  /** Deletes the key; returns 1 when it existed, else 0. */
  DELETE: 4,
  /** Adds a signed 64-bit integer to a decimal integer value. */
  ADD: 5,
  /** Appends bytes to the value; returns the new length. */
  APPEND: 6,
  /** Adds a decimal number to a decimal number value. */
  ADD_FLOAT: 7,
  /** Keeps the smaller of a decimal integer value and the operand. */
  MIN: 8,
  /** Keeps the larger of a decimal integer value and the operand. */
  MAX: 9,
  /** Sets or removes the key's expiry, under conditions (`ExpireFlag`). */
  EXPIRE: 10,
  /** Returns the key's time to live in ms: -2 when absent, -1 without expiry. */
  TTL: 11,
  /** Deletes the key if it has expired at the operation's time (the router's sweep). */
  SWEEP: 12,
  /** Adds to a Deno KV u64 value, wrapping (`Deno.KvU64`; see `kvU64`). */
  SUM_U64: 13,
  /** Keeps the smaller of a Deno KV u64 value and the operand. */
  MIN_U64: 14,
  /** Keeps the larger of a Deno KV u64 value and the operand. */
  MAX_U64: 15,
  /**
   * A SET whose key is the given one followed by the operation's
   * versionstamp as a tuple string element (KV Connect's versionstamped keys).
   */
  SET_VERSIONSTAMPED: 16,
} as const;

/**
 * Options of a whole atomic operation, as bits.
 *
 * @example
 * ```ts
 * import { AtomicFlag } from "./atomic.ts";
 * console.log(AtomicFlag.ALL_OR_NOTHING); // 1
 * ```
 */
export const AtomicFlag = {
  /**
   * A step that fails (ADD on a value that is not an integer) undoes the
   * whole operation. Without it, as in Redis's EXEC, that step alone has no
   * effect and returns its error.
   */
  ALL_OR_NOTHING: 1,
} as const;

/**
 * Conditions and options of a SET step, as bits.
 *
 * @example
 * ```ts
 * import { SetFlag } from "./atomic.ts";
 * console.log(SetFlag.NX | SetFlag.GET); // 5
 * ```
 */
export const SetFlag = {
  /** Only when the key is absent. */
  NX: 1,
  /** Only when the key exists. */
  XX: 2,
  /** Return the value the key had before. */
  GET: 4,
  /** Expire at an absolute time (ms since the epoch), which follows. */
  EXPIRE_AT: 8,
  /** Expire that many ms after the operation's time, which follows. */
  EXPIRE_IN: 16,
  /** Keep the expiry the key has (otherwise a SET removes it). */
  KEEP_TTL: 32,
} as const;

/**
 * Conditions and options of an EXPIRE step, as bits; the conditions are
 * Redis's (`EXPIRE key seconds NX|XX|GT|LT`).
 *
 * @example
 * ```ts
 * import { ExpireFlag } from "./atomic.ts";
 * console.log(ExpireFlag.GT | ExpireFlag.RELATIVE); // 20
 * ```
 */
export const ExpireFlag = {
  /** Only when the key has no expiry. */
  NX: 1,
  /** Only when the key has an expiry. */
  XX: 2,
  /** Only when the new expiry is later than the key's (none counts as infinite). */
  GT: 4,
  /** Only when the new expiry is earlier than the key's (none counts as infinite). */
  LT: 8,
  /** The time is ms after the operation's time, not since the epoch. */
  RELATIVE: 16,
  /** Remove the expiry (the time is ignored); returns 1 when there was one. */
  PERSIST: 32,
} as const;

/** One step of an atomic operation. */
export type AtomicStep =
  | { kind: typeof StepKind.CHECK; key: Uint8Array; version: number | null }
  | { kind: typeof StepKind.GET; key: Uint8Array }
  | {
    kind: typeof StepKind.SET | typeof StepKind.SET_VERSIONSTAMPED;
    key: Uint8Array;
    value: Uint8Array;
    flags: number;
    /** With `EXPIRE_AT` or `EXPIRE_IN`: the time, in ms. */
    time?: number;
  }
  | {
    kind:
      | typeof StepKind.SUM_U64
      | typeof StepKind.MIN_U64
      | typeof StepKind.MAX_U64;
    key: Uint8Array;
    /** An unsigned 64-bit operand. */
    operand: bigint;
  }
  | {
    kind: typeof StepKind.EXPIRE;
    key: Uint8Array;
    flags: number;
    /** Ms since the epoch, or after the operation's time with `RELATIVE`. */
    time: number;
  }
  | {
    kind:
      | typeof StepKind.DELETE
      | typeof StepKind.TTL
      | typeof StepKind.SWEEP;
    key: Uint8Array;
  }
  | {
    kind: typeof StepKind.ADD | typeof StepKind.MIN | typeof StepKind.MAX;
    key: Uint8Array;
    delta: bigint;
  }
  | { kind: typeof StepKind.APPEND; key: Uint8Array; value: Uint8Array }
  | { kind: typeof StepKind.ADD_FLOAT; key: Uint8Array; delta: string };

/**
 * How a value written through the Deno KV front end begins: one byte that
 * says how the rest is encoded, as KV Connect's value encodings do. The
 * u64 steps (`SUM_U64` …) read and write `U64` values.
 *
 * @example
 * ```ts
 * import { KvValueTag } from "./atomic.ts";
 * console.log(KvValueTag.U64); // 2
 * ```
 */
export const KvValueTag = {
  /** V8 serialization (any structured-cloneable value). */
  V8: 1,
  /** An unsigned 64-bit integer, 8 bytes little-endian (`Deno.KvU64`). */
  U64: 2,
  /** Raw bytes (`Uint8Array`). */
  BYTES: 3,
} as const;

/**
 * The 10-byte versionstamp of a sequence number, as KV Connect carries it:
 * the number big-endian in 8 bytes, then two zero bytes.
 *
 * @param seq The sequence number.
 * @returns The versionstamp.
 * @example
 * ```ts
 * import { versionstampOf } from "./atomic.ts";
 * console.log(versionstampOf(1)[7]); // 1
 * ```
 */
export function versionstampOf(seq: number): Uint8Array {
  const out = new Uint8Array(10);
  const view = new DataView(out.buffer);
  view.setUint32(0, Math.floor(seq / 0x1_0000_0000));
  view.setUint32(4, seq >>> 0);
  return out;
}

/** Most steps in one atomic operation. */
export const MAX_ATOMIC_STEPS = 128;
/** Most bytes of an atomic operation's encoded steps. */
export const MAX_ATOMIC_BYTES = 640 * 1024;
/**
 * Most bytes of mutations an atomic operation may cost a Deno KV database,
 * as every database estimates it alike from the values before and after
 * ({@linkcode atomicWriteCost}): within Deno KV's 800 KiB an atomic commit,
 * so that a crash never leaves part of an operation.
 */
export const MAX_ATOMIC_WRITE_BYTES = 768 * 1024;
/** Most mutations an atomic operation may cost, estimated likewise (Deno KV allows 1,000). */
export const MAX_ATOMIC_MUTATIONS = 900;
/** Most bytes of keys set that it may cost, estimated likewise (Deno KV allows 80 KiB). */
export const MAX_ATOMIC_SET_KEY_BYTES = 72 * 1024;

/**
 * A bound on the piece of a value a Deno KV database stores per entry: a
 * value up to this size is stored in its entry, whatever its key.
 */
const COST_CHUNK_BYTES = 60_000;

/**
 * Estimates what leaving `newLength` bytes (or, with `null`, nothing) under
 * `key`, which held `oldLength` bytes (or nothing), costs a Deno KV
 * database: an upper bound of its mutations and of their bytes, the same
 * on every database whatever its backend.
 *
 * @param keyLength The key's length.
 * @param oldLength The stored value's length, or `null` when absent.
 * @param newLength The new value's length, or `null` for a delete.
 * @param expiring Whether the key has an expiry before or after: its
 *   expiry record is then written or removed too.
 * @returns The mutations and bytes.
 * @example
 * ```ts
 * import { atomicWriteCost } from "./atomic.ts";
 * console.log(atomicWriteCost(1, null, 10).mutations); // 4
 * console.log(atomicWriteCost(1, null, 10, true).mutations); // 5
 * console.log(atomicWriteCost(1, null, null).setKeyBytes); // 0
 * ```
 */
export function atomicWriteCost(
  keyLength: number,
  oldLength: number | null,
  newLength: number | null,
  expiring = false,
): { mutations: number; bytes: number; setKeyBytes: number } {
  // Each key as Deno KV stores it: packed seven bits a byte, with the
  // namespace, part prefixes and a chunk index (32), and room for the hash
  // part a key too long to store whole is stored under (39).
  const keyBytes = Math.ceil(keyLength * 8 / 7) + 71;
  const pieces = (length: number | null) =>
    length === null ? 0 : Math.ceil(length / COST_CHUNK_BYTES);
  // The entry, the chunk count, each new piece, each old piece removed, and
  // the expiry record.
  const mutations = 3 + pieces(newLength) + pieces(oldLength) +
    (expiring ? 1 : 0);
  return {
    mutations,
    bytes: (newLength ?? 0) + mutations * (2 * keyBytes + 16),
    // The keys set: the entry, then the chunk count and each piece of a
    // value too large to be stored in its entry, and the expiry record.
    setKeyBytes: newLength === null ? 0 : (
      (newLength <= COST_CHUNK_BYTES ? 1 : 2 + pieces(newLength)) +
      (expiring ? 1 : 0)
    ) * keyBytes,
  };
}

const MAX_FLOAT_TEXT = 64;

/** SET flags that carry a time. */
const SET_TIMED = SetFlag.EXPIRE_AT | SetFlag.EXPIRE_IN;
/** Every SET flag. */
const SET_FLAGS = 63;
/** Every EXPIRE flag. */
const EXPIRE_FLAGS = 63;
/**
 * The largest time a step may carry, in ms, either way: beyond it a sum with
 * the operation's time could lose integer precision.
 */
export const MAX_EXPIRE_MS = 2 ** 52;

function stepSize(step: AtomicStep): number {
  const base = 1 + 2 + step.key.length;
  switch (step.kind) {
    case StepKind.CHECK:
      return base + 1 + 8;
    case StepKind.GET:
    case StepKind.DELETE:
    case StepKind.TTL:
    case StepKind.SWEEP:
      return base;
    case StepKind.SET:
    case StepKind.SET_VERSIONSTAMPED:
      return base + 1 + (step.flags & SET_TIMED ? 8 : 0) + 4 +
        step.value.length;
    case StepKind.SUM_U64:
    case StepKind.MIN_U64:
    case StepKind.MAX_U64:
      return base + 8;
    case StepKind.EXPIRE:
      return base + 1 + 8;
    case StepKind.ADD:
    case StepKind.MIN:
    case StepKind.MAX:
      return base + 8;
    case StepKind.APPEND:
      return base + 4 + step.value.length;
    case StepKind.ADD_FLOAT:
      return base + 1 + step.delta.length;
  }
}

/**
 * Returns the encoded size of a list of steps.
 *
 * @param steps The steps.
 * @returns Their size in bytes.
 * @example
 * ```ts
 * import { stepsSize, StepKind } from "./atomic.ts";
 * console.log(stepsSize([{ kind: StepKind.GET, key: new Uint8Array(1) }])); // 7
 * ```
 */
export function stepsSize(steps: readonly AtomicStep[]): number {
  let size = 1 + 2;
  for (const step of steps) size += stepSize(step);
  return size;
}

function writeSteps(
  writer: FrameWriter,
  flags: number,
  steps: readonly AtomicStep[],
): void {
  writer.u8(flags).u16(steps.length);
  for (const step of steps) {
    writer.u8(step.kind).bytes16(step.key);
    switch (step.kind) {
      case StepKind.CHECK:
        writer.u8(step.version === null ? 0 : 1).u64(step.version ?? 0);
        break;
      case StepKind.SET:
      case StepKind.SET_VERSIONSTAMPED:
        writer.u8(step.flags);
        if (step.flags & SET_TIMED) writeI64(writer, BigInt(step.time ?? 0));
        writer.bytes32(step.value);
        break;
      case StepKind.SUM_U64:
      case StepKind.MIN_U64:
      case StepKind.MAX_U64:
        writeI64(writer, BigInt.asIntN(64, step.operand));
        break;
      case StepKind.EXPIRE:
        writer.u8(step.flags);
        writeI64(writer, BigInt(step.time));
        break;
      case StepKind.ADD:
      case StepKind.MIN:
      case StepKind.MAX:
        writeI64(writer, step.delta);
        break;
      case StepKind.APPEND:
        writer.bytes32(step.value);
        break;
      case StepKind.ADD_FLOAT:
        writer.bytes8(new TextEncoder().encode(step.delta));
        break;
    }
  }
}

function checkTime(time: number): void {
  if (!Number.isSafeInteger(time) || Math.abs(time) > MAX_EXPIRE_MS) {
    throw new ProtocolError(`Invalid expiry time ${time}`);
  }
}

/** Checks steps against the limits before anything is sent or numbered. */
function checkSteps(steps: readonly AtomicStep[]): void {
  if (steps.length === 0) {
    throw new ProtocolError("An atomic operation needs at least one step");
  }
  if (steps.length > MAX_ATOMIC_STEPS) {
    throw new TooLargeError(
      `An atomic operation of ${steps.length} steps exceeds the limit of ${MAX_ATOMIC_STEPS}`,
    );
  }
  const size = stepsSize(steps);
  if (size > MAX_ATOMIC_BYTES) {
    throw new TooLargeError(
      `An atomic operation of ${size} bytes exceeds the limit of ${MAX_ATOMIC_BYTES} bytes`,
    );
  }
  for (const step of steps) {
    checkKey(step.key);
    if (
      step.kind === StepKind.SET || step.kind === StepKind.APPEND ||
      step.kind === StepKind.SET_VERSIONSTAMPED
    ) {
      checkValue(step.value);
    }
    if (
      (step.kind === StepKind.SUM_U64 || step.kind === StepKind.MIN_U64 ||
        step.kind === StepKind.MAX_U64) &&
      (step.operand < 0n || step.operand >= 2n ** 64n)
    ) {
      throw new ProtocolError(`Invalid u64 operand ${step.operand}`);
    }
    if (
      step.kind === StepKind.SET || step.kind === StepKind.SET_VERSIONSTAMPED
    ) {
      const timing = step.flags & (SET_TIMED | SetFlag.KEEP_TTL);
      if (
        step.flags & ~SET_FLAGS || (step.flags & 3) === 3 ||
        (timing & (timing - 1)) !== 0
      ) {
        throw new ProtocolError(`Invalid SET step flags ${step.flags}`);
      }
      if (step.flags & SET_TIMED) checkTime(step.time ?? NaN);
    }
    if (step.kind === StepKind.EXPIRE) {
      const conditions = step.flags & 15;
      if (
        step.flags & ~EXPIRE_FLAGS || (step.flags & 3) === 3 ||
        (step.flags & 12) === 12 ||
        (step.flags & ExpireFlag.NX && conditions & 12) ||
        (step.flags & ExpireFlag.PERSIST && conditions !== 0)
      ) {
        throw new ProtocolError(`Invalid EXPIRE step flags ${step.flags}`);
      }
      checkTime(step.time);
    }
    if (
      step.kind === StepKind.ADD_FLOAT &&
      (step.delta.length > MAX_FLOAT_TEXT || !Number.isFinite(+step.delta))
    ) {
      throw new ProtocolError(`Invalid ADD_FLOAT step delta '${step.delta}'`);
    }
  }
}

/**
 * Decodes the steps of an ATOMIC request or an atomic WRITE, checking their
 * limits.
 *
 * @param reader A reader at the steps.
 * @returns The steps; keys and values are views.
 * @throws {ProtocolError} When a step is malformed.
 * @throws {TooLargeError} When a limit is exceeded.
 */
function readSteps(
  reader: PayloadReader,
): { flags: number; steps: AtomicStep[] } {
  const flags = reader.u8();
  if (flags & ~AtomicFlag.ALL_OR_NOTHING) {
    throw new ProtocolError(`Unknown atomic operation flags ${flags}`);
  }
  const count = reader.u16();
  if (count > MAX_ATOMIC_STEPS) {
    throw new TooLargeError(
      `An atomic operation of ${count} steps exceeds the limit of ${MAX_ATOMIC_STEPS}`,
    );
  }
  if (count * 3 > reader.remaining) {
    throw new ProtocolError(
      `Malformed atomic operation: ${count} steps cannot fit in ${reader.remaining} bytes`,
    );
  }
  const steps: AtomicStep[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const kind = reader.u8();
    const key = reader.bytes16();
    switch (kind) {
      case StepKind.CHECK: {
        const present = reader.u8();
        const version = reader.u64();
        if (present > 1) {
          throw new ProtocolError(`Invalid CHECK step flag ${present}`);
        }
        steps[i] = { kind, key, version: present === 1 ? version : null };
        break;
      }
      case StepKind.GET:
      case StepKind.DELETE:
      case StepKind.TTL:
      case StepKind.SWEEP:
        steps[i] = { kind, key };
        break;
      case StepKind.SET:
      case StepKind.SET_VERSIONSTAMPED: {
        const flags = reader.u8();
        if (flags & SET_TIMED) {
          const time = Number(readI64(reader));
          steps[i] = { kind, key, flags, time, value: reader.bytes32() };
        } else steps[i] = { kind, key, flags, value: reader.bytes32() };
        break;
      }
      case StepKind.EXPIRE: {
        const flags = reader.u8();
        steps[i] = { kind, key, flags, time: Number(readI64(reader)) };
        break;
      }
      case StepKind.SUM_U64:
      case StepKind.MIN_U64:
      case StepKind.MAX_U64:
        steps[i] = { kind, key, operand: BigInt.asUintN(64, readI64(reader)) };
        break;
      case StepKind.ADD:
      case StepKind.MIN:
      case StepKind.MAX:
        steps[i] = { kind, key, delta: readI64(reader) };
        break;
      case StepKind.APPEND:
        steps[i] = { kind, key, value: reader.bytes32() };
        break;
      case StepKind.ADD_FLOAT:
        steps[i] = {
          kind,
          key,
          delta: new TextDecoder().decode(reader.bytes8()),
        };
        break;
      default:
        throw new ProtocolError(`Unknown atomic step kind ${kind}`);
    }
  }
  checkSteps(steps);
  return { flags, steps };
}

/** An atomic operation as a client requests it. */
export interface AtomicRequest {
  /** {@linkcode AckLevel}; 0 defers to the router's default. */
  acks: number;
  /** {@linkcode AtomicFlag} bits. */
  flags: number;
  /** The steps, checks first by convention (a check anywhere applies to all). */
  steps: AtomicStep[];
}

/**
 * Encodes ATOMIC.
 *
 * @param id The request id.
 * @param request The acknowledgement level and the steps.
 * @returns The frame's bytes.
 * @throws {TooLargeError} When a limit is exceeded.
 * @example
 * ```ts
 * import { encodeAtomic, StepKind } from "./atomic.ts";
 * const key = new TextEncoder().encode("n");
 * encodeAtomic(1, { acks: 0, flags: 0, steps: [{ kind: StepKind.ADD, key, delta: 1n }] });
 * ```
 */
export function encodeAtomic(id: number, request: AtomicRequest): Uint8Array {
  checkSteps(request.steps);
  const writer = new FrameWriter(
    Opcode.ATOMIC,
    id,
    1 + stepsSize(request.steps),
  ).u8(request.acks);
  writeSteps(writer, request.flags, request.steps);
  return writer.finish();
}

/**
 * Decodes ATOMIC.
 *
 * @param payload The frame's payload.
 * @returns The request; the steps' keys and values are views.
 * @throws {ProtocolError} When the frame is malformed.
 * @throws {TooLargeError} When a limit is exceeded.
 * @example
 * ```ts
 * import { decodeAtomic, encodeAtomic, StepKind } from "./atomic.ts";
 * const key = new TextEncoder().encode("n");
 * const bytes = encodeAtomic(1, { acks: 0, flags: 0, steps: [{ kind: StepKind.GET, key }] });
 * console.log(decodeAtomic(bytes.subarray(10)).steps.length); // 1
 * ```
 */
export function decodeAtomic(payload: Uint8Array): AtomicRequest {
  const reader = new PayloadReader(payload, "ATOMIC");
  const acks = reader.u8();
  if (acks > 3) {
    throw new ProtocolError(`Unknown acknowledgement level ${acks}`);
  }
  const { flags, steps } = readSteps(reader);
  reader.end();
  return { acks, flags, steps };
}

/**
 * Encodes the WRITE frame of a numbered atomic operation, from the steps as
 * the client sent them (already checked by {@linkcode decodeAtomic}).
 *
 * @param seq The operation's sequence number.
 * @param now The operation's time (the router's clock, ms since the epoch):
 *   every database judges expiry by it, so all reach the same outcome.
 * @param steps The encoded flags and steps: an ATOMIC payload after its
 *   level byte.
 * @returns The frame's bytes.
 * @example
 * ```ts
 * import { encodeAtomic, encodeAtomicWrite, StepKind } from "./atomic.ts";
 * const key = new TextEncoder().encode("n");
 * const request = encodeAtomic(1, { acks: 0, flags: 0, steps: [{ kind: StepKind.GET, key }] });
 * encodeAtomicWrite(7, Date.now(), request.subarray(11));
 * ```
 */
export function encodeAtomicWrite(
  seq: number,
  now: number,
  steps: Uint8Array,
): Uint8Array {
  return new FrameWriter(Opcode.WRITE, 0, 8 + 1 + 8 + steps.length, {
    kept: true,
  }).u64(seq).u8(WriteOp.ATOMIC).u64(now).raw(steps).finish();
}

/**
 * Decodes the time, flags and steps of an atomic WRITE (after its sequence
 * number and op).
 *
 * @param reader A reader at the time.
 * @returns The time, the flags and the steps.
 * @throws {ProtocolError} When they are malformed.
 */
export function readAtomicWriteSteps(
  reader: PayloadReader,
): { now: number; flags: number; steps: AtomicStep[] } {
  const now = reader.u64();
  return { now, ...readSteps(reader) };
}
