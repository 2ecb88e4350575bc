/**
 * Logging for the command line: warnings and errors always go to standard
 * error; `-v` adds everything else; `-l FILE` writes the same to a file.
 * Each line has a timestamp, a level, the role (`kvndb·router`,
 * `kvndb·database`) and, in the message, the peer.
 *
 * @module
 */

import {
  configure,
  getStreamSink,
  getTextFormatter,
  type LogLevel,
  reset,
  type Sink,
  withFilter,
} from "@logtape/logtape";

/** Options for {@linkcode setupLogging}. */
export interface LoggingOptions {
  /** Log everything (`-v`), not only warnings and errors. */
  verbose: boolean;
  /** Also log to this file (`-l`). */
  logfile?: string;
}

/**
 * Configures logging for a command-line run.
 *
 * @param options Verbosity and log file.
 * @returns A function that flushes and closes the log.
 * @example
 * ```ts ignore
 * import { setupLogging } from "./logging.ts";
 * const close = await setupLogging({ verbose: true });
 * await close();
 * ```
 */
export async function setupLogging(
  options: LoggingOptions,
): Promise<() => Promise<void>> {
  const formatter = getTextFormatter({ value: "bare" });
  const level: LogLevel = options.verbose ? "debug" : "warning";
  const sinks: Record<string, Sink> = {
    stderr: withFilter(
      getStreamSink(Deno.stderr.writable, { formatter }),
      level,
    ),
  };
  let file: Deno.FsFile | undefined;
  if (options.logfile !== undefined) {
    file = await Deno.open(options.logfile, {
      create: true,
      append: true,
      write: true,
    });
    sinks.file = withFilter(
      getStreamSink(file.writable, { formatter }),
      options.verbose ? "debug" : "info",
    );
  }
  await configure({
    reset: true,
    sinks,
    loggers: [
      {
        category: "kvndb",
        lowestLevel: "debug",
        sinks: Object.keys(sinks),
      },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: [] },
    ],
  });
  return async () => {
    await reset();
  };
}
