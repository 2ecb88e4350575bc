import assert from "node:assert/strict";
import type { Client, MemberStats, RouterStats } from "../client/mod.ts";
import { ConnectionClosedError } from "../client/mod.ts";
import {
  type ConsoleClient,
  type ConsoleOptions,
  KvndbConsole,
  runConsole,
  UsageError,
} from "./mod.ts";

/** An in-memory stand-in for a router, keeping keys in a Map. */
class FakeClient implements ConsoleClient {
  data = new Map<string, string>();
  members: MemberStats[] = [];
  forgotten: string[][] = [];
  pageSizes: (number | undefined)[] = [];
  #seq = 0;

  get(key: string): Promise<string | null> {
    return Promise.resolve(this.data.get(key) ?? null);
  }
  /** Expiry times (ms since the epoch) of the keys that have one. */
  expiries = new Map<string, number>();
  set(
    key: string,
    value: string,
    options?: { expireIn?: number },
  ): Promise<number> {
    this.data.set(key, value);
    if (options?.expireIn === undefined) this.expiries.delete(key);
    else this.expiries.set(key, Date.now() + options.expireIn);
    return Promise.resolve(++this.#seq);
  }
  expire(key: string, ms: number): Promise<boolean> {
    if (!this.data.has(key)) return Promise.resolve(false);
    this.expiries.set(key, Date.now() + ms);
    return Promise.resolve(true);
  }
  persist(key: string): Promise<boolean> {
    return Promise.resolve(this.expiries.delete(key));
  }
  ttl(key: string): Promise<bigint> {
    if (!this.data.has(key)) return Promise.resolve(-2n);
    const at = this.expiries.get(key);
    return Promise.resolve(at === undefined ? -1n : BigInt(at - Date.now()));
  }
  delete(key: string): Promise<number> {
    this.data.delete(key);
    return Promise.resolve(++this.#seq);
  }
  increment(key: string, by: bigint | number = 1): Promise<bigint> {
    const current = this.data.get(key) ?? "0";
    if (!/^-?[0-9]+$/.test(current)) {
      return Promise.reject(
        new Error("value is not an integer or out of range"),
      );
    }
    const next = BigInt(current) + BigInt(by);
    this.data.set(key, String(next));
    this.#seq++;
    return Promise.resolve(next);
  }
  // Pages of two keys, unsorted, to prove that the console pages and sorts.
  async *keys(options?: { pageSize?: number }): AsyncGenerator<string[]> {
    this.pageSizes.push(options?.pageSize);
    const keys = [...this.data.keys()];
    for (let i = 0; i < keys.length; i += 2) yield keys.slice(i, i + 2);
  }
  ping(): Promise<number> {
    return Promise.resolve(1.5);
  }
  stats(): Promise<RouterStats> {
    return Promise.resolve({
      clusterId: "c0ffee",
      seq: this.#seq,
      clients: 1,
      databases: [{
        id: 1,
        peer: "127.0.0.1:4000",
        state: "ready",
        applied: this.#seq,
        outstanding: 0,
        keys: this.data.size,
      }],
      operations: { set: 2, get: 1 },
      uptime: 3725,
      members: this.members,
    });
  }
  forget(members: string[] | "absent"): Promise<MemberStats[]> {
    const ids = members === "absent"
      ? this.members.filter((m) => !m.present).map((m) => m.id)
      : members;
    this.forgotten.push(ids);
    return Promise.resolve(this.members.filter((m) => ids.includes(m.id)));
  }
}

const SAMPLE_MEMBERS: MemberStats[] = [
  {
    id: "3f2a9c1b00000000000000000000000a",
    volatile: false,
    address: "127.0.0.1:4001",
    present: false,
    awaySeconds: 75,
  },
  {
    id: "3f77000000000000000000000000000b",
    volatile: true,
    address: "127.0.0.1:4002",
    present: true,
    awaySeconds: 0,
  },
];

/** A fake whose router knows two members, one absent. */
function withMembers(): FakeClient {
  const client = new FakeClient();
  client.members = SAMPLE_MEMBERS;
  return client;
}

function stream(text: string): ReadableStream<Uint8Array> {
  return ReadableStream.from([text]).pipeThrough(new TextEncoderStream());
}

function collector(): { stream: WritableStream<Uint8Array>; text(): string } {
  const decoder = new TextDecoder();
  let text = "";
  return {
    stream: new WritableStream({
      write(chunk) {
        text += decoder.decode(chunk, { stream: true });
      },
    }),
    text: () => text,
  };
}

/** Pipes `script` through a console, the way `printf ... | kvndb cmd` does. */
async function pipe(
  script: string,
  options: ConsoleOptions & { client?: ConsoleClient; console?: KvndbConsole } =
    {},
): Promise<{ status: number; output: string; errors: string }> {
  const output = collector();
  const errorOutput = collector();
  const io = {
    input: stream(script),
    output: output.stream,
    errorOutput: errorOutput.stream,
    interactive: false,
    ...options,
  };
  const status = await runConsole(options.client ?? new FakeClient(), io);
  return { status, output: output.text(), errors: errorOutput.text() };
}

Deno.test("ConsoleClient is satisfied by the real Client", () => {
  // A compile-time check: fails `deno check` if the client's API drifts.
  const client = null as unknown as Client;
  const asConsoleClient: ConsoleClient | null = client;
  assert.equal(asConsoleClient, null);
});

Deno.test("runConsole() runs a piped script of set, get and del in order", async () => {
  const client = new FakeClient();
  const result = await pipe("set a 1\nget a\nset a 2\nget a\ndel a\n", {
    client,
  });
  assert.equal(result.output, "1\n2\n");
  assert.equal(result.status, 0);
  assert.equal(client.data.size, 0);
});

Deno.test("runConsole() sets with ex SECONDS, and expire, ttl and persist work on expiries", async () => {
  const client = new FakeClient();
  const result = await pipe(
    "set a 1 ex 100\nttl a\nset b 2\nttl b\nexpire b 50\nttl b\n" +
      "persist b\nttl b\nttl nope\nexpire nope 5\nset c 1 ex 0\n" +
      "set c 1 px 5\nexpire b soon\n",
    { client },
  );
  assert.equal(
    result.output,
    "100\n-1\n50\n-1\nError: Key 'nope' not found!\n" +
      "Error: Key 'nope' not found!\nError: usage: set KEY VALUE [ex SECONDS]\n" +
      "Error: usage: set KEY VALUE [ex SECONDS]\nError: usage: expire KEY SECONDS\n",
  );
  assert.equal(result.status, 1);
  assert.ok(client.expiries.has("a"));
  assert.ok(!client.expiries.has("b"));
});

Deno.test("runConsole() prints the value alone for get and its aliases", async () => {
  const result = await pipe("set k v\nget k\nshow k\nview k\nprint k");
  assert.equal(result.output, "v\nv\nv\nv\n");
  assert.equal(result.status, 0);
});

Deno.test("runConsole() reports a missing key and exits with status 1", async () => {
  const result = await pipe("get nope\nset a 1\nget a\n");
  assert.equal(result.output, "Error: Key 'nope' not found!\n1\n");
  assert.equal(result.status, 1);
  assert.equal(result.errors, "");
});

Deno.test("runConsole() accepts quoted keys and values with spaces", async () => {
  const client = new FakeClient();
  const result = await pipe(
    `set 'my key' "a \\"quoted\\" value"\nget my\\ key\nset x 'unterminated\n`,
    { client },
  );
  assert.equal(
    result.output,
    'a "quoted" value\nError: Unterminated single quote\n',
  );
  assert.equal(client.data.get("my key"), 'a "quoted" value');
  assert.equal(result.status, 1);
});

Deno.test("runConsole() lists all keys sorted, in columns", async () => {
  const client = new FakeClient();
  for (const key of ["pear", "fig", "apple", "kiwi", "banana"]) {
    client.data.set(key, "x");
  }
  const result = await pipe("getkeys\nkeys 2\nlist 3\n", { client });
  assert.equal(
    result.output,
    [
      "apple",
      "banana",
      "fig",
      "kiwi",
      "pear",
      "apple  banana",
      "fig    kiwi",
      "pear",
      "apple  banana  fig",
      "kiwi   pear",
      "",
    ].join("\n"),
  );
  assert.equal(result.status, 0);
  assert.ok(client.pageSizes.every((size) => size !== undefined && size > 0));
});

Deno.test("runConsole() rejects a column count that is not a positive number", async () => {
  const result = await pipe("getkeys 0\ngetkeys two\n");
  assert.equal(
    result.output,
    "Error: usage: getkeys [COLUMNS]\nError: usage: getkeys [COLUMNS]\n",
  );
  assert.equal(result.status, 1);
});

Deno.test("runConsole() prints usage for the wrong number of arguments", async () => {
  const result = await pipe("set a\nget\ndel a b\nquit now\n");
  assert.equal(
    result.output,
    [
      "Error: usage: set KEY VALUE [ex SECONDS]",
      "Error: usage: get KEY",
      "Error: usage: del KEY",
      "Error: usage: quit",
      "",
    ].join("\n"),
  );
  assert.equal(result.status, 1);
});

Deno.test("runConsole() reports an unknown command", async () => {
  const result = await pipe("foo bar\n");
  assert.equal(
    result.output,
    "Error: Unknown command 'foo' (type help for the list)\n",
  );
  assert.equal(result.status, 1);
});

Deno.test("runConsole() skips blank lines and comments", async () => {
  const result = await pipe("\n   \n# set a 1\n  # get a\r\nset b 2\r\nget b");
  assert.equal(result.output, "2\n");
  assert.equal(result.status, 0);
});

Deno.test("runConsole() stops at quit and ignores the lines after it", async () => {
  const client = new FakeClient();
  const result = await pipe("set a 1\nquit\nset b 2\nfoo\n", { client });
  assert.equal(result.output, "");
  assert.equal(result.status, 0);
  assert.deepEqual([...client.data.keys()], ["a"]);
  const exit = await pipe("get missing\nexit\nset b 2\n");
  assert.equal(exit.status, 1);
});

Deno.test("runConsole() deletes with del, delete and remove", async () => {
  const client = new FakeClient();
  const result = await pipe(
    "set a 1\nset b 2\nset c 3\ndel a\ndelete b\nremove c\ndel never-there\n",
    { client },
  );
  assert.equal(result.output, "");
  assert.equal(result.status, 0);
  assert.equal(client.data.size, 0);
});

Deno.test("runConsole() prints ping times and statistics", async () => {
  const result = await pipe("set a 1\nping\nstats\n");
  assert.equal(
    result.output,
    [
      "pong in 1.50 ms",
      "cluster    c0ffee",
      "uptime     1h 2m 5s",
      "sequence   1",
      "clients    1",
      "databases  1",
      "  #1 127.0.0.1:4000: ready, applied 1, 1 keys, 0 reads pending",
      "operations",
      "  get  1",
      "  set  2",
      "",
    ].join("\n"),
  );
});

Deno.test("runConsole() lists the commands and explains one with help", async () => {
  const result = await pipe("help\nhelp show\nhelp nothing\n");
  const lines = result.output.split("\n");
  assert.equal(lines[0], "Commands (type help COMMAND for details):");
  for (
    const name of [
      "set",
      "get",
      "del",
      "getkeys",
      "ping",
      "stats",
      "help",
      "quit",
    ]
  ) {
    assert.ok(lines.some((line) => line.startsWith(`  ${name}`)), name);
  }
  assert.ok(
    result.output.includes("usage: get KEY\naliases: show, view, print\n"),
  );
  assert.ok(
    result.output.endsWith(
      "Error: Unknown command 'nothing' (type help for the list)\n",
    ),
  );
  assert.equal(result.status, 1);
});

Deno.test("runConsole() prints failures from the client as errors", async () => {
  const client = new FakeClient();
  client.set = () => Promise.reject(new Error("Value too large"));
  const result = await pipe("set a b\n", { client });
  assert.equal(result.output, "Error: Value too large\n");
  assert.equal(result.status, 1);
});

Deno.test("runConsole() stops with status 1 when the connection is lost", async () => {
  const client = new FakeClient();
  client.get = () =>
    Promise.reject(
      new ConnectionClosedError("Connection to the router closed"),
    );
  const result = await pipe("get a\nset b 1\n", { client });
  assert.equal(result.output, "");
  assert.equal(result.errors, "Error: Connection to the router closed\n");
  assert.equal(result.status, 1);
  assert.equal(client.data.size, 0);
});

Deno.test("KvndbConsole.addCommand() adds a program's own command", async () => {
  const client = new FakeClient();
  const output = collector();
  const kvndb = new KvndbConsole(client, {
    input: stream(
      "set a 1\nincr a\nincr a\nplus1 a\nincr\nincr a b c\nget a\n",
    ),
    output: output.stream,
    interactive: false,
  });
  kvndb.addCommand({
    name: "incr",
    aliases: ["plus1"],
    usage: "incr KEY [BY]",
    help: "Adds BY (default 1) to a numeric value.",
    minArgs: 1,
    maxArgs: 2,
    async run([key, by = "1"], ctx) {
      const value = Number(await ctx.client.get(key!) ?? 0) + Number(by);
      await ctx.client.set(key!, String(value));
      await ctx.print(String(value));
    },
  });
  const status = await kvndb.run();
  assert.equal(
    output.text(),
    "2\n3\n4\nError: usage: incr KEY [BY]\nError: usage: incr KEY [BY]\n4\n",
  );
  assert.equal(status, 1);
  assert.ok(kvndb.commands.some((command) => command.name === "incr"));
});

Deno.test("KvndbConsole.addCommand() replaces a built-in command with its aliases", async () => {
  const output = collector();
  const kvndb = new KvndbConsole(new FakeClient(), {
    output: output.stream,
    interactive: false,
  });
  kvndb.addCommand({
    name: "get",
    usage: "get KEY",
    help: "Always says no.",
    run() {
      throw new UsageError();
    },
  });
  assert.equal(await kvndb.execute("get a"), false);
  assert.equal(await kvndb.execute("show a"), false);
  assert.equal(
    output.text(),
    "Error: usage: get KEY\nError: Unknown command 'show' (type help for the list)\n",
  );
  assert.equal(
    kvndb.commands.filter((command) => command.name === "get").length,
    1,
  );
});

Deno.test("runConsole() shows a banner, prompts and confirms writes when interactive", async () => {
  const output = collector();
  const status = await runConsole(new FakeClient(), {
    input: stream("set a 1\nget a\nget b\n"),
    output: output.stream,
    interactive: true,
    banner: "Connected to test",
  });
  assert.equal(status, 0);
  assert.equal(
    output.text(),
    "Connected to test\nkvndb> OK\nkvndb> 1\nkvndb> Error: Key 'b' not found!\nkvndb> \n",
  );
});

Deno.test("forget in a script does nothing without --yes, and says how to go on", async () => {
  const client = withMembers();
  const result = await pipe("forget --all-absent\n", { client });
  assert.equal(result.status, 1);
  assert.equal(
    result.output,
    "Forgetting 1 member:\n" +
      "  3f2a9c1b00000000000000000000000a durable, last at 127.0.0.1:4001, away 1m 15s\n" +
      "Acknowledged writes that only they hold are lost for good; one that comes back later is copied from the others.\n" +
      "Error: Not confirmed: nothing forgotten (add --yes to go on without being asked)\n",
  );
  assert.deepEqual(client.forgotten, []);
});

Deno.test("forget takes the start of an id, and --yes", async () => {
  const client = withMembers();
  const ambiguous = await pipe("forget 3f --yes\n", { client });
  assert.match(ambiguous.output, /'3f' is the start of 2 members' ids/);
  const result = await pipe("forget 3f2a --yes\n", { client });
  assert.equal(result.status, 0, result.output);
  assert.match(
    result.output,
    /Forgot 1 member: the router no longer waits for them\n$/,
  );
  assert.deepEqual(client.forgotten, [["3f2a9c1b00000000000000000000000a"]]);
  const usage = await pipe("forget\nforget 3f2a --all-absent\n", { client });
  assert.equal(
    usage.output,
    "Error: usage: forget NODE_ID... | forget --all-absent  [--yes]\n".repeat(
      2,
    ),
  );
});

Deno.test("forget on a terminal asks first and goes on at yes", async () => {
  for (const [answer, forgotten] of [["n", 0], ["y", 1]] as const) {
    const client = withMembers();
    const output = collector();
    await runConsole(client, {
      input: stream(`forget --all-absent\n${answer}\n`),
      output: output.stream,
      interactive: true,
      banner: "",
    });
    assert.match(output.text(), /Forget them\? \[y\/N\] /);
    assert.equal(client.forgotten.length, forgotten, output.text());
  }
});

Deno.test("stats lists the members and a hold", async () => {
  const client = withMembers();
  const stats = await client.stats();
  client.stats = () =>
    Promise.resolve({
      ...stats,
      hold: {
        seconds: 3,
        needed: 1,
        held: 1,
        reason: "No database known to hold",
      },
    });
  const result = await pipe("stats\n", { client });
  assert.match(
    result.output,
    /members \(databases known to hold every acknowledged write\)\n {2}3f2a9c1b00000000000000000000000a durable, last at 127\.0\.0\.1:4001, away 1m 15s\n {2}3f77000000000000000000000000000b volatile \(memory\), last at 127\.0\.0\.1:4002, connected\nholding: No database known to hold\n/,
  );
});

Deno.test("incr adds 1 or N and prints the new value; a bad N prints usage", async () => {
  const client = new FakeClient();
  const result = await pipe(
    "incr hits\nincr hits 41\nincr hits -2\nincr hits two\nset w x\nincr w\n",
    { client },
  );
  assert.equal(
    result.output,
    [
      "1",
      "42",
      "40",
      "Error: usage: incr KEY [N]",
      "Error: value is not an integer or out of range",
      "",
    ].join("\n"),
  );
  assert.equal(client.data.get("hits"), "40");
  assert.equal(result.status, 1);
});
