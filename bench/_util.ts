// Shared helpers for the benchmark scripts in bench/: cleanup that runs on
// failure and on Ctrl-C, temporary directories, process CPU and memory
// readings (Linux /proc), percentiles and formatting.

/** Work to undo before the process exits, last registered first. */
const cleanups: (() => unknown)[] = [];
let cleaning: Promise<void> | undefined;

/** Registers work to undo on exit; returns a function that unregisters it. */
export function onCleanup(fn: () => unknown): () => void {
  cleanups.push(fn);
  return () => {
    const i = cleanups.indexOf(fn);
    if (i >= 0) cleanups.splice(i, 1);
  };
}

/** Runs every registered cleanup once, last registered first. */
export function cleanupAll(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length > 0) {
      const fn = cleanups.pop()!;
      try {
        await fn();
      } catch (error) {
        console.error("cleanup failed:", error);
      }
    }
  })();
  return cleaning;
}

/**
 * Runs a benchmark's main function, then the cleanups, whether it succeeds,
 * throws, or is interrupted by SIGINT/SIGTERM. Exits with a fitting status.
 */
export async function runMain(main: () => Promise<void>): Promise<never> {
  const onSignal = (signal: Deno.Signal) => {
    console.error(`\n${signal}: cleaning up`);
    cleanupAll().finally(() => Deno.exit(130));
  };
  const handlers: [Deno.Signal, () => void][] = [
    ["SIGINT", () => onSignal("SIGINT")],
    ["SIGTERM", () => onSignal("SIGTERM")],
  ];
  for (const [signal, handler] of handlers) {
    Deno.addSignalListener(signal, handler);
  }
  let status = 0;
  try {
    await main();
  } catch (error) {
    console.error(error instanceof Error ? error.stack ?? error : error);
    status = 1;
  } finally {
    await cleanupAll();
    for (const [signal, handler] of handlers) {
      Deno.removeSignalListener(signal, handler);
    }
  }
  Deno.exit(status);
}

/** A temporary directory, removed at cleanup. */
export async function tempDir(prefix = "kvndb-bench-"): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix });
  onCleanup(() => Deno.remove(dir, { recursive: true }).catch(() => {}));
  return dir;
}

/** Sleeps. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resident set size of a process in bytes (Linux), or NaN. */
export function rssOf(pid: number): number {
  return statusField(pid, "VmRSS");
}

/** Peak resident set size of a process in bytes (Linux VmHWM), or NaN. */
export function peakRssOf(pid: number): number {
  return statusField(pid, "VmHWM");
}

function statusField(pid: number, field: string): number {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/status`);
    const match = text.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
    return match ? Number(match[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** CPU seconds (user + system) a process has used so far (Linux), or NaN. */
export function cpuSecondsOf(pid: number): number {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Fields after the command name, which is in parentheses.
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    // utime and stime are fields 14 and 15, i.e. 11 and 12 after the name.
    return (Number(fields[11]) + Number(fields[12])) / 100; // CLK_TCK = 100
  } catch {
    return NaN;
  }
}

/** The 1-minute load average (Linux), or NaN. */
export function loadAverage(): number {
  try {
    return Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
  } catch {
    return NaN;
  }
}

/**
 * Samples memory every `intervalMs` and keeps each probe's peak. Probes
 * return bytes (NaN when unknown).
 */
export class RssSampler {
  #probes: Map<string, () => number>;
  #peaks = new Map<string, number>();
  #timer?: ReturnType<typeof setInterval>;

  constructor(probes: Record<string, () => number>, intervalMs = 100) {
    this.#probes = new Map(Object.entries(probes));
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), intervalMs);
  }

  /** Adds a probe (for a process started later). */
  add(name: string, probe: () => number): void {
    this.#probes.set(name, probe);
    this.#sample();
  }

  #sample(): void {
    for (const [name, probe] of this.#probes) {
      const value = probe();
      if (!Number.isFinite(value)) continue;
      this.#peaks.set(name, Math.max(this.#peaks.get(name) ?? 0, value));
    }
  }

  /** Stops sampling (after a last sample) and returns each probe's peak. */
  stop(): Map<string, number> {
    this.#sample();
    clearInterval(this.#timer);
    return this.#peaks;
  }
}

/** The p-th percentile (0–100) of sorted numbers. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(
    sorted.length - 1,
    Math.max(0, Math.ceil((p / 100) * sorted.length) - 1),
  );
  return sorted[i]!;
}

/** Mebibytes, one decimal. */
export function mib(bytes: number): string {
  return Number.isFinite(bytes) ? (bytes / 1024 / 1024).toFixed(0) : "?";
}

/** A number with thousands separators. */
export function thousands(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

/** The 16-byte key of index `i`: `k` and 15 digits. */
export function keyOf(i: number): string {
  return "k" + String(i).padStart(15, "0");
}

/** A value of `size` bytes (printable, so that it reads back as text). */
export function valueOf(size: number): Uint8Array {
  const value = new Uint8Array(size);
  for (let i = 0; i < size; i++) value[i] = 97 + (i % 26);
  return value;
}

/** Parses a comma-separated list of positive integers, with k/m suffixes. */
export function parseCounts(text: string): number[] {
  return text.split(",").map((part) => {
    const match = part.trim().toLowerCase().match(/^(\d+(?:\.\d+)?)([km]?)$/);
    if (!match) throw new Error(`Not a count: ${part}`);
    const scale = match[2] === "k" ? 1e3 : match[2] === "m" ? 1e6 : 1;
    return Math.round(Number(match[1]) * scale);
  });
}

/** What the run was on, for the record. */
export function machineLine(): string {
  let cpu = "?";
  try {
    const info = Deno.readTextFileSync("/proc/cpuinfo");
    cpu = info.match(/^model name\s*:\s*(.*)$/m)?.[1] ?? "?";
  } catch {
    // Not Linux.
  }
  const gib = Math.round(Deno.systemMemoryInfo().total / 1024 ** 3);
  return `${
    new Date().toISOString().slice(0, 10)
  }, ${navigator.hardwareConcurrency} cores (${cpu}), ${gib} GiB, Deno ${Deno.version.deno}, load ${
    loadAverage().toFixed(2)
  }`;
}
