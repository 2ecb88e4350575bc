/**
 * The `kvndb` command: `kvndb MODE [host] [port] [arguments...] [options]`.
 * Run `kvndb --help` for the modes and options.
 *
 * @example Running the command line from a program
 * ```ts ignore
 * import { run } from "./main.ts";
 * Deno.exitCode = await run(["cmd", "127.0.0.1", "54565"]);
 * ```
 *
 * @module
 */

import { type CliArgs, HELP, parseCli, USAGE } from "./cli/args.ts";
import { BENCH_USAGE, parseBenchArgs, runBench } from "./cli/bench.ts";
import { dump, restore } from "./cli/dump.ts";
import { verify } from "./cli/verify.ts";
import { setupLogging } from "./cli/logging.ts";
import { type Client, connect } from "./client/mod.ts";
import { formatStats, KvndbConsole, runConsole } from "./console/mod.ts";
import {
  type Database,
  DatabaseNode,
  KvDatabase,
  MemoryDatabase,
} from "./database/mod.ts";
import {
  describeEndpoint,
  type Endpoint,
  KvndbError,
  sleep,
  toHex,
} from "./protocol/mod.ts";
import { Router } from "./router/mod.ts";

const encoder = new TextEncoder();

function printError(text: string): void {
  Deno.stderr.writeSync(encoder.encode(text + "\n"));
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Resolves on SIGINT or SIGTERM, and removes its listeners then. */
function untilSignal(): { promise: Promise<string>; cancel: () => void } {
  const { promise, resolve } = Promise.withResolvers<string>();
  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT"]
    : ["SIGINT", "SIGTERM"];
  const handlers = signals.map((signal) => {
    const handler = () => resolve(signal);
    Deno.addSignalListener(signal, handler);
    return [signal, handler] as const;
  });
  const cancel = () => {
    for (const [signal, handler] of handlers) {
      Deno.removeSignalListener(signal, handler);
    }
  };
  promise.then(cancel);
  return { promise, cancel };
}

/**
 * Runs the command line.
 *
 * @param args The arguments, without the program name.
 * @returns The exit status: 0 on success, 1 on failure, 2 for bad arguments.
 * @example
 * ```ts ignore
 * import { run } from "./main.ts";
 * console.log(await run(["--help"])); // 0
 * ```
 */
export async function run(args: string[]): Promise<number> {
  if (args[0] === "bench") return await runBenchMode(args.slice(1));
  let cli: CliArgs;
  try {
    cli = parseCli(args, (name) => Deno.env.get(name));
  } catch (error) {
    printError(`Error: ${messageOf(error)}`);
    printError(USAGE);
    return 2;
  }
  if (cli.help) {
    Deno.stdout.writeSync(encoder.encode(HELP));
    return 0;
  }
  let closeLog: () => Promise<void>;
  try {
    closeLog = await setupLogging({
      verbose: cli.verbose,
      logfile: cli.logfile,
    });
  } catch (error) {
    printError(`Error: Cannot open the log file: ${messageOf(error)}`);
    return 1;
  }
  try {
    switch (cli.mode) {
      case "router":
        return await runRouter(cli);
      case "serve":
        return await runServe(cli);
      case "cmd":
        return await runCmd(cli);
      case "forget":
        return await runForget(cli);
      case "stats":
        return await runStats(cli);
      case "dump":
        return await runDump(cli);
      case "restore":
        return await runRestore(cli);
      case "verify":
        return await runVerify(cli);
      default:
        return await runDatabase(cli);
    }
  } catch (error) {
    printError(`Error: ${messageOf(error)}`);
    if (
      !(error instanceof KvndbError) &&
      !(error instanceof Deno.errors.AddrInUse) && cli.verbose
    ) {
      printError(String((error as Error)?.stack ?? error));
    }
    return 1;
  } finally {
    await closeLog();
  }
}

/** The router's state file: `--state`, else a default that fits the mode. */
function stateFile(cli: CliArgs): string | undefined {
  if (cli.state === "none") return undefined;
  if (cli.state !== undefined) return cli.state;
  if (cli.mode === "router") return "kvndb-router.json";
  if (cli.memory) return undefined;
  return `${cli.arguments[0] ?? "kvndb.db"}.router.json`;
}

async function runBenchMode(args: string[]): Promise<number> {
  let options;
  try {
    options = parseBenchArgs(args, (name) => Deno.env.get(name));
  } catch (error) {
    printError(`Error: ${messageOf(error)}`);
    printError(BENCH_USAGE);
    return 2;
  }
  try {
    const results = await runBench(options);
    return results.every((r) => r.errors === 0) ? 0 : 1;
  } catch (error) {
    printError(`Error: ${messageOf(error)}`);
    return 1;
  }
}

async function startRouter(cli: CliArgs): Promise<Router> {
  try {
    return await Router.start({
      stateFile: stateFile(cli),
      insecure: cli.insecure,
      maxConnections: cli.maxConnections,
      maxInFlight: cli.maxInFlight,
      maxBufferedBytes: cli.maxBuffer,
      heartbeatTimeout: cli.heartbeatTimeout,
      heartbeatInterval: Math.min(1_000, cli.heartbeatTimeout / 4),
      recoveryTimeout: cli.recoveryTimeout,
      volatileGrace: cli.volatileGrace,
      respPort: cli.respPort,
      httpPort: cli.httpPort,
      kvPort: cli.kvPort,
      endpoint: cli.endpoint,
      password: cli.password,
      acks: cli.acks,
      balance: cli.balance,
      requestTimeout: cli.timeout,
    });
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) {
      throw new Error(
        `Cannot listen on ${
          describeEndpoint(cli.endpoint)
        }: the address is in use (is another router running?)`,
      );
    }
    throw error;
  }
}

function respNote(router: Router): string {
  return (router.respPort === undefined
    ? ""
    : `; Redis protocol on port ${router.respPort}`) +
    (router.httpPort === undefined
      ? ""
      : `; HTTP (/health) on port ${router.httpPort}`) +
    (router.kvPort === undefined
      ? ""
      : `; KV Connect (Deno.openKv) on port ${router.kvPort}`);
}

async function runRouter(cli: CliArgs): Promise<number> {
  const signal = untilSignal();
  await using router = await startRouter(cli);
  printError(
    `KVNDB router listening on ${describeEndpoint(router.endpoint)}${
      cli.password === undefined ? "" : " (password required)"
    }${respNote(router)}`,
  );
  await signal.promise;
  return 0;
}

async function openDatabase(cli: CliArgs): Promise<Database> {
  if (cli.mode === "memory" || cli.mode === "ram" || cli.memory) {
    return new MemoryDatabase();
  }
  return await KvDatabase.open(cli.arguments[0] ?? "kvndb.db");
}

/**
 * Where a node in the same process reaches a router listening on `endpoint`.
 * Over TLS it trusts `--ca`, or else the router's own certificate (which
 * works for a self-signed one).
 */
function localEndpoint(endpoint: Endpoint): Endpoint {
  if (endpoint.type !== "tls") return { ...endpoint };
  return { ...endpoint, caFile: endpoint.caFile ?? endpoint.certFile };
}

async function runServe(cli: CliArgs): Promise<number> {
  const signal = untilSignal();
  await using router = await startRouter(cli);
  const database = await openDatabase(cli);
  await using node = DatabaseNode.start({
    database,
    endpoint: localEndpoint(router.endpoint),
    // Same process: a socketless link, with the same frames and handshake.
    dial: () => router.connectInProcess(),
    password: cli.password,
    reset: cli.reset,
    resetSleep: cli.resetSleep,
  });
  await Promise.race([node.ready(), node.stopped]);
  printError(
    `KVNDB serving on ${
      describeEndpoint(router.endpoint)
    } with a ${database.kind} database${
      database.kind === "kv" ? ` (${cli.arguments[0] ?? "kvndb.db"})` : ""
    }${respNote(router)}`,
  );
  const stopped = await Promise.race([signal.promise, node.stopped]);
  signal.cancel();
  if (stopped instanceof Error) throw stopped;
  return 0;
}

async function runDatabase(cli: CliArgs): Promise<number> {
  const signal = untilSignal();
  const database = await openDatabase(cli);
  await using node = DatabaseNode.start({
    database,
    endpoint: cli.endpoint,
    password: cli.password,
    reset: cli.reset,
    resetSleep: cli.resetSleep,
  });
  printError(
    `KVNDB ${database.kind} database connecting to ${
      describeEndpoint(cli.endpoint)
    }`,
  );
  const stopped = await Promise.race([signal.promise, node.stopped]);
  signal.cancel();
  if (stopped instanceof Error) throw stopped;
  return 0;
}

async function connectClient(cli: CliArgs): Promise<Client> {
  try {
    return await connect({
      endpoint: cli.endpoint,
      password: cli.password,
      timeout: cli.timeout,
    });
  } catch (error) {
    throw new Error(
      `Cannot connect to the router at ${describeEndpoint(cli.endpoint)}: ${
        messageOf(error)
      }`,
      { cause: error },
    );
  }
}

/** `kvndb forget`: the console's `forget` command, once. */
async function runForget(cli: CliArgs): Promise<number> {
  await using client = await connectClient(cli);
  const kvndb = new KvndbConsole(client, {
    interactive: false,
    // Deno's confirm() reads the answer from a terminal; without one, no.
    confirm: (question) =>
      Promise.resolve(Deno.stdin.isTerminal() && confirm(question)),
  });
  const words = [
    "forget",
    ...cli.arguments,
    ...(cli.allAbsent ? ["--all-absent"] : []),
    ...(cli.yes ? ["--yes"] : []),
  ];
  return await kvndb.execute(words.join(" ")) ? 0 : 1;
}

/** `kvndb stats`: the router's view, once or every `--watch` seconds. */
async function runStats(cli: CliArgs): Promise<number> {
  await using client = await connectClient(cli);
  const stop = untilSignal();
  const stopped = new AbortController();
  stop.promise.then(() => stopped.abort());
  const terminal = Deno.stdout.isTerminal();
  try {
    while (true) {
      const stats = await client.stats();
      const text = cli.json
        ? JSON.stringify(stats) + "\n"
        : formatStats(stats).join("\n") + "\n";
      // On a terminal, --watch redraws in place: home, then clear.
      const clear = cli.watch !== undefined && terminal && !cli.json
        ? "\x1b[H\x1b[2J"
        : "";
      const separator = cli.watch !== undefined && !terminal && !cli.json
        ? "\n"
        : "";
      // A pipe may take less than all at once.
      const bytes = encoder.encode(clear + text + separator);
      for (let written = 0; written < bytes.length;) {
        written += await Deno.stdout.write(bytes.subarray(written));
      }
      if (cli.watch === undefined) return 0;
      // Ctrl-C or SIGTERM ends the watch.
      if (!await sleep(cli.watch, stopped.signal)) return 0;
    }
  } finally {
    stop.cancel();
  }
}

/**
 * A progress bar on standard error, when it is a terminal: `done` of
 * `total` (keys, or bytes with `unit`), redrawn in place.
 */
function progress(
  what: string,
  total: number,
): ((keys: number, done?: number) => void) | undefined {
  if (!Deno.stderr.isTerminal()) return undefined;
  return (keys, done = keys) => {
    const ratio = total > 0 ? Math.min(1, done / total) : 1;
    const filled = Math.round(ratio * 30);
    Deno.stderr.writeSync(
      encoder.encode(
        `\r${what} [${"#".repeat(filled)}${"-".repeat(30 - filled)}] ${
          Math.floor(ratio * 100)
        }% ${keys.toLocaleString("en")} keys`,
      ),
    );
  };
}

/** `kvndb dump`: every key to a file or standard output, as NDJSON. */
async function runDump(cli: CliArgs): Promise<number> {
  await using client = await connectClient(cli);
  const started = performance.now();
  const file = cli.output === undefined
    ? undefined
    : await Deno.open(cli.output, {
      write: true,
      create: true,
      truncate: true,
    });
  const output = (file?.writable ?? Deno.stdout.writable).getWriter();
  try {
    // The count is read before the dump, so the bar is a close estimate.
    const show = progress("Dumping", await client.count());
    const { sequence, keys } = await dump(client, {
      output,
      ...(show === undefined ? {} : { progress: show }),
    });
    if (file !== undefined) await output.close();
    printError(
      `${
        show === undefined ? "" : "\n"
      }Dumped ${keys} keys at sequence ${sequence}${
        cli.output === undefined ? "" : ` to ${cli.output}`
      } in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
    return 0;
  } finally {
    output.releaseLock();
    try {
      file?.close();
    } catch {
      // Closed with its stream.
    }
  }
}

/** `kvndb restore`: a dump written back through the router. */
async function runRestore(cli: CliArgs): Promise<number> {
  await using client = await connectClient(cli);
  const started = performance.now();
  const file = cli.input === undefined
    ? undefined
    : await Deno.open(cli.input, { read: true });
  const show = progress(
    "Restoring",
    cli.input === undefined ? 0 : (await Deno.stat(cli.input)).size,
  );
  const { keys, expired, sequence } = await restore(
    client,
    file?.readable ?? Deno.stdin.readable,
    {
      replace: cli.replace,
      ...(show === undefined ? {} : { progress: show }),
    },
  );
  printError(
    `${show === undefined ? "" : "\n"}Restored ${keys} keys${
      expired > 0 ? ` (${expired} expired, skipped)` : ""
    } from a dump at sequence ${sequence} in ${
      ((performance.now() - started) / 1000).toFixed(1)
    } s`,
  );
  return 0;
}

/** A key for people: text when it is printable UTF-8, else hex. */
function showKey(key: Uint8Array): string {
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(key);
    // Printable: no control characters.
    if (![...text].some((c) => c.charCodeAt(0) < 0x20)) {
      return JSON.stringify(text);
    }
  } catch {
    // Not text.
  }
  return `0x${toHex(key)}`;
}

/** `kvndb verify`: do the databases hold the same data? */
async function runVerify(cli: CliArgs): Promise<number> {
  await using client = await connectClient(cli);
  const started = performance.now();
  const show = progress("Comparing", await client.count());
  const verdict = await verify(client, {
    repair: cli.repair,
    ...(show === undefined ? {} : { progress: show }),
  });
  if (show !== undefined) printError("");
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  if (verdict.databases.length < 2) {
    console.log(
      `Nothing to compare: ${verdict.databases.length} database ready (verify compares two or more)`,
    );
    return 0;
  }
  for (const difference of verdict.differences) {
    const held = [...difference.held].map(([id, entry]) =>
      `database ${id}: ${
        entry === null
          ? "absent"
          : `version ${entry.version}, ${entry.value.length} bytes${
            entry.expiresAt === undefined ? "" : `, expires ${entry.expiresAt}`
          }`
      }`
    ).join("; ");
    console.log(`${showKey(difference.key)} differs: ${held}`);
  }
  const summary = `Compared ${verdict.keys} keys on databases ${
    verdict.databases.join(", ")
  } in ${seconds} s`;
  if (verdict.repaired > 0) {
    console.log(
      `${summary}: repaired ${verdict.repaired} keys; ${verdict.differences.length} still differ`,
    );
  } else if (verdict.differences.length === 0) {
    console.log(`${summary}: they agree`);
  } else {
    console.log(
      `${summary}: ${verdict.differences.length} keys differ (kvndb verify --repair writes them again)`,
    );
  }
  return verdict.differences.length === 0 ? 0 : 1;
}

async function runCmd(cli: CliArgs): Promise<number> {
  await using client = await connectClient(cli);
  return await runConsole(client, {
    banner: `Connected to KVNDB at ${
      describeEndpoint(cli.endpoint)
    }. Type help for the commands.`,
  });
}

if (import.meta.main) {
  Deno.exit(await run(Deno.args));
}
