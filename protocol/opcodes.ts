/**
 * Opcodes, error codes and small enumerations of the wire protocol.
 * Each table points to the section of `docs/protocol.md` that defines it.
 *
 * @module
 */

/**
 * Frame opcodes. See `docs/protocol.md`, "Opcodes".
 *
 * @example Naming an opcode
 * ```ts
 * import { Opcode } from "./opcodes.ts";
 * console.log(Opcode.GET === 0x10); // true
 * ```
 */
export const Opcode = {
  // Handshake ("Handshake and authentication").
  HELLO: 0x01,
  WELCOME: 0x02,
  AUTH: 0x03,
  AUTH_OK: 0x04,
  // Requests and answers ("Operations").
  GET: 0x10,
  VALUE: 0x11,
  SET: 0x12,
  DONE: 0x13,
  DELETE: 0x14,
  KEYS: 0x15,
  KEY_PAGE: 0x16,
  PING: 0x17,
  PONG: 0x18,
  STATS: 0x19,
  STATS_REPLY: 0x1a,
  FORGET: 0x1b,
  FORGOTTEN: 0x1c,
  COUNT: 0x1d,
  COUNT_REPLY: 0x1e,
  ERROR: 0x1f,
  // Router and databases ("Replication").
  JOIN: 0x20,
  JOINED: 0x21,
  WRITE: 0x22,
  APPLIED: 0x23,
  SNAPSHOT: 0x24,
  SYNC_CHUNK: 0x25,
  SYNC_END: 0x26,
  SYNC_ACK: 0x27,
  READY: 0x28,
  OUTCOME: 0x29,
  RESOLVED: 0x2a,
  // Atomic operations ("Atomic operations").
  ATOMIC: 0x30,
  ATOMIC_REPLY: 0x31,
  // Expiry ("Expiry").
  EXPIRED: 0x32,
  // Range reads ("RANGE and ENTRIES").
  RANGE: 0x33,
  ENTRIES: 0x34,
  // Watches ("WATCH, CHANGES and UNWATCH").
  WATCH: 0x35,
  CHANGES: 0x36,
  UNWATCH: 0x37,
  // Verification ("DIGEST and DIGEST_REPLY").
  DIGEST: 0x38,
  DIGEST_REPLY: 0x39,
} as const;

/** One of the values of {@linkcode Opcode}. */
export type Opcode = typeof Opcode[keyof typeof Opcode];

const OPCODE_NAMES = new Map<number, string>(
  Object.entries(Opcode).map(([name, code]) => [code, name]),
);

/**
 * Returns the name of an opcode, or `undefined` for a byte that is not one.
 *
 * @param code The opcode byte.
 * @returns The opcode's name, such as `"GET"`.
 * @example
 * ```ts
 * import { opcodeName } from "./opcodes.ts";
 * console.log(opcodeName(0x10)); // "GET"
 * ```
 */
export function opcodeName(code: number): string | undefined {
  return OPCODE_NAMES.get(code);
}

/**
 * Error codes carried by ERROR frames. See `docs/protocol.md`, "Error codes".
 *
 * @example
 * ```ts
 * import { ErrorCode } from "./opcodes.ts";
 * console.log(ErrorCode.NOT_FOUND); // 4
 * ```
 */
export const ErrorCode = {
  INTERNAL: 1,
  PROTOCOL: 2,
  VERSION_MISMATCH: 3,
  NOT_FOUND: 4,
  AUTH_FAILED: 5,
  AUTH_REQUIRED: 6,
  NO_DATABASE: 7,
  TIMEOUT: 8,
  TOO_LARGE: 9,
  INVALID_ARGUMENT: 10,
  UNAVAILABLE: 11,
  CLUSTER_MISMATCH: 12,
  TOO_MANY_CONNECTIONS: 13,
  CLOSED: 14,
  ABORTED: 15,
} as const;

/** One of the values of {@linkcode ErrorCode}. */
export type ErrorCode = typeof ErrorCode[keyof typeof ErrorCode];

const ERROR_NAMES = new Map<number, string>(
  Object.entries(ErrorCode).map(([name, code]) => [code, name]),
);

/**
 * Returns the name of an error code, or `"UNKNOWN"`.
 *
 * @param code The error code.
 * @returns The name, such as `"NOT_FOUND"`.
 * @example
 * ```ts
 * import { errorCodeName } from "./opcodes.ts";
 * console.log(errorCodeName(4)); // "NOT_FOUND"
 * ```
 */
export function errorCodeName(code: number): string {
  return ERROR_NAMES.get(code) ?? "UNKNOWN";
}

/**
 * The role a peer announces in HELLO. See `docs/protocol.md`, "HELLO".
 *
 * @example
 * ```ts
 * import { Role } from "./opcodes.ts";
 * console.log(Role.CLIENT); // 1
 * ```
 */
export const Role = {
  CLIENT: 1,
  DATABASE: 2,
} as const;

/** One of the values of {@linkcode Role}. */
export type Role = typeof Role[keyof typeof Role];

/**
 * How many databases must apply a write before the router answers it.
 * `DEFAULT` defers to the router's `--acks`. See `docs/protocol.md`, "SET".
 *
 * @example
 * ```ts
 * import { AckLevel } from "./opcodes.ts";
 * console.log(AckLevel.ALL); // 3
 * ```
 */
export const AckLevel = {
  DEFAULT: 0,
  ONE: 1,
  MAJORITY: 2,
  ALL: 3,
} as const;

/** One of the values of {@linkcode AckLevel}. */
export type AckLevel = typeof AckLevel[keyof typeof AckLevel];

/** The names users type for acknowledgement levels. */
export type AckName = "one" | "majority" | "all";

/**
 * Parses an acknowledgement level as users write it.
 *
 * @param name `one`, `majority` or `all`.
 * @returns The level, or `undefined` for anything else.
 * @example
 * ```ts
 * import { parseAckLevel } from "./opcodes.ts";
 * console.log(parseAckLevel("majority")); // 2
 * ```
 */
export function parseAckLevel(name: string): AckLevel | undefined {
  switch (name) {
    case "one":
      return AckLevel.ONE;
    case "majority":
      return AckLevel.MAJORITY;
    case "all":
      return AckLevel.ALL;
    default:
      return undefined;
  }
}

/**
 * The operation a WRITE frame carries. See `docs/protocol.md`, "WRITE".
 *
 * @example
 * ```ts
 * import { WriteOp } from "./opcodes.ts";
 * console.log(WriteOp.SET); // 1
 * ```
 */
export const WriteOp = {
  SET: 1,
  DELETE: 2,
  /** An atomic operation's steps, evaluated by each database. */
  ATOMIC: 3,
} as const;

/** One of the values of {@linkcode WriteOp}. */
export type WriteOp = typeof WriteOp[keyof typeof WriteOp];

/**
 * How a database joins, as the router tells it in JOINED.
 * See `docs/protocol.md`, "JOIN and JOINED".
 *
 * @example
 * ```ts
 * import { JoinMode } from "./opcodes.ts";
 * console.log(JoinMode.FULL_SYNC); // 2
 * ```
 */
export const JoinMode = {
  /** The database is current; it serves reads at once. */
  READY: 0,
  /** The router replays the writes it missed from its backlog. */
  REPLAY: 1,
  /** The database clears itself and receives a full copy. */
  FULL_SYNC: 2,
} as const;

/** One of the values of {@linkcode JoinMode}. */
export type JoinMode = typeof JoinMode[keyof typeof JoinMode];
