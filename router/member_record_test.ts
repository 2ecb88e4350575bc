import assert from "node:assert/strict";
import type { DatabaseLink } from "./_links.ts";
import { MemberRecord } from "./member_record.ts";
import { Membership } from "./membership.ts";
import { StateFile } from "./state_file.ts";

const CLUSTER = new Uint8Array(16).fill(7);

/** A ready database with node id `id` at `applied`. */
function db(id: string, applied: number): DatabaseLink {
  return {
    nodeId: id,
    applied,
    state: "ready",
    volatile: false,
    conn: { isClosed: false, peer: `10.0.0.1:${id.length}` },
  } as unknown as DatabaseLink;
}

async function withRecord(
  body: (
    record: MemberRecord,
    saved: () => number,
    file: () => StateFile,
  ) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  const stateFile = StateFile.open(`${dir}/router.json`);
  const controller = new AbortController();
  let saves = 0;
  const record = new MemberRecord({
    stateFile,
    volatileGrace: 1_000,
    position: () => ({ clusterId: CLUSTER, seq: 5, reserved: 100 }),
    saved: () => saves++,
    signal: controller.signal,
  });
  try {
    await body(record, () => saves, () => stateFile);
  } finally {
    controller.abort();
    await record.settled();
    await stateFile.settled();
    stateFile.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const A = "aa".repeat(16);
const B = "bb".repeat(16);

Deno.test("a ready database becomes a member only once it has every acknowledged write, and the change is saved first", async () => {
  await withRecord(async (record, saved, file) => {
    const a = db(A, 3);
    record.ready(a, 4);
    assert.equal(record.members.has(A), false);
    a.applied = 4;
    record.admitPending(4);
    assert.equal(record.members.has(A), true);
    assert.equal(record.saving, true);
    assert.equal(record.mayAcknowledge(false, 4, () => true), false);
    await record.settled();
    assert.equal(saved(), 1);
    assert.deepEqual(file().load()?.members.map((m) => m.length), [16]);
    assert.equal(file().load()?.ceiling, 100);
    assert.equal(record.mayAcknowledge(false, 4, () => true), true);
  });
});

Deno.test("the first weak acknowledgement waits until the record says one may exist", async () => {
  await withRecord(async (record) => {
    assert.equal(record.needed(3), 1);
    assert.equal(record.mayAcknowledge(true, 0, () => true), false);
    assert.equal(record.weak, true);
    await record.settled();
    assert.equal(record.mayAcknowledge(true, 0, () => true), true);
    assert.equal(record.needed(3), 3);
  });
});

Deno.test("members that are not ready are dropped, and saved, before anything is acknowledged without them", async () => {
  await withRecord(async (record) => {
    record.ready(db(A, 0), 0);
    record.ready(db(B, 0), 0);
    await record.settled();
    const ready = (id: string) => id === A;
    assert.equal(record.mayAcknowledge(false, 0, ready), false);
    assert.deepEqual([...record.members], [A]);
    await record.settled();
    assert.equal(record.mayAcknowledge(false, 0, ready), true);
    // With no member ready, none is dropped: the last one holds every write.
    assert.equal(record.mayAcknowledge(false, 0, () => false), true);
    assert.deepEqual([...record.members], [A]);
  });
});

Deno.test("a ready member that leaves stops being one while another remains, unless weak acknowledgements happened", async () => {
  await withRecord(async (record) => {
    const a = db(A, 0);
    record.ready(a, 0);
    record.ready(db(B, 0), 0);
    await record.settled();
    record.left(a, false, false);
    assert.ok(record.members.has(A), "the last ready member stays");
    record.left(a, false, true);
    assert.ok(!record.members.has(A));
    await record.settled();
    const weak = new Membership({ volatileGrace: 1_000 });
    weak.restore(B, { volatile: false, address: "x" }, 0);
    record.restore(weak, true);
    record.left(db(B, 0), false, true);
    assert.ok(record.members.has(B), "after a weak acknowledgement");
  });
});

Deno.test("forget removes members and saves only when one was a member", async () => {
  await withRecord(async (record, saved) => {
    record.ready(db(A, 0), 0);
    await record.settled();
    const before = saved();
    assert.equal(record.forget([B]), false);
    assert.equal(record.saving, false);
    assert.equal(record.forget([A]), true);
    await record.settled();
    assert.equal(saved(), before + 1);
  });
});
