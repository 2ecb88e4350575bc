/**
 * The KVNDB console (`kvndb cmd`): set, get, delete and list keys by typing
 * commands or piping a script. Programs can add their own commands.
 *
 * @example
 * ```ts ignore
 * import { connect } from "../client/mod.ts";
 * import { KvndbConsole } from "./mod.ts";
 * await using client = await connect({ port: 54565 });
 * const kvndb = new KvndbConsole(client).addCommand({
 *   name: "echo",
 *   usage: "echo WORD...",
 *   help: "Prints its arguments.",
 *   run: (args, ctx) => ctx.print(args.join(" ")),
 * });
 * Deno.exitCode = await kvndb.run();
 * ```
 *
 * @module
 */

export {
  type ConsoleOptions,
  DEFAULT_PROMPT,
  KvndbConsole,
  runConsole,
} from "./console.ts";
export {
  type Command,
  type CommandContext,
  type ConsoleClient,
  UsageError,
} from "./command.ts";
export { builtinCommands } from "./builtin_commands.ts";
export { tokenize } from "./tokenize.ts";
export { formatStats } from "./_format.ts";
