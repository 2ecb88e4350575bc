/**
 * A database node: connects to the router, applies its writes in sequence
 * order, answers its reads, and takes part in syncs as target or source.
 * Reconnects with backoff when the router goes away.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import {
  AuthError,
  connect as connectTransport,
  ConnectionClosedError,
  decodeJoined,
  decodeResolved,
  decodeSyncChunk,
  decodeU64,
  decodeWrite,
  DEFAULT_PORT,
  describeEndpoint,
  encodeAtomicReplyPayload,
  encodeJoin,
  encodeOpaque,
  encodeOutcome,
  encodeU64,
  type Endpoint,
  equalBytes,
  ErrorCode,
  expect,
  type Frame,
  FramedConnection,
  handshake,
  JoinMode,
  KvndbError,
  Opcode,
  opcodeName,
  ProtocolError,
  Role,
  sleep,
  type SyncEntry,
  taskNow,
  toHex,
  toKvndbError,
  VersionMismatchError,
  type Write,
  WriteOp,
} from "../protocol/mod.ts";
import { evaluate } from "./_atomic.ts";
import { NodeReads } from "./_node_reads.ts";
import { toBinary } from "./_binary_key.ts";
import { streamSnapshot, type SyncSource } from "./_sync_source.ts";
import type { Database, StoredEntry } from "./types.ts";

const log = getLogger(["kvndb", "database"]);

/** Options for {@linkcode DatabaseNode.start}. */
export interface DatabaseNodeOptions {
  /** The backend that holds the data. The node closes it when it stops. */
  database: Database;
  /** The router's endpoint. Defaults to TCP `127.0.0.1:54565`. */
  endpoint?: Endpoint;
  /** Shorthand for a TCP endpoint's host. */
  hostname?: string;
  /** Shorthand for a TCP endpoint's port. */
  port?: number;
  /** The router's password. */
  password?: string;
  /** Clear the data and copy it from another database on the first join (`--reset`). */
  reset?: boolean;
  /** Seconds to pause after each sync chunk received (`--reset-sleep`), to spare live traffic. */
  resetSleep?: number;
  /** Bytes of entries per sync chunk this node sends as a source. Defaults to 256 KiB. */
  syncChunkBytes?: number;
  /** Backoff between reconnection attempts, in ms. Defaults to 100 ms up to 5 s. */
  backoff?: { min: number; max: number };
  /** Router silence after which the node reconnects, in ms. Defaults to 10 s. */
  heartbeatTimeout?: number;
  /**
   * The most writes committed together (group commit). Defaults to 4096;
   * 1 commits every write on its own, for comparison.
   */
  maxBatch?: number;
  /**
   * Opens the connection to the router instead of `endpoint`: `serve` passes
   * the router's in-process link here. `endpoint` still names it in logs.
   */
  dial?: () => Deno.Conn | Promise<Deno.Conn>;
}

/** What a node is doing. */
export type NodeStatus =
  | "connecting"
  | "joining"
  | "replaying"
  | "syncing"
  | "ready"
  | "stopped";

type Task =
  | { kind: "write"; write: Write }
  | { kind: "chunk"; id: number; entries: SyncEntry[] }
  | { kind: "end"; id: number };

/** Errors after which reconnecting cannot help. */
function isFatal(error: unknown): boolean {
  return error instanceof AuthError || error instanceof VersionMismatchError ||
    (error instanceof KvndbError && error.code === ErrorCode.CLUSTER_MISMATCH);
}

/**
 * A database node connected to a router.
 *
 * @example
 * ```ts ignore
 * import { DatabaseNode, MemoryDatabase } from "./mod.ts";
 * await using node = DatabaseNode.start({ database: new MemoryDatabase(), port: 54565 });
 * await node.ready();
 * ```
 */
export class DatabaseNode implements AsyncDisposable {
  #options: DatabaseNodeOptions;
  #db: Database;
  #endpoint: Endpoint;
  #status: NodeStatus = "connecting";
  #conn?: FramedConnection;
  #closing = false;
  /** Aborted by close(): ends the reconnect backoff and sync pauses at once. */
  #closed = new AbortController();
  #resetPending: boolean;
  #applied = 0;
  #tasks: Task[] = [];
  #working = false;
  /** A start of the work loop is queued for the end of this turn. */
  #workScheduled = false;
  #tombstones?: Map<string, number>;
  /** Effects of atomic operations, by seq, received while being synced. */
  #resolutions = new Map<number, Write[]>();
  /** Something arrived that the work loop must look at before it stops. */
  #workAgain = false;
  #syncId = 0;
  #sources = new Map<number, SyncSource>();
  #appliedWaiters: { seq: number; resolve: () => void }[] = [];
  #readyWaiters: PromiseWithResolvers<void>[] = [];
  #reads: NodeReads;
  #stopped = Promise.withResolvers<unknown>();
  #loop: Promise<void>;

  private constructor(options: DatabaseNodeOptions) {
    this.#options = options;
    this.#db = options.database;
    this.#reads = new NodeReads(options.database);
    this.#resetPending = options.reset ?? false;
    this.#endpoint = options.endpoint ?? {
      type: "tcp",
      hostname: options.hostname ?? "127.0.0.1",
      port: options.port ?? DEFAULT_PORT,
    };
    this.#loop = this.#run();
  }

  /**
   * Starts a node: it connects (and keeps reconnecting) in the background.
   *
   * @param options The backend, the router and the password.
   * @returns The node.
   * @example
   * ```ts ignore
   * import { DatabaseNode, MemoryDatabase } from "./mod.ts";
   * const node = DatabaseNode.start({ database: new MemoryDatabase(), port: 54565 });
   * await node.close();
   * ```
   */
  static start(options: DatabaseNodeOptions): DatabaseNode {
    return new DatabaseNode(options);
  }

  /** What the node is doing. */
  get status(): NodeStatus {
    return this.#status;
  }

  /** The highest sequence number applied. */
  get applied(): number {
    return this.#applied;
  }

  /**
   * Resolves when the node has stopped for good: with the error that stopped
   * it (wrong password, another cluster's data), or `undefined` after `close()`.
   */
  get stopped(): Promise<unknown> {
    return this.#stopped.promise;
  }

  /**
   * Waits until the node serves reads.
   *
   * @param options An abort signal.
   * @throws The error that stopped the node, if it stops first.
   */
  async ready(options?: { signal?: AbortSignal }): Promise<void> {
    if (this.#status === "ready") return;
    const waiter = Promise.withResolvers<void>();
    this.#readyWaiters.push(waiter);
    const signal = options?.signal;
    const onAbort = () => waiter.reject(signal?.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    const onStop = (reason: unknown) =>
      waiter.reject(reason ?? new ConnectionClosedError("The node stopped"));
    this.#stopped.promise.then(onStop);
    try {
      signal?.throwIfAborted();
      await waiter.promise;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /** Disconnects and closes the backend. Idempotent. */
  async close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      this.#closed.abort();
      this.#conn?.close();
    }
    await this.#loop;
  }

  /** Closes the node; for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #setStatus(status: NodeStatus): void {
    this.#status = status;
    if (status === "ready") {
      const waiters = this.#readyWaiters;
      this.#readyWaiters = [];
      for (const waiter of waiters) waiter.resolve();
    }
  }

  async #run(): Promise<void> {
    const backoff = this.#options.backoff ?? { min: 100, max: 5_000 };
    let delay = backoff.min;
    let fatal: unknown;
    while (!this.#closing) {
      this.#setStatus("connecting");
      let joined = false;
      try {
        joined = await this.#session();
      } catch (error) {
        if (isFatal(error)) {
          fatal = error;
          log.error("Database stopped: {reason}", {
            reason: (error as Error).message,
          });
          break;
        }
        if (!this.#closing) {
          log.warn("Connection to the router at {endpoint} failed: {reason}", {
            endpoint: describeEndpoint(this.#endpoint),
            reason: error instanceof Error ? error.message : String(error),
          });
        }
      }
      if (this.#closing) break;
      delay = joined ? backoff.min : Math.min(delay * 2, backoff.max);
      await sleep(delay, this.#closed.signal);
    }
    this.#setStatus("stopped");
    // Let queued work finish before the backend closes.
    await this.#idle();
    await this.#db.close();
    this.#stopped.resolve(fatal);
  }

  /** Resolves once no work loop (nor a join's preparation) is running. */
  async #idle(): Promise<void> {
    while (this.#working || this.#workScheduled) {
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** One connection's life. Returns whether it got as far as joining. */
  async #session(): Promise<boolean> {
    // The last connection's work loop may still be finishing a commit. Wait
    // for it before connecting again: the join must report what is really
    // stored, and two loops must never apply at once (the old one, ending,
    // would clear the new one's flag and let a third start; it could also
    // record a finished sync in the middle of the next one). The fault suite
    // found acknowledged writes lost that way.
    await this.#idle();
    const conn = new FramedConnection(
      await (this.#options.dial?.() ?? connectTransport(this.#endpoint)),
    );
    this.#conn = conn;
    if (this.#closing) conn.close();
    try {
      await handshake(conn, {
        role: Role.DATABASE,
        password: this.#options.password,
      });
      this.#setStatus("joining");
      const state = await this.#db.state();
      this.#applied = state.applied;
      log.debug(
        "Joining as node {node}: applied {applied}, complete {complete}",
        {
          node: toHex(state.nodeId),
          applied: state.applied,
          complete: state.complete,
        },
      );
      conn.send(encodeJoin({
        clusterId: state.clusterId,
        nodeId: state.nodeId,
        applied: state.applied,
        reset: this.#resetPending,
        complete: state.complete,
        volatile: this.#db.volatile,
      }));
      // A router recovering from a restart holds JOINED until enough of the
      // databases that were ready are back: wait as long as it may.
      let joinedFrame: Frame;
      while (true) {
        const frame = await conn.readFrame({ timeout: 5 * 60_000 });
        if (frame.opcode !== Opcode.PING) {
          joinedFrame = expect(frame, Opcode.JOINED);
          break;
        }
        // The router checks on us while it holds the join.
        conn.send(encodeU64(Opcode.PONG, frame.id, 0));
      }
      const joined = decodeJoined(joinedFrame.payload);
      log.info("Joined the router at {endpoint} ({mode}, writes from {from})", {
        endpoint: describeEndpoint(this.#endpoint),
        mode: ["ready", "replay", "full sync"][joined.mode] ?? joined.mode,
        from: joined.from,
      });
      this.#tasks = [];
      this.#sources.clear();
      this.#reads.reset();
      // Start with the join itself, before any write that follows it.
      this.#working = true;
      const prepared = this.#prepare(joined.mode, joined.clusterId, joined.from)
        .finally(() => this.#working = false);
      let lastSeen = performance.now();
      conn.setHandler((frame) => {
        lastSeen = taskNow();
        try {
          this.#onFrame(conn, frame);
        } catch (error) {
          const reason = toKvndbError(error);
          log.error("Leaving the router: {reason}", { reason: reason.message });
          conn.fail(reason);
        }
      });
      await prepared;
      this.#work(conn);
      const timeout = this.#options.heartbeatTimeout ?? 10_000;
      let progress = { applied: this.#applied, at: performance.now() };
      const watchdog = setInterval(() => {
        const now = performance.now();
        if (this.#applied !== progress.applied || this.#tasks.length === 0) {
          progress = { applied: this.#applied, at: now };
        } else if (now - progress.at > 5_000) {
          // Queued work that has not moved for 5 s: say where it stands.
          progress.at = now;
          log.warn(
            "No progress for 5 s: applied {applied}, {tasks} tasks queued (first: {first}), working {working}, applying up to {applying}",
            {
              applied: this.#applied,
              tasks: this.#tasks.length,
              first: this.#tasks[0]?.kind,
              working: this.#working,
              applying: this.#reads.applyingUpTo,
            },
          );
        }
        if (now - lastSeen > timeout) {
          log.warn("The router has been silent for {ms} ms: reconnecting", {
            ms: timeout,
          });
          conn.close();
        }
      }, Math.min(1_000, timeout));
      try {
        const reason = await conn.closed;
        if (reason instanceof KvndbError && isFatal(reason)) throw reason;
        if (reason !== undefined && !this.#closing) {
          log.warn("Disconnected from the router: {reason}", {
            reason: reason instanceof Error ? reason.message : String(reason),
          });
        }
      } finally {
        clearInterval(watchdog);
        for (const source of this.#sources.values()) source.wake?.();
        this.#sources.clear();
      }
      return true;
    } catch (error) {
      if (error instanceof ConnectionClosedError) {
        const cause = error.cause;
        if (isFatal(cause)) throw cause;
      }
      throw error;
    } finally {
      conn.close();
    }
  }

  async #prepare(mode: number, clusterId: Uint8Array, from: number) {
    const state = await this.#db.state();
    this.#syncId = 0;
    this.#resolutions.clear();
    if (mode === JoinMode.FULL_SYNC) {
      this.#setStatus("syncing");
      this.#applied = from - 1;
      // Mark the data incomplete before touching it: a crash in the middle
      // of clearing must not leave a half-empty store that claims to be whole.
      await this.#db.setState({
        ...state,
        clusterId: clusterId.slice(),
        applied: this.#applied,
        complete: false,
      });
      await this.#db.clear();
      this.#tombstones = new Map();
      log.info("Cleared; receiving a full copy (writes from {from} on)", {
        from,
      });
      return;
    }
    this.#tombstones = undefined;
    const sameCluster = equalBytes(state.clusterId, clusterId);
    // READY may place the node ahead of its data when no other database could
    // copy what it missed (the router has logged that): adopt the position.
    const applied = mode === JoinMode.READY ? from - 1 : state.applied;
    if (!sameCluster || applied !== state.applied) {
      this.#applied = applied;
      await this.#db.setState({
        ...state,
        clusterId: clusterId.slice(),
        applied,
      });
      // A sync source asked for before this position was taken can start now.
      this.#wakeAppliedWaiters();
    }
    this.#resetPending = false;
    this.#setStatus(mode === JoinMode.REPLAY ? "replaying" : "ready");
  }

  #onFrame(conn: FramedConnection, frame: Frame): void {
    switch (frame.opcode) {
      case Opcode.WRITE:
        this.#enqueue(conn, {
          kind: "write",
          write: decodeWrite(frame.payload),
        });
        return;
      case Opcode.GET:
      case Opcode.KEYS:
      case Opcode.COUNT:
      case Opcode.EXPIRED:
      case Opcode.RANGE:
      case Opcode.DIGEST:
        this.#reads.take(conn, frame);
        return;
      case Opcode.PING:
        conn.send(encodeU64(Opcode.PONG, frame.id, this.#reads.countKeys()));
        return;
      case Opcode.PONG:
        return;
      case Opcode.READY:
        // The router now sends this database reads and counts its acknowledgements.
        this.#setStatus("ready");
        return;
      case Opcode.SYNC_CHUNK:
        if (frame.id !== this.#syncId && this.#syncId !== 0) {
          throw new ProtocolError(`SYNC_CHUNK for unknown sync ${frame.id}`);
        }
        this.#syncId = frame.id;
        this.#enqueue(conn, {
          kind: "chunk",
          id: frame.id,
          entries: decodeSyncChunk(frame.payload),
        });
        return;
      case Opcode.SYNC_END:
        if (this.#sources.has(frame.id)) {
          // The router cancels a sync this node was the source of.
          const source = this.#sources.get(frame.id)!;
          this.#sources.delete(frame.id);
          source.wake?.();
        } else if (this.#status === "ready") {
          // A cancel for a sync this node already finished streaming as a
          // source: nothing to do (a ready node is never a sync target).
          return;
        } else if (this.#syncId === 0 || this.#syncId === frame.id) {
          this.#enqueue(conn, { kind: "end", id: frame.id });
        } else {
          throw new ProtocolError(`SYNC_END for unknown sync ${frame.id}`);
        }
        return;
      case Opcode.SNAPSHOT:
        this.#stream(conn, frame.id, decodeU64(frame.payload, "SNAPSHOT"));
        return;
      case Opcode.RESOLVED: {
        // What a database with every write found for an atomic operation
        // this node, being synced, cannot evaluate itself.
        const { seq, effects } = decodeResolved(frame.payload);
        if (seq <= this.#applied) return;
        // Copy: the effects view the frame, and may wait in the map.
        this.#resolutions.set(
          seq,
          effects.map((write) => ({
            ...write,
            key: write.key.slice(),
            value: write.value?.slice(),
          })),
        );
        // The work loop may be on its way out after finding none: it looks
        // again before it stops.
        this.#workAgain = true;
        if (!this.#working) this.#work(conn);
        return;
      }
      case Opcode.SYNC_ACK: {
        const source = this.#sources.get(frame.id);
        if (source !== undefined) {
          source.acks++;
          source.wake?.();
        }
        return;
      }
      case Opcode.ERROR: {
        expect(frame, Opcode.PONG);
        return;
      }
      default:
        throw new ProtocolError(
          `Unexpected ${opcodeName(frame.opcode)} frame from the router`,
        );
    }
  }

  // ------------------------------------------------------------ applying

  #enqueue(conn: FramedConnection, task: Task): void {
    this.#tasks.push(task);
    // Start after the frames of this read are all queued, so that they form
    // one batch (one commit, one APPLIED), not the first alone and then the
    // rest.
    if (!this.#working && !this.#workScheduled) {
      this.#workScheduled = true;
      queueMicrotask(() => {
        this.#workScheduled = false;
        this.#work(conn);
      });
    }
  }

  /** Applies queued work strictly in order, grouping consecutive writes. */
  async #work(conn: FramedConnection): Promise<void> {
    if (this.#working) return;
    this.#working = true;
    this.#workAgain = false;
    try {
      while (this.#tasks.length > 0 && !conn.isClosed) {
        const task = this.#tasks[0]!;
        // Being synced, this node cannot evaluate an atomic operation: it
        // waits for its effects (RESOLVED), alone.
        if (
          task.kind === "write" && task.write.op === WriteOp.ATOMIC &&
          this.#tombstones !== undefined
        ) {
          if (!await this.#applyResolved(conn, task.write)) break;
        } else if (task.kind === "write") {
          await this.#applyBatch(conn);
        } else if (task.kind === "chunk") {
          this.#tasks.shift();
          const tombstones = this.#tombstones;
          // No deletes during the sync (the usual case): nothing to filter.
          const entries = tombstones === undefined || tombstones.size === 0
            ? task.entries
            : task.entries.filter((entry) =>
              (tombstones.get(toBinary(entry.key)) ?? -1) < entry.version
            );
          await this.#db.merge(entries);
          const pauseSeconds = this.#options.resetSleep ?? 0;
          if (pauseSeconds > 0) {
            await sleep(pauseSeconds * 1000, this.#closed.signal);
          }
          conn.send(encodeOpaque(Opcode.SYNC_ACK, task.id));
        } else {
          this.#tasks.shift();
          this.#tombstones = undefined;
          this.#resolutions.clear();
          this.#syncId = 0;
          await this.#db.setState({
            ...(await this.#db.state()),
            applied: this.#applied,
            complete: true,
          });
          this.#resetPending = false;
          this.#reads.recount();
          log.info("Sync complete at sequence {applied}", {
            applied: this.#applied,
          });
          // Ready once the router says so (READY), not before.
          conn.send(encodeOpaque(Opcode.SYNC_END, task.id));
        }
      }
    } catch (error) {
      const reason = toKvndbError(error);
      log.error("Applying failed: {reason}", {
        reason: reason.code === ErrorCode.INTERNAL
          ? String(error)
          : reason.message,
      });
      this.#tasks = [];
      conn.fail(reason);
    } finally {
      this.#working = false;
    }
    if (this.#workAgain && this.#tasks.length > 0 && !conn.isClosed) {
      this.#work(conn);
    }
  }

  /** Tells the router what is applied, then sends the answers held for it. */
  #reportApplied(conn: FramedConnection): void {
    conn.send(encodeU64(Opcode.APPLIED, 0, this.#applied));
    this.#reads.release(conn);
    this.#wakeAppliedWaiters();
  }

  /**
   * Applies consecutive queued writes as one batch (one commit, one
   * APPLIED), atomic operations among them evaluated here against the state
   * the batch leaves before them; their OUTCOMEs go just before the APPLIED.
   */
  async #applyBatch(conn: FramedConnection): Promise<void> {
    const batch: Write[] = [];
    const outcomes: Uint8Array[] = [];
    // What the batch has written so far, by key, once an atomic operation
    // needs to read through it.
    let overlay: Map<string, StoredEntry | null> | undefined;
    const maxBatch = this.#options.maxBatch ?? 4096;
    let next = this.#applied + 1;
    let count = 0;
    while (count < this.#tasks.length && batch.length < maxBatch) {
      const task = this.#tasks[count]!;
      if (task.kind !== "write") break;
      const write = task.write;
      if (write.seq < next) { // Already have it.
        count++;
        continue;
      }
      if (write.seq !== next) {
        throw new ProtocolError(
          `Write ${write.seq} arrived where ${next} was expected`,
        );
      }
      if (write.op === WriteOp.ATOMIC) {
        if (this.#tombstones !== undefined) break;
        const seen = overlay ??= overlayOf(batch);
        const db = this.#db;
        const evaluated = await evaluate(
          write.seq,
          write.flags ?? 0,
          write.steps!,
          (key, id) => {
            const entry = seen.get(id);
            if (entry !== undefined) return entry;
            return db.getNow !== undefined ? db.getNow(key) : db.get(key);
          },
          write.now,
        );
        const { effects, ids } = evaluated;
        for (let i = 0; i < effects.length; i++) {
          const effect = effects[i]!;
          batch.push(effect);
          seen.set(
            ids[i]!,
            effect.op === WriteOp.SET
              ? {
                value: effect.value!,
                version: effect.seq,
                expiresAt: effect.expiresAt,
              }
              : null,
          );
        }
        outcomes.push(encodeOutcome({
          seq: write.seq,
          reply: encodeAtomicReplyPayload(evaluated.reply),
          effects: evaluated.effects,
        }));
      } else {
        batch.push(write);
        if (overlay !== undefined) remember(overlay, write);
      }
      count++;
      next++;
    }
    this.#tasks.splice(0, count);
    const upTo = next - 1;
    if (upTo <= this.#applied) return;
    // Also with no write: atomic operations that wrote nothing move the
    // stored position too, or a restart would join below what was reported.
    this.#reads.applyingUpTo = upTo;
    try {
      await this.#db.apply(batch, upTo);
    } finally {
      this.#reads.applyingUpTo = 0;
    }
    this.#addTombstones(batch);
    this.#applied = upTo;
    for (const outcome of outcomes) conn.send(outcome);
    this.#reportApplied(conn);
  }

  /**
   * Applies the atomic operation at the head of the queue, on a node being
   * synced, as a database with every write evaluated it. `false` when that
   * is not known yet: the work stops until RESOLVED brings it.
   */
  async #applyResolved(
    conn: FramedConnection,
    write: Write,
  ): Promise<boolean> {
    if (write.seq <= this.#applied) {
      this.#tasks.shift();
      return true;
    }
    if (write.seq !== this.#applied + 1) {
      throw new ProtocolError(
        `Write ${write.seq} arrived where ${this.#applied + 1} was expected`,
      );
    }
    const effects = this.#resolutions.get(write.seq);
    if (effects === undefined) return false;
    this.#resolutions.delete(write.seq);
    this.#tasks.shift();
    // One apply: writes sharing a seq commit together.
    this.#reads.applyingUpTo = write.seq;
    try {
      await this.#db.apply(effects, write.seq);
    } finally {
      this.#reads.applyingUpTo = 0;
    }
    this.#addTombstones(effects);
    this.#applied = write.seq;
    this.#reportApplied(conn);
    return true;
  }

  /** While being synced, deletes are remembered: older copies must not return. */
  #addTombstones(writes: Write[]): void {
    if (this.#tombstones === undefined) return;
    for (const write of writes) {
      if (write.op === WriteOp.DELETE) {
        this.#tombstones.set(toBinary(write.key), write.seq);
      }
    }
  }

  #wakeAppliedWaiters(): void {
    if (this.#appliedWaiters.length === 0) return;
    const kept = [];
    for (const waiter of this.#appliedWaiters) {
      if (waiter.seq <= this.#applied) waiter.resolve();
      else kept.push(waiter);
    }
    this.#appliedWaiters = kept;
  }

  // ------------------------------------------------------------ sync source

  /** Streams this node's data for a sync, once it has applied `from`. */
  async #stream(
    conn: FramedConnection,
    id: number,
    from: number,
  ): Promise<void> {
    const source: SyncSource = { acks: 0 };
    this.#sources.set(id, source);
    const active = () => this.#sources.get(id) === source && !conn.isClosed;
    try {
      while (this.#applied < from && active()) {
        // A cancel wakes this wait too; an acknowledgement relayed late from
        // an earlier source of the same sync must not start the stream, so
        // the position is checked again.
        await new Promise<void>((resolve) => {
          this.#appliedWaiters.push({ seq: from, resolve });
          source.wake = resolve;
        });
      }
      if (!active()) return;
      await streamSnapshot(conn, this.#db, id, {
        source,
        active,
        chunkBytes: this.#options.syncChunkBytes ?? 256 * 1024,
      });
    } catch (error) {
      log.error("Streaming sync {id} failed: {error}", {
        id,
        error: String(error),
      });
      conn.fail(toKvndbError(error));
    } finally {
      if (this.#sources.get(id) === source) this.#sources.delete(id);
    }
  }
}

/** The state a batch of writes leaves, by key. */
function overlayOf(batch: Write[]): Map<string, StoredEntry | null> {
  const overlay = new Map<string, StoredEntry | null>();
  for (const write of batch) remember(overlay, write);
  return overlay;
}

function remember(
  overlay: Map<string, StoredEntry | null>,
  write: Write,
): void {
  overlay.set(
    toBinary(write.key),
    write.op === WriteOp.SET
      ? { value: write.value!, version: write.seq }
      : null,
  );
}
