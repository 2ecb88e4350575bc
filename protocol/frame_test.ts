import assert from "node:assert/strict";
import fc from "fast-check";
import {
  HEADER_SIZE,
  LENGTH_SIZE,
  MAX_FRAME_SIZE,
  MAX_HANDSHAKE_FRAME_SIZE,
} from "./constants.ts";
import { KvndbError, ProtocolError, TooLargeError } from "./errors.ts";
import {
  decodeFrame,
  type Frame,
  FrameDecoder,
  FrameWriter,
  PayloadReader,
} from "./frame.ts";
import { Opcode } from "./opcodes.ts";

// ---------------------------------------------------------------- helpers

const OPCODES: number[] = Object.values(Opcode);

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

interface RawFrameOptions {
  flags?: number;
  /** Overrides the length field. */
  length?: number;
}

/** Builds frame bytes by hand, without the codec under test. */
function rawFrame(
  opcode: number,
  id: number,
  payload: Uint8Array,
  options?: RawFrameOptions,
): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(
    0,
    options?.length ?? HEADER_SIZE - LENGTH_SIZE + payload.length,
  );
  out[4] = opcode;
  out[5] = options?.flags ?? 0;
  view.setUint32(6, id);
  out.set(payload, HEADER_SIZE);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Cuts `bytes` at the given points (taken modulo the length), copying each piece. */
function split(bytes: Uint8Array, points: number[]): Uint8Array[] {
  const cuts = [...new Set(points.map((p) => p % (bytes.length + 1)))]
    .sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const cut of [...cuts, bytes.length]) {
    chunks.push(bytes.slice(start, cut));
    start = cut;
  }
  return chunks;
}

function pushAll(decoder: FrameDecoder, chunks: Uint8Array[]): Frame[] {
  const frames: Frame[] = [];
  for (const chunk of chunks) frames.push(...decoder.push(chunk));
  return frames;
}

function plain(frame: Frame) {
  return {
    opcode: frame.opcode,
    flags: frame.flags,
    id: frame.id,
    payload: Array.from(frame.payload),
  };
}

const frameArb = fc.record({
  opcode: fc.constantFrom(...OPCODES),
  flags: fc.constant(0),
  id: fc.integer({ min: 0, max: 0xffff_ffff }),
  payload: fc.uint8Array({ maxLength: 300 }),
});

function encode(frame: Frame): Uint8Array {
  return new FrameWriter(frame.opcode, frame.id, frame.payload.length)
    .raw(frame.payload).finish();
}

function isCodecError(error: unknown): boolean {
  return error instanceof ProtocolError || error instanceof TooLargeError;
}

// ---------------------------------------------------------------- FrameWriter

Deno.test({
  name: "FrameWriter writes the header and every field in big-endian order",
  permissions: "none",
  fn() {
    const bytes = new FrameWriter(Opcode.SET, 0x0102_0304, 1 + 2 + 4 + 8 + 3)
      .u8(0xab).u16(0x0a0b).u32(0xdead_beef).u64(Number.MAX_SAFE_INTEGER)
      .raw(new Uint8Array([7, 8, 9])).finish();
    assert.deepEqual(
      Array.from(bytes),
      [
        0,
        0,
        0,
        24, // length: 6 header bytes after it + 18 payload bytes
        Opcode.SET,
        0, // flags
        1,
        2,
        3,
        4, // id
        0xab,
        0x0a,
        0x0b,
        0xde,
        0xad,
        0xbe,
        0xef,
        0x00,
        0x1f,
        0xff,
        0xff,
        0xff,
        0xff,
        0xff,
        0xff,
        7,
        8,
        9,
      ],
    );
  },
});

Deno.test({
  name: "FrameWriter writes length-prefixed byte strings",
  permissions: "none",
  fn() {
    const data = new Uint8Array([1, 2]);
    const bytes = new FrameWriter(Opcode.PING, 0, 3 + 4 + 6)
      .bytes8(data).bytes16(data).bytes32(data).finish();
    assert.deepEqual(
      Array.from(bytes.subarray(HEADER_SIZE)),
      [2, 1, 2, 0, 2, 1, 2, 0, 0, 0, 2, 1, 2],
    );
  },
});

Deno.test({
  name:
    "FrameWriter.finish() throws when fewer bytes were written than announced",
  permissions: "none",
  fn() {
    assert.throws(() => new FrameWriter(Opcode.PING, 0, 4).u16(1).finish());
  },
});

Deno.test({
  name:
    "FrameWriter accepts a frame of exactly MAX_FRAME_SIZE and refuses one byte more",
  permissions: "none",
  fn() {
    const largest = MAX_FRAME_SIZE - (HEADER_SIZE - LENGTH_SIZE);
    const bytes = new FrameWriter(Opcode.PING, 0, largest)
      .raw(new Uint8Array(largest)).finish();
    assert.equal(bytes.length, LENGTH_SIZE + MAX_FRAME_SIZE);
    assert.throws(
      () => new FrameWriter(Opcode.PING, 0, largest + 1),
      (error) =>
        error instanceof TooLargeError &&
        /maximum frame size/.test(error.message),
    );
  },
});

// ---------------------------------------------------------------- PayloadReader

Deno.test({
  name: "PayloadReader reads every field and checks that nothing is left",
  permissions: "none",
  fn() {
    const reader = new PayloadReader(
      new Uint8Array([0xab, 0x0a, 0x0b, 0xde, 0xad, 0xbe, 0xef, 1, 9, 0, 1, 8]),
      "TEST",
    );
    assert.equal(reader.u8(), 0xab);
    assert.equal(reader.u16(), 0x0a0b);
    assert.equal(reader.u32(), 0xdead_beef);
    assert.deepEqual(Array.from(reader.bytes8()), [9]);
    assert.equal(reader.remaining, 3);
    assert.throws(() => reader.end(), ProtocolError);
    assert.deepEqual(Array.from(reader.bytes16()), [8]);
    assert.equal(reader.remaining, 0);
    reader.end();
  },
});

Deno.test({
  name: "PayloadReader reads a view at any offset of its buffer",
  permissions: "none",
  fn() {
    const buffer = new Uint8Array([0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 42]);
    const reader = new PayloadReader(buffer.subarray(3), "TEST");
    assert.equal(reader.u64(), 42);
    reader.end();
  },
});

Deno.test({
  name: "PayloadReader reads u64 up to 2^53 - 1 and refuses 2^53 and above",
  permissions: "none",
  fn() {
    const u64 = (high: number, low: number) => {
      const bytes = new Uint8Array(8);
      new DataView(bytes.buffer).setUint32(0, high);
      new DataView(bytes.buffer).setUint32(4, low);
      return new PayloadReader(bytes, "TEST").u64();
    };
    assert.equal(u64(0x1f_ffff, 0xffff_ffff), Number.MAX_SAFE_INTEGER);
    assert.equal(u64(1, 0), 2 ** 32);
    assert.throws(() => u64(0x20_0000, 0), ProtocolError);
    assert.throws(() => u64(0xffff_ffff, 0xffff_ffff), ProtocolError);
  },
});

Deno.test({
  name: "PayloadReader throws ProtocolError instead of reading past the end",
  permissions: "none",
  fn() {
    const empty = () => new PayloadReader(new Uint8Array(0), "TEST");
    assert.throws(() => empty().u8(), ProtocolError);
    assert.throws(() => empty().u16(), ProtocolError);
    assert.throws(() => empty().u32(), ProtocolError);
    assert.throws(() => empty().u64(), ProtocolError);
    assert.throws(() => empty().raw(1), ProtocolError);
    assert.throws(
      () => new PayloadReader(new Uint8Array([3, 1, 2]), "TEST").bytes8(),
      (error) => error instanceof ProtocolError && /TEST/.test(error.message),
    );
    assert.throws(
      () =>
        new PayloadReader(new Uint8Array([1, 0xf4, 1, 2, 3]), "GET").bytes16(),
      ProtocolError,
    );
    assert.throws(
      () =>
        new PayloadReader(new Uint8Array([0xff, 0xff, 0xff, 0xff, 1]), "SET")
          .bytes32(),
      ProtocolError,
    );
  },
});

// ---------------------------------------------------------------- decodeFrame

Deno.test({
  name:
    "decodeFrame() reads the opcode, id and payload and reports the bytes used",
  permissions: "none",
  fn() {
    const bytes = rawFrame(Opcode.GET, 0xfedc_ba98, new Uint8Array([0, 1, 97]));
    const decoded = decodeFrame(bytes);
    assert.ok(decoded);
    assert.equal(decoded.consumed, bytes.length);
    assert.deepEqual(plain(decoded.frame), {
      opcode: Opcode.GET,
      flags: 0,
      id: 0xfedc_ba98,
      payload: [0, 1, 97],
    });
  },
});

Deno.test({
  name: "decodeFrame() accepts a frame with an empty payload",
  permissions: "none",
  fn() {
    const decoded = decodeFrame(rawFrame(Opcode.STATS, 3, new Uint8Array(0)));
    assert.equal(decoded?.consumed, HEADER_SIZE);
    assert.equal(decoded?.frame.payload.length, 0);
  },
});

Deno.test({
  name: "decodeFrame() leaves bytes after the frame and reads from any offset",
  permissions: "none",
  fn() {
    const frame = rawFrame(Opcode.PING, 5, new Uint8Array([1, 2, 3]));
    const buffer = concat([new Uint8Array([9, 9, 9]), frame, frame]);
    const decoded = decodeFrame(buffer.subarray(3));
    assert.equal(decoded?.consumed, frame.length);
    assert.deepEqual(Array.from(decoded?.frame.payload ?? []), [1, 2, 3]);
  },
});

Deno.test({
  name: "decodeFrame() returns undefined for every strict prefix of a frame",
  permissions: "none",
  fn() {
    fc.assert(
      fc.property(frameArb, (frame) => {
        const bytes = encode(frame);
        for (let end = 0; end < bytes.length; end++) {
          assert.equal(decodeFrame(bytes.subarray(0, end)), undefined);
        }
        assert.deepEqual(
          plain(decodeFrame(bytes)!.frame),
          plain(frame),
        );
      }),
    );
  },
});

// ---------------------------------------------------------------- FrameDecoder

Deno.test({
  name:
    "FrameDecoder returns the same frames in order however the bytes are split",
  permissions: "none",
  async fn(t) {
    await t.step("split into random chunks", () => {
      fc.assert(
        fc.property(
          fc.array(frameArb, { maxLength: 20 }),
          fc.array(fc.nat(), { maxLength: 40 }),
          (frames, points) => {
            const bytes = concat(frames.map(encode));
            const decoder = new FrameDecoder();
            const decoded = pushAll(decoder, split(bytes, points));
            // Compared only now: earlier payloads must survive later pushes.
            assert.deepEqual(decoded.map(plain), frames.map(plain));
            assert.equal(decoder.buffered, 0);
          },
        ),
      );
    });

    await t.step("fed one byte at a time", () => {
      fc.assert(
        fc.property(fc.array(frameArb, { maxLength: 8 }), (frames) => {
          const bytes = concat(frames.map(encode));
          const decoder = new FrameDecoder();
          const decoded: Frame[] = [];
          let used = 0;
          for (let i = 0; i < bytes.length; i++) {
            for (const frame of decoder.push(bytes.slice(i, i + 1))) {
              decoded.push(frame);
              used += HEADER_SIZE + frame.payload.length;
            }
            assert.equal(decoder.buffered, i + 1 - used);
          }
          assert.deepEqual(decoded.map(plain), frames.map(plain));
          assert.equal(decoder.buffered, 0);
        }),
        { numRuns: 50 },
      );
    });

    await t.step("a frame comes out on exactly its last byte", () => {
      const bytes = rawFrame(Opcode.PING, 1, new Uint8Array(100));
      const decoder = new FrameDecoder();
      for (let i = 0; i < bytes.length - 1; i++) {
        assert.deepEqual(decoder.push(bytes.subarray(i, i + 1)), []);
        assert.equal(decoder.buffered, i + 1);
      }
      assert.equal(decoder.push(bytes.subarray(bytes.length - 1)).length, 1);
      assert.equal(decoder.buffered, 0);
    });

    await t.step("many frames in one chunk", () => {
      const frames = Array.from({ length: 5000 }, (_, i) => ({
        opcode: Opcode.PING,
        flags: 0,
        id: i,
        payload: new Uint8Array([i & 0xff, i >> 8]),
      }));
      const decoder = new FrameDecoder();
      const decoded = decoder.push(concat(frames.map(encode)));
      assert.equal(decoded.length, 5000);
      assert.deepEqual(decoded.map(plain), frames.map(plain));
      assert.equal(decoder.buffered, 0);
    });

    await t.step("many frames and a partial one in one chunk", () => {
      const whole = rawFrame(Opcode.PONG, 1, new Uint8Array([1]));
      const next = rawFrame(Opcode.PONG, 2, new Uint8Array([2, 2]));
      const decoder = new FrameDecoder();
      const first = decoder.push(concat([whole, whole, next.subarray(0, 7)]));
      assert.deepEqual(first.map((f) => f.id), [1, 1]);
      assert.equal(decoder.buffered, 7);
      const second = decoder.push(next.subarray(7));
      assert.deepEqual(second.map(plain), [{
        opcode: Opcode.PONG,
        flags: 0,
        id: 2,
        payload: [2, 2],
      }]);
    });

    await t.step("empty chunks change nothing", () => {
      const bytes = rawFrame(Opcode.PING, 4, new Uint8Array([4]));
      const decoder = new FrameDecoder();
      assert.deepEqual(decoder.push(new Uint8Array(0)), []);
      assert.deepEqual(decoder.push(bytes.subarray(0, 3)), []);
      assert.deepEqual(decoder.push(new Uint8Array(0)), []);
      assert.equal(decoder.push(bytes.subarray(3)).length, 1);
    });
  },
});

Deno.test({
  name: "FrameDecoder accepts larger frames once its limit is raised",
  permissions: "none",
  fn() {
    const big = rawFrame(Opcode.PING, 1, new Uint8Array(10_000));
    assert.throws(
      () =>
        new FrameDecoder({ maxFrameSize: MAX_HANDSHAKE_FRAME_SIZE }).push(big),
      TooLargeError,
    );
    const decoder = new FrameDecoder({
      maxFrameSize: MAX_HANDSHAKE_FRAME_SIZE,
    });
    assert.equal(decoder.maxFrameSize, MAX_HANDSHAKE_FRAME_SIZE);
    decoder.maxFrameSize = MAX_FRAME_SIZE;
    assert.equal(decoder.push(big).length, 1);
  },
});

// ---------------------------------------------------------------- limits

Deno.test({
  name: "A length prefix of 4 GiB is refused from its 4 bytes alone",
  permissions: "none",
  fn() {
    const header = new Uint8Array([0xff, 0xff, 0xff, 0xff]);
    assert.throws(
      () => decodeFrame(header),
      (error) =>
        error instanceof TooLargeError &&
        error.message.includes(String(0xffff_ffff)) &&
        error.message.includes(String(MAX_FRAME_SIZE)),
    );
    assert.throws(() => new FrameDecoder().push(header), TooLargeError);
    const decoder = new FrameDecoder();
    assert.deepEqual(decoder.push(header.subarray(0, 3)), []);
    assert.throws(() => decoder.push(header.subarray(3)), TooLargeError);
  },
});

Deno.test({
  name: "A frame one byte over a custom maxFrameSize is refused",
  permissions: "none",
  fn() {
    const maxFrameSize = 100;
    const fits = rawFrame(Opcode.PING, 1, new Uint8Array(maxFrameSize - 6));
    const over = rawFrame(Opcode.PING, 1, new Uint8Array(maxFrameSize - 5));
    assert.equal(decodeFrame(fits, { maxFrameSize })?.consumed, fits.length);
    assert.throws(
      () => decodeFrame(over.subarray(0, 4), { maxFrameSize }),
      (error) =>
        error instanceof TooLargeError && /100 bytes/.test(error.message),
    );
    assert.equal(new FrameDecoder({ maxFrameSize }).push(fits).length, 1);
    assert.throws(
      () => new FrameDecoder({ maxFrameSize }).push(over),
      TooLargeError,
    );
  },
});

Deno.test({
  name: "A frame shorter than its header is a ProtocolError",
  permissions: "none",
  fn() {
    for (let length = 0; length < HEADER_SIZE - LENGTH_SIZE; length++) {
      const bytes = new Uint8Array([0, 0, 0, length]);
      assert.throws(
        () => decodeFrame(bytes),
        (error) =>
          error instanceof ProtocolError && /shorter than/.test(error.message),
        `length ${length}`,
      );
      assert.throws(() => new FrameDecoder().push(bytes), ProtocolError);
    }
  },
});

Deno.test({
  name: "An unknown opcode is a ProtocolError as soon as the header shows it",
  permissions: "none",
  fn() {
    const known = new Set(OPCODES);
    for (let opcode = 0; opcode < 256; opcode++) {
      if (known.has(opcode)) continue;
      // Only six bytes of a frame that announces 100: still refused at once.
      const bytes = rawFrame(opcode, 1, new Uint8Array(94)).subarray(0, 6);
      assert.throws(
        () => decodeFrame(bytes),
        (error) =>
          error instanceof ProtocolError &&
          /Unknown opcode/.test(error.message),
        `opcode ${opcode}`,
      );
    }
    assert.throws(
      () => new FrameDecoder().push(rawFrame(0xff, 1, new Uint8Array(0))),
      ProtocolError,
    );
  },
});

Deno.test({
  name: "A frame with reserved flags set is a ProtocolError",
  permissions: "none",
  fn() {
    for (let flags = 1; flags < 256; flags++) {
      const bytes = rawFrame(Opcode.PING, 1, new Uint8Array(0), { flags });
      assert.throws(
        () => decodeFrame(bytes),
        (error) =>
          error instanceof ProtocolError &&
          /Reserved flags/.test(error.message),
      );
    }
    const decoder = new FrameDecoder();
    assert.deepEqual(
      decoder.push(rawFrame(Opcode.PING, 1, new Uint8Array(0))).length,
      1,
    );
    assert.throws(
      () =>
        decoder.push(
          rawFrame(Opcode.PING, 2, new Uint8Array(0), { flags: 0x80 }),
        ),
      ProtocolError,
    );
  },
});

// ---------------------------------------------------------------- fuzz

/** Byte patterns that land on length fields and counts. */
const EXTREMES = [
  [0x00],
  [0xff],
  [0x00, 0x00],
  [0xff, 0xff],
  [0x00, 0x00, 0x00, 0x00],
  [0xff, 0xff, 0xff, 0xff],
  [0x7f, 0xff, 0xff, 0xff],
  [0x00, 0x10, 0x00, 0x01],
  [0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
].map((bytes) => new Uint8Array(bytes));

type Mutation =
  | { kind: "flip"; at: number; xor: number }
  | { kind: "truncate"; at: number }
  | { kind: "extend"; bytes: Uint8Array }
  | { kind: "overwrite"; at: number; bytes: Uint8Array };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    kind: fc.constant("flip" as const),
    at: fc.nat(),
    xor: fc.integer({ min: 1, max: 255 }),
  }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant("extend" as const),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
  }),
  fc.record({
    kind: fc.constant("overwrite" as const),
    at: fc.nat(),
    bytes: fc.constantFrom(...EXTREMES),
  }),
);

function mutate(input: Uint8Array, mutations: Mutation[]): Uint8Array {
  let bytes: Uint8Array = input.slice();
  for (const m of mutations) {
    if (m.kind === "extend") {
      bytes = concat([bytes, m.bytes]);
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

/**
 * Feeds chunks to a fresh decoder and checks that it either returns
 * well-formed frames that account for every byte, or throws a codec error.
 */
function checkDecoder(chunks: Uint8Array[], maxFrameSize: number): void {
  const decoder = new FrameDecoder({ maxFrameSize });
  let pushed = 0;
  let used = 0;
  try {
    for (const chunk of chunks) {
      pushed += chunk.length;
      for (const frame of decoder.push(chunk)) {
        assert.ok(OPCODES.includes(frame.opcode));
        assert.equal(frame.flags, 0);
        assert.ok(
          frame.payload.length + HEADER_SIZE - LENGTH_SIZE <= maxFrameSize,
        );
        used += HEADER_SIZE + frame.payload.length;
      }
      assert.equal(used + decoder.buffered, pushed);
    }
  } catch (error) {
    if (error instanceof assert.AssertionError) throw error;
    assert.ok(
      isCodecError(error),
      `FrameDecoder threw a non-codec error: ${error}`,
    );
  }
}

let frameInputsTried = 0;

Deno.test({
  name: "FrameDecoder throws only ProtocolError or TooLargeError on garbage",
  permissions: "none",
  async fn(t) {
    await t.step("random bytes in random chunks", () => {
      fc.assert(
        fc.property(
          fc.uint8Array({ maxLength: 512 }),
          fc.array(fc.nat(), { maxLength: 8 }),
          fc.oneof(
            fc.integer({ min: 0, max: 1024 }),
            fc.constant(MAX_FRAME_SIZE),
          ),
          (bytes, points, maxFrameSize) => {
            frameInputsTried++;
            checkDecoder(split(bytes, points), maxFrameSize);
          },
        ),
        { numRuns: FUZZ_RUNS },
      );
    });

    await t.step("random headers with plausible lengths", () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 600 }),
          fc.oneof(
            fc.constantFrom(...OPCODES),
            fc.integer({ min: 0, max: 255 }),
          ),
          fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 255 })),
          fc.uint8Array({ maxLength: 600 }),
          fc.array(fc.nat(), { maxLength: 8 }),
          (length, opcode, flags, rest, points) => {
            frameInputsTried++;
            const header = rawFrame(opcode, 0, new Uint8Array(0), {
              length,
              flags,
            });
            checkDecoder(split(concat([header, rest]), points), 512);
          },
        ),
        { numRuns: FUZZ_RUNS },
      );
    });

    await t.step("mutated valid frames", () => {
      fc.assert(
        fc.property(
          fc.array(frameArb, { minLength: 1, maxLength: 5 }),
          fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
          fc.array(fc.nat(), { maxLength: 8 }),
          fc.oneof(
            fc.integer({ min: 6, max: 400 }),
            fc.constant(MAX_FRAME_SIZE),
          ),
          (frames, mutations, points, maxFrameSize) => {
            frameInputsTried++;
            const bytes = mutate(concat(frames.map(encode)), mutations);
            checkDecoder(split(bytes, points), maxFrameSize);
          },
        ),
        { numRuns: FUZZ_RUNS },
      );
    });

    console.log(`FrameDecoder fuzz: tried ${frameInputsTried} inputs`);
  },
});

Deno.test({
  name: "Every codec error is a KvndbError with a wire code",
  permissions: "none",
  fn() {
    for (
      const bytes of [[0xff, 0xff, 0xff, 0xff], [0, 0, 0, 0], [
        0,
        0,
        0,
        6,
        0,
        0,
      ]]
    ) {
      try {
        decodeFrame(new Uint8Array(bytes));
        assert.fail("expected an error");
      } catch (error) {
        assert.ok(error instanceof KvndbError);
        assert.ok(error.code > 0);
      }
    }
  },
});
