/**
 * Text layout for the console's output: keys in columns, statistics.
 *
 * @module
 */

import type { MemberStats, RouterStats } from "../client/mod.ts";

/**
 * Lays out words in rows of `columns`, left to right then down, each column
 * as wide as its widest word, two spaces apart.
 */
export function formatColumns(
  words: readonly string[],
  columns: number,
): string[] {
  const widths: number[] = [];
  words.forEach((word, i) => {
    const column = i % columns;
    widths[column] = Math.max(widths[column] ?? 0, word.length);
  });
  const lines: string[] = [];
  for (let start = 0; start < words.length; start += columns) {
    const row = words.slice(start, start + columns);
    lines.push(
      row.map((word, column) => word.padEnd(widths[column] ?? 0)).join("  ")
        .trimEnd(),
    );
  }
  return lines;
}

/**
 * Turns the router's statistics into aligned `label  value` lines, as the
 * console's `stats` and `kvndb stats` print them. The reply is JSON from the
 * router, so missing parts are tolerated rather than trusted.
 *
 * @param stats The router's statistics.
 * @returns The lines, without line ends.
 * @example
 * ```ts
 * import { formatStats } from "./mod.ts";
 * const lines = formatStats({
 *   clusterId: "c0ffee",
 *   seq: 7,
 *   clients: 1,
 *   databases: [],
 *   operations: {},
 *   uptime: 61,
 * });
 * console.log(lines[0]); // "cluster    c0ffee"
 * ```
 */
export function formatStats(stats: RouterStats): string[] {
  const databases = stats.databases ?? [];
  const lines = table([
    ["cluster", stats.clusterId],
    ["uptime", formatDuration(stats.uptime)],
    ["sequence", String(stats.seq)],
    ["clients", String(stats.clients)],
    ["databases", String(databases.length)],
  ]);
  for (const db of databases) {
    let line =
      `  #${db.id} ${db.peer}: ${db.state}, applied ${db.applied}, ${db.keys} keys, ${db.outstanding} reads pending`;
    if (db.sync !== undefined) {
      line += `, synced ${
        Math.round(db.sync.percent)
      }% (${db.sync.keys} keys, ${Math.round(db.sync.keysPerSecond)} keys/s)`;
    }
    lines.push(line);
  }
  const members = stats.members ?? [];
  if (members.length > 0) {
    lines.push("members (databases known to hold every acknowledged write)");
    for (const member of members) lines.push(`  ${formatMember(member)}`);
  }
  if (stats.hold !== undefined) lines.push(`holding: ${stats.hold.reason}`);
  const operations = Object.entries(stats.operations ?? {}).sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0
  );
  if (operations.length > 0) {
    lines.push("operations");
    lines.push(
      ...table(operations.map(([name, count]) => [name, String(count)]))
        .map((line) => `  ${line}`),
    );
  }
  return lines;
}

/** One member for people: its id, backend, last address and presence. */
export function formatMember(member: MemberStats): string {
  const kind = member.volatile ? "volatile (memory)" : "durable";
  const where = member.present
    ? "connected"
    : `away ${formatDuration(member.awaySeconds)}`;
  return `${member.id} ${kind}, last at ${member.address || "?"}, ${where}`;
}

function table(rows: [string, string][]): string[] {
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `${label.padEnd(width)}  ${value}`);
}

function formatDuration(seconds: number): string {
  let rest = Math.floor(seconds);
  const parts: string[] = [];
  for (
    const [unit, size] of [["d", 86_400], ["h", 3_600], ["m", 60]] as const
  ) {
    if (rest >= size || parts.length > 0) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  parts.push(`${rest}s`);
  return parts.join(" ");
}
