/**
 * Waits that end early when their signal aborts, so that a `close()` never
 * has to outlast a backoff or a throttle.
 *
 * @module
 */

/**
 * Waits `ms` milliseconds, or until `signal` aborts.
 *
 * @param ms How long to wait.
 * @param signal Ends the wait early.
 * @returns Whether the full time passed (`false` when aborted).
 * @example
 * ```ts
 * import { sleep } from "./sleep.ts";
 * const controller = new AbortController();
 * controller.abort();
 * console.log(await sleep(10_000, controller.signal)); // false
 * ```
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
