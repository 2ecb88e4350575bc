/**
 * The KVNDB wire protocol: constants, opcodes, errors, the frame codec, the
 * message encoders, authentication, the framed connection and endpoints.
 * The byte-level specification is `docs/protocol.md`.
 *
 * @example Encoding and decoding a frame
 * ```ts
 * import { decodeFrame, encodeGet } from "./mod.ts";
 * const bytes = encodeGet(1, new TextEncoder().encode("a"));
 * console.log(decodeFrame(bytes)?.frame.opcode); // 16
 * ```
 *
 * @module
 */

export * from "./constants.ts";
export * from "./opcodes.ts";
export * from "./errors.ts";
export * from "./frame.ts";
export * from "./messages.ts";
export * from "./handshake_messages.ts";
export * from "./keys.ts";
export * from "./forget.ts";
export * from "./replication_messages.ts";
export * from "./atomic.ts";
export * from "./atomic_outcome.ts";
export * from "./range.ts";
export * from "./watch.ts";
export * from "./digest.ts";
export * from "./auth.ts";
export * from "./connection.ts";
export * from "./handshake.ts";
export * from "./transport.ts";
export * from "./in_process.ts";
export * from "./hex.ts";
export * from "./resp.ts";
export * from "./stats.ts";
export * from "./sleep.ts";
export * from "./clock.ts";
