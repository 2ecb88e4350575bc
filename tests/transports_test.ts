// Every role over every transport: TLS with a CA made at test time, TCP on
// IPv6, Unix sockets; and clear failures when the transports do not match.

import assert from "node:assert/strict";
import { connect } from "../client/mod.ts";
import { DatabaseNode, MemoryDatabase } from "../database/mod.ts";
import {
  connect as connectEndpoint,
  ConnectionClosedError,
  type Endpoint,
} from "../protocol/mod.ts";
import { Router } from "../router/mod.ts";
import { KvndbProcess, runKvndb } from "./_process.ts";
import { makeCertificates } from "./_tls.ts";

async function roundTrip(listen: Endpoint, reach: Endpoint): Promise<void> {
  await using router = await Router.start({ endpoint: listen });
  const endpoint = listen.type === "unix"
    ? reach
    : { ...reach, port: router.port };
  await using node = DatabaseNode.start({
    database: new MemoryDatabase(),
    endpoint,
  });
  await node.ready();
  await using client = await connect({ endpoint });
  await client.set("over", listen.type);
  assert.equal(await client.get("over"), listen.type);
}

Deno.test("router, database and client work over TLS with a CA given by file", async () => {
  const certs = await makeCertificates();
  try {
    await roundTrip(
      {
        type: "tls",
        hostname: "127.0.0.1",
        port: 0,
        certFile: certs.cert,
        keyFile: certs.key,
      },
      { type: "tls", hostname: "localhost", port: 0, caFile: certs.ca },
    );
  } finally {
    await Deno.remove(certs.dir, { recursive: true });
  }
});

Deno.test("the console works over TLS from the command line", async () => {
  const certs = await makeCertificates();
  try {
    await using server = KvndbProcess.start([
      "serve",
      "127.0.0.1",
      "0",
      "--memory",
      "-t",
      "tls",
      "--cert",
      certs.cert,
      "--key",
      certs.key,
      "--ca",
      certs.ca,
    ]);
    const match = await server.waitFor(/serving on tls \S+:(\d+)/);
    const result = await runKvndb(
      ["cmd", "localhost", match[1]!, "-t", "tls", "--ca", certs.ca],
      "set secure yes\nget secure\n",
    );
    assert.equal(result.stdout, "yes\n", result.stderr);
    assert.equal(result.code, 0);
  } finally {
    await Deno.remove(certs.dir, { recursive: true });
  }
});

Deno.test("a plain client at a TLS port, and a TLS client at a plain port, fail fast and clearly", async () => {
  const certs = await makeCertificates();
  try {
    await using tlsRouter = await Router.start({
      endpoint: {
        type: "tls",
        hostname: "127.0.0.1",
        port: 0,
        certFile: certs.cert,
        keyFile: certs.key,
      },
    });
    let start = performance.now();
    await assert.rejects(
      () => connect({ port: tlsRouter.port, timeout: 5000 }),
      (error: unknown) =>
        error instanceof ConnectionClosedError &&
        /transport \(-t\)/.test(error.message),
    );
    assert.ok(performance.now() - start < 3000);

    await using plainRouter = await Router.start({
      hostname: "127.0.0.1",
      port: 0,
    });
    start = performance.now();
    await assert.rejects(
      () =>
        connect({
          transport: "tls",
          hostname: "localhost",
          port: plainRouter.port,
          caFile: certs.ca,
        }),
      (error: unknown) =>
        error instanceof ConnectionClosedError &&
        /TLS handshake .* failed/.test(error.message),
    );
    assert.ok(performance.now() - start < 3000);
    // An untrusted certificate is refused too.
    await assert.rejects(
      () =>
        connect({
          transport: "tls",
          hostname: "localhost",
          port: tlsRouter.port,
        }),
      /TLS handshake .* failed/,
    );
  } finally {
    await Deno.remove(certs.dir, { recursive: true });
  }
});

Deno.test("router, database and client work over TCP on IPv6", async () => {
  await roundTrip(
    { type: "tcp6", hostname: "::1", port: 0 },
    { type: "tcp6", hostname: "::1", port: 0 },
  );
});

Deno.test("router, database and client work over a Unix socket", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/kvndb.sock`;
    await roundTrip(
      { type: "unix", hostname: "", port: 0, path },
      { type: "unix", hostname: "", port: 0, path },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the command line reaches a router by an -e endpoint over a Unix socket", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const endpoint = `unix:path=${dir}/kvndb.sock`;
    await using server = KvndbProcess.start([
      "serve",
      "--memory",
      "-e",
      endpoint,
    ]);
    await server.waitFor(/serving on unix/);
    const result = await runKvndb(["cmd", "-e", endpoint], "set u 1\nget u\n");
    assert.equal(result.stdout, "1\n", result.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the console works over TCP on IPv6 from the command line", async () => {
  await using server = KvndbProcess.start([
    "serve",
    "::1",
    "0",
    "-t",
    "tcp6",
    "--memory",
  ]);
  const match = await server.waitFor(/serving on tcp6 \[::1\]:(\d+)/);
  const result = await runKvndb(
    ["cmd", "::1", match[1]!, "-t", "tcp6"],
    "set six yes\nget six\n",
  );
  assert.equal(result.stdout, "yes\n", result.stderr);
  assert.equal(result.code, 0);
});

Deno.test("a connection the kernel connects to itself counts as refused and frees the port", async () => {
  // Linux hands connect() even local ports first: with nothing listening on
  // an even loopback port in the ephemeral range, a connection soon gets that
  // very port and is connected to itself, holding it against a restart.
  // listen() on port 0 prefers odd ports: the even one beside it is free
  // once a listen on it succeeds.
  let port = 0;
  for (let tries = 0; port === 0; tries++) {
    assert.ok(tries < 100, "no free even ephemeral port");
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const odd = (listener.addr as Deno.NetAddr).port;
    listener.close();
    const even = odd % 2 === 0 ? odd : odd + 1;
    try {
      Deno.listen({ hostname: "127.0.0.1", port: even }).close();
      port = even;
    } catch (error) {
      if (!(error instanceof Deno.errors.AddrInUse)) throw error;
    }
  }
  const endpoint: Endpoint = { type: "tcp", hostname: "127.0.0.1", port };
  const deadline = performance.now() + 3000;
  let refused = 0;
  while (performance.now() < deadline) {
    try {
      const conn = await connectEndpoint(endpoint);
      // Another test may have taken the port: a real peer is no failure.
      const local = conn.localAddr as Deno.NetAddr;
      conn.close();
      assert.notEqual(local.port, port, "connected to itself");
      break;
    } catch (error) {
      if (!(error instanceof Deno.errors.ConnectionRefused)) throw error;
      refused++;
    }
  }
  assert.ok(refused > 0);
});
