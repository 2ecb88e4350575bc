// A TCP relay placed between peers in tests: forwards bytes both ways,
// records them (to check what crosses the wire), and injects faults: delay,
// blackhole (drop silently, keep the link open), and reset (cut every link).

/** What the relay does with the bytes it receives. */
export type RelayMode =
  | { kind: "pass" }
  | { kind: "delay"; ms: number }
  | { kind: "blackhole" };

export class Relay implements AsyncDisposable {
  readonly #listener: Deno.TcpListener;
  readonly #target: { hostname: string; port: number };
  readonly #conns = new Set<Deno.Conn>();
  readonly #outbound = new Set<Deno.Conn>();
  readonly #pumps = new Set<Promise<void>>();
  readonly #captured: Uint8Array[] = [];
  #capture: boolean;
  #accepting: Promise<void>;
  #mode: RelayMode = { kind: "pass" };

  /** What the relay does with the bytes it receives. */
  get mode(): RelayMode {
    return this.#mode;
  }

  /**
   * Changes what the relay does. Leaving a black hole cuts every link: the
   * bytes it dropped are gone, and TCP never delivers what follows a loss
   * (it resets the connection instead). Passing on after a silent gap would
   * be a fault no network makes, and the fault suite once stalled on it: a
   * database missed the last writes before the load stopped, with nothing
   * after them to show the gap.
   */
  set mode(mode: RelayMode) {
    if (this.#mode.kind === "blackhole" && mode.kind !== "blackhole") {
      this.cut();
    }
    this.#mode = mode;
  }

  constructor(
    target: { hostname: string; port: number },
    options: { capture?: boolean } = {},
  ) {
    this.#target = target;
    this.#capture = options.capture ?? true;
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#accepting = this.#accept();
  }

  get port(): number {
    return this.#listener.addr.port;
  }

  /** The local ports of the relay's connections to its target. */
  outboundPorts(): number[] {
    return [...this.#outbound].map((conn) =>
      (conn.localAddr as Deno.NetAddr).port
    );
  }

  /** Every byte that crossed, both directions, in arrival order. */
  captured(): Uint8Array {
    const total = this.#captured.reduce((sum, c) => sum + c.length, 0);
    const out = new Uint8Array(total);
    let offset = 0;
    for (const chunk of this.#captured) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    return out;
  }

  /** Resets every open link. */
  cut(): void {
    for (const conn of this.#conns) {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
    this.#conns.clear();
    this.#outbound.clear();
  }

  async #accept(): Promise<void> {
    while (true) {
      let inbound: Deno.Conn;
      try {
        inbound = await this.#listener.accept();
      } catch {
        return;
      }
      let outbound: Deno.Conn;
      try {
        outbound = await Deno.connect(this.#target);
      } catch {
        inbound.close();
        continue;
      }
      this.#conns.add(inbound);
      this.#conns.add(outbound);
      this.#outbound.add(outbound);
      this.#track(this.#pump(inbound, outbound));
      this.#track(this.#pump(outbound, inbound));
    }
  }

  #track(pump: Promise<void>): void {
    this.#pumps.add(pump);
    pump.finally(() => this.#pumps.delete(pump));
  }

  async #pump(from: Deno.Conn, to: Deno.Conn): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const count = await from.read(buffer);
        if (count === null) break;
        const chunk = buffer.slice(0, count);
        if (this.#capture) this.#captured.push(chunk);
        const mode = this.mode;
        if (mode.kind === "blackhole") continue;
        if (mode.kind === "delay") {
          await new Promise((resolve) => setTimeout(resolve, mode.ms));
        }
        let written = 0;
        while (written < count) {
          written += await to.write(chunk.subarray(written));
        }
      }
    } catch {
      // The link was cut or reset.
    }
    for (const conn of [from, to]) {
      this.#outbound.delete(conn);
      if (this.#conns.delete(conn)) {
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      }
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#listener.close();
    await this.#accepting;
    this.cut();
    await Promise.all([...this.#pumps]);
  }
}

/** Whether `needle` occurs in `haystack`. */
export function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) {
      if (haystack[i + j] !== needle[j]) continue outer;
    }
    return true;
  }
  return false;
}
