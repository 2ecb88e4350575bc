import assert from "node:assert/strict";
import fc from "fast-check";
import { AckLevel } from "../protocol/mod.ts";
import type { ClientSession } from "./_links.ts";
import { acknowledgedUpTo } from "./quorum.ts";
import { PendingWrites } from "./writes.ts";

const client = {} as ClientSession;

function ring() {
  const acked: number[] = [];
  const failed: [number, string][] = [];
  const writes = new PendingWrites({
    acknowledged: (_client, id, seq) => {
      assert.equal(id, seq * 10);
      acked.push(seq);
    },
    failed: (_client, id, seq, error) => {
      assert.equal(seq, id / 10);
      failed.push([id / 10, String(error)]);
    },
  });
  return { writes, acked, failed };
}

Deno.test("writes at level all settle in order as the slowest database moves", () => {
  const { writes, acked } = ring();
  for (let seq = 1; seq <= 5; seq++) {
    writes.push(seq, AckLevel.ALL, client, seq * 10, 1000);
  }
  writes.settle([5, 2]);
  assert.deepEqual(acked, [1, 2]);
  assert.equal(writes.length, 3);
  writes.settle([5, 5]);
  assert.deepEqual(acked, [1, 2, 3, 4, 5]);
  assert.equal(writes.length, 0);
});

Deno.test("a weaker write settles before an older stronger one, which still waits", () => {
  const { writes, acked } = ring();
  writes.push(1, AckLevel.ALL, client, 10, 1000);
  writes.push(2, AckLevel.ONE, client, 20, 1000);
  writes.push(3, AckLevel.MAJORITY, client, 30, 1000);
  assert.ok(writes.hasWeak);
  writes.settle([3, 3, 0]);
  assert.deepEqual(acked, [2, 3]);
  assert.equal(writes.length, 1);
  assert.ok(!writes.hasWeak);
  writes.settle([3, 3, 1]);
  assert.deepEqual(acked, [2, 3, 1]);
});

Deno.test("failAbove fails only the waiting writes above a position", () => {
  const { writes, acked, failed } = ring();
  for (let seq = 1; seq <= 4; seq++) {
    writes.push(
      seq,
      seq === 4 ? AckLevel.ONE : AckLevel.ALL,
      client,
      seq * 10,
      1000,
    );
  }
  writes.settle([4, 0]); // 4 is acknowledged at level one
  assert.ok(writes.hasAbove(1));
  writes.failAbove(2, () => "gone");
  assert.deepEqual(acked, [4]);
  assert.deepEqual(failed, [[3, "gone"]]);
  assert.ok(!writes.hasAbove(2));
  assert.equal(writes.length, 2);
  writes.settle([2, 2]);
  assert.deepEqual(acked, [4, 1, 2]);
});

Deno.test("expire fails the writes past their deadline, oldest first", () => {
  const { writes, failed } = ring();
  writes.push(1, AckLevel.ALL, client, 10, 100);
  writes.push(2, AckLevel.ALL, client, 20, 200);
  writes.expire(150, () => "late");
  assert.deepEqual(failed, [[1, "late"]]);
  assert.equal(writes.length, 1);
});

Deno.test("the ring answers like a plain list under any mix of pushes, settles, failures and growth", () => {
  type Step =
    | { kind: "push"; count: number; level: number }
    | { kind: "settle"; positions: number[] }
    | { kind: "fail"; back: number };
  const step: fc.Arbitrary<Step> = fc.oneof(
    fc.record({
      kind: fc.constant("push" as const),
      count: fc.integer({ min: 1, max: 700 }),
      level: fc.constantFrom(AckLevel.ONE, AckLevel.MAJORITY, AckLevel.ALL),
    }),
    fc.record({
      kind: fc.constant("settle" as const),
      positions: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }),
    }),
    fc.record({
      kind: fc.constant("fail" as const),
      back: fc.nat({ max: 500 }),
    }),
  );
  fc.assert(
    fc.property(fc.array(step, { maxLength: 30 }), (steps) => {
      const { writes, acked, failed } = ring();
      const model: { seq: number; level: number }[] = [];
      const modelAcked: number[] = [];
      const modelFailed: number[] = [];
      let seq = 0;
      for (const s of steps) {
        if (s.kind === "push") {
          for (let i = 0; i < s.count; i++) {
            seq++;
            writes.push(seq, s.level, client, seq * 10, 1000);
            model.push({ seq, level: s.level });
          }
        } else if (s.kind === "settle") {
          const applied = s.positions.map((p) => p % (seq + 1))
            .sort((a, b) => b - a);
          writes.settle(applied);
          for (let i = 0; i < model.length; i++) {
            const w = model[i]!;
            if (acknowledgedUpTo(applied, w.level) >= w.seq) {
              modelAcked.push(w.seq);
              model.splice(i--, 1);
            }
          }
        } else {
          const after = Math.max(0, seq - s.back);
          writes.failAbove(after, () => "x");
          for (let i = model.length - 1; i >= 0; i--) {
            if (model[i]!.seq > after) {
              modelFailed.push(model[i]!.seq);
              model.splice(i, 1);
            }
          }
        }
        assert.equal(writes.length, model.length);
      }
      assert.deepEqual(acked, modelAcked);
      assert.deepEqual(failed.map(([s]) => s), modelFailed);
    }),
    { numRuns: 200 },
  );
});
