/**
 * The console's built-in commands, with the original KVNDB console's names
 * and aliases.
 *
 * @module
 */

import type { MemberStats } from "../client/mod.ts";
import { formatColumns, formatMember, formatStats } from "./_format.ts";
import { type Command, UsageError } from "./command.ts";

/** How many keys to ask for at a time when listing them all. */
const KEYS_PAGE_SIZE = 1000;

/** A whole number of seconds, 1 or more, from an argument. */
function positiveSeconds(text: string): number {
  if (!/^[1-9][0-9]{0,11}$/.test(text)) throw new UsageError();
  return Number(text);
}

/**
 * Builds the built-in commands: `set`, `expire`, `ttl`, `persist`, `get`,
 * `del`, `incr`, `getkeys`, `ping`, `stats`, `help` and `quit`. Each call returns fresh objects, so a program
 * may change them without affecting other consoles.
 *
 * @returns The commands, in the order `help` lists them.
 * @example
 * ```ts
 * import { builtinCommands } from "./builtin_commands.ts";
 * console.log(builtinCommands().map((command) => command.name));
 * ```
 */
export function builtinCommands(): Command[] {
  return [
    {
      name: "set",
      usage: "set KEY VALUE [ex SECONDS]",
      help: "Stores VALUE under KEY, replacing any previous value (and its " +
        "expiry). With ex SECONDS, KEY expires that many seconds from now: " +
        "no read returns it afterwards.\n" +
        "Quote a key or value that contains spaces: set 'my key' \"a value\"",
      minArgs: 2,
      maxArgs: 4,
      async run([key, value, option, seconds], ctx) {
        if (option === undefined) {
          await ctx.client.set(key!, value!);
        } else if (option.toLowerCase() === "ex" && seconds !== undefined) {
          await ctx.client.set(key!, value!, {
            expireIn: positiveSeconds(seconds) * 1000,
          });
        } else throw new UsageError();
        if (ctx.interactive) await ctx.print("OK");
      },
    },
    {
      name: "expire",
      usage: "expire KEY SECONDS",
      help: "Makes KEY expire SECONDS from now (0 deletes it at once). " +
        "A missing key is an error.",
      minArgs: 2,
      maxArgs: 2,
      async run([key, seconds], ctx) {
        if (!/^[0-9]{1,12}$/.test(seconds!)) throw new UsageError();
        if (!await ctx.client.expire(key!, Number(seconds) * 1000)) {
          throw new Error(`Key '${key}' not found!`);
        }
        if (ctx.interactive) await ctx.print("OK");
      },
    },
    {
      name: "ttl",
      usage: "ttl KEY",
      help: "Prints the seconds until KEY expires, rounded as Redis's TTL " +
        "does; -1 when it does not expire. A missing key is an error.",
      minArgs: 1,
      maxArgs: 1,
      async run([key], ctx) {
        const ms = await ctx.client.ttl(key!);
        if (ms === -2n) throw new Error(`Key '${key}' not found!`);
        await ctx.print(String(ms < 0n ? ms : (ms + 500n) / 1000n));
      },
    },
    {
      name: "persist",
      usage: "persist KEY",
      help: "Removes KEY's expiry, so that it stays. A missing key is an " +
        "error; a key without expiry is left as it is.",
      minArgs: 1,
      maxArgs: 1,
      async run([key], ctx) {
        if (
          !await ctx.client.persist(key!) && await ctx.client.ttl(key!) === -2n
        ) {
          throw new Error(`Key '${key}' not found!`);
        }
        if (ctx.interactive) await ctx.print("OK");
      },
    },
    {
      name: "get",
      aliases: ["show", "view", "print"],
      usage: "get KEY",
      help: "Prints the value stored under KEY.",
      minArgs: 1,
      maxArgs: 1,
      async run([key], ctx) {
        const value = await ctx.client.get(key!);
        if (value === null) throw new Error(`Key '${key}' not found!`);
        await ctx.print(value);
      },
    },
    {
      name: "del",
      aliases: ["delete", "remove"],
      usage: "del KEY",
      help: "Deletes KEY. Deleting a missing key is not an error.",
      minArgs: 1,
      maxArgs: 1,
      async run([key], ctx) {
        await ctx.client.delete(key!);
        if (ctx.interactive) await ctx.print("OK");
      },
    },
    {
      name: "incr",
      usage: "incr KEY [N]",
      help: "Adds N (default 1; negative subtracts) to the integer stored " +
        "under KEY, as one atomic operation, and prints the new value. A " +
        "missing key counts as 0; a value that is not an integer is an error.",
      minArgs: 1,
      maxArgs: 2,
      async run([key, by], ctx) {
        if (by !== undefined && !/^-?[0-9]{1,19}$/.test(by)) {
          throw new UsageError();
        }
        await ctx.print(
          String(await ctx.client.increment(key!, BigInt(by ?? "1"))),
        );
      },
    },
    {
      name: "getkeys",
      aliases: ["keys", "list"],
      usage: "getkeys [COLUMNS]",
      help: "Prints every key, sorted, in COLUMNS columns (default 1).",
      maxArgs: 1,
      async run([text = "1"], ctx) {
        if (!/^[1-9][0-9]*$/.test(text)) throw new UsageError();
        const keys: string[] = [];
        for await (
          const page of ctx.client.keys({ pageSize: KEYS_PAGE_SIZE })
        ) {
          keys.push(...page);
        }
        keys.sort();
        if (keys.length === 0 && ctx.interactive) await ctx.print("(no keys)");
        for (const line of formatColumns(keys, Number(text))) {
          await ctx.print(line);
        }
      },
    },
    {
      name: "ping",
      usage: "ping",
      help: "Checks that the router answers and prints the round-trip time.",
      maxArgs: 0,
      async run(_args, ctx) {
        const ms = await ctx.client.ping();
        await ctx.print(`pong in ${ms.toFixed(2)} ms`);
      },
    },
    {
      name: "stats",
      usage: "stats",
      help: "Prints the router's statistics: databases, clients, operations.",
      maxArgs: 0,
      async run(_args, ctx) {
        for (const line of formatStats(await ctx.client.stats())) {
          await ctx.print(line);
        }
      },
    },
    {
      name: "forget",
      usage: "forget NODE_ID... | forget --all-absent  [--yes]",
      help:
        "Tells the router to give up on absent members: databases it waits for\n" +
        "because they held every acknowledged write, when they are gone for good\n" +
        "(a memory database that died, a Deno KV file that was lost). NODE_ID may\n" +
        "be the start of an id, as stats lists them. Acknowledged writes that only\n" +
        "they hold are lost. Asks first on a terminal; --yes does not ask.",
      minArgs: 1,
      async run(args, ctx) {
        const flags = args.filter((arg) => arg.startsWith("--"));
        const ids = args.filter((arg) => !arg.startsWith("--"));
        const all = flags.includes("--all-absent");
        const yes = flags.includes("--yes");
        if (
          flags.some((flag) => flag !== "--all-absent" && flag !== "--yes") ||
          all === (ids.length > 0)
        ) {
          throw new UsageError();
        }
        const members = (await ctx.client.stats()).members ?? [];
        const chosen = all
          ? members.filter((member) => !member.present)
          : ids.map((id) => findMember(members, id));
        if (chosen.length === 0) {
          await ctx.print("No member is absent: nothing to forget");
          return;
        }
        await ctx.print(`Forgetting ${memberCount(chosen.length)}:`);
        for (const member of chosen) {
          await ctx.print(`  ${formatMember(member)}`);
        }
        await ctx.print(
          "Acknowledged writes that only they hold are lost for good; one that comes back later is copied from the others.",
        );
        if (!yes && !await ctx.confirm("Forget them?")) {
          throw new Error(
            "Not confirmed: nothing forgotten (add --yes to go on without being asked)",
          );
        }
        const forgotten = await ctx.client.forget(
          chosen.map((member) => member.id),
        );
        await ctx.print(
          `Forgot ${
            memberCount(forgotten.length)
          }: the router no longer waits for them`,
        );
      },
    },
    {
      name: "help",
      usage: "help [COMMAND]",
      help: "Lists the commands, or explains one.",
      maxArgs: 1,
      async run([name], ctx) {
        if (name === undefined) {
          const width = Math.max(
            ...ctx.console.commands.map((c) => c.usage.length),
          );
          await ctx.print("Commands (type help COMMAND for details):");
          for (const command of ctx.console.commands) {
            const summary = command.help.split("\n")[0] ?? "";
            await ctx.print(`  ${command.usage.padEnd(width)}  ${summary}`);
          }
          return;
        }
        const command = ctx.console.findCommand(name);
        if (command === undefined) {
          throw new Error(`Unknown command '${name}' (type help for the list)`);
        }
        await ctx.print(`usage: ${command.usage}`);
        if (command.aliases?.length) {
          await ctx.print(`aliases: ${command.aliases.join(", ")}`);
        }
        await ctx.print(command.help);
      },
    },
    {
      name: "quit",
      aliases: ["exit"],
      usage: "quit",
      help: "Leaves the console. The end of the input does too.",
      maxArgs: 0,
      run(_args, ctx) {
        ctx.quit();
      },
    },
  ];
}

/** The member whose id is or starts with `id`. */
function findMember(members: MemberStats[], id: string): MemberStats {
  const text = id.toLowerCase();
  const matches = members.filter((member) => member.id.startsWith(text));
  if (matches.length === 1) return matches[0]!;
  if (matches.length === 0) {
    throw new Error(`No member's id starts with '${id}': stats lists them`);
  }
  throw new Error(
    `'${id}' is the start of ${matches.length} members' ids: give more of it`,
  );
}

function memberCount(count: number): string {
  return `${count} member${count === 1 ? "" : "s"}`;
}
