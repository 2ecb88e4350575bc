/**
 * The router's databases, from connection to departure: their frames, their
 * joins (the plan of `join_policy.ts` carried out), when each becomes ready,
 * what their departure changes, and their heartbeats. The steps here cross
 * the router's parts (sequencer, member record, recovery, write path, reads,
 * syncs); this is the one place that orders them for a database.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import {
  decodeJoin,
  decodeU64,
  encodeJoined,
  encodeOpaque,
  equalBytes,
  ErrorCode,
  type Frame,
  type FramedConnection,
  type Join,
  JoinMode,
  KvndbError,
  Opcode,
  opcodeName,
  ProtocolError,
  randomBytes,
  taskNow,
  TimeoutError,
  toHex,
  toKvndbError,
} from "../protocol/mod.ts";
import type { Recovered, Recovery } from "./recovery.ts";
import type { Syncs } from "./syncs.ts";
import { DatabaseLink, describeReason } from "./_links.ts";
import type { WritePath } from "./write_path.ts";
import type { Reads } from "./reads.ts";
import { planJoin } from "./join_policy.ts";
import type { Sequencer } from "./sequencer.ts";
import type { MemberRecord } from "./member_record.ts";

const log = getLogger(["kvndb", "router"]);

/** The parts a database's steps go through. */
export interface DatabasesParts {
  sequencer: Sequencer;
  record: MemberRecord;
  recovery: Recovery;
  writePath: WritePath;
  reads: Reads;
  syncs: Syncs;
  /** A backlog larger than half of this is not replayed: full sync instead. */
  maxBufferedBytes: number;
  heartbeatInterval: number;
  heartbeatTimeout: number;
}

/**
 * The connected databases and the cluster they hold.
 *
 * @example
 * ```ts ignore
 * const databases = new Databases(links, parts);
 * databases.add(conn); // a database connection past the handshake
 * ```
 */
export class Databases {
  /** The cluster's id: from the state file, the first database, or new. */
  clusterId?: Uint8Array;
  #databases: Map<number, DatabaseLink>;
  #nextDatabaseId = 1;
  #sequencer: Sequencer;
  #record: MemberRecord;
  #recovery: Recovery;
  #writePath: WritePath;
  #reads: Reads;
  #syncs: Syncs;
  #maxBufferedBytes: number;
  #heartbeatInterval: number;
  #heartbeatTimeout: number;

  /**
   * @param links The map of links, shared with the parts that read it.
   * @param parts The router's parts.
   */
  constructor(links: Map<number, DatabaseLink>, parts: DatabasesParts) {
    this.#databases = links;
    this.#sequencer = parts.sequencer;
    this.#record = parts.record;
    this.#recovery = parts.recovery;
    this.#writePath = parts.writePath;
    this.#reads = parts.reads;
    this.#syncs = parts.syncs;
    this.#maxBufferedBytes = parts.maxBufferedBytes;
    this.#heartbeatInterval = parts.heartbeatInterval;
    this.#heartbeatTimeout = parts.heartbeatTimeout;
  }

  /** Pings databases due a heartbeat; drops one silent for too long. */
  heartbeat(now: number): void {
    for (const db of this.#databases.values()) {
      if (now - db.lastSeen > this.#heartbeatTimeout) {
        log.warn("Database {peer} silent for {ms} ms: dropping it", {
          peer: db.conn.peer,
          ms: Math.round(now - db.lastSeen),
        });
        db.conn.fail(new TimeoutError("Heartbeat timed out"));
        continue;
      }
      if (now - db.lastPing >= this.#heartbeatInterval) {
        db.lastPing = now;
        db.conn.send(encodeOpaque(Opcode.PING, 0));
      }
    }
  }

  #hasPendingDatabase(): boolean {
    for (const db of this.#databases.values()) {
      if (db.state !== "joining") return true;
    }
    return false;
  }

  add(conn: FramedConnection): void {
    // Always hear a database out (acknowledgements, answers): if both sides
    // stopped reading while their output piled up, they would deadlock. What
    // it does not read is bounded by maxBufferedBytes instead.
    conn.highWaterMark = Infinity;
    const db = new DatabaseLink(this.#nextDatabaseId++, conn);
    this.#databases.set(db.id, db);
    log.info("Database {peer} connected (#{id})", {
      peer: conn.peer,
      id: db.id,
    });
    conn.setHandler((frame) => {
      db.lastSeen = taskNow();
      try {
        this.#onDatabaseFrame(db, frame);
      } catch (error) {
        const reason = toKvndbError(error);
        log.warn("Dropping database {peer}: {reason}", {
          peer: conn.peer,
          reason: reason.message,
        });
        conn.fail(reason);
      }
    });
    conn.closed.then((reason) => this.#removeDatabase(db, reason));
  }

  #onDatabaseFrame(db: DatabaseLink, frame: Frame): void {
    switch (frame.opcode) {
      case Opcode.JOIN:
        if (db.state !== "joining" || db.nodeId !== "") {
          throw new ProtocolError("JOIN sent twice");
        }
        {
          const join = decodeJoin(frame.payload);
          db.nodeId = toHex(join.nodeId) || `#${db.id}`;
          db.volatile = join.volatile ?? false;
          this.#record.members.present(db.nodeId, db.conn.peer, db.volatile);
          this.#recovery.present(db);
          if (this.#recovery.current !== undefined) {
            this.#recovery.hold(db, join);
            return;
          }
          this.#join(db, join);
          return;
        }
      case Opcode.APPLIED:
        this.#onApplied(db, decodeU64(frame.payload, "APPLIED"));
        return;
      case Opcode.VALUE:
      case Opcode.KEY_PAGE:
      case Opcode.ENTRIES:
      case Opcode.DIGEST_REPLY:
      case Opcode.COUNT_REPLY:
      case Opcode.ERROR:
        this.#reads.answered(db, frame);
        return;
      case Opcode.PONG:
        if (frame.payload.length === 8) {
          db.keys = decodeU64(frame.payload, "PONG");
        }
        return;
      case Opcode.PING:
        db.conn.send(encodeOpaque(Opcode.PONG, frame.id, frame.payload));
        return;
      case Opcode.SYNC_CHUNK:
      case Opcode.SYNC_ACK:
      case Opcode.SYNC_END:
        this.#syncs.onFrame(db, frame);
        return;
      case Opcode.OUTCOME:
        this.#writePath.outcome(frame.payload);
        return;
      default:
        throw new ProtocolError(
          `Unexpected ${opcodeName(frame.opcode)} frame from a database`,
        );
    }
  }

  /** Serves again after a hold, as its decision says. */
  recover(decision: Recovered): void {
    if (decision.seq > this.#sequencer.seq) {
      this.#sequencer.adopt(decision.seq);
    }
    log.info("Recovered cluster {cluster} at sequence {seq}", {
      cluster: toHex(this.clusterId!),
      seq: decision.seq,
    });
    // A restarted router starts above every number its last run gave out:
    // the reference takes that position, and the others copy from it.
    const reference = decision.reference;
    if (reference !== undefined) {
      reference.db.nodeId = toHex(reference.join.nodeId) || reference.db.nodeId;
      if (this.#sequencer.backlog.covers(reference.join.applied)) {
        // Still in the run that numbered the writes it lacks (the router
        // held joins without restarting): they are in the backlog, and every
        // database must get them, so it replays them like any other.
        this.#admitDatabase(
          reference.db,
          JoinMode.REPLAY,
          reference.join.applied,
        );
      } else {
        this.#jumpTo(reference.db, reference.join.applied);
      }
    }
    this.#joinAll(decision.joins);
  }

  /** Processes joins that were held, each as if it had just arrived. */
  #joinAll(joins: { db: DatabaseLink; join: Join }[]): void {
    for (const { db, join } of joins) {
      if (db.state !== "joining" || db.conn.isClosed) continue;
      try {
        this.#join(db, join);
      } catch (error) {
        const reason = toKvndbError(error);
        log.warn("Dropping database {peer}: {reason}", {
          peer: db.conn.peer,
          reason: reason.message,
        });
        db.conn.fail(reason);
      }
    }
  }

  /**
   * Makes `db`, which has applied up to `applied`, ready at the router's
   * position although it lacks the writes numbered since: no connected
   * database can supply them, as none follows this run's stream. None of
   * them was acknowledged (an acknowledgement needs the writes on a member,
   * and `db` is the most advanced one), so they are given up everywhere:
   * their clients learn that the outcome is unknown, the backlog forgets
   * them so that no one replays them, and every other database rejoins to
   * copy from `db`, so that none keeps one of them.
   */
  #jumpTo(db: DatabaseLink, applied: number): void {
    // After a restart the numbers up to the ceiling were never given out in
    // this run: nothing to give up.
    const givingUp = this.#sequencer.backlog.bytesAfter(applied) > 0 ||
      this.#writePath.hasPendingAbove(applied);
    if (givingUp) {
      log.warn(
        "Writes {from} to {to} reached no database that is here: giving them up",
        { from: applied + 1, to: this.#sequencer.seq },
      );
      this.#writePath.failAbove(
        "The database that had this write left before it was acknowledged; it may or may not have been applied",
        applied,
      );
      this.#dropOthers(
        db,
        "The cluster gave up writes this database may hold: rejoin to copy the cluster",
      );
    }
    this.#sequencer.giveUpBacklog();
    this.#admitDatabase(db, JoinMode.READY, this.#sequencer.seq);
  }

  #join(db: DatabaseLink, join: Join): void {
    log.debug(
      "Database {peer} joins: node {node}, applied {applied}, complete {complete}, reset {reset}",
      {
        peer: db.conn.peer,
        node: db.nodeId,
        applied: join.applied,
        complete: join.complete,
        reset: join.reset,
      },
    );
    const readySources = [...this.#databases.values()].filter((other) =>
      other !== db && other.state === "ready"
    );
    if (this.clusterId === undefined) {
      // A fresh router adopts the cluster of the first database with data.
      if (join.clusterId.length > 0 && join.complete && !join.reset) {
        this.clusterId = join.clusterId.slice();
        this.#sequencer.adopt(join.applied);
        log.info("Adopted cluster {cluster} at sequence {seq} from {peer}", {
          cluster: toHex(this.clusterId),
          seq: this.#sequencer.seq,
          peer: db.conn.peer,
        });
      } else {
        this.clusterId = randomBytes(16);
        log.info("Started cluster {cluster}", {
          cluster: toHex(this.clusterId),
        });
      }
    }
    const clusterId = this.clusterId;
    const sameCluster = join.clusterId.length > 0 &&
      equalBytes(join.clusterId, clusterId);
    const current = sameCluster && join.complete && !join.reset;
    const backlog = this.#sequencer.backlog;
    const plan = planJoin({
      foreign: join.clusterId.length > 0 && !sameCluster,
      current,
      applied: join.applied,
      seq: this.#sequencer.seq,
      movedSinceAdopted: this.#sequencer.movedSinceAdopted,
      backlogCovers: backlog.covers(join.applied),
      backlogBytesAfter: backlog.bytesAfter(join.applied),
      maxReplayBytes: this.#maxBufferedBytes / 2,
      readySources: readySources.length,
      anyReplaying: [...this.#databases.values()].some((other) =>
        other.state === "replaying"
      ),
      members: this.#record.members.size,
      isMember: this.#record.members.has(db.nodeId),
      weak: this.#record.weak,
      reset: join.reset,
      fresh: join.clusterId.length === 0 && join.applied === 0 &&
        this.#sequencer.seq === 0,
    });
    const where = {
      peer: db.conn.peer,
      applied: join.applied,
      seq: this.#sequencer.seq,
    };
    switch (plan.kind) {
      case "refuse":
        throw new KvndbError(
          ErrorCode.CLUSTER_MISMATCH,
          `This database holds data of cluster ${
            toHex(join.clusterId)
          }, but the router serves cluster ${
            toHex(clusterId)
          }: start it with --reset to discard its data and copy this cluster's, or point it at its own router`,
        );
      case "ready":
        this.#admitDatabase(db, JoinMode.READY, join.applied);
        return;
      case "adopt":
        log.warn(
          "Database {peer} is ahead of the router ({applied} > {seq}): adopting its position",
          where,
        );
        this.#sequencer.adopt(join.applied);
        this.#writePath.failAbove(
          "The cluster's position changed before the write was acknowledged; it may or may not have been applied",
        );
        this.#dropOthers(
          db,
          "The cluster moved ahead of this database: rejoin to catch up",
        );
        this.#admitDatabase(db, JoinMode.READY, join.applied);
        return;
      case "replay":
        this.#admitDatabase(db, JoinMode.REPLAY, join.applied);
        return;
      case "sync":
        if (current && join.applied > this.#sequencer.seq) {
          log.warn(
            "Database {peer} is ahead of the cluster ({applied} > {seq}); its extra writes were never acknowledged here: full sync",
            where,
          );
        }
        this.#startFullSync(
          db,
          readySources,
          plan.waitForSource,
        );
        return;
      case "hold":
        log.warn(
          "Database {peer} is behind and no database known to have every acknowledged write is here: holding it until they return",
          { peer: db.conn.peer },
        );
        this.#recovery.hold(db, join);
        return;
      case "empty-sync":
      case "jump":
        if (plan.behind) {
          log.warn(
            "Database {peer} joins behind the cluster (applied {applied}, sequence {seq}) and no other database can sync it: serving what it has",
            where,
          );
        }
        if (plan.kind === "empty-sync") this.#startFullSync(db, []);
        else this.#jumpTo(db, join.applied);
        return;
    }
  }

  /** Drops every database past its join but `keep`: they rejoin and copy. */
  #dropOthers(keep: DatabaseLink, message: string): void {
    for (const other of this.#databases.values()) {
      if (other !== keep && other.state !== "joining") {
        other.conn.fail(new KvndbError(ErrorCode.UNAVAILABLE, message));
      }
    }
  }

  /** Answers JOINED and starts sending live writes. */
  #admitDatabase(db: DatabaseLink, mode: number, applied: number): void {
    db.conn.send(
      encodeJoined({ clusterId: this.clusterId!, mode, from: applied + 1 }),
    );
    db.applied = applied;
    if (mode === JoinMode.REPLAY) {
      db.state = "replaying";
      db.readyAt = this.#sequencer.seq;
      let count = 0;
      for (const bytes of this.#sequencer.backlog.after(applied)) {
        db.conn.send(bytes);
        count++;
      }
      log.info("Database {peer} replays {count} writes from the backlog", {
        peer: db.conn.peer,
        count,
      });
      if (applied >= db.readyAt) this.markReady(db);
    } else if (mode === JoinMode.READY) {
      this.markReady(db);
    } else {
      db.state = "syncing";
    }
  }

  markReady(db: DatabaseLink): void {
    db.state = "ready";
    db.conn.send(encodeOpaque(Opcode.READY, 0));
    this.#record.ready(db, this.#reads.floor);
    log.info("Database {peer} is ready at sequence {applied}", {
      peer: db.conn.peer,
      applied: db.applied,
    });
    if (this.#recovery.current !== undefined) {
      // Joins held for want of a database with every write can go on: this
      // one follows the stream, so it can be their source.
      const held = this.#recovery.release();
      log.info("Database {peer} can sync the {count} held databases", {
        peer: db.conn.peer,
        count: held.length,
      });
      this.#joinAll(held);
    }
    this.#syncs.startWaiting(this.#readyDatabases());
    this.#writePath.settle();
    this.#reads.retryWaiting();
  }

  /** Whether a ready database has node id `id`. */
  isReadyNode = (id: string): boolean => {
    for (const db of this.#databases.values()) {
      if (db.nodeId === id && db.state === "ready") return true;
    }
    return false;
  };

  #startFullSync(
    db: DatabaseLink,
    sources: DatabaseLink[],
    waitForSource = false,
  ): void {
    const from = this.#sequencer.seq;
    this.#admitDatabase(db, JoinMode.FULL_SYNC, from);
    this.#syncs.start(db, from, sources, waitForSource);
  }

  #onApplied(db: DatabaseLink, upTo: number): void {
    if (upTo < db.applied) {
      throw new ProtocolError(
        `APPLIED went backwards (${upTo} after ${db.applied})`,
      );
    }
    if (upTo > this.#sequencer.seq) {
      throw new ProtocolError(
        `APPLIED ${upTo} is beyond the last write (${this.#sequencer.seq})`,
      );
    }
    db.applied = upTo;
    if (db.state === "replaying" && upTo >= db.readyAt) {
      this.markReady(db);
      return;
    }
    if (db.state === "ready") {
      this.#writePath.settle();
      this.#reads.retryWaiting();
      this.#record.admitPending(this.#reads.floor);
    }
  }

  /**
   * The position up to which every write is on every ready member: what a
   * router restarted now would keep at least. `Infinity` when no member is
   * ready (a new cluster; reads then go as they are).
   */
  durablePosition(): number {
    let position = Infinity;
    const members = this.#record.members;
    for (const db of this.#databases.values()) {
      if (db.state === "ready" && members.has(db.nodeId)) {
        if (db.applied < position) position = db.applied;
      }
    }
    return position;
  }

  #removeDatabase(db: DatabaseLink, reason: unknown): void {
    if (!this.#databases.delete(db.id)) return;
    if (
      db.nodeId !== "" &&
      ![...this.#databases.values()].some((other) => other.nodeId === db.nodeId)
    ) {
      const now = performance.now();
      this.#record.members.absent(db.nodeId, now);
      this.#recovery.absent(db.nodeId, now);
    }
    this.#recovery.check();
    const stillThere = this.isReadyNode(db.nodeId);
    // Only another ready *member* (one known to have every acknowledged
    // write) can take over; a ready database still catching up cannot.
    const othersReady = [...this.#databases.values()].some((other) =>
      other.state === "ready" && other.nodeId !== db.nodeId &&
      this.#record.members.has(other.nodeId)
    );
    // The last ready database stays a member: no write can be acknowledged
    // without one, so it still holds every acknowledged write. Once weaker
    // acknowledgements happened, a member that leaves may hold a write no
    // other database has: it stays a member.
    this.#record.left(db, stillThere, othersReady);
    log.info("Database {peer} left{reason}", {
      peer: db.conn.peer,
      reason: describeReason(reason),
    });
    // Its reads go to another database; the client notices nothing.
    this.#reads.reroute(db);
    // Syncs it was the source of restart from another source; a target
    // that left needs its source to stop.
    this.#syncs.left(db, this.#readyDatabases());
    this.#afterMembershipChange();
  }

  #readyDatabases(): DatabaseLink[] {
    return [...this.#databases.values()].filter((db) => db.state === "ready");
  }

  #afterMembershipChange(): void {
    this.#syncs.startWaiting(this.#readyDatabases());
    this.#writePath.checkUnresolved(() => {
      for (const db of this.#databases.values()) {
        if (db.state !== "syncing") continue;
        db.conn.fail(
          new KvndbError(
            ErrorCode.UNAVAILABLE,
            "No database left can evaluate an atomic operation this database, being synced, waits for: rejoin to copy the cluster",
          ),
        );
      }
    });
    if (!this.#hasPendingDatabase()) {
      this.#writePath.failAbove(
        "Every database left before the write was acknowledged; it may or may not have been applied",
      );
    }
    this.#writePath.settle();
    this.#reads.retryWaiting();
  }
}
