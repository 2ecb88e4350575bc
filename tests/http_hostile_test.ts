// The HTTP and Deno KV ports under hostile input: garbage, oversized headers
// and bodies, connections that never finish a request, many connections at
// once, wrong passwords. Each gets a clear answer or is closed, and the
// router goes on serving the others.

import assert from "node:assert/strict";
import { Cluster } from "./_cluster.ts";

/** Writes raw bytes to a port and reads what comes back until it closes (or 2 s). */
async function raw(port: number, bytes: Uint8Array): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(bytes).catch(() => {});
    const chunks: Uint8Array[] = [];
    const buffer = new Uint8Array(65536);
    const deadline = Date.now() + 2_000;
    while (Date.now() < deadline) {
      const read = await Promise.race([
        conn.read(buffer).catch(() => null),
        new Promise<"slow">((resolve) =>
          setTimeout(() => resolve("slow"), deadline - Date.now())
        ),
      ]);
      if (read === "slow" || read === null) break;
      chunks.push(buffer.slice(0, read));
      if (new TextDecoder().decode(chunks.at(-1)).includes("\r\n\r\n")) break;
    }
    return new TextDecoder().decode(
      new Uint8Array(chunks.flatMap((chunk) => [...chunk])),
    );
  } finally {
    try {
      conn.close();
    } catch {
      // Closed by the router.
    }
  }
}

async function healthy(port: number): Promise<void> {
  const started = performance.now();
  const response = await fetch(`http://127.0.0.1:${port}/health`, {
    headers: { authorization: "Bearer secret" },
  });
  assert.equal(response.status, 200, await response.text());
  assert.ok(performance.now() - started < 2_000, "answered promptly");
}

Deno.test("the HTTP and KV ports answer garbage, oversized headers and bodies clearly, and go on serving", async () => {
  await using cluster = await Cluster.start({
    databases: 1,
    httpPort: 0,
    kvPort: 0,
    password: "secret",
    authFailureDelay: 0,
  });
  const http = cluster.router.httpPort!;
  const kv = cluster.router.kvPort!;
  const encoder = new TextEncoder();
  for (const port of [http, kv]) {
    // Not HTTP at all.
    const garbage = await raw(
      port,
      crypto.getRandomValues(new Uint8Array(4096)),
    );
    assert.ok(garbage === "" || /^HTTP\/1\.1 4\d\d/.test(garbage), garbage);
    // A header of 200 KiB.
    const big = await raw(
      port,
      encoder.encode(
        `GET /health HTTP/1.1\r\nhost: x\r\nx-big: ${
          "a".repeat(200 * 1024)
        }\r\n\r\n`,
      ),
    );
    assert.ok(big === "" || /^HTTP\/1\.1 4\d\d/.test(big), big.slice(0, 200));
  }
  // A body of 8 MiB: the HTTP port does not read it (405), the KV port
  // refuses it by its length (413).
  const body = new Uint8Array(8 * 1024 * 1024);
  const posted = await fetch(`http://127.0.0.1:${http}/health`, {
    method: "POST",
    headers: { authorization: "Bearer secret" },
    body,
  });
  assert.equal(posted.status, 405);
  await posted.body?.cancel();
  const metadata = await fetch(`http://127.0.0.1:${kv}/`, {
    method: "POST",
    headers: { authorization: "Bearer secret" },
    body: JSON.stringify({ supportedVersions: [3] }),
  });
  const { token } = await metadata.json();
  const huge = await fetch(`http://127.0.0.1:${kv}/kv/atomic_write`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}` },
    body,
  });
  assert.equal(huge.status, 413);
  assert.match(await huge.text(), /over 1048576 bytes/);
  // Wrong passwords: 401 each time, and the right one still works.
  for (let i = 0; i < 5; i++) {
    const wrong = await fetch(`http://127.0.0.1:${http}/metrics`, {
      headers: { authorization: "Bearer guess" },
    });
    assert.equal(wrong.status, 401);
    await wrong.body?.cancel();
  }
  await healthy(http);
});

Deno.test("connections that never finish a request, and hundreds at once, do not stop the HTTP port", async () => {
  await using cluster = await Cluster.start({
    databases: 1,
    httpPort: 0,
    password: "secret",
  });
  const port = cluster.router.httpPort!;
  // 100 connections that send half a request line and then nothing.
  const slow = await Promise.all(
    Array.from({ length: 100 }, async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(new TextEncoder().encode("GET /hea"));
      return conn;
    }),
  );
  try {
    await healthy(port);
    // 300 requests at once.
    const answers = await Promise.all(
      Array.from({ length: 300 }, async () => {
        const response = await fetch(`http://127.0.0.1:${port}/health`, {
          headers: { authorization: "Bearer secret" },
        });
        await response.body?.cancel();
        return response.status;
      }),
    );
    assert.deepEqual(new Set(answers), new Set([200]));
    await healthy(port);
  } finally {
    for (const conn of slow) {
      try {
        conn.close();
      } catch {
        // Closed by the router.
      }
    }
  }
});
