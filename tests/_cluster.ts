// In-process clusters for integration tests: a router on a free loopback
// port, memory database nodes, and clients, all closed by `await using`.

import { type Client, connect } from "../client/mod.ts";
import {
  type Database,
  DatabaseNode,
  MemoryDatabase,
} from "../database/mod.ts";
import { Router, type RouterOptions } from "../router/mod.ts";

export interface ClusterOptions extends RouterOptions {
  databases?: number;
}

export class Cluster implements AsyncDisposable {
  readonly router: Router;
  readonly nodes: DatabaseNode[] = [];
  readonly clients: Client[] = [];
  readonly #password?: string;

  private constructor(router: Router, password?: string) {
    this.router = router;
    this.#password = password;
  }

  static async start(options: ClusterOptions = {}): Promise<Cluster> {
    const router = await Router.start({
      hostname: "127.0.0.1",
      port: 0,
      ...options,
    });
    const cluster = new Cluster(router, options.password);
    for (let i = 0; i < (options.databases ?? 1); i++) {
      await cluster.addDatabase();
    }
    return cluster;
  }

  get port(): number {
    return this.router.port;
  }

  async addDatabase(
    options: {
      database?: Database;
      reset?: boolean;
      wait?: boolean;
      syncChunkBytes?: number;
    } = {},
  ): Promise<DatabaseNode> {
    const node = DatabaseNode.start({
      database: options.database ?? new MemoryDatabase(),
      hostname: "127.0.0.1",
      port: this.port,
      password: this.#password,
      reset: options.reset,
      syncChunkBytes: options.syncChunkBytes,
      backoff: { min: 20, max: 200 },
    });
    this.nodes.push(node);
    if (options.wait ?? true) await node.ready();
    return node;
  }

  async client(password = this.#password): Promise<Client> {
    const client = await connect({ port: this.port, password });
    this.clients.push(client);
    return client;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const client of this.clients) await client.close();
    for (const node of this.nodes) await node.close();
    await this.router.close();
  }
}

/**
 * Waits until the router's stats list exactly `count` databases, each ready
 * and at the router's sequence number. A node's own `ready()` is not enough:
 * it resolves at once for a node that was ready before the router dropped it
 * and has not noticed yet.
 */
export function waitForDatabases(
  router: Router,
  count: number,
  timeout = 10_000,
): Promise<void> {
  return waitFor(
    () => {
      const stats = router.stats();
      return stats.databases.length === count &&
        stats.databases.every((db) =>
          db.state === "ready" && db.applied === stats.seq
        );
    },
    `${count} databases ready at the router's sequence number`,
    timeout,
  );
}

/** Waits until `check` returns true, polling; throws after `timeout` ms. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeout = 10_000,
): Promise<void> {
  const deadline = performance.now() + timeout;
  while (!(await check())) {
    if (performance.now() > deadline) {
      throw new Error(`Timed out waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
