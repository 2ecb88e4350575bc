/**
 * The frame codec: bytes in, frames out. Pure: no sockets, no I/O, so it can
 * be tested and fuzzed alone. Layout in `docs/protocol.md`, "Frame layout".
 *
 * @module
 */

import { HEADER_SIZE, LENGTH_SIZE, MAX_FRAME_SIZE } from "./constants.ts";
import { ProtocolError, TooLargeError } from "./errors.ts";
import { opcodeName } from "./opcodes.ts";
import { allocate, allocateKept } from "./_pool.ts";

/** One decoded frame. `payload` is a view into the decoder's buffer. */
export interface Frame {
  /** What the frame is; one of {@linkcode Opcode}. */
  opcode: number;
  /** Reserved; always 0 in protocol version 1. */
  flags: number;
  /** Matches an answer to its request; 0 for frames that answer nothing. */
  id: number;
  /** The opcode-specific body. */
  payload: Uint8Array;
}

/** Reads a big-endian 32-bit unsigned integer at `offset`. */
function getU32(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset]! << 24) >>> 0) + (bytes[offset + 1]! << 16) +
    (bytes[offset + 2]! << 8) + bytes[offset + 3]!;
}

/** Writes a big-endian 32-bit unsigned integer at `offset`. */
function putU32(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value >>> 24;
  bytes[offset + 1] = value >>> 16;
  bytes[offset + 2] = value >>> 8;
  bytes[offset + 3] = value;
}

/**
 * Writes one frame into a buffer allocated once at its exact size, then
 * fills the payload through typed writes. The caller states the payload size
 * up front, which every message encoder can compute.
 *
 * @example Encoding a PING
 * ```ts
 * import { FrameWriter } from "./frame.ts";
 * import { Opcode } from "./opcodes.ts";
 * const writer = new FrameWriter(Opcode.PING, 7, 0);
 * console.log(writer.finish().length); // 10
 * ```
 */
export class FrameWriter {
  #bytes: Uint8Array;
  #offset = HEADER_SIZE;

  /**
   * Creates a FrameWriter.
   *
   * @param opcode The frame's opcode.
   * @param id The request id.
   * @param payloadSize The exact number of payload bytes that will be written.
   * @param options `kept: true` for a frame kept long after it is sent and
   *   let go in the order made (the backlog's), which must not hold a slab
   *   of other frames alive.
   * @throws {TooLargeError} When the frame would exceed {@linkcode MAX_FRAME_SIZE}.
   */
  constructor(
    opcode: number,
    id: number,
    payloadSize: number,
    options?: { kept?: boolean },
  ) {
    const length = HEADER_SIZE - LENGTH_SIZE + payloadSize;
    if (length > MAX_FRAME_SIZE) {
      throw new TooLargeError(
        `Frame of ${length} bytes exceeds the maximum frame size (${MAX_FRAME_SIZE} bytes)`,
      );
    }
    // Bytes written one by one: a DataView per frame cost more than the rest.
    // Frames come from slabs (see _pool.ts); those kept long, and released
    // in order (the backlog's), from slabs of their own.
    const bytes = options?.kept
      ? allocateKept(HEADER_SIZE + payloadSize)
      : allocate(HEADER_SIZE + payloadSize);
    this.#bytes = bytes;
    putU32(bytes, 0, length);
    bytes[4] = opcode;
    bytes[5] = 0;
    putU32(bytes, 6, id);
  }

  /** Writes one byte. */
  u8(value: number): this {
    this.#bytes[this.#offset] = value;
    this.#offset += 1;
    return this;
  }

  /** Writes a big-endian 16-bit unsigned integer. */
  u16(value: number): this {
    this.#bytes[this.#offset] = value >>> 8;
    this.#bytes[this.#offset + 1] = value;
    this.#offset += 2;
    return this;
  }

  /** Writes a big-endian 32-bit unsigned integer. */
  u32(value: number): this {
    putU32(this.#bytes, this.#offset, value);
    this.#offset += 4;
    return this;
  }

  /** Writes a non-negative safe integer as a big-endian 64-bit unsigned integer. */
  u64(value: number): this {
    putU32(this.#bytes, this.#offset, Math.floor(value / 0x1_0000_0000));
    putU32(this.#bytes, this.#offset + 4, value);
    this.#offset += 8;
    return this;
  }

  /** Writes raw bytes with no length prefix. */
  raw(bytes: Uint8Array): this {
    this.#bytes.set(bytes, this.#offset);
    this.#offset += bytes.length;
    return this;
  }

  /** Writes bytes after a one-byte length. */
  bytes8(bytes: Uint8Array): this {
    return this.u8(bytes.length).raw(bytes);
  }

  /** Writes bytes after a two-byte length. */
  bytes16(bytes: Uint8Array): this {
    return this.u16(bytes.length).raw(bytes);
  }

  /** Writes bytes after a four-byte length. */
  bytes32(bytes: Uint8Array): this {
    return this.u32(bytes.length).raw(bytes);
  }

  /**
   * Returns the encoded frame.
   *
   * @throws {Error} When fewer bytes were written than announced (a bug).
   */
  finish(): Uint8Array {
    if (this.#offset !== this.#bytes.length) {
      throw new Error(
        `Frame writer filled ${this.#offset} of ${this.#bytes.length} bytes`,
      );
    }
    return this.#bytes;
  }
}

/**
 * Reads a frame's payload with a cursor. Every read checks the bytes left and
 * throws {@linkcode ProtocolError} instead of reading past the end; byte
 * strings come back as views, not copies.
 *
 * @example
 * ```ts
 * import { PayloadReader } from "./frame.ts";
 * const reader = new PayloadReader(new Uint8Array([0, 2, 104, 105]), "GET");
 * console.log(new TextDecoder().decode(reader.bytes16())); // "hi"
 * reader.end();
 * ```
 */
export class PayloadReader {
  #bytes: Uint8Array;
  #offset = 0;
  #what: string;

  /**
   * Creates a PayloadReader.
   *
   * @param payload The payload to read.
   * @param what The frame's name, for error messages.
   */
  constructor(payload: Uint8Array, what: string) {
    this.#bytes = payload;
    this.#what = what;
  }

  /** Bytes not read yet. */
  get remaining(): number {
    return this.#bytes.length - this.#offset;
  }

  #need(count: number): void {
    if (this.#bytes.length - this.#offset < count) {
      throw new ProtocolError(
        `Malformed ${this.#what} frame: needs ${count} more bytes at offset ${this.#offset}, has ${
          this.#bytes.length - this.#offset
        }`,
      );
    }
  }

  /** Reads one byte. */
  u8(): number {
    this.#need(1);
    return this.#bytes[this.#offset++]!;
  }

  /** Reads a big-endian 16-bit unsigned integer. */
  u16(): number {
    this.#need(2);
    const value = (this.#bytes[this.#offset]! << 8) |
      this.#bytes[this.#offset + 1]!;
    this.#offset += 2;
    return value;
  }

  /** Reads a big-endian 32-bit unsigned integer. */
  u32(): number {
    this.#need(4);
    const value = getU32(this.#bytes, this.#offset);
    this.#offset += 4;
    return value;
  }

  /**
   * Reads a big-endian 64-bit unsigned integer.
   *
   * @throws {ProtocolError} When it is not a safe integer (2^53 and up).
   */
  u64(): number {
    this.#need(8);
    const high = getU32(this.#bytes, this.#offset);
    const low = getU32(this.#bytes, this.#offset + 4);
    if (high >= 0x20_0000) {
      throw new ProtocolError(
        `Malformed ${this.#what} frame: 64-bit integer beyond 2^53`,
      );
    }
    this.#offset += 8;
    return high * 0x1_0000_0000 + low;
  }

  /** Reads `count` bytes as a view. */
  raw(count: number): Uint8Array {
    this.#need(count);
    const out = this.#bytes.subarray(this.#offset, this.#offset + count);
    this.#offset += count;
    return out;
  }

  /** Reads bytes after a one-byte length. */
  bytes8(): Uint8Array {
    return this.raw(this.u8());
  }

  /** Reads bytes after a two-byte length. */
  bytes16(): Uint8Array {
    return this.raw(this.u16());
  }

  /** Reads bytes after a four-byte length. */
  bytes32(): Uint8Array {
    return this.raw(this.u32());
  }

  /**
   * Checks that the whole payload was read.
   *
   * @throws {ProtocolError} When bytes are left over.
   */
  end(): void {
    if (this.#offset !== this.#bytes.length) {
      throw new ProtocolError(
        `Malformed ${this.#what} frame: ${
          this.#bytes.length - this.#offset
        } unexpected trailing bytes`,
      );
    }
  }
}

/** The result of {@linkcode decodeFrame}: a frame and how many bytes it took. */
export interface Decoded {
  /** The frame; its payload is a view into the input. */
  frame: Frame;
  /** Bytes of input the frame used. */
  consumed: number;
}

/** Options for {@linkcode decodeFrame} and {@linkcode FrameDecoder}. */
export interface DecodeOptions {
  /** The largest length field accepted. Defaults to {@linkcode MAX_FRAME_SIZE}. */
  maxFrameSize?: number;
}

/**
 * Decodes one frame from the start of `bytes`. Returns `undefined` when the
 * bytes hold only part of a frame. Checks the length against the limit before
 * anything is allocated, so a huge length prefix costs nothing.
 *
 * @param bytes The bytes received so far.
 * @param options The size limit.
 * @returns The frame and the bytes it used, or `undefined` if incomplete.
 * @throws {TooLargeError} When the length prefix exceeds the limit.
 * @throws {ProtocolError} When the frame is shorter than its header, has
 *   reserved flags set or an unknown opcode.
 * @example
 * ```ts
 * import { decodeFrame } from "./frame.ts";
 * const bytes = new Uint8Array([0, 0, 0, 6, 0x17, 0, 0, 0, 0, 1]);
 * console.log(decodeFrame(bytes)?.frame.id); // 1
 * ```
 */
export function decodeFrame(
  bytes: Uint8Array,
  options?: DecodeOptions,
): Decoded | undefined {
  if (bytes.length < LENGTH_SIZE) return undefined;
  const length = getU32(bytes, 0);
  const max = options?.maxFrameSize ?? MAX_FRAME_SIZE;
  if (length > max) {
    throw new TooLargeError(
      `Frame length ${length} exceeds the maximum frame size (${max} bytes)`,
    );
  }
  if (length < HEADER_SIZE - LENGTH_SIZE) {
    throw new ProtocolError(
      `Frame length ${length} is shorter than the frame header (${
        HEADER_SIZE - LENGTH_SIZE
      } bytes)`,
    );
  }
  if (bytes.length >= LENGTH_SIZE + 2) {
    // Reject garbage as soon as the header shows it, not once `length` bytes came.
    checkHeader(bytes[4]!, bytes[5]!);
  }
  const total = LENGTH_SIZE + length;
  if (bytes.length < total) return undefined;
  const id = getU32(bytes, 6);
  return {
    frame: {
      opcode: bytes[4]!,
      flags: bytes[5]!,
      id,
      payload: bytes.subarray(HEADER_SIZE, total),
    },
    consumed: total,
  };
}

function checkHeader(opcode: number, flags: number): void {
  if (opcodeName(opcode) === undefined) {
    throw new ProtocolError(
      `Unknown opcode 0x${opcode.toString(16).padStart(2, "0")}`,
    );
  }
  if (flags !== 0) {
    throw new ProtocolError(
      `Reserved flags 0x${flags.toString(16).padStart(2, "0")} are set`,
    );
  }
}

const EMPTY = new Uint8Array(0);

/**
 * An incremental decoder: push the chunks a socket delivers, take out every
 * complete frame. Handles frames split across chunks and many frames in one
 * chunk. Frames' payloads are views; they stay valid because the decoder
 * never writes into a buffer it has handed out.
 *
 * @example Feeding one byte at a time
 * ```ts
 * import { FrameDecoder } from "./frame.ts";
 * const decoder = new FrameDecoder();
 * const bytes = new Uint8Array([0, 0, 0, 6, 0x17, 0, 0, 0, 0, 9]);
 * const frames = [];
 * for (const byte of bytes) frames.push(...decoder.push(new Uint8Array([byte])));
 * console.log(frames.length, frames[0]?.id); // 1 9
 * ```
 */
export class FrameDecoder {
  /** Fewer bytes than a frame's length prefix, or a frame's first bytes. */
  #buffer: Uint8Array = EMPTY;
  /**
   * A frame split across chunks, once its length is known: allocated at its
   * full size, so that assembling it copies each byte once, however small
   * the chunks.
   */
  #partial?: Uint8Array;
  #filled = 0;
  #maxFrameSize: number;

  /**
   * Creates a FrameDecoder.
   *
   * @param options The size limit.
   */
  constructor(options?: DecodeOptions) {
    this.#maxFrameSize = options?.maxFrameSize ?? MAX_FRAME_SIZE;
  }

  /** The largest frame accepted; can be raised once a peer authenticates. */
  get maxFrameSize(): number {
    return this.#maxFrameSize;
  }

  set maxFrameSize(value: number) {
    this.#maxFrameSize = value;
  }

  /** Bytes held that do not yet make a whole frame. */
  get buffered(): number {
    return this.#partial === undefined ? this.#buffer.length : this.#filled;
  }

  /**
   * Adds a chunk and returns every frame now complete.
   *
   * @param chunk Bytes as received. The decoder may keep a view of it, so the
   *   caller must not reuse its memory.
   * @returns The complete frames, in order.
   * @throws {ProtocolError | TooLargeError} On a malformed or oversized frame;
   *   the decoder is then unusable and the connection should end.
   */
  push(chunk: Uint8Array): Frame[] {
    const frames: Frame[] = [];
    let bytes = chunk;
    let offset = 0;
    const partial = this.#partial;
    if (partial !== undefined) {
      const take = Math.min(partial.length - this.#filled, chunk.length);
      partial.set(chunk.subarray(0, take), this.#filled);
      const before = this.#filled;
      this.#filled += take;
      if (before < LENGTH_SIZE + 2 && this.#filled >= LENGTH_SIZE + 2) {
        checkHeader(partial[4]!, partial[5]!);
      }
      if (this.#filled < partial.length) return frames;
      this.#partial = undefined;
      frames.push(decodeFrame(partial, { maxFrameSize: Infinity })!.frame);
      offset = take;
    } else if (this.#buffer.length > 0) {
      bytes = new Uint8Array(this.#buffer.length + chunk.length);
      bytes.set(this.#buffer);
      bytes.set(chunk, this.#buffer.length);
    }
    const options = { maxFrameSize: this.#maxFrameSize };
    while (offset < bytes.length) {
      const rest = bytes.subarray(offset);
      const decoded = decodeFrame(rest, options);
      if (decoded === undefined) {
        if (rest.length < LENGTH_SIZE) {
          this.#buffer = rest;
          return frames;
        }
        // The length is known (and checked): assemble the frame in place.
        const total = LENGTH_SIZE + getU32(rest, 0);
        this.#partial = new Uint8Array(total);
        this.#partial.set(rest);
        this.#filled = rest.length;
        this.#buffer = EMPTY;
        return frames;
      }
      frames.push(decoded.frame);
      offset += decoded.consumed;
    }
    this.#buffer = EMPTY;
    return frames;
  }
}
