// Small byte arrays carved out of shared 64 KiB slabs. A `new Uint8Array(n)`
// allocates its own backing store, which cost about 0.9 µs against 0.05 µs
// for a view into a slab (measured on the development machine): per frame,
// that was the largest item of the router's CPU profile. Slabs are never
// written again once handed out, so views stay valid as long as they are
// referenced. A long-lived view keeps its whole slab alive, so frames that are
// kept (the router's backlog) come from slabs of their own: the backlog drops
// its frames oldest first, so at most one partly dropped slab is held beyond
// what it keeps.

const SLAB_SIZE = 64 * 1024;
/** Larger arrays get their own backing store. */
export const MAX_POOLED = 2048;

/** Hands out views into one slab after another. */
class Slabs {
  #slab = new ArrayBuffer(SLAB_SIZE);
  #used = 0;

  /** A zero-filled array of `size` bytes, from a slab when small. */
  take(size: number): Uint8Array {
    if (size > MAX_POOLED) return new Uint8Array(size);
    if (this.#used + size > SLAB_SIZE) {
      this.#slab = new ArrayBuffer(SLAB_SIZE);
      this.#used = 0;
    }
    const out = new Uint8Array(this.#slab, this.#used, size);
    this.#used += size;
    return out;
  }
}

const shared = new Slabs();
const kept = new Slabs();

/** A zero-filled array of `size` bytes, from a shared slab when small. */
export function allocate(size: number): Uint8Array {
  return shared.take(size);
}

/**
 * A zero-filled array of `size` bytes for a frame that is kept and released
 * in the order it was made (the backlog's WRITE frames), from slabs that
 * hold nothing else.
 */
export function allocateKept(size: number): Uint8Array {
  return kept.take(size);
}
