/**
 * The interactive console behind `kvndb cmd`: reads commands, runs them
 * against a router and prints the results.
 *
 * @module
 */

import process from "node:process";
import { createInterface } from "node:readline";
import { Readable, Writable } from "node:stream";
import { ConnectionClosedError } from "../client/mod.ts";
import { LineTooLongError, readLines } from "./_read_lines.ts";
import { builtinCommands } from "./builtin_commands.ts";
import {
  type Command,
  type CommandContext,
  type ConsoleClient,
  UsageError,
} from "./command.ts";
import { tokenize } from "./tokenize.ts";

const encoder = new TextEncoder();

/** The prompt shown on a terminal unless another is given. */
export const DEFAULT_PROMPT = "kvndb> ";

/** Options for {@linkcode KvndbConsole} and {@linkcode runConsole}. */
export interface ConsoleOptions {
  /** Where commands come from. Defaults to standard input. */
  input?: ReadableStream<Uint8Array>;
  /** Where results and `Error: ...` lines go. Defaults to standard output. */
  output?: WritableStream<Uint8Array>;
  /** Where a lost connection is reported. Defaults to standard error. */
  errorOutput?: WritableStream<Uint8Array>;
  /**
   * Whether a person is typing: shows a banner and a prompt, edits lines,
   * keeps history and completes command names. Defaults to whether standard
   * input is a terminal.
   */
  interactive?: boolean;
  /** The prompt. Defaults to {@linkcode DEFAULT_PROMPT}. */
  prompt?: string;
  /** The first line shown on a terminal, such as where the console is connected. */
  banner?: string;
  /**
   * Asks a yes/no question for a command such as `forget`. Defaults to
   * reading the answer from the input on a terminal, and to `false` (no)
   * in a script.
   */
  confirm?: (question: string) => Promise<boolean>;
}

/**
 * A console: a set of commands, run line by line against a client. It starts
 * with the built-in commands; a program adds its own, or replaces a built-in
 * one, with {@linkcode KvndbConsole.addCommand}.
 *
 * @example
 * ```ts
 * import { KvndbConsole } from "./console.ts";
 * import type { ConsoleClient } from "./command.ts";
 * const data = new Map<string, string>();
 * const client: ConsoleClient = {
 *   get: (key) => Promise.resolve(data.get(key) ?? null),
 *   set: (key, value) => Promise.resolve(data.set(key, value).size),
 *   delete: (key) => Promise.resolve(data.delete(key) ? 1 : 0),
 *   increment: () => Promise.reject(new Error("Not supported")),
 *   expire: () => Promise.resolve(false),
 *   persist: () => Promise.resolve(false),
 *   ttl: () => Promise.resolve(-2n),
 *   async *keys() { yield [...data.keys()]; },
 *   ping: () => Promise.resolve(0.1),
 *   stats: () => Promise.reject(new Error("Not supported")),
 *   forget: () => Promise.resolve([]),
 * };
 * const input = ReadableStream.from(["set a 1\n", "count\n"])
 *   .pipeThrough(new TextEncoderStream());
 * const kvndb = new KvndbConsole(client, { input, interactive: false });
 * kvndb.addCommand({
 *   name: "count",
 *   usage: "count",
 *   help: "Prints how many keys there are.",
 *   async run(_args, ctx) {
 *     let count = 0;
 *     for await (const page of ctx.client.keys()) count += page.length;
 *     await ctx.print(String(count));
 *   },
 * });
 * const status = await kvndb.run(); // prints "1"
 * ```
 */
export class KvndbConsole {
  #options: ConsoleOptions;
  #interactive: boolean;
  #commands: Command[] = [];
  #names = new Map<string, Command>();
  #quit = false;
  #write: (text: string) => Promise<void>;
  // Writes are chained so that a command which prints without awaiting
  // still gets its lines out in order instead of finding the stream locked.
  #written: Promise<void> = Promise.resolve();
  #context: CommandContext;
  /** Reads the next line a person types; set while an interactive session runs. */
  #answer?: () => Promise<string | null>;

  /**
   * Creates a KvndbConsole.
   *
   * @param client The connection to the router, or a fake.
   * @param options Input, output and whether a person is typing.
   */
  constructor(client: ConsoleClient, options: ConsoleOptions = {}) {
    this.#options = options;
    this.#interactive = options.interactive ?? Deno.stdin.isTerminal();
    const output = options.output ?? Deno.stdout.writable;
    this.#write = (text) => writeText(output, text);
    for (const command of builtinCommands()) this.addCommand(command);
    this.#context = {
      client,
      interactive: this.#interactive,
      console: this,
      print: (line) => this.#print(line),
      confirm: (question) => this.#confirm(question),
      quit: () => {
        this.#quit = true;
      },
    };
  }

  /** Whether the console behaves as for a person typing. */
  get interactive(): boolean {
    return this.#interactive;
  }

  /** Every command, each once, in the order they were added. */
  get commands(): readonly Command[] {
    return this.#commands.filter((command) =>
      this.#names.get(command.name) === command
    );
  }

  /**
   * Finds a command by name or alias.
   *
   * @param name What was typed.
   * @returns The command, or `undefined`.
   */
  findCommand(name: string): Command | undefined {
    return this.#names.get(name);
  }

  /**
   * Adds a command. A command with the name of an existing one replaces it,
   * aliases included; otherwise its names take precedence over other
   * commands' aliases.
   *
   * @param command The command.
   * @returns This console, for chaining.
   * @example
   * ```ts ignore
   * kvndb.addCommand({
   *   name: "echo",
   *   usage: "echo WORD...",
   *   help: "Prints its arguments.",
   *   run: (args, ctx) => ctx.print(args.join(" ")),
   * });
   * ```
   */
  addCommand(command: Command): this {
    const replaced = this.#names.get(command.name);
    if (replaced?.name === command.name) {
      for (const [name, owner] of this.#names) {
        if (owner === replaced) this.#names.delete(name);
      }
      this.#commands[this.#commands.indexOf(replaced)] = command;
    } else {
      this.#commands.push(command);
    }
    for (const name of [command.name, ...command.aliases ?? []]) {
      this.#names.set(name, command);
    }
    return this;
  }

  /**
   * Runs one line. Blank lines and lines starting with `#` do nothing. A
   * failure is printed as `Error: <message>` to the output.
   *
   * @param line The line, without its line ending.
   * @returns Whether the line succeeded.
   * @throws {ConnectionClosedError} When the connection to the router is gone,
   * since no later command can succeed either.
   * @example
   * ```ts ignore
   * const ok = await kvndb.execute("set 'my key' 'my value'");
   * ```
   */
  async execute(line: string): Promise<boolean> {
    const text = line.trim();
    if (text === "" || text.startsWith("#")) return true;
    let words: string[];
    try {
      words = tokenize(text);
    } catch (error) {
      await this.#print(`Error: ${messageOf(error)}`);
      return false;
    }
    const [name = "", ...args] = words;
    const command = this.findCommand(name);
    if (command === undefined) {
      await this.#print(
        `Error: Unknown command '${name}' (type help for the list)`,
      );
      return false;
    }
    try {
      if (
        args.length < (command.minArgs ?? 0) ||
        args.length > (command.maxArgs ?? Infinity)
      ) {
        throw new UsageError();
      }
      await command.run(args, this.#context);
      return true;
    } catch (error) {
      if (error instanceof ConnectionClosedError) throw error;
      await this.#print(
        error instanceof UsageError
          ? `Error: usage: ${command.usage}`
          : `Error: ${messageOf(error)}`,
      );
      return false;
    }
  }

  /**
   * Runs commands from the input until it ends or `quit`.
   *
   * On a terminal: a banner, a prompt, line editing, history and completion
   * of command names; the exit status is 0. Otherwise each line runs in turn
   * after the previous one has its answer, and the exit status is 0 only if
   * every line succeeded. A lost connection ends the console with status 1.
   *
   * @returns The exit status.
   * @example
   * ```ts ignore
   * const status = await new KvndbConsole(client).run();
   * ```
   */
  async run(): Promise<number> {
    try {
      return this.#interactive
        ? await this.#runInteractive()
        : await this.#runScript();
    } catch (error) {
      if (
        !(error instanceof ConnectionClosedError ||
          error instanceof LineTooLongError)
      ) {
        throw error;
      }
      await writeText(
        this.#options.errorOutput ?? Deno.stderr.writable,
        `Error: ${error.message}\n`,
      );
      return 1;
    }
  }

  async #runScript(): Promise<number> {
    let failed = false;
    for await (
      const line of readLines(this.#options.input ?? Deno.stdin.readable)
    ) {
      if (!await this.execute(line)) failed = true;
      if (this.#quit) break;
    }
    return failed ? 1 : 0;
  }

  async #runInteractive(): Promise<number> {
    // readline needs Node streams; process.stdin can switch the terminal to
    // raw mode, which line editing needs, so it is used when no input is given.
    // The casts bridge Deno's web stream types and node:stream/web's, which
    // describe the same objects.
    const input = this.#options.input === undefined
      ? process.stdin
      : Readable.fromWeb(this.#options.input as never);
    const output = this.#options.output === undefined
      ? process.stdout
      : Writable.fromWeb(this.#options.output as never);
    const rl = createInterface({
      input,
      output,
      prompt: this.#options.prompt ?? DEFAULT_PROMPT,
      completer: (line: string) => this.#complete(line),
      historySize: 1000,
      removeHistoryDuplicates: true,
    });
    // Take the iterator now: lines that arrive while the banner is written
    // would otherwise be emitted with nobody listening, and lost.
    const lines = rl[Symbol.asyncIterator]();
    const write = this.#write;
    // Prompts and results must go through the same stream to stay in order.
    this.#write = (text) =>
      new Promise((resolve, reject) => {
        output.write(text, (error) => error ? reject(error) : resolve());
      });
    try {
      await this.#print(
        this.#options.banner ??
          "KVNDB console: type help for the commands, quit to leave",
      );
      this.#answer = async () => {
        const next = await lines.next();
        return next.done ? null : next.value;
      };
      rl.prompt();
      while (true) {
        const next = await lines.next();
        if (next.done) break;
        await this.execute(next.value);
        if (this.#quit) break;
        rl.prompt();
      }
      if (!this.#quit) await this.#print(""); // After ^D, end the prompt's line.
    } finally {
      this.#answer = undefined;
      rl.close();
      await this.#written;
      this.#write = write;
    }
    return 0;
  }

  #complete(line: string): [string[], string] {
    const words = line.trimStart().split(/\s+/);
    const partial = words.at(-1) ?? "";
    const completesName = words.length === 1 ||
      (words.length === 2 && this.findCommand(words[0]!)?.name === "help");
    if (!completesName) return [[], partial];
    // The trailing space lets a single match move on to the arguments.
    const names = [...this.#names.keys()]
      .filter((name) => name.startsWith(partial))
      .map((name) => `${name} `);
    return [names.sort(), partial];
  }

  async #confirm(question: string): Promise<boolean> {
    if (this.#options.confirm !== undefined) {
      await this.#written;
      return await this.#options.confirm(question);
    }
    if (this.#answer === undefined) return false;
    await this.#written.then(() => this.#write(`${question} [y/N] `));
    const answer = await this.#answer();
    return answer !== null && /^\s*y(es)?\s*$/i.test(answer);
  }

  #print(line: string): Promise<void> {
    const done = this.#written.then(() => this.#write(`${line}\n`));
    this.#written = done.catch(() => {});
    return done;
  }
}

/**
 * Runs the console with the built-in commands until the input ends or
 * `quit`; what `kvndb cmd` calls.
 *
 * @param client The connection to the router.
 * @param options Input, output and whether a person is typing.
 * @returns The exit status: on a terminal 0, otherwise 0 only if every
 * command succeeded; 1 when the connection is lost.
 * @example
 * ```ts ignore
 * import { connect } from "../client/mod.ts";
 * import { runConsole } from "./console.ts";
 * await using client = await connect({ hostname: "127.0.0.1", port: 54565 });
 * Deno.exitCode = await runConsole(client);
 * ```
 */
export function runConsole(
  client: ConsoleClient,
  options: ConsoleOptions = {},
): Promise<number> {
  return new KvndbConsole(client, options).run();
}

async function writeText(
  stream: WritableStream<Uint8Array>,
  text: string,
): Promise<void> {
  // The lock is held only for this write, so that the caller keeps using
  // the stream (standard output, usually) after the console.
  const writer = stream.getWriter();
  try {
    await writer.write(encoder.encode(text));
  } finally {
    writer.releaseLock();
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
