// The router's HTTP port: /health, its password, and its errors.

import assert from "node:assert/strict";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { Cluster, waitFor } from "./_cluster.ts";

/** A metric family as the parser returns it (the package has no types). */
interface MetricFamily {
  name: string;
  type: string;
  metrics: { value?: string; labels?: Record<string, string> }[];
}

async function get(
  port: number,
  path: string,
  init?: RequestInit,
): Promise<{ status: number; text: string; headers: Headers }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, init);
  return {
    status: response.status,
    text: await response.text(),
    headers: response.headers,
  };
}

Deno.test("HTTP: /health is 200 while a database serves, 503 with the reason when none does", async () => {
  await using cluster = await Cluster.start({ httpPort: 0, databases: 0 });
  const port = cluster.router.httpPort!;
  const empty = await get(port, "/health");
  assert.equal(empty.status, 503);
  assert.equal(empty.text, "no database connected\n");
  const node = await cluster.addDatabase();
  await waitFor(
    async () => (await get(port, "/health")).status === 200,
    "the router to report itself healthy",
  );
  assert.equal(
    (await get(port, "/health")).text,
    "ok: 1 of 1 databases ready\n",
  );
  await node.close();
  await waitFor(
    async () => (await get(port, "/health")).status === 503,
    "the router to report the database gone",
  );
  assert.equal((await get(port, "/health", { method: "HEAD" })).status, 503);
});

Deno.test("HTTP: unknown paths are 404, other methods 405", async () => {
  await using cluster = await Cluster.start({ httpPort: 0 });
  const port = cluster.router.httpPort!;
  const missing = await get(port, "/nothing");
  assert.equal(missing.status, 404);
  assert.match(missing.text, /serves \/health/);
  const posted = await get(port, "/health", { method: "POST", body: "x" });
  assert.equal(posted.status, 405);
  assert.equal(posted.headers.get("allow"), "GET, HEAD");
});

Deno.test("HTTP: with a password, /health needs it, by basic authentication or a bearer token", async () => {
  await using cluster = await Cluster.start({
    httpPort: 0,
    password: "secret",
    authFailureDelay: 0,
  });
  const port = cluster.router.httpPort!;
  const none = await get(port, "/health");
  assert.equal(none.status, 401);
  assert.match(none.headers.get("www-authenticate") ?? "", /^Basic realm=/);
  assert.match(none.text, /Authorization: Bearer/);
  const wrong = await get(port, "/health", {
    headers: { authorization: "Bearer guess" },
  });
  assert.equal(wrong.status, 401);
  const bearer = await get(port, "/health", {
    headers: { authorization: "Bearer secret" },
  });
  assert.equal(bearer.status, 200);
  const basic = await get(port, "/health", {
    headers: { authorization: `Basic ${btoa("anyone:secret")}` },
  });
  assert.equal(basic.status, 200);
  const metrics = await get(port, "/metrics", {
    headers: { authorization: "Bearer secret" },
  });
  // A request without a password is no wrong password; the wrong bearer
  // token before is.
  assert.match(metrics.text, /^kvndb_auth_failures_total 1$/m);
  const garbled = await get(port, "/health", {
    headers: { authorization: "Basic %%%" },
  });
  assert.equal(garbled.status, 401);
  // A right password seen before does not let a wrong one through.
  const again = await get(port, "/health", {
    headers: { authorization: "Bearer secreT" },
  });
  assert.equal(again.status, 401);
  assert.equal(
    (await get(port, "/health", {
      headers: { authorization: "Bearer secret" },
    })).status,
    200,
  );
});

/**
 * Sends `text` on a fresh connection and returns the first bytes answered;
 * `refused` when the server closed the connection before taking it all.
 */
async function raw(
  port: number,
  text: string,
): Promise<{ answer: string; refused: boolean }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    let refused = false;
    await conn.write(new TextEncoder().encode(text)).catch(() => {
      refused = true;
    });
    const buffer = new Uint8Array(4096);
    const count = await conn.read(buffer).catch(() => null);
    const answer = count === null
      ? ""
      : new TextDecoder().decode(buffer.subarray(0, count));
    return { answer, refused };
  } finally {
    conn.close();
  }
}

Deno.test("HTTP: malformed requests and huge headers get a 4xx or a closed connection, and the router goes on", async () => {
  await using cluster = await Cluster.start({ httpPort: 0 });
  const port = cluster.router.httpPort!;
  // Deno's HTTP server answers both with 400 (its header limit is far
  // below 200 KB) and closes.
  const garbage = await raw(port, "NOT HTTP AT ALL\r\n\r\n");
  assert.match(garbage.answer, /^HTTP\/1\.1 400 /);
  const huge = await raw(
    port,
    `GET /health HTTP/1.1\r\nhost: x\r\nx-big: ${"a".repeat(200_000)}\r\n\r\n`,
  );
  // Refused with 400, or cut off while it was still being sent.
  assert.ok(
    /^HTTP\/1\.1 400 /.test(huge.answer) || huge.refused,
    JSON.stringify(huge.answer.slice(0, 60)),
  );
  assert.equal((await get(port, "/health")).status, 200);
  const client = await cluster.client();
  await client.set("still", "serving");
  assert.equal(await client.get("still"), "serving");
});

Deno.test("HTTP: /metrics is Prometheus text that a real parser and promtool accept, with the cluster's figures", async () => {
  await using cluster = await Cluster.start({ httpPort: 0, databases: 2 });
  const client = await cluster.client();
  await client.set("a", "1");
  await client.get("a");
  await client.increment("n");
  const response = await fetch(
    `http://127.0.0.1:${cluster.router.httpPort}/metrics`,
  );
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain/);
  const text = await response.text();
  const families = parsePrometheusTextFormat(text) as MetricFamily[];
  const family = (name: string) => {
    const found = families.find((f) => f.name === name);
    assert.ok(found, `${name} is exported`);
    return found;
  };
  const value = (name: string, labels: Record<string, string> = {}) => {
    const metric = family(name).metrics.find((m) =>
      Object.entries(labels).every(([k, v]) => m.labels?.[k] === v)
    );
    assert.ok(metric, `${name} ${JSON.stringify(labels)}`);
    return Number(metric.value);
  };
  assert.equal(family("kvndb_requests_total").type, "COUNTER");
  assert.equal(value("kvndb_requests_total", { operation: "set" }), 1);
  assert.equal(value("kvndb_requests_total", { operation: "atomic" }), 1);
  assert.ok(value("kvndb_requests_total", { operation: "get" }) >= 1);
  assert.equal(value("kvndb_databases", { state: "ready" }), 2);
  assert.equal(value("kvndb_databases", { state: "syncing" }), 0);
  assert.equal(value("kvndb_connections", { kind: "database" }), 2);
  const seq = value("kvndb_sequence");
  assert.ok(seq >= 2);
  for (const metric of family("kvndb_database_applied_sequence").metrics) {
    assert.ok(Number(metric.value) <= seq);
  }
  assert.equal(family("kvndb_database_lag").metrics.length, 2);
  assert.ok(value("kvndb_backlog_bytes") > 0);
  // One set, one increment, one get: each timed under its kind. (The
  // parser keeps a histogram's buckets but not its labels: read the text.)
  assert.equal(family("kvndb_request_duration_seconds").type, "HISTOGRAM");
  for (const operation of ["read", "write", "atomic"]) {
    assert.match(
      text,
      new RegExp(
        `^kvndb_request_duration_seconds_count\\{operation="${operation}"\\} 1$`,
        "m",
      ),
    );
    assert.match(
      text,
      new RegExp(
        `^kvndb_request_duration_seconds_bucket\\{operation="${operation}",le="10"\\} 1$`,
        "m",
      ),
    );
  }
  assert.ok(value("kvndb_received_bytes_total") > 0);
  assert.ok(value("kvndb_sent_bytes_total") > 0);
  // promtool, where Debian's prometheus package is installed, checks the
  // names and conventions too.
  let promtool: Deno.ChildProcess;
  try {
    promtool = new Deno.Command("promtool", {
      args: ["check", "metrics"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  const writer = promtool.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const checked = await promtool.output();
  const output = new TextDecoder().decode(checked.stdout) +
    new TextDecoder().decode(checked.stderr);
  assert.equal(checked.code, 0, output);
});
