import assert from "node:assert/strict";
import { AckLevel } from "../protocol/mod.ts";
import { acknowledgedUpTo, needed } from "./quorum.ts";

Deno.test("needed() counts one, a majority or all of the ready databases", () => {
  const rows: [level: number, ready: number, expected: number][] = [
    [AckLevel.ONE, 0, 0],
    [AckLevel.ONE, 1, 1],
    [AckLevel.ONE, 5, 1],
    [AckLevel.MAJORITY, 0, 0],
    [AckLevel.MAJORITY, 1, 1],
    [AckLevel.MAJORITY, 2, 2],
    [AckLevel.MAJORITY, 3, 2],
    [AckLevel.MAJORITY, 4, 3],
    [AckLevel.MAJORITY, 5, 3],
    [AckLevel.ALL, 0, 0],
    [AckLevel.ALL, 1, 1],
    [AckLevel.ALL, 3, 3],
  ];
  for (const [level, ready, expected] of rows) {
    assert.equal(needed(level, ready), expected, `level ${level}, ${ready}`);
  }
});

Deno.test("acknowledgedUpTo() is the position of the database that completes the quorum", () => {
  const rows: [applied: number[], level: number, expected: number][] = [
    [[], AckLevel.ALL, 0],
    [[], AckLevel.ONE, 0],
    [[12], AckLevel.ALL, 12],
    [[12, 10, 3], AckLevel.ONE, 12],
    [[12, 10, 3], AckLevel.MAJORITY, 10],
    [[12, 10, 3], AckLevel.ALL, 3],
    [[8, 8], AckLevel.MAJORITY, 8],
    [[9, 7, 5, 1], AckLevel.MAJORITY, 5],
  ];
  for (const [applied, level, expected] of rows) {
    assert.equal(
      acknowledgedUpTo(applied, level),
      expected,
      `${applied} at level ${level}`,
    );
  }
});
