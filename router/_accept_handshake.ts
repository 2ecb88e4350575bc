// The router's side of the handshake: HELLO, WELCOME, and with a password,
// AUTH and AUTH_OK. See docs/protocol.md, "Handshake and authentication".

import {
  AuthError,
  authMessage,
  decodeAuth,
  decodeHello,
  encodeAuth,
  encodeWelcome,
  expect,
  type FramedConnection,
  MAX_FRAME_SIZE,
  NONCE_SIZE,
  Opcode,
  PROTOCOL_VERSION,
  ProtocolError,
  randomBytes,
  Role,
  type ScramKeys,
  verifyProof,
  VersionMismatchError,
} from "../protocol/mod.ts";

/** What the handshake learned about the peer. */
export interface Accepted {
  role: Role;
}

/** Runs the router's side of the handshake; throws a KvndbError on failure. */
export async function acceptHandshake(
  conn: FramedConnection,
  options: { keys?: ScramKeys; deadline: AbortSignal },
): Promise<Accepted> {
  const read = () => conn.readFrame({ signal: options.deadline });
  const hello = decodeHello(expect(await read(), Opcode.HELLO).payload);
  if (hello.version !== PROTOCOL_VERSION) {
    throw new VersionMismatchError(
      `Protocol version mismatch: the router speaks ${PROTOCOL_VERSION}, the peer speaks ${hello.version}`,
    );
  }
  if (hello.role !== Role.CLIENT && hello.role !== Role.DATABASE) {
    throw new ProtocolError(`Unknown role ${hello.role}`);
  }
  if (hello.nonce.length < 16 || hello.nonce.length > 64) {
    throw new ProtocolError(
      `Nonce of ${hello.nonce.length} bytes (expected 16 to 64)`,
    );
  }
  const keys = options.keys;
  if (keys === undefined) {
    conn.send(encodeWelcome({ version: PROTOCOL_VERSION }));
  } else {
    const nonce = new Uint8Array(hello.nonce.length + NONCE_SIZE);
    nonce.set(hello.nonce);
    nonce.set(randomBytes(NONCE_SIZE), hello.nonce.length);
    conn.send(encodeWelcome({
      version: PROTOCOL_VERSION,
      challenge: { nonce, salt: keys.salt, iterations: keys.iterations },
    }));
    const proof = decodeAuth(expect(await read(), Opcode.AUTH).payload);
    const message = authMessage(hello.role, nonce, keys.salt, keys.iterations);
    const signature = await verifyProof(keys, message, proof);
    if (signature === undefined) {
      throw new AuthError("Authentication failed: wrong password");
    }
    conn.send(encodeAuth(Opcode.AUTH_OK, signature));
  }
  conn.maxFrameSize = MAX_FRAME_SIZE;
  return { role: hello.role as Role };
}
