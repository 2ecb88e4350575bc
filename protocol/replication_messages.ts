/**
 * Encoders and decoders of the replication messages between the router and
 * its databases: JOIN, JOINED, WRITE, SNAPSHOT and SYNC_CHUNK. Same rules as
 * `messages.ts`: exact sizes, one allocation, bounds-checked views. Byte
 * layouts are in `docs/protocol.md`, "Replication".
 *
 * @module
 */

import { ProtocolError } from "./errors.ts";
import { FrameWriter, PayloadReader } from "./frame.ts";
import { entrySize, readEntry, writeEntry } from "./_entry.ts";
import { checkKey, checkValue, encodeU64 } from "./messages.ts";
import { Opcode, WriteOp } from "./opcodes.ts";
import { type AtomicStep, readAtomicWriteSteps } from "./atomic.ts";

/** JOIN: a database says where it stands in the write stream. */
export interface Join {
  /** The cluster the database's data belongs to; empty when it has none. */
  clusterId: Uint8Array;
  /** The database's own id, stable for the life of its data. */
  nodeId: Uint8Array;
  /** The highest sequence number it has applied. */
  applied: number;
  /** Whether it asks to be cleared and fully synced (`--reset`). */
  reset: boolean;
  /** Whether its data is complete (it was not in the middle of a sync). */
  complete: boolean;
  /**
   * Whether its data dies with its process (a memory database). Absent in
   * older peers' frames, and then false.
   */
  volatile?: boolean;
}

/**
 * Encodes JOIN.
 *
 * @param join The message.
 * @returns The frame's bytes.
 * @example
 * ```ts
 * import { encodeJoin } from "./replication_messages.ts";
 * encodeJoin({ clusterId: new Uint8Array(0), nodeId: new Uint8Array(16), applied: 0, reset: false, complete: true });
 * ```
 */
export function encodeJoin(join: Join): Uint8Array {
  return new FrameWriter(
    Opcode.JOIN,
    0,
    1 + join.clusterId.length + 1 + join.nodeId.length + 8 + 1,
  ).bytes8(join.clusterId).bytes8(join.nodeId).u64(join.applied).u8(
    (join.reset ? 1 : 0) | (join.complete ? 2 : 0) | (join.volatile ? 4 : 0),
  ).finish();
}

/**
 * Decodes JOIN.
 *
 * @param payload The frame's payload.
 * @returns The message.
 * @example
 * ```ts
 * import { decodeJoin, encodeJoin } from "./replication_messages.ts";
 * const bytes = encodeJoin({ clusterId: new Uint8Array(0), nodeId: new Uint8Array(16), applied: 5, reset: false, complete: true });
 * console.log(decodeJoin(bytes.subarray(10)).applied); // 5
 * ```
 */
export function decodeJoin(payload: Uint8Array): Join {
  const reader = new PayloadReader(payload, "JOIN");
  const clusterId = reader.bytes8();
  const nodeId = reader.bytes8();
  const applied = reader.u64();
  const flags = reader.u8();
  reader.end();
  return {
    clusterId,
    nodeId,
    applied,
    reset: (flags & 1) !== 0,
    complete: (flags & 2) !== 0,
    volatile: (flags & 4) !== 0,
  };
}

/** JOINED: the router tells a database how it joins. */
export interface Joined {
  /** The router's cluster id, which the database adopts. */
  clusterId: Uint8Array;
  /** {@linkcode JoinMode}. */
  mode: number;
  /** The first sequence number of the writes that follow. */
  from: number;
}

/**
 * Encodes JOINED.
 *
 * @param joined The message.
 * @returns The frame's bytes.
 * @example
 * ```ts
 * import { encodeJoined } from "./replication_messages.ts";
 * encodeJoined({ clusterId: new Uint8Array(16), mode: 0, from: 1 });
 * ```
 */
export function encodeJoined(joined: Joined): Uint8Array {
  return new FrameWriter(Opcode.JOINED, 0, 1 + joined.clusterId.length + 1 + 8)
    .bytes8(joined.clusterId).u8(joined.mode).u64(joined.from).finish();
}

/**
 * Decodes JOINED.
 *
 * @param payload The frame's payload.
 * @returns The message.
 * @example
 * ```ts
 * import { decodeJoined, encodeJoined } from "./replication_messages.ts";
 * const bytes = encodeJoined({ clusterId: new Uint8Array(16), mode: 2, from: 9 });
 * console.log(decodeJoined(bytes.subarray(10)).mode); // 2
 * ```
 */
export function decodeJoined(payload: Uint8Array): Joined {
  const reader = new PayloadReader(payload, "JOINED");
  const joined = {
    clusterId: reader.bytes8(),
    mode: reader.u8(),
    from: reader.u64(),
  };
  reader.end();
  return joined;
}

/** A write as the router sends it to databases. */
export interface Write {
  /** Its sequence number. */
  seq: number;
  /** {@linkcode WriteOp}. */
  op: number;
  /** The key. */
  key: Uint8Array;
  /** The value, for a set. */
  value?: Uint8Array;
  /**
   * For a set: when the key expires, in ms since the epoch; absent, it does
   * not. Only an atomic operation's effects carry one.
   */
  expiresAt?: number;
  /** The steps, for an atomic operation (whose `key` is empty). */
  steps?: AtomicStep[];
  /** The atomic operation's `AtomicFlag` bits. */
  flags?: number;
  /** The atomic operation's time (the router's clock, ms since the epoch). */
  now?: number;
}

/**
 * Returns the size of a write's payload in a WRITE frame.
 *
 * @param write The write.
 * @returns Its encoded payload size in bytes.
 * @example
 * ```ts
 * import { writeSize } from "./replication_messages.ts";
 * console.log(writeSize({ seq: 1, op: 2, key: new Uint8Array(1) })); // 12
 * ```
 */
export function writeSize(write: Write): number {
  return 8 + 1 + 2 + write.key.length +
    (write.op === WriteOp.SET ? 4 + (write.value?.length ?? 0) : 0);
}

/**
 * Encodes WRITE.
 *
 * @param write The write.
 * @returns The frame's bytes.
 * @example
 * ```ts
 * import { encodeWrite } from "./replication_messages.ts";
 * encodeWrite({ seq: 1, op: 1, key: new Uint8Array([97]), value: new Uint8Array([49]) });
 * ```
 */
export function encodeWrite(write: Write): Uint8Array {
  // Kept in the router's backlog, which lets go oldest first: slabs of its own.
  const writer = new FrameWriter(Opcode.WRITE, 0, writeSize(write), {
    kept: true,
  }).u64(
    write.seq,
  ).u8(write.op).bytes16(write.key);
  if (write.op === WriteOp.SET) writer.bytes32(write.value ?? new Uint8Array());
  return writer.finish();
}

/**
 * Decodes WRITE.
 *
 * @param payload The frame's payload.
 * @returns The write; key and value are views.
 * @example
 * ```ts
 * import { decodeWrite, encodeWrite } from "./replication_messages.ts";
 * const bytes = encodeWrite({ seq: 3, op: 2, key: new Uint8Array([97]) });
 * console.log(decodeWrite(bytes.subarray(10)).seq); // 3
 * ```
 */
export function decodeWrite(payload: Uint8Array): Write {
  const reader = new PayloadReader(payload, "WRITE");
  const seq = reader.u64();
  const op = reader.u8();
  if (op === WriteOp.ATOMIC) {
    const { now, flags, steps } = readAtomicWriteSteps(reader);
    reader.end();
    return { seq, op, key: new Uint8Array(0), flags, steps, now };
  }
  const key = reader.bytes16();
  checkKey(key);
  if (op === WriteOp.DELETE) {
    reader.end();
    return { seq, op, key };
  }
  if (op !== WriteOp.SET) {
    throw new ProtocolError(`Unknown write operation ${op}`);
  }
  const value = reader.bytes32();
  reader.end();
  checkValue(value);
  return { seq, op, key, value };
}

/** A key with its value and version, as a sync streams it. */
export interface SyncEntry {
  /** The key. */
  key: Uint8Array;
  /** The value. */
  value: Uint8Array;
  /** The sequence number of the write that stored it. */
  version: number;
  /** When it expires, in ms since the epoch; absent when it does not. */
  expiresAt?: number;
}

/**
 * Encodes SNAPSHOT: the router asks a source database to stream its contents
 * once it has applied `from`.
 *
 * @param id The sync id.
 * @param from The sequence number the source must have applied first.
 * @returns The frame's bytes.
 * @example
 * ```ts
 * import { encodeSnapshot } from "./replication_messages.ts";
 * encodeSnapshot(1, 100);
 * ```
 */
export function encodeSnapshot(id: number, from: number): Uint8Array {
  return encodeU64(Opcode.SNAPSHOT, id, from);
}

/**
 * Encodes SYNC_CHUNK.
 *
 * @param id The sync id.
 * @param entries The entries.
 * @returns The frame's bytes.
 * @example
 * ```ts
 * import { encodeSyncChunk } from "./replication_messages.ts";
 * encodeSyncChunk(1, [{ key: new Uint8Array([97]), value: new Uint8Array(0), version: 1 }]);
 * ```
 */
export function encodeSyncChunk(id: number, entries: SyncEntry[]): Uint8Array {
  let size = 4;
  for (const e of entries) size += entrySize(e);
  const writer = new FrameWriter(Opcode.SYNC_CHUNK, id, size).u32(
    entries.length,
  );
  for (const e of entries) writeEntry(writer, e);
  return writer.finish();
}

/**
 * Decodes SYNC_CHUNK.
 *
 * @param payload The frame's payload.
 * @returns The entries; keys and values are views.
 * @example
 * ```ts
 * import { decodeSyncChunk, encodeSyncChunk } from "./replication_messages.ts";
 * console.log(decodeSyncChunk(encodeSyncChunk(1, []).subarray(10)).length); // 0
 * ```
 */
export function decodeSyncChunk(payload: Uint8Array): SyncEntry[] {
  const reader = new PayloadReader(payload, "SYNC_CHUNK");
  const count = reader.u32();
  if (count * 14 > reader.remaining) {
    throw new ProtocolError(
      `Malformed SYNC_CHUNK frame: ${count} entries cannot fit in ${reader.remaining} bytes`,
    );
  }
  const entries: SyncEntry[] = new Array(count);
  for (let i = 0; i < count; i++) entries[i] = readEntry(reader, "SYNC_CHUNK");
  reader.end();
  return entries;
}
