import assert from "node:assert/strict";
import { FramedConnection } from "./connection.ts";
import { inProcessPair } from "./in_process.ts";
import { encodeOpaque } from "./messages.ts";
import { Opcode } from "./opcodes.ts";

Deno.test("in-process pair: bytes arrive in order, split to fit the reader's buffer", async () => {
  const [a, b] = inProcessPair();
  await a.write(new Uint8Array([1, 2, 3]));
  await a.write(new Uint8Array([4, 5]));
  const small = new Uint8Array(4);
  assert.equal(await b.read(small), 4);
  assert.deepEqual([...small], [1, 2, 3, 4]);
  assert.equal(await b.read(small), 1);
  assert.equal(small[0], 5);
  // A read that waits is answered by the next write.
  const pending = b.read(small);
  await a.write(new Uint8Array([9]));
  assert.equal(await pending, 1);
  assert.equal(small[0], 9);
  a.close();
  b.close();
});

Deno.test("in-process pair: close gives the peer end of input after what was sent, and its writes fail", async () => {
  const [a, b] = inProcessPair();
  await a.write(new Uint8Array([7]));
  const buffer = new Uint8Array(4);
  a.close();
  assert.equal(await b.read(buffer), 1);
  assert.equal(await b.read(buffer), null);
  await assert.rejects(b.write(new Uint8Array([1])), Deno.errors.BrokenPipe);
  await assert.rejects(a.read(buffer), Deno.errors.BadResource);
  b.close();
});

Deno.test("in-process pair: a writer waits while its peer holds 4 MiB unread", async () => {
  const [a, b] = inProcessPair();
  const chunk = new Uint8Array(1024 * 1024);
  for (let i = 0; i < 4; i++) await a.write(chunk);
  let done = false;
  const blocked = a.write(chunk).then(() => done = true);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(done, false);
  const buffer = new Uint8Array(2 * 1024 * 1024);
  await b.read(buffer);
  await blocked;
  assert.equal(done, true);
  a.close();
  b.close();
});

Deno.test("in-process pair carries frames between two FramedConnections", async () => {
  const [a, b] = inProcessPair();
  const left = new FramedConnection(a);
  const right = new FramedConnection(b);
  for (let id = 1; id <= 100; id++) left.send(encodeOpaque(Opcode.PING, id));
  for (let id = 1; id <= 100; id++) {
    const frame = await right.readFrame({ timeout: 1000 });
    assert.equal(frame.id, id);
  }
  left.close();
  assert.equal(await right.closed, undefined);
});
