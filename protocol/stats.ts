// The shape of the router's `stats` answer, shared by the router that builds
// it, the client that decodes it, the console and the tests.

/** What the router remembers of one member (a database known to hold every acknowledged write). */
export interface MemberInfo {
  /** Whether its data dies with its process (a memory database). */
  volatile: boolean;
  /** The address it last connected from. */
  address: string;
}

/** One member as `stats` reports it. */
export interface MemberStats extends MemberInfo {
  /** The node id, as hex. */
  id: string;
  /** Whether a database with this id is connected. */
  present: boolean;
  /** Seconds since it left (0 while present). */
  awaySeconds: number;
}

/** What `stats` reports about one database. */
export interface DatabaseStats {
  /** The router's name for it. */
  id: number;
  /** Its address. */
  peer: string;
  /** `joining`, `replaying` (catching up), `syncing` or `ready`. */
  state: string;
  /** The highest sequence number it has applied. */
  applied: number;
  /** Reads sent to it and not yet answered. */
  outstanding: number;
  /** Whether its data dies with its process (memory), from its JOIN. */
  volatile?: boolean;
  /** Keys it holds, as it last reported. */
  keys: number;
  /** Sync progress while it syncs. */
  sync?: { keys: number; keysPerSecond: number; percent: number };
}

/** What `stats` reports. */
export interface RouterStats {
  /** The cluster id, as hex. */
  clusterId: string;
  /** The last sequence number given to a write. */
  seq: number;
  /** Connected clients. */
  clients: number;
  /** Connected databases. */
  databases: DatabaseStats[];
  /** Whether the router is waiting for the databases that were ready before a restart. */
  recovering?: boolean;
  /** While it waits: what for, since when, and the way out. */
  hold?: {
    /** Seconds it has lasted. */
    seconds: number;
    /** How many of the members must be back. */
    needed: number;
    /** Databases whose joins wait for the hold to end. */
    held: number;
    /** What it waits for and the way out, for people. */
    reason: string;
  };
  /** The databases known to hold every acknowledged write. */
  members?: MemberStats[];
  /** Operations served since the router started, by kind. */
  operations: Record<string, number>;
  /** Writes waiting for their acknowledgements. */
  pendingWrites?: number;
  /** The backlog of recent writes kept for databases that rejoin. */
  backlog?: { writes: number; bytes: number };
  /** Writes waiting for the router's state file to reserve more numbers. */
  waitingForState?: number;
  /** Whether a save of the router's state file is under way. */
  savingState?: boolean;
  /** Reads waiting for a database that has the client's last write. */
  waitingReads?: number;
  /** The newest sequence number any client has been told about. */
  readFloor?: number;
  /** Wrong passwords the router has been sent, on every port. */
  authFailures?: number;
  /**
   * Latencies of the requests answered, by kind (`read`, `write`,
   * `atomic`): cumulative counts at each bound of `router/latency.ts`'s
   * buckets (seconds), their sum in seconds, and how many.
   */
  latency?: Record<string, { buckets: number[]; sum: number; count: number }>;
  /** Bytes the router's process read from and wrote to its connections. */
  bytes?: { in: number; out: number };
  /**
   * The expiry sweep: keys it deleted since the router started, and the
   * router time (ms since the epoch) up to which every key that had expired
   * has been deleted (0 before its first complete round; absent when off).
   */
  expiry?: { swept: number; caughtUpAt: number };
  /** Seconds since the router started. */
  uptime: number;
}
