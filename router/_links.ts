// The router's records of its peers, shared by its parts: a client session,
// a database link, and the requests and syncs they carry.

import type { FramedConnection } from "../protocol/mod.ts";
import type { ClientLink } from "./resp_front_end.ts";

/** Where a connected database stands in joining the cluster. */
export type LinkState = "joining" | "replaying" | "syncing" | "ready";

export interface ReadRequest {
  client: ClientSession;
  clientId: number;
  opcode: number;
  payload: Uint8Array;
  minSeq: number;
  deadline: number;
  /** For a read of one named database (DIGEST): its id. */
  target?: number;
}

export interface SyncProgress {
  id: number;
  source?: DatabaseLink;
  from: number;
  keys: number;
  bytes: number;
  started: number;
  sourceKeys: number;
  lastReport: number;
}

/** A client connection past the handshake, native or RESP. */
export class ClientSession {
  lastWriteSeq = 0;
  /** Requests accepted and not yet answered. */
  inFlight = 0;
  constructor(readonly conn: ClientLink) {}
}

/** A database connection past the handshake. */
export class DatabaseLink {
  state: LinkState = "joining";
  /** The database's node id, as hex; known once it sends JOIN. */
  nodeId = "";
  /** Whether its data dies with its process (from its JOIN). */
  volatile = false;
  applied = 0;
  keys = 0;
  lastSeen = performance.now();
  lastPing = 0;
  readyAt = 0;
  nextReadId = 1;
  reads = new Map<number, ReadRequest>();
  /** Set while this database receives a full sync. */
  sync?: SyncProgress;
  /** Sync ids this database is the source of. */
  sourcing = new Set<number>();
  constructor(readonly id: number, readonly conn: FramedConnection) {}
  get outstanding(): number {
    return this.reads.size;
  }
}

/**
 * Why a link closed, for a log line: `: message`, or nothing for a clean
 * close.
 */
export function describeReason(reason: unknown): string {
  if (reason === undefined) return "";
  return `: ${reason instanceof Error ? reason.message : String(reason)}`;
}
