// The databases part on its own: real router parts, in-process connections,
// the database's side played by the test frame by frame.

import assert from "node:assert/strict";
import {
  decodeJoined,
  encodeJoin,
  encodeOpaque,
  encodeU64,
  ErrorCode,
  type Frame,
  FramedConnection,
  inProcessPair,
  JoinMode,
  KvndbError,
  Opcode,
} from "../protocol/mod.ts";
import { Databases } from "./databases.ts";
import { MemberRecord } from "./member_record.ts";
import { Reads } from "./reads.ts";
import { Recovery } from "./recovery.ts";
import { Sequencer } from "./sequencer.ts";
import { Syncs } from "./syncs.ts";
import { WritePath } from "./write_path.ts";
import type { DatabaseLink } from "./_links.ts";

const noDatabase = () => new KvndbError(ErrorCode.NO_DATABASE, "none");

/** The router's parts around a Databases, wired as the router wires them. */
function cluster() {
  const links = new Map<number, DatabaseLink>();
  const closing = new AbortController();
  const sequencer = new Sequencer({
    backlogBytes: 1 << 20,
    reserved: Infinity,
  });
  // The parts call each other back, as in the router: filled in below.
  const late: { databases?: Databases; writePath?: WritePath } = {};
  const syncs = new Syncs(links, {
    seq: () => sequencer.seq,
    finished: (db) => late.databases!.markReady(db),
  });
  const fail = () => {};
  const reads = new Reads(links, {
    balance: "least-loaded",
    requestTimeout: 1_000,
    fail,
    noDatabase,
  });
  const record = new MemberRecord({
    volatileGrace: 1_000,
    position: () => ({
      clusterId: late.databases?.clusterId,
      seq: sequencer.seq,
      reserved: sequencer.reserved,
    }),
    saved: () => late.writePath!.settle(),
    signal: closing.signal,
  });
  const writePath = new WritePath({
    databases: links,
    sequencer,
    record,
    reads,
    defaultLevel: 0,
    requestTimeout: 1_000,
    reserves: false,
    isReadyNode: (id) => late.databases!.isReadyNode(id),
    count: () => {},
    answerError: fail,
    fail,
    noDatabase,
  });
  const recovery = new Recovery({
    record,
    databases: links,
    timeout: Infinity,
    view: () => ({ clusterId: late.databases!.clusterId!, seq: sequencer.seq }),
    acknowledged: () => reads.floor,
    recover: (decision) => late.databases!.recover(decision),
  });
  const databases = new Databases(links, {
    sequencer,
    record,
    recovery,
    writePath,
    reads,
    syncs,
    maxBufferedBytes: 1 << 20,
    heartbeatInterval: 100,
    heartbeatTimeout: 500,
  });
  late.databases = databases;
  late.writePath = writePath;
  const peers: FramedConnection[] = [];
  /** Connects a database: the test holds its end. */
  const connect = () => {
    const [a, b] = inProcessPair();
    const routerSide = new FramedConnection(a);
    const databaseSide = new FramedConnection(b);
    peers.push(routerSide, databaseSide);
    databases.add(routerSide);
    return databaseSide;
  };
  return {
    links,
    databases,
    sequencer,
    connect,
    async [Symbol.asyncDispose]() {
      closing.abort();
      for (const peer of peers) peer.close();
      await Promise.all(peers.map((peer) => peer.closed));
    },
  };
}

const node = (n: number) => new Uint8Array(16).fill(n);
const timeout = { timeout: 2_000 };

async function next(conn: FramedConnection, opcode: number): Promise<Frame> {
  const frame = await conn.readFrame(timeout);
  assert.equal(frame.opcode, opcode, `opcode ${frame.opcode}`);
  return frame;
}

/** Joins an empty database: a full sync with no source, then READY. */
async function joinEmpty(db: FramedConnection, n: number) {
  db.send(encodeJoin({
    clusterId: new Uint8Array(0),
    nodeId: node(n),
    applied: 0,
    reset: false,
    complete: true,
  }));
  const joined = decodeJoined((await next(db, Opcode.JOINED)).payload);
  assert.equal(joined.mode, JoinMode.FULL_SYNC);
  assert.equal(joined.from, 1);
  // Nothing to copy: the sync ends at once, and the database says it merged.
  const end = await next(db, Opcode.SYNC_END);
  db.send(encodeOpaque(Opcode.SYNC_END, end.id));
  await next(db, Opcode.READY);
  return joined;
}

Deno.test("databases: a first empty database starts a cluster, syncs nothing and is ready", async () => {
  await using c = cluster();
  const db = c.connect();
  const joined = await joinEmpty(db, 1);
  assert.equal(joined.clusterId.length, 16);
  assert.deepEqual(c.databases.clusterId, joined.clusterId);
  assert.equal([...c.links.values()][0]!.state, "ready");
  assert.ok(c.databases.isReadyNode("01".repeat(16)));
});

Deno.test("databases: the first database with data gives the cluster its id and position", async () => {
  await using c = cluster();
  const db = c.connect();
  const clusterId = new Uint8Array(16).fill(7);
  db.send(encodeJoin({
    clusterId,
    nodeId: node(1),
    applied: 41,
    reset: false,
    complete: true,
  }));
  const joined = decodeJoined((await next(db, Opcode.JOINED)).payload);
  assert.equal(joined.mode, JoinMode.READY);
  assert.equal(joined.from, 42);
  assert.deepEqual(c.databases.clusterId, clusterId);
  assert.equal(c.sequencer.seq, 41);
});

Deno.test("databases: a database of another cluster is refused with a way out", async () => {
  await using c = cluster();
  const first = c.connect();
  first.send(encodeJoin({
    clusterId: new Uint8Array(16).fill(7),
    nodeId: node(1),
    applied: 3,
    reset: false,
    complete: true,
  }));
  await next(first, Opcode.JOINED);
  const stranger = c.connect();
  stranger.send(encodeJoin({
    clusterId: new Uint8Array(16).fill(9),
    nodeId: node(2),
    applied: 3,
    reset: false,
    complete: true,
  }));
  const error = await next(stranger, Opcode.ERROR);
  const text = new TextDecoder().decode(error.payload);
  assert.match(text, /--reset/);
  await stranger.closed;
  assert.equal(c.links.size, 1);
});

Deno.test("databases: APPLIED going backwards drops the database", async () => {
  await using c = cluster();
  const db = c.connect();
  db.send(encodeJoin({
    clusterId: new Uint8Array(16).fill(7),
    nodeId: node(1),
    applied: 5,
    reset: false,
    complete: true,
  }));
  await next(db, Opcode.JOINED);
  await next(db, Opcode.READY);
  db.send(encodeU64(Opcode.APPLIED, 0, 4));
  const error = await next(db, Opcode.ERROR);
  assert.match(new TextDecoder().decode(error.payload), /went backwards/);
  await db.closed;
  assert.equal(c.links.size, 0);
});

Deno.test("databases: a second JOIN on one connection drops it", async () => {
  await using c = cluster();
  const db = c.connect();
  const join = encodeJoin({
    clusterId: new Uint8Array(0),
    nodeId: node(1),
    applied: 0,
    reset: false,
    complete: true,
  });
  await joinEmpty(db, 1);
  db.send(join);
  const error = await next(db, Opcode.ERROR);
  assert.match(new TextDecoder().decode(error.payload), /JOIN sent twice/);
  await db.closed;
});

Deno.test("databases: heartbeats ping a quiet database and drop a silent one", async () => {
  await using c = cluster();
  const db = c.connect();
  const link = [...c.links.values()][0]!;
  c.databases.heartbeat(link.lastSeen + 200);
  await next(db, Opcode.PING);
  c.databases.heartbeat(link.lastSeen + 600);
  const error = await next(db, Opcode.ERROR);
  assert.match(new TextDecoder().decode(error.payload), /Heartbeat timed out/);
  await db.closed;
  assert.equal(c.links.size, 0);
});
