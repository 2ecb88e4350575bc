/**
 * The router's Prometheus metrics (`/metrics` on the HTTP port), with
 * `prom-client`. Every value is read from the router's statistics when
 * Prometheus scrapes, so the request path does no work for them.
 *
 * @module
 */

import { Counter, Gauge, Registry } from "prom-client";
import type { DatabaseStats, RouterStats } from "../protocol/mod.ts";
import { LATENCY_BUCKETS } from "./latency.ts";

/** The labels that name a database: its link id and its address. */
function databaseLabels(db: { id: number; peer: string }) {
  return { database: String(db.id), peer: db.peer };
}

/** The states a database can be in, so that each has a series (0 or more). */
const STATES = ["joining", "replaying", "syncing", "ready"] as const;

/**
 * A registry of the router's metrics, filled from `stats()` at each scrape.
 *
 * @example
 * ```ts
 * import { RouterMetrics } from "./metrics.ts";
 * const metrics = new RouterMetrics(() => ({
 *   clusterId: "c0ffee", seq: 7, clients: 1, databases: [],
 *   operations: { get: 3 }, uptime: 5,
 * }));
 * const text = await metrics.text();
 * console.log(text.includes('kvndb_requests_total{operation="get"} 3')); // true
 * ```
 */
export class RouterMetrics {
  readonly #registry = new Registry();
  readonly #stats: () => RouterStats;
  #snapshot?: RouterStats;

  /**
   * Creates the metrics.
   *
   * @param stats How to read the router's statistics.
   */
  constructor(stats: () => RouterStats) {
    this.#stats = stats;
    const registers = [this.#registry];
    const snapshot = () => this.#snapshot ?? this.#stats();
    new Counter({
      name: "kvndb_requests_total",
      help: "Requests served, by operation (errors counted apart).",
      labelNames: ["operation"],
      registers,
      collect() {
        this.reset();
        for (
          const [operation, count] of Object.entries(snapshot().operations)
        ) {
          if (operation !== "errors") this.inc({ operation }, count);
        }
      },
    });
    new Counter({
      name: "kvndb_request_errors_total",
      help: "Requests answered with an error.",
      registers,
      collect() {
        this.reset();
        this.inc(snapshot().operations.errors ?? 0);
      },
    });
    new Counter({
      name: "kvndb_received_bytes_total",
      help: "Bytes the router's process read from its connections.",
      registers,
      collect() {
        this.reset();
        this.inc(snapshot().bytes?.in ?? 0);
      },
    });
    new Counter({
      name: "kvndb_sent_bytes_total",
      help: "Bytes the router's process wrote to its connections.",
      registers,
      collect() {
        this.reset();
        this.inc(snapshot().bytes?.out ?? 0);
      },
    });
    // Counted by the router in its own buckets (router/latency.ts), which
    // cost the request path less than prom-client's histogram would.
    this.#registry.registerMetric(
      {
        name: "kvndb_request_duration_seconds",
        help:
          "Time from a request's arrival at the router to its answer, by kind (read, write, atomic).",
        type: "histogram",
        aggregator: "sum",
        get: () => {
          const values: {
            metricName: string;
            labels: Record<string, string | number>;
            value: number;
          }[] = [];
          const name = "kvndb_request_duration_seconds";
          for (
            const [operation, histogram] of Object.entries(
              snapshot().latency ?? {},
            )
          ) {
            histogram.buckets.forEach((count, i) =>
              values.push({
                metricName: `${name}_bucket`,
                labels: { operation, le: LATENCY_BUCKETS[i]! },
                value: count,
              })
            );
            values.push(
              {
                metricName: `${name}_bucket`,
                labels: { operation, le: "+Inf" },
                value: histogram.count,
              },
              {
                metricName: `${name}_sum`,
                labels: { operation },
                value: histogram.sum,
              },
              {
                metricName: `${name}_count`,
                labels: { operation },
                value: histogram.count,
              },
            );
          }
          return Promise.resolve({
            name,
            help:
              "Time from a request's arrival at the router to its answer, by kind (read, write, atomic).",
            type: "histogram",
            values,
            aggregator: "sum",
          });
        },
      } as unknown as Parameters<Registry["registerMetric"]>[0],
    );
    new Counter({
      name: "kvndb_auth_failures_total",
      help: "Wrong passwords the router has been sent, on every port.",
      registers,
      collect() {
        this.reset();
        this.inc(snapshot().authFailures ?? 0);
      },
    });
    new Counter({
      name: "kvndb_expired_keys_swept_total",
      help: "Expired keys the router's sweep deleted.",
      registers,
      collect() {
        this.reset();
        this.inc(snapshot().expiry?.swept ?? 0);
      },
    });
    new Gauge({
      name: "kvndb_sequence",
      help: "The last sequence number the router gave a write.",
      registers,
      collect() {
        this.set(snapshot().seq);
      },
    });
    new Gauge({
      name: "kvndb_uptime_seconds",
      help: "Seconds since the router started.",
      registers,
      collect() {
        this.set(snapshot().uptime);
      },
    });
    new Gauge({
      name: "kvndb_connections",
      help: "Connections past the handshake, by kind.",
      labelNames: ["kind"],
      registers,
      collect() {
        const stats = snapshot();
        this.set({ kind: "client" }, stats.clients);
        this.set({ kind: "database" }, stats.databases.length);
      },
    });
    new Gauge({
      name: "kvndb_databases",
      help: "Connected databases, by state.",
      labelNames: ["state"],
      registers,
      collect() {
        const databases = snapshot().databases;
        for (const state of STATES) {
          this.set(
            { state },
            databases.filter((db) => db.state === state).length,
          );
        }
      },
    });
    // One series per database, from a value of its stats (none when
    // `value` gives undefined, as for a database not being synced).
    const perDatabase = (
      name: string,
      help: string,
      value: (db: DatabaseStats, stats: RouterStats) => number | undefined,
    ) =>
      new Gauge({
        name,
        help,
        labelNames: ["database", "peer"],
        registers,
        collect() {
          this.reset();
          const stats = snapshot();
          for (const db of stats.databases) {
            const v = value(db, stats);
            if (v !== undefined) this.set(databaseLabels(db), v);
          }
        },
      });
    perDatabase(
      "kvndb_database_applied_sequence",
      "The highest sequence number each database has applied.",
      (db) => db.applied,
    );
    perDatabase(
      "kvndb_database_lag",
      "Writes each database has yet to apply (the router's sequence less its applied).",
      (db, stats) => Math.max(0, stats.seq - db.applied),
    );
    perDatabase(
      "kvndb_database_keys",
      "Keys each database holds, as it last reported.",
      (db) => db.keys,
    );
    perDatabase(
      "kvndb_database_reads_pending",
      "Reads sent to each database and not yet answered.",
      (db) => db.outstanding,
    );
    perDatabase(
      "kvndb_sync_keys",
      "Keys a database being synced has received so far.",
      (db) => db.sync?.keys,
    );
    perDatabase(
      "kvndb_sync_progress_ratio",
      "How far a database's sync is, from 0 to 1 (estimated from its source's key count).",
      (db) => db.sync === undefined ? undefined : db.sync.percent / 100,
    );
    new Gauge({
      name: "kvndb_backlog_bytes",
      help: "Bytes of recent writes kept for databases that rejoin.",
      registers,
      collect() {
        this.set(snapshot().backlog?.bytes ?? 0);
      },
    });
    new Gauge({
      name: "kvndb_backlog_writes",
      help: "Recent writes kept for databases that rejoin.",
      registers,
      collect() {
        this.set(snapshot().backlog?.writes ?? 0);
      },
    });
    new Gauge({
      name: "kvndb_pending_writes",
      help: "Writes waiting for their acknowledgement level.",
      registers,
      collect() {
        this.set(snapshot().pendingWrites ?? 0);
      },
    });
    new Gauge({
      name: "kvndb_hold_seconds",
      help:
        "How long the router has held, waiting for absent members (0 when it serves).",
      registers,
      collect() {
        this.set(snapshot().hold?.seconds ?? 0);
      },
    });
  }

  /** The content type of {@linkcode RouterMetrics.text}. */
  get contentType(): string {
    return this.#registry.contentType;
  }

  /**
   * Renders every metric, from one reading of the router's statistics.
   *
   * @returns Prometheus's text format.
   */
  async text(): Promise<string> {
    this.#snapshot = this.#stats();
    try {
      return await this.#registry.metrics();
    } finally {
      this.#snapshot = undefined;
    }
  }
}
