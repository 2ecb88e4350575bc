import assert from "node:assert/strict";
import fc from "fast-check";
import { DEFAULT_PORT } from "./constants.ts";
import { InvalidArgumentError } from "./errors.ts";
import {
  describeEndpoint,
  type Endpoint,
  parseEndpoint,
  parsePort,
} from "./transport.ts";

/** Asserts that parsing `spec` throws InvalidArgumentError whose message names `part`. */
function assertBad(spec: string, part: string): void {
  assert.throws(
    () => parseEndpoint(spec),
    (error) => {
      assert.ok(error instanceof InvalidArgumentError, `${spec}: ${error}`);
      assert.ok(
        error.message.includes(part),
        `"${error.message}" should name "${part}"`,
      );
      return true;
    },
  );
}

Deno.test({
  name: "parseEndpoint() reads a TCP endpoint with its port and interface",
  permissions: "none",
  fn() {
    assert.deepEqual(parseEndpoint("tcp:port=1234:interface=127.0.0.1"), {
      type: "tcp",
      hostname: "127.0.0.1",
      port: 1234,
    });
    assert.deepEqual(parseEndpoint("tcp:host=db.example.com:port=0"), {
      type: "tcp",
      hostname: "db.example.com",
      port: 0,
    });
  },
});

Deno.test({
  name:
    "parseEndpoint() fills in the default port and a listen-anywhere address",
  permissions: "none",
  fn() {
    assert.deepEqual(parseEndpoint("tcp"), {
      type: "tcp",
      hostname: "0.0.0.0",
      port: DEFAULT_PORT,
    });
    assert.deepEqual(parseEndpoint("tcp6"), {
      type: "tcp6",
      hostname: "::",
      port: DEFAULT_PORT,
    });
  },
});

Deno.test({
  name: "parseEndpoint() reads a TCP6 address whose colons are escaped",
  permissions: "none",
  fn() {
    assert.deepEqual(
      parseEndpoint(String.raw`tcp6:port=54565:interface=\:\:1`),
      {
        type: "tcp6",
        hostname: "::1",
        port: 54565,
      },
    );
    assert.deepEqual(
      parseEndpoint(String.raw`tcp6:interface=fe80\:\:1\:2:port=7`),
      { type: "tcp6", hostname: "fe80::1:2", port: 7 },
    );
  },
});

Deno.test({
  name:
    "parseEndpoint() reads TLS endpoints with certificate, key and CA files",
  permissions: "none",
  fn() {
    assert.deepEqual(
      parseEndpoint("tls:port=54566:certKey=/etc/kvndb/c.pem:privateKey=k.pem"),
      {
        type: "tls",
        hostname: "0.0.0.0",
        port: 54566,
        certFile: "/etc/kvndb/c.pem",
        keyFile: "k.pem",
      },
    );
    assert.deepEqual(
      parseEndpoint("tls:host=example.com:port=443:caCerts=ca.pem"),
      { type: "tls", hostname: "example.com", port: 443, caFile: "ca.pem" },
    );
  },
});

Deno.test({
  name: "parseEndpoint() reads a Unix socket path, escaped colons included",
  permissions: "none",
  fn() {
    const unix = parseEndpoint("unix:path=/tmp/kvndb.sock");
    assert.equal(unix.type, "unix");
    assert.equal(unix.path, "/tmp/kvndb.sock");
    assert.equal(
      parseEndpoint(String.raw`unix:path=/tmp/a\:b.sock`).path,
      "/tmp/a:b.sock",
    );
    // Only the first '=' splits name from value.
    assert.equal(parseEndpoint("unix:path=/tmp/x=y").path, "/tmp/x=y");
  },
});

Deno.test({
  name: "parseEndpoint() names an unknown transport type",
  permissions: "none",
  fn() {
    assertBad("udp:port=1", "unknown type 'udp'");
    assertBad("TCP:port=1", "unknown type 'TCP'");
    assertBad("", "unknown type ''");
    assertBad(":port=1", "unknown type ''");
  },
});

Deno.test({
  name: "parseEndpoint() names a port that is not a number from 0 to 65535",
  permissions: "none",
  fn() {
    for (
      const port of [
        "abc",
        "65536",
        "-1",
        "",
        "1.5",
        " 80",
        "0x10",
        "1e3",
        "99999999999",
      ]
    ) {
      assertBad(`tcp:port=${port}`, `port '${port}'`);
    }
    assert.equal(parseEndpoint("tcp:port=65535").port, 65535);
    assert.equal(parseEndpoint("tcp:port=00080").port, 80);
  },
});

Deno.test({
  name: "parseEndpoint() names an option that is not name=value",
  permissions: "none",
  fn() {
    assertBad("tcp:port", "'port' is not name=value");
    assertBad("tcp:=1234", "'=1234' is not name=value");
    assertBad("tcp:port=1:", "'' is not name=value");
    // Unescaped colons split the value into parts of their own.
    assertBad("tcp6:interface=::1", "'' is not name=value");
  },
});

Deno.test({
  name: "parseEndpoint() names an unknown option",
  permissions: "none",
  fn() {
    assertBad("tcp:port=1:colour=blue", "unknown option 'colour'");
    assertBad("tls:certkey=c.pem", "unknown option 'certkey'");
  },
});

Deno.test({
  name: "parseEndpoint() refuses a Unix endpoint without a path",
  permissions: "none",
  fn() {
    assertBad("unix", "need path=");
    assertBad("unix:path=", "need path=");
  },
});

Deno.test({
  name: "parseEndpoint() throws only InvalidArgumentError on any string",
  permissions: "none",
  fn() {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.tuple(
            fc.constantFrom("tcp", "tcp6", "tls", "unix"),
            fc.array(fc.string({ maxLength: 12 }), { maxLength: 4 }),
          ).map(([type, parts]) => [type, ...parts].join(":")),
        ),
        (spec) => {
          try {
            const endpoint = parseEndpoint(spec);
            assert.ok(Number.isInteger(endpoint.port));
            assert.ok(endpoint.port >= 0 && endpoint.port <= 65535);
          } catch (error) {
            assert.ok(error instanceof InvalidArgumentError, String(error));
            assert.ok(error.message.includes(spec), "names the endpoint");
          }
        },
      ),
    );
  },
});

Deno.test({
  name: "parsePort() names where the port came from",
  permissions: "none",
  fn() {
    assert.equal(parsePort("54565", "--port"), 54565);
    assert.throws(
      () => parsePort("http", "--port"),
      (error) =>
        error instanceof InvalidArgumentError &&
        error.message ===
          "Bad --port: port 'http' is not a number from 0 to 65535",
    );
  },
});

Deno.test({
  name: "describeEndpoint() puts brackets around IPv6 addresses",
  permissions: "none",
  fn() {
    const describe = (spec: string) => describeEndpoint(parseEndpoint(spec));
    assert.equal(describe("tcp:port=1:interface=127.0.0.1"), "tcp 127.0.0.1:1");
    assert.equal(
      describe(String.raw`tcp6:port=2:interface=\:\:1`),
      "tcp6 [::1]:2",
    );
    assert.equal(describe("tls:port=3:host=example.com"), "tls example.com:3");
    assert.equal(describe("unix:path=/tmp/k.sock"), "unix /tmp/k.sock");
    const endpoint: Endpoint = { type: "tcp6", hostname: "::", port: 4 };
    assert.equal(describeEndpoint(endpoint), "tcp6 [::]:4");
  },
});
