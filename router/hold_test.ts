import assert from "node:assert/strict";
import type { Join } from "../protocol/mod.ts";
import type { DatabaseLink } from "./_links.ts";
import { Hold, type HoldView } from "./hold.ts";
import { Membership } from "./membership.ts";

const CLUSTER = new Uint8Array([1, 2, 3]);
const OTHER = new Uint8Array([9]);

/** A hold on members `ids` (all away since 0), needing `needed` back. */
function hold(
  ids: string[],
  needed: number,
  options: { timeout?: number; volatile?: boolean } = {},
): Hold {
  const members = new Membership({ volatileGrace: 1_000 });
  for (const id of ids) {
    members.restore(id, {
      volatile: options.volatile ?? false,
      address: "10.0.0.1:1",
    }, 0);
  }
  return new Hold(members, needed, 0, options.timeout ?? Infinity);
}

/** Holds a join from node `id` at `applied`. */
function join(
  h: Hold,
  id: string,
  applied: number,
  options: Partial<Join> & { closed?: boolean } = {},
): void {
  const db = { nodeId: id, conn: { isClosed: options.closed ?? false } };
  h.members.present(id, "10.0.0.1:2", false);
  h.held.push({
    db: db as unknown as DatabaseLink,
    join: {
      clusterId: CLUSTER,
      nodeId: new Uint8Array(0),
      applied,
      reset: false,
      complete: true,
      ...options,
    },
  });
}

function view(overrides: Partial<HoldView> = {}): HoldView {
  return {
    clusterId: CLUSTER,
    weak: false,
    seq: 50,
    syncing: new Set(),
    now: 10,
    ...overrides,
  };
}

Deno.test("a hold waits while no member is back", () => {
  const h = hold(["a", "b"], 1);
  join(h, "fresh", 0);
  assert.deepEqual(h.decide(view()), { kind: "wait", remind: false });
});

Deno.test("a hold reminds every 30 s, not more often", () => {
  const h = hold(["a"], 1);
  assert.deepEqual(h.decide(view({ now: 30_001 })), {
    kind: "wait",
    remind: true,
  });
  assert.deepEqual(h.decide(view({ now: 40_000 })), {
    kind: "wait",
    remind: false,
  });
});

Deno.test("one member back ends a hold that needs one; the most advanced join goes first", () => {
  const h = hold(["a", "b"], 1);
  join(h, "fresh", 3);
  join(h, "a", 80);
  const decision = h.decide(view({ seq: 50 }));
  assert.equal(decision.kind, "recover");
  if (decision.kind !== "recover") return;
  assert.equal(decision.seq, 80);
  // At the adopted position: nothing to replay or jump for it.
  assert.equal(decision.reference, undefined);
  assert.deepEqual(decision.joins.map(({ db }) => db.nodeId), ["a", "fresh"]);
  assert.equal(decision.timedOut, undefined);
});

Deno.test("a usable join goes before an incomplete one of the same position, so that the incomplete one has a source (fault seed 1408174139)", () => {
  const h = hold(["a"], 1);
  // Cut off mid-sync by a router restart: incomplete, at the same position.
  join(h, "b", 50, { complete: false });
  join(h, "a", 50);
  join(h, "c", 70, { reset: true });
  const decision = h.decide(view());
  assert.equal(decision.kind, "recover");
  if (decision.kind !== "recover") return;
  assert.deepEqual(decision.joins.map(({ db }) => db.nodeId), ["a", "c", "b"]);
});

Deno.test("a member back behind the router's position is the reference", () => {
  const h = hold(["a"], 1);
  join(h, "a", 40);
  const decision = h.decide(view({ seq: 70 }));
  assert.equal(decision.kind, "recover");
  if (decision.kind !== "recover") return;
  assert.equal(decision.seq, 70);
  assert.equal(decision.reference?.db.nodeId, "a");
});

Deno.test("a member back incomplete, reset, or of another cluster does not end the hold", () => {
  for (
    const options of [{ complete: false }, { reset: true }, {
      clusterId: OTHER,
    }]
  ) {
    const h = hold(["a"], 1);
    join(h, "a", 80, options);
    assert.equal(h.decide(view()).kind, "wait", JSON.stringify(options));
  }
});

Deno.test("a join whose connection closed is dropped from the hold", () => {
  const h = hold(["a"], 1);
  join(h, "a", 80, { closed: true });
  assert.equal(h.decide(view()).kind, "wait");
  assert.equal(h.held.length, 0);
});

Deno.test("after weak acknowledgements every member is needed; one syncing counts as back", () => {
  const h = hold(["a", "b"], 2);
  join(h, "a", 80);
  assert.equal(h.decide(view({ weak: true })).kind, "wait");
  assert.equal(
    h.decide(view({ weak: true, syncing: new Set(["b"]) })).kind,
    "recover",
  );
  // Without weak acknowledgements a syncing member is not counted.
  const strict = hold(["a", "b"], 2);
  join(strict, "a", 80);
  assert.equal(
    strict.decide(view({ syncing: new Set(["b"]) })).kind,
    "wait",
  );
});

Deno.test("time up with a database here serves from the most advanced usable one and names the members still away", () => {
  const h = hold(["a", "b"], 1, { timeout: 100 });
  join(h, "fresh", 30);
  join(h, "stale", 90, { complete: false });
  assert.equal(h.decide(view({ now: 50 })).kind, "wait");
  const decision = h.decide(view({ now: 101, seq: 10 }));
  assert.equal(decision.kind, "recover");
  if (decision.kind !== "recover") return;
  assert.equal(decision.seq, 30);
  assert.deepEqual(decision.timedOut, {
    back: 0,
    needed: 1,
    away: ["a", "b"],
  });
});

Deno.test("time up with no database here keeps waiting", () => {
  const h = hold(["a"], 1, { timeout: 100 });
  assert.equal(h.decide(view({ now: 200 })).kind, "wait");
});

Deno.test("a hold with nothing left to wait for ends, or serves the joins it holds", () => {
  const empty = hold([], 0);
  assert.deepEqual(empty.decide(view()), { kind: "end" });
  const withJoin = hold([], 0);
  join(withJoin, "fresh", 0);
  assert.equal(withJoin.decide(view()).kind, "recover");
});

Deno.test("volatile members are gone after their grace; durable ones never", () => {
  const volatile = hold(["a", "b"], 1, { volatile: true });
  assert.deepEqual(volatile.gone(999), []);
  assert.deepEqual(volatile.gone(1_000), ["a", "b"]);
  const durable = hold(["a"], 1);
  assert.deepEqual(durable.gone(1e9), []);
});

Deno.test("a hold describes what it waits for and the way out", () => {
  const h = hold(["aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"], 2);
  const text = h.describe(12_345);
  assert.match(text, /for 12 s the router has waited for all 2 members/);
  assert.match(text, /absent: aaaaaaaaaaaa \(durable, last at 10\.0\.0\.1:1/);
  assert.match(text, /kvndb forget HOST PORT --all-absent/);
});
