/**
 * Login throttling: an address that keeps failing to log in waits longer
 * before each next attempt. See SECURITY.md, "Limits".
 *
 * @module
 */

import { sleep } from "../protocol/mod.ts";

/** Options for {@linkcode LoginThrottle}. */
export interface LoginThrottleOptions {
  /** The wait after a failed login, in ms; it doubles past `allowed`. */
  delay: number;
  /** Failures from one address before its next attempts wait. */
  allowed: number;
  /** How long failures are remembered, in ms. */
  window: number;
  /** Ends every wait at once (the router closing). */
  signal: AbortSignal;
}

/** The most addresses remembered; past it the table starts afresh. */
const MAX_ADDRESSES = 10_000;

/**
 * Counts failed logins per address and makes the next attempts wait: each
 * attempt past the allowed few waits twice as long as the one before, up to
 * 30 s. Every failure itself is answered only after `delay`.
 *
 * @example
 * ```ts
 * import { LoginThrottle } from "./login_throttle.ts";
 * const throttle = new LoginThrottle({
 *   delay: 1, allowed: 3, window: 60_000, signal: new AbortController().signal,
 * });
 * await throttle.failed("10.0.0.1");
 * console.log(throttle.failures("10.0.0.1")); // 1
 * ```
 */
export class LoginThrottle {
  #options: LoginThrottleOptions;
  #failures = new Map<string, { count: number; last: number }>();

  /**
   * Creates a LoginThrottle.
   *
   * @param options The delay, allowance, memory and abort signal.
   */
  constructor(options: LoginThrottleOptions) {
    this.#options = options;
  }

  /** Failed logins remembered for `address`. */
  failures(address: string): number {
    return this.#failures.get(address)?.count ?? 0;
  }

  /** Waits as long as `address`'s recent failures say before an attempt. */
  async before(address: string | undefined): Promise<void> {
    const failures = address === undefined
      ? undefined
      : this.#failures.get(address);
    if (failures === undefined) return;
    const excess = failures.count - this.#options.allowed;
    if (excess < 0) return;
    const delay = Math.min(this.#options.delay * 2 ** excess, 30_000);
    await sleep(delay, this.#options.signal);
  }

  /** Counts a failed login, then waits before the caller answers it. */
  async failed(address: string | undefined): Promise<void> {
    if (address !== undefined) {
      const now = performance.now();
      const entry = this.#failures.get(address);
      if (entry === undefined || now - entry.last > this.#options.window) {
        if (this.#failures.size >= MAX_ADDRESSES) this.#failures.clear();
        this.#failures.set(address, { count: 1, last: now });
      } else {
        entry.count++;
        entry.last = now;
      }
    }
    await sleep(this.#options.delay, this.#options.signal);
  }

  /** Forgets `address`'s failures after it logged in. */
  succeeded(address: string | undefined): void {
    if (address !== undefined) this.#failures.delete(address);
  }

  /** Forgets failures older than the window. */
  prune(now: number): void {
    for (const [address, entry] of this.#failures) {
      if (now - entry.last > this.#options.window) {
        this.#failures.delete(address);
      }
    }
  }
}
