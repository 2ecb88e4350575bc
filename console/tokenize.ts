/**
 * Splits a console line into words the way a POSIX shell does, so that keys
 * and values may contain spaces.
 *
 * @module
 */

/**
 * Splits a console line into words, with shell-like quoting:
 *
 * - spaces and tabs separate words;
 * - `'...'` keeps everything inside literally;
 * - `"..."` keeps everything inside, except that `\"` and `\\` stand for `"`
 *   and `\` (any other backslash is kept, as in a POSIX shell);
 * - outside quotes, a backslash makes the next character literal;
 * - quoted and unquoted parts next to each other form one word, and `''`
 *   is an empty word.
 *
 * @param line One line of input, without its line ending.
 * @returns The words, with quotes and escapes removed.
 * @throws {SyntaxError} When a quote is not closed or the line ends with a
 * lone backslash.
 * @example
 * ```ts
 * import { tokenize } from "./tokenize.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(tokenize(`set "my key" 'a value'`), ["set", "my key", "a value"]);
 * assert.deepEqual(tokenize(String.raw`get a\ b`), ["get", "a b"]);
 * ```
 */
export function tokenize(line: string): string[] {
  const words: string[] = [];
  let word = "";
  // A word can be empty (`''`), so "inside a word" is tracked apart from `word`.
  let inWord = false;
  let i = 0;
  while (i < line.length) {
    const char = line[i]!;
    if (char === " " || char === "\t") {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
      i++;
    } else if (char === "'") {
      const end = line.indexOf("'", i + 1);
      if (end === -1) throw new SyntaxError("Unterminated single quote");
      word += line.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (char === '"') {
      i++;
      for (;;) {
        if (i >= line.length) {
          throw new SyntaxError("Unterminated double quote");
        }
        const inner = line[i]!;
        if (inner === '"') break;
        const next = line[i + 1];
        if (inner === "\\" && (next === '"' || next === "\\")) {
          word += next;
          i += 2;
        } else {
          word += inner;
          i++;
        }
      }
      inWord = true;
      i++;
    } else if (char === "\\") {
      const next = line[i + 1];
      if (next === undefined) {
        throw new SyntaxError("Nothing to escape after the final backslash");
      }
      word += next;
      inWord = true;
      i += 2;
    } else {
      word += char;
      inWord = true;
      i++;
    }
  }
  if (inWord) words.push(word);
  return words;
}
