import assert from "node:assert/strict";
import fc from "fast-check";
import {
  HEADER_SIZE,
  MAGIC,
  MAX_KEY_SIZE,
  MAX_KEYS_LIMIT,
  MAX_VALUE_SIZE,
  PROTOCOL_VERSION,
} from "./constants.ts";
import {
  InvalidArgumentError,
  KvndbError,
  ProtocolError,
  TooLargeError,
} from "./errors.ts";
import { decodeFrame, FrameDecoder } from "./frame.ts";
import {
  checkKey,
  checkValue,
  decodeError,
  decodeGet,
  decodeStatsReply,
  decodeU64,
  decodeValue,
  decodeWriteRequest,
  encodeDone,
  encodeError,
  encodeGet,
  encodeOpaque,
  encodeStatsReply,
  encodeU64,
  encodeValue,
  encodeWriteRequest,
  type WriteRequest,
} from "./messages.ts";
import {
  decodeAuth,
  decodeHello,
  decodeWelcome,
  encodeAuth,
  encodeHello,
  encodeWelcome,
  type Hello,
  type Welcome,
} from "./handshake_messages.ts";
import {
  decodeKeyPage,
  decodeKeys,
  encodeKeyPage,
  encodeKeys,
  type KeyPage,
  type KeysRequest,
} from "./keys.ts";
import {
  decodeJoin,
  decodeJoined,
  decodeSyncChunk,
  decodeWrite,
  encodeJoin,
  encodeJoined,
  encodeSnapshot,
  encodeSyncChunk,
  encodeWrite,
  type Join,
  type Joined,
  type SyncEntry,
  type Write,
  writeSize,
} from "./replication_messages.ts";
import {
  AckLevel,
  ErrorCode,
  JoinMode,
  Opcode,
  Role,
  WriteOp,
} from "./opcodes.ts";

// ---------------------------------------------------------------- helpers

/** Runs per fuzz property; `KVNDB_FUZZ_RUNS=100000` for a long session. */
const FUZZ_RUNS = fuzzRuns();

function fuzzRuns(): number {
  const state = Deno.permissions.querySync({
    name: "env",
    variable: "KVNDB_FUZZ_RUNS",
  }).state;
  const text = state === "granted"
    ? Deno.env.get("KVNDB_FUZZ_RUNS")
    : undefined;
  const runs = Number(text);
  return text !== undefined && Number.isSafeInteger(runs) && runs > 0
    ? runs
    : 2000;
}

const text = new TextEncoder();

/** `fc.record`, but always with plain objects, so that deepEqual compares like with like. */
function record<T>(
  model: { [K in keyof T]: fc.Arbitrary<T[K]> },
): fc.Arbitrary<T> {
  return fc.record(model, { noNullPrototype: true }) as fc.Arbitrary<T>;
}

/**
 * Checks that `bytes` is exactly one well-formed frame with the given opcode
 * and id, and returns its payload.
 */
function payloadOf(bytes: Uint8Array, opcode: number, id = 0): Uint8Array {
  const decoded = decodeFrame(bytes);
  assert.ok(decoded, "the encoder's output is a whole frame");
  assert.equal(decoded.consumed, bytes.length);
  assert.equal(decoded.frame.opcode, opcode);
  assert.equal(decoded.frame.flags, 0);
  assert.equal(decoded.frame.id, id);
  assert.deepEqual(decoded.frame.payload, bytes.subarray(HEADER_SIZE));
  return decoded.frame.payload;
}

function withTrailingByte(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(payload.length + 1);
  out.set(payload);
  return out;
}

function u64Bytes(high: number, low: number): number[] {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setUint32(0, high);
  new DataView(bytes.buffer).setUint32(4, low);
  return Array.from(bytes);
}

function isCodecError(error: unknown): boolean {
  return error instanceof ProtocolError || error instanceof TooLargeError ||
    error instanceof InvalidArgumentError;
}

const idArb = fc.integer({ min: 0, max: 0xffff_ffff });
const keyArb = fc.uint8Array({ minLength: 1, maxLength: MAX_KEY_SIZE });
const smallKeyArb = fc.uint8Array({ minLength: 1, maxLength: 40 });
const valueArb = fc.uint8Array({ maxLength: 2048 });
const short8Arb = fc.uint8Array({ maxLength: 255 });
const seqArb = fc.oneof(
  fc.maxSafeNat(),
  fc.constantFrom(0, 1, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER),
);
const ackArb = fc.constantFrom(...Object.values(AckLevel));

const helloArb: fc.Arbitrary<Hello> = record({
  version: fc.integer({ min: 0, max: 0xffff }),
  role: fc.integer({ min: 0, max: 255 }),
  nonce: short8Arb,
});

const welcomeArb: fc.Arbitrary<Welcome> = fc.oneof(
  record({ version: fc.integer({ min: 0, max: 0xffff }) }),
  record({
    version: fc.integer({ min: 0, max: 0xffff }),
    challenge: record({
      nonce: short8Arb,
      salt: short8Arb,
      iterations: fc.integer({ min: 0, max: 0xffff_ffff }),
    }),
  }),
);

function writeRequestArb(key: fc.Arbitrary<Uint8Array>) {
  return fc.oneof(
    record({ acks: ackArb, key }),
    record({ acks: ackArb, key, value: valueArb }),
  ) as fc.Arbitrary<WriteRequest>;
}

function keysArb(key: fc.Arbitrary<Uint8Array>): fc.Arbitrary<KeysRequest> {
  return record({
    prefix: key,
    cursor: key,
    limit: fc.integer({ min: 0, max: MAX_KEYS_LIMIT }),
  });
}

function keyPageArb(key: fc.Arbitrary<Uint8Array>): fc.Arbitrary<KeyPage> {
  return record({
    keys: fc.array(key, { maxLength: 40 }),
    cursor: fc.oneof(fc.constant(new Uint8Array(0)), key),
  });
}

const joinArb: fc.Arbitrary<Join> = record({
  clusterId: short8Arb,
  nodeId: short8Arb,
  applied: seqArb,
  reset: fc.boolean(),
  complete: fc.boolean(),
  volatile: fc.boolean(),
});

const joinedArb: fc.Arbitrary<Joined> = record({
  clusterId: short8Arb,
  mode: fc.oneof(
    fc.constantFrom(...Object.values(JoinMode)),
    fc.integer({ min: 0, max: 255 }),
  ),
  from: seqArb,
});

function writeArb(key: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Write> {
  return fc.oneof(
    record({ seq: seqArb, op: fc.constant(WriteOp.DELETE), key }),
    record({
      seq: seqArb,
      op: fc.constant(WriteOp.SET),
      key,
      value: valueArb,
    }),
  );
}

function syncEntriesArb(
  key: fc.Arbitrary<Uint8Array>,
): fc.Arbitrary<SyncEntry[]> {
  return fc.array(
    record({
      key,
      value: fc.uint8Array({ maxLength: 512 }),
      version: seqArb,
    }),
    { maxLength: 20 },
  );
}

/** A UTF-8 string of at most `max` bytes. */
const messageTextArb = fc.string({ unit: "binary", maxLength: 400 });

// ---------------------------------------------------------------- round trips

Deno.test({
  name: "Every message survives a round trip through its encoder and decoder",
  permissions: "none",
  async fn(t) {
    await t.step("HELLO", () => {
      fc.assert(fc.property(helloArb, (hello) => {
        const payload = payloadOf(encodeHello(hello), Opcode.HELLO);
        assert.deepEqual(Array.from(payload.subarray(0, 4)), Array.from(MAGIC));
        assert.deepEqual(decodeHello(payload), hello);
      }));
    });

    await t.step("WELCOME, with and without a challenge", () => {
      fc.assert(fc.property(welcomeArb, (welcome) => {
        const payload = payloadOf(encodeWelcome(welcome), Opcode.WELCOME);
        assert.deepEqual(decodeWelcome(payload), welcome);
      }));
    });

    await t.step("AUTH and AUTH_OK", () => {
      fc.assert(fc.property(
        fc.constantFrom(Opcode.AUTH, Opcode.AUTH_OK),
        short8Arb,
        (opcode, proof) => {
          const payload = payloadOf(encodeAuth(opcode, proof), opcode);
          assert.deepEqual(decodeAuth(payload), proof);
        },
      ));
    });

    await t.step("GET with keys of 1 to MAX_KEY_SIZE bytes", () => {
      fc.assert(fc.property(idArb, keyArb, (id, key) => {
        assert.deepEqual(
          decodeGet(payloadOf(encodeGet(id, key), Opcode.GET, id)),
          key,
        );
      }));
    });

    await t.step("VALUE, found or not", () => {
      fc.assert(fc.property(
        idArb,
        fc.option(record({ value: valueArb, version: seqArb })),
        (id, entry) => {
          const payload = payloadOf(encodeValue(id, entry), Opcode.VALUE, id);
          assert.deepEqual(decodeValue(payload), entry);
        },
      ));
    });

    await t.step("SET and DELETE", () => {
      fc.assert(fc.property(idArb, writeRequestArb(keyArb), (id, request) => {
        const opcode = request.value === undefined ? Opcode.DELETE : Opcode.SET;
        const payload = payloadOf(encodeWriteRequest(id, request), opcode, id);
        assert.deepEqual(decodeWriteRequest(opcode, payload), request);
      }));
    });

    await t.step("DONE, APPLIED, SYNC_END and SNAPSHOT up to 2^53 - 1", () => {
      fc.assert(fc.property(idArb, seqArb, (id, seq) => {
        assert.equal(
          decodeU64(payloadOf(encodeDone(id, seq), Opcode.DONE, id), "DONE"),
          seq,
        );
        for (const opcode of [Opcode.APPLIED, Opcode.SYNC_END]) {
          const payload = payloadOf(encodeU64(opcode, id, seq), opcode, id);
          assert.equal(decodeU64(payload, "U64"), seq);
        }
        const snapshot = payloadOf(
          encodeSnapshot(id, seq),
          Opcode.SNAPSHOT,
          id,
        );
        assert.equal(decodeU64(snapshot, "SNAPSHOT"), seq);
      }));
    });

    await t.step("KEYS", () => {
      const anyKey = fc.uint8Array({ maxLength: MAX_KEY_SIZE });
      fc.assert(fc.property(idArb, keysArb(anyKey), (id, request) => {
        const payload = payloadOf(encodeKeys(id, request), Opcode.KEYS, id);
        assert.deepEqual(decodeKeys(payload), request);
      }));
    });

    await t.step("KEY_PAGE", () => {
      fc.assert(
        fc.property(idArb, keyPageArb(keyArb), (id, page) => {
          const payload = payloadOf(
            encodeKeyPage(id, page),
            Opcode.KEY_PAGE,
            id,
          );
          assert.deepEqual(decodeKeyPage(payload), page);
        }),
        { numRuns: 50 },
      );
    });

    await t.step("PING, PONG and STATS carry their payload untouched", () => {
      fc.assert(fc.property(
        fc.constantFrom(
          Opcode.PING,
          Opcode.PONG,
          Opcode.STATS,
          Opcode.SYNC_ACK,
        ),
        idArb,
        fc.uint8Array({ maxLength: 256 }),
        (opcode, id, bytes) => {
          assert.deepEqual(
            payloadOf(encodeOpaque(opcode, id, bytes), opcode, id),
            bytes,
          );
        },
      ));
      assert.equal(
        payloadOf(encodeOpaque(Opcode.STATS, 1), Opcode.STATS, 1).length,
        0,
      );
    });

    await t.step("STATS_REPLY", () => {
      fc.assert(fc.property(idArb, fc.jsonValue(), (id, stats) => {
        const payload = payloadOf(
          encodeStatsReply(id, stats),
          Opcode.STATS_REPLY,
          id,
        );
        assert.deepEqual(
          decodeStatsReply(payload),
          JSON.parse(JSON.stringify(stats)),
        );
      }));
    });

    await t.step("ERROR", () => {
      fc.assert(fc.property(
        idArb,
        fc.integer({ min: 0, max: 0xffff }),
        messageTextArb,
        (id, code, message) => {
          const payload = payloadOf(
            encodeError(id, { code, message }),
            Opcode.ERROR,
            id,
          );
          assert.deepEqual(decodeError(payload), { code, message });
        },
      ));
    });

    await t.step("JOIN", () => {
      fc.assert(fc.property(joinArb, (join) => {
        assert.deepEqual(
          decodeJoin(payloadOf(encodeJoin(join), Opcode.JOIN)),
          join,
        );
      }));
    });

    await t.step("JOINED", () => {
      fc.assert(fc.property(joinedArb, (joined) => {
        assert.deepEqual(
          decodeJoined(payloadOf(encodeJoined(joined), Opcode.JOINED)),
          joined,
        );
      }));
    });

    await t.step("WRITE, and writeSize() matches its payload", () => {
      fc.assert(fc.property(writeArb(keyArb), (write) => {
        const payload = payloadOf(encodeWrite(write), Opcode.WRITE);
        assert.equal(payload.length, writeSize(write));
        assert.deepEqual(decodeWrite(payload), write);
      }));
    });

    await t.step("SYNC_CHUNK", () => {
      fc.assert(
        fc.property(idArb, syncEntriesArb(keyArb), (id, entries) => {
          const payload = payloadOf(
            encodeSyncChunk(id, entries),
            Opcode.SYNC_CHUNK,
            id,
          );
          assert.deepEqual(decodeSyncChunk(payload), entries);
        }),
        { numRuns: 50 },
      );
    });
  },
});

Deno.test({
  name: "Encoded messages come out of a FrameDecoder fed one byte at a time",
  permissions: "none",
  fn() {
    fc.assert(
      fc.property(fc.array(validFrameArb, { maxLength: 6 }), (frames) => {
        const decoder = new FrameDecoder();
        const payloads: Uint8Array[] = [];
        for (const bytes of frames) {
          for (let i = 0; i < bytes.length; i++) {
            for (const frame of decoder.push(bytes.slice(i, i + 1))) {
              payloads.push(frame.payload);
            }
          }
        }
        assert.equal(decoder.buffered, 0);
        assert.deepEqual(
          payloads,
          frames.map((bytes) => bytes.subarray(HEADER_SIZE)),
        );
      }),
      { numRuns: 50 },
    );
  },
});

Deno.test({
  name: "The largest key and value fit in SET, VALUE, WRITE and SYNC_CHUNK",
  permissions: "none",
  fn() {
    const key = new Uint8Array(MAX_KEY_SIZE).fill(0x6b);
    const value = new Uint8Array(MAX_VALUE_SIZE).fill(0x76);
    const version = Number.MAX_SAFE_INTEGER;
    const set = decodeWriteRequest(
      Opcode.SET,
      payloadOf(
        encodeWriteRequest(1, { acks: AckLevel.ALL, key, value }),
        Opcode.SET,
        1,
      ),
    );
    assert.deepEqual(set, { acks: AckLevel.ALL, key, value });
    assert.deepEqual(
      decodeValue(
        payloadOf(encodeValue(2, { value, version }), Opcode.VALUE, 2),
      ),
      {
        value,
        version,
      },
    );
    const write = { seq: version, op: WriteOp.SET, key, value };
    assert.deepEqual(
      decodeWrite(payloadOf(encodeWrite(write), Opcode.WRITE)),
      write,
    );
    const entries = [{ key, value, version }];
    assert.deepEqual(
      decodeSyncChunk(
        payloadOf(encodeSyncChunk(3, entries), Opcode.SYNC_CHUNK, 3),
      ),
      entries,
    );
  },
});

Deno.test({
  name: "Decoded keys and values are views into the frame, not copies",
  permissions: "none",
  fn() {
    const bytes = encodeWriteRequest(1, {
      acks: 0,
      key: new Uint8Array([1, 2]),
      value: new Uint8Array([3]),
    });
    const request = decodeWriteRequest(Opcode.SET, bytes.subarray(HEADER_SIZE));
    assert.equal(request.key.buffer, bytes.buffer);
    assert.equal(request.value?.buffer, bytes.buffer);
  },
});

Deno.test({
  name: "encodeError() cuts long messages to 4 KiB on a character boundary",
  permissions: "none",
  fn() {
    fc.assert(
      fc.property(
        fc.string({ unit: "binary", minLength: 1000, maxLength: 3000 }),
        (message) => {
          const bytes = encodeError(0, { code: ErrorCode.INTERNAL, message });
          const decoded = decodeError(bytes.subarray(HEADER_SIZE));
          assert.ok(text.encode(decoded.message).length <= 4096);
          assert.ok(
            message.startsWith(decoded.message),
            "a prefix of the original",
          );
          if (text.encode(message).length <= 4096) {
            assert.equal(decoded.message, message);
          }
        },
      ),
      { numRuns: 50 },
    );
    const euros = "€".repeat(2000); // 6000 bytes; 4096 is not a multiple of 3
    const decoded = decodeError(
      encodeError(0, { code: 1, message: euros }).subarray(HEADER_SIZE),
    );
    assert.equal(decoded.message, "€".repeat(1365));
  },
});

Deno.test({
  name: "A strict prefix of any message's payload is a ProtocolError",
  permissions: "none",
  fn() {
    const cases: [
      string,
      fc.Arbitrary<Uint8Array>,
      (p: Uint8Array) => unknown,
    ][] = [
      ["HELLO", helloArb.map(encodeHello), decodeHello],
      ["WELCOME", welcomeArb.map(encodeWelcome), decodeWelcome],
      ["AUTH", short8Arb.map((p) => encodeAuth(Opcode.AUTH, p)), decodeAuth],
      ["GET", smallKeyArb.map((k) => encodeGet(1, k)), decodeGet],
      [
        "VALUE",
        fc.option(record({ value: valueArb, version: seqArb })).map((e) =>
          encodeValue(1, e)
        ),
        decodeValue,
      ],
      [
        "SET",
        record({ acks: ackArb, key: smallKeyArb, value: valueArb }).map((
          r,
        ) => encodeWriteRequest(1, r)),
        (p) => decodeWriteRequest(Opcode.SET, p),
      ],
      [
        "DELETE",
        record({ acks: ackArb, key: smallKeyArb }).map((r) =>
          encodeWriteRequest(1, r)
        ),
        (p) => decodeWriteRequest(Opcode.DELETE, p),
      ],
      [
        "DONE",
        seqArb.map((s) => encodeDone(1, s)),
        (p) => decodeU64(p, "DONE"),
      ],
      ["KEYS", keysArb(smallKeyArb).map((r) => encodeKeys(1, r)), decodeKeys],
      [
        "KEY_PAGE",
        keyPageArb(smallKeyArb).map((p) => encodeKeyPage(1, p)),
        decodeKeyPage,
      ],
      [
        "ERROR",
        record({ code: fc.nat(0xffff), message: messageTextArb }).map((e) =>
          encodeError(1, e)
        ),
        decodeError,
      ],
      ["JOIN", joinArb.map(encodeJoin), decodeJoin],
      ["JOINED", joinedArb.map(encodeJoined), decodeJoined],
      ["WRITE", writeArb(smallKeyArb).map(encodeWrite), decodeWrite],
      [
        "SYNC_CHUNK",
        syncEntriesArb(smallKeyArb).map((e) => encodeSyncChunk(1, e)),
        decodeSyncChunk,
      ],
    ];
    for (const [name, arb, decode] of cases) {
      fc.assert(
        fc.property(arb, fc.nat(), (bytes, cut) => {
          const payload = bytes.subarray(HEADER_SIZE);
          const prefix = payload.subarray(0, cut % payload.length);
          assert.throws(() => decode(prefix), ProtocolError, name);
        }),
        { numRuns: 200 },
      );
    }
  },
});

// ---------------------------------------------------------------- limits

Deno.test({
  name:
    "checkKey() accepts 1 to MAX_KEY_SIZE bytes and refuses empty or longer keys",
  permissions: "none",
  fn() {
    checkKey(new Uint8Array(1));
    checkKey(new Uint8Array(MAX_KEY_SIZE));
    assert.throws(
      () => checkKey(new Uint8Array(0)),
      (error) =>
        error instanceof InvalidArgumentError && /empty/.test(error.message),
    );
    assert.throws(
      () => checkKey(new Uint8Array(MAX_KEY_SIZE + 1)),
      (error) =>
        error instanceof TooLargeError &&
        /maximum key size/.test(error.message) &&
        error.message.includes(String(MAX_KEY_SIZE)),
    );
  },
});

Deno.test({
  name: "checkValue() accepts up to MAX_VALUE_SIZE bytes and refuses one more",
  permissions: "none",
  fn() {
    checkValue(new Uint8Array(0));
    checkValue(new Uint8Array(MAX_VALUE_SIZE));
    assert.throws(
      () => checkValue(new Uint8Array(MAX_VALUE_SIZE + 1)),
      (error) =>
        error instanceof TooLargeError &&
        /maximum value size/.test(error.message) &&
        error.message.includes(String(MAX_VALUE_SIZE)),
    );
  },
});

Deno.test({
  name: "GET, SET and DELETE decoders refuse keys and values over their limits",
  permissions: "none",
  fn() {
    const longKey = new Uint8Array(MAX_KEY_SIZE + 1);
    const empty = new Uint8Array(0);
    const key = new Uint8Array([97]);
    const payload = (bytes: Uint8Array) => bytes.subarray(HEADER_SIZE);

    assert.throws(
      () => decodeGet(payload(encodeGet(1, longKey))),
      TooLargeError,
    );
    assert.throws(
      () => decodeGet(payload(encodeGet(1, empty))),
      InvalidArgumentError,
    );

    const set = (request: WriteRequest) =>
      decodeWriteRequest(Opcode.SET, payload(encodeWriteRequest(1, request)));
    assert.throws(
      () => set({ acks: 0, key: longKey, value: key }),
      TooLargeError,
    );
    assert.throws(
      () => set({ acks: 0, key: empty, value: key }),
      InvalidArgumentError,
    );
    assert.throws(
      () => set({ acks: 0, key, value: new Uint8Array(MAX_VALUE_SIZE + 1) }),
      (error) =>
        error instanceof TooLargeError &&
        /maximum value size/.test(error.message),
    );

    const del = (request: WriteRequest) =>
      decodeWriteRequest(
        Opcode.DELETE,
        payload(encodeWriteRequest(1, request)),
      );
    assert.throws(() => del({ acks: 0, key: longKey }), TooLargeError);
    assert.throws(() => del({ acks: 0, key: empty }), InvalidArgumentError);
  },
});

Deno.test({
  name: "The KEYS decoder refuses a limit, prefix or cursor over its maximum",
  permissions: "none",
  fn() {
    const empty = new Uint8Array(0);
    const long = new Uint8Array(MAX_KEY_SIZE + 1);
    const keys = (request: KeysRequest) =>
      decodeKeys(encodeKeys(1, request).subarray(HEADER_SIZE));
    keys({ prefix: empty, cursor: empty, limit: MAX_KEYS_LIMIT });
    assert.throws(
      () => keys({ prefix: empty, cursor: empty, limit: MAX_KEYS_LIMIT + 1 }),
      TooLargeError,
    );
    assert.throws(
      () => keys({ prefix: long, cursor: empty, limit: 0 }),
      TooLargeError,
    );
    assert.throws(
      () => keys({ prefix: empty, cursor: long, limit: 0 }),
      TooLargeError,
    );
  },
});

Deno.test({
  name: "An inner length larger than the frame is a ProtocolError",
  permissions: "none",
  fn() {
    // A GET whose key length says 500 but carries 3 bytes.
    const get = new Uint8Array([0x01, 0xf4, 97, 98, 99]);
    assert.throws(
      () => decodeGet(get),
      (error) => error instanceof ProtocolError && /GET/.test(error.message),
    );
    // The frame itself is well formed; only its payload lies.
    const frames = new FrameDecoder().push(encodeOpaque(Opcode.GET, 7, get));
    assert.equal(frames.length, 1);
    assert.throws(() => decodeGet(frames[0]!.payload), ProtocolError);

    assert.throws(
      () =>
        decodeValue(
          new Uint8Array([1, ...u64Bytes(0, 1), 0xff, 0xff, 0xff, 0xff, 1]),
        ),
      ProtocolError,
    );
    assert.throws(() => decodeAuth(new Uint8Array([32, 1, 2])), ProtocolError);
    assert.throws(
      () => decodeError(new Uint8Array([0, 4, 0, 10, 65])),
      ProtocolError,
    );
    assert.throws(
      () =>
        decodeWrite(
          new Uint8Array([
            ...u64Bytes(0, 1),
            WriteOp.SET,
            0,
            1,
            97,
            0,
            0,
            1,
            0,
          ]),
        ),
      ProtocolError,
    );
  },
});

Deno.test({
  name: "Trailing bytes after any message are a ProtocolError",
  permissions: "none",
  fn() {
    const key = new Uint8Array([97]);
    const empty = new Uint8Array(0);
    const cases: [Uint8Array, (p: Uint8Array) => unknown][] = [
      [encodeHello({ version: 1, role: Role.CLIENT, nonce: key }), decodeHello],
      [encodeWelcome({ version: 1 }), decodeWelcome],
      [
        encodeWelcome({
          version: 1,
          challenge: { nonce: key, salt: key, iterations: 1 },
        }),
        decodeWelcome,
      ],
      [encodeAuth(Opcode.AUTH, key), decodeAuth],
      [encodeGet(1, key), decodeGet],
      [encodeValue(1, null), decodeValue],
      [encodeValue(1, { value: key, version: 1 }), decodeValue],
      [
        encodeWriteRequest(1, { acks: 0, key, value: key }),
        (p) => decodeWriteRequest(Opcode.SET, p),
      ],
      [
        encodeWriteRequest(1, { acks: 0, key }),
        (p) => decodeWriteRequest(Opcode.DELETE, p),
      ],
      [encodeDone(1, 5), (p) => decodeU64(p, "DONE")],
      [encodeKeys(1, { prefix: key, cursor: empty, limit: 1 }), decodeKeys],
      [encodeKeyPage(1, { keys: [key], cursor: key }), decodeKeyPage],
      [encodeError(1, { code: 4, message: "x" }), decodeError],
      [
        encodeJoin({
          clusterId: key,
          nodeId: key,
          applied: 1,
          reset: true,
          complete: true,
        }),
        decodeJoin,
      ],
      [
        encodeJoined({ clusterId: key, mode: JoinMode.REPLAY, from: 2 }),
        decodeJoined,
      ],
      [encodeWrite({ seq: 1, op: WriteOp.DELETE, key }), decodeWrite],
      [encodeWrite({ seq: 1, op: WriteOp.SET, key, value: key }), decodeWrite],
      [encodeSyncChunk(1, [{ key, value: key, version: 1 }]), decodeSyncChunk],
    ];
    for (const [bytes, decode] of cases) {
      const payload = bytes.subarray(HEADER_SIZE);
      decode(payload);
      assert.throws(
        () => decode(withTrailingByte(payload)),
        (error) =>
          error instanceof ProtocolError && /trailing/.test(error.message),
      );
    }
  },
});

Deno.test({
  name: "A 64-bit number of 2^53 or more is a ProtocolError in every message",
  permissions: "none",
  fn() {
    const big = u64Bytes(0x20_0000, 0);
    assert.equal(
      decodeU64(new Uint8Array(u64Bytes(0x1f_ffff, 0xffff_ffff)), "DONE"),
      Number.MAX_SAFE_INTEGER,
    );
    assert.throws(() => decodeU64(new Uint8Array(big), "DONE"), ProtocolError);
    assert.throws(
      () =>
        decodeU64(new Uint8Array(u64Bytes(0xffff_ffff, 0xffff_ffff)), "DONE"),
      (error) => error instanceof ProtocolError && /2\^53/.test(error.message),
    );
    assert.throws(
      () => decodeValue(new Uint8Array([1, ...big, 0, 0, 0, 0])),
      ProtocolError,
    );
    assert.throws(
      () => decodeJoin(new Uint8Array([0, ...big, 0])),
      ProtocolError,
    );
    assert.throws(
      () => decodeJoined(new Uint8Array([0, 0, ...big])),
      ProtocolError,
    );
    assert.throws(
      () => decodeWrite(new Uint8Array([...big, WriteOp.DELETE, 0, 1, 97])),
      ProtocolError,
    );
    assert.throws(
      () =>
        decodeSyncChunk(
          new Uint8Array([0, 0, 0, 1, 0, 1, 97, ...big, 0, 0, 0, 0]),
        ),
      ProtocolError,
    );
  },
});

Deno.test({
  name:
    "A KEY_PAGE or SYNC_CHUNK count that cannot fit is refused before allocating",
  permissions: "none",
  fn() {
    for (const count of [0xffff_ffff, 0x7fff_ffff, 3]) {
      const header = new Uint8Array(4);
      new DataView(header.buffer).setUint32(0, count);
      const payload = new Uint8Array([...header, 0, 0, 0, 0]);
      // "cannot fit" comes from the up-front check; without it the decoder
      // would size an array for `count` and fail only while reading keys.
      assert.throws(
        () => decodeKeyPage(payload),
        (error) =>
          error instanceof ProtocolError && /cannot fit/.test(error.message),
      );
      assert.throws(
        () => decodeSyncChunk(payload),
        (error) =>
          error instanceof ProtocolError && /cannot fit/.test(error.message),
      );
    }
  },
});

Deno.test({
  name: "Unknown enumerations and wrong magic bytes are ProtocolErrors",
  permissions: "none",
  fn() {
    const hello = encodeHello({
      version: PROTOCOL_VERSION,
      role: Role.CLIENT,
      nonce: new Uint8Array(0),
    })
      .subarray(HEADER_SIZE).slice();
    hello[0] = 0x48; // "HVND"
    assert.throws(
      () => decodeHello(hello),
      (error) => error instanceof ProtocolError && /magic/.test(error.message),
    );
    assert.throws(
      () => decodeHello(new Uint8Array([0x4b, 0x56])),
      ProtocolError,
    );

    assert.throws(
      () => decodeWelcome(new Uint8Array([0, 1, 2])),
      (error) =>
        error instanceof ProtocolError &&
        /authentication method/.test(error.message),
    );
    assert.throws(
      () =>
        decodeWriteRequest(
          Opcode.SET,
          new Uint8Array([4, 0, 1, 97, 0, 0, 0, 0]),
        ),
      (error) =>
        error instanceof ProtocolError &&
        /acknowledgement level/.test(error.message),
    );
    assert.throws(
      () => decodeWrite(new Uint8Array([...u64Bytes(0, 1), 4, 0, 1, 97])),
      (error) =>
        error instanceof ProtocolError && /write operation/.test(error.message),
    );
    assert.throws(
      () => decodeStatsReply(text.encode("{not json")),
      (error) =>
        error instanceof ProtocolError && error.cause instanceof SyntaxError,
    );
  },
});

// ---------------------------------------------------------------- fuzz

/** Every payload decoder, by the opcode whose payload it reads. */
const DECODERS: [number, (payload: Uint8Array) => unknown][] = [
  [Opcode.HELLO, decodeHello],
  [Opcode.WELCOME, decodeWelcome],
  [Opcode.AUTH, decodeAuth],
  [Opcode.AUTH_OK, decodeAuth],
  [Opcode.GET, decodeGet],
  [Opcode.VALUE, decodeValue],
  [Opcode.SET, (p) => decodeWriteRequest(Opcode.SET, p)],
  [Opcode.DELETE, (p) => decodeWriteRequest(Opcode.DELETE, p)],
  [Opcode.DONE, (p) => decodeU64(p, "DONE")],
  [Opcode.KEYS, decodeKeys],
  [Opcode.KEY_PAGE, decodeKeyPage],
  [Opcode.STATS_REPLY, decodeStatsReply],
  [Opcode.ERROR, decodeError],
  [Opcode.JOIN, decodeJoin],
  [Opcode.JOINED, decodeJoined],
  [Opcode.WRITE, decodeWrite],
  [Opcode.APPLIED, (p) => decodeU64(p, "APPLIED")],
  [Opcode.SNAPSHOT, (p) => decodeU64(p, "SNAPSHOT")],
  [Opcode.SYNC_CHUNK, decodeSyncChunk],
  [Opcode.SYNC_END, (p) => decodeU64(p, "SYNC_END")],
];

/** Valid frames of every kind, kept small so that fuzzing stays fast. */
const validFrameArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  helloArb.map(encodeHello),
  welcomeArb.map(encodeWelcome),
  fc.tuple(fc.constantFrom(Opcode.AUTH, Opcode.AUTH_OK), short8Arb)
    .map(([opcode, proof]) => encodeAuth(opcode, proof)),
  fc.tuple(idArb, smallKeyArb).map(([id, key]) => encodeGet(id, key)),
  fc.tuple(
    idArb,
    fc.option(
      record({ value: fc.uint8Array({ maxLength: 64 }), version: seqArb }),
    ),
  )
    .map(([id, entry]) => encodeValue(id, entry)),
  fc.tuple(idArb, writeRequestArb(smallKeyArb)).map(([id, r]) =>
    encodeWriteRequest(id, r)
  ),
  fc.tuple(idArb, seqArb).map(([id, seq]) => encodeDone(id, seq)),
  fc.tuple(
    fc.constantFrom(Opcode.APPLIED, Opcode.SYNC_END, Opcode.SNAPSHOT),
    idArb,
    seqArb,
  )
    .map(([opcode, id, seq]) => encodeU64(opcode, id, seq)),
  fc.tuple(idArb, keysArb(fc.uint8Array({ maxLength: 40 }))).map(([id, r]) =>
    encodeKeys(id, r)
  ),
  fc.tuple(idArb, keyPageArb(smallKeyArb)).map(([id, page]) =>
    encodeKeyPage(id, page)
  ),
  fc.tuple(idArb, fc.jsonValue({ maxDepth: 3 })).map(([id, v]) =>
    encodeStatsReply(id, v)
  ),
  fc.tuple(idArb, fc.nat(0xffff), fc.string({ maxLength: 40 }))
    .map(([id, code, message]) => encodeError(id, { code, message })),
  joinArb.map(encodeJoin),
  joinedArb.map(encodeJoined),
  writeArb(smallKeyArb).map(encodeWrite),
  fc.tuple(idArb, syncEntriesArb(smallKeyArb)).map(([id, e]) =>
    encodeSyncChunk(id, e)
  ),
);

type Mutation =
  | { kind: "flip"; at: number; xor: number }
  | { kind: "truncate"; at: number }
  | { kind: "extend"; bytes: Uint8Array }
  | { kind: "overwrite"; at: number; bytes: Uint8Array };

/** Byte patterns that land on length fields and counts. */
const EXTREMES = [
  [0x00],
  [0xff],
  [0x00, 0x00],
  [0xff, 0xff],
  [0x04, 0x01], // MAX_KEY_SIZE + 1 as a u16
  [0x00, 0x00, 0x00, 0x00],
  [0xff, 0xff, 0xff, 0xff],
  [0x00, 0x08, 0x00, 0x01], // MAX_VALUE_SIZE + 1 as a u32
  [0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00], // 2^53 as a u64
].map((bytes) => new Uint8Array(bytes));

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  record({
    kind: fc.constant("flip" as const),
    at: fc.nat(),
    xor: fc.integer({ min: 1, max: 255 }),
  }),
  record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  record({
    kind: fc.constant("extend" as const),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
  }),
  record({
    kind: fc.constant("overwrite" as const),
    at: fc.nat(),
    bytes: fc.constantFrom(...EXTREMES),
  }),
);

function mutate(input: Uint8Array, mutations: Mutation[]): Uint8Array {
  let bytes: Uint8Array = input.slice();
  for (const m of mutations) {
    if (m.kind === "extend") {
      const longer = new Uint8Array(bytes.length + m.bytes.length);
      longer.set(bytes);
      longer.set(m.bytes, bytes.length);
      bytes = longer;
    } else if (bytes.length === 0) {
      continue;
    } else if (m.kind === "flip") {
      bytes[m.at % bytes.length]! ^= m.xor;
    } else if (m.kind === "truncate") {
      bytes = bytes.slice(0, m.at % bytes.length);
    } else {
      const at = m.at % bytes.length;
      bytes.set(m.bytes.subarray(0, bytes.length - at), at);
    }
  }
  return bytes;
}

let inputsTried = 0;
let decoderCalls = 0;
let decoderAccepted = 0;

/** Feeds a payload to every decoder; each must return or throw a codec error. */
function decodeWithAll(payload: Uint8Array): void {
  for (const [opcode, decode] of DECODERS) {
    decoderCalls++;
    try {
      decode(payload);
      decoderAccepted++;
    } catch (error) {
      assert.ok(
        isCodecError(error),
        `decoder for opcode 0x${opcode.toString(16)} threw ${error}`,
      );
    }
  }
}

Deno.test({
  name: "Payload decoders throw only KVNDB codec errors on garbage",
  permissions: "none",
  async fn(t) {
    await t.step("random bytes", () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
          inputsTried++;
          decodeWithAll(bytes);
        }),
        { numRuns: FUZZ_RUNS },
      );
    });

    await t.step("mutated valid payloads", () => {
      fc.assert(
        fc.property(
          validFrameArb,
          fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
          (bytes, mutations) => {
            inputsTried++;
            decodeWithAll(mutate(bytes.subarray(HEADER_SIZE), mutations));
          },
        ),
        { numRuns: FUZZ_RUNS },
      );
    });

    await t.step("mutated valid frames through FrameDecoder", () => {
      fc.assert(
        fc.property(
          fc.array(validFrameArb, { minLength: 1, maxLength: 4 }),
          fc.array(mutationArb, { minLength: 1, maxLength: 3 }),
          (frames, mutations) => {
            let total = 0;
            for (const frame of frames) total += frame.length;
            const joined = new Uint8Array(total);
            let offset = 0;
            for (const frame of frames) {
              joined.set(frame, offset);
              offset += frame.length;
            }
            const decoder = new FrameDecoder();
            inputsTried++;
            try {
              for (const frame of decoder.push(mutate(joined, mutations))) {
                decodeWithAll(frame.payload);
              }
            } catch (error) {
              if (error instanceof assert.AssertionError) throw error;
              assert.ok(
                error instanceof KvndbError,
                `FrameDecoder threw ${error}`,
              );
              assert.ok(isCodecError(error));
            }
          },
        ),
        { numRuns: FUZZ_RUNS },
      );
    });

    console.log(
      `Payload decoder fuzz: tried ${inputsTried} inputs ` +
        `(${decoderCalls} decoder calls, ${decoderAccepted} decoded without error)`,
    );
  },
});
