// The fault harness every reliability test shares: a router and Deno KV
// database nodes as child processes, a fault relay on each router–database
// link, a seeded nemesis, and a way to heal, wait for quiescence and read
// every database's contents from its file.

import { type Client, connect, type RouterStats } from "../client/mod.ts";
import { KvDatabase } from "../database/mod.ts";
import { toHex } from "../protocol/mod.ts";
import { KvndbProcess } from "./_process.ts";
import { restartablePort } from "./_ports.ts";
import { Relay } from "./_relay.ts";

const decoder = new TextDecoder();

/** Separates a value from its expiry in {@linkcode FaultCluster.contents}. */
export const EXPIRES = "\u0002";

/** A small seeded PRNG (mulberry32): every random choice comes from here. */
export class Random {
  #state: number;
  constructor(readonly seed: number) {
    this.#state = seed >>> 0;
  }
  next(): number {
    let t = (this.#state += 0x6d2b79f5) >>> 0;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(max: number): number {
    return Math.floor(this.next() * max);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
}

/** The seed for a run: `KVNDB_SEED` to replay one, else a fresh one. */
export function seedFromEnv(): number {
  const text = Deno.env.get("KVNDB_SEED");
  return text === undefined
    ? Math.floor(Math.random() * 2 ** 31)
    : Number(text);
}

export interface FaultClusterOptions {
  databases: number;
  acks?: "all" | "majority" | "one";
  /** Router heartbeat timeout (ms): how fast a frozen or cut database is dropped. */
  heartbeatTimeout?: number;
}

/** Faults the nemesis injects, counted for the report. */
export type Fault =
  | "kill-database"
  | "restart-database"
  | "freeze-database"
  | "thaw-database"
  | "cut-link"
  | "blackhole-link"
  | "delay-link"
  | "heal-link"
  | "restart-router";

export class FaultCluster implements AsyncDisposable {
  readonly dir: string;
  readonly paths: string[];
  readonly relays: Relay[];
  readonly nodes: (KvndbProcess | undefined)[];
  readonly frozen: boolean[];
  readonly faults = new Map<Fault, number>();
  readonly #options: FaultClusterOptions;
  #pastLogs = "";
  #pastNodeLogs: string[] = [];
  router: KvndbProcess;
  port = 0;

  private constructor(dir: string, options: FaultClusterOptions) {
    this.dir = dir;
    this.#options = options;
    this.paths = Array.from(
      { length: options.databases },
      (_, i) => `${dir}/db${i}.db`,
    );
    this.relays = [];
    this.nodes = new Array(options.databases).fill(undefined);
    this.frozen = new Array(options.databases).fill(false);
    this.router = undefined as unknown as KvndbProcess;
  }

  static async start(options: FaultClusterOptions): Promise<FaultCluster> {
    const dir = await Deno.makeTempDir({ prefix: "kvndb-faults-" });
    const cluster = new FaultCluster(dir, options);
    cluster.router = cluster.#startRouter(String(restartablePort()));
    cluster.port = await cluster.router.port();
    for (let i = 0; i < options.databases; i++) {
      cluster.relays.push(
        new Relay({ hostname: "127.0.0.1", port: cluster.port }, {
          capture: false,
        }),
      );
      cluster.startDatabase(i);
    }
    await cluster.waitReady(options.databases);
    return cluster;
  }

  #startRouter(port: string): KvndbProcess {
    return KvndbProcess.start([
      "router",
      "127.0.0.1",
      port,
      "-v",
      "--state",
      `${this.dir}/router.json`,
      "--acks",
      this.#options.acks ?? "all",
      "--heartbeat-timeout",
      String(this.#options.heartbeatTimeout ?? 1500),
      "--timeout",
      "4000",
    ]);
  }

  count(fault: Fault): void {
    this.faults.set(fault, (this.faults.get(fault) ?? 0) + 1);
  }

  /** Starts database `i` (through its relay), with extra arguments such as `-r`. */
  startDatabase(i: number, extra: string[] = []): void {
    if (this.nodes[i]?.running) return;
    this.#keepNodeLog(i);
    this.nodes[i] = KvndbProcess.start([
      "kv",
      "127.0.0.1",
      String(this.relays[i]!.port),
      this.paths[i]!,
      "-v",
      ...extra,
    ]);
    this.frozen[i] = false;
  }

  async killDatabase(i: number): Promise<void> {
    const node = this.nodes[i];
    if (node === undefined) return;
    if (this.frozen[i]) node.child.kill("SIGCONT");
    await node.kill("SIGKILL");
    this.#keepNodeLog(i);
    this.nodes[i] = undefined;
    this.frozen[i] = false;
  }

  freezeDatabase(i: number): void {
    const node = this.nodes[i];
    if (node === undefined || !node.running || this.frozen[i]) return;
    node.child.kill("SIGSTOP");
    this.frozen[i] = true;
  }

  thawDatabase(i: number): void {
    const node = this.nodes[i];
    if (node === undefined || !this.frozen[i]) return;
    node.child.kill("SIGCONT");
    this.frozen[i] = false;
  }

  #keepNodeLog(i: number): void {
    const node = this.nodes[i];
    if (node === undefined) return;
    this.#pastNodeLogs[i] = (this.#pastNodeLogs[i] ?? "") + node.stderr +
      "\n---- database restarted ----\n";
  }

  /** The logs of every run of database `i` so far, the current one last. */
  nodeLogs(i: number): string {
    return (this.#pastNodeLogs[i] ?? "") + (this.nodes[i]?.stderr ?? "");
  }

  /** The logs of every router run so far, the current one last. */
  get routerLogs(): string {
    return this.#pastLogs + this.router.stderr;
  }

  async restartRouter(): Promise<void> {
    await this.router.kill("SIGKILL");
    this.#pastLogs += this.router.stderr + "\n---- router restarted ----\n";
    this.router = this.#startRouter(String(this.port));
    await this.router.port();
  }

  /** One random fault, from `random`. */
  async nemesis(random: Random): Promise<void> {
    const i = random.int(this.nodes.length);
    switch (random.int(8)) {
      case 0:
        if (this.nodes[i] !== undefined) {
          await this.killDatabase(i);
          this.count("kill-database");
        } else {
          this.startDatabase(i);
          this.count("restart-database");
        }
        return;
      case 1:
        if (this.frozen[i]) {
          this.thawDatabase(i);
          this.count("thaw-database");
        } else {
          this.freezeDatabase(i);
          this.count("freeze-database");
        }
        return;
      case 2:
        this.relays[i]!.cut();
        this.count("cut-link");
        return;
      case 3:
        this.relays[i]!.mode = { kind: "blackhole" };
        this.count("blackhole-link");
        return;
      case 4:
        this.relays[i]!.mode = { kind: "delay", ms: 5 + random.int(50) };
        this.count("delay-link");
        return;
      case 5:
        if (random.int(3) === 0) {
          await this.restartRouter();
          this.count("restart-router");
        }
        return;
      default:
        // Healing steps keep the cluster alive often enough to make progress.
        this.relays[i]!.mode = { kind: "pass" };
        this.thawDatabase(i);
        if (this.nodes[i] === undefined) this.startDatabase(i);
        this.count("heal-link");
        return;
    }
  }

  /** Ends every fault: links pass, databases run, the router is up. */
  heal(): void {
    for (let i = 0; i < this.nodes.length; i++) {
      const relay = this.relays[i]!;
      if (relay.mode.kind === "blackhole") relay.cut();
      relay.mode = { kind: "pass" };
      this.thawDatabase(i);
      this.startDatabase(i);
    }
  }

  /**
   * Waits until `count` databases are ready and, unless `caughtUp` is false,
   * every one has applied everything. Only ask for `caughtUp` once the load
   * has stopped: under `--acks one` the others trail the fastest database,
   * and a busy cluster may never be caught up at the instant it is asked.
   */
  async waitReady(
    count = this.nodes.length,
    timeout = 60_000,
    caughtUp = true,
  ): Promise<void> {
    await this.#untilStats(
      (stats) =>
        stats.databases.filter((db) => db.state === "ready").length >= count &&
        (!caughtUp || stats.databases.every((db) => db.applied === stats.seq)),
      timeout,
      (stats) =>
        `The cluster did not settle within ${timeout} ms: ${
          stats === undefined ? "" : JSON.stringify(stats)
        }\nRouter log:\n${this.router.stderr.slice(-4000)}`,
    );
  }

  /** Keys the router's sweep had deleted, as its stats said last (since its last start). */
  swept = 0;

  /**
   * Waits until the router's expiry sweep has caught up to `time` (ms since
   * the epoch): every key expired by then deleted by a numbered operation.
   */
  async waitSweptTo(time: number, timeout = 60_000): Promise<void> {
    await this.#untilStats(
      (stats) => {
        this.swept = stats.expiry?.swept ?? 0;
        return (stats.expiry?.caughtUpAt ?? 0) > time;
      },
      timeout,
      (stats) =>
        `The expiry sweep did not catch up to ${time} within ${timeout} ms: ${
          stats === undefined ? "" : JSON.stringify(stats.expiry)
        }`,
    );
  }

  /**
   * Reads the router's stats every 50 ms, reconnecting when the router is
   * away (a restart), until `done` says yes; throws `failure`'s text (given
   * the last stats read) after `timeout` ms.
   */
  async #untilStats(
    done: (stats: RouterStats) => boolean,
    timeout: number,
    failure: (last: RouterStats | undefined) => string,
  ): Promise<void> {
    const deadline = performance.now() + timeout;
    let client: Client | undefined;
    let last: RouterStats | undefined;
    try {
      while (performance.now() < deadline) {
        try {
          client ??= await connect({ port: this.port, timeout: 2000 });
          last = await client.stats();
          if (done(last)) return;
        } catch {
          await client?.close();
          client = undefined;
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      throw new Error(failure(last));
    } finally {
      await client?.close();
    }
  }

  /**
   * Stops every database cleanly and reads each one's contents from its
   * file: each key's value, followed by {@linkcode EXPIRES} and its expiry
   * when it has one.
   */
  async contents(): Promise<Map<string, string>[]> {
    for (const [i, node] of this.nodes.entries()) {
      await node?.kill("SIGTERM");
      this.#keepNodeLog(i);
    }
    this.nodes.fill(undefined);
    const out: Map<string, string>[] = [];
    for (const path of this.paths) {
      await using db = await KvDatabase.open(path);
      const map = new Map<string, string>();
      for await (const chunk of db.snapshot({ chunkBytes: 256 * 1024 })) {
        for (const entry of chunk) {
          const value = decoder.decode(entry.value);
          map.set(
            decoder.decode(entry.key),
            entry.expiresAt === undefined
              ? value
              : `${value}${EXPIRES}${entry.expiresAt}`,
          );
        }
      }
      out.push(map);
    }
    return out;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (let i = 0; i < this.nodes.length; i++) {
      this.thawDatabase(i);
      await this.nodes[i]?.kill("SIGKILL");
    }
    await this.router?.kill("SIGKILL");
    for (const relay of this.relays) await relay[Symbol.asyncDispose]();
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/** A digest of a database's contents, for convergence checks. */
export async function digest(contents: Map<string, string>): Promise<string> {
  const text = [...contents].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
    .map(([k, v]) => `${k}\u0000${v}`).join("\u0001");
  const hash = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(text),
  );
  return toHex(new Uint8Array(hash));
}
