/**
 * One RESP client's session: commands parsed from what it sends, run in
 * order (plain GET and SET straight into the router's paths, the rest as
 * native requests), replies written back in command order.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { ATOMIC_COMMANDS, type Plan, planCommand } from "./resp_commands.ts";
import { Transactions } from "./resp_transaction.ts";
import {
  checkKeyLength,
  commandName,
  errorText,
  globMatcher,
  keyLengthError,
  literalPrefix,
} from "./_resp_text.ts";
import {
  connectionBytes,
  ConnectionClosedError,
  decodeAtomicReply,
  decodeError,
  decodeFrame,
  decodeKeyPage,
  decodeU64,
  decodeValue,
  encodeAtomic,
  encodeDone,
  encodeGet,
  encodeGetPayload,
  encodeKeys,
  encodeOpaque,
  encodeWriteRequest,
  errorFromCode,
  formatAddr,
  type Frame,
  fromHex,
  HEADER_SIZE,
  InvalidArgumentError,
  KvndbError,
  MAX_ATOMIC_BYTES,
  MAX_ATOMIC_STEPS,
  MAX_KEY_SIZE,
  Opcode,
  OutputBuffer,
  respArray,
  respBulk,
  respError,
  respInteger,
  RespParser,
  respSimple,
  toHex,
} from "../protocol/mod.ts";
import type { ClientLink, RespHost, RouterSession } from "./resp_front_end.ts";

const log = getLogger(["kvndb", "resp"]);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

const RESP_OK = encoder.encode("+OK\r\n");

/** One command's answer; replies leave in the order commands came. */
interface Reply {
  bytes?: Uint8Array;
  /** Called once a read's answer is in, for the writes waiting behind it. */
  onDone?: (() => void)[];
}

/** A plain GET or SET waiting for the router: its answer fills the slot. */
interface FastReply extends Reply {
  get: boolean;
  /** For a command run as one atomic operation: its reply from the results. */
  plan?: Plan;
}

type Waiter = FastReply | ((answer: Frame | KvndbError) => void);

/** Commands that take more than one round of requests, or change the session. */
const MULTI_STEP = new Set([
  "FLUSHDB",
  "FLUSHALL",
  "DEL",
  "UNLINK",
  "KEYS",
  "AUTH",
  "HELLO",
  "QUIT",
  "MULTI",
  "WATCH",
]);

/** Commands that read keys. */
const READS = new Set([
  "GET",
  "MGET",
  "EXISTS",
  "KEYS",
  "SCAN",
  "DBSIZE",
  "DEL",
  "UNLINK",
  "WATCH",
]);

/** Commands that write keys: each waits for the reads sent before it. */
const WRITES = new Set([
  "FLUSHDB",
  "FLUSHALL",
  "SET",
  "MSET",
  "DEL",
  "UNLINK",
  "EXEC",
  ...ATOMIC_COMMANDS,
]);

/**
 * A RESP session: created by the front end for each accepted connection.
 *
 * @example
 * ```ts ignore
 * const session = new RespSession(conn, host, address);
 * await session.done;
 * ```
 */
export class RespSession implements ClientLink {
  readonly peer: string;
  readonly done: Promise<void>;
  #conn: Deno.Conn;
  #host: RespHost;
  #address?: string;
  #router: RouterSession;
  #parser = new RespParser();
  #authenticated: boolean;
  #closed = false;
  #nextId = 1;
  /** Requests sent to the router, by id: each gets its answer or an error. */
  #waiting = new Map<number, Waiter>();
  #flushQueued = false;
  #replies: Reply[] = [];
  /** Resolved when replies leave, for a reader waiting on backpressure. */
  #sent?: PromiseWithResolvers<void>;
  #readBuffer = new Uint8Array(64 * 1024);
  /** Only one flush writes at a time, so one buffer serves them all. */
  #output = new OutputBuffer();
  #writing = false;
  #quit = false;
  #barrier?: Promise<void>;
  /**
   * Reads sent and not yet answered. A write waits for them: otherwise the
   * router, which serves a read from a database that has every earlier
   * write, could serve it after this later one too, and the read would see
   * a write pipelined after it (Redis runs a pipeline one command at a time).
   */
  #pendingReads = new Set<Reply>();
  #transactions = new Transactions({
    request: (bytes) => this.#request(bytes),
    id: () => this.#id(),
  });

  constructor(conn: Deno.Conn, host: RespHost, address?: string) {
    this.#conn = conn;
    this.#host = host;
    this.#address = address;
    this.peer = formatAddr(conn.remoteAddr);
    this.#authenticated = !host.passwordRequired;
    this.#router = host.attach(this);
    log.debug("RESP client {peer} connected", { peer: this.peer });
    this.done = this.#read();
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  // ----------------------------------------------------------- from the router

  send(bytes: Uint8Array): boolean {
    const decoded = decodeFrame(bytes);
    if (decoded === undefined) return false;
    this.#settle(this.#take(decoded.frame.id), decoded.frame);
    return true;
  }

  answer(id: number, opcode: number, payload: Uint8Array): void {
    const waiter = this.#take(id);
    // A slow-path request keeps the frame past this call: copy it then.
    const kept = typeof waiter === "function" ? payload.slice() : payload;
    this.#settle(waiter, { opcode, flags: 0, id, payload: kept });
  }

  acknowledge(id: number, seq: number): void {
    const waiter = this.#take(id);
    if (typeof waiter === "function") {
      waiter(decodeFrame(encodeDone(id, seq))!.frame);
    } else if (waiter !== undefined) {
      // A plain SET: its reply needs no frame at all.
      waiter.bytes = RESP_OK;
      this.#queueFlush();
    }
  }

  sendError(id: number, error: KvndbError): void {
    this.#settle(this.#take(id), error);
  }

  /** Removes and returns the waiter of request `id`, if any. */
  #take(id: number): Waiter | undefined {
    const waiter = this.#waiting.get(id);
    if (waiter !== undefined) this.#waiting.delete(id);
    return waiter;
  }

  /** Gives a request's answer to its waiter: a slot, or a promise's callback. */
  #settle(waiter: Waiter | undefined, answer: Frame | KvndbError): void {
    if (waiter === undefined) return;
    if (typeof waiter === "function") waiter(answer);
    else this.#fill(waiter, answer);
  }

  fail(error: KvndbError): Promise<void> {
    this.#replies.push({ bytes: respError(`ERR ${error.message}`) });
    this.#quit = true;
    this.#flush();
    return Promise.resolve();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
    const waiting = [...this.#waiting.values()];
    this.#waiting.clear();
    for (const waiter of waiting) {
      this.#settle(waiter, new ConnectionClosedError("Connection closed"));
    }
    this.#waiting.clear();
    this.#router.detach();
  }

  // ----------------------------------------------------------- reading

  async #read(): Promise<void> {
    try {
      while (!this.#closed) {
        while (this.#replies.length >= this.#host.maxInFlight) {
          // Backpressure: the client pipelines faster than it is answered.
          this.#sent ??= Promise.withResolvers<void>();
          await this.#sent.promise;
        }
        const count = await this.#conn.read(this.#readBuffer);
        if (count !== null) connectionBytes.in += count;
        if (count === null) break;
        // Commands are views into what was read: copy just those bytes, so
        // that the read buffer can be used again.
        const chunk = this.#readBuffer.slice(0, count);
        for (const command of this.#parser.push(chunk)) {
          const name = commandName(command[0]!);
          if (this.#pendingReads.size > 0 && WRITES.has(name)) {
            this.#waitForReads();
          }
          if (
            this.#barrier === undefined && this.#authenticated &&
            !this.#transactions.open &&
            ((name === "GET" && command.length === 2) ||
              (name === "SET" && command.length === 3))
          ) {
            this.#replies.push(this.#fast(name, command));
            continue;
          }
          if (
            this.#barrier === undefined && this.#authenticated &&
            !this.#transactions.open &&
            (ATOMIC_COMMANDS.has(name) ||
              (name === "SET" && command.length > 3))
          ) {
            this.#replies.push(this.#fastAtomic(name, command));
            continue;
          }
          this.#replies.push(this.#schedule(name, command));
          // Nothing after QUIT is run, however it was pipelined.
          if (name === "QUIT") this.#quit = true;
          if (this.#quit) break;
        }
        this.#flush();
        if (this.#quit) break;
      }
    } catch (error) {
      if (error instanceof KvndbError) {
        this.#replies.push({ bytes: respError(error.message) });
        this.#quit = true;
        this.#flush();
        return;
      }
    }
    // End of input: answer what was asked, then close.
    this.#quit = true;
    this.#flush();
  }

  /**
   * Runs a plain GET or SET without a promise: the router's answer becomes
   * the reply at once, in the same turn as every other answer that arrived
   * with it, so that one write carries them all.
   */
  #fast(name: string, command: Uint8Array[]): Reply {
    const get = name === "GET";
    const slot: FastReply = { get };
    const key = command[1]!;
    if (key.length === 0 || key.length > MAX_KEY_SIZE) {
      slot.bytes = respError(errorText(keyLengthError(key)));
      return slot;
    }
    const id = this.#id();
    this.#waiting.set(id, slot);
    if (get) {
      this.#pendingReads.add(slot);
      this.#router.get(id, encodeGetPayload(key));
    } else {
      this.#router.set(id, key, command[2]!);
    }
    return slot;
  }

  /**
   * Runs a command that is one atomic operation (INCR, SETNX …) without a
   * promise, as `#fast` does for GET and SET.
   */
  #fastAtomic(name: string, command: Uint8Array[]): Reply {
    const plan = planCommand(name, command.slice(1));
    const slot: FastReply = { get: false };
    if ("error" in plan) {
      slot.bytes = respError(plan.error);
      return slot;
    }
    if (plan.steps.length === 0) {
      slot.bytes = plan.reply([]);
      return slot;
    }
    const id = this.#id();
    let bytes: Uint8Array;
    try {
      // The steps view this read's bytes: the frame copies them now.
      bytes = encodeAtomic(id, { acks: 0, flags: 0, steps: plan.steps });
    } catch (error) {
      // Over a limit (a value too large): an error reply, as for SET.
      slot.bytes = respError(errorText(error));
      return slot;
    }
    slot.plan = plan;
    this.#waiting.set(id, slot);
    this.#router.submit({
      opcode: Opcode.ATOMIC,
      flags: 0,
      id,
      payload: bytes.subarray(HEADER_SIZE),
    });
    return slot;
  }

  /** Turns the router's answer to a plain GET or SET into its reply. */
  #fill(slot: FastReply, answer: Frame | KvndbError): void {
    if (slot.get) this.#readDone(slot);
    if (answer instanceof KvndbError) {
      slot.bytes = respError(errorText(answer));
    } else if (answer.opcode === Opcode.ERROR) {
      const error = decodeError(answer.payload);
      slot.bytes = respError(
        errorText(errorFromCode(error.code, error.message)),
      );
    } else if (slot.plan !== undefined) {
      const reply = decodeAtomicReply(answer.payload);
      const failed = reply.committed
        ? undefined
        : reply.results.find((result) => result.kind === "error");
      slot.bytes = failed?.kind === "error"
        ? respError(failed.message)
        : slot.plan.reply(reply.results);
    } else {
      slot.bytes = slot.get
        ? respBulk(decodeValue(answer.payload)?.value ?? null)
        : RESP_OK;
    }
    this.#queueFlush();
  }

  /** Flushes once the answers of this turn are in, not at the first. */
  #queueFlush(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    queueMicrotask(() => {
      this.#flushQueued = false;
      this.#flush();
    });
  }

  /**
   * Starts a command in order. Commands that take one round of requests are
   * submitted at once (the router keeps their order); those that take
   * several (DEL, KEYS, AUTH) hold back every later command until they are
   * done, as Redis runs one command at a time.
   */
  #schedule(name: string, command: Uint8Array[]): Reply {
    const slot: Reply = {};
    const read = READS.has(name);
    if (read) this.#pendingReads.add(slot);
    const run = () =>
      this.#execute(name, command).catch((error) =>
        respError(errorText(error))
      );
    const reply = this.#barrier === undefined ? run() : this.#barrier.then(run);
    reply.then((bytes) => {
      slot.bytes = bytes;
      if (read) this.#readDone(slot);
      // Once per turn, not once per reply: answers that arrive together
      // leave in one write.
      this.#queueFlush();
    });
    if (MULTI_STEP.has(name)) {
      const barrier = reply.then(() => {});
      this.#barrier = barrier;
      barrier.then(() => {
        if (this.#barrier === barrier) this.#barrier = undefined;
      });
    }
    return slot;
  }

  /**
   * Holds back every later command until the reads sent so far are
   * answered. Only those: a read sent later waits behind this barrier, so
   * waiting for it as well would wait forever.
   */
  #waitForReads(): void {
    const reads = [...this.#pendingReads];
    const done = new Promise<void>((resolve) => {
      let left = reads.length;
      const one = () => {
        if (--left === 0) resolve();
      };
      for (const slot of reads) (slot.onDone ??= []).push(one);
    });
    const before = this.#barrier;
    const barrier = before === undefined
      ? done
      : Promise.all([before, done]).then(() => {});
    this.#barrier = barrier;
    barrier.then(() => {
      if (this.#barrier === barrier) this.#barrier = undefined;
    });
  }

  #readDone(slot: Reply): void {
    this.#pendingReads.delete(slot);
    const onDone = slot.onDone;
    if (onDone !== undefined) {
      slot.onDone = undefined;
      for (const done of onDone) done();
    }
  }

  async #flush(): Promise<void> {
    if (this.#writing) return;
    this.#writing = true;
    try {
      while (!this.#closed) {
        // Send the oldest replies that are ready, in one write; the rest
        // call again when they are.
        let ready = 0;
        while (this.#replies[ready]?.bytes !== undefined) ready++;
        if (ready === 0) break;
        const parts = this.#replies.splice(0, ready).map((r) => r.bytes!);
        const sent = this.#sent;
        this.#sent = undefined;
        sent?.resolve();
        const bytes = this.#output.join(parts);
        let written = 0;
        while (written < bytes.length) {
          const count = await this.#conn.write(bytes.subarray(written));
          connectionBytes.out += count;
          written += count;
        }
      }
    } catch {
      this.close();
    } finally {
      this.#writing = false;
    }
    if (this.#quit && this.#replies.length === 0) this.close();
  }

  // ----------------------------------------------------------- commands

  #request(bytes: Uint8Array): Promise<Frame> {
    if (this.#closed) {
      return Promise.reject(new ConnectionClosedError("Connection closed"));
    }
    const frame = decodeFrame(bytes)!.frame;
    const waiter = Promise.withResolvers<Frame>();
    this.#waiting.set(frame.id, (answer) => {
      if (answer instanceof KvndbError) {
        waiter.reject(answer);
      } else if (answer.opcode === Opcode.ERROR) {
        const error = decodeError(answer.payload);
        waiter.reject(errorFromCode(error.code, error.message));
      } else {
        waiter.resolve(answer);
      }
    });
    this.#router.submit(frame);
    return waiter.promise;
  }

  #id(): number {
    const id = this.#nextId;
    this.#nextId = id >= 0xffff_ffff ? 1 : id + 1;
    return id;
  }

  async #get(key: Uint8Array): Promise<Uint8Array | null> {
    checkKeyLength(key);
    const frame = await this.#request(encodeGet(this.#id(), key));
    // A view: answer frames are never written again (protocol/_pool.ts).
    return decodeValue(frame.payload)?.value ?? null;
  }

  async #set(key: Uint8Array, value: Uint8Array): Promise<void> {
    checkKeyLength(key);
    await this.#request(
      encodeWriteRequest(this.#id(), { acks: 0, key, value }),
    );
  }

  async #delete(key: Uint8Array): Promise<void> {
    checkKeyLength(key);
    await this.#request(encodeWriteRequest(this.#id(), { acks: 0, key }));
  }

  async #page(prefix: Uint8Array, cursor: Uint8Array, limit: number) {
    const frame = await this.#request(
      encodeKeys(this.#id(), { prefix, cursor, limit }),
    );
    const page = decodeKeyPage(frame.payload);
    return {
      keys: page.keys.map((key) => key.slice()),
      cursor: page.cursor.slice(),
    };
  }

  async #execute(name: string, command: Uint8Array[]): Promise<Uint8Array> {
    const args = command.slice(1);
    const arity = (min: number, max = min) => {
      if (args.length < min || args.length > max) {
        throw new InvalidArgumentError(
          `ERR wrong number of arguments for '${name.toLowerCase()}' command`,
        );
      }
    };
    if (!this.#authenticated && !["AUTH", "HELLO", "QUIT"].includes(name)) {
      return respError("NOAUTH Authentication required.");
    }
    if (this.#transactions.handles(name)) {
      return await this.#transactions.run(name, args);
    }
    if (ATOMIC_COMMANDS.has(name)) {
      return await this.#transactions.runPlan(name, args);
    }
    switch (name) {
      case "PING":
        arity(0, 1);
        return args[0] === undefined ? respSimple("PONG") : respBulk(args[0]);
      case "ECHO":
        arity(1);
        return respBulk(args[0]!);
      case "QUIT":
        this.#quit = true;
        return respSimple("OK");
      case "AUTH": {
        arity(1, 2);
        const password = decoder.decode(args[args.length - 1]!);
        return await this.#auth(password);
      }
      case "HELLO": {
        const version = args[0] === undefined ? "2" : decoder.decode(args[0]);
        if (version !== "2") {
          return respError("NOPROTO this server supports RESP2 only");
        }
        const authAt = args.findIndex((a) =>
          decoder.decode(a).toUpperCase() === "AUTH"
        );
        if (authAt >= 0) {
          const reply = await this.#auth(
            decoder.decode(args[authAt + 2] ?? new Uint8Array()),
          );
          if (reply[0] === 0x2d) return reply; // '-': an error
        }
        if (!this.#authenticated) {
          return respError("NOAUTH HELLO must be called with AUTH");
        }
        return respArray([
          respBulk("server"),
          respBulk("kvndb"),
          respBulk("version"),
          respBulk("7.0.0"),
          respBulk("proto"),
          respInteger(2),
          respBulk("mode"),
          respBulk("standalone"),
          respBulk("role"),
          respBulk("master"),
          respBulk("modules"),
          respArray([]),
        ]);
      }
      case "SELECT":
        arity(1);
        return decoder.decode(args[0]!) === "0"
          ? respSimple("OK")
          : respError("ERR DB index is out of range");
      case "GET":
        arity(1);
        return respBulk(await this.#get(args[0]!));
      case "SET":
        if (args.length !== 2) {
          return await this.#transactions.runPlan(name, args);
        }
        await this.#set(args[0]!, args[1]!);
        return respSimple("OK");
      case "MSET": {
        // One atomic operation, as in Redis, when it fits one; beyond, the
        // pairs are separate writes.
        if (
          args.length <= 2 * MAX_ATOMIC_STEPS &&
          argumentBytes(args) <= MAX_ATOMIC_BYTES / 2
        ) {
          const reply = await this.#transactions.runPlan(name, args);
          if (!isLimitError(reply)) return reply;
        }
        if (args.length === 0 || args.length % 2 !== 0) {
          return respError("ERR wrong number of arguments for 'mset' command");
        }
        const writes = [];
        for (let i = 0; i < args.length; i += 2) {
          writes.push(this.#set(args[i]!, args[i + 1]!));
        }
        await Promise.all(writes);
        return respSimple("OK");
      }
      case "MGET":
        arity(1, Infinity);
        return respArray(
          (await Promise.all(args.map((key) => this.#get(key)))).map(respBulk),
        );
      case "DEL":
      case "UNLINK": {
        arity(1, Infinity);
        if (args.length <= MAX_ATOMIC_STEPS) {
          const reply = await this.#transactions.runPlan(name, args);
          if (!isLimitError(reply)) return reply;
        }
        // The native protocol does not say whether a key existed: read first.
        const existed = await Promise.all(args.map((key) => this.#get(key)));
        await Promise.all(args.map((key) => this.#delete(key)));
        return respInteger(existed.filter((value) => value !== null).length);
      }
      case "STRLEN":
        arity(1);
        return respInteger((await this.#get(args[0]!))?.length ?? 0);
      case "TYPE":
        arity(1);
        return respSimple(
          (await this.#get(args[0]!)) === null ? "none" : "string",
        );
      case "EXISTS": {
        arity(1, Infinity);
        const values = await Promise.all(args.map((key) => this.#get(key)));
        return respInteger(values.filter((value) => value !== null).length);
      }
      case "KEYS": {
        arity(1);
        const pattern = decoder.decode(args[0]!);
        const matcher = globMatcher(pattern);
        const prefix = encoder.encode(literalPrefix(pattern));
        const out: Uint8Array[] = [];
        let cursor = new Uint8Array(0);
        do {
          const page = await this.#page(prefix, cursor, 10_000);
          for (const key of page.keys) {
            if (matcher(decoder.decode(key))) out.push(respBulk(key));
          }
          cursor = page.cursor;
        } while (cursor.length > 0);
        return respArray(out);
      }
      case "SCAN": {
        arity(1, 5);
        const cursorText = decoder.decode(args[0]!);
        let pattern = "*";
        let count = 10;
        for (let i = 1; i + 1 < args.length; i += 2) {
          const option = decoder.decode(args[i]!).toUpperCase();
          const value = decoder.decode(args[i + 1]!);
          if (option === "MATCH") pattern = value;
          else if (option === "COUNT") count = Math.max(1, Number(value) || 10);
          else return respError("ERR syntax error");
        }
        // SCAN's cursor is our key cursor, hex-encoded; "0" is the start and the end.
        const cursor = cursorText === "0"
          ? new Uint8Array(0)
          : cursorText === ""
          ? undefined
          : fromHex(cursorText);
        if (cursor === undefined) return respError("ERR invalid cursor");
        const matcher = globMatcher(pattern);
        const page = await this.#page(
          encoder.encode(literalPrefix(pattern)),
          cursor,
          Math.min(count, 10_000),
        );
        return respArray([
          respBulk(page.cursor.length === 0 ? "0" : toHex(page.cursor)),
          respArray(
            page.keys.filter((key) => matcher(decoder.decode(key))).map(
              respBulk,
            ),
          ),
        ]);
      }
      case "FLUSHDB":
      case "FLUSHALL": {
        arity(0, 1);
        const mode = args[0] === undefined
          ? "SYNC"
          : decoder.decode(args[0]).toUpperCase();
        if (mode !== "SYNC" && mode !== "ASYNC") {
          return respError("ERR syntax error");
        }
        // Page by page, each page's deletes in atomic operations of at most
        // MAX_ATOMIC_STEPS keys: not one operation, so a key written while
        // the flush runs may survive it (architecture.md, limitations).
        let cursor = new Uint8Array(0);
        do {
          const page = await this.#page(new Uint8Array(0), cursor, 10_000);
          // Fewer keys an operation when large values make one too costly.
          let size = MAX_ATOMIC_STEPS;
          for (let i = 0; i < page.keys.length;) {
            const keys = page.keys.slice(i, i + size);
            const reply = await this.#transactions.runPlan("DEL", keys);
            if (isLimitError(reply) && size > 1) {
              size = Math.max(1, size >> 1);
              continue;
            }
            if (reply[0] === 0x2d) return reply; // '-': an error.
            i += keys.length;
          }
          cursor = page.cursor;
        } while (cursor.length > 0);
        return respSimple("OK");
      }
      case "DBSIZE": {
        arity(0);
        const frame = await this.#request(
          encodeOpaque(Opcode.COUNT, this.#id()),
        );
        return respInteger(decodeU64(frame.payload, "COUNT_REPLY"));
      }
      case "INFO": {
        const stats = this.#host.stats();
        const keys = stats.databases.find((db) => db.state === "ready")?.keys ??
          0;
        return respBulk(
          [
            "# Server",
            "redis_version:7.0.0",
            "kvndb_version:0.1.0",
            "redis_mode:standalone",
            `uptime_in_seconds:${stats.uptime}`,
            "# Clients",
            `connected_clients:${stats.clients}`,
            "# Replication",
            "role:master",
            `connected_slaves:${stats.databases.length}`,
            `master_repl_offset:${stats.seq}`,
            "# Keyspace",
            `db0:keys=${keys},expires=0,avg_ttl=0`,
            "",
          ].join("\r\n"),
        );
      }
      case "COMMAND":
        return respArray([]);
      case "CONFIG": {
        const sub = args[0] === undefined
          ? ""
          : decoder.decode(args[0]).toUpperCase();
        if (sub === "GET" && args[1] !== undefined) {
          const parameter = decoder.decode(args[1]);
          const known: Record<string, string> = {
            save: "",
            appendonly: "no",
            databases: "1",
          };
          return parameter in known
            ? respArray([respBulk(parameter), respBulk(known[parameter]!)])
            : respArray([]);
        }
        return respError("ERR CONFIG supports only GET here");
      }
      case "CLIENT":
        return respSimple("OK");
      default: {
        // As Redis words it: each argument quoted and followed by a space,
        // until the list reaches 128 characters.
        let shown = "";
        for (const arg of args) {
          if (shown.length >= 128) break;
          shown += `'${decoder.decode(arg).slice(0, 128 - shown.length)}' `;
        }
        return respError(
          `ERR unknown command '${
            decoder.decode(command[0]!).slice(0, 128)
          }', with args beginning with: ${shown}`,
        );
      }
    }
  }

  async #auth(password: string): Promise<Uint8Array> {
    if (!this.#host.passwordRequired) {
      return respError(
        "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
      );
    }
    if (await this.#host.checkPassword(password, this.#address)) {
      this.#authenticated = true;
      return respSimple("OK");
    }
    return respError(
      "WRONGPASS invalid username-password pair or user is disabled.",
    );
  }
}

/** The bytes of a command's arguments. */
function argumentBytes(args: Uint8Array[]): number {
  let bytes = 0;
  for (const arg of args) bytes += arg.length;
  return bytes;
}

/** Whether a reply is the refusal of an atomic operation over a limit. */
function isLimitError(reply: Uint8Array): boolean {
  return reply[0] === 0x2d && // '-'
    decoder.decode(reply.subarray(0, 30)).startsWith(
      "-ERR the atomic operation",
    );
}
