/**
 * Password authentication in the manner of SCRAM-SHA-256 (RFC 5802, 7677):
 * the router stores only derived keys, both sides contribute a fresh nonce,
 * the client proves it knows the password without sending it or a plain hash
 * of it, and the router proves the same back. See `docs/protocol.md`,
 * "Handshake and authentication".
 *
 * @module
 */

import { timingSafeEqual } from "node:crypto";

/** Bytes of each side's nonce. */
export const NONCE_SIZE = 24;

/** PBKDF2 rounds. Costs the router once at start-up and a client once a connection. */
export const SCRAM_ITERATIONS = 10_000;

const encoder = new TextEncoder();
const LABEL = encoder.encode("kvndb-scram-sha-256-v1");

/** The keys a router keeps instead of the password. */
export interface ScramKeys {
  /** The PBKDF2 salt, sent to clients. */
  salt: Uint8Array;
  /** The PBKDF2 rounds, sent to clients. */
  iterations: number;
  /** SHA-256 of the client key: checks proofs, cannot make them. */
  storedKey: Uint8Array;
  /** Signs the router's answer, so the client knows it talks to a router that knows the password. */
  serverKey: Uint8Array;
}

/**
 * Returns `count` random bytes from the system's secure generator.
 *
 * @param count How many bytes.
 * @returns The bytes.
 * @example
 * ```ts
 * import { randomBytes } from "./auth.ts";
 * console.log(randomBytes(24).length); // 24
 * ```
 */
export function randomBytes(count: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(count));
}

async function hmac(key: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  const cryptoKey = await crypto.subtle.importKey(
    "raw",
    key as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(
    await crypto.subtle.sign(
      "HMAC",
      cryptoKey,
      data as Uint8Array<ArrayBuffer>,
    ),
  );
}

async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(
    await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>),
  );
}

async function saltedPassword(
  password: string,
  salt: Uint8Array,
  iterations: number,
): Promise<Uint8Array> {
  const base = await crypto.subtle.importKey(
    "raw",
    encoder.encode(password),
    "PBKDF2",
    false,
    ["deriveBits"],
  );
  return new Uint8Array(
    await crypto.subtle.deriveBits(
      {
        name: "PBKDF2",
        hash: "SHA-256",
        salt: salt as Uint8Array<ArrayBuffer>,
        iterations,
      },
      base,
      256,
    ),
  );
}

/**
 * Derives the router's keys from a password, with a fresh salt.
 *
 * @param password The cluster password.
 * @param options The salt and rounds, to reproduce known keys in tests.
 * @returns The keys.
 * @example
 * ```ts
 * import { deriveScramKeys } from "./auth.ts";
 * const keys = await deriveScramKeys("secret");
 * console.log(keys.storedKey.length); // 32
 * ```
 */
export async function deriveScramKeys(
  password: string,
  options?: { salt?: Uint8Array; iterations?: number },
): Promise<ScramKeys> {
  const salt = options?.salt ?? randomBytes(16);
  const iterations = options?.iterations ?? SCRAM_ITERATIONS;
  const salted = await saltedPassword(password, salt, iterations);
  const clientKey = await hmac(salted, encoder.encode("Client Key"));
  return {
    salt,
    iterations,
    storedKey: await sha256(clientKey),
    serverKey: await hmac(salted, encoder.encode("Server Key")),
  };
}

/**
 * The message both sides sign: a label, the role, the combined nonce, the
 * salt and the rounds. Binding the role and both nonces makes a recorded
 * proof useless on any other connection.
 *
 * @param role The role the peer announced.
 * @param nonce The client's nonce followed by the router's.
 * @param salt The salt.
 * @param iterations The rounds.
 * @returns The bytes to sign.
 * @example
 * ```ts
 * import { authMessage } from "./auth.ts";
 * console.log(authMessage(1, new Uint8Array(48), new Uint8Array(16), 10000).length); // 91
 * ```
 */
export function authMessage(
  role: number,
  nonce: Uint8Array,
  salt: Uint8Array,
  iterations: number,
): Uint8Array {
  const out = new Uint8Array(LABEL.length + 1 + nonce.length + salt.length + 4);
  out.set(LABEL, 0);
  out[LABEL.length] = role;
  out.set(nonce, LABEL.length + 1);
  out.set(salt, LABEL.length + 1 + nonce.length);
  new DataView(out.buffer).setUint32(out.length - 4, iterations);
  return out;
}

function xor(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ (b[i] ?? 0);
  return out;
}

/**
 * Compares two byte strings in time that does not depend on where they differ.
 *
 * @param a One.
 * @param b The other.
 * @returns Whether they are equal.
 * @example
 * ```ts
 * import { constantTimeEqual } from "./auth.ts";
 * console.log(constantTimeEqual(new Uint8Array([1]), new Uint8Array([1]))); // true
 * ```
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return timingSafeEqual(a, b);
}

/**
 * The client's side: computes the proof to send and the router signature to
 * expect back.
 *
 * @param password The password.
 * @param message The message from {@linkcode authMessage}.
 * @param options The salt and rounds the router sent.
 * @returns The proof, and the signature a genuine router will answer.
 * @example
 * ```ts
 * import { authMessage, clientProof } from "./auth.ts";
 * const salt = new Uint8Array(16);
 * const message = authMessage(1, new Uint8Array(48), salt, 1000);
 * const { proof } = await clientProof("secret", message, { salt, iterations: 1000 });
 * console.log(proof.length); // 32
 * ```
 */
export async function clientProof(
  password: string,
  message: Uint8Array,
  options: { salt: Uint8Array; iterations: number },
): Promise<{ proof: Uint8Array; serverSignature: Uint8Array }> {
  const salted = await saltedPassword(
    password,
    options.salt,
    options.iterations,
  );
  const clientKey = await hmac(salted, encoder.encode("Client Key"));
  const storedKey = await sha256(clientKey);
  const signature = await hmac(storedKey, message);
  const serverKey = await hmac(salted, encoder.encode("Server Key"));
  return {
    proof: xor(clientKey, signature),
    serverSignature: await hmac(serverKey, message),
  };
}

/**
 * Checks a plain password against the router's keys, for front ends whose
 * protocol sends the password itself (Redis's AUTH).
 *
 * @param keys The router's keys.
 * @param password The password given.
 * @returns Whether it is the right one.
 * @example
 * ```ts
 * import { checkPassword, deriveScramKeys } from "./auth.ts";
 * const keys = await deriveScramKeys("secret", { iterations: 1000 });
 * console.log(await checkPassword(keys, "secret")); // true
 * ```
 */
export async function checkPassword(
  keys: ScramKeys,
  password: string,
): Promise<boolean> {
  const salted = await saltedPassword(password, keys.salt, keys.iterations);
  const clientKey = await hmac(salted, encoder.encode("Client Key"));
  return constantTimeEqual(await sha256(clientKey), keys.storedKey);
}

/**
 * The router's side: checks a client's proof in constant time.
 *
 * @param keys The router's keys.
 * @param message The message from {@linkcode authMessage}.
 * @param proof The proof the client sent.
 * @returns The router's signature when the proof is right, else `undefined`.
 * @example
 * ```ts
 * import { authMessage, clientProof, deriveScramKeys, verifyProof } from "./auth.ts";
 * const keys = await deriveScramKeys("secret", { iterations: 1000 });
 * const message = authMessage(1, new Uint8Array(48), keys.salt, keys.iterations);
 * const { proof } = await clientProof("secret", message, keys);
 * console.log((await verifyProof(keys, message, proof)) !== undefined); // true
 * ```
 */
export async function verifyProof(
  keys: ScramKeys,
  message: Uint8Array,
  proof: Uint8Array,
): Promise<Uint8Array | undefined> {
  const signature = await hmac(keys.storedKey, message);
  const clientKey = xor(
    proof.length === signature.length ? proof : new Uint8Array(32),
    signature,
  );
  const ok = constantTimeEqual(await sha256(clientKey), keys.storedKey) &&
    proof.length === signature.length;
  return ok ? await hmac(keys.serverKey, message) : undefined;
}
