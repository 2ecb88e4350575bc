/**
 * The KVNDB client: one connection to a router, many requests in flight.
 *
 * @module
 */

import {
  AckLevel,
  type AckName,
  type AtomicReply,
  type AtomicStep,
  checkKey,
  checkValue,
  connect as connectTransport,
  ConnectionClosedError,
  decodeAtomicReply,
  decodeDigestReply,
  decodeEntries,
  decodeForgotten,
  decodeKeyPage,
  decodeStatsReply,
  decodeU64,
  decodeValue,
  DEFAULT_PORT,
  type Digest,
  encodeAtomic,
  encodeDigest,
  encodeForget,
  encodeGet,
  encodeKeys,
  encodeOpaque,
  encodeRange,
  encodeWatch,
  encodeWriteRequest,
  type Endpoint,
  type Entries,
  type Entry,
  type Frame,
  FramedConnection,
  fromHex,
  handshake,
  InvalidArgumentError,
  keyAfter,
  MAX_RANGE_LIMIT,
  type MemberStats,
  Opcode,
  parseAckLevel,
  prefixEnd,
  ProtocolError,
  type RangeEntry,
  Role,
  type RouterStats,
} from "../protocol/mod.ts";

import { AtomicOperation } from "./atomic.ts";
import {
  type Bytes,
  type ClientSetOptions,
  type ConnectOptions,
  type EntriesOptions,
  type KeyPageResult,
  type KeysOptions,
  type RequestOptions,
  toBytes,
  type WatchOptions,
  type WriteOptions,
} from "./options.ts";
import type { WatchStream } from "./watch.ts";
import { RequestTable } from "./_requests.ts";

const decoder = new TextDecoder();

/**
 * Connects to a router and completes the handshake.
 *
 * @param options Where, and the password.
 * @returns A connected client.
 * @throws {AuthError} When the password is missing or wrong.
 * @throws {VersionMismatchError} When the router speaks another protocol version.
 * @example
 * ```ts ignore
 * import { connect } from "./client.ts";
 * await using client = await connect({ hostname: "127.0.0.1", port: 54565 });
 * await client.set("greeting", "hello");
 * console.log(await client.get("greeting")); // "hello"
 * ```
 */
export async function connect(options: ConnectOptions = {}): Promise<Client> {
  const endpoint: Endpoint = options.endpoint ?? {
    type: options.transport ?? "tcp",
    hostname: options.hostname ?? "127.0.0.1",
    port: options.port ?? DEFAULT_PORT,
    path: options.path,
    caFile: options.caFile,
  };
  const conn = new FramedConnection(await connectTransport(endpoint));
  try {
    await handshake(conn, {
      role: Role.CLIENT,
      password: options.password,
      timeout: options.timeout,
      signal: options.signal,
    });
  } catch (error) {
    conn.close();
    if (error instanceof ConnectionClosedError) {
      throw new ConnectionClosedError(
        `The router closed the connection during the handshake (${
          error.message.replace(/^Connection closed:? ?/, "") ||
          "no reason given"
        }); is it a KVNDB router, and does the transport (-t) match?`,
        { cause: error },
      );
    }
    throw error;
  }
  return new Client(conn, options.timeout ?? 10_000);
}

/**
 * A connection to a KVNDB router. Requests may be issued concurrently; each
 * resolves with its own answer. Keys and values are text (UTF-8) unless
 * given as bytes; the `*Bytes` methods return bytes.
 *
 * @example
 * ```ts ignore
 * import { connect } from "./client.ts";
 * await using client = await connect({ port: 54565 });
 * await Promise.all([client.set("a", "1"), client.set("b", "2")]);
 * for await (const page of client.keys({ prefix: "" })) console.log(page);
 * ```
 */
export class Client implements AsyncDisposable {
  #conn: FramedConnection;
  #table: RequestTable;
  #closed = false;

  /**
   * Use {@linkcode connect} instead.
   *
   * @param conn A connection that has completed its handshake.
   * @param timeout The default request timeout in milliseconds.
   */
  constructor(conn: FramedConnection, timeout: number) {
    this.#conn = conn;
    this.#table = new RequestTable(conn, timeout);
    conn.setHandler((frame) => this.#table.onFrame(frame));
    conn.closed.then((reason) => this.#onClosed(reason));
  }

  /** Whether the client is closed (by `close()` or by the router). */
  get isClosed(): boolean {
    return this.#closed || this.#conn.isClosed;
  }

  /** Requests sent and not yet answered. */
  get inFlight(): number {
    return this.#table.size;
  }

  /**
   * Reads a key as text.
   *
   * @param key The key.
   * @param options Signal and timeout.
   * @returns The value decoded as UTF-8, or `null` when the key does not exist.
   */
  async get(key: Bytes, options?: RequestOptions): Promise<string | null> {
    const entry = await this.getEntry(key, options);
    return entry === null ? null : decoder.decode(entry.value);
  }

  /**
   * Reads a key as bytes.
   *
   * @param key The key.
   * @param options Signal and timeout.
   * @returns The value, or `null` when the key does not exist.
   */
  async getBytes(
    key: Bytes,
    options?: RequestOptions,
  ): Promise<Uint8Array | null> {
    return (await this.getEntry(key, options))?.value ?? null;
  }

  /**
   * Reads a key with its version: the sequence number of the write that stored it.
   *
   * @param key The key.
   * @param options Signal and timeout.
   * @returns The value and version, or `null` when the key does not exist.
   */
  async getEntry(key: Bytes, options?: RequestOptions): Promise<Entry | null> {
    const keyBytes = toBytes(key);
    checkKey(keyBytes);
    const frame = await this.#request(
      (id) => encodeGet(id, keyBytes),
      Opcode.VALUE,
      options,
    );
    const entry = decodeValue(frame.payload);
    // Copy out of the read buffer so that keeping a value keeps nothing else.
    if (entry === null) return null;
    return entry.expiresAt === undefined
      ? { value: entry.value.slice(), version: entry.version }
      : {
        value: entry.value.slice(),
        version: entry.version,
        expiresAt: entry.expiresAt,
      };
  }

  /**
   * Stores a value. Resolves once the databases have applied it.
   *
   * @param key The key.
   * @param value The value.
   * @param options Expiry (`expireIn`, ms), acknowledgement level, signal and
   *   timeout. A set without `expireIn` removes any expiry the key had.
   * @returns The write's sequence number, which becomes the key's version.
   * @throws {TooLargeError} When the key or value is over its limit.
   * @throws {InvalidArgumentError} When `expireIn` is not a positive integer.
   * @example A key that expires
   * ```ts
   * import { connect } from "./mod.ts";
   * import { Router } from "../router/mod.ts";
   * import { DatabaseNode, MemoryDatabase } from "../database/mod.ts";
   * await using router = await Router.start({ hostname: "127.0.0.1", port: 0 });
   * await using node = DatabaseNode.start({
   *   database: new MemoryDatabase(),
   *   dial: () => router.connectInProcess(),
   * });
   * await node.ready();
   * await using client = await connect({ port: router.port });
   *
   * await client.set("session", "abc", { expireIn: 60_000 });
   * const entry = await client.getEntry("session");
   * console.log(entry !== null && entry.expiresAt! > Date.now()); // true
   * console.log(await client.ttl("session") > 59_000n); // true
   * ```
   */
  async set(
    key: Bytes,
    value: Bytes,
    options?: ClientSetOptions,
  ): Promise<number> {
    if (options?.expireIn !== undefined || options?.expireAt !== undefined) {
      const result = await this.atomic().set(key, value, options).commit(
        options,
      );
      // Without checks it commits, or commit() throws the reason it did not.
      if (!result.ok) throw new ProtocolError("The router refused the set");
      return result.version;
    }
    const keyBytes = toBytes(key);
    const valueBytes = toBytes(value);
    checkKey(keyBytes);
    checkValue(valueBytes);
    const acks = ackLevel(options?.acks);
    const frame = await this.#request(
      (id) =>
        encodeWriteRequest(id, { acks, key: keyBytes, value: valueBytes }),
      Opcode.DONE,
      options,
    );
    return decodeU64(frame.payload, "DONE");
  }

  /**
   * Deletes a key. Deleting a missing key succeeds.
   *
   * @param key The key.
   * @param options Acknowledgement level, signal and timeout.
   * @returns The write's sequence number.
   */
  async delete(key: Bytes, options?: WriteOptions): Promise<number> {
    const keyBytes = toBytes(key);
    checkKey(keyBytes);
    const acks = ackLevel(options?.acks);
    const frame = await this.#request(
      (id) => encodeWriteRequest(id, { acks, key: keyBytes }),
      Opcode.DONE,
      options,
    );
    return decodeU64(frame.payload, "DONE");
  }

  /**
   * Starts an atomic operation: checks and mutations committed as one.
   *
   * @returns An operation to add steps to, then `commit()`.
   * @example A counter and a lock
   * ```ts
   * import { connect } from "./mod.ts";
   * import { Router } from "../router/mod.ts";
   * import { DatabaseNode, MemoryDatabase } from "../database/mod.ts";
   * await using router = await Router.start({ hostname: "127.0.0.1", port: 0 });
   * await using node = DatabaseNode.start({
   *   database: new MemoryDatabase(),
   *   dial: () => router.connectInProcess(),
   * });
   * await node.ready();
   * await using client = await connect({ port: router.port });
   *
   * await client.atomic().sum("visits", 1).commit();
   * console.log(await client.increment("visits", 2)); // 3n
   * const lock = await client.atomic().setIfAbsent("lock", "me").commit();
   * const held = lock.ok && lock.results[0]?.kind === "integer" &&
   *   lock.results[0].value === 1n;
   * console.log(held ? "locked" : "someone else holds it"); // "locked"
   * ```
   */
  atomic(): AtomicOperation {
    return new AtomicOperation((flags, steps, options) =>
      this.#atomic(flags, steps, options)
    );
  }

  /**
   * Adds `by` to a decimal integer value (a missing key counts as 0), as
   * Redis's INCRBY does.
   *
   * @param key The key.
   * @param by What to add; negative subtracts. Defaults to 1.
   * @param options Acknowledgement level, signal and timeout.
   * @returns The new value.
   * @throws {InvalidArgumentError} When the value is not an integer, or the
   *   sum would overflow 64 bits.
   */
  async increment(
    key: Bytes,
    by: bigint | number = 1,
    options?: WriteOptions,
  ): Promise<bigint> {
    return await this.#integerResult(this.atomic().sum(key, by), options);
  }

  /**
   * Gives an existing key an expiry `ms` from now (by the router's clock).
   *
   * @param key The key.
   * @param ms Milliseconds until it expires; 0 or less deletes it at once.
   * @param options Acknowledgement level, signal and timeout.
   * @returns Whether the key exists (and so got the expiry).
   */
  async expire(
    key: Bytes,
    ms: number,
    options?: WriteOptions,
  ): Promise<boolean> {
    return await this.#integerResult(this.atomic().expire(key, ms), options) ===
      1n;
  }

  /**
   * Removes a key's expiry, so that it stays.
   *
   * @param key The key.
   * @param options Acknowledgement level, signal and timeout.
   * @returns Whether the key existed with an expiry.
   */
  async persist(key: Bytes, options?: WriteOptions): Promise<boolean> {
    return await this.#integerResult(
      this.atomic().expire(key, null),
      options,
    ) === 1n;
  }

  /**
   * Reads a key's time to live by the router's clock, as Redis's PTTL does.
   * It is numbered like a write, so it sees every write acknowledged before.
   *
   * @param key The key.
   * @param options Signal and timeout.
   * @returns Milliseconds left; `-1n` when the key does not expire, `-2n`
   *   when it does not exist.
   */
  async ttl(key: Bytes, options?: RequestOptions): Promise<bigint> {
    return await this.#integerResult(this.atomic().ttl(key), options);
  }

  /**
   * Watches keys: every change to them, pushed by the router in version
   * order as writes are acknowledged. With `from` (the `upTo` of the last
   * batch seen), it first sends every change after that version that the
   * router's backlog still holds, so a consumer that reconnects misses
   * nothing; if the backlog no longer reaches back so far, the stream fails
   * at once with an `UNAVAILABLE` error that says so (read the keys again,
   * then watch without `from`). A watcher that reads too slowly is ended
   * with a `TOO_LARGE` error once 8 MiB of changes wait for it.
   *
   * @param options `prefix` (every key that starts with it; empty: every
   *   key) or `keys` (up to 64), `from`, and a `signal` that ends the watch.
   * @returns The batches of changes, as an async iterator.
   * @example Watching a prefix
   * ```ts
   * import { connect } from "./mod.ts";
   * import { Router } from "../router/mod.ts";
   * import { DatabaseNode, MemoryDatabase } from "../database/mod.ts";
   * await using router = await Router.start({ hostname: "127.0.0.1", port: 0 });
   * await using node = DatabaseNode.start({
   *   database: new MemoryDatabase(),
   *   dial: () => router.connectInProcess(),
   * });
   * await node.ready();
   * await using client = await connect({ port: router.port });
   *
   * const watch = client.watch({ prefix: "user:" });
   * await client.set("user:1", "Ada");
   * for await (const batch of watch) {
   *   if (batch.changes.length === 0) continue; // the confirmation
   *   console.log(new TextDecoder().decode(batch.changes[0]!.key)); // "user:1"
   *   break;
   * }
   * ```
   */
  watch(options: WatchOptions = {}): WatchStream {
    const keys = options.keys?.map(toBytes);
    const stream = this.#table.watch((id) =>
      encodeWatch(id, {
        from: options.from ?? 0,
        prefix: toBytes(options.prefix ?? new Uint8Array(0)),
        ...(keys === undefined ? {} : { keys }),
      })
    );
    options.signal?.addEventListener("abort", () => stream.return(), {
      once: true,
    });
    return stream;
  }

  async #integerResult(
    operation: AtomicOperation,
    options?: WriteOptions,
  ): Promise<bigint> {
    const result = await operation.commit(options);
    const value = result.ok ? result.results[0] : undefined;
    if (value?.kind !== "integer") {
      throw new ProtocolError("The router answered without a number");
    }
    return value.value;
  }

  async #atomic(
    flags: number,
    steps: AtomicStep[],
    options?: WriteOptions,
  ): Promise<AtomicReply> {
    const acks = ackLevel(options?.acks);
    const frame = await this.#request(
      (id) => encodeAtomic(id, { acks, flags, steps }),
      Opcode.ATOMIC_REPLY,
      options,
    );
    const reply = decodeAtomicReply(frame.payload);
    // Copy out of the read buffer so that keeping a result keeps nothing else.
    for (const result of reply.results) {
      if (result.kind === "bytes") result.value = result.value.slice();
    }
    return reply;
  }

  /**
   * Reads one page of keys.
   *
   * @param options Prefix, cursor (from the previous page) and page size.
   * @returns The keys and the cursor of the next page.
   */
  async keysPage(
    options: RequestOptions & {
      prefix?: Bytes;
      cursor?: Uint8Array | null;
      limit?: number;
    } = {},
  ): Promise<KeyPageResult> {
    const prefix = toBytes(options.prefix ?? "");
    const cursor = options.cursor ?? new Uint8Array(0);
    const limit = options.limit ?? 0;
    if (!Number.isInteger(limit) || limit < 0) {
      throw new InvalidArgumentError(
        `Page size ${limit} is not a whole number`,
      );
    }
    const frame = await this.#request(
      (id) => encodeKeys(id, { prefix, cursor, limit }),
      Opcode.KEY_PAGE,
      options,
    );
    const page = decodeKeyPage(frame.payload);
    return {
      keys: page.keys.map((key) => key.slice()),
      cursor: page.cursor.length === 0 ? null : page.cursor.slice(),
    };
  }

  /**
   * Reads entries (key, value, version, expiry) page by page, in key order:
   * every key that starts with `prefix`, or from `start` (inclusive) to `end`
   * (exclusive). Like `keys()`, each page is a read of its own.
   *
   * @param options Prefix or bounds, and entries a page (at most 1,000).
   * @returns An async iterator over pages of entries; values are copies.
   */
  async *entries(options: EntriesOptions = {}): AsyncGenerator<RangeEntry[]> {
    const prefix = toBytes(options.prefix ?? new Uint8Array(0));
    let start = options.start === undefined ? prefix : toBytes(options.start);
    const end = options.end === undefined
      ? prefixEnd(prefix)
      : toBytes(options.end);
    const limit = options.pageSize ?? MAX_RANGE_LIMIT;
    while (true) {
      const frame = await this.#request(
        (id) => encodeRange(id, { start, end, limit, reverse: false }),
        Opcode.ENTRIES,
        options,
      );
      const page = copiedEntries(frame.payload);
      const entries = page.entries;
      if (entries.length > 0) yield entries;
      const last = entries.at(-1);
      if (last === undefined || (!page.more && entries.length < limit)) return;
      start = keyAfter(last.key);
    }
  }

  /**
   * Asks one database (by the id `stats()` gives it) for a digest of a key
   * range as it stores it: the count, the last key, and a SHA-256 over every
   * entry (key, version, expiry, value), so that copies can be compared
   * without sending them (`kvndb verify`). With `entries: true`, the
   * entries themselves instead (at most 1,000).
   *
   * @param database The database's id.
   * @param range From `start` (inclusive) to `end` (exclusive; empty: no
   *   end), at most `limit` entries (10,000 for a digest).
   * @returns The digest, or the entries.
   */
  async digest(
    database: number,
    range: { start: Uint8Array; end: Uint8Array; limit: number },
    options?: RequestOptions,
  ): Promise<Digest> {
    const frame = await this.#request(
      (id) => encodeDigest(id, { database, ...range, mode: 0 }),
      Opcode.DIGEST_REPLY,
      options,
    );
    const digest = decodeDigestReply(frame.payload);
    return {
      ...digest,
      lastKey: digest.lastKey.slice(),
      hash: digest.hash.slice(),
    };
  }

  /**
   * The entries of a key range as one database (by its id) stores them,
   * expired ones included: what `kvndb verify` compares when digests differ.
   *
   * @param database The database's id.
   * @param range From `start` (inclusive) to `end` (exclusive; empty: no
   *   end), at most `limit` entries (1,000).
   * @returns The entries, and whether more follow.
   */
  async entriesOf(
    database: number,
    range: { start: Uint8Array; end: Uint8Array; limit: number },
    options?: RequestOptions,
  ): Promise<{ entries: RangeEntry[]; more: boolean }> {
    const frame = await this.#request(
      (id) => encodeDigest(id, { database, ...range, mode: 1 }),
      Opcode.ENTRIES,
      options,
    );
    return copiedEntries(frame.payload);
  }

  /**
   * Lists keys page by page, as bytes. Every key that exists for the whole
   * scan is returned exactly once; keys written or deleted during it may or
   * may not appear.
   *
   * @param options Prefix and page size.
   * @returns An async iterator over pages.
   */
  async *keysBytes(options: KeysOptions = {}): AsyncGenerator<Uint8Array[]> {
    let cursor: Uint8Array | null = null;
    do {
      const page: KeyPageResult = await this.keysPage({
        prefix: options.prefix,
        cursor,
        limit: options.pageSize,
        signal: options.signal,
        timeout: options.timeout,
      });
      if (page.keys.length > 0) yield page.keys;
      cursor = page.cursor;
    } while (cursor !== null);
  }

  /**
   * Lists keys page by page, as text.
   *
   * @param options Prefix and page size.
   * @returns An async iterator over pages of keys decoded as UTF-8.
   */
  async *keys(options: KeysOptions = {}): AsyncGenerator<string[]> {
    for await (const page of this.keysBytes(options)) {
      yield page.map((key) => decoder.decode(key));
    }
  }

  /**
   * Checks that the router answers.
   *
   * @param options Signal and timeout.
   * @returns The round-trip time in milliseconds.
   */
  async ping(options?: RequestOptions): Promise<number> {
    const start = performance.now();
    await this.#request(
      (id) => encodeOpaque(Opcode.PING, id),
      Opcode.PONG,
      options,
    );
    return performance.now() - start;
  }

  /**
   * Counts the keys, as of now: a read like `get`, served by a database that
   * has every write acknowledged before it (this client's included). A
   * memory database counts at once; a Deno KV one lists its keys.
   *
   * @param options Signal and timeout.
   * @returns How many keys there are.
   * @example
   * ```ts ignore
   * import { connect } from "./mod.ts";
   * await using client = await connect({ port: 54565 });
   * await client.set("a", "1");
   * console.log(await client.count()); // 1 (on an empty cluster)
   * ```
   */
  async count(options?: RequestOptions): Promise<number> {
    const frame = await this.#request(
      (id) => encodeOpaque(Opcode.COUNT, id),
      Opcode.COUNT_REPLY,
      options,
    );
    return decodeU64(frame.payload, "COUNT_REPLY");
  }

  /**
   * Reads the router's statistics: databases, clients, operation counts.
   *
   * @param options Signal and timeout.
   * @returns The statistics, as the router reports them.
   */
  async stats(options?: RequestOptions): Promise<RouterStats> {
    const frame = await this.#request(
      (id) => encodeOpaque(Opcode.STATS, id),
      Opcode.STATS_REPLY,
      options,
    );
    return decodeStatsReply(frame.payload) as RouterStats;
  }

  /**
   * Tells the router to give up on absent members: databases it waits for
   * because they held every acknowledged write. Acknowledged writes that only
   * they hold are lost. Use it when such a database is gone for good (a
   * memory database that died, a Deno KV file that was lost).
   *
   * @param members Node ids as hex (`stats().members` lists them), or
   *   `"absent"` for every member that is not connected.
   * @param options Signal and timeout.
   * @returns The members given up on.
   * @throws {InvalidArgumentError} For an id that is not a member, or one
   *   that is connected.
   * @example
   * ```ts ignore
   * import { connect } from "./mod.ts";
   * await using client = await connect({ port: 54565 });
   * console.log((await client.forget("absent")).length);
   * ```
   */
  async forget(
    members: string[] | "absent",
    options?: RequestOptions,
  ): Promise<MemberStats[]> {
    const nodeIds = members === "absent" ? [] : members.map((id) => {
      const bytes = fromHex(id);
      if (bytes === undefined || bytes.length === 0) {
        throw new InvalidArgumentError(`'${id}' is not a node id in hex`);
      }
      return bytes;
    });
    const frame = await this.#request(
      (id) => encodeForget(id, { allAbsent: members === "absent", nodeIds }),
      Opcode.FORGOTTEN,
      options,
    );
    return decodeForgotten(frame.payload);
  }

  /** Closes the connection; pending requests fail. Idempotent. */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#conn.close();
    }
    return Promise.resolve();
  }

  /** Closes the connection; for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #request(
    encode: (id: number) => Uint8Array,
    expected: number,
    options?: RequestOptions,
  ): Promise<Frame> {
    if (this.isClosed) {
      return Promise.reject(new ConnectionClosedError("The client is closed"));
    }
    return this.#table.request(encode, expected, options);
  }

  #onClosed(reason: unknown): void {
    this.#table.failAll(
      new ConnectionClosedError(
        reason instanceof Error
          ? `Connection to the router closed: ${reason.message}`
          : "Connection to the router closed",
        { cause: reason },
      ),
    );
  }
}

/** An ENTRIES payload, its keys and values copied out of the frame's buffer. */
function copiedEntries(payload: Uint8Array): Entries {
  const page = decodeEntries(payload);
  return {
    more: page.more,
    entries: page.entries.map((entry) => ({
      ...entry,
      key: entry.key.slice(),
      value: entry.value.slice(),
    })),
  };
}

function ackLevel(name: AckName | undefined): number {
  if (name === undefined) return AckLevel.DEFAULT;
  const level = parseAckLevel(name);
  if (level === undefined) {
    throw new InvalidArgumentError(
      `Unknown acknowledgement level '${name}' (expected one, majority or all)`,
    );
  }
  return level;
}
