// Property-based tests against a real in-process cluster: a model-based test
// of reads, writes, atomic operations, listings and membership changes, and two tests in which
// fast-check's scheduler picks the order of concurrent operations.
//
// On failure fast-check prints the seed and the path of the counterexample;
// replay one with `fc.assert(..., { seed, path })`.

import assert from "node:assert/strict";
import fc from "fast-check";
import { type Client, InvalidArgumentError } from "../client/mod.ts";
import {
  type DatabaseNode,
  KvDatabase,
  MemoryDatabase,
} from "../database/mod.ts";
import { Cluster } from "./_cluster.ts";

const decoder = new TextDecoder();

// ------------------------------------------------------------ model-based

/** Keys from a small alphabet, so that prefix listings select something. */
const PREFIXES = ["a:", "b:", "ab:"] as const;
const DIGITS = ["0", "1", "2", "3"] as const;
const ALL_KEYS = PREFIXES.flatMap((prefix) =>
  DIGITS.map((digit) => prefix + digit)
);
/** Listing prefixes: whole key prefixes, and ones that cut across them. */
const LIST_PREFIXES = ["", "a", "a:", "ab", "ab:", "b", "b:", "a:1"] as const;
const MAX_NODES = 4;

interface Model {
  /** What every key holds. */
  data: Map<string, string>;
  /** The keys that have an expiry (an hour away: none expires in a run). */
  expiring: Set<string>;
  /** Database nodes that are up. */
  nodes: number;
}

interface Real {
  cluster: Cluster;
  client: Client;
  /** The nodes that are up, oldest first. */
  live: DatabaseNode[];
  /** The version (write sequence number) each present key was set at. */
  versions: Map<string, number>;
  /** The highest version any write returned. */
  lastVersion: number;
}

type ClusterCommand = fc.AsyncCommand<Model, Real>;

/** Checks that a write's version follows every earlier one. */
function recordVersion(real: Real, version: number, what: string): void {
  assert.ok(
    version > real.lastVersion,
    `${what} returned version ${version}, not above ${real.lastVersion}`,
  );
  real.lastVersion = version;
}

/** Checks that every key of the alphabet reads exactly as the model says. */
async function assertEveryKeyMatches(
  model: Model,
  real: Real,
  after: string,
): Promise<void> {
  const entries = await Promise.all(
    ALL_KEYS.map((key) => real.client.getEntry(key)),
  );
  ALL_KEYS.forEach((key, i) => {
    const entry = entries[i]!;
    const want = model.data.get(key) ?? null;
    assert.equal(
      entry === null ? null : decoder.decode(entry.value),
      want,
      `${key} after ${after}`,
    );
    if (entry !== null) {
      assert.equal(entry.version, real.versions.get(key), `${key} version`);
      assert.equal(
        entry.expiresAt !== undefined,
        model.expiring.has(key),
        `${key} expiry after ${after}`,
      );
    }
  });
}

/** An hour: long enough that no expiry falls within a run. */
const LATER = 3_600_000;

async function startNode(
  real: Real,
  kind: "memory" | "kv",
  reset: boolean,
): Promise<DatabaseNode> {
  const database = kind === "kv"
    ? await KvDatabase.open(":memory:")
    : new MemoryDatabase();
  const node = await real.cluster.addDatabase({ database, reset });
  real.live.push(node);
  return node;
}

class SetCommand implements ClusterCommand {
  constructor(
    readonly key: string,
    readonly value: string,
    readonly expiring = false,
  ) {}
  check(): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    const version = await real.client.set(
      this.key,
      this.value,
      this.expiring ? { expireIn: LATER } : undefined,
    );
    recordVersion(real, version, this.toString());
    model.data.set(this.key, this.value);
    if (this.expiring) model.expiring.add(this.key);
    else model.expiring.delete(this.key);
    real.versions.set(this.key, version);
  }
  toString(): string {
    return `Set(${JSON.stringify(this.key)}, ${JSON.stringify(this.value)}${
      this.expiring ? ", expireIn" : ""
    })`;
  }
}

/**
 * An expiry given (an hour away), given in the past (the key goes at once),
 * or removed; each answers whether it found the key (with an expiry, for
 * persist).
 */
class ExpireCommand implements ClusterCommand {
  constructor(
    readonly key: string,
    readonly mode: "later" | "now" | "persist",
  ) {}
  check(): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    const exists = model.data.has(this.key);
    const changed = this.mode === "persist"
      ? await real.client.persist(this.key)
      : await real.client.expire(this.key, this.mode === "now" ? 0 : LATER);
    const expected = this.mode === "persist"
      ? exists && model.expiring.has(this.key)
      : exists;
    assert.equal(changed, expected, this.toString());
    if (!changed) return;
    if (this.mode === "now") {
      model.data.delete(this.key);
      model.expiring.delete(this.key);
      real.versions.delete(this.key);
      return;
    }
    if (this.mode === "later") model.expiring.add(this.key);
    else model.expiring.delete(this.key);
    const entry = await real.client.getEntry(this.key);
    recordVersion(real, entry!.version, this.toString());
    real.versions.set(this.key, entry!.version);
    const ttl = await real.client.ttl(this.key);
    if (this.mode === "later") assert.ok(ttl > 0n && ttl <= BigInt(LATER));
    else assert.equal(ttl, -1n, this.toString());
  }
  toString(): string {
    return `Expire(${JSON.stringify(this.key)}, ${this.mode})`;
  }
}

class GetCommand implements ClusterCommand {
  constructor(readonly key: string) {}
  check(): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    const entry = await real.client.getEntry(this.key);
    assert.equal(
      entry === null ? null : decoder.decode(entry.value),
      model.data.get(this.key) ?? null,
      this.toString(),
    );
    if (entry !== null) {
      assert.equal(entry.version, real.versions.get(this.key));
      assert.equal(
        entry.expiresAt !== undefined,
        model.expiring.has(this.key),
        `${this} expiry`,
      );
    }
  }
  toString(): string {
    return `Get(${JSON.stringify(this.key)})`;
  }
}

class DeleteCommand implements ClusterCommand {
  constructor(readonly key: string) {}
  check(): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    const version = await real.client.delete(this.key);
    recordVersion(real, version, this.toString());
    model.data.delete(this.key);
    model.expiring.delete(this.key);
    real.versions.delete(this.key);
  }
  toString(): string {
    return `Delete(${JSON.stringify(this.key)})`;
  }
}

/** An atomic increment: the model adds to a decimal integer, or refuses. */
class IncrementCommand implements ClusterCommand {
  constructor(readonly key: string, readonly by: number) {}
  check(): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    const current = model.data.get(this.key) ?? "0";
    if (!/^(0|-?[1-9][0-9]*)$/.test(current)) {
      await assert.rejects(
        () => real.client.increment(this.key, this.by),
        InvalidArgumentError,
        this.toString(),
      );
      return;
    }
    const next = await real.client.increment(this.key, this.by);
    assert.equal(next, BigInt(current) + BigInt(this.by), this.toString());
    const entry = await real.client.getEntry(this.key);
    recordVersion(real, entry!.version, this.toString());
    model.data.set(this.key, String(next));
    real.versions.set(this.key, entry!.version);
  }
  toString(): string {
    return `Increment(${JSON.stringify(this.key)}, ${this.by})`;
  }
}

/**
 * A compare-and-set of one key against the version the model knows
 * (`fresh`) or a version it never had: only the first may commit.
 */
class CompareAndSetCommand implements ClusterCommand {
  constructor(
    readonly key: string,
    readonly value: string,
    readonly fresh: boolean,
  ) {}
  check(): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    const known = real.versions.get(this.key) ?? null;
    const version = this.fresh ? known : (known ?? 0) + 1_000_000;
    const result = await real.client.atomic().check({ key: this.key, version })
      .set(this.key, this.value).commit();
    assert.equal(result.ok, this.fresh, this.toString());
    if (result.ok) {
      recordVersion(real, result.version, this.toString());
      model.data.set(this.key, this.value);
      model.expiring.delete(this.key);
      real.versions.set(this.key, result.version);
    }
  }
  toString(): string {
    return `CompareAndSet(${JSON.stringify(this.key)}, ${
      JSON.stringify(this.value)
    }, ${this.fresh ? "fresh" : "stale"})`;
  }
}

class ListPrefixCommand implements ClusterCommand {
  constructor(readonly prefix: string, readonly pageSize: number) {}
  check(): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    const listed: string[] = [];
    for await (
      const page of real.client.keys({
        prefix: this.prefix,
        pageSize: this.pageSize,
      })
    ) {
      assert.ok(page.length <= this.pageSize, "a page over its size");
      listed.push(...page);
    }
    const expected = [...model.data.keys()]
      .filter((key) => key.startsWith(this.prefix))
      .sort();
    // Keys are ASCII, so byte order is code unit order: the listing comes sorted.
    assert.deepEqual(listed, expected, this.toString());
  }
  toString(): string {
    return `ListPrefix(${JSON.stringify(this.prefix)}, ${this.pageSize})`;
  }
}

class JoinDatabaseCommand implements ClusterCommand {
  constructor(readonly kind: "memory" | "kv") {}
  check(model: Readonly<Model>): boolean {
    return model.nodes < MAX_NODES;
  }
  async run(model: Model, real: Real): Promise<void> {
    await startNode(real, this.kind, false);
    model.nodes++;
    assert.equal(real.live.length, model.nodes);
    await assertEveryKeyMatches(model, real, this.toString());
  }
  toString(): string {
    return `JoinDatabase(${this.kind})`;
  }
}

class LeaveDatabaseCommand implements ClusterCommand {
  constructor(readonly pick: number) {}
  check(model: Readonly<Model>): boolean {
    return model.nodes > 1;
  }
  async run(model: Model, real: Real): Promise<void> {
    const [node] = real.live.splice(this.pick % real.live.length, 1);
    await node!.close();
    model.nodes--;
    assert.equal(real.live.length, model.nodes);
    await assertEveryKeyMatches(model, real, this.toString());
  }
  toString(): string {
    return `LeaveDatabase(#${this.pick})`;
  }
}

class ResetDatabaseCommand implements ClusterCommand {
  constructor(readonly kind: "memory" | "kv", readonly pick: number) {}
  check(): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    const older = real.live.length;
    await startNode(real, this.kind, true);
    const [node] = real.live.splice(this.pick % older, 1);
    await node!.close();
    assert.equal(real.live.length, model.nodes);
    await assertEveryKeyMatches(model, real, this.toString());
  }
  toString(): string {
    return `ResetDatabase(${this.kind}, #${this.pick})`;
  }
}

const keyArb = fc.constantFrom(...ALL_KEYS);
const kindArb = fc.constantFrom("memory" as const, "kv" as const);
const commandsArb = fc.commands<Model, Real, false>(
  [
    fc.tuple(keyArb, fc.string({ maxLength: 6 }), fc.boolean()).map((
      [key, value, expiring],
    ) => new SetCommand(key, value, expiring)),
    fc.tuple(keyArb, fc.constantFrom("later", "now", "persist" as const))
      .map(([key, mode]) => new ExpireCommand(key, mode)),
    keyArb.map((key) => new GetCommand(key)),
    keyArb.map((key) => new DeleteCommand(key)),
    fc.tuple(keyArb, fc.integer({ min: -3, max: 3 })).map(([key, by]) =>
      new IncrementCommand(key, by)
    ),
    fc.tuple(keyArb, fc.string({ maxLength: 6 }), fc.boolean()).map((
      [key, value, fresh],
    ) => new CompareAndSetCommand(key, value, fresh)),
    fc.tuple(fc.constantFrom(...LIST_PREFIXES), fc.integer({ min: 1, max: 4 }))
      .map(([prefix, pageSize]) => new ListPrefixCommand(prefix, pageSize)),
    kindArb.map((kind) => new JoinDatabaseCommand(kind)),
    fc.nat({ max: 15 }).map((pick) => new LeaveDatabaseCommand(pick)),
    fc.tuple(kindArb, fc.nat({ max: 15 })).map(([kind, pick]) =>
      new ResetDatabaseCommand(kind, pick)
    ),
  ],
  { maxCommands: 40, size: "max" },
);

Deno.test("a cluster answers reads, writes, increments, compare-and-sets, expiries and listings exactly as a map would while databases join, leave and reset", async () => {
  await fc.assert(
    fc.asyncProperty(commandsArb, async (commands) => {
      await using cluster = await Cluster.start({ databases: 1 });
      const real: Real = {
        cluster,
        client: await cluster.client(),
        live: [...cluster.nodes],
        versions: new Map(),
        lastVersion: 0,
      };
      const model: Model = { data: new Map(), expiring: new Set(), nodes: 1 };
      await fc.asyncModelRun(() => ({ model, real }), commands);
    }),
    // Runs take well under 0.1 s each; KVNDB_MODEL_RUNS explores further.
    { numRuns: Number(Deno.env.get("KVNDB_MODEL_RUNS") ?? "30") },
  );
});

// ------------------------------------------------- scheduled concurrent writes

interface WriteOp {
  client: number;
  key: string;
  /** The value to set, or `null` to delete. */
  value: string | null;
}

const writeOpArb = fc.record({
  client: fc.nat({ max: 2 }),
  key: fc.constantFrom("x", "y", "z"),
  value: fc.option(fc.string({ maxLength: 4 }), { freq: 4 }),
});

Deno.test("concurrent writes get unique versions, increasing per connection, and the highest version wins", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.scheduler(),
      fc.integer({ min: 2, max: 3 }),
      fc.array(writeOpArb, { minLength: 1, maxLength: 12 }),
      async (s, clientCount, ops: WriteOp[]) => {
        await using cluster = await Cluster.start({ databases: 2 });
        const clients: Client[] = [];
        for (let i = 0; i < clientCount; i++) {
          clients.push(await cluster.client());
        }
        const versions: (number | undefined)[] = ops.map(() => undefined);
        const followUps: Promise<void>[] = [];
        const observed = ops.map((op, i) => {
          const client = clients[op.client % clientCount]!;
          const write = op.value === null
            ? client.delete(op.key)
            : client.set(op.key, op.value);
          const label = `#${i} ${
            op.value === null ? "delete" : "set"
          } ${op.key}`;
          return s.schedule(write, label).then((version) => {
            versions[i] = version;
            // Once a write is acknowledged, any later read, through any
            // connection, sees it or a later write to the key.
            const reader = clients[(op.client + 1) % clientCount]!;
            // (Absent says only that some delete came last: nothing to compare.)
            followUps.push(
              reader.getEntry(op.key).then((entry) => {
                if (entry === null) return;
                assert.ok(
                  entry.version >= version,
                  `${label} acknowledged at ${version}, then read at ${entry.version}`,
                );
              }),
            );
          });
        });
        await s.waitAll();
        await Promise.all(observed);
        await Promise.all(followUps);

        const all = versions.map((version) => version!);
        assert.equal(new Set(all).size, all.length, "versions are unique");
        for (let c = 0; c < clientCount; c++) {
          const mine = all.filter((_, i) => ops[i]!.client % clientCount === c);
          for (let i = 1; i < mine.length; i++) {
            assert.ok(
              mine[i]! > mine[i - 1]!,
              `connection ${c}: versions ${mine} do not increase in issue order`,
            );
          }
        }
        for (const key of new Set(ops.map((op) => op.key))) {
          let last: { version: number; value: string | null } | undefined;
          ops.forEach((op, i) => {
            if (
              op.key === key && (last === undefined || all[i]! > last.version)
            ) {
              last = { version: all[i]!, value: op.value };
            }
          });
          const entry = await clients[0]!.getEntry(key);
          if (last!.value === null) {
            assert.equal(entry, null, `${key} ends deleted`);
          } else {
            assert.equal(entry?.version, last!.version, `${key} version`);
            assert.equal(decoder.decode(entry!.value), last!.value, key);
          }
        }
      },
    ),
    { numRuns: 20 },
  );
});

// ------------------------------------------- scheduled reads during a leave

Deno.test("reads of acknowledged keys return their values while a database leaves, in any order", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.scheduler(),
      fc.uniqueArray(fc.constantFrom(...ALL_KEYS), {
        minLength: 1,
        maxLength: 8,
      }),
      fc.string({ maxLength: 4 }),
      fc.constantFrom(0, 1),
      fc.integer({ min: 2, max: 4 }),
      fc.constantFrom(0, 1, 3),
      async (s, keys, salt, victim, readsPerKey, leaveDelay) => {
        await using cluster = await Cluster.start({ databases: 2 });
        const client = await cluster.client();
        const acknowledged = new Map<string, string>();
        await Promise.all(keys.map(async (key) => {
          const value = `${key}=${salt}`;
          await client.set(key, value);
          acknowledged.set(key, value);
        }));
        // Each step starts only when the scheduler releases it; the real
        // operations it starts then overlap one another.
        const started: Promise<unknown>[] = [];
        started.push(
          s.schedule(Promise.resolve(), `leave #${victim}`).then(async () => {
            // A short pause lets reads issued earlier reach the victim first.
            if (leaveDelay > 0) {
              await new Promise((resolve) => setTimeout(resolve, leaveDelay));
            }
            await cluster.nodes[victim]!.close();
          }),
        );
        for (const [key, value] of acknowledged) {
          for (let i = 0; i < readsPerKey; i++) {
            started.push(
              s.schedule(Promise.resolve(), `get ${key}`).then(async () => {
                assert.equal(await client.get(key), value, `get ${key}`);
              }),
            );
          }
        }
        await s.waitAll();
        await Promise.all(started);
        // And once the leave is over, every key is still there.
        for (const [key, value] of acknowledged) {
          assert.equal(await client.get(key), value, `${key} after the leave`);
        }
      },
    ),
    { numRuns: 20 },
  );
});
