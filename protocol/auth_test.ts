import assert from "node:assert/strict";
import fc from "fast-check";
import {
  authMessage,
  clientProof,
  constantTimeEqual,
  deriveScramKeys,
  NONCE_SIZE,
  randomBytes,
  SCRAM_ITERATIONS,
  type ScramKeys,
  verifyProof,
} from "./auth.ts";
import {
  encodeAuth,
  encodeHello,
  encodeWelcome,
} from "./handshake_messages.ts";
import { Opcode, Role } from "./opcodes.ts";

/** Low, so that the suite stays fast; production uses SCRAM_ITERATIONS. */
const ITERATIONS = 1000;
const PASSWORD = "correct horse battery staple";

const encoder = new TextEncoder();

async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(
    await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>),
  );
}

/** Whether `needle` occurs anywhere in `haystack`. */
function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) {
      if (haystack[i + j] !== needle[j]) continue outer;
    }
    return true;
  }
  return false;
}

interface Session {
  keys: ScramKeys;
  message: Uint8Array;
  proof: Uint8Array;
  serverSignature: Uint8Array;
}

/** One authentication as the handshake performs it, with fresh nonces. */
async function session(
  routerPassword: string,
  clientPassword: string,
  role: number = Role.CLIENT,
): Promise<Session> {
  const keys = await deriveScramKeys(routerPassword, {
    iterations: ITERATIONS,
  });
  const nonce = new Uint8Array(2 * NONCE_SIZE);
  nonce.set(randomBytes(NONCE_SIZE));
  nonce.set(randomBytes(NONCE_SIZE), NONCE_SIZE);
  const message = authMessage(role, nonce, keys.salt, keys.iterations);
  const { proof, serverSignature } = await clientProof(
    clientPassword,
    message,
    keys,
  );
  return { keys, message, proof, serverSignature };
}

Deno.test("verifyProof() accepts the right password and answers the signature the client expects", async () => {
  const { keys, message, proof, serverSignature } = await session(
    PASSWORD,
    PASSWORD,
  );
  assert.equal(proof.length, 32);
  const answer = await verifyProof(keys, message, proof);
  assert.ok(answer !== undefined);
  assert.deepEqual(answer, serverSignature);
  assert.ok(constantTimeEqual(answer, serverSignature));
});

Deno.test("verifyProof() refuses a wrong password", async () => {
  for (
    const wrong of [
      "correct horse battery stapl",
      "correct horse battery staple ",
      "Correct horse battery staple",
      "x",
    ]
  ) {
    const { keys, message, proof } = await session(PASSWORD, wrong);
    assert.equal(await verifyProof(keys, message, proof), undefined, wrong);
  }
});

Deno.test("verifyProof() works for any password, including non-ASCII ones", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.string({ unit: "grapheme", minLength: 1, maxLength: 40 }),
      fc.string({ unit: "grapheme", minLength: 1, maxLength: 40 }),
      async (password, other) => {
        const right = await session(password, password);
        assert.ok(
          await verifyProof(right.keys, right.message, right.proof) !==
            undefined,
        );
        if (other !== password) {
          const wrong = await session(password, other);
          assert.equal(
            await verifyProof(wrong.keys, wrong.message, wrong.proof),
            undefined,
          );
        }
      },
    ),
    { numRuns: 15 },
  );
});

Deno.test("A proof made for one nonce fails for another, so it cannot be replayed", async () => {
  const recorded = await session(PASSWORD, PASSWORD);
  const { keys } = recorded;
  // A later connection: the router picks a fresh nonce.
  const nonce = new Uint8Array(2 * NONCE_SIZE);
  nonce.set(randomBytes(NONCE_SIZE));
  nonce.set(randomBytes(NONCE_SIZE), NONCE_SIZE);
  const later = authMessage(Role.CLIENT, nonce, keys.salt, keys.iterations);
  assert.equal(await verifyProof(keys, later, recorded.proof), undefined);

  // Even when the attacker replays the client's half of the old nonce.
  const sameClientNonce = recorded.message.slice();
  const nonceStart = sameClientNonce.length - 4 - keys.salt.length -
    2 * NONCE_SIZE;
  sameClientNonce[nonceStart + NONCE_SIZE + 1]! ^= 1;
  assert.equal(
    await verifyProof(keys, sameClientNonce, recorded.proof),
    undefined,
  );

  // Nor does it pass for another role, salt or iteration count.
  const messageNonce = recorded.message.subarray(
    nonceStart,
    nonceStart + 2 * NONCE_SIZE,
  );
  for (
    const other of [
      authMessage(Role.DATABASE, messageNonce, keys.salt, keys.iterations),
      authMessage(
        Role.CLIENT,
        messageNonce,
        new Uint8Array(16),
        keys.iterations,
      ),
      authMessage(Role.CLIENT, messageNonce, keys.salt, keys.iterations + 1),
    ]
  ) {
    assert.equal(await verifyProof(keys, other, recorded.proof), undefined);
  }
  // The recorded message itself still verifies: only the nonce changed.
  assert.ok(
    await verifyProof(keys, recorded.message, recorded.proof) !== undefined,
  );
});

Deno.test("verifyProof() refuses proofs of the wrong length or made of known values", async () => {
  const { keys, message, proof, serverSignature } = await session(
    PASSWORD,
    PASSWORD,
  );
  for (
    const bad of [
      new Uint8Array(0),
      proof.subarray(0, 31),
      new Uint8Array([...proof, 0]),
      new Uint8Array(32),
      new Uint8Array(32).fill(0xff),
      keys.storedKey,
      keys.serverKey,
      serverSignature,
    ]
  ) {
    assert.equal(await verifyProof(keys, message, bad), undefined);
  }
  const flipped = proof.slice();
  flipped[17]! ^= 0x01;
  assert.equal(await verifyProof(keys, message, flipped), undefined);
});

Deno.test("Neither the proof nor any handshake message carries the password or its SHA-256", async () => {
  const password = encoder.encode(PASSWORD);
  const digest = await sha256(password);
  const { keys, message, proof, serverSignature } = await session(
    PASSWORD,
    PASSWORD,
  );
  const clientNonce = message.subarray(
    message.length - 4 - keys.salt.length - 2 * NONCE_SIZE,
  ).subarray(0, NONCE_SIZE);
  const wire = [
    encodeHello({ version: 1, role: Role.CLIENT, nonce: clientNonce }),
    encodeWelcome({
      version: 1,
      challenge: {
        nonce: message.subarray(
          message.length - 4 - keys.salt.length - 2 * NONCE_SIZE,
          message.length - 4 - keys.salt.length,
        ),
        salt: keys.salt,
        iterations: keys.iterations,
      },
    }),
    encodeAuth(Opcode.AUTH, proof),
    encodeAuth(Opcode.AUTH_OK, serverSignature),
  ];
  const stored = [keys.salt, keys.storedKey, keys.serverKey];
  for (const bytes of [message, proof, serverSignature, ...wire, ...stored]) {
    assert.ok(!contains(bytes, password), "carries the password");
    assert.ok(!contains(bytes, digest), "carries the password's SHA-256");
  }
  // Nor a prefix of the password long enough to matter.
  for (const bytes of [message, proof, ...wire]) {
    assert.ok(!contains(bytes, password.subarray(0, 8)));
  }
});

Deno.test("deriveScramKeys() is reproducible from the salt and rounds, and salts freshly by default", async () => {
  const salt = new Uint8Array(16).fill(7);
  const a = await deriveScramKeys(PASSWORD, { salt, iterations: ITERATIONS });
  const b = await deriveScramKeys(PASSWORD, { salt, iterations: ITERATIONS });
  assert.deepEqual(a, b);
  assert.equal(a.storedKey.length, 32);
  assert.equal(a.serverKey.length, 32);
  assert.notDeepEqual(a.storedKey, a.serverKey);

  const otherRounds = await deriveScramKeys(PASSWORD, {
    salt,
    iterations: ITERATIONS + 1,
  });
  assert.notDeepEqual(otherRounds.storedKey, a.storedKey);

  const fresh1 = await deriveScramKeys(PASSWORD, { iterations: ITERATIONS });
  const fresh2 = await deriveScramKeys(PASSWORD, { iterations: ITERATIONS });
  assert.equal(fresh1.salt.length, 16);
  assert.notDeepEqual(fresh1.salt, fresh2.salt);
  assert.notDeepEqual(fresh1.storedKey, fresh2.storedKey);

  const defaults = await deriveScramKeys(PASSWORD);
  assert.equal(defaults.iterations, SCRAM_ITERATIONS);
});

Deno.test("authMessage() binds the label, role, nonce, salt and rounds", () => {
  const nonce = new Uint8Array(48).fill(0xaa);
  const salt = new Uint8Array(16).fill(0xbb);
  const message = authMessage(Role.DATABASE, nonce, salt, 0x01020304);
  const label = encoder.encode("kvndb-scram-sha-256-v1");
  assert.equal(message.length, label.length + 1 + 48 + 16 + 4);
  assert.deepEqual(message.subarray(0, label.length), label);
  assert.equal(message[label.length], Role.DATABASE);
  assert.deepEqual(
    message.subarray(label.length + 1, label.length + 49),
    nonce,
  );
  assert.deepEqual(message.subarray(label.length + 49, -4), salt);
  assert.deepEqual(Array.from(message.subarray(-4)), [1, 2, 3, 4]);
});

Deno.test("constantTimeEqual() tells equal byte strings from different ones", () => {
  assert.ok(constantTimeEqual(new Uint8Array(0), new Uint8Array(0)));
  assert.ok(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2])));
  assert.ok(!constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 3])));
  assert.ok(!constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1])));
  assert.ok(!constantTimeEqual(new Uint8Array(0), new Uint8Array([0])));
  // Views at an offset compare by their own bytes only.
  const buffer = new Uint8Array([9, 1, 2, 9]);
  assert.ok(constantTimeEqual(buffer.subarray(1, 3), new Uint8Array([1, 2])));

  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 64 }),
      fc.uint8Array({ maxLength: 64 }),
      (a, b) => {
        const same = a.length === b.length && a.every((x, i) => x === b[i]);
        assert.equal(constantTimeEqual(a, b), same);
        assert.equal(constantTimeEqual(a, a.slice()), true);
      },
    ),
  );
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 1, maxLength: 64 }),
      fc.nat(),
      fc.integer({ min: 1, max: 255 }),
      (a, at, xor) => {
        const b = a.slice();
        b[at % b.length]! ^= xor;
        assert.equal(constantTimeEqual(a, b), false);
      },
    ),
  );
});

Deno.test("randomBytes() returns fresh bytes of the length asked", () => {
  assert.equal(randomBytes(0).length, 0);
  assert.equal(randomBytes(NONCE_SIZE).length, NONCE_SIZE);
  assert.notDeepEqual(randomBytes(NONCE_SIZE), randomBytes(NONCE_SIZE));
});
