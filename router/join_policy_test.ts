import assert from "node:assert/strict";
import { type JoinPlan, type JoinView, planJoin } from "./join_policy.ts";

/** A database of this cluster at the router's position, one ready peer. */
const base: JoinView = {
  foreign: false,
  current: true,
  applied: 100,
  seq: 100,
  movedSinceAdopted: true,
  backlogCovers: true,
  backlogBytesAfter: 0,
  maxReplayBytes: 32 << 20,
  readySources: 1,
  anyReplaying: false,
  members: 1,
  isMember: true,
  weak: false,
  reset: false,
  fresh: false,
};

// One row per row of the table in docs/protocol.md, "JOIN and JOINED".
const rows: [string, Partial<JoinView>, JoinPlan][] = [
  ["another cluster's data, no reset: refused", {
    foreign: true,
    current: false,
  }, { kind: "refuse" }],
  ["another cluster's data with reset: copied", {
    foreign: true,
    current: false,
    reset: true,
  }, { kind: "sync", waitForSource: false }],
  ["current at the router's seq: ready", {}, { kind: "ready" }],
  ["ahead, and no other ready database: its position is adopted", {
    applied: 120,
    readySources: 0,
  }, { kind: "adopt" }],
  ["ahead of a router that has not moved since adopting: adopted", {
    applied: 120,
    movedSinceAdopted: false,
  }, { kind: "adopt" }],
  ["ahead otherwise: its extra writes were never acknowledged, full sync", {
    applied: 120,
  }, { kind: "sync", waitForSource: false }],
  ["behind, within the backlog: replay", { applied: 90 }, { kind: "replay" }],
  ["behind, within the backlog but too much to replay: full sync", {
    applied: 90,
    backlogBytesAfter: 40 << 20,
  }, { kind: "sync", waitForSource: false }],
  ["behind, too much to replay and no source: replay all the same", {
    applied: 90,
    backlogBytesAfter: 40 << 20,
    readySources: 0,
  }, { kind: "replay" }],
  ["behind the backlog, another database ready: full sync", {
    applied: 10,
    backlogCovers: false,
  }, { kind: "sync", waitForSource: false }],
  ["behind the backlog, none ready but one replaying: sync from it later", {
    applied: 10,
    backlogCovers: false,
    readySources: 0,
    anyReplaying: true,
  }, { kind: "sync", waitForSource: true }],
  ["none ready, reset asked: starts empty at the current position", {
    current: false,
    reset: true,
    readySources: 0,
    members: 0,
    isMember: false,
  }, { kind: "empty-sync", behind: true }],
  ["none ready, not a member while members exist: held", {
    applied: 10,
    backlogCovers: false,
    readySources: 0,
    isMember: false,
  }, { kind: "hold" }],
  ["none ready, a member after weaker acknowledgements: held", {
    applied: 10,
    backlogCovers: false,
    readySources: 0,
    weak: true,
  }, { kind: "hold" }],
  ["none ready, a member, behind the backlog: the reference as it is", {
    applied: 10,
    backlogCovers: false,
    readySources: 0,
  }, { kind: "jump", behind: true }],
  ["a fresh database in a fresh cluster: the reference, not behind", {
    current: false,
    applied: 0,
    seq: 0,
    readySources: 0,
    members: 0,
    isMember: false,
    fresh: true,
  }, { kind: "empty-sync", behind: false }],
];

for (const [name, change, expected] of rows) {
  Deno.test(`planJoin(): ${name}`, () => {
    assert.deepEqual(planJoin({ ...base, ...change }), expected);
  });
}
