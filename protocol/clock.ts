/**
 * A clock read once per task, for the hot path: deadlines and liveness
 * stamps taken for every request cost a system call each, and within one
 * task (one read's worth of requests) they would all read the same time.
 *
 * @module
 */

let cached = -1;

function forget(): void {
  cached = -1;
}

/**
 * `performance.now()`, read at most once per task: every call until the
 * current task's microtasks have run returns the same value. Use it for
 * deadlines and "last seen" stamps, not to measure durations inside a task.
 *
 * @returns Milliseconds since the process started.
 * @example
 * ```ts
 * import { taskNow } from "./clock.ts";
 * console.log(taskNow() === taskNow()); // true
 * ```
 */
export function taskNow(): number {
  if (cached < 0) {
    cached = performance.now();
    queueMicrotask(forget);
  }
  return cached;
}
