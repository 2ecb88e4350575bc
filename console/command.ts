/**
 * What a console command is, and what it may use while it runs.
 *
 * @module
 */

import type { MemberStats, RouterStats } from "../client/mod.ts";
import type { KvndbConsole } from "./console.ts";

/**
 * The part of the KVNDB client that the console uses; the `Client` from
 * `client/mod.ts` fits it, and so does a fake in tests.
 *
 * @example
 * ```ts
 * import type { ConsoleClient } from "./command.ts";
 * const data = new Map<string, string>();
 * const fake: ConsoleClient = {
 *   get: (key) => Promise.resolve(data.get(key) ?? null),
 *   set: (key, value) => Promise.resolve(data.set(key, value).size),
 *   delete: (key) => Promise.resolve(data.delete(key) ? 1 : 0),
 *   increment: (key, by = 1) => {
 *     const next = BigInt(data.get(key) ?? "0") + BigInt(by);
 *     data.set(key, String(next));
 *     return Promise.resolve(next);
 *   },
 *   expire: () => Promise.reject(new Error("Not supported")),
 *   persist: () => Promise.reject(new Error("Not supported")),
 *   ttl: (key) => Promise.resolve(data.has(key) ? -1n : -2n),
 *   async *keys() { yield [...data.keys()]; },
 *   ping: () => Promise.resolve(0.1),
 *   stats: () => Promise.reject(new Error("Not supported")),
 *   forget: () => Promise.resolve([]),
 * };
 * ```
 */
export interface ConsoleClient {
  /** Reads a key; `null` when it does not exist. */
  get(key: string): Promise<string | null>;
  /** Stores a value, with an expiry `expireIn` ms away when given. */
  set(
    key: string,
    value: string,
    options?: { expireIn?: number },
  ): Promise<number>;
  /** Deletes a key. */
  delete(key: string): Promise<number>;
  /** Adds to a decimal integer value (a missing key counts as 0). */
  increment(key: string, by?: bigint | number): Promise<bigint>;
  /** Gives an existing key an expiry `ms` away; whether it exists. */
  expire(key: string, ms: number): Promise<boolean>;
  /** Removes a key's expiry; whether it had one. */
  persist(key: string): Promise<boolean>;
  /** A key's time to live in ms; -1 without expiry, -2 when absent. */
  ttl(key: string): Promise<bigint>;
  /** Lists keys page by page. */
  keys(
    options?: { prefix?: string; pageSize?: number },
  ): AsyncIterable<string[]>;
  /** Measures the round trip to the router, in milliseconds. */
  ping(): Promise<number>;
  /** Reads the router's statistics. */
  stats(): Promise<RouterStats>;
  /** Gives up on absent members (node ids as hex, or every absent one). */
  forget(members: string[] | "absent"): Promise<MemberStats[]>;
}

/**
 * What a command gets when it runs.
 *
 * @example
 * ```ts
 * import type { CommandContext } from "./command.ts";
 * async function hello(_args: string[], ctx: CommandContext) {
 *   await ctx.print("hello");
 * }
 * ```
 */
export interface CommandContext {
  /** The connection to the router. */
  readonly client: ConsoleClient;
  /** Whether a person is typing (standard input is a terminal). */
  readonly interactive: boolean;
  /** The console running the command: its commands, to list or to run. */
  readonly console: KvndbConsole;
  /** Writes one line of output. */
  print(line: string): Promise<void>;
  /**
   * Asks a person a yes/no question and reads the answer; `false` when no
   * person is typing (a script), so that nothing is done without `--yes`.
   */
  confirm(question: string): Promise<boolean>;
  /** Ends the console after this command. */
  quit(): void;
}

/**
 * A console command. The built-in commands are defined this way too, so a
 * program can add its own or replace one with `KvndbConsole.addCommand()`.
 *
 * A command fails by throwing: the console prints `Error: <message>` and the
 * session's exit status becomes 1. Throw a {@linkcode UsageError} to have the
 * command's usage printed instead.
 *
 * @example
 * ```ts
 * import type { Command } from "./command.ts";
 * const incr: Command = {
 *   name: "incr",
 *   usage: "incr KEY",
 *   help: "Adds one to a numeric value",
 *   minArgs: 1,
 *   maxArgs: 1,
 *   async run([key], ctx) {
 *     const value = Number(await ctx.client.get(key!) ?? 0) + 1;
 *     await ctx.client.set(key!, String(value));
 *     await ctx.print(String(value));
 *   },
 * };
 * ```
 */
export interface Command {
  /** The name typed to run it. */
  name: string;
  /** Other names for it. */
  aliases?: readonly string[];
  /** How to call it, such as `set KEY VALUE`. */
  usage: string;
  /** What it does, in a sentence or a few lines. */
  help: string;
  /** The fewest arguments it takes; 0 unless given. */
  minArgs?: number;
  /** The most arguments it takes; unlimited unless given. */
  maxArgs?: number;
  /**
   * Runs the command.
   *
   * @param args The words after the command name, quotes removed.
   * @param ctx The client, output and console.
   */
  run(args: string[], ctx: CommandContext): Promise<void> | void;
}

/**
 * Thrown by a command whose arguments are wrong; the console prints
 * `Error: usage: <the command's usage>`.
 *
 * @example
 * ```ts
 * import { type Command, UsageError } from "./command.ts";
 * const sleep: Command = {
 *   name: "sleep",
 *   usage: "sleep SECONDS",
 *   help: "Waits, between the lines of a script.",
 *   minArgs: 1,
 *   maxArgs: 1,
 *   async run([text]) {
 *     const seconds = Number(text);
 *     if (!(seconds >= 0)) throw new UsageError();
 *     await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
 *   },
 * };
 * ```
 */
export class UsageError extends Error {
  /**
   * Creates a UsageError.
   *
   * @param options The cause, if any.
   */
  constructor(options?: ErrorOptions) {
    super("Wrong arguments", options);
    this.name = "UsageError";
  }
}
