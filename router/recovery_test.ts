import assert from "node:assert/strict";
import { InvalidArgumentError, type Join } from "../protocol/mod.ts";
import type { DatabaseLink } from "./_links.ts";
import { MemberRecord } from "./member_record.ts";
import { Membership } from "./membership.ts";
import { type Recovered, Recovery } from "./recovery.ts";

const CLUSTER = new Uint8Array([1]);
const A = "aa".repeat(16);
const B = "bb".repeat(16);

function setup(options: { timeout?: number } = {}) {
  const controller = new AbortController();
  const record = new MemberRecord({
    volatileGrace: 60_000,
    position: () => ({ clusterId: CLUSTER, seq: 10, reserved: 10 }),
    saved: () => {},
    signal: controller.signal,
  });
  const databases = new Map<number, DatabaseLink>();
  const outcomes: Recovered[] = [];
  const recovery = new Recovery({
    record,
    databases,
    timeout: options.timeout ?? Infinity,
    view: () => ({ clusterId: CLUSTER, seq: 10 }),
    acknowledged: () => 10,
    recover: (decision) => void outcomes.push(decision),
  });
  const members = new Membership({ volatileGrace: 60_000 });
  members.restore(A, { volatile: false, address: "10.0.0.1:1" }, 0);
  members.restore(B, { volatile: false, address: "10.0.0.2:1" }, 0);
  return { recovery, outcomes, members, databases };
}

function link(id: string): DatabaseLink {
  return {
    nodeId: id,
    volatile: false,
    state: "joining",
    conn: { isClosed: false, peer: "10.0.0.9:1" },
  } as unknown as DatabaseLink;
}

function join(applied: number): Join {
  return {
    clusterId: CLUSTER,
    nodeId: new Uint8Array(16),
    applied,
    reset: false,
    complete: true,
  };
}

Deno.test("a held request gets the hold's reason; a member back ends the hold with an outcome", () => {
  const { recovery, outcomes, members } = setup();
  assert.equal(recovery.error(), undefined);
  recovery.start(members);
  assert.match(recovery.error()!.message, /waited for 1 of 2 members/);
  const fresh = link("cc".repeat(16));
  recovery.hold(fresh, join(0));
  assert.equal(outcomes.length, 0);
  const a = link(A);
  recovery.present(a);
  recovery.hold(a, join(12));
  assert.equal(recovery.current, undefined);
  assert.equal(outcomes[0]!.seq, 12);
  assert.deepEqual(outcomes[0]!.joins.map(({ db }) => db.nodeId), [
    A,
    "cc".repeat(16),
  ]);
});

Deno.test("a held join's ids are copied out of its frame", () => {
  const { recovery, members } = setup();
  recovery.start(members);
  const frameBytes = join(0);
  recovery.hold(link("dd".repeat(16)), frameBytes);
  frameBytes.nodeId.fill(9);
  assert.deepEqual(recovery.release()[0]!.join.nodeId, new Uint8Array(16));
  assert.equal(recovery.current, undefined);
});

Deno.test("forget takes only absent members, and ends a hold left with nothing to wait for", () => {
  const { recovery, members } = setup();
  recovery.start(members);
  assert.throws(
    () => recovery.forget(["ee".repeat(16)]),
    (error: unknown) =>
      error instanceof InvalidArgumentError &&
      /is not a member: 'stats' lists the members/.test(error.message),
  );
  recovery.present(link(A));
  assert.throws(
    () => recovery.forget([A]),
    /is connected: only an absent member can be forgotten/,
  );
  assert.deepEqual(recovery.forget("absent").map((m) => m.id), [B]);
  recovery.forget([]);
  assert.ok(recovery.current !== undefined, "A is still waited for");
  recovery.absent(A, 1);
  assert.deepEqual(recovery.forget("absent").map((m) => m.id), [A]);
  assert.equal(recovery.current, undefined);
});

Deno.test("a hold that times out with a database here serves it and names who is lost", () => {
  const { recovery, outcomes, members } = setup({ timeout: 0 });
  recovery.start(members);
  recovery.hold(link("ff".repeat(16)), join(3));
  assert.equal(outcomes.length, 1);
  assert.deepEqual(outcomes[0]!.timedOut?.away.sort(), [A, B]);
  // They are no longer waited for, now or after a restart.
  assert.equal(recovery.known().size, 0);
});
