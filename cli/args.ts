/**
 * Command-line parsing: `kvndb MODE [host] [port] [arguments...] [options]`,
 * the original's interface, with `node:util`'s `parseArgs` doing the work.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  type AckName,
  DEFAULT_PORT,
  type Endpoint,
  InvalidArgumentError,
  parseAckLevel,
  parseEndpoint,
  parsePort,
  type TransportType,
} from "../protocol/mod.ts";
import type { BalanceMode } from "../router/mod.ts";

/** The modes `kvndb` runs in. */
export const MODES = [
  "router",
  "serve",
  "cmd",
  "stats",
  "dump",
  "restore",
  "verify",
  "forget",
  "memory",
  "ram",
  "kv",
] as const;

/** One of {@linkcode MODES}. */
export type Mode = typeof MODES[number];

/** Everything the command line said. */
export interface CliArgs {
  /** The mode. */
  mode: Mode;
  /** Where to listen (router, serve) or connect (everything else). */
  endpoint: Endpoint;
  /** Arguments for the database backend (such as the Deno KV path). */
  arguments: string[];
  /** The password, from `-p` or `KVNDB_PASSWORD`. */
  password?: string;
  /** `-v`. */
  verbose: boolean;
  /** `-l FILE`. */
  logfile?: string;
  /** `-r`. */
  reset: boolean;
  /** `--reset-sleep SECONDS`. */
  resetSleep: number;
  /** `--acks`. */
  acks: AckName;
  /** `--balance`. */
  balance: BalanceMode;
  /** `--timeout`, in milliseconds. */
  timeout: number;
  /** `serve --memory`: embed a memory database instead of Deno KV. */
  memory: boolean;
  /** `--state FILE`: the router's state file; `undefined` for the default. */
  state?: string;
  /** `--insecure`: no protected mode. */
  insecure: boolean;
  /** `--max-connections`. */
  maxConnections: number;
  /** `--max-inflight`. */
  maxInFlight: number;
  /** `--max-buffer`, in bytes. */
  maxBuffer: number;
  /** `--heartbeat-timeout`, in milliseconds. */
  heartbeatTimeout: number;
  /** `--recovery-timeout`, in milliseconds; `undefined` waits for as long as it takes. */
  recoveryTimeout?: number;
  /** `--volatile-grace`, in milliseconds. */
  volatileGrace: number;
  /** `--resp-port`: serve the Redis protocol there too. */
  respPort?: number;
  /** `--http-port`: serve HTTP (`/health`) there too. */
  httpPort?: number;
  /** `--kv-port`: serve KV Connect (Deno KV) there too. */
  kvPort?: number;
  /** `forget --all-absent`. */
  allAbsent: boolean;
  /** `forget --yes`: do not ask. */
  yes: boolean;
  /** `dump -o FILE`: where the dump goes (standard output without it). */
  output?: string;
  /** `restore -i FILE`: the dump to read (standard input without it). */
  input?: string;
  /** `restore --replace`: delete every key first. */
  replace: boolean;
  /** `verify --repair`: write the keys that differ again. */
  repair: boolean;
  /** `stats --json`: print JSON for scripts. */
  json: boolean;
  /** `stats --watch SECONDS`: print again every so often, in milliseconds. */
  watch?: number;
  /** `--help`. */
  help: boolean;
}

/** The one-line usage printed with argument errors. */
export const USAGE =
  "usage: kvndb MODE [host] [port] [arguments...] [options]   (MODE: router, serve, cmd, stats, forget, memory, ram, kv; --help for more)";

/** The full help text. */
export const HELP = `KVNDB: a key/value network database.

usage: kvndb MODE [host] [port] [arguments...] [options]

Modes:
  router            Run the router: every client and database connects to it.
  serve [PATH]      Run a router and a Deno KV database in one process
                    (--memory for a memory database): one command, one server.
  cmd               Open the console, connected to a router.
  stats [--json] [--watch SECONDS]
                    Print the router's view of the cluster (the console's
                    stats): its databases with their state and position, the
                    members, a hold and its reason. --json prints the router's
                    statistics as JSON for scripts (one line each time);
                    --watch prints them again every SECONDS until Ctrl-C
                    (on a terminal, in place).
  dump [-o FILE]     Write every key, its value, version and expiry to FILE
                    (or standard output) as NDJSON: a first line with the
                    cluster id, the sequence number and the date, then one
                    JSON object a key ("key", "value", "version",
                    "expiresAt"; "keyEncoding"/"valueEncoding": "base64"
                    for bytes that are not UTF-8). Consistent at that
                    sequence number while writes go on; memory stays flat.
  restore [-i FILE] [--replace]
                    Write a dump back through the router (up to 100 keys an
                    atomic operation; expired keys skipped). --replace deletes
                    every key first; otherwise existing keys are overwritten and
                    others kept. A malformed line stops it, naming the line;
                    nothing from there on is written.
  verify [--repair]  Compare every ready database's contents by digests over
                    key ranges (10,000 keys each; only ranges that differ are
                    compared key by key), and name the keys that differ and
                    how each database holds them. Differences from writes
                    still on their way are looked at again first. --repair
                    writes each differing key again with the value most
                    databases hold (the first database's on a tie). Exits 1
                    while differences remain.
  forget NODE_ID... | forget --all-absent [--yes]
                    Tell a router that waits for absent members (databases
                    that held every acknowledged write) to give up on them,
                    when they are gone for good. NODE_ID may be the start of
                    an id, as the console's stats lists them. Acknowledged
                    writes that only they hold are lost. Asks first on a
                    terminal; --yes does not ask (needed in scripts).
  memory, ram       Run a database node that keeps its data in memory.
  kv [PATH]         Run a database node on Deno KV at PATH (default kvndb.db,
                    or an https:// KV Connect URL with DENO_KV_ACCESS_TOKEN).
  bench             Load a router like redis-benchmark: kvndb bench [host]
                    [port] -c CLIENTS -n REQUESTS -P PIPELINE -d BYTES
                    -t set,get,del,keys -r KEYSPACE [--json]; prints
                    requests per second and latency p50, p99, p99.9.

Arguments:
  host              Router: the address to listen on. Others: the router's
                    address. Default 0.0.0.0 (connecting: this machine).
  port              The router's port. Default ${DEFAULT_PORT}.
  arguments         Passed to the database backend (the Deno KV path).

Options:
  -t, --type T      Transport: tcp, tcp6, tls or unix (default tcp).
  -e, --endpoint E  A full endpoint; overrides host, port and -t:
                      tcp:port=54565:interface=0.0.0.0
                      tcp6:port=54565:interface=\\:\\:1
                      tls:port=54565:certKey=cert.pem:privateKey=key.pem
                      tls:host=db.example:port=54565:caCerts=ca.pem
                      unix:path=/tmp/kvndb.sock
      --cert FILE   TLS certificate chain (router, serve).
      --key FILE    TLS private key (router, serve).
      --ca FILE     TLS CA certificate to trust (cmd, databases).
  -p, --password P  Router: require this password. Others: send it.
                    Also read from KVNDB_PASSWORD, which keeps it out of ps.
  -v, --verbose     Log joins, leaves, syncs and more to standard error.
  -l, --logfile F   Log to this file too.
  -r, --reset       Database: clear the data, then copy it from the others.
      --reset-sleep S
                    Database: pause S seconds after each sync chunk, to
                    spare live traffic (default 0).
      --acks LEVEL  Router: databases that must apply a write before it is
                    acknowledged: all (default), majority or one.
      --balance B   Router: how reads are spread: least-loaded (default)
                    or random.
      --timeout MS  Request timeout in milliseconds (default 10000).
      --memory      serve: embed a memory database instead of Deno KV.
      --state FILE  Router: where to remember the cluster id and which
                    databases are ready, so that a restarted router waits
                    for one that has every acknowledged write. Default
                    kvndb-router.json (serve: PATH.router.json beside the
                    Deno KV file; none with --memory). "none" turns it off.
      --insecure    Router: serve peers from other machines even without a
                    password. Without it, a router with no password that
                    listens beyond loopback serves only this machine.
      --max-connections N
                    Router: connections at once (default 10000).
      --max-inflight N
                    Router: unanswered requests per connection (default
                    10000); past it, requests get an error.
      --max-buffer BYTES
                    Router: unread output per connection before it is
                    dropped (default 67108864, 64 MiB); a database that
                    falls this far behind is dropped and syncs again.
      --heartbeat-timeout MS
                    Router: drop a database silent this long (default 5000;
                    the router pings every second).
      --recovery-timeout MS
                    Router: after a restart, how long to wait for the
                    databases that were ready before serving with those
                    present (default: as long as it takes; going on without
                    them can lose acknowledged writes).
      --volatile-grace MS
                    Router: how long a memory database that held every
                    acknowledged write may be away before the router stops
                    waiting for it (default 10000). Its data died with its
                    process; a live one whose link broke is back sooner.
                    Deno KV databases are waited for as long as it takes
                    (see forget).
      --resp-port P Router, serve: also speak the Redis protocol (RESP2) on
                    TCP port P, for redis-cli, redis-benchmark and Redis
                    client libraries (GET, SET, INCR, MULTI/EXEC, KEYS, …).
      --http-port P Router, serve: also serve HTTP on TCP port P: /health
                    answers 200 while reads and writes are served, else 503
                    and why; /metrics is for Prometheus. The router's password
                    guards both (basic auth or Authorization: Bearer); HTTPS
                    with the router's --cert.
      --kv-port P   Router, serve: also serve KV Connect on TCP port P, so
                    that Deno.openKv("http://HOST:P") reads and writes this
                    cluster (HTTP/2; https with the router's --cert). The
                    access token (DENO_KV_ACCESS_TOKEN) is the password.
  -h, --help        Show this help.

Examples:
  kvndb serve 127.0.0.1 54565
  kvndb router 0.0.0.0 54565 -p secret
  kvndb memory 127.0.0.1 54565 -p secret
  kvndb kv 127.0.0.1 54565 /var/lib/kvndb/data.db -r
  kvndb cmd 127.0.0.1 54565
`;

/**
 * Parses the command line.
 *
 * @param args The arguments, without the program name.
 * @param env Reads an environment variable (for `KVNDB_PASSWORD`).
 * @returns The parsed arguments.
 * @throws {InvalidArgumentError} Saying what is wrong.
 * @example
 * ```ts
 * import { parseCli } from "./args.ts";
 * const args = parseCli(["router", "127.0.0.1", "5000"], () => undefined);
 * console.log(args.mode, args.endpoint.port); // router 5000
 * ```
 */
export function parseCli(
  args: string[],
  env: (name: string) => string | undefined,
): CliArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        type: { type: "string", short: "t" },
        endpoint: { type: "string", short: "e" },
        password: { type: "string", short: "p" },
        verbose: { type: "boolean", short: "v" },
        logfile: { type: "string", short: "l" },
        reset: { type: "boolean", short: "r" },
        output: { type: "string", short: "o" },
        input: { type: "string", short: "i" },
        replace: { type: "boolean" },
        repair: { type: "boolean" },
        "reset-sleep": { type: "string" },
        acks: { type: "string" },
        balance: { type: "string" },
        timeout: { type: "string" },
        cert: { type: "string" },
        key: { type: "string" },
        ca: { type: "string" },
        memory: { type: "boolean" },
        state: { type: "string" },
        insecure: { type: "boolean" },
        "max-connections": { type: "string" },
        "max-inflight": { type: "string" },
        "max-buffer": { type: "string" },
        "heartbeat-timeout": { type: "string" },
        "recovery-timeout": { type: "string" },
        "volatile-grace": { type: "string" },
        "resp-port": { type: "string" },
        "http-port": { type: "string" },
        "kv-port": { type: "string" },
        "all-absent": { type: "boolean" },
        yes: { type: "boolean" },
        json: { type: "boolean" },
        watch: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (cause) {
    throw new InvalidArgumentError((cause as Error).message, { cause });
  }
  const { values, positionals } = parsed;
  const help = values.help ?? false;
  const [modeText, host, portText, ...rest] = positionals;
  if (modeText === undefined) {
    if (help) return defaults("router", help);
    throw new InvalidArgumentError("No mode given");
  }
  if (!(MODES as readonly string[]).includes(modeText)) {
    throw new InvalidArgumentError(
      `Unknown mode '${modeText}' (expected ${MODES.join(", ")})`,
    );
  }
  const mode = modeText as Mode;
  const endpoint = endpointFromArgs(values, {
    host,
    port: portText,
    flag: "-t",
  });
  endpoint.certFile ??= values.cert;
  endpoint.keyFile ??= values.key;
  endpoint.caFile ??= values.ca;
  const acks = values.acks ?? "all";
  if (parseAckLevel(acks) === undefined) {
    throw new InvalidArgumentError(
      `Unknown --acks '${acks}' (expected all, majority or one)`,
    );
  }
  const balance = values.balance ?? "least-loaded";
  if (balance !== "least-loaded" && balance !== "random") {
    throw new InvalidArgumentError(
      `Unknown --balance '${balance}' (expected least-loaded or random)`,
    );
  }
  const resetSleep = parseNumber(values["reset-sleep"] ?? "0", "--reset-sleep");
  const timeout = parseNumber(values.timeout ?? "10000", "--timeout");
  if (timeout <= 0) {
    throw new InvalidArgumentError("--timeout must be more than 0");
  }
  if (
    rest.length > 0 && mode !== "kv" && mode !== "serve" && mode !== "forget"
  ) {
    throw new InvalidArgumentError(
      `Unexpected argument '${rest[0]}' for mode ${mode}`,
    );
  }
  if (values.output !== undefined && mode !== "dump") {
    throw new InvalidArgumentError("-o is for the dump mode only");
  }
  if ((values.input !== undefined || values.replace) && mode !== "restore") {
    throw new InvalidArgumentError(
      `${values.replace ? "--replace" : "-i"} is for the restore mode only`,
    );
  }
  if (values.repair && mode !== "verify") {
    throw new InvalidArgumentError("--repair is for the verify mode only");
  }
  if ((values.json || values.watch !== undefined) && mode !== "stats") {
    throw new InvalidArgumentError(
      `${values.json ? "--json" : "--watch"} is for the stats mode only`,
    );
  }
  let watch: number | undefined;
  if (values.watch !== undefined) {
    const seconds = parseNumber(values.watch, "--watch");
    if (seconds <= 0) {
      throw new InvalidArgumentError(
        "--watch takes a number of seconds above 0",
      );
    }
    watch = seconds * 1000;
  }
  const allAbsent = values["all-absent"] ?? false;
  if (mode === "forget" && allAbsent === (rest.length > 0)) {
    throw new InvalidArgumentError(
      "forget takes node ids or --all-absent (one of the two)",
    );
  }
  if (rest.length > 1 && mode !== "forget") {
    throw new InvalidArgumentError(`Unexpected argument '${rest[1]}'`);
  }
  return {
    mode,
    endpoint,
    arguments: rest,
    password: values.password ?? env("KVNDB_PASSWORD"),
    json: values.json ?? false,
    watch: watch,
    output: values.output,
    input: values.input,
    replace: values.replace ?? false,
    repair: values.repair ?? false,
    verbose: values.verbose ?? false,
    logfile: values.logfile,
    reset: values.reset ?? false,
    resetSleep,
    acks: acks as AckName,
    balance,
    timeout,
    memory: values.memory ?? false,
    state: values.state,
    insecure: values.insecure ?? false,
    maxConnections: parseNumber(
      values["max-connections"] ?? "10000",
      "--max-connections",
    ),
    maxInFlight: parseNumber(
      values["max-inflight"] ?? "10000",
      "--max-inflight",
    ),
    maxBuffer: parseNumber(
      values["max-buffer"] ?? String(64 * 1024 * 1024),
      "--max-buffer",
    ),
    heartbeatTimeout: Math.max(
      100,
      parseNumber(values["heartbeat-timeout"] ?? "5000", "--heartbeat-timeout"),
    ),
    recoveryTimeout: values["recovery-timeout"] === undefined
      ? undefined
      : parseNumber(values["recovery-timeout"], "--recovery-timeout"),
    volatileGrace: parseNumber(
      values["volatile-grace"] ?? "10000",
      "--volatile-grace",
    ),
    kvPort: values["kv-port"] === undefined
      ? undefined
      : parsePort(values["kv-port"], "--kv-port"),
    httpPort: values["http-port"] === undefined
      ? undefined
      : parsePort(values["http-port"], "--http-port"),
    respPort: values["resp-port"] === undefined
      ? undefined
      : parsePort(values["resp-port"], "--resp-port"),
    allAbsent,
    yes: values.yes ?? false,
    help,
  };
}

/**
 * Builds the endpoint the command line names: `-e ENDPOINT`, or the transport
 * (`-t`) with `host` and `port` (for `unix`, `host` is the socket path).
 *
 * @param values The `endpoint` and `type` options as given.
 * @param options The positional host and port, and the flag's name for errors.
 * @returns The endpoint.
 * @throws {InvalidArgumentError} Naming what is wrong.
 * @example
 * ```ts
 * import { endpointFromArgs } from "./args.ts";
 * console.log(endpointFromArgs({ type: "tcp" }, { port: "5000", flag: "-t" }).port); // 5000
 * ```
 */
export function endpointFromArgs(
  values: { type?: string; endpoint?: string },
  options: { host?: string; port?: string; flag: string },
): Endpoint {
  if (values.endpoint !== undefined) return parseEndpoint(values.endpoint);
  const type = values.type ?? "tcp";
  if (!["tcp", "tcp6", "tls", "unix"].includes(type)) {
    throw new InvalidArgumentError(
      `Unknown transport '${type}' for ${options.flag} (expected tcp, tcp6, tls or unix)`,
    );
  }
  if (type === "unix") {
    if (options.host === undefined) {
      throw new InvalidArgumentError(
        `${options.flag} unix needs the socket path as host`,
      );
    }
    return { type: "unix", hostname: "", port: 0, path: options.host };
  }
  return {
    type: type as TransportType,
    hostname: options.host ?? (type === "tcp6" ? "::" : "0.0.0.0"),
    port: options.port === undefined
      ? DEFAULT_PORT
      : parsePort(options.port, "port"),
  };
}

function parseNumber(text: string, what: string): number {
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value) || value < 0) {
    throw new InvalidArgumentError(
      `${what} takes a number of at least 0, not '${text}'`,
    );
  }
  return value;
}

function defaults(mode: Mode, help: boolean): CliArgs {
  return {
    mode,
    endpoint: { type: "tcp", hostname: "0.0.0.0", port: DEFAULT_PORT },
    arguments: [],
    verbose: false,
    reset: false,
    replace: false,
    repair: false,
    resetSleep: 0,
    acks: "all",
    balance: "least-loaded",
    timeout: 10_000,
    memory: false,
    insecure: false,
    maxConnections: 10_000,
    maxInFlight: 10_000,
    maxBuffer: 64 * 1024 * 1024,
    heartbeatTimeout: 5_000,
    volatileGrace: 10_000,
    allAbsent: false,
    yes: false,
    json: false,
    help,
  };
}
