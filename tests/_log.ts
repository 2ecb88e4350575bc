// The log lines of KVNDB's loggers during a test, for assertions and for
// failure messages; logging is reset on dispose.

import { configure, type LogLevel, reset } from "@logtape/logtape";

/** Captured log lines, as `level message`, with values as JSON. */
export interface CapturedLog extends AsyncDisposable {
  readonly lines: string[];
  /** The lines at warning level, one a line. */
  warnings(): string;
}

/** Starts capturing the `kvndb` loggers from `lowestLevel` up. */
export async function captureLog(
  lowestLevel: LogLevel = "info",
): Promise<CapturedLog> {
  const lines: string[] = [];
  await configure({
    reset: true,
    sinks: {
      memory: (record) =>
        lines.push(
          `${record.level} ${
            record.message.map((part) =>
              typeof part === "string" ? part : JSON.stringify(part)
            ).join("")
          }`,
        ),
    },
    loggers: [
      { category: "kvndb", lowestLevel, sinks: ["memory"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: [] },
    ],
  });
  return {
    lines,
    warnings: () =>
      lines.filter((line) => line.startsWith("warning")).join("\n"),
    [Symbol.asyncDispose]: () => reset(),
  };
}
