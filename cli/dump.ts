/**
 * `kvndb dump` and `kvndb restore`: every key, its value, version and expiry
 * as NDJSON, consistent at one sequence number while writes go on, and back.
 *
 * A dump opens a watch of every key first, then reads every entry page by
 * page into a temporary file (in key order), keeping the last change of
 * each key the watch reports meanwhile. Once the watch has covered every
 * version the pages showed, at a batch boundary, its position E is the
 * dump's sequence number: each key's entry is the page's, or the key's last
 * change up to E when that is newer. Memory holds the changes made during
 * the dump, one per key, not the data.
 *
 * @module
 */

import type {
  AtomicOperation,
  Change,
  ChangeBatch,
  Client,
} from "../client/mod.ts";
import { binaryString, InvalidArgumentError, sleep } from "../protocol/mod.ts";

/** What a dump's first line says. */
export interface DumpHeader {
  /** Always `"dump"`: says what the file is. */
  kvndb: "dump";
  /** The format's version. */
  format: 1;
  /** The cluster's id, as hex. */
  cluster: string;
  /** The sequence number the dump is consistent at. */
  sequence: number;
  /** When the dump was taken. */
  date: string;
}

/** One key of a dump, as one line. */
export interface DumpLine {
  key: string;
  /** `"base64"` when the key is not UTF-8 text. */
  keyEncoding?: "base64";
  value: string;
  /** `"base64"` when the value is not UTF-8 text. */
  valueEncoding?: "base64";
  version: number;
  expiresAt?: number;
}

const strict = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

function toBase64(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

function fromBase64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/** Text when the bytes are UTF-8 (and come back the same), else base64. */
function field(bytes: Uint8Array): { text: string; base64: boolean } {
  // Valid UTF-8 decodes and encodes back to the same bytes, but for a
  // leading byte-order mark, which the decoder drops.
  const bom = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf;
  if (!bom) {
    try {
      return { text: strict.decode(bytes), base64: false };
    } catch {
      // Not UTF-8.
    }
  }
  return { text: toBase64(bytes), base64: true };
}

/** One entry as its dump line. */
export function dumpLine(
  entry: {
    key: Uint8Array;
    value: Uint8Array;
    version: number;
    expiresAt?: number;
  },
): string {
  const key = field(entry.key);
  const value = field(entry.value);
  const line: DumpLine = {
    key: key.text,
    ...(key.base64 ? { keyEncoding: "base64" as const } : {}),
    value: value.text,
    ...(value.base64 ? { valueEncoding: "base64" as const } : {}),
    version: entry.version,
    ...(entry.expiresAt === undefined ? {} : { expiresAt: entry.expiresAt }),
  };
  return JSON.stringify(line);
}

/** A dump line's key, value and expiry as bytes, or why the line is wrong. */
export function parseDumpLine(
  text: string,
): { key: Uint8Array; value: Uint8Array; expiresAt?: number } | string {
  let line: Partial<DumpLine>;
  try {
    line = JSON.parse(text);
  } catch {
    return "not JSON";
  }
  if (typeof line !== "object" || line === null) return "not a JSON object";
  if (typeof line.key !== "string") return "no key";
  if (typeof line.value !== "string") return "no value";
  for (const name of ["keyEncoding", "valueEncoding"] as const) {
    if (line[name] !== undefined && line[name] !== "base64") {
      return `${name} is neither absent nor "base64"`;
    }
  }
  if (
    line.expiresAt !== undefined &&
    (!Number.isSafeInteger(line.expiresAt) || line.expiresAt <= 0)
  ) return "expiresAt is not a time in ms";
  try {
    const key = line.keyEncoding === "base64"
      ? fromBase64(line.key)
      : encoder.encode(line.key);
    const value = line.valueEncoding === "base64"
      ? fromBase64(line.value)
      : encoder.encode(line.value);
    return line.expiresAt === undefined
      ? { key, value }
      : { key, value, expiresAt: line.expiresAt };
  } catch {
    return "bad base64";
  }
}

/** Options of {@linkcode dump}. */
export interface DumpOptions {
  /** Where the lines go. */
  output: WritableStreamDefaultWriter<Uint8Array>;
  /** Told the keys read so far, after each page. */
  progress?: (keys: number) => void;
  /** How long to wait for the watch to cover what the pages showed, in ms. */
  timeout?: number;
}

/**
 * Dumps every key through `client`, consistent at one sequence number.
 *
 * @returns The sequence number and how many keys were written.
 */
export async function dump(
  client: Client,
  options: DumpOptions,
): Promise<{ sequence: number; keys: number }> {
  const stats = await client.stats();
  const watch = client.watch({ prefix: "" });
  // The watch is open before the first page is read: no change can fall
  // between the two.
  const first = await watch.next();
  if (first.done) throw new Error("The router ended the dump's watch");
  const latest = new Map<string, Change>();
  let upTo = first.value.upTo;
  let stop = Infinity;
  let reached: (() => void) | undefined;
  // The watch, read alongside the pages: the last change of each key.
  const following = (async () => {
    // Changes count only once a batch ends where no operation's changes
    // are split across batches: then every change up to its upTo is in.
    let held: Change[] = [];
    for await (const batch of watch as AsyncIterable<ChangeBatch>) {
      held.push(...batch.changes);
      if (!batch.changes.every((c) => c.version <= batch.upTo)) continue;
      for (const change of held) latest.set(binaryString(change.key), change);
      held = [];
      upTo = batch.upTo;
      if (upTo >= stop) {
        reached?.();
        return;
      }
    }
  })();
  const scratch = await Deno.makeTempFile({ prefix: "kvndb-dump-" });
  const timeout = new AbortController();
  try {
    let read = 0;
    let newest = 0;
    {
      using file = await Deno.open(scratch, { write: true });
      const writer = file.writable.getWriter();
      for await (const page of client.entries()) {
        let text = "";
        for (const entry of page) {
          newest = Math.max(newest, entry.version);
          text += dumpLine(entry) + "\n";
        }
        await writer.write(encoder.encode(text));
        read += page.length;
        options.progress?.(read);
      }
      await writer.close();
    }
    // Wait until the watch covers every version the pages showed.
    stop = newest;
    if (upTo < newest) {
      await Promise.race([
        new Promise<void>((resolve) => reached = resolve),
        following.then(() => {
          if (upTo < newest) throw new Error("The dump's watch ended early");
        }),
        sleep(options.timeout ?? 30_000, timeout.signal).then((slept) => {
          if (slept && upTo < newest) {
            throw new Error(
              "The cluster did not acknowledge the writes the dump saw within its timeout; try again",
            );
          }
        }),
      ]);
    }
    await watch.return();
    const sequence = upTo;
    const header: DumpHeader = {
      kvndb: "dump",
      format: 1,
      cluster: stats.clusterId,
      sequence,
      date: new Date().toISOString(),
    };
    await options.output.write(encoder.encode(JSON.stringify(header) + "\n"));
    // Merge the pages (in key order) with the changes, also in key order.
    const now = Date.now();
    const changes = [...latest.entries()]
      .filter(([, change]) => change.version <= sequence)
      .sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0);
    let next = 0;
    let keys = 0;
    const emit = async (line: string) => {
      keys++;
      await options.output.write(encoder.encode(line + "\n"));
    };
    const emitChange = async (change: Change) => {
      if (change.value === null) return;
      if (change.expiresAt !== undefined && change.expiresAt <= now) return;
      await emit(dumpLine({ ...change, value: change.value }));
    };
    using file = await Deno.open(scratch, { read: true });
    for await (const text of lines(file.readable)) {
      // A line this dump wrote: its key as a binary string, and its version.
      const line = JSON.parse(text) as DumpLine;
      const id = line.keyEncoding === "base64"
        ? atob(line.key)
        : binaryString(encoder.encode(line.key));
      while (next < changes.length && changes[next]![0] < id) {
        await emitChange(changes[next++]![1]);
      }
      const change = next < changes.length && changes[next]![0] === id
        ? changes[next++]![1]
        : undefined;
      if (change !== undefined && change.version > line.version) {
        await emitChange(change);
      } else await emit(text);
    }
    while (next < changes.length) await emitChange(changes[next++]![1]);
    return { sequence, keys };
  } finally {
    timeout.abort();
    await watch.return();
    await following.catch(() => {});
    await Deno.remove(scratch).catch(() => {});
  }
}

/** Splits a byte stream into lines (without their ends). */
export async function* lines(
  stream: ReadableStream<Uint8Array>,
): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let rest = "";
  for await (const chunk of stream) {
    rest += decoder.decode(chunk, { stream: true });
    let end;
    while ((end = rest.indexOf("\n")) >= 0) {
      yield rest.slice(0, end);
      rest = rest.slice(end + 1);
    }
  }
  rest += decoder.decode();
  if (rest.length > 0) yield rest;
}

/** Options of {@linkcode restore}. */
export interface RestoreOptions {
  /** Delete every key first. */
  replace?: boolean;
  /** Told the keys written so far, and the bytes of the dump read. */
  progress?: (keys: number, bytes: number) => void;
}

/** Keys and bytes of values one atomic operation of a restore holds at most. */
const RESTORE_KEYS = 100;
const RESTORE_BYTES = 256 * 1024;

/**
 * Commits one step for each item, in atomic operations of `parts.size` items
 * at most. A part the databases refuse as too costly (long keys, large
 * values: `database/_atomic.ts` ends that refusal with "split it") is split
 * in halves, and `parts.size` stays halved for the parts that follow; a
 * single item always fits.
 */
async function commitInParts<T>(
  client: Client,
  items: T[],
  step: (operation: AtomicOperation, item: T) => void,
  parts: { size: number },
): Promise<void> {
  for (let i = 0; i < items.length;) {
    const part = items.slice(i, i + parts.size);
    const operation = client.atomic();
    for (const item of part) step(operation, item);
    try {
      await operation.commit();
    } catch (error) {
      if (
        part.length > 1 && error instanceof InvalidArgumentError &&
        error.message.endsWith("split it")
      ) {
        parts.size = Math.ceil(part.length / 2);
        continue;
      }
      throw error;
    }
    i += part.length;
  }
}

/**
 * Writes a dump back through `client`, in atomic operations of up to 100
 * keys. A malformed line stops it with the line's number; nothing at or
 * after that line's batch is written.
 *
 * @returns The keys written, and those skipped because they had expired.
 */
export async function restore(
  client: Client,
  input: ReadableStream<Uint8Array>,
  options: RestoreOptions = {},
): Promise<{ keys: number; expired: number; sequence: number }> {
  let number = 0;
  let header: DumpHeader | undefined;
  let batch: { key: Uint8Array; value: Uint8Array; expiresAt?: number }[] = [];
  let bytes = 0;
  let keys = 0;
  let expired = 0;
  let consumed = 0;
  const parts = { size: RESTORE_KEYS };
  const flush = async () => {
    if (batch.length === 0) return;
    await commitInParts(client, batch, (operation, entry) =>
      operation.set(
        entry.key,
        entry.value,
        entry.expiresAt === undefined
          ? undefined
          : { expireAt: entry.expiresAt },
      ), parts);
    keys += batch.length;
    options.progress?.(keys, consumed);
    batch = [];
    bytes = 0;
  };
  for await (const text of lines(input)) {
    number++;
    consumed += text.length + 1;
    if (number === 1) {
      try {
        header = JSON.parse(text);
      } catch {
        // Checked below.
      }
      if (header?.kvndb !== "dump") {
        throw new Error("Line 1 is not a KVNDB dump's header");
      }
      if (options.replace) await clearAll(client);
      continue;
    }
    if (text.trim() === "") continue;
    const parsed = parseDumpLine(text);
    if (typeof parsed === "string") {
      throw new Error(
        `Line ${number}: ${parsed}; nothing from there on was restored (${keys} keys were)`,
      );
    }
    if (parsed.expiresAt !== undefined && parsed.expiresAt <= Date.now()) {
      expired++;
      continue;
    }
    if (
      batch.length >= RESTORE_KEYS ||
      (batch.length > 0 && bytes + parsed.value.length > RESTORE_BYTES)
    ) await flush();
    batch.push(parsed);
    bytes += parsed.key.length + parsed.value.length;
  }
  if (header === undefined) throw new Error("The dump is empty");
  await flush();
  return { keys, expired, sequence: header.sequence };
}

/** Deletes every key, up to 100 an atomic operation. */
async function clearAll(client: Client): Promise<void> {
  const parts = { size: RESTORE_KEYS };
  for await (const page of client.keysBytes({ pageSize: RESTORE_KEYS })) {
    await commitInParts(client, page, (operation, key) => {
      operation.delete(key);
    }, parts);
  }
}
