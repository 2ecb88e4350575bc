// What the Deno KV backend keeps in memory about its store: the chunk count
// of every key holding a chunked value, and the expiry of every key that has
// one. Each is loaded from its records on first use and kept up to date by
// the backend's commits.

import { toBinary } from "./_binary_key.ts";
import { ExpiryIndex } from "./_expiry.ts";
import { keyOf, partsOf } from "./_kv_key.ts";
import { bytesOf, EXPIRY, LARGE, readU64, recordTail } from "./_kv_layout.ts";

/** The indexes of one store. */
export class KvIndexes {
  #kv: Deno.Kv;
  // By toBinary(key), loaded from `["l", k]`. It may overstate but never
  // omit: overstated, a write deletes chunks that are not there, which is
  // harmless.
  #large: Map<string, number> | null = null;
  // Loaded from `["x", k]`; dropped when a commit fails (it may or may not
  // have landed) and loaded again.
  #expiries: ExpiryIndex | null = null;
  /** The load of `#expiries` under way, shared by every caller. */
  #expiryLoad?: Promise<ExpiryIndex>;
  /** Moved on by anything that makes a load under way stale (clear, a failed commit). */
  #expiryGeneration = 0;

  constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  /** The chunk counts of the keys that hold chunked values. */
  async large(): Promise<Map<string, number>> {
    if (this.#large === null) {
      const large = new Map<string, number>();
      const iterator = this.#kv.list({ prefix: [LARGE] }, { batchSize: 1000 });
      for await (const entry of iterator) {
        const record = bytesOf(entry.value, entry.key);
        const parts = partsOf(entry.key);
        const key = keyOf(parts, recordTail(record, 1, parts));
        large.set(toBinary(key), record[0] ?? 0);
      }
      this.#large = large;
    }
    return this.#large;
  }

  /**
   * The expiry times of the keys that have one. Reads may ask while a write
   * runs: one load serves every caller, and a load that a `clear()` or a
   * failed commit overtook is thrown away and made again.
   */
  async expiries(): Promise<ExpiryIndex> {
    while (this.#expiries === null) {
      this.#expiryLoad ??= this.#loadExpiries();
      const load = this.#expiryLoad;
      const generation = this.#expiryGeneration;
      const expiries = await load;
      if (this.#expiryLoad === load) this.#expiryLoad = undefined;
      if (generation === this.#expiryGeneration) {
        this.#expiries ??= expiries;
      }
    }
    return this.#expiries;
  }

  /** Forgets the expiry index (and any load under way): it is reloaded. */
  dropExpiries(): void {
    this.#expiryGeneration++;
    this.#expiries = null;
    this.#expiryLoad = undefined;
  }

  /** Records that the store was cleared: no key holds chunks or expires. */
  cleared(): void {
    this.#large = new Map();
    this.dropExpiries();
    this.#expiries = new ExpiryIndex();
  }

  async #loadExpiries(): Promise<ExpiryIndex> {
    const expiries = new ExpiryIndex();
    const iterator = this.#kv.list({ prefix: [EXPIRY] }, { batchSize: 1000 });
    for await (const entry of iterator) {
      const record = bytesOf(entry.value, entry.key);
      const parts = partsOf(entry.key);
      const key = keyOf(parts, recordTail(record, 8, parts));
      expiries.set(toBinary(key), readU64(record, 0));
    }
    return expiries;
  }
}
