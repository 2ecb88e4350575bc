/**
 * RESP2, the Redis protocol, as far as the Redis front end needs it: an
 * incremental parser for commands (arrays of bulk strings, and inline
 * commands as telnet users type them) and encoders for replies. Pure: bytes
 * in, commands out.
 *
 * @module
 */

import { MAX_VALUE_SIZE } from "./constants.ts";
import { allocate } from "./_pool.ts";
import { ProtocolError } from "./errors.ts";

const encoder = new TextEncoder();

/** The most arguments one command may have. */
export const RESP_MAX_ARGUMENTS = 1024 * 1024;

/** The longest bulk string accepted: the largest value plus headroom. */
export const RESP_MAX_BULK: number = MAX_VALUE_SIZE + 1024;

/** The longest inline command line. */
export const RESP_MAX_INLINE = 64 * 1024;

/**
 * An incremental RESP command parser: push what the socket delivers, take
 * every complete command out. Arguments are views into the parser's buffer.
 *
 * @example
 * ```ts
 * import { RespParser } from "./resp.ts";
 * const parser = new RespParser();
 * const commands = parser.push(new TextEncoder().encode("*1\r\n$4\r\nPING\r\n"));
 * console.log(new TextDecoder().decode(commands[0]![0])); // "PING"
 * ```
 */
export class RespParser {
  #buffer: Uint8Array = new Uint8Array(0);

  /**
   * Adds bytes and returns the commands now complete.
   *
   * @param chunk Bytes as received (kept by view: do not reuse the memory).
   * @returns The commands, each an array of arguments.
   * @throws {ProtocolError} On malformed input or input over the limits.
   */
  push(chunk: Uint8Array): Uint8Array[][] {
    let bytes = chunk;
    if (this.#buffer.length > 0) {
      bytes = new Uint8Array(this.#buffer.length + chunk.length);
      bytes.set(this.#buffer);
      bytes.set(chunk, this.#buffer.length);
    }
    const commands: Uint8Array[][] = [];
    let offset = 0;
    while (offset < bytes.length) {
      const parsed = bytes[offset] === 0x2a // '*'
        ? parseArray(bytes, offset)
        : parseInline(bytes, offset);
      if (parsed === undefined) break;
      offset = parsed.next;
      if (parsed.command.length > 0) commands.push(parsed.command);
    }
    this.#buffer = offset === bytes.length
      ? new Uint8Array(0)
      : bytes.subarray(offset);
    return commands;
  }
}

interface Parsed {
  command: Uint8Array[];
  next: number;
}

function findCrlf(bytes: Uint8Array, from: number, limit: number): number {
  const end = Math.min(bytes.length - 1, from + limit);
  for (let i = from; i < end; i++) {
    if (bytes[i] === 0x0d && bytes[i + 1] === 0x0a) return i;
  }
  if (bytes.length - from > limit) {
    throw new ProtocolError("Protocol error: line too long");
  }
  return -1;
}

function readNumber(bytes: Uint8Array, from: number, to: number): number {
  let value = 0;
  let negative = false;
  for (let i = from; i < to; i++) {
    const c = bytes[i]!;
    if (i === from && c === 0x2d) {
      negative = true;
      continue;
    }
    if (c < 0x30 || c > 0x39 || to - from > 12) {
      throw new ProtocolError("Protocol error: invalid length");
    }
    value = value * 10 + (c - 0x30);
  }
  if (to === from) throw new ProtocolError("Protocol error: invalid length");
  return negative ? -value : value;
}

function parseArray(bytes: Uint8Array, start: number): Parsed | undefined {
  const headerEnd = findCrlf(bytes, start + 1, 32);
  if (headerEnd < 0) return undefined;
  const count = readNumber(bytes, start + 1, headerEnd);
  if (count > RESP_MAX_ARGUMENTS) {
    throw new ProtocolError("Protocol error: invalid multibulk length");
  }
  let offset = headerEnd + 2;
  if (count <= 0) return { command: [], next: offset };
  const command: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    if (offset >= bytes.length) return undefined;
    if (bytes[offset] !== 0x24) { // '$'
      throw new ProtocolError(
        `Protocol error: expected '$', got '${
          String.fromCharCode(bytes[offset]!)
        }'`,
      );
    }
    const lineEnd = findCrlf(bytes, offset + 1, 32);
    if (lineEnd < 0) return undefined;
    const length = readNumber(bytes, offset + 1, lineEnd);
    if (length < 0 || length > RESP_MAX_BULK) {
      throw new ProtocolError("Protocol error: invalid bulk length");
    }
    const dataStart = lineEnd + 2;
    if (bytes.length < dataStart + length + 2) return undefined;
    if (
      bytes[dataStart + length] !== 0x0d ||
      bytes[dataStart + length + 1] !== 0x0a
    ) {
      throw new ProtocolError("Protocol error: bulk string not terminated");
    }
    command.push(bytes.subarray(dataStart, dataStart + length));
    offset = dataStart + length + 2;
  }
  return { command, next: offset };
}

function parseInline(bytes: Uint8Array, start: number): Parsed | undefined {
  const end = findCrlfOrLf(bytes, start);
  if (end === undefined) return undefined;
  const line = new TextDecoder().decode(bytes.subarray(start, end.at));
  const command = line.trim().split(/\s+/).filter((part) => part.length > 0)
    .map((part) => encoder.encode(part));
  return { command, next: end.next };
}

function findCrlfOrLf(
  bytes: Uint8Array,
  from: number,
): { at: number; next: number } | undefined {
  for (let i = from; i < bytes.length; i++) {
    if (bytes[i] === 0x0a) {
      const at = i > from && bytes[i - 1] === 0x0d ? i - 1 : i;
      return { at, next: i + 1 };
    }
    if (i - from > RESP_MAX_INLINE) {
      throw new ProtocolError("Protocol error: too big inline request");
    }
  }
  return undefined;
}

/**
 * Encodes a simple string reply: `+OK`.
 *
 * @param text The text (no CR or LF).
 * @returns The reply's bytes.
 * @example
 * ```ts
 * import { respSimple } from "./resp.ts";
 * console.log(new TextDecoder().decode(respSimple("OK"))); // "+OK\r\n"
 * ```
 */
export function respSimple(text: string): Uint8Array {
  // The usual answers are encoded once: replies are only ever written out.
  let bytes = SIMPLE.get(text);
  if (bytes === undefined) {
    bytes = encoder.encode(`+${text}\r\n`);
    if (SIMPLE.size < 16) SIMPLE.set(text, bytes);
  }
  return bytes;
}

const SIMPLE = new Map<string, Uint8Array>();
const NULL_BULK = encoder.encode("$-1\r\n");

/**
 * Encodes an error reply: `-ERR …`.
 *
 * @param text The message, with its prefix word (`ERR`, `WRONGPASS`, …).
 * @returns The reply's bytes.
 * @example
 * ```ts
 * import { respError } from "./resp.ts";
 * console.log(new TextDecoder().decode(respError("ERR no"))); // "-ERR no\r\n"
 * ```
 */
export function respError(text: string): Uint8Array {
  return encoder.encode(`-${text.replace(/[\r\n]+/g, " ")}\r\n`);
}

/**
 * Encodes an integer reply.
 *
 * @param value The integer.
 * @returns The reply's bytes.
 * @example
 * ```ts
 * import { respInteger } from "./resp.ts";
 * console.log(new TextDecoder().decode(respInteger(3))); // ":3\r\n"
 * ```
 */
export function respInteger(value: number | bigint): Uint8Array {
  return encoder.encode(`:${value}\r\n`);
}

/**
 * Encodes a bulk string reply, or the null bulk string for `null`.
 *
 * @param value The bytes or text, or `null`.
 * @returns The reply's bytes.
 * @example
 * ```ts
 * import { respBulk } from "./resp.ts";
 * console.log(new TextDecoder().decode(respBulk("hi"))); // "$2\r\nhi\r\n"
 * ```
 */
export function respBulk(value: Uint8Array | string | null): Uint8Array {
  if (value === null) return NULL_BULK;
  const data = typeof value === "string" ? encoder.encode(value) : value;
  const digits = String(data.length);
  const start = 1 + digits.length + 2;
  const out = allocate(start + data.length + 2);
  out[0] = 0x24; // '$'
  for (let i = 0; i < digits.length; i++) out[1 + i] = digits.charCodeAt(i);
  out[start - 2] = 0x0d;
  out[start - 1] = 0x0a;
  out.set(data, start);
  out[start + data.length] = 0x0d;
  out[start + data.length + 1] = 0x0a;
  return out;
}

/**
 * Encodes an array reply from already encoded elements.
 *
 * @param items The encoded elements.
 * @returns The reply's bytes.
 * @example
 * ```ts
 * import { respArray, respBulk } from "./resp.ts";
 * console.log(respArray([respBulk("a")]).length); // 11
 * ```
 */
export function respArray(items: Uint8Array[]): Uint8Array {
  const header = encoder.encode(`*${items.length}\r\n`);
  let size = header.length;
  for (const item of items) size += item.length;
  const out = new Uint8Array(size);
  out.set(header);
  let offset = header.length;
  for (const item of items) {
    out.set(item, offset);
    offset += item.length;
  }
  return out;
}
