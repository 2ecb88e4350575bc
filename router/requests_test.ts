import assert from "node:assert/strict";
import {
  decodeFrame,
  encodeGet,
  encodeGetPayload,
  encodeOpaque,
  ErrorCode,
  type Frame,
  KvndbError,
  Opcode,
  type RouterStats,
} from "../protocol/mod.ts";
import type { ClientSession } from "./_links.ts";
import type { Reads } from "./reads.ts";
import { Backlog } from "./backlog.ts";
import { Watches } from "./watches.ts";
import { Requests } from "./requests.ts";
import type { ClientLink } from "./resp_front_end.ts";
import type { WritePath } from "./write_path.ts";

/** A session whose answers and errors are recorded. */
function link() {
  const sent: Frame[] = [];
  const errors: [number, KvndbError][] = [];
  let failed: KvndbError | undefined;
  const conn: ClientLink = {
    peer: "test",
    isClosed: false,
    send: (bytes) => {
      sent.push(decodeFrame(bytes)!.frame);
      return true;
    },
    sendError: (id, error) => void errors.push([id, error]),
    fail: (error) => {
      failed = error;
      return Promise.resolve();
    },
  };
  return { conn, sent, errors, failed: () => failed };
}

function requests(options: { hold?: boolean; maxInFlight?: number } = {}) {
  const reads: [number, number][] = [];
  const writes: number[] = [];
  const r = new Requests({
    maxInFlight: options.maxInFlight ?? 2,
    reads: {
      read: (client: ClientSession, frame: Frame) => {
        client.inFlight++;
        reads.push([frame.id, frame.opcode]);
      },
      readKept: (client: ClientSession, id: number, opcode: number) => {
        client.inFlight++;
        reads.push([id, opcode]);
      },
    } as unknown as Reads,
    writePath: {
      write: (_client: unknown, id: number) => void writes.push(id),
    } as unknown as WritePath,
    watches: new Watches(() => new Backlog(1024), 0),
    holdError: () =>
      options.hold
        ? new KvndbError(ErrorCode.UNAVAILABLE, "held for a test")
        : undefined,
    forget: () => [],
    saved: () => Promise.resolve(),
    stats: () => ({ seq: 7 }) as unknown as RouterStats,
  });
  return { r, reads, writes };
}

const key = new TextEncoder().encode("k");

Deno.test("requests go to the read path and are counted; PING is answered at once", () => {
  const { r, reads } = requests();
  const { conn, sent } = link();
  const session = r.attach(conn);
  session.submit(decodeFrame(encodeGet(1, key))!.frame);
  session.get(2, encodeGetPayload(key));
  session.submit(decodeFrame(encodeOpaque(Opcode.PING, 3))!.frame);
  assert.deepEqual(reads, [[1, Opcode.GET], [2, Opcode.GET]]);
  assert.equal(r.operations.get, 2);
  assert.equal(r.operations.ping, 1);
  assert.deepEqual(sent.map((f) => [f.id, f.opcode]), [[3, Opcode.PONG]]);
  assert.equal(r.clients, 1);
  session.detach();
  assert.equal(r.clients, 0);
});

Deno.test("a client over its in-flight limit is told to wait, and PING still passes", () => {
  const { r, reads } = requests({ maxInFlight: 1 });
  const { conn, errors, sent } = link();
  const session = r.attach(conn);
  session.get(1, encodeGetPayload(key));
  session.get(2, encodeGetPayload(key));
  session.submit(decodeFrame(encodeOpaque(Opcode.PING, 3))!.frame);
  assert.equal(reads.length, 1);
  assert.equal(errors[0]![0], 2);
  assert.match(
    errors[0]![1].message,
    /Too many requests in flight on this connection \(the limit is 1\)/,
  );
  assert.equal(sent.length, 1);
  assert.equal(r.operations.errors, 1);
});

Deno.test("during a hold only PING, STATS and FORGET are served", () => {
  const { r, reads, writes } = requests({ hold: true });
  const { conn, errors, sent } = link();
  const session = r.attach(conn);
  session.get(1, encodeGetPayload(key));
  session.set(2, key, key);
  session.submit(decodeFrame(encodeOpaque(Opcode.STATS, 3))!.frame);
  assert.deepEqual(reads, []);
  assert.deepEqual(writes, []);
  assert.deepEqual(errors.map(([id, e]) => [id, e.message]), [
    [1, "held for a test"],
    [2, "held for a test"],
  ]);
  assert.deepEqual(sent.map((f) => f.opcode), [Opcode.STATS_REPLY]);
});

Deno.test("a malformed frame closes the session instead of being answered", () => {
  const { r } = requests();
  const { conn, errors, failed } = link();
  const session = r.attach(conn);
  session.submit(decodeFrame(encodeOpaque(Opcode.COUNT, 1, key))!.frame);
  assert.equal(errors.length, 0);
  assert.match(failed()!.message, /Malformed COUNT frame/);
});

Deno.test("fail answers an accepted request and takes it out of flight", () => {
  const { r } = requests();
  const { conn, errors } = link();
  const session = r.attach(conn);
  session.get(1, encodeGetPayload(key));
  // The read path counted it in flight; failing it gives the slot back.
  const client = { conn, inFlight: 1, lastWriteSeq: 0 };
  r.fail(client, 1, new KvndbError(ErrorCode.TIMEOUT, "late"));
  assert.equal(client.inFlight, 0);
  assert.equal(errors[0]![1].message, "late");
});
