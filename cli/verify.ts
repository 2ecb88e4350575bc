/**
 * `kvndb verify [--repair]`: do the databases hold the same data? The first
 * ready database is the reference; its keys are taken in pages of up to
 * 10,000, and every other database is asked for a digest (a SHA-256 of
 * each entry's key, version, expiry and value) of the same key range, so
 * that agreeing ranges cost one small answer each. Ranges whose digests
 * differ are compared entry by entry. Differences seen while writes go on
 * may be writes some databases have not applied yet: those keys are read
 * again once every database has reached the router's position, and only
 * what still differs is reported. `--repair` writes each differing key
 * again with the value most databases hold (the reference's on a tie), as
 * a new write every database applies, then checks it.
 *
 * @module
 */

import type { Client, RangeEntry } from "../client/mod.ts";
import { binaryString, equalBytes, keyAfter, sleep } from "../protocol/mod.ts";

/** How many keys a digest covers. */
const PAGE = 10_000;
/** How many entries a comparison fetches at once. */
const ENTRIES = 1_000;

/** A key that the databases hold differently. */
export interface Difference {
  key: Uint8Array;
  /** What each database holds, by its id (`null`: nothing). */
  held: Map<number, RangeEntry | null>;
}

/** What {@linkcode verify} found. */
export interface Verdict {
  /** The databases compared, by id; the first is the reference. */
  databases: number[];
  /** Keys the reference holds. */
  keys: number;
  /** Keys that differ (after the re-check). */
  differences: Difference[];
  /** Keys written again by `repair`. */
  repaired: number;
}

function same(a: RangeEntry | null, b: RangeEntry | null): boolean {
  if (a === null || b === null) return a === b;
  return a.version === b.version && a.expiresAt === b.expiresAt &&
    equalBytes(a.value, b.value);
}

/** Every entry of [start, end) on one database. */
async function entriesIn(
  client: Client,
  database: number,
  start: Uint8Array,
  end: Uint8Array,
): Promise<Map<string, RangeEntry>> {
  const out = new Map<string, RangeEntry>();
  let from = start;
  while (true) {
    const page = await client.entriesOf(database, {
      start: from,
      end,
      limit: ENTRIES,
    });
    for (const entry of page.entries) out.set(binaryString(entry.key), entry);
    const last = page.entries.at(-1);
    if (last === undefined || (!page.more && page.entries.length < ENTRIES)) {
      return out;
    }
    from = keyAfter(last.key);
  }
}

/** The entries of one range on every database, and the keys that differ. */
async function compareRange(
  client: Client,
  databases: number[],
  start: Uint8Array,
  end: Uint8Array,
): Promise<Difference[]> {
  const held = await Promise.all(
    databases.map((id) => entriesIn(client, id, start, end)),
  );
  const keys = new Set(held.flatMap((map) => [...map.keys()]));
  const out: Difference[] = [];
  for (const id of [...keys].sort()) {
    const entries = held.map((map) => map.get(id) ?? null);
    if (entries.every((entry) => same(entry, entries[0]!))) continue;
    const key = (entries.find((entry) => entry !== null) as RangeEntry).key;
    out.push({
      key,
      held: new Map(databases.map((db, i) => [db, entries[i]!])),
    });
  }
  return out;
}

/** Options of {@linkcode verify}. */
export interface VerifyOptions {
  /** Write differing keys again, with the value most databases hold. */
  repair?: boolean;
  /** Told the keys compared so far. */
  progress?: (keys: number) => void;
}

/**
 * Compares every ready database's contents through `client`.
 *
 * @returns What differs (and, with `repair`, how many keys were written).
 */
export async function verify(
  client: Client,
  options: VerifyOptions = {},
): Promise<Verdict> {
  const stats = await client.stats();
  const databases = stats.databases.filter((db) => db.state === "ready")
    .map((db) => db.id).sort((a, b) => a - b);
  if (databases.length < 2) {
    return { databases, keys: 0, differences: [], repaired: 0 };
  }
  const [reference, ...others] = databases as [number, ...number[]];
  const none: Uint8Array = new Uint8Array(0);
  let start: Uint8Array = none;
  let keys = 0;
  const suspects: Difference[] = [];
  while (true) {
    const ref = await client.digest(reference, {
      start,
      end: none,
      limit: PAGE,
    });
    // The range this page covers: to its last key, or to the end.
    const end = ref.count < PAGE ? none : keyAfter(ref.lastKey);
    const digests = await Promise.all(
      others.map((id) => client.digest(id, { start, end, limit: PAGE })),
    );
    const agree = digests.every((d) =>
      d.count === ref.count && equalBytes(d.hash, ref.hash)
    );
    if (!agree) {
      suspects.push(...await compareRange(client, databases, start, end));
    }
    keys += ref.count;
    options.progress?.(keys);
    if (end.length === 0) break;
    start = end;
  }
  // What differed may be writes on their way: look again once every
  // database has reached the router's position as it is now.
  let differences = suspects.length === 0
    ? []
    : await recheck(client, databases, suspects);
  let repaired = 0;
  if (options.repair && differences.length > 0) {
    for (const difference of differences) {
      await rewrite(client, reference, difference);
      repaired++;
    }
    differences = await recheck(client, databases, differences);
  }
  return { databases, keys, differences, repaired };
}

/** Reads the suspect keys again on every database, once all are caught up. */
async function recheck(
  client: Client,
  databases: number[],
  suspects: Difference[],
): Promise<Difference[]> {
  let stats = await client.stats();
  const target = stats.seq;
  for (let tries = 0; tries < 200; tries++) {
    const caughtUp = databases.every((id) =>
      (stats.databases.find((db) => db.id === id)?.applied ?? 0) >= target
    );
    if (caughtUp) break;
    await sleep(50);
    stats = await client.stats();
  }
  const out: Difference[] = [];
  for (const suspect of suspects) {
    out.push(
      ...await compareRange(
        client,
        databases,
        suspect.key,
        keyAfter(suspect.key),
      ),
    );
  }
  return out;
}

/** Writes a key again with the value most databases hold (ties: the reference's). */
async function rewrite(
  client: Client,
  reference: number,
  difference: Difference,
): Promise<void> {
  const votes = new Map<string, { entry: RangeEntry | null; count: number }>();
  for (const entry of difference.held.values()) {
    const id = entry === null
      ? "absent"
      : `${binaryString(entry.value)}\u0000${entry.expiresAt ?? ""}`;
    const vote = votes.get(id) ?? { entry, count: 0 };
    vote.count++;
    votes.set(id, vote);
  }
  const best = Math.max(...[...votes.values()].map((vote) => vote.count));
  const winners = [...votes.values()].filter((vote) => vote.count === best);
  const chosen = winners.length === 1
    ? winners[0]!.entry
    : difference.held.get(reference) ?? null;
  if (chosen === null) {
    await client.delete(difference.key);
  } else {
    await client.set(
      difference.key,
      chosen.value,
      chosen.expiresAt === undefined ? {} : { expireAt: chosen.expiresAt },
    );
  }
}
