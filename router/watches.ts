/**
 * Watches: the changes the router's write stream makes, sent to the clients
 * that asked (WATCH), from a version on. Changes come from the backlog (the
 * WRITE frames it keeps) and, for atomic operations, from the effects the
 * first database that evaluated each reported; they are sent in version
 * order once acknowledged, so a watcher that resumes from the last version
 * it saw misses nothing while the backlog still holds it. See
 * `docs/architecture.md`, "Watches".
 *
 * @module
 */

import {
  binaryString,
  type Change,
  changeSize,
  decodeEffects,
  decodeFrame,
  decodeWrite,
  encodeChanges,
  ErrorCode,
  KvndbError,
  type WatchRequest,
  WriteOp,
} from "../protocol/mod.ts";
import type { ClientSession } from "./_links.ts";
import type { Backlog } from "./backlog.ts";

/** Bytes of changes in one CHANGES frame, at most (one change may pass it alone). */
const BATCH_BYTES = 256 * 1024;
/**
 * Bytes a watcher's connection may have unsent before the watch is ended:
 * a watcher that does not read must not grow the router's memory.
 */
export const MAX_WATCH_BACKLOG_BYTES = 8 * 1024 * 1024;

interface Watcher {
  client: ClientSession;
  id: number;
  prefix: string;
  keys?: Set<string>;
}

function startsWith(key: Uint8Array, prefix: string): boolean {
  if (key.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) {
    if (key[i] !== prefix.charCodeAt(i)) return false;
  }
  return true;
}

/** The router's watches, and what they need of the write stream. */
export class Watches {
  #backlog: () => Backlog;
  #watchers = new Set<Watcher>();
  /** The encoded effects of recent atomic operations, by seq. */
  #effects = new Map<number, Uint8Array>();
  /** Their seqs, oldest first from `#effectsHead`: what to forget first. */
  #effectsOrder: number[] = [];
  #effectsHead = 0;
  /** Atomic operations numbered whose effects are not known yet. */
  #unknown = new Set<number>();
  /**
   * The same, in numbering order from `#unknownHead`, resolved ones left in
   * place and skipped: the oldest is found without walking a Set whose
   * first entries were deleted (which V8 walks past one by one).
   */
  #unknownOrder: number[] = [];
  #unknownHead = 0;
  /** Every change up to here has been sent to the watchers. */
  #sent = 0;
  /** The highest sequence number acknowledged to a client. */
  #acknowledged = 0;

  /**
   * @param backlog The router's backlog (which the sequencer may replace).
   * @param position The router's position when watches start.
   */
  constructor(backlog: () => Backlog, position: number) {
    this.#backlog = backlog;
    this.#sent = position;
  }

  /** How many watches are open. */
  get size(): number {
    return this.#watchers.size;
  }

  /** An atomic operation was numbered: changes wait for its effects. */
  numbered(seq: number): void {
    this.#unknown.add(seq);
    this.#unknownOrder.push(seq);
  }

  /** The first OUTCOME of `seq` arrived: its encoded effects (copied). */
  resolved(seq: number, effects: Uint8Array): void {
    if (!this.#unknown.delete(seq)) return;
    this.#effects.set(seq, effects.slice());
    this.#effectsOrder.push(seq);
    const dropped = this.#backlog().dropped;
    const order = this.#effectsOrder;
    while (
      this.#effectsHead < order.length && order[this.#effectsHead]! <= dropped
    ) {
      this.#effects.delete(order[this.#effectsHead++]!);
    }
    if (this.#effectsHead > 4096 && this.#effectsHead * 2 > order.length) {
      this.#effectsOrder = order.slice(this.#effectsHead);
      this.#effectsHead = 0;
    }
    this.advance(this.#acknowledged);
  }

  /**
   * The router gave up waiting for an operation's effects (its databases
   * are gone): its changes are unknown, so watches past it must end.
   */
  lost(seq: number): void {
    if (!this.#unknown.delete(seq)) return;
    for (const watcher of this.#watchers) {
      this.#end(
        watcher,
        new KvndbError(
          ErrorCode.UNAVAILABLE,
          `The changes of write ${seq} were lost with the databases that made them: read the keys again and watch from now`,
        ),
      );
    }
  }

  /** The router adopted another position (a restart, a reset): watches end. */
  reset(position: number): void {
    this.#sent = Math.max(this.#sent, position);
    this.#acknowledged = this.#sent;
    this.#unknown.clear();
    this.#unknownOrder = [];
    this.#unknownHead = 0;
    this.#effects.clear();
    this.#effectsOrder = [];
    this.#effectsHead = 0;
    for (const watcher of this.#watchers) {
      this.#end(
        watcher,
        new KvndbError(
          ErrorCode.UNAVAILABLE,
          "The router moved to another position: read the keys again and watch from now",
        ),
      );
    }
  }

  /** A write up to `seq` was acknowledged: send what is complete up to it. */
  advance(seq: number): void {
    if (seq > this.#acknowledged) this.#acknowledged = seq;
    let target = this.#acknowledged;
    const oldest = this.#oldestUnknown();
    if (oldest !== undefined && oldest <= target) target = oldest - 1;
    if (target <= this.#sent) return;
    if (this.#watchers.size > 0) {
      const changes = this.#changes(this.#sent, target);
      for (const watcher of this.#watchers) {
        this.#send(watcher, changes, target);
      }
    }
    this.#sent = target;
  }

  /**
   * Opens a watch: the changes after `request.from` that the backlog still
   * holds, then every new one.
   *
   * @throws {KvndbError} `INVALID_ARGUMENT` when `from` is ahead of the
   *   router, `UNAVAILABLE` when the backlog no longer holds it.
   */
  watch(client: ClientSession, id: number, request: WatchRequest): void {
    const watcher: Watcher = {
      client,
      id,
      prefix: binaryString(request.prefix),
      ...(request.keys === undefined
        ? {}
        : { keys: new Set(request.keys.map(binaryString)) }),
    };
    const from = request.from === 0 ? this.#sent : request.from;
    if (from > this.#sent) {
      throw new KvndbError(
        ErrorCode.INVALID_ARGUMENT,
        `Cannot watch from version ${from}: the router has sent changes up to ${this.#sent}`,
      );
    }
    const backlog = this.#backlog();
    if (!backlog.covers(from)) {
      throw new KvndbError(
        ErrorCode.UNAVAILABLE,
        `Cannot watch from version ${from}: the router keeps changes after ${backlog.dropped} only; read the keys again and watch from now`,
      );
    }
    this.#watchers.add(watcher);
    // The confirmation (maybe empty), then live changes.
    this.#send(watcher, this.#changes(from, this.#sent), this.#sent, true);
  }

  /** Ends a client's watch (UNWATCH, or the client left). */
  unwatch(client: ClientSession, id?: number): void {
    for (const watcher of this.#watchers) {
      if (
        watcher.client === client && (id === undefined || watcher.id === id)
      ) {
        this.#watchers.delete(watcher);
      }
    }
  }

  /** Ends every watch: the router is closing. */
  close(): void {
    for (const watcher of this.#watchers) {
      this.#end(
        watcher,
        new KvndbError(ErrorCode.CLOSED, "The router is closing"),
      );
    }
  }

  /** The oldest atomic operation whose effects are unknown, if any. */
  #oldestUnknown(): number | undefined {
    const order = this.#unknownOrder;
    while (
      this.#unknownHead < order.length &&
      !this.#unknown.has(order[this.#unknownHead]!)
    ) this.#unknownHead++;
    if (this.#unknownHead > 4096 && this.#unknownHead * 2 > order.length) {
      this.#unknownOrder = order.slice(this.#unknownHead);
      this.#unknownHead = 0;
    }
    return this.#unknownOrder[this.#unknownHead];
  }

  /** The changes of the writes after `from`, up to `to`. */
  #changes(from: number, to: number): Change[] {
    const changes: Change[] = [];
    for (const frame of this.#backlog().after(from)) {
      const write = decodeWrite(decodeFrame(frame)!.frame.payload);
      if (write.seq > to) break;
      if (write.op === WriteOp.ATOMIC) {
        const effects = this.#effects.get(write.seq);
        if (effects === undefined) continue;
        for (const effect of decodeEffects(effects, write.seq)) {
          changes.push({
            version: write.seq,
            key: effect.key,
            value: effect.op === WriteOp.SET ? effect.value! : null,
            ...(effect.expiresAt === undefined
              ? {}
              : { expiresAt: effect.expiresAt }),
          });
        }
      } else {
        changes.push({
          version: write.seq,
          key: write.key,
          value: write.op === WriteOp.SET ? write.value! : null,
        });
      }
    }
    return changes;
  }

  /** Sends a watcher the changes it follows, in frames of bounded size. */
  #send(
    watcher: Watcher,
    changes: Change[],
    upTo: number,
    always = false,
  ): void {
    const conn = watcher.client.conn;
    if (conn.isClosed) {
      this.#watchers.delete(watcher);
      return;
    }
    const buffered = (conn as { bufferedBytes?: number }).bufferedBytes ?? 0;
    if (buffered > MAX_WATCH_BACKLOG_BYTES) {
      this.#end(
        watcher,
        new KvndbError(
          ErrorCode.TOO_LARGE,
          `The watch fell more than ${MAX_WATCH_BACKLOG_BYTES} bytes behind and was ended: read the changes faster, then watch again from the last version seen`,
        ),
      );
      return;
    }
    let batch: Change[] = [];
    let bytes = 0;
    for (const change of changes) {
      const key = change.key;
      if (
        watcher.keys !== undefined
          ? !watcher.keys.has(binaryString(key))
          : !startsWith(key, watcher.prefix)
      ) continue;
      const size = changeSize(change);
      if (batch.length > 0 && bytes + size > BATCH_BYTES) {
        // Covered up to the version before the last one sent: the rest of
        // an atomic operation's changes may follow in the next frame.
        conn.send(
          encodeChanges(watcher.id, {
            upTo: batch.at(-1)!.version - 1,
            changes: batch,
          }),
        );
        batch = [];
        bytes = 0;
      }
      batch.push(change);
      bytes += size;
    }
    if (batch.length > 0 || always) {
      conn.send(encodeChanges(watcher.id, { upTo, changes: batch }));
    }
  }

  #end(watcher: Watcher, error: KvndbError): void {
    this.#watchers.delete(watcher);
    if (!watcher.client.conn.isClosed) {
      watcher.client.conn.sendError(watcher.id, error);
    }
  }
}
