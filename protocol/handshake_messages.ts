/**
 * The handshake's messages: HELLO, WELCOME and AUTH.
 * Byte layouts are in `docs/protocol.md`, "Messages".
 *
 * @module
 */

import { MAGIC } from "./constants.ts";
import { ProtocolError } from "./errors.ts";
import { FrameWriter, PayloadReader } from "./frame.ts";
import { Opcode } from "./opcodes.ts";

/** The HELLO message: the first frame a client or database sends. */
export interface Hello {
  /** The protocol version the peer speaks. */
  version: number;
  /** {@linkcode Role}. */
  role: number;
  /** The peer's nonce for authentication (up to 64 bytes). */
  nonce: Uint8Array;
}

/**
 * Encodes HELLO.
 *
 * @param hello The message.
 * @returns The frame's bytes.
 * @example
 * ```ts
 * import { encodeHello } from "./handshake_messages.ts";
 * encodeHello({ version: 1, role: 1, nonce: new Uint8Array(24) });
 * ```
 */
export function encodeHello(hello: Hello): Uint8Array {
  return new FrameWriter(Opcode.HELLO, 0, 4 + 2 + 1 + 1 + hello.nonce.length)
    .raw(MAGIC).u16(hello.version).u8(hello.role).bytes8(hello.nonce).finish();
}

/**
 * Decodes HELLO.
 *
 * @param payload The frame's payload.
 * @returns The message.
 * @throws {ProtocolError} When the magic bytes are wrong or the frame is malformed.
 * @example
 * ```ts
 * import { decodeHello, encodeHello } from "./handshake_messages.ts";
 * const bytes = encodeHello({ version: 1, role: 1, nonce: new Uint8Array(0) });
 * console.log(decodeHello(bytes.subarray(10)).role); // 1
 * ```
 */
export function decodeHello(payload: Uint8Array): Hello {
  const reader = new PayloadReader(payload, "HELLO");
  const magic = reader.raw(4);
  if (!magic.every((byte, i) => byte === MAGIC[i])) {
    throw new ProtocolError("Not a KVNDB peer: wrong magic bytes");
  }
  const hello = {
    version: reader.u16(),
    role: reader.u8(),
    nonce: reader.bytes8(),
  };
  reader.end();
  return hello;
}

/** The WELCOME message: the router's answer to HELLO. */
export interface Welcome {
  /** The protocol version the router speaks. */
  version: number;
  /** Authentication challenge, present when the router has a password. */
  challenge?: {
    /** The client's nonce followed by the router's. */
    nonce: Uint8Array;
    /** The PBKDF2 salt. */
    salt: Uint8Array;
    /** The PBKDF2 iteration count. */
    iterations: number;
  };
}

/**
 * Encodes WELCOME.
 *
 * @param welcome The message.
 * @returns The frame's bytes.
 * @example
 * ```ts
 * import { encodeWelcome } from "./handshake_messages.ts";
 * encodeWelcome({ version: 1 });
 * ```
 */
export function encodeWelcome(welcome: Welcome): Uint8Array {
  const c = welcome.challenge;
  if (c === undefined) {
    return new FrameWriter(Opcode.WELCOME, 0, 3).u16(welcome.version).u8(0)
      .finish();
  }
  return new FrameWriter(
    Opcode.WELCOME,
    0,
    3 + 1 + c.nonce.length + 1 + c.salt.length + 4,
  ).u16(welcome.version).u8(1).bytes8(c.nonce).bytes8(c.salt).u32(
    c.iterations,
  ).finish();
}

/**
 * Decodes WELCOME.
 *
 * @param payload The frame's payload.
 * @returns The message.
 * @example
 * ```ts
 * import { decodeWelcome, encodeWelcome } from "./handshake_messages.ts";
 * console.log(decodeWelcome(encodeWelcome({ version: 1 }).subarray(10)).version); // 1
 * ```
 */
export function decodeWelcome(payload: Uint8Array): Welcome {
  const reader = new PayloadReader(payload, "WELCOME");
  const version = reader.u16();
  const auth = reader.u8();
  if (auth === 0) {
    reader.end();
    return { version };
  }
  if (auth !== 1) {
    throw new ProtocolError(`Unknown authentication method ${auth}`);
  }
  const challenge = {
    nonce: reader.bytes8(),
    salt: reader.bytes8(),
    iterations: reader.u32(),
  };
  reader.end();
  return { version, challenge };
}

/**
 * Encodes AUTH (the client's proof) or AUTH_OK (the router's signature):
 * both carry one byte string.
 *
 * @param opcode `Opcode.AUTH` or `Opcode.AUTH_OK`.
 * @param proof The proof or signature.
 * @returns The frame's bytes.
 * @example
 * ```ts
 * import { encodeAuth } from "./handshake_messages.ts";
 * import { Opcode } from "./opcodes.ts";
 * encodeAuth(Opcode.AUTH, new Uint8Array(32));
 * ```
 */
export function encodeAuth(
  opcode: typeof Opcode.AUTH | typeof Opcode.AUTH_OK,
  proof: Uint8Array,
): Uint8Array {
  return new FrameWriter(opcode, 0, 1 + proof.length).bytes8(proof).finish();
}

/**
 * Decodes AUTH or AUTH_OK.
 *
 * @param payload The frame's payload.
 * @returns The proof or signature.
 * @example
 * ```ts
 * import { decodeAuth, encodeAuth } from "./handshake_messages.ts";
 * import { Opcode } from "./opcodes.ts";
 * console.log(decodeAuth(encodeAuth(Opcode.AUTH, new Uint8Array(32)).subarray(10)).length); // 32
 * ```
 */
export function decodeAuth(payload: Uint8Array): Uint8Array {
  const reader = new PayloadReader(payload, "AUTH");
  const proof = reader.bytes8();
  reader.end();
  return proof;
}
