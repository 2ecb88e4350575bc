/**
 * Protocol constants and limits. Every number here is documented in
 * `docs/protocol.md` ("Limits" and "Frame layout").
 *
 * @module
 */

/** The four bytes that open every HELLO payload: ASCII `KVND`. */
export const MAGIC: Uint8Array = new Uint8Array([0x4b, 0x56, 0x4e, 0x44]);

/** The protocol version this build speaks. Peers must speak the same one. */
export const PROTOCOL_VERSION = 3;

/** The TCP port KVNDB uses unless told otherwise (the original's default). */
export const DEFAULT_PORT = 54565;

/** Bytes in a frame header: length (4), opcode (1), flags (1), request id (4). */
export const HEADER_SIZE = 10;

/** Bytes of the length field, which counts everything after itself. */
export const LENGTH_SIZE = 4;

/**
 * The largest key, in bytes: every key a Deno KV program can write (2,048
 * bytes, 2,049 for a read bound, plus a versionstamp) fits, with room to spare.
 */
export const MAX_KEY_SIZE = 4096;

/**
 * The largest value, in bytes. Bounded so that one value, split into Deno KV
 * entries, still commits in one atomic operation (Deno KV caps those at 800 KiB).
 */
export const MAX_VALUE_SIZE = 512 * 1024;

/** The largest frame after authentication: a maximal set plus headroom. */
export const MAX_FRAME_SIZE = 1024 * 1024;

/** The largest frame either side accepts before the handshake is done. */
export const MAX_HANDSHAKE_FRAME_SIZE = 4 * 1024;

/** Keys returned in one page of `keys` when the caller names no limit. */
export const DEFAULT_KEYS_LIMIT = 1000;

/** The most keys one page of `keys` may hold. */
export const MAX_KEYS_LIMIT = 10_000;

/** Bytes of keys that one KEY_PAGE may carry. */
export const MAX_PAGE_BYTES = 768 * 1024;
