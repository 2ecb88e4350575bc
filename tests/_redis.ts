// A real redis-server for conformance tests: on a Unix socket in a temporary
// directory (no port to race for), with no persistence; stopped and removed
// by `await using`.

/** A running redis-server. */
export class RedisServer implements AsyncDisposable {
  readonly path: string;
  readonly #dir: string;
  readonly #child: Deno.ChildProcess;

  private constructor(dir: string, child: Deno.ChildProcess) {
    this.#dir = dir;
    this.path = `${dir}/redis.sock`;
    this.#child = child;
  }

  /** Starts redis-server and waits until it answers PING. */
  static async start(): Promise<RedisServer> {
    const dir = await Deno.makeTempDir({ prefix: "kvndb-redis-" });
    const child = new Deno.Command("redis-server", {
      args: [
        "--port",
        "0",
        "--unixsocket",
        `${dir}/redis.sock`,
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir,
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const server = new RedisServer(dir, child);
    const deadline = performance.now() + 10_000;
    while (true) {
      try {
        const conn = await Deno.connect({
          transport: "unix",
          path: server.path,
        });
        conn.close();
        return server;
      } catch (error) {
        if (performance.now() > deadline) {
          await server[Symbol.asyncDispose]();
          throw new Error("redis-server did not start", { cause: error });
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  }

  /** Connects a raw socket. */
  connect(): Promise<Deno.Conn> {
    return Deno.connect({ transport: "unix", path: this.path });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    await this.#child.status;
    await Deno.remove(this.#dir, { recursive: true });
  }
}
