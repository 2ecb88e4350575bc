/**
 * Request latencies for `/metrics`: counts in fixed buckets, by kind of
 * request, kept with plain arrays so that the request path pays a few
 * comparisons and an addition (a Prometheus client's own histogram cost
 * more per request than the router's whole work on a GET).
 *
 * @module
 */

/** Bucket bounds, in seconds. */
export const LATENCY_BUCKETS = [
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
] as const;

/** The kinds of request timed: reads, plain writes, atomic operations. */
export const LATENCY_KINDS = ["read", "write", "atomic"] as const;

/** Each kind's index in {@linkcode LATENCY_KINDS}, for {@linkcode Latencies.observe}. */
export const LatencyKind = { READ: 0, WRITE: 1, ATOMIC: 2 } as const;

/** One kind's histogram, as `stats()` reports it. */
export interface LatencyHistogram {
  /** How many took at most each bound of {@linkcode LATENCY_BUCKETS} (cumulative). */
  buckets: number[];
  /** The sum of every latency, in seconds. */
  sum: number;
  /** How many were timed. */
  count: number;
}

const BOUNDS_MS = LATENCY_BUCKETS.map((s) => s * 1000);

/**
 * Latency histograms by kind of request.
 *
 * @example
 * ```ts
 * import { Latencies, LatencyKind } from "./latency.ts";
 * const latencies = new Latencies();
 * latencies.observe(LatencyKind.READ, 0.3);
 * console.log(latencies.snapshot().read.count); // 1
 * ```
 */
export class Latencies {
  /** Per kind: a count per bucket (not cumulative), and one past the last. */
  #counts = LATENCY_KINDS.map(() => new Float64Array(BOUNDS_MS.length + 1));
  #sums = new Float64Array(LATENCY_KINDS.length);

  /**
   * Counts one request of kind `kind` (a {@linkcode LatencyKind}) that took
   * `ms` milliseconds.
   */
  observe(kind: number, ms: number): void {
    let bucket = 0;
    while (bucket < BOUNDS_MS.length && ms > BOUNDS_MS[bucket]!) bucket++;
    this.#counts[kind]![bucket]!++;
    this.#sums[kind]! += ms;
  }

  /** The histograms, cumulative, as Prometheus wants them. */
  snapshot(): Record<(typeof LATENCY_KINDS)[number], LatencyHistogram> {
    const out = {} as Record<
      (typeof LATENCY_KINDS)[number],
      LatencyHistogram
    >;
    LATENCY_KINDS.forEach((kind, i) => {
      const counts = this.#counts[i]!;
      const buckets: number[] = [];
      let total = 0;
      for (let b = 0; b < BOUNDS_MS.length; b++) {
        total += counts[b]!;
        buckets.push(total);
      }
      total += counts[BOUNDS_MS.length]!;
      out[kind] = { buckets, sum: this.#sums[i]! / 1000, count: total };
    });
    return out;
  }
}
