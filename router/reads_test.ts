import assert from "node:assert/strict";
import {
  decodeFrame,
  encodeGet,
  ErrorCode,
  type FramedConnection,
  KvndbError,
  Opcode,
} from "../protocol/mod.ts";
import { ClientSession, DatabaseLink } from "./_links.ts";
import { Reads } from "./reads.ts";
import type { ClientLink } from "./resp_front_end.ts";

/** A database link whose frames are recorded, not sent. */
function database(
  id: number,
  applied: number,
): DatabaseLink & { sent: Uint8Array[] } {
  const sent: Uint8Array[] = [];
  const conn = {
    send: (bytes: Uint8Array) => sent.push(bytes.slice()) > 0,
  } as unknown as FramedConnection;
  const db = new DatabaseLink(id, conn) as DatabaseLink & {
    sent: Uint8Array[];
  };
  db.state = "ready";
  db.applied = applied;
  db.sent = sent;
  return db;
}

function client(): ClientSession & { answers: number[] } {
  const answers: number[] = [];
  const link: ClientLink = {
    peer: "test",
    isClosed: false,
    send: () => true,
    answer: (id) => answers.push(id),
    sendError: () => {},
    fail: () => Promise.resolve(),
  };
  const session = new ClientSession(link) as ClientSession & {
    answers: number[];
  };
  session.answers = answers;
  return session;
}

function setup(timeout = 10_000) {
  const databases = new Map<number, DatabaseLink>();
  const failed: { id: number; error: unknown }[] = [];
  const reads = new Reads(databases, {
    balance: "least-loaded",
    requestTimeout: timeout,
    fail: (c, id, error) => {
      c.inFlight--;
      failed.push({ id, error });
    },
    noDatabase: () => new KvndbError(ErrorCode.NO_DATABASE, "No database"),
  });
  return { databases, failed, reads };
}

const get = decodeFrame(encodeGet(7, new TextEncoder().encode("k")))!.frame;

Deno.test("Reads: a read goes only to a database that has the client's last write, and waits for one", () => {
  const { databases, reads } = setup();
  const behind = database(1, 4);
  databases.set(1, behind);
  const c = client();
  c.lastWriteSeq = 5;
  reads.read(c, get);
  assert.equal(behind.sent.length, 0);
  assert.equal(reads.waiting, 1);
  behind.applied = 5;
  reads.retryWaiting();
  assert.equal(reads.waiting, 0);
  assert.equal(behind.sent.length, 1);
  assert.equal(decodeFrame(behind.sent[0]!)!.frame.opcode, Opcode.GET);
});

Deno.test("Reads: an answer reaches its client and raises the floor for every later read", () => {
  const { databases, reads } = setup();
  const ahead = database(1, 9);
  databases.set(1, ahead);
  const c = client();
  reads.read(c, get);
  const sentId = decodeFrame(ahead.sent[0]!)!.frame.id;
  reads.answered(ahead, {
    opcode: Opcode.VALUE,
    flags: 0,
    id: sentId,
    payload: new Uint8Array([0]),
  });
  assert.deepEqual(c.answers, [7]);
  assert.equal(c.inFlight, 0);
  assert.equal(reads.floor, 9);
  // A database behind the floor no longer serves anyone.
  const behind = database(2, 8);
  databases.clear();
  databases.set(2, behind);
  reads.read(client(), get);
  assert.equal(behind.sent.length, 0);
  assert.equal(reads.waiting, 1);
});

Deno.test("Reads: with no database, a read fails at once; one waiting too long times out", () => {
  const { databases, failed, reads } = setup(0);
  assert.throws(() => reads.read(client(), get), KvndbError);
  const joining = database(1, 0);
  joining.state = "syncing";
  databases.set(1, joining);
  reads.read(client(), get);
  assert.equal(reads.waiting, 1);
  reads.expire(performance.now() + 1);
  assert.equal(reads.waiting, 0);
  assert.equal((failed[0]!.error as KvndbError).code, ErrorCode.TIMEOUT);
});

Deno.test("Reads: the reads of a database that left go to another", () => {
  const { databases, reads } = setup();
  const first = database(1, 3);
  databases.set(1, first);
  reads.read(client(), get);
  assert.equal(first.reads.size, 1);
  databases.delete(1);
  const second = database(2, 3);
  databases.set(2, second);
  reads.reroute(first);
  assert.equal(first.reads.size, 0);
  assert.equal(second.sent.length, 1);
});

Deno.test("Reads: an answer that may show writes not yet on every member waits until they are (a router restart must not take back what a read showed)", () => {
  const databases = new Map<number, DatabaseLink>();
  let durable = 3;
  const reads = new Reads(databases, {
    balance: "least-loaded",
    requestTimeout: 10_000,
    fail: () => {},
    noDatabase: () => new KvndbError(ErrorCode.NO_DATABASE, "No database"),
    durable: () => durable,
  });
  const ahead = database(1, 5);
  databases.set(1, ahead);
  const c = client();
  reads.read(c, get);
  const sent = decodeFrame(ahead.sent[0]!)!.frame;
  reads.answered(ahead, {
    ...sent,
    opcode: Opcode.VALUE,
    payload: new Uint8Array([0]),
  });
  assert.deepEqual(c.answers, [], "held: the members have only 3");
  assert.equal(reads.floor, 0, "nothing seen yet");
  durable = 5;
  reads.retryWaiting();
  assert.deepEqual(c.answers, [7]);
  assert.equal(reads.floor, 5);
});
