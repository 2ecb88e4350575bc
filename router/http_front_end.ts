/**
 * The router's HTTP port (`--http-port`): `/health` for load balancers and
 * orchestrators, answering 200 while reads and writes are served and 503
 * with a one-line reason when not, and `/metrics` for Prometheus. The router's password guards it (HTTP
 * basic authentication, any user name, or `Authorization: Bearer`), and
 * protected mode applies as on the other ports; over TLS when the router's
 * endpoint has a certificate and key.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { RouterStats } from "../protocol/mod.ts";
import { RouterMetrics } from "./metrics.ts";
import { STATUS_PAGE, UPLOT_CSS, UPLOT_JS } from "./status_page.ts";
import { PasswordCheck, text } from "./_http_auth.ts";

/** The status page and what it loads, by path. */
const ASSETS = new Map<string, { type: string; body: string }>([
  ["/", { type: "text/html; charset=utf-8", body: STATUS_PAGE }],
  ["/uplot.js", { type: "text/javascript; charset=utf-8", body: UPLOT_JS }],
  ["/uplot.css", { type: "text/css; charset=utf-8", body: UPLOT_CSS }],
]);

/** The paths answered live, beside {@linkcode ASSETS}. */
const LIVE = new Set(["/health", "/metrics", "/stats.json"]);

const log = getLogger(["kvndb", "http"]);

/** The router's side, as the HTTP port sees it. */
export interface HttpHost {
  /** Whether the router has a password. */
  readonly passwordRequired: boolean;
  /** Checks a password, with the router's throttling for `address`. */
  checkPassword(password: string, address: string): Promise<boolean>;
  /** Refuses a peer (protected mode, the connection limit), or `undefined`. */
  refuse(address: string): string | undefined;
  /** The router's statistics. */
  stats(): RouterStats;
}

/** Where the HTTP port listens. */
export interface HttpListenOptions {
  hostname: string;
  port: number;
  /** PEM certificate and key: HTTPS instead of plain HTTP. */
  cert?: string;
  key?: string;
}

/**
 * Whether the router serves reads and writes, and if not, why: the verdict
 * `/health` gives.
 *
 * @param stats The router's statistics.
 * @returns `ok` and a one-line reason.
 * @example
 * ```ts
 * import { health } from "./http_front_end.ts";
 * const verdict = health({
 *   clusterId: "", seq: 0, clients: 0, databases: [], operations: {}, uptime: 1,
 * });
 * console.log(verdict.ok, verdict.reason); // false "no database connected"
 * ```
 */
export function health(stats: RouterStats): { ok: boolean; reason: string } {
  const databases = stats.databases ?? [];
  if (stats.hold !== undefined) {
    return { ok: false, reason: `holding: ${stats.hold.reason}` };
  }
  if (databases.length === 0) {
    return { ok: false, reason: "no database connected" };
  }
  const ready = databases.filter((db) => db.state === "ready").length;
  if (ready === 0) {
    const states = databases.map((db) => db.state).join(", ");
    return { ok: false, reason: `no database ready (${states})` };
  }
  return {
    ok: true,
    reason: `ok: ${ready} of ${databases.length} databases ready`,
  };
}

/**
 * The HTTP port of a router.
 *
 * @example
 * ```ts ignore
 * // The router starts one when given `httpPort`.
 * const response = await fetch(`http://127.0.0.1:${router.httpPort}/health`);
 * ```
 */
export class HttpFrontEnd {
  #server: Deno.HttpServer<Deno.NetAddr>;
  #closed = false;
  /** The password's check: a health probe repeats its header every few seconds. */
  #password = new PasswordCheck();
  #metrics: RouterMetrics;

  /**
   * Listens for HTTP requests.
   *
   * @param options Where to listen, and TLS.
   * @param host The router.
   */
  constructor(options: HttpListenOptions, host: HttpHost) {
    this.#metrics = new RouterMetrics(() => host.stats());
    this.#server = Deno.serve({
      hostname: options.hostname,
      port: options.port,
      ...(options.cert === undefined ? {} : {
        cert: options.cert,
        key: options.key!,
      }),
      onListen: () => {},
      onError: (error) => {
        log.warn("HTTP request failed: {error}", { error: String(error) });
        return text(500, "Internal error");
      },
    }, (request, info) => this.#handle(request, info.remoteAddr, host));
  }

  /** The port listened on. */
  get port(): number {
    return this.#server.addr.port;
  }

  async #handle(
    request: Request,
    remote: Deno.NetAddr,
    host: HttpHost,
  ): Promise<Response> {
    const address = remote.hostname;
    const refused = host.refuse(address);
    if (refused !== undefined) return text(403, `Refused: ${refused}`);
    if (!await this.#password.passes(request, address, host)) {
      return text(
        401,
        "Authentication required: send the router's password, with HTTP basic authentication (any user name) or Authorization: Bearer PASSWORD",
        { "www-authenticate": 'Basic realm="kvndb", charset="UTF-8"' },
      );
    }
    const path = new URL(request.url).pathname;
    const asset = ASSETS.get(path);
    if (!LIVE.has(path) && asset === undefined) {
      return text(
        404,
        `Not found: ${path} (this port serves /health, /metrics, /stats.json and the status page at /)`,
      );
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      return text(405, `Method ${request.method} not allowed: use GET`, {
        allow: "GET, HEAD",
      });
    }
    if (path === "/stats.json") {
      return Response.json(host.stats(), {
        headers: { "cache-control": "no-store" },
      });
    }
    if (asset !== undefined) {
      return new Response(asset.body, {
        headers: { "content-type": asset.type },
      });
    }
    if (path === "/metrics") {
      return new Response(await this.#metrics.text(), {
        headers: { "content-type": this.#metrics.contentType },
      });
    }
    const verdict = health(host.stats());
    return text(verdict.ok ? 200 : 503, verdict.reason);
  }

  /** Stops listening and ends open requests. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#server.shutdown();
  }
}
