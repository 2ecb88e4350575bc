import assert from "node:assert/strict";
import { NUMBER_BLOCK, Sequencer } from "./sequencer.ts";

Deno.test("Sequencer: adopting a position resets the backlog there", () => {
  const sequencer = new Sequencer({
    backlogBytes: 1 << 20,
    reserved: Infinity,
  });
  for (let i = 0; i < 3; i++) {
    sequencer.keep(sequencer.next(), new Uint8Array(4));
  }
  assert.equal(sequencer.seq, 3);
  assert.ok(sequencer.movedSinceAdopted);
  assert.ok(sequencer.backlog.covers(0));
  sequencer.adopt(10);
  assert.equal(sequencer.seq, 10);
  assert.ok(!sequencer.movedSinceAdopted);
  // Nothing at or below the adopted position can be replayed.
  assert.ok(!sequencer.backlog.covers(5));
  assert.ok(sequencer.backlog.covers(10));
  assert.equal([...sequencer.backlog.after(10)].length, 0);
});

Deno.test("Sequencer: giving the backlog up keeps the position and replays nothing", () => {
  const sequencer = new Sequencer({
    backlogBytes: 1 << 20,
    reserved: Infinity,
  });
  sequencer.adopt(4);
  sequencer.keep(sequencer.next(), new Uint8Array(4));
  sequencer.keep(sequencer.next(), new Uint8Array(4));
  sequencer.giveUpBacklog();
  assert.equal(sequencer.seq, 6);
  assert.ok(!sequencer.backlog.covers(4));
  assert.ok(!sequencer.movedSinceAdopted);
});

Deno.test("Sequencer: numbers stop at the reserved ceiling until a higher one is saved", () => {
  const sequencer = new Sequencer({ backlogBytes: 1 << 20, reserved: 0 });
  assert.ok(!sequencer.canNumber);
  assert.ok(sequencer.wantsReservation);
  sequencer.reserve(sequencer.nextCeiling);
  assert.equal(sequencer.reserved, NUMBER_BLOCK);
  assert.ok(sequencer.canNumber);
  assert.ok(!sequencer.wantsReservation);
  // A lower ceiling saved late never lowers it.
  sequencer.reserve(5);
  assert.equal(sequencer.reserved, NUMBER_BLOCK);
  sequencer.adopt(NUMBER_BLOCK);
  assert.ok(!sequencer.canNumber);
});
