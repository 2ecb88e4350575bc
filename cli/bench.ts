/**
 * `kvndb bench`: a load generator in the manner of `redis-benchmark`, built on
 * the client library. For each test it reports requests per second and
 * latency percentiles.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type Client, connect } from "../client/mod.ts";
import { endpointFromArgs } from "./args.ts";
import { type Endpoint, InvalidArgumentError } from "../protocol/mod.ts";

/** The tests `kvndb bench` can run. */
export const BENCH_TESTS = ["set", "get", "del", "keys"] as const;

/** One of {@linkcode BENCH_TESTS}. */
export type BenchTest = typeof BENCH_TESTS[number];

/** What to run. */
export interface BenchOptions {
  /** The router. */
  endpoint: Endpoint;
  /** The password, if any. */
  password?: string;
  /** Connections. */
  clients: number;
  /** Requests per test. */
  requests: number;
  /** Requests in flight per connection. */
  pipeline: number;
  /** Value size in bytes. */
  valueSize: number;
  /** Tests, in order. */
  tests: BenchTest[];
  /** Keys are drawn from `key:0` … `key:(keyspace-1)`. */
  keyspace: number;
  /** Print JSON instead of a table. */
  json: boolean;
}

/** The result of one test. */
export interface BenchResult {
  /** The test. */
  test: BenchTest;
  /** Requests completed. */
  requests: number;
  /** Requests that failed. */
  errors: number;
  /** Wall-clock seconds. */
  seconds: number;
  /** Requests per second. */
  rps: number;
  /** Latency percentiles in milliseconds. */
  latency: { p50: number; p99: number; p999: number; max: number };
}

/** Usage of `kvndb bench`. */
export const BENCH_USAGE =
  "usage: kvndb bench [host] [port] [-c CLIENTS] [-n REQUESTS] [-P PIPELINE] [-d BYTES] [-t set,get,del,keys] [-r KEYSPACE] [-p PASSWORD] [-t/--type T] [-e ENDPOINT] [--ca FILE] [--json]";

/**
 * Parses `kvndb bench` arguments (after the word `bench`).
 *
 * @param args The arguments.
 * @param env Reads an environment variable (for `KVNDB_PASSWORD`).
 * @returns The options.
 * @throws {InvalidArgumentError} Saying what is wrong.
 * @example
 * ```ts
 * import { parseBenchArgs } from "./bench.ts";
 * const options = parseBenchArgs(["127.0.0.1", "5000", "-c", "10"], () => undefined);
 * console.log(options.clients, options.endpoint.port); // 10 5000
 * ```
 */
export function parseBenchArgs(
  args: string[],
  env: (name: string) => string | undefined,
): BenchOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        clients: { type: "string", short: "c" },
        requests: { type: "string", short: "n" },
        pipeline: { type: "string", short: "P" },
        "data-size": { type: "string", short: "d" },
        tests: { type: "string", short: "t" },
        keyspace: { type: "string", short: "r" },
        password: { type: "string", short: "p" },
        type: { type: "string" },
        endpoint: { type: "string", short: "e" },
        ca: { type: "string" },
        json: { type: "boolean" },
      },
    });
  } catch (cause) {
    throw new InvalidArgumentError((cause as Error).message, { cause });
  }
  const { values, positionals } = parsed;
  const [host, portText, extra] = positionals;
  if (extra !== undefined) {
    throw new InvalidArgumentError(`Unexpected argument '${extra}'`);
  }
  // A listening address such as 0.0.0.0 is taken to mean this machine.
  const endpoint = endpointFromArgs(values, {
    host,
    port: portText,
    flag: "--type",
  });
  endpoint.caFile ??= values.ca;
  const tests = (values.tests ?? "set,get").split(",").map((t) =>
    t.trim().toLowerCase()
  );
  for (const test of tests) {
    if (!(BENCH_TESTS as readonly string[]).includes(test)) {
      throw new InvalidArgumentError(
        `Unknown test '${test}' for -t (expected ${BENCH_TESTS.join(", ")})`,
      );
    }
  }
  return {
    endpoint,
    password: values.password ?? env("KVNDB_PASSWORD"),
    clients: whole(values.clients ?? "50", "-c", 1),
    requests: whole(values.requests ?? "100000", "-n", 1),
    pipeline: whole(values.pipeline ?? "1", "-P", 1),
    valueSize: whole(values["data-size"] ?? "3", "-d", 0),
    tests: tests as BenchTest[],
    keyspace: whole(values.keyspace ?? "100000", "-r", 1),
    json: values.json ?? false,
  };
}

function whole(text: string, flag: string, min: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min) {
    throw new InvalidArgumentError(
      `${flag} takes a whole number of at least ${min}, not '${text}'`,
    );
  }
  return value;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  const index = Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1);
  return sorted[Math.max(0, index)]!;
}

/**
 * Runs one test over already connected clients.
 *
 * @param clients The connections.
 * @param test The test.
 * @param options Sizes and counts.
 * @param onProgress Called about ten times a second with the requests done.
 * @returns The result.
 */
async function runTest(
  clients: Client[],
  test: BenchTest,
  options: BenchOptions,
  onProgress: (done: number) => void,
): Promise<BenchResult> {
  const value = new Uint8Array(options.valueSize).fill(120);
  const latencies = new Float64Array(options.requests);
  // Encoded once: encoding a key per request would cost the client as much as
  // the rest of the request.
  const encoder = new TextEncoder();
  const keys = Array.from(
    { length: Math.min(options.keyspace, 1_000_000) },
    (_, i) => encoder.encode(`key:${i}`),
  );
  let issued = 0;
  let done = 0;
  let errors = 0;
  const request = (client: Client, key: Uint8Array): Promise<unknown> => {
    switch (test) {
      case "set":
        return client.set(key, value);
      case "get":
        return client.getBytes(key);
      case "del":
        return client.delete(key);
      case "keys":
        return client.keysPage({ prefix: "key:1", limit: 10 });
    }
  };
  const lane = async (client: Client) => {
    while (issued < options.requests) {
      const slot = issued++;
      const key = keys[Math.floor(Math.random() * keys.length)]!;
      const start = performance.now();
      try {
        await request(client, key);
      } catch {
        errors++;
      }
      latencies[slot] = performance.now() - start;
      done++;
    }
  };
  const timer = setInterval(() => onProgress(done), 100);
  const started = performance.now();
  try {
    await Promise.all(
      clients.flatMap((client) =>
        Array.from({ length: options.pipeline }, () => lane(client))
      ),
    );
  } finally {
    clearInterval(timer);
  }
  const seconds = (performance.now() - started) / 1000;
  onProgress(done);
  const sorted = latencies.slice(0, done).sort();
  return {
    test,
    requests: done,
    errors,
    seconds,
    rps: done / seconds,
    latency: {
      p50: percentile(sorted, 0.5),
      p99: percentile(sorted, 0.99),
      p999: percentile(sorted, 0.999),
      max: sorted[sorted.length - 1] ?? 0,
    },
  };
}

/**
 * Runs the benchmark and prints its results.
 *
 * @param options What to run.
 * @param output Where the results go (standard output by default).
 * @returns The results.
 * @example
 * ```ts ignore
 * import { parseBenchArgs, runBench } from "./bench.ts";
 * await runBench(parseBenchArgs(["-n", "10000"], () => undefined));
 * ```
 */
export async function runBench(
  options: BenchOptions,
  output: (text: string) => void = (text) =>
    Deno.stdout.writeSync(new TextEncoder().encode(text)),
): Promise<BenchResult[]> {
  const clients: Client[] = [];
  try {
    for (let i = 0; i < options.clients; i++) {
      clients.push(
        await connect({
          endpoint: options.endpoint,
          password: options.password,
          timeout: 30_000,
        }),
      );
    }
    const results: BenchResult[] = [];
    const tty = Deno.stderr.isTerminal() && !options.json;
    for (const test of options.tests) {
      const label = test.toUpperCase().padEnd(4);
      const result = await runTest(clients, test, options, (done) => {
        if (!tty) return;
        const fraction = done / options.requests;
        const bar = "#".repeat(Math.round(fraction * 30)).padEnd(30);
        Deno.stderr.writeSync(
          new TextEncoder().encode(
            `\r${label} [${bar}] ${(fraction * 100).toFixed(0).padStart(3)}%`,
          ),
        );
      });
      if (tty) Deno.stderr.writeSync(new TextEncoder().encode("\r\x1b[K"));
      results.push(result);
      if (!options.json) output(formatResult(result, options));
    }
    if (options.json) {
      output(JSON.stringify({ options: describe(options), results }) + "\n");
    }
    return results;
  } finally {
    for (const client of clients) await client.close();
  }
}

function describe(options: BenchOptions) {
  return {
    clients: options.clients,
    requests: options.requests,
    pipeline: options.pipeline,
    valueSize: options.valueSize,
    keyspace: options.keyspace,
  };
}

function formatResult(result: BenchResult, options: BenchOptions): string {
  const ms = (value: number) => value.toFixed(3);
  return `====== ${result.test.toUpperCase()} ======
  ${result.requests} requests in ${
    result.seconds.toFixed(2)
  } s, ${options.clients} clients, pipeline ${options.pipeline}, ${options.valueSize}-byte values${
    result.errors > 0 ? `, ${result.errors} errors` : ""
  }
  ${Math.round(result.rps)} requests per second
  latency (ms): p50 ${ms(result.latency.p50)}  p99 ${
    ms(result.latency.p99)
  }  p99.9 ${ms(result.latency.p999)}  max ${ms(result.latency.max)}

`;
}
