/**
 * The Deno KV front end (`--kv-port`): KV Connect, the protocol of Deno's
 * remote Deno KV client, on HTTP/2 (h2c on plain TCP, h2 over TLS), so that
 * `Deno.openKv("http://router:PORT")` reads and writes KVNDB. Reads become
 * range reads served like any other (strongly consistent); writes become
 * atomic operations (checks, sets, deletes, u64 sums, minimums and maximums,
 * versionstamped keys, expiries); watches follow the router's change stream.
 * Queues are refused. See
 * `docs/kv-connect.md`.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  AtomicFlag,
  type AtomicStep,
  binaryString,
  type Change,
  decodeAtomicReply,
  decodeChanges,
  decodeEntries,
  encodeAtomic,
  encodeRange,
  encodeWatch,
  ErrorCode,
  keyAfter,
  KvndbError,
  KvValueTag,
  MAX_ATOMIC_STEPS,
  MAX_KEY_SIZE,
  MAX_RANGE_LIMIT,
  Opcode,
  type RangeEntry,
  SetFlag,
  StepKind,
  toHex,
  toKvndbError,
  versionstampOf,
} from "../protocol/mod.ts";
import {
  AtomicWriteOutputSchema,
  AtomicWriteSchema,
  AtomicWriteStatus,
  type KvEntry,
  KvEntrySchema,
  MutationType,
  ReadRangeOutputSchema,
  SnapshotReadOutputSchema,
  SnapshotReadSchema,
  SnapshotReadStatus,
  ValueEncoding,
  WatchKeyOutputSchema,
  WatchOutputSchema,
  WatchSchema,
} from "../protocol/kv_connect/datapath_pb.ts";
import { type Answer, InternalClient } from "./_internal_client.ts";
import type { HttpListenOptions } from "./http_front_end.ts";
import { bearerOf, PasswordCheck, sameText, text } from "./_http_auth.ts";
import type { ClientLink, RouterSession } from "./resp_front_end.ts";

const log = getLogger(["kvndb", "kv"]);

/** KV Connect's limits that KVNDB applies as Deno KV does (denokv's `limits.rs`). */
const MAX_READ_RANGES = 10;
const MAX_READ_ENTRIES = 1000;
const MAX_VALUE_BYTES = 65_536;
const MAX_WATCH_KEYS = 10;
/** Bytes of a request body read at most: an atomic write of 800 KiB, and room. */
const MAX_BODY_BYTES = 1024 * 1024;
/** How long a data-path token lives; the client refreshes well before. */
const TOKEN_LIFETIME_MS = 60 * 60 * 1000;
/** How long a watch stays silent before it sends an empty frame. */
const WATCH_KEEPALIVE_MS = 5_000;

/** The router's side, as the Deno KV front end sees it. */
export interface KvConnectHost {
  /** Whether the router has a password (the access token). */
  readonly passwordRequired: boolean;
  /** Checks a password, with the router's throttling for `address`. */
  checkPassword(password: string, address: string): Promise<boolean>;
  /** Refuses a peer (protected mode), or returns `undefined`. */
  refuse(address: string): string | undefined;
  /** Opens the front end's session with the router. */
  attach(link: ClientLink): RouterSession;
}

/** A request the front end refuses with a 4xx and a text that says why. */
class Refused extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

function protobuf(bytes: Uint8Array): Response {
  return new Response(bytes as Uint8Array<ArrayBuffer>, {
    headers: { "content-type": "application/x-protobuf" },
  });
}

/** Reads a request body, refusing one over `MAX_BODY_BYTES`. */
async function body(request: Request): Promise<Uint8Array> {
  const length = Number(request.headers.get("content-length") ?? "0");
  if (length > MAX_BODY_BYTES) {
    throw new Refused(413, `Request body over ${MAX_BODY_BYTES} bytes`);
  }
  const bytes = new Uint8Array(await request.arrayBuffer());
  if (bytes.length > MAX_BODY_BYTES) {
    throw new Refused(413, `Request body over ${MAX_BODY_BYTES} bytes`);
  }
  return bytes;
}

/** A stored value as KV Connect carries it: its encoding, then its bytes. */
function kvValueOf(value: Uint8Array): { encoding: number; data: Uint8Array } {
  const tag = value[0];
  if (
    tag === KvValueTag.V8 || tag === KvValueTag.U64 || tag === KvValueTag.BYTES
  ) {
    return { encoding: tag, data: value.subarray(1) };
  }
  // Written by another front end: plain bytes.
  return { encoding: ValueEncoding.VE_BYTES, data: value };
}

function storedValueOf(encoding: number, data: Uint8Array): Uint8Array {
  if (
    encoding !== ValueEncoding.VE_V8 && encoding !== ValueEncoding.VE_LE64 &&
    encoding !== ValueEncoding.VE_BYTES
  ) {
    throw new Refused(400, `Unknown value encoding ${encoding}`);
  }
  if (data.length > MAX_VALUE_BYTES) {
    throw new Refused(
      400,
      `Value of ${data.length} bytes exceeds the limit of ${MAX_VALUE_BYTES}`,
    );
  }
  const out = new Uint8Array(data.length + 1);
  out[0] = encoding;
  out.set(data, 1);
  return out;
}

function checkKey(key: Uint8Array, what: string): void {
  if (key.length === 0) throw new Refused(400, `The ${what} key is empty`);
  if (key.length > MAX_KEY_SIZE) {
    throw new Refused(
      400,
      `The ${what} key of ${key.length} bytes exceeds KVNDB's limit of ${MAX_KEY_SIZE} bytes`,
    );
  }
}

/** The sequence number a versionstamp names, or `-1` for one KVNDB never gives. */
function seqOf(versionstamp: Uint8Array): number {
  if (versionstamp.length !== 10 || versionstamp[8] !== 0 || versionstamp[9]) {
    return -1;
  }
  const view = new DataView(
    versionstamp.buffer,
    versionstamp.byteOffset,
    10,
  );
  const high = view.getUint32(0);
  return high >= 0x20_0000 ? -1 : high * 0x1_0000_0000 + view.getUint32(4);
}

/** A watched key's output: changed, with its entry, or without one when gone. */
function keyOutput(
  entry: { key: Uint8Array; value: Uint8Array; version: number } | undefined,
) {
  return create(WatchKeyOutputSchema, {
    changed: true,
    ...(entry === undefined ? {} : { entryIfChanged: entryOf(entry) }),
  });
}

function entryOf(
  entry: { key: Uint8Array; value: Uint8Array; version: number },
): KvEntry {
  const { encoding, data } = kvValueOf(entry.value);
  return create(KvEntrySchema, {
    key: entry.key.slice(),
    value: data.slice(),
    encoding,
    versionstamp: versionstampOf(entry.version),
  });
}

/**
 * The Deno KV front end of a router.
 *
 * @example
 * ```ts ignore
 * // The router starts one when given `kvPort`; then, in any Deno program:
 * const kv = await Deno.openKv(`http://127.0.0.1:${router.kvPort}`);
 * await kv.set(["users", 1], { name: "Ada" });
 * ```
 */
export class KvConnectFrontEnd {
  #server: Deno.HttpServer<Deno.NetAddr>;
  #host: KvConnectHost;
  #client: InternalClient;
  #closing = new AbortController();
  #closed = false;
  #tls: boolean;
  /** The data path's token, handed out by the metadata exchange. */
  #token = toHex(crypto.getRandomValues(new Uint8Array(32)));
  #databaseId = crypto.randomUUID();
  /** The access token's check: the router's password, as a bearer token. */
  #password = new PasswordCheck({ bearerOnly: true });

  /**
   * Listens for KV Connect requests.
   *
   * @param options Where to listen, and TLS.
   * @param host The router.
   */
  constructor(options: HttpListenOptions, host: KvConnectHost) {
    this.#host = host;
    this.#tls = options.cert !== undefined;
    this.#client = new InternalClient(
      host.attach,
      this.#closing.signal,
      "Deno KV front end",
    );
    this.#server = Deno.serve({
      hostname: options.hostname,
      port: options.port,
      ...(options.cert === undefined
        ? {}
        : { cert: options.cert, key: options.key }),
      onListen: () => {},
      onError: (error) => {
        log.error("KV Connect request failed: {error}", {
          error: String(error),
        });
        return text(500, "Internal error");
      },
    }, (request, info) => this.#serve(request, info.remoteAddr.hostname));
  }

  /** The port listened on. */
  get port(): number {
    return this.#server.addr.port;
  }

  /** Stops listening and ends every watch. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.abort();
    await this.#server.shutdown();
  }

  async #serve(request: Request, address: string): Promise<Response> {
    let path = "";
    try {
      const refusal = this.#host.refuse(address);
      if (refusal !== undefined) return text(403, refusal);
      if (request.method !== "POST") {
        return text(405, "KV Connect takes POST requests only");
      }
      path = new URL(request.url).pathname;
      if (path === "/kv/snapshot_read") {
        this.#authorize(request);
        return protobuf(await this.#read(await body(request)));
      }
      if (path === "/kv/atomic_write") {
        this.#authorize(request);
        return protobuf(await this.#write(await body(request)));
      }
      if (path === "/kv/watch") {
        this.#authorize(request);
        return this.#watch(await body(request));
      }
      return await this.#metadata(request, address);
    } catch (error) {
      if (error instanceof Refused) return text(error.status, error.message);
      const reason = toKvndbError(error);
      // A read, or a write refused before it was numbered: the client may
      // retry (it does, on a 5xx).
      if (
        path !== "/kv/atomic_write" || reason.code === ErrorCode.NO_DATABASE
      ) {
        return text(503, reason.message);
      }
      if (reason.code === ErrorCode.INTERNAL) {
        log.error("KV Connect request failed: {error}", {
          error: String(error),
        });
      }
      // A write whose outcome is unknown: never a 5xx, which the client
      // would retry, applying it twice.
      return text(409, reason.message);
    }
  }

  /** The metadata exchange: checks the access token, hands out the data path. */
  async #metadata(request: Request, address: string): Promise<Response> {
    if (!await this.#password.passes(request, address, this.#host)) {
      return text(
        401,
        "Wrong or missing access token: set DENO_KV_ACCESS_TOKEN to the router's password",
      );
    }
    let versions: unknown;
    try {
      versions = (JSON.parse(new TextDecoder().decode(await body(request))) as {
        supportedVersions?: unknown;
      }).supportedVersions;
    } catch {
      return text(400, "The metadata request is not JSON");
    }
    if (!Array.isArray(versions) || !versions.includes(3)) {
      return text(
        400,
        "KVNDB speaks KV Connect protocol version 3; this client does not",
      );
    }
    const origin = `${this.#tls ? "https" : "http"}://${
      request.headers.get("host") ?? new URL(request.url).host
    }`;
    return Response.json({
      version: 3,
      databaseId: this.#databaseId,
      endpoints: [{ url: `${origin}/kv`, consistency: "strong" }],
      token: this.#token,
      expiresAt: new Date(Date.now() + TOKEN_LIFETIME_MS).toISOString(),
    });
  }

  #authorize(request: Request): void {
    const token = bearerOf(request);
    if (token === undefined || !sameText(token, this.#token)) {
      throw new Refused(
        401,
        "Wrong or expired data path token: open the database again",
      );
    }
    const id = request.headers.get("x-denokv-database-id");
    if (id !== null && id !== this.#databaseId) {
      throw new Refused(400, `Unknown database id ${id}`);
    }
  }

  async #read(bytes: Uint8Array): Promise<Uint8Array> {
    const read = decode(() => fromBinary(SnapshotReadSchema, bytes));
    if (read.ranges.length > MAX_READ_RANGES) {
      throw new Refused(
        400,
        `${read.ranges.length} ranges exceed the limit of ${MAX_READ_RANGES} a read`,
      );
    }
    let total = 0;
    const ranges = [];
    for (const range of read.ranges) {
      total += range.limit;
      if (range.limit <= 0 || total > MAX_READ_ENTRIES) {
        throw new Refused(
          400,
          `A read may ask for 1 to ${MAX_READ_ENTRIES} entries in all`,
        );
      }
      const entries = await this.#range(
        range.start,
        range.end,
        range.limit,
        range.reverse,
      );
      ranges.push(
        create(ReadRangeOutputSchema, { values: entries.map(entryOf) }),
      );
    }
    return toBinary(
      SnapshotReadOutputSchema,
      create(SnapshotReadOutputSchema, {
        ranges,
        readIsStronglyConsistent: true,
        status: SnapshotReadStatus.SR_SUCCESS,
      }),
    );
  }

  /** Reads a range, page after page, until `limit` entries or its end. */
  async #range(
    start: Uint8Array,
    end: Uint8Array,
    limit: number,
    reverse: boolean,
  ): Promise<RangeEntry[]> {
    const out: RangeEntry[] = [];
    let from = start;
    let to = end;
    while (out.length < limit) {
      const answer = await this.#ask(
        (id) =>
          encodeRange(id, {
            start: from,
            end: to,
            limit: Math.min(limit - out.length, MAX_RANGE_LIMIT),
            reverse,
          }),
        Opcode.ENTRIES,
      );
      const page = decodeEntries(answer.payload);
      out.push(...page.entries);
      const last = page.entries.at(-1);
      if (!page.more || last === undefined) break;
      if (reverse) to = last.key;
      else {
        from = keyAfter(last.key);
      }
    }
    return out;
  }

  async #write(bytes: Uint8Array): Promise<Uint8Array> {
    const write = decode(() => fromBinary(AtomicWriteSchema, bytes));
    if (write.enqueues.length > 0) {
      throw new Refused(
        400,
        "Queues (enqueue, listenQueue) are not supported by KVNDB",
      );
    }
    const steps: AtomicStep[] = [];
    for (const check of write.checks) {
      checkKey(check.key, "checked");
      steps.push({
        kind: StepKind.CHECK,
        key: check.key,
        version: check.versionstamp.length === 0
          ? null
          // A versionstamp KVNDB never gave matches nothing.
          : Math.max(0, seqOf(check.versionstamp)) ||
            Number.MAX_SAFE_INTEGER,
      });
    }
    for (const mutation of write.mutations) {
      checkKey(mutation.key, "mutated");
      const value = mutation.value;
      const expireAt = Number(mutation.expireAtMs);
      const timed = expireAt > 0
        ? { flags: SetFlag.EXPIRE_AT, time: expireAt }
        : { flags: 0 };
      switch (mutation.mutationType) {
        case MutationType.M_SET:
        case MutationType.M_SET_SUFFIX_VERSIONSTAMPED_KEY:
          if (value === undefined) {
            throw new Refused(400, "A set mutation without a value");
          }
          steps.push({
            kind: mutation.mutationType === MutationType.M_SET
              ? StepKind.SET
              : StepKind.SET_VERSIONSTAMPED,
            key: mutation.key,
            value: storedValueOf(value.encoding, value.data),
            ...timed,
          });
          break;
        case MutationType.M_DELETE:
          steps.push({ kind: StepKind.DELETE, key: mutation.key });
          break;
        case MutationType.M_SUM:
        case MutationType.M_MIN:
        case MutationType.M_MAX: {
          if (
            value?.encoding !== ValueEncoding.VE_LE64 || value.data.length !== 8
          ) {
            throw new Refused(
              400,
              "Sum, min and max take a Deno.KvU64 (8 bytes, little-endian)",
            );
          }
          const operand = new DataView(
            value.data.buffer,
            value.data.byteOffset,
            8,
          ).getBigUint64(0, true);
          steps.push({
            kind: mutation.mutationType === MutationType.M_SUM
              ? StepKind.SUM_U64
              : mutation.mutationType === MutationType.M_MIN
              ? StepKind.MIN_U64
              : StepKind.MAX_U64,
            key: mutation.key,
            operand,
          });
          break;
        }
        default:
          throw new Refused(
            400,
            `Unknown mutation type ${mutation.mutationType}`,
          );
      }
    }
    if (steps.length === 0) throw new Refused(400, "An empty atomic write");
    if (steps.length > MAX_ATOMIC_STEPS) {
      throw new Refused(
        400,
        `${steps.length} checks and mutations exceed KVNDB's limit of ${MAX_ATOMIC_STEPS} an atomic write`,
      );
    }
    const answer = await this.#ask(
      (id) =>
        encodeAtomic(id, { acks: 0, flags: AtomicFlag.ALL_OR_NOTHING, steps }),
      Opcode.ATOMIC_REPLY,
    );
    const reply = decodeAtomicReply(answer.payload);
    if (reply.committed) {
      return toBinary(
        AtomicWriteOutputSchema,
        create(AtomicWriteOutputSchema, {
          status: AtomicWriteStatus.AW_SUCCESS,
          versionstamp: versionstampOf(reply.version),
        }),
      );
    }
    const failed = reply.results.find((result) => result.kind === "error");
    if (failed !== undefined && failed.kind === "error") {
      throw new Refused(400, failed.message.replace(/^ERR /, ""));
    }
    return toBinary(
      AtomicWriteOutputSchema,
      create(AtomicWriteOutputSchema, {
        status: AtomicWriteStatus.AW_CHECK_FAILURE,
      }),
    );
  }

  /**
   * A watch: the keys' entries at once, then a frame whenever one of them
   * changes, pushed by the router's change stream (the native watch), and
   * an empty frame after 5 s without one to keep the stream alive. Each
   * frame is a u32 length, little-endian, then a WatchOutput.
   */
  #watch(bytes: Uint8Array): Response {
    const watch = decode(() => fromBinary(WatchSchema, bytes));
    if (watch.keys.length === 0 || watch.keys.length > MAX_WATCH_KEYS) {
      throw new Refused(400, `A watch takes 1 to ${MAX_WATCH_KEYS} keys`);
    }
    for (const { key } of watch.keys) checkKey(key, "watched");
    const keys = watch.keys.map(({ key }) => key);
    /** Each key's place in the watch (the first, should one repeat). */
    const places = new Map<string, number>();
    keys.forEach((key, i) => {
      const id = binaryString(key);
      if (!places.has(id)) places.set(id, i);
    });
    /** The version of each key last sent; changes at or below it are old. */
    const seen: number[] = keys.map(() => 0);
    let subscription: { close(): void } | undefined;
    let keepAlive: ReturnType<typeof setInterval> | undefined;
    let lastSent = Date.now();
    const stop = () => {
      subscription?.close();
      clearInterval(keepAlive);
      this.#closing.signal.removeEventListener("abort", end);
    };
    let end = () => {};
    const frame = (payload: Uint8Array) => {
      const out = new Uint8Array(4 + payload.length);
      new DataView(out.buffer).setUint32(0, payload.length, true);
      out.set(payload, 4);
      return out;
    };
    const output = (outputs: ReturnType<typeof keyOutput>[]) =>
      frame(toBinary(
        WatchOutputSchema,
        create(WatchOutputSchema, {
          status: SnapshotReadStatus.SR_SUCCESS,
          keys: outputs,
        }),
      ));
    const stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        end = () => {
          stop();
          try {
            controller.close();
          } catch {
            // Already closed or cancelled.
          }
        };
        this.#closing.signal.addEventListener("abort", end, { once: true });
        const send = (bytes: Uint8Array) => {
          lastSent = Date.now();
          try {
            controller.enqueue(bytes);
          } catch {
            stop();
          }
        };
        let ready = false;
        let first = true;
        const queued: Change[][] = [];
        const deliver = (changes: Change[]) => {
          const outputs = keys.map(() => create(WatchKeyOutputSchema, {}));
          let any = false;
          const now = Date.now();
          for (const change of changes) {
            const i = places.get(binaryString(change.key)) ?? -1;
            if (i < 0 || change.version <= seen[i]!) continue;
            seen[i] = change.version;
            any = true;
            const gone = change.value === null ||
              (change.expiresAt !== undefined && change.expiresAt <= now);
            outputs[i] = keyOutput(
              gone ? undefined : {
                key: change.key,
                value: change.value!,
                version: change.version,
              },
            );
          }
          if (any) send(output(outputs));
        };
        subscription = this.#client.stream(
          (id) => encodeWatch(id, { from: 0, prefix: new Uint8Array(0), keys }),
          (answer) => {
            if (answer.opcode !== Opcode.CHANGES) return;
            const { changes } = decodeChanges(answer.payload);
            if (first) {
              // Subscribed first, read second: a change in between arrives
              // as a change too, and is dropped if the read saw it.
              first = false;
              this.#initial(keys).then((entries) => {
                entries.forEach((entry, i) => {
                  if (entry !== undefined) seen[i] = entry.version;
                });
                send(output(entries.map((entry) => keyOutput(entry))));
                ready = true;
                for (const batch of queued) deliver(batch);
                queued.length = 0;
              }, () => end());
              return;
            }
            if (ready) deliver(changes);
            else queued.push(changes);
          },
          () => end(),
        );
        keepAlive = setInterval(() => {
          if (Date.now() - lastSent >= WATCH_KEEPALIVE_MS) {
            send(frame(new Uint8Array(0)));
          }
        }, 1_000);
      },
      cancel: () => stop(),
    });
    return new Response(stream, {
      headers: { "content-type": "application/octet-stream" },
    });
  }

  /** The current entry of each key (`undefined`: absent), by strong reads. */
  async #initial(keys: Uint8Array[]): Promise<(RangeEntry | undefined)[]> {
    return await Promise.all(keys.map(async (key) => {
      return (await this.#range(key, keyAfter(key), 1, false))[0];
    }));
  }

  async #ask(
    encode: (id: number) => Uint8Array,
    opcode: number,
  ): Promise<Answer> {
    const answer = await this.#client.request(encode);
    if (answer.opcode !== opcode) {
      throw new KvndbError(
        ErrorCode.INTERNAL,
        `Expected ${opcode}, got ${answer.opcode} from the router`,
      );
    }
    return answer;
  }
}

function decode<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw new Refused(400, `Malformed protobuf: ${(error as Error).message}`);
  }
}
