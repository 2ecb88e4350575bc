/**
 * Full syncs: which database copies to which, the frames relayed between
 * them, restarts when a source leaves, and progress. See
 * `docs/architecture.md`, "Sync".
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import {
  encodeOpaque,
  encodeSnapshot,
  encodeU64,
  type Frame,
  Opcode,
} from "../protocol/mod.ts";
import type { DatabaseLink } from "./_links.ts";
import { pick } from "./balancer.ts";

const log = getLogger(["kvndb", "router"]);

/** Options for {@linkcode Syncs}. */
export interface SyncsOptions {
  /** The router's position: a source snapshots once it has applied it. */
  seq(): number;
  /** A target merged everything it was sent: it is complete. */
  finished(db: DatabaseLink): void;
}

/** How often each sync's progress is logged, in ms. */
const REPORT_EVERY = 2_000;

/**
 * The router's full syncs. A target (admitted in full-sync mode) gets a
 * snapshot from one ready source, relayed chunk by chunk with the target's
 * acknowledgements relayed back, so a slow target slows its source and
 * nothing piles up in the router.
 *
 * @example
 * ```ts ignore
 * const syncs = new Syncs(databases, { seq: () => sequencer.seq, finished });
 * syncs.start(target, readySources);
 * ```
 */
export class Syncs {
  #databases: Map<number, DatabaseLink>;
  #options: SyncsOptions;
  #nextId = 1;

  /**
   * Creates the sync bookkeeping over the router's databases.
   *
   * @param databases The router's connected databases (shared, not copied).
   * @param options Where the router stands, and what to do when one ends.
   */
  constructor(databases: Map<number, DatabaseLink>, options: SyncsOptions) {
    this.#databases = databases;
    this.#options = options;
  }

  /**
   * Starts the sync of `db`, already admitted in full-sync mode at `from`,
   * from one of `sources`. With no source and no reason to wait for one, the
   * sync is empty: the database still records that it is complete.
   */
  start(
    db: DatabaseLink,
    from: number,
    sources: DatabaseLink[],
    waitForSource = false,
  ): void {
    const now = performance.now();
    db.sync = {
      id: this.#nextId++,
      from,
      keys: 0,
      bytes: 0,
      started: now,
      sourceKeys: 0,
      lastReport: now,
    };
    if (sources.length === 0 && !waitForSource) {
      db.conn.send(encodeU64(Opcode.SYNC_END, db.sync.id, 0));
      return;
    }
    this.#request(db, sources);
  }

  /** Syncs that lost their source start again from one of `ready`. */
  startWaiting(ready: DatabaseLink[]): void {
    if (ready.length === 0) return;
    for (const db of this.#databases.values()) {
      if (db.sync !== undefined && db.sync.source === undefined) {
        this.#request(db, ready);
      }
    }
  }

  /** Handles SYNC_CHUNK, SYNC_ACK or SYNC_END from `db`. */
  onFrame(db: DatabaseLink, frame: Frame): void {
    switch (frame.opcode) {
      case Opcode.SYNC_CHUNK:
        return this.#onChunk(db, frame);
      case Opcode.SYNC_ACK:
        return this.#onAck(db, frame);
      case Opcode.SYNC_END:
        return this.#onEnd(db, frame);
    }
  }

  /**
   * `db` left: the syncs it was the source of restart from one of `ready`,
   * and if it was a target, its source stops.
   */
  left(db: DatabaseLink, ready: DatabaseLink[]): void {
    for (const id of db.sourcing) {
      const target = this.#target(id);
      if (target === undefined) continue;
      log.warn("Sync source {peer} left: restarting the sync of {target}", {
        peer: db.conn.peer,
        target: target.conn.peer,
      });
      this.#request(target, ready);
    }
    if (db.sync?.source !== undefined) {
      db.sync.source.sourcing.delete(db.sync.id);
      db.sync.source.conn.send(encodeOpaque(Opcode.SYNC_END, db.sync.id));
    }
  }

  /** Logs the progress of each sync every few seconds. */
  report(now: number): void {
    for (const db of this.#databases.values()) {
      const sync = db.sync;
      if (sync === undefined || now - sync.lastReport < REPORT_EVERY) continue;
      sync.lastReport = now;
      log.info(
        "Sync {id} to {peer}: {keys} keys ({rate} keys/s, {percent}% of about {total})",
        {
          id: sync.id,
          peer: db.conn.peer,
          keys: sync.keys,
          rate: Math.round(sync.keys / elapsed(sync.started, now)),
          percent: sync.sourceKeys > 0 ? percent(db) : "?",
          total: sync.sourceKeys,
        },
      );
    }
  }

  #request(target: DatabaseLink, sources: DatabaseLink[]): void {
    const sync = target.sync!;
    if (sources.length === 0) {
      log.warn("No database can sync {peer}: waiting for one", {
        peer: target.conn.peer,
      });
      sync.source = undefined;
      return;
    }
    const source = pick(sources, "least-loaded");
    const seq = this.#options.seq();
    sync.source = source;
    sync.sourceKeys = source.keys;
    source.sourcing.add(sync.id);
    // The source starts once it has applied the current position, so that a
    // delete it has not applied yet cannot be copied as a live key.
    source.conn.send(encodeSnapshot(sync.id, seq));
    log.info(
      "Syncing {target} from {source} (sync {id}, from sequence {seq})",
      {
        target: target.conn.peer,
        source: source.conn.peer,
        id: sync.id,
        seq,
      },
    );
  }

  #target(id: number): DatabaseLink | undefined {
    for (const db of this.#databases.values()) {
      if (db.sync?.id === id) return db;
    }
    return undefined;
  }

  #onChunk(source: DatabaseLink, frame: Frame): void {
    const target = this.#target(frame.id);
    if (target === undefined || target.sync!.source !== source) return;
    const sync = target.sync!;
    // Count entries without decoding them all: the count is the first field.
    if (frame.payload.length >= 4) {
      sync.keys += new DataView(
        frame.payload.buffer,
        frame.payload.byteOffset,
        4,
      ).getUint32(0);
    }
    sync.bytes += frame.payload.length;
    target.conn.send(encodeOpaque(Opcode.SYNC_CHUNK, frame.id, frame.payload));
  }

  #onAck(db: DatabaseLink, frame: Frame): void {
    const target = this.#target(frame.id);
    const source = target?.sync?.source;
    if (source === undefined || target !== db) return;
    source.conn.send(encodeOpaque(Opcode.SYNC_ACK, frame.id));
  }

  #onEnd(db: DatabaseLink, frame: Frame): void {
    if (db.sync?.id === frame.id) {
      // The target has merged everything: it is complete.
      db.sync = undefined;
      this.#options.finished(db);
      return;
    }
    const target = this.#target(frame.id);
    if (target === undefined || target.sync!.source !== db) return;
    db.sourcing.delete(frame.id);
    target.conn.send(encodeOpaque(Opcode.SYNC_END, frame.id, frame.payload));
    const sync = target.sync!;
    const seconds = elapsed(sync.started, performance.now());
    log.info(
      "Sync {id} streamed {keys} keys to {peer} in {seconds} s ({rate} keys/s)",
      {
        id: frame.id,
        keys: sync.keys,
        peer: target.conn.peer,
        seconds: seconds.toFixed(2),
        rate: Math.round(sync.keys / seconds),
      },
    );
  }
}

/**
 * How far `db`'s sync is, in percent of the keys its source had when it
 * started (0 when that is unknown).
 *
 * @example
 * ```ts ignore
 * percent(db); // 42
 * ```
 */
export function percent(db: DatabaseLink): number {
  const sync = db.sync;
  if (sync === undefined || sync.sourceKeys <= 0) return 0;
  return Math.min(100, Math.round(100 * sync.keys / sync.sourceKeys));
}

/** Seconds since `started`, never zero (it divides). */
function elapsed(started: number, now: number): number {
  return Math.max((now - started) / 1000, 0.001);
}
