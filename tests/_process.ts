// KVNDB as a child process, for end-to-end tests: started through main.ts,
// its standard error collected, killed (SIGKILL by default) on dispose.

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

export class KvndbProcess implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  #stderr = "";
  #stdout = "";
  #reading: Promise<void>[];
  #status?: Deno.CommandStatus;
  #scratch?: string;

  private constructor(child: Deno.ChildProcess, scratch?: string) {
    this.child = child;
    this.#scratch = scratch;
    this.#reading = [
      this.#collect(child.stderr, (text) => this.#stderr += text),
      this.#collect(child.stdout, (text) => this.#stdout += text),
    ];
    child.status.then((status) => this.#status = status);
  }

  /** Starts `kvndb ARGS...` with standard input closed unless asked for. */
  static start(
    args: string[],
    options: { env?: Record<string, string>; cwd?: string } = {},
  ): KvndbProcess {
    // A scratch working directory, so that default files (the router's
    // state, kvndb.db) never land in the repository or collide between tests.
    const cwd = options.cwd ?? Deno.makeTempDirSync({ prefix: "kvndb-test-" });
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--config", CONFIG, MAIN, ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: options.env,
      cwd,
    }).spawn();
    return new KvndbProcess(child, options.cwd === undefined ? cwd : undefined);
  }

  get stderr(): string {
    return this.#stderr;
  }

  get stdout(): string {
    return this.#stdout;
  }

  get running(): boolean {
    return this.#status === undefined;
  }

  async #collect(
    stream: ReadableStream<Uint8Array>,
    append: (text: string) => void,
  ): Promise<void> {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      append(text);
    }
  }

  /** Waits until standard error matches `pattern`; returns the match. */
  async waitFor(pattern: RegExp, timeout = 20_000): Promise<RegExpMatchArray> {
    const deadline = performance.now() + timeout;
    while (true) {
      const match = this.#stderr.match(pattern);
      if (match) return match;
      if (!this.running) {
        throw new Error(`Process ended before ${pattern}: ${this.#stderr}`);
      }
      if (performance.now() > deadline) {
        throw new Error(`Timed out waiting for ${pattern}: ${this.#stderr}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Waits for the line a router or `serve` prints and returns its port. */
  async port(): Promise<number> {
    const match = await this.waitFor(/(?:listening|serving) on tcp \S+:(\d+)/);
    return Number(match[1]);
  }

  /** Sends a signal and waits for the process to end. */
  async kill(signal: Deno.Signal = "SIGKILL"): Promise<Deno.CommandStatus> {
    if (this.running) {
      try {
        this.child.kill(signal);
      } catch {
        // Already gone.
      }
    }
    const status = await this.child.status;
    await Promise.all(this.#reading);
    if (this.#scratch !== undefined) {
      await Deno.remove(this.#scratch, { recursive: true }).catch(() => {});
      this.#scratch = undefined;
    }
    return status;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.kill();
  }
}

/** Runs `kvndb ARGS...` to the end with `input` on standard input. */
export async function runKvndb(
  args: string[],
  input = "",
  options: { env?: Record<string, string>; timeout?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", CONFIG, MAIN, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: options.env,
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }, options.timeout ?? 30_000);
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(input));
  await writer.close();
  const output = await child.output();
  clearTimeout(timer);
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}
