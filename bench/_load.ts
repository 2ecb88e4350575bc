// Pipelined writes through a router: several client connections, each with a
// fixed number of set() calls in flight (closed loop: each completion issues
// the next write). Either for a fixed time after a warm-up (throughput and
// latency), or for a fixed set of keys (loading a database).

import { type Client, connect } from "../client/mod.ts";
import { keyOf, onCleanup, percentile, valueOf } from "./_util.ts";

/** What to write. */
export interface LoadOptions {
  /** The router's port on 127.0.0.1. */
  port: number;
  /** Client connections. */
  clients: number;
  /** Writes in flight per connection. */
  inflight: number;
  /** Value size in bytes. */
  valueSize: number;
  /** Write keys `first` … `first + count - 1` (load mode). */
  count?: number;
  /** The first key index. Defaults to 0. */
  first?: number;
  /** Measure for this long after the warm-up (timed mode). */
  seconds?: number;
  /** Warm-up before the measured window, in timed mode. Defaults to 1 s. */
  warmupSeconds?: number;
  /** Called when the measured window opens and closes. */
  onWindow?: (phase: "start" | "end") => void;
  /** Print progress to standard error every few seconds. */
  progress?: boolean;
}

/** What a run measured. */
export interface LoadResult {
  /** Writes acknowledged in the measured window (or all of them). */
  writes: number;
  /** Seconds of the measured window (or of the whole load). */
  seconds: number;
  /** Acknowledged writes per second. */
  rate: number;
  /** Latency percentiles in ms, of writes started and finished in the window. */
  p50: number;
  p99: number;
  max: number;
  /** The next key index not written. */
  next: number;
}

/** Runs pipelined writes; throws on the first failed write. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const clients: Client[] = [];
  const closeAll = async () => {
    for (const client of clients) await client.close().catch(() => {});
  };
  const unregister = onCleanup(closeAll);
  try {
    for (let i = 0; i < options.clients; i++) {
      clients.push(
        await connect({
          hostname: "127.0.0.1",
          port: options.port,
          timeout: 60_000,
        }),
      );
    }
    const value = valueOf(options.valueSize);
    const first = options.first ?? 0;
    const end = options.count === undefined ? Infinity : first + options.count;
    const timed = options.seconds !== undefined;
    let next = first;
    let stop = false;
    const began = performance.now();
    let windowStart = timed
      ? began + 1000 * (options.warmupSeconds ?? 1)
      : began;
    let windowEnd = timed ? windowStart + 1000 * options.seconds! : Infinity;
    let done = 0;
    let inWindow = 0;
    const latencies: number[] = [];
    const timers: ReturnType<typeof setTimeout>[] = [];
    if (timed) {
      timers.push(setTimeout(() => {
        windowStart = performance.now();
        windowEnd = windowStart + 1000 * options.seconds!;
        options.onWindow?.("start");
        timers.push(setTimeout(() => {
          windowEnd = performance.now();
          options.onWindow?.("end");
          stop = true;
        }, 1000 * options.seconds!));
      }, 1000 * (options.warmupSeconds ?? 1)));
    }
    let lastReport = began;
    const worker = async (client: Client) => {
      while (!stop && next < end) {
        const i = next++;
        const t = performance.now();
        await client.set(keyOf(i), value);
        const e = performance.now();
        done++;
        if (e >= windowStart && e < windowEnd) {
          inWindow++;
          if (t >= windowStart) latencies.push(e - t);
        }
        if (options.progress && e - lastReport > 5_000) {
          lastReport = e;
          const s = (e - began) / 1000;
          console.error(
            `  … ${done} writes in ${s.toFixed(0)} s (${
              Math.round(done / s)
            }/s)`,
          );
        }
      }
    };
    try {
      await Promise.all(
        clients.flatMap((client) =>
          Array.from({ length: options.inflight }, () => worker(client))
        ),
      );
    } finally {
      stop = true;
      for (const timer of timers) clearTimeout(timer);
    }
    const finished = performance.now();
    const seconds = timed
      ? (windowEnd - windowStart) / 1000
      : (finished - began) / 1000;
    const writes = timed ? inWindow : done;
    latencies.sort((a, b) => a - b);
    return {
      writes,
      seconds,
      rate: writes / seconds,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      max: latencies.at(-1) ?? NaN,
      next,
    };
  } finally {
    unregister();
    await closeAll();
  }
}
