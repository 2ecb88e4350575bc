/**
 * The connecting side of the handshake, shared by clients and databases:
 * HELLO, WELCOME, and when the router asks for it, AUTH and AUTH_OK.
 * See `docs/protocol.md`, "Handshake and authentication".
 *
 * @module
 */

import {
  authMessage,
  clientProof,
  constantTimeEqual,
  NONCE_SIZE,
  randomBytes,
} from "./auth.ts";
import type { FramedConnection } from "./connection.ts";
import {
  MAX_FRAME_SIZE,
  MAX_HANDSHAKE_FRAME_SIZE,
  PROTOCOL_VERSION,
} from "./constants.ts";
import {
  AuthError,
  errorFromCode,
  ProtocolError,
  VersionMismatchError,
} from "./errors.ts";
import type { Frame } from "./frame.ts";
import {
  decodeAuth,
  decodeWelcome,
  encodeAuth,
  encodeHello,
} from "./handshake_messages.ts";
import { decodeError } from "./messages.ts";
import { ErrorCode, Opcode, opcodeName, Role } from "./opcodes.ts";

/** The fewest PBKDF2 rounds a client accepts from a router. */
export const MIN_ITERATIONS = 1_000;

/** The most PBKDF2 rounds a client accepts: a hostile router cannot make it spin. */
export const MAX_ITERATIONS = 1_000_000;

/** Options for {@linkcode handshake}. */
export interface HandshakeOptions {
  /** {@linkcode Role}: client or database. */
  role: Role;
  /** The password, when the router has one. */
  password?: string;
  /** How long to wait for each answer, in milliseconds. Defaults to 10 s. */
  timeout?: number;
  /** Aborts the handshake. */
  signal?: AbortSignal;
  /** The protocol version to announce; only tests change it. */
  version?: number;
}

/**
 * Performs the handshake on a fresh connection to a router.
 *
 * @param conn The connection.
 * @param options The role and password.
 * @throws {VersionMismatchError} When the router speaks another version.
 * @throws {AuthError} When the password is missing or wrong.
 * @throws {ProtocolError} When the router answers something unexpected.
 * @example
 * ```ts ignore
 * import { FramedConnection } from "./connection.ts";
 * import { handshake } from "./handshake.ts";
 * import { Role } from "./opcodes.ts";
 * const conn = new FramedConnection(await Deno.connect({ port: 54565 }));
 * await handshake(conn, { role: Role.CLIENT, password: "secret" });
 * ```
 */
export async function handshake(
  conn: FramedConnection,
  options: HandshakeOptions,
): Promise<void> {
  const timeout = options.timeout ?? 10_000;
  const version = options.version ?? PROTOCOL_VERSION;
  const read = () => conn.readFrame({ timeout, signal: options.signal });
  conn.maxFrameSize = MAX_HANDSHAKE_FRAME_SIZE;
  const nonce = randomBytes(NONCE_SIZE);
  conn.send(encodeHello({ version, role: options.role, nonce }));
  const welcomeFrame = expect(await read(), Opcode.WELCOME);
  const welcome = decodeWelcome(welcomeFrame.payload);
  if (welcome.version !== version) {
    throw new VersionMismatchError(
      `Protocol version mismatch: the router speaks ${welcome.version}, this ${
        options.role === Role.CLIENT ? "client" : "database"
      } speaks ${version}`,
    );
  }
  const challenge = welcome.challenge;
  if (challenge === undefined && options.password !== undefined) {
    // A router that knows the password always proves it; one that does not
    // ask may be an impostor that wants us to skip that proof.
    throw new AuthError(
      "The router did not ask for the password this side was given: is this the right router? (drop -p / KVNDB_PASSWORD if it has none)",
    );
  }
  if (challenge !== undefined) {
    if (
      challenge.iterations < MIN_ITERATIONS ||
      challenge.iterations > MAX_ITERATIONS
    ) {
      throw new ProtocolError(
        `The router asked for ${challenge.iterations} PBKDF2 rounds (accepted: ${MIN_ITERATIONS} to ${MAX_ITERATIONS})`,
      );
    }
    if (options.password === undefined) {
      throw new AuthError(
        "The router requires a password: give it with -p or KVNDB_PASSWORD",
        { code: ErrorCode.AUTH_REQUIRED },
      );
    }
    if (
      challenge.nonce.length <= nonce.length ||
      !constantTimeEqual(challenge.nonce.subarray(0, nonce.length), nonce)
    ) {
      throw new ProtocolError(
        "The router's challenge does not carry our nonce",
      );
    }
    const message = authMessage(
      options.role,
      challenge.nonce,
      challenge.salt,
      challenge.iterations,
    );
    const { proof, serverSignature } = await clientProof(
      options.password,
      message,
      challenge,
    );
    conn.send(encodeAuth(Opcode.AUTH, proof));
    const ok = expect(await read(), Opcode.AUTH_OK);
    if (!constantTimeEqual(decodeAuth(ok.payload), serverSignature)) {
      throw new AuthError(
        "The router could not prove it knows the password: is this the right router?",
      );
    }
  }
  conn.maxFrameSize = MAX_FRAME_SIZE;
}

/**
 * Checks that a frame has the expected opcode, turning an ERROR frame into
 * the error it carries.
 *
 * @param frame The frame received.
 * @param opcode The opcode wanted.
 * @returns The frame.
 * @throws {KvndbError} The error an ERROR frame carries, or a protocol error.
 * @example
 * ```ts
 * import { expect } from "./handshake.ts";
 * import { Opcode } from "./opcodes.ts";
 * expect({ opcode: Opcode.PONG, flags: 0, id: 1, payload: new Uint8Array() }, Opcode.PONG);
 * ```
 */
export function expect(frame: Frame, opcode: number): Frame {
  if (frame.opcode === opcode) return frame;
  if (frame.opcode === Opcode.ERROR) {
    const { code, message } = decodeError(frame.payload);
    throw errorFromCode(code, message);
  }
  throw new ProtocolError(
    `Expected ${opcodeName(opcode)}, got ${
      opcodeName(frame.opcode) ?? frame.opcode
    }`,
  );
}
