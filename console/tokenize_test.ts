import assert from "node:assert/strict";
import { tokenize } from "./tokenize.ts";

Deno.test({
  name: "tokenize() splits on runs of spaces and tabs",
  permissions: "none",
  fn() {
    assert.deepEqual(tokenize("  set\ta   b  "), ["set", "a", "b"]);
    assert.deepEqual(tokenize(""), []);
    assert.deepEqual(tokenize(" \t "), []);
  },
});

Deno.test({
  name: "tokenize() keeps single-quoted text literally",
  permissions: "none",
  fn() {
    assert.deepEqual(tokenize(String.raw`set 'a b' 'c\d"e'`), [
      "set",
      "a b",
      String.raw`c\d"e`,
    ]);
  },
});

Deno.test({
  name: "tokenize() unescapes only quotes and backslashes inside double quotes",
  permissions: "none",
  fn() {
    assert.deepEqual(tokenize(String.raw`"a \"b\" \\ c\n 'd'"`), [
      String.raw`a "b" \ c\n 'd'`,
    ]);
  },
});

Deno.test({
  name: "tokenize() makes the character after a bare backslash literal",
  permissions: "none",
  fn() {
    assert.deepEqual(tokenize(String.raw`a\ b \'c \\`), ["a b", "'c", "\\"]);
  },
});

Deno.test({
  name: "tokenize() joins adjacent quoted and unquoted parts into one word",
  permissions: "none",
  fn() {
    assert.deepEqual(tokenize(`a"b c"'d e'f g`), ["ab cd ef", "g"]);
  },
});

Deno.test({
  name: "tokenize() returns empty quotes as an empty word",
  permissions: "none",
  fn() {
    assert.deepEqual(tokenize(`set k '' ""`), ["set", "k", "", ""]);
  },
});

Deno.test({
  name: "tokenize() rejects unterminated quotes and a final backslash",
  permissions: "none",
  fn() {
    assert.throws(() => tokenize("get 'a b"), {
      name: "SyntaxError",
      message: "Unterminated single quote",
    });
    assert.throws(() => tokenize(String.raw`get "a b\"`), {
      name: "SyntaxError",
      message: "Unterminated double quote",
    });
    assert.throws(() => tokenize("get a\\"), SyntaxError);
  },
});
