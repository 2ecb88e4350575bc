/**
 * The router's options: where it listens, who may connect, and its policies
 * for acknowledgements, reads, limits, timeouts and restarts. The command
 * line's flags map onto these (`cli/args.ts`).
 *
 * @module
 */

import type { AckName, Endpoint } from "../protocol/mod.ts";
import type { BalanceMode } from "./balancer.ts";

/** Options for {@linkcode Router.start}. */
export interface RouterOptions {
  /** Where to listen. Defaults to TCP on `0.0.0.0:54565`. */
  endpoint?: Endpoint;
  /** Shorthand for a TCP endpoint's host, when `endpoint` is absent. */
  hostname?: string;
  /** Shorthand for a TCP endpoint's port (0 for any free port). */
  port?: number;
  /** The password peers must prove they know; none if absent. */
  password?: string;
  /** Default acknowledgement level for writes. Defaults to `all`. */
  acks?: AckName;
  /** How reads are spread. Defaults to `least-loaded`. */
  balance?: BalanceMode;
  /** How long a request may wait for databases, in ms. Defaults to 10 s. */
  requestTimeout?: number;
  /** How long a peer may take to finish its handshake, in ms. Defaults to 5 s. */
  handshakeTimeout?: number;
  /** Delay before answering a wrong password, in ms. Defaults to 1 s. */
  authFailureDelay?: number;
  /** How often the router pings each database, in ms. Defaults to 1 s. */
  heartbeatInterval?: number;
  /** Silence after which a database is dropped, in ms. Defaults to 5 s. */
  heartbeatTimeout?: number;
  /** Bytes of recent writes kept for databases that rejoin. Defaults to 64 MiB. */
  backlogBytes?: number;
  /** The most connections at once. Defaults to 10,000. */
  maxConnections?: number;
  /** Requests one client may have unanswered at once. Defaults to 10,000. */
  maxInFlight?: number;
  /** Unread output per connection before it is closed. Defaults to 64 MiB. */
  maxBufferedBytes?: number;
  /**
   * Accept peers from other machines without a password. Without it, a
   * router with no password that listens beyond loopback serves only
   * loopback peers (protected mode).
   */
  insecure?: boolean;
  /** Failed logins from one address before each next attempt waits longer. Defaults to 3. */
  authFailuresAllowed?: number;
  /** How long failed logins are remembered, in ms. Defaults to 60 s. */
  authFailureWindow?: number;
  /** Also serve the Redis protocol (RESP2) on this TCP port (0: any free one). */
  respPort?: number;
  /** Also serve HTTP (`/health`) on this TCP port (0: any free one). */
  httpPort?: number;
  /**
   * Also serve KV Connect (`Deno.openKv("http://host:PORT")`) on this TCP
   * port (0: any free one); HTTP/2, over TLS with the router's certificate.
   */
  kvPort?: number;
  /**
   * Where the router keeps the cluster id and which databases are ready, so
   * that after a restart it waits for one that holds every acknowledged write.
   * Without it a restarted router trusts the first database that joins.
   */
  stateFile?: string;
  /**
   * After a restart, how long to wait for the databases that were ready
   * before serving with whichever databases came back, in ms. Defaults to
   * waiting for them however long it takes: going on without them can lose
   * acknowledged writes.
   */
  recoveryTimeout?: number;
  /**
   * How often the router looks for expired keys to delete, in ms, while it
   * finds fewer than a full batch (128) each time; 0 turns the sweep off
   * (reads still leave expired keys out). Defaults to 250 ms.
   */
  expirySweepInterval?: number;
  /**
   * How long a volatile member (a memory database) may be away before the
   * router stops waiting for it, in ms: its data died with it, and a live one
   * whose link broke is back well within this. Defaults to 10 s.
   */
  volatileGrace?: number;
}
