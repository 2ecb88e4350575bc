// A router and database nodes for the benchmarks, either all in this process
// ("inproc": Router.start and DatabaseNode.start, sharing one JavaScript
// thread with the client) or one process each ("proc": bench/_server.ts, so
// that router, nodes and client run on separate threads, as in production).
// Everything listens on 127.0.0.1, port 0, and is closed at cleanup.

import { connect, type RouterStats } from "../client/mod.ts";
import { Router } from "../router/mod.ts";
import {
  type Database,
  DatabaseNode,
  KvDatabase,
  MemoryDatabase,
} from "../database/mod.ts";
import { onCleanup, peakRssOf, rssOf, sleep } from "./_util.ts";

/** How to run the cluster. */
export type Mode = "inproc" | "proc";

/** A database node to start. */
export interface NodeSpec {
  /** The backend. */
  backend: "memory" | "kv";
  /** The Deno KV file, for `kv`. */
  path?: string;
  /** Group commit limit; 1 disables group commit. Default: the node's (4096). */
  maxBatch?: number;
  /** Clear the data and take a full copy from another database. */
  reset?: boolean;
}

/** A started node. */
export interface NodeHandle {
  /** Milliseconds from DatabaseNode.start to node.ready(). */
  ready(): Promise<number>;
  /** Keys the backend holds. */
  count(): Promise<number>;
  /** The process id, in `proc` mode. */
  readonly pid?: number;
  /** The end of the node's log, in `proc` mode. */
  log(): string;
  /** Deno.memoryUsage() of the node's process, after a GC when asked and possible. */
  memory(gc?: boolean): Promise<MemoryInfo>;
  /** Stops the node. */
  close(): Promise<void>;
}

/** Deno.memoryUsage(), and whether a full GC ran just before. */
export type MemoryInfo = Deno.MemoryUsage & { collected: boolean };

function localMemory(gc?: boolean): Promise<MemoryInfo> {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (gc && collect !== undefined) collect();
  return Promise.resolve({
    ...Deno.memoryUsage(),
    collected: !!gc && collect !== undefined,
  });
}

/** A router and its nodes. */
export interface Cluster {
  readonly mode: Mode;
  /** The router's port on 127.0.0.1. */
  readonly port: number;
  /** The router's process id, in `proc` mode. */
  readonly routerPid?: number;
  /** Starts a node. */
  startNode(spec: NodeSpec): Promise<NodeHandle>;
  /** The end of the router's log, in `proc` mode. */
  routerLog(): string;
  /** Deno.memoryUsage() of the router's process, after a GC when asked and possible. */
  routerMemory(gc?: boolean): Promise<MemoryInfo>;
  /** router.stats(). */
  routerStats(): Promise<RouterStats>;
  /** Stops every node and the router. */
  close(): Promise<void>;
}

/** Starts a cluster's router. */
export function startCluster(mode: Mode): Promise<Cluster> {
  return mode === "inproc" ? startInProcess() : startProcesses();
}

// ----------------------------------------------------------------- inproc

async function startInProcess(): Promise<Cluster> {
  const router = await Router.start({ hostname: "127.0.0.1", port: 0 });
  const nodes: DatabaseNode[] = [];
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    for (const node of nodes) await node.close().catch(() => {});
    await router.close().catch(() => {});
  };
  const unregister = onCleanup(close);
  return {
    mode: "inproc",
    port: router.port,
    routerLog: () => JSON.stringify(router.stats()),
    routerMemory: localMemory,
    routerStats: () => Promise.resolve(router.stats()),
    async startNode(spec) {
      const database: Database = spec.backend === "memory"
        ? new MemoryDatabase()
        : await KvDatabase.open(spec.path);
      const started = performance.now();
      const node = DatabaseNode.start({
        database,
        hostname: "127.0.0.1",
        port: router.port,
        reset: spec.reset,
        maxBatch: spec.maxBatch,
      });
      nodes.push(node);
      const ready = node.ready().then(() => performance.now() - started);
      ready.catch(() => {});
      return {
        ready: () => ready,
        count: () => database.count(),
        log: () => `(in process; node status ${node.status})`,
        memory: localMemory,
        close: () => node.close(),
      };
    },
    async close() {
      unregister();
      await close();
    },
  };
}

// ------------------------------------------------------------------- proc

const SERVER = new URL("./_server.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;
const VERBOSE = Deno.env.get("KVNDB_BENCH_VERBOSE") === "1";
/** Extra `deno run` flags for the children, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof". */
const CHILD_FLAGS = (Deno.env.get("KVNDB_BENCH_DENO_FLAGS") ?? "").split(" ")
  .filter((flag) => flag !== "");

/** A child process speaking the line protocol of bench/_server.ts. */
class Child {
  readonly process: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #lines: string[] = [];
  #waiters: (() => void)[] = [];
  #ended = false;
  #stderr = "";
  #status?: Deno.CommandStatus;

  constructor(args: string[]) {
    const process = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", ...CHILD_FLAGS, "--config", CONFIG, SERVER, ...args],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.process = process;
    this.#writer = process.stdin.getWriter();
    this.#read();
    (async () => {
      for await (
        const text of process.stderr.pipeThrough(new TextDecoderStream())
      ) {
        this.#stderr = (this.#stderr + text).slice(-4000);
        if (VERBOSE) Deno.stderr.writeSync(new TextEncoder().encode(text));
      }
    })().catch(() => {});
    process.status.then((status) => this.#status = status);
  }

  get pid(): number {
    return this.process.pid;
  }

  /** The end of what the child wrote to standard error. */
  get stderr(): string {
    return this.#stderr;
  }

  async #read(): Promise<void> {
    let buffer = "";
    try {
      for await (
        const text of this.process.stdout.pipeThrough(new TextDecoderStream())
      ) {
        buffer += text;
        let i;
        while ((i = buffer.indexOf("\n")) >= 0) {
          this.#lines.push(buffer.slice(0, i));
          buffer = buffer.slice(i + 1);
        }
        this.#wake();
      }
    } finally {
      this.#ended = true;
      this.#wake();
    }
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  /** Waits for the next line that starts with `prefix`; returns the rest. */
  async expect(prefix: string, timeoutMs = Infinity): Promise<string> {
    const deadline = performance.now() + timeoutMs;
    while (true) {
      const i = this.#lines.findIndex((line) =>
        line.startsWith(prefix) || line.startsWith("failed")
      );
      if (i >= 0) {
        const [line] = this.#lines.splice(i, 1);
        if (line!.startsWith("failed")) throw new Error(`${line}`);
        return line!.slice(prefix.length).trim();
      }
      if (this.#ended) {
        throw new Error(
          `Child ${this.pid} ended (${
            JSON.stringify(this.#status)
          }) before "${prefix}": ${this.#stderr}`,
        );
      }
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`Timed out waiting for "${prefix}"`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 1_000));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Sends a command and waits for its answer, the line after `prefix`. */
  async query(line: string, prefix: string): Promise<string> {
    await this.send(line);
    return await this.expect(prefix, 60_000);
  }

  async send(line: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(line + "\n"));
  }

  /** Asks the child to quit, then kills it if it lingers. */
  async stop(): Promise<void> {
    if (this.#status === undefined) {
      await this.send("quit").catch(() => {});
      await this.#writer.close().catch(() => {});
      const done = await Promise.race([
        this.process.status.then(() => true),
        sleep(5_000).then(() => false),
      ]);
      if (!done) {
        try {
          this.process.kill("SIGKILL");
        } catch {
          // Already gone.
        }
        await this.process.status;
      }
    }
    await this.process.stdout.cancel().catch(() => {});
    await this.process.stderr.cancel().catch(() => {});
  }
}

async function startProcesses(): Promise<Cluster> {
  const children: Child[] = [];
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    // Nodes first, the router last.
    for (const child of children.reverse()) await child.stop();
  };
  const unregister = onCleanup(close);
  const router = new Child(["router"]);
  children.push(router);
  const port = Number(await router.expect("port ", 30_000));
  return {
    mode: "proc",
    port,
    routerPid: router.pid,
    routerLog: () => router.stderr,
    routerMemory: async (gc) =>
      JSON.parse(await router.query(gc ? "mem gc" : "mem", "mem ")),
    routerStats: async () => JSON.parse(await router.query("stats", "stats ")),
    startNode(spec) {
      const args = ["node", String(port), spec.backend];
      if (spec.backend === "kv") args.push(spec.path!);
      if (spec.maxBatch !== undefined) {
        args.push("--max-batch", String(spec.maxBatch));
      }
      if (spec.reset) args.push("--reset");
      const child = new Child(args);
      children.push(child);
      const ready = child.expect("ready ").then(Number);
      ready.catch(() => {});
      return Promise.resolve({
        pid: child.pid,
        ready: () => ready,
        log: () => child.stderr,
        memory: async (gc) =>
          JSON.parse(await child.query(gc ? "mem gc" : "mem", "mem ")),
        async count() {
          await child.send("count");
          return Number(await child.expect("count "));
        },
        close: () => child.stop(),
      });
    },
    async close() {
      unregister();
      await close();
    },
  };
}

/** Current and peak RSS of a process in `proc` mode, or of this process. */
export function memoryOf(pid?: number): { rss: number; peak: number } {
  if (pid === undefined) {
    return { rss: Deno.memoryUsage().rss, peak: peakRssOf(Deno.pid) };
  }
  return { rss: rssOf(pid), peak: peakRssOf(pid) };
}

/**
 * Waits for a node to be ready, at most `timeoutMs`; on timeout throws with
 * the router's statistics and the end of both logs, to show where it stuck.
 */
export async function readyWithin(
  cluster: Cluster,
  node: NodeHandle,
  timeoutMs: number,
): Promise<number> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const ms = await Promise.race([
    node.ready(),
    new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  if (ms !== undefined) return ms;
  let stats = "";
  try {
    const client = await connect({ hostname: "127.0.0.1", port: cluster.port });
    stats = JSON.stringify(await client.stats({ timeout: 5_000 }));
    await client.close();
  } catch (error) {
    stats = `(no statistics: ${error})`;
  }
  throw new Error(
    `The node was not ready within ${timeoutMs} ms.\nRouter statistics: ${stats}\n--- router log:\n${cluster.routerLog()}\n--- node log:\n${node.log()}`,
  );
}
