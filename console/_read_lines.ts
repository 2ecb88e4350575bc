/**
 * Reads a byte stream as lines of text, for the console's script mode.
 *
 * @module
 */

/**
 * The longest line the console reads, in UTF-16 code units: room for a
 * maximum-size value (512 KiB) written entirely with escapes, and a bound on
 * what a line without an end can make us buffer.
 */
export const MAX_LINE_LENGTH = 4 * 1024 * 1024;

/** A line is longer than {@linkcode MAX_LINE_LENGTH}. */
export class LineTooLongError extends RangeError {
  constructor() {
    super(
      `Input line exceeds the console's maximum line length (${MAX_LINE_LENGTH} characters)`,
    );
    this.name = "LineTooLongError";
  }
}

/**
 * Yields the lines of a UTF-8 stream without their `\n` or `\r\n`; a last
 * line without an ending is yielded too. Stopping early cancels the stream.
 */
export async function* readLines(
  stream: ReadableStream<Uint8Array>,
): AsyncGenerator<string> {
  let buffer = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    let start = 0;
    for (;;) {
      const end = buffer.indexOf("\n", start);
      if (end === -1) break;
      yield withoutCr(buffer.slice(start, end));
      start = end + 1;
    }
    buffer = buffer.slice(start);
    if (buffer.length > MAX_LINE_LENGTH) throw new LineTooLongError();
  }
  if (buffer !== "") yield withoutCr(buffer);
}

function withoutCr(line: string): string {
  return line.endsWith("\r") ? line.slice(0, -1) : line;
}
