import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type AtomicStep,
  decodeAtomic,
  encodeAtomic,
  encodeAtomicWrite,
  MAX_ATOMIC_STEPS,
  StepKind,
} from "./atomic.ts";
import {
  decodeAtomicReply,
  decodeOutcome,
  decodeResolved,
  encodeAtomicReplyPayload,
  encodeOutcome,
  encodeResolved,
  outcomeEffects,
  type StepResult,
} from "./atomic_outcome.ts";
import { ProtocolError, TooLargeError } from "./errors.ts";
import { decodeFrame } from "./frame.ts";
import { decodeWrite } from "./replication_messages.ts";
import { WriteOp } from "./opcodes.ts";

const key = fc.uint8Array({ minLength: 1, maxLength: 40 });
const value = fc.uint8Array({ maxLength: 60 });
const i64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });

const stepArb: fc.Arbitrary<AtomicStep> = fc.oneof(
  fc.record({
    kind: fc.constant(StepKind.CHECK),
    key,
    version: fc.option(fc.integer({ min: 0, max: 2 ** 40 }), { nil: null }),
  }),
  fc.record({ kind: fc.constant(StepKind.GET), key }),
  fc.record({
    kind: fc.constant(StepKind.SET),
    key,
    value,
    flags: fc.constantFrom(0, 1, 2, 4, 5, 6, 32, 33),
  }),
  fc.record({
    kind: fc.constant(StepKind.SET),
    key,
    value,
    flags: fc.constantFrom(8, 16, 9, 18, 12, 20),
    time: fc.integer({ min: -(2 ** 52), max: 2 ** 52 }),
  }),
  fc.record({
    kind: fc.constant(StepKind.EXPIRE),
    key,
    flags: fc.constantFrom(0, 1, 2, 4, 8, 6, 10, 16, 17, 20, 32),
    time: fc.integer({ min: -(2 ** 52), max: 2 ** 52 }),
  }),
  fc.record({
    kind: fc.constantFrom(StepKind.DELETE, StepKind.TTL, StepKind.SWEEP),
    key,
  }),
  fc.record({
    kind: fc.constantFrom(StepKind.ADD, StepKind.MIN, StepKind.MAX),
    key,
    delta: i64,
  }),
  fc.record({ kind: fc.constant(StepKind.APPEND), key, value }),
  fc.record({
    kind: fc.constant(StepKind.ADD_FLOAT),
    key,
    delta: fc.double({ noNaN: true, noDefaultInfinity: true }).map(String),
  }),
).map((step) => ({ ...step })) as fc.Arbitrary<AtomicStep>;

const resultArb: fc.Arbitrary<StepResult> = fc.oneof(
  fc.constant({ kind: "nil" as const }),
  fc.record({ kind: fc.constant("bytes" as const), value }),
  fc.record({ kind: fc.constant("integer" as const), value: i64 }),
  fc.record({ kind: fc.constant("error" as const), message: fc.string() }),
).map((result) => ({ ...result }));

Deno.test("atomic codec: ATOMIC round-trips, and its atomic WRITE carries the same steps", () => {
  fc.assert(
    fc.property(
      fc.array(stepArb, { minLength: 1, maxLength: 20 }),
      fc.constantFrom(0, 1, 2, 3),
      fc.constantFrom(0, 1),
      fc.integer({ min: 1, max: 2 ** 48 }),
      fc.integer({ min: 0, max: 2 ** 50 }),
      (steps, acks, flags, seq, now) => {
        const bytes = encodeAtomic(9, { acks, flags, steps });
        const frame = decodeFrame(bytes)!.frame;
        const request = decodeAtomic(frame.payload);
        assert.deepEqual(request, { acks, flags, steps });
        const write = decodeWrite(
          decodeFrame(
            encodeAtomicWrite(seq, now, frame.payload.subarray(1)),
          )!.frame.payload,
        );
        assert.equal(write.op, WriteOp.ATOMIC);
        assert.equal(write.seq, seq);
        assert.equal(write.now, now);
        assert.equal(write.flags, flags);
        assert.deepEqual(write.steps, steps);
      },
    ),
  );
});

Deno.test("atomic codec: every truncation of ATOMIC is a ProtocolError, never a crash", () => {
  fc.assert(
    fc.property(fc.array(stepArb, { minLength: 1, maxLength: 5 }), (steps) => {
      const payload =
        decodeFrame(encodeAtomic(1, { acks: 0, flags: 0, steps }))!
          .frame.payload;
      for (let cut = 0; cut < payload.length; cut++) {
        assert.throws(
          () => decodeAtomic(payload.subarray(0, cut)),
          ProtocolError,
        );
      }
    }),
    { numRuns: 50 },
  );
});

Deno.test("atomic codec: replies, outcomes and resolutions round-trip", () => {
  fc.assert(
    fc.property(
      fc.boolean(),
      fc.integer({ min: 0, max: 2 ** 48 }),
      fc.array(resultArb, { maxLength: 10 }),
      fc.array(
        fc.tuple(
          key,
          fc.option(value, { nil: undefined }),
          fc.option(fc.integer({ min: 1, max: 2 ** 50 }), { nil: undefined }),
        ),
        { maxLength: 5 },
      ),
      (committed, version, results, writes) => {
        const reply = encodeAtomicReplyPayload({ committed, version, results });
        assert.deepEqual(decodeAtomicReply(reply), {
          committed,
          version,
          results,
        });
        const effects = writes.map(([k, v, expiresAt]) =>
          v === undefined
            ? { seq: version, op: WriteOp.DELETE, key: k }
            : expiresAt === undefined
            ? { seq: version, op: WriteOp.SET, key: k, value: v }
            : { seq: version, op: WriteOp.SET, key: k, value: v, expiresAt }
        );
        const outcome = decodeFrame(
          encodeOutcome({ seq: version, reply, effects }),
        )!.frame.payload;
        const decoded = decodeOutcome(outcome);
        assert.deepEqual(decoded.reply, reply);
        assert.deepEqual(decoded.effects, effects);
        const resolved = decodeResolved(
          decodeFrame(encodeResolved(version, outcomeEffects(outcome)))!.frame
            .payload,
        );
        assert.deepEqual(resolved, { seq: version, effects });
      },
    ),
  );
});

Deno.test("atomic codec: limits are checked before anything is sent", () => {
  const k = new Uint8Array([1]);
  const many = Array.from(
    { length: MAX_ATOMIC_STEPS + 1 },
    () => ({ kind: StepKind.GET, key: k }) as AtomicStep,
  );
  assert.throws(
    () => encodeAtomic(1, { acks: 0, flags: 0, steps: many }),
    TooLargeError,
  );
  assert.throws(
    () => encodeAtomic(1, { acks: 0, flags: 0, steps: [] }),
    /at least one step/,
  );
  assert.throws(
    () =>
      encodeAtomic(1, {
        acks: 0,
        flags: 0,
        steps: [{ kind: StepKind.SET, key: k, value: k, flags: 3 }],
      }),
    /SET step flags/,
  );
  // EX and KEEPTTL together, an expiry beyond 2^52 ms, PERSIST with GT.
  assert.throws(
    () =>
      encodeAtomic(1, {
        acks: 0,
        flags: 0,
        steps: [{ kind: StepKind.SET, key: k, value: k, flags: 48, time: 1 }],
      }),
    /SET step flags/,
  );
  assert.throws(
    () =>
      encodeAtomic(1, {
        acks: 0,
        flags: 0,
        steps: [{ kind: StepKind.EXPIRE, key: k, flags: 16, time: 2 ** 53 }],
      }),
    /Invalid expiry time/,
  );
  assert.throws(
    () =>
      encodeAtomic(1, {
        acks: 0,
        flags: 0,
        steps: [{ kind: StepKind.EXPIRE, key: k, flags: 36, time: 0 }],
      }),
    /EXPIRE step flags/,
  );
  const big = new Uint8Array(400 * 1024);
  assert.throws(
    () =>
      encodeAtomic(1, {
        acks: 0,
        flags: 0,
        steps: [
          { kind: StepKind.SET, key: k, value: big, flags: 0 },
          {
            kind: StepKind.SET,
            key: new Uint8Array([2]),
            value: big,
            flags: 0,
          },
        ],
      }),
    TooLargeError,
  );
  // A count that claims more steps than the bytes can hold is refused first.
  assert.throws(
    () => decodeAtomic(new Uint8Array([0, 0, 0, 200, 2, 0, 1, 97])),
    TooLargeError,
  );
  assert.throws(
    () => decodeAtomic(new Uint8Array([0, 0, 0, 50, 2, 0, 1, 97])),
    /cannot fit/,
  );
});
