// The expiry times of the keys that have one, for both backends: by key for
// reads (is this key expired now?), and in time order for the router's sweep
// (which keys have expired?). Keys without an expiry cost nothing here.

import { createSortedMap, type SortedMap } from "./_sorted_map.ts";

/** Seven characters of eight bits: times up to 2^56 ms, in order. */
function timeKey(at: number): string {
  const high = Math.floor(at / 0x1_0000_0000);
  return String.fromCharCode(
    (high >>> 16) & 0xff,
    (high >>> 8) & 0xff,
    high & 0xff,
    (at >>> 24) & 0xff,
    (at >>> 16) & 0xff,
    (at >>> 8) & 0xff,
    at & 0xff,
  );
}

const TIME_CHARS = 7;

/** Expiry times by key (binary strings), also walkable in time order. */
export class ExpiryIndex {
  #at = new Map<string, number>();
  #order: SortedMap<string, undefined> = createSortedMap();

  /** How many keys have an expiry. */
  get size(): number {
    return this.#at.size;
  }

  /** The key's expiry, or `undefined` when it has none. */
  get(id: string): number | undefined {
    return this.#at.size === 0 ? undefined : this.#at.get(id);
  }

  /** Whether the key has an expiry at or before `now`. */
  isExpired(id: string, now: number): boolean {
    if (this.#at.size === 0) return false;
    const at = this.#at.get(id);
    return at !== undefined && at <= now;
  }

  /** Gives the key an expiry, or with `undefined` removes the one it has. */
  set(id: string, at: number | undefined): void {
    if (at === undefined) {
      this.delete(id);
      return;
    }
    const old = this.#at.get(id);
    if (old === at) return;
    if (old !== undefined) this.#order.delete(timeKey(old) + id);
    this.#at.set(id, at);
    this.#order.set(timeKey(at) + id, undefined);
  }

  /** Removes the key's expiry, if it has one. */
  delete(id: string): void {
    if (this.#at.size === 0) return;
    const old = this.#at.get(id);
    if (old === undefined) return;
    this.#at.delete(id);
    this.#order.delete(timeKey(old) + id);
  }

  /** Forgets every expiry. */
  clear(): void {
    this.#at.clear();
    this.#order.clear();
  }

  /** Up to `limit` keys expired at `now`, earliest expiry first. */
  expired(now: number, limit: number): string[] {
    const out: string[] = [];
    if (this.#at.size === 0) return out;
    const end = timeKey(now);
    for (const [entry] of this.#order.entries()) {
      if (out.length >= limit || entry.slice(0, TIME_CHARS) > end) break;
      out.push(entry.slice(TIME_CHARS));
    }
    return out;
  }

  /** How many keys have expired at `now` (and wait for the sweep). */
  countExpired(now: number): number {
    if (this.#at.size === 0) return 0;
    const end = timeKey(now);
    let count = 0;
    for (const [entry] of this.#order.entries()) {
      if (entry.slice(0, TIME_CHARS) > end) break;
      count++;
    }
    return count;
  }
}
