import assert from "node:assert/strict";
import { LoginThrottle } from "./login_throttle.ts";

function throttle(delay: number, signal = new AbortController().signal) {
  return new LoginThrottle({ delay, allowed: 2, window: 60_000, signal });
}

Deno.test("LoginThrottle: attempts wait only past the allowed failures, then twice as long each", async () => {
  const t = throttle(20);
  const timed = async () => {
    const started = performance.now();
    await t.before("a");
    return performance.now() - started;
  };
  assert.ok(await timed() < 15);
  await t.failed("a");
  await t.failed("a");
  assert.equal(t.failures("a"), 2);
  assert.ok(await timed() >= 15, "the third attempt waits");
  await t.failed("a");
  assert.ok(await timed() >= 35, "the fourth waits twice as long");
  // Another address is not slowed, and success forgets.
  assert.equal(t.failures("b"), 0);
  t.succeeded("a");
  assert.equal(t.failures("a"), 0);
});

Deno.test("LoginThrottle: old failures are pruned, and an abort ends every wait", async () => {
  const controller = new AbortController();
  const t = new LoginThrottle({
    delay: 60_000,
    allowed: 0,
    window: 10,
    signal: controller.signal,
  });
  const failing = t.failed("a");
  controller.abort();
  await failing;
  await t.before("a");
  t.prune(performance.now() + 1_000);
  assert.equal(t.failures("a"), 0);
});
