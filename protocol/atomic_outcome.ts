/**
 * What comes back from an atomic operation: the reply a client gets
 * (ATOMIC_REPLY), and what a database reports once it has evaluated one
 * (OUTCOME: the reply and the writes it left) and the router relays to the
 * databases being synced (RESOLVED). See `docs/protocol.md`, "Atomic
 * operations".
 *
 * @module
 */

import { FrameWriter, PayloadReader } from "./frame.ts";
import { readI64, writeI64 } from "./_i64.ts";
import { ProtocolError } from "./errors.ts";
import { checkKey, checkValue } from "./messages.ts";
import { Opcode, WriteOp } from "./opcodes.ts";
import type { Write } from "./replication_messages.ts";

/** What a step returns. CHECK steps return nothing. */
export type StepResult =
  | { kind: "nil" }
  | { kind: "bytes"; value: Uint8Array }
  | { kind: "integer"; value: bigint }
  | { kind: "error"; message: string };

/** The answer to an atomic operation. */
export interface AtomicReply {
  /** Whether every check held, so that the steps applied. */
  committed: boolean;
  /** The operation's sequence number: the version of every key it wrote. */
  version: number;
  /**
   * One result per step other than CHECK, in order. When not committed:
   * empty if a check failed, else the results with the error that stopped
   * the operation (a failed step under `ALL_OR_NOTHING`, or a size limit).
   */
  results: StepResult[];
}

const RESULT_NIL = 0;
const RESULT_BYTES = 1;
const RESULT_INTEGER = 2;
const RESULT_ERROR = 3;

/** The size of a reply payload with these results. */
function replySize(results: readonly StepResult[]): number {
  let size = 1 + 8 + 2;
  for (const result of results) size += resultSize(result);
  return size;
}

function resultSize(result: StepResult): number {
  switch (result.kind) {
    case "nil":
      return 1;
    case "bytes":
      return 1 + 4 + result.value.length;
    case "integer":
      return 1 + 8;
    case "error":
      return 1 + 2 + new TextEncoder().encode(result.message).length;
  }
}

/**
 * Encodes an atomic operation's reply payload: what ATOMIC_REPLY carries,
 * and what a database reports in OUTCOME.
 *
 * @param reply The outcome.
 * @returns The payload's bytes.
 * @example
 * ```ts
 * import { encodeAtomicReplyPayload } from "./atomic_outcome.ts";
 * encodeAtomicReplyPayload({ committed: false, version: 3, results: [] }).length; // 11
 * ```
 */
export function encodeAtomicReplyPayload(reply: AtomicReply): Uint8Array {
  const writer = new FrameWriter(
    Opcode.ATOMIC_REPLY,
    0,
    replySize(reply.results),
  );
  writer.u8(reply.committed ? 1 : 0).u64(reply.version).u16(
    reply.results.length,
  );
  for (const result of reply.results) {
    switch (result.kind) {
      case "nil":
        writer.u8(RESULT_NIL);
        break;
      case "bytes":
        writer.u8(RESULT_BYTES).bytes32(result.value);
        break;
      case "integer":
        writer.u8(RESULT_INTEGER);
        writeI64(writer, result.value);
        break;
      case "error":
        writer.u8(RESULT_ERROR).bytes16(
          new TextEncoder().encode(result.message),
        );
        break;
    }
  }
  return writer.finish().subarray(10);
}

/**
 * Encodes ATOMIC_REPLY from a reply payload.
 *
 * @param id The request id.
 * @param payload What {@linkcode encodeAtomicReplyPayload} made.
 * @returns The frame's bytes.
 * @example
 * ```ts
 * import { encodeAtomicReply, encodeAtomicReplyPayload } from "./atomic_outcome.ts";
 * encodeAtomicReply(1, encodeAtomicReplyPayload({ committed: true, version: 3, results: [] }));
 * ```
 */
export function encodeAtomicReply(id: number, payload: Uint8Array): Uint8Array {
  return new FrameWriter(Opcode.ATOMIC_REPLY, id, payload.length).raw(payload)
    .finish();
}

/**
 * Decodes an ATOMIC_REPLY payload.
 *
 * @param payload The payload.
 * @returns The outcome; byte results are views.
 * @throws {ProtocolError} When it is malformed.
 * @example
 * ```ts
 * import { decodeAtomicReply, encodeAtomicReplyPayload } from "./atomic_outcome.ts";
 * const bytes = encodeAtomicReplyPayload({ committed: true, version: 3, results: [{ kind: "nil" }] });
 * console.log(decodeAtomicReply(bytes).results[0]?.kind); // "nil"
 * ```
 */
export function decodeAtomicReply(payload: Uint8Array): AtomicReply {
  const reader = new PayloadReader(payload, "ATOMIC_REPLY");
  const committed = reader.u8();
  if (committed > 1) throw new ProtocolError(`Invalid committed flag`);
  const version = reader.u64();
  const count = reader.u16();
  if (count > reader.remaining) {
    throw new ProtocolError(
      `Malformed ATOMIC_REPLY frame: ${count} results cannot fit in ${reader.remaining} bytes`,
    );
  }
  const results: StepResult[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const tag = reader.u8();
    if (tag === RESULT_NIL) results[i] = { kind: "nil" };
    else if (tag === RESULT_BYTES) {
      results[i] = { kind: "bytes", value: reader.bytes32() };
    } else if (tag === RESULT_INTEGER) {
      results[i] = { kind: "integer", value: readI64(reader) };
    } else if (tag === RESULT_ERROR) {
      results[i] = {
        kind: "error",
        message: new TextDecoder().decode(reader.bytes16()),
      };
    } else throw new ProtocolError(`Unknown atomic result tag ${tag}`);
  }
  reader.end();
  return { committed: committed === 1, version, results };
}

/** An effect's op bit saying that an expiry time follows its key. */
const EXPIRING = 0x80;

function effectsSize(effects: readonly Write[]): number {
  let size = 2;
  for (const write of effects) {
    size += 1 + 2 + write.key.length +
      (write.op === WriteOp.SET
        ? 4 + write.value!.length + (write.expiresAt === undefined ? 0 : 8)
        : 0);
  }
  return size;
}

function writeEffects(writer: FrameWriter, effects: readonly Write[]): void {
  writer.u16(effects.length);
  for (const write of effects) {
    if (write.op === WriteOp.SET && write.expiresAt !== undefined) {
      writer.u8(write.op | EXPIRING).bytes16(write.key).u64(write.expiresAt);
    } else writer.u8(write.op).bytes16(write.key);
    if (write.op === WriteOp.SET) writer.bytes32(write.value!);
  }
}

function readEffects(reader: PayloadReader, seq: number): Write[] {
  const count = reader.u16();
  if (count * 3 > reader.remaining) {
    throw new ProtocolError(
      `Malformed effects: ${count} writes cannot fit in ${reader.remaining} bytes`,
    );
  }
  const effects: Write[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const op = reader.u8();
    const key = reader.bytes16();
    checkKey(key);
    if (op === (WriteOp.SET | EXPIRING)) {
      const expiresAt = reader.u64();
      const value = reader.bytes32();
      checkValue(value);
      effects[i] = { seq, op: WriteOp.SET, key, value, expiresAt };
    } else if (op === WriteOp.SET) {
      const value = reader.bytes32();
      checkValue(value);
      effects[i] = { seq, op, key, value };
    } else if (op === WriteOp.DELETE) {
      effects[i] = { seq, op, key };
    } else throw new ProtocolError(`Unknown write operation ${op}`);
  }
  return effects;
}

/**
 * The size of the OUTCOME payload that reports `results` and `effects`, so
 * that a database can refuse an operation whose report would not fit a
 * frame before it applies anything.
 *
 * @param results The steps' results.
 * @param effects The writes the operation leaves.
 * @returns The payload's size in bytes.
 * @example
 * ```ts
 * import { outcomeSize } from "./atomic_outcome.ts";
 * console.log(outcomeSize([], [])); // 25
 * ```
 */
export function outcomeSize(
  results: readonly StepResult[],
  effects: readonly Write[],
): number {
  return 8 + 4 + replySize(results) + effectsSize(effects);
}

/** What a database reports once it has evaluated an atomic operation. */
export interface Outcome {
  /** The operation's sequence number. */
  seq: number;
  /** The reply payload, for the client. */
  reply: Uint8Array;
  /** What it wrote, as plain writes numbered `seq`: for sync targets. */
  effects: Write[];
}

/**
 * Encodes OUTCOME (database to router).
 *
 * @param outcome The outcome.
 * @returns The frame's bytes.
 * @example
 * ```ts
 * import { encodeAtomicReplyPayload, encodeOutcome } from "./atomic_outcome.ts";
 * const reply = encodeAtomicReplyPayload({ committed: true, version: 3, results: [] });
 * encodeOutcome({ seq: 3, reply, effects: [] });
 * ```
 */
export function encodeOutcome(outcome: Outcome): Uint8Array {
  const writer = new FrameWriter(
    Opcode.OUTCOME,
    0,
    8 + 4 + outcome.reply.length + effectsSize(outcome.effects),
  ).u64(outcome.seq).bytes32(outcome.reply);
  writeEffects(writer, outcome.effects);
  return writer.finish();
}

/**
 * Decodes OUTCOME.
 *
 * @param payload The frame's payload.
 * @returns The outcome; its parts are views.
 * @throws {ProtocolError} When it is malformed.
 * @example
 * ```ts
 * import { decodeOutcome, encodeAtomicReplyPayload, encodeOutcome } from "./atomic_outcome.ts";
 * const reply = encodeAtomicReplyPayload({ committed: true, version: 3, results: [] });
 * console.log(decodeOutcome(encodeOutcome({ seq: 3, reply, effects: [] }).subarray(10)).seq); // 3
 * ```
 */
export function decodeOutcome(payload: Uint8Array): Outcome {
  const reader = new PayloadReader(payload, "OUTCOME");
  const seq = reader.u64();
  const reply = reader.bytes32();
  const effects = readEffects(reader, seq);
  reader.end();
  return { seq, reply, effects };
}

/**
 * Decodes encoded effects (what {@linkcode outcomeEffects} returns), as the
 * writes of the operation numbered `seq`.
 *
 * @param effects The encoded effects.
 * @param seq The operation's sequence number.
 * @returns The writes; keys and values are views.
 * @throws {ProtocolError} When they are malformed.
 * @example
 * ```ts
 * import { decodeEffects } from "./atomic_outcome.ts";
 * console.log(decodeEffects(new Uint8Array([0, 0]), 3)); // []
 * ```
 */
export function decodeEffects(effects: Uint8Array, seq: number): Write[] {
  const reader = new PayloadReader(effects, "effects");
  const writes = readEffects(reader, seq);
  reader.end();
  return writes;
}

/**
 * Encodes RESOLVED (router to a database being synced): the effects of the
 * atomic operation numbered `seq`, as a database that had every earlier
 * write evaluated it.
 *
 * @param seq The operation's sequence number.
 * @param effects Its effects, as OUTCOME carried them (encoded).
 * @returns The frame's bytes.
 * @example
 * ```ts
 * import { encodeResolved } from "./atomic_outcome.ts";
 * encodeResolved(3, new Uint8Array([0, 0]));
 * ```
 */
export function encodeResolved(seq: number, effects: Uint8Array): Uint8Array {
  return new FrameWriter(Opcode.RESOLVED, 0, 8 + effects.length).u64(seq).raw(
    effects,
  ).finish();
}

/**
 * Returns the encoded effects inside an OUTCOME payload, for RESOLVED.
 *
 * @param payload An OUTCOME payload.
 * @returns A view of its effects.
 * @example
 * ```ts
 * import { encodeAtomicReplyPayload, encodeOutcome, outcomeEffects } from "./atomic_outcome.ts";
 * const reply = encodeAtomicReplyPayload({ committed: true, version: 3, results: [] });
 * console.log(outcomeEffects(encodeOutcome({ seq: 3, reply, effects: [] }).subarray(10)).length); // 2
 * ```
 */
export function outcomeEffects(payload: Uint8Array): Uint8Array {
  const reader = new PayloadReader(payload, "OUTCOME");
  reader.u64();
  reader.bytes32();
  return reader.raw(reader.remaining);
}

/**
 * Reads the sequence number and the reply of an OUTCOME payload, without
 * decoding its writes.
 *
 * @param payload An OUTCOME payload.
 * @returns The sequence number, and a view of the reply.
 * @throws {ProtocolError} When it is malformed.
 * @example
 * ```ts
 * import { encodeAtomicReplyPayload, encodeOutcome, outcomeReply } from "./atomic_outcome.ts";
 * const reply = encodeAtomicReplyPayload({ committed: true, version: 3, results: [] });
 * console.log(outcomeReply(encodeOutcome({ seq: 3, reply, effects: [] }).subarray(10)).seq); // 3
 * ```
 */
export function outcomeReply(
  payload: Uint8Array,
): { seq: number; reply: Uint8Array } {
  const reader = new PayloadReader(payload, "OUTCOME");
  const seq = reader.u64();
  return { seq, reply: reader.bytes32() };
}

/**
 * Decodes RESOLVED.
 *
 * @param payload The frame's payload.
 * @returns The sequence number and the effects, numbered with it.
 * @throws {ProtocolError} When it is malformed.
 * @example
 * ```ts
 * import { decodeResolved, encodeResolved } from "./atomic_outcome.ts";
 * console.log(decodeResolved(encodeResolved(3, new Uint8Array([0, 0])).subarray(10)).seq); // 3
 * ```
 */
export function decodeResolved(
  payload: Uint8Array,
): { seq: number; effects: Write[] } {
  const reader = new PayloadReader(payload, "RESOLVED");
  const seq = reader.u64();
  const effects = readEffects(reader, seq);
  reader.end();
  return { seq, effects };
}
