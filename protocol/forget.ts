/**
 * FORGET and FORGOTTEN: giving up on absent members (`kvndb forget`).
 * Byte layouts are in `docs/protocol.md`, "Messages".
 *
 * @module
 */

import { ProtocolError, TooLargeError } from "./errors.ts";
import { FrameWriter, PayloadReader } from "./frame.ts";
import { encodeOpaque } from "./messages.ts";
import { Opcode } from "./opcodes.ts";
import type { MemberStats } from "./stats.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The most node ids one FORGET may name. */
export const MAX_FORGET_IDS = 1000;

/** FORGET: give up on absent members (`kvndb forget`). */
export interface ForgetRequest {
  /** Every member that is not connected, rather than `nodeIds`. */
  allAbsent: boolean;
  /** The node ids to forget. */
  nodeIds: Uint8Array[];
}

/**
 * Encodes FORGET.
 *
 * @param id The request id.
 * @param request Which members to give up on.
 * @returns The frame's bytes.
 * @throws {TooLargeError} Past {@linkcode MAX_FORGET_IDS} ids.
 * @example
 * ```ts
 * import { encodeForget } from "./forget.ts";
 * encodeForget(1, { allAbsent: true, nodeIds: [] });
 * ```
 */
export function encodeForget(id: number, request: ForgetRequest): Uint8Array {
  if (request.nodeIds.length > MAX_FORGET_IDS) {
    throw new TooLargeError(
      `FORGET names ${request.nodeIds.length} node ids (the limit is ${MAX_FORGET_IDS})`,
    );
  }
  let size = 1 + 2;
  for (const nodeId of request.nodeIds) size += 1 + nodeId.length;
  const writer = new FrameWriter(Opcode.FORGET, id, size)
    .u8(request.allAbsent ? 1 : 0).u16(request.nodeIds.length);
  for (const nodeId of request.nodeIds) writer.bytes8(nodeId);
  return writer.finish();
}

/**
 * Decodes FORGET.
 *
 * @param payload The frame's payload.
 * @returns The request.
 * @throws {ProtocolError} When it is malformed.
 * @example
 * ```ts
 * import { decodeForget, encodeForget } from "./forget.ts";
 * console.log(decodeForget(encodeForget(1, { allAbsent: true, nodeIds: [] }).subarray(10)).allAbsent); // true
 * ```
 */
export function decodeForget(payload: Uint8Array): ForgetRequest {
  const reader = new PayloadReader(payload, "FORGET");
  const allAbsent = (reader.u8() & 1) !== 0;
  const count = reader.u16();
  if (count > MAX_FORGET_IDS) {
    throw new ProtocolError(
      `Malformed FORGET frame: ${count} node ids (the limit is ${MAX_FORGET_IDS})`,
    );
  }
  const nodeIds: Uint8Array[] = [];
  for (let i = 0; i < count; i++) nodeIds.push(reader.bytes8());
  reader.end();
  return { allAbsent, nodeIds };
}

/**
 * Encodes FORGOTTEN: the members given up on, as a JSON array.
 *
 * @param id The request id.
 * @param members What was known of each.
 * @returns The frame's bytes.
 * @example
 * ```ts
 * import { encodeForgotten } from "./forget.ts";
 * encodeForgotten(1, []);
 * ```
 */
export function encodeForgotten(
  id: number,
  members: MemberStats[],
): Uint8Array {
  return encodeOpaque(
    Opcode.FORGOTTEN,
    id,
    encoder.encode(JSON.stringify(members)),
  );
}

/**
 * Decodes FORGOTTEN.
 *
 * @param payload The frame's payload.
 * @returns The members given up on.
 * @throws {ProtocolError} When it is not a JSON array.
 * @example
 * ```ts
 * import { decodeForgotten, encodeForgotten } from "./forget.ts";
 * console.log(decodeForgotten(encodeForgotten(1, []).subarray(10))); // []
 * ```
 */
export function decodeForgotten(payload: Uint8Array): MemberStats[] {
  let members: unknown;
  try {
    members = JSON.parse(decoder.decode(payload));
  } catch (cause) {
    throw new ProtocolError("Malformed FORGOTTEN frame: not JSON", { cause });
  }
  if (!Array.isArray(members)) {
    throw new ProtocolError("Malformed FORGOTTEN frame: not an array");
  }
  return members as MemberStats[];
}
