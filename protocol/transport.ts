/**
 * Endpoints: where a router listens and where peers connect, over TCP, TCP on
 * IPv6, TLS or a Unix socket. Parses the original's `-e` endpoint strings.
 *
 * @module
 */

import { DEFAULT_PORT } from "./constants.ts";
import { ConnectionClosedError, InvalidArgumentError } from "./errors.ts";

/** The transports KVNDB speaks. */
export type TransportType = "tcp" | "tcp6" | "tls" | "unix";

/** Where to listen or connect. */
export interface Endpoint {
  /** The transport. */
  type: TransportType;
  /** Host name or address (TCP, TLS). */
  hostname: string;
  /** Port (TCP, TLS); 0 asks the OS for a free one when listening. */
  port: number;
  /** Socket path (Unix). */
  path?: string;
  /** PEM certificate chain file (TLS, listening side). */
  certFile?: string;
  /** PEM private key file (TLS, listening side). */
  keyFile?: string;
  /** PEM CA certificate file to trust (TLS, connecting side). */
  caFile?: string;
}

/**
 * Parses an endpoint string such as `tcp:port=54565:interface=0.0.0.0`,
 * `tcp6:port=54565:interface=\:\:1`, `tls:port=54565:certKey=c.pem:privateKey=k.pem`,
 * `tls:host=example.com:port=54565:caCerts=ca.pem` or `unix:path=/tmp/kvndb.sock`.
 * A backslash escapes a colon inside a value.
 *
 * @param spec The endpoint string.
 * @returns The endpoint.
 * @throws {InvalidArgumentError} Naming the part that is wrong.
 * @example
 * ```ts
 * import { parseEndpoint } from "./transport.ts";
 * console.log(parseEndpoint("tcp:port=1234").port); // 1234
 * ```
 */
export function parseEndpoint(spec: string): Endpoint {
  const parts = splitEscaped(spec);
  const type = parts.shift() ?? "";
  if (type !== "tcp" && type !== "tcp6" && type !== "tls" && type !== "unix") {
    throw new InvalidArgumentError(
      `Bad endpoint '${spec}': unknown type '${type}' (expected tcp, tcp6, tls or unix)`,
    );
  }
  const endpoint: Endpoint = {
    type,
    hostname: type === "tcp6" ? "::" : "0.0.0.0",
    port: DEFAULT_PORT,
  };
  for (const part of parts) {
    const eq = part.indexOf("=");
    if (eq <= 0) {
      throw new InvalidArgumentError(
        `Bad endpoint '${spec}': '${part}' is not name=value`,
      );
    }
    const name = part.slice(0, eq);
    const value = part.slice(eq + 1);
    switch (name) {
      case "port":
        endpoint.port = parsePort(value, `endpoint '${spec}'`);
        break;
      case "interface":
      case "host":
        endpoint.hostname = value;
        break;
      case "path":
        endpoint.path = value;
        break;
      case "certKey":
        endpoint.certFile = value;
        break;
      case "privateKey":
        endpoint.keyFile = value;
        break;
      case "caCerts":
        endpoint.caFile = value;
        break;
      default:
        throw new InvalidArgumentError(
          `Bad endpoint '${spec}': unknown option '${name}'`,
        );
    }
  }
  if (type === "unix" && !endpoint.path) {
    throw new InvalidArgumentError(
      `Bad endpoint '${spec}': unix endpoints need path=…`,
    );
  }
  return endpoint;
}

function splitEscaped(spec: string): string[] {
  const parts: string[] = [];
  let current = "";
  for (let i = 0; i < spec.length; i++) {
    const char = spec[i]!;
    if (char === "\\" && i + 1 < spec.length) {
      current += spec[++i];
    } else if (char === ":") {
      parts.push(current);
      current = "";
    } else {
      current += char;
    }
  }
  parts.push(current);
  return parts;
}

/**
 * Parses a port number.
 *
 * @param text The port as typed.
 * @param what Where it came from, for the error.
 * @returns The port.
 * @throws {InvalidArgumentError} When it is not a whole number from 0 to 65535.
 * @example
 * ```ts
 * import { parsePort } from "./transport.ts";
 * console.log(parsePort("54565", "port")); // 54565
 * ```
 */
export function parsePort(text: string, what: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) {
    throw new InvalidArgumentError(
      `Bad ${what}: port '${text}' is not a number from 0 to 65535`,
    );
  }
  return port;
}

/**
 * Describes an endpoint for people: `tcp 127.0.0.1:54565`.
 *
 * @param endpoint The endpoint.
 * @returns A short description.
 * @example
 * ```ts
 * import { describeEndpoint } from "./transport.ts";
 * console.log(describeEndpoint({ type: "tcp", hostname: "::1", port: 1 })); // "tcp [::1]:1"
 * ```
 */
export function describeEndpoint(endpoint: Endpoint): string {
  if (endpoint.type === "unix") return `unix ${endpoint.path}`;
  const host = endpoint.hostname.includes(":")
    ? `[${endpoint.hostname}]`
    : endpoint.hostname;
  return `${endpoint.type} ${host}:${endpoint.port}`;
}

/**
 * Starts listening on an endpoint.
 *
 * @param endpoint Where.
 * @returns The listener.
 * @throws {InvalidArgumentError} When TLS lacks its certificate or key.
 * @example
 * ```ts ignore
 * import { listen } from "./transport.ts";
 * const listener = listen({ type: "tcp", hostname: "127.0.0.1", port: 0 });
 * listener.close();
 * ```
 */
export function listen(endpoint: Endpoint): Deno.Listener {
  switch (endpoint.type) {
    case "unix":
      return Deno.listen({ transport: "unix", path: endpoint.path! });
    case "tls": {
      if (!endpoint.certFile || !endpoint.keyFile) {
        throw new InvalidArgumentError(
          "TLS needs a certificate and a key: --cert FILE --key FILE",
        );
      }
      return Deno.listenTls({
        hostname: endpoint.hostname,
        port: endpoint.port,
        cert: Deno.readTextFileSync(endpoint.certFile),
        key: Deno.readTextFileSync(endpoint.keyFile),
      });
    }
    default:
      return Deno.listen({ hostname: endpoint.hostname, port: endpoint.port });
  }
}

/**
 * Connects to an endpoint. A listening address such as `0.0.0.0` is taken to
 * mean this machine.
 *
 * @param endpoint Where.
 * @returns The connection.
 * @example
 * ```ts ignore
 * import { connect } from "./transport.ts";
 * const conn = await connect({ type: "tcp", hostname: "127.0.0.1", port: 54565 });
 * conn.close();
 * ```
 */
export async function connect(endpoint: Endpoint): Promise<Deno.Conn> {
  let hostname = endpoint.hostname;
  if (hostname === "0.0.0.0") hostname = "127.0.0.1";
  if (hostname === "::") hostname = "::1";
  switch (endpoint.type) {
    case "unix":
      return await Deno.connect({ transport: "unix", path: endpoint.path! });
    case "tls": {
      const caCerts = endpoint.caFile
        ? [Deno.readTextFileSync(endpoint.caFile)]
        : undefined;
      const conn = await Deno.connectTls({
        hostname,
        port: endpoint.port,
        caCerts,
      });
      refuseSelfConnect(conn, endpoint);
      try {
        await conn.handshake();
      } catch (cause) {
        conn.close();
        throw new ConnectionClosedError(
          `TLS handshake with ${describeEndpoint(endpoint)} failed (${
            (cause as Error).message
          }): does the router listen with TLS (-t tls), and is its certificate trusted (--ca)?`,
          { cause },
        );
      }
      return conn;
    }
    default: {
      const conn = await Deno.connect({ hostname, port: endpoint.port });
      refuseSelfConnect(conn, endpoint);
      conn.setNoDelay(true);
      return conn;
    }
  }
}

// With nothing listening on a loopback port in the ephemeral range, the
// kernel may give a connection that same port as its own: the socket is then
// connected to itself and holds the port the server is about to listen on
// again. Treat it as the refusal it stands for.
function refuseSelfConnect(conn: Deno.Conn, endpoint: Endpoint): void {
  const local = conn.localAddr as Deno.NetAddr;
  const remote = conn.remoteAddr as Deno.NetAddr;
  if (local.port !== remote.port || local.hostname !== remote.hostname) return;
  conn.close();
  throw new Deno.errors.ConnectionRefused(
    `Connection refused: nothing listens on ${describeEndpoint(endpoint)}`,
  );
}
