// Text helpers of the Redis-protocol front end: command names, error texts,
// key length checks and Redis-style glob patterns.

import { MAX_KEY_SIZE, TooLargeError } from "../protocol/mod.ts";

const decoder = new TextDecoder();

export function keyLengthError(key: Uint8Array): TooLargeError {
  return new TooLargeError(
    `ERR key of ${key.length} bytes (KVNDB keys are 1 to ${MAX_KEY_SIZE} bytes)`,
  );
}

export function checkKeyLength(key: Uint8Array): void {
  if (key.length === 0 || key.length > MAX_KEY_SIZE) throw keyLengthError(key);
}

export function errorText(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return /^[A-Z]+ /.test(message) ? message : `ERR ${message}`;
}

/** The part of a glob before its first special character. */
export function literalPrefix(pattern: string): string {
  const index = pattern.search(/[*?[\\]/);
  return index < 0 ? pattern : pattern.slice(0, index);
}

/** Redis-style glob: `*`, `?`, `[abc]`, `[^a]`, `[a-z]`, `\x`. */
export function globMatcher(pattern: string): (text: string) => boolean {
  if (pattern === "*") return () => true;
  let source = "^";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === "*") source += "[\\s\\S]*";
    else if (c === "?") source += "[\\s\\S]";
    else if (c === "\\" && i + 1 < pattern.length) {
      source += escapeRegExp(pattern[++i]!);
    } else if (c === "[") {
      const end = pattern.indexOf("]", i + 1);
      if (end < 0) {
        source += "\\[";
        continue;
      }
      let body = pattern.slice(i + 1, end);
      if (body.startsWith("^")) {
        body = "^" + body.slice(1).replace(/\\/g, "\\\\");
      } else body = body.replace(/\\/g, "\\\\");
      source += `[${body}]`;
      i = end;
    } else source += escapeRegExp(c);
  }
  const regex = new RegExp(source + "$");
  return (text) => regex.test(text);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** A command's name in upper case, without a decoder for the usual ASCII. */
export function commandName(bytes: Uint8Array): string {
  // The two commands of nearly every request, without building a string.
  if (bytes.length === 3 && (bytes[1]! | 0x20) === 0x65) { // 'e'
    const first = bytes[0]! | 0x20;
    const third = bytes[2]! | 0x20;
    if (third === 0x74) { // 't'
      if (first === 0x67) return "GET";
      if (first === 0x73) return "SET";
    }
  }
  if (bytes.length > 32) return decoder.decode(bytes).toUpperCase();
  let name = "";
  for (const byte of bytes) {
    if (byte >= 0x80) return decoder.decode(bytes).toUpperCase();
    name += String.fromCharCode(
      byte >= 0x61 && byte <= 0x7a ? byte - 32 : byte,
    );
  }
  return name;
}
