/**
 * Atomic operations from the client library, in the style of
 * `Deno.AtomicOperation`: checks of versions, then mutations, committed as
 * one write that every database applies whole or not at all.
 *
 * @module
 */

import {
  AtomicFlag,
  type AtomicReply,
  type AtomicStep,
  checkKey,
  checkValue,
  ExpireFlag,
  InvalidArgumentError,
  MAX_EXPIRE_MS,
  SetFlag,
  StepKind,
  type StepResult,
} from "../protocol/mod.ts";
import {
  type Bytes,
  type SetOptions,
  toBytes,
  type WriteOptions,
} from "./options.ts";

/** Checks an `expireIn` and turns it into SET flags and a time. */
export function expiryOf(
  options: SetOptions | undefined,
): { flags: number; time?: number } {
  const expireIn = options?.expireIn;
  const expireAt = options?.expireAt;
  if (expireAt !== undefined) {
    if (expireIn !== undefined) {
      throw new InvalidArgumentError("Give expireIn or expireAt, not both");
    }
    if (
      !Number.isSafeInteger(expireAt) || expireAt <= 0 ||
      expireAt > MAX_EXPIRE_MS
    ) {
      throw new InvalidArgumentError(
        `expireAt must be a time in ms since the epoch, got ${expireAt}`,
      );
    }
    return { flags: SetFlag.EXPIRE_AT, time: expireAt };
  }
  if (expireIn === undefined) return { flags: 0 };
  if (!Number.isSafeInteger(expireIn) || expireIn <= 0) {
    throw new InvalidArgumentError(
      `expireIn must be a positive whole number of milliseconds, got ${expireIn}`,
    );
  }
  if (expireIn > MAX_EXPIRE_MS) {
    throw new InvalidArgumentError(
      `expireIn of ${expireIn} ms is over the limit of ${MAX_EXPIRE_MS} ms`,
    );
  }
  return { flags: SetFlag.EXPIRE_IN, time: expireIn };
}

/** A check: the key has this version, or (`null`) does not exist. */
export interface AtomicCheck {
  /** The key. */
  key: Bytes;
  /** Its expected version (from `getEntry`), or `null` for absent. */
  version: number | null;
}

/** A committed atomic operation. */
export interface AtomicCommitted {
  /** It committed. */
  ok: true;
  /** Its sequence number: the version of every key it wrote. */
  version: number;
  /** What each step other than a check returned, in order. */
  results: StepResult[];
}

/** An atomic operation whose checks did not hold: nothing was written. */
export interface AtomicFailed {
  /** A check did not hold. */
  ok: false;
}

/** Runs steps on the router, for {@linkcode AtomicOperation}. */
export type AtomicRunner = (
  flags: number,
  steps: AtomicStep[],
  options?: WriteOptions,
) => Promise<AtomicReply>;

function toBigInt(n: bigint | number, what: string): bigint {
  if (typeof n === "bigint") return n;
  if (!Number.isSafeInteger(n)) {
    throw new InvalidArgumentError(`${what} must be an integer, got ${n}`);
  }
  return BigInt(n);
}

/**
 * An atomic operation being built. Get one from `client.atomic()`.
 *
 * Values that `sum`, `min` and `max` work on are decimal integers as text
 * (`"42"`), as Redis's INCR keeps them; a missing key counts as 0 for `sum`
 * and takes the operand for `min` and `max`. A step on a value that is not
 * such an integer fails the whole operation with an
 * {@linkcode InvalidArgumentError}.
 *
 * @example A compare-and-set, against a router and a memory database
 * ```ts
 * import { connect } from "./mod.ts";
 * import { Router } from "../router/mod.ts";
 * import { DatabaseNode, MemoryDatabase } from "../database/mod.ts";
 * await using router = await Router.start({ hostname: "127.0.0.1", port: 0 });
 * await using node = DatabaseNode.start({
 *   database: new MemoryDatabase(),
 *   dial: () => router.connectInProcess(),
 * });
 * await node.ready();
 * await using client = await connect({ port: router.port });
 *
 * const entry = await client.getEntry("config"); // null: not there yet
 * const first = await client.atomic()
 *   .check({ key: "config", version: entry?.version ?? null })
 *   .set("config", "v1")
 *   .sum("config:changes", 1)
 *   .commit();
 * console.log(first.ok); // true
 * // The same check again fails: the key has a version now.
 * const second = await client.atomic()
 *   .check({ key: "config", version: null })
 *   .set("config", "v2")
 *   .commit();
 * console.log(second.ok); // false
 * console.log(await client.get("config")); // "v1"
 * ```
 */
export class AtomicOperation {
  #run: AtomicRunner;
  #steps: AtomicStep[] = [];

  /**
   * Creates an operation that `run` commits.
   *
   * @param run How the steps reach the router.
   */
  constructor(run: AtomicRunner) {
    this.#run = run;
  }

  /**
   * Adds checks: the operation commits only if every key has the version
   * given (or, for `null`, does not exist).
   *
   * @param checks The keys and versions.
   * @returns This operation.
   */
  check(...checks: AtomicCheck[]): this {
    for (const { key, version } of checks) {
      const bytes = toBytes(key);
      checkKey(bytes);
      this.#steps.push({ kind: StepKind.CHECK, key: bytes, version });
    }
    return this;
  }

  /**
   * Sets a key, with an expiry if `expireIn` is given.
   *
   * @param key The key.
   * @param value The value.
   * @param options `expireIn`: milliseconds until the key expires.
   * @returns This operation.
   * @throws {InvalidArgumentError} When `expireIn` is not a positive integer.
   */
  set(key: Bytes, value: Bytes, options?: SetOptions): this {
    const { flags, time } = expiryOf(options);
    return this.#set(key, value, flags, time);
  }

  /**
   * Gives an existing key an expiry `ms` from the operation (by the router's
   * clock), or with `null` removes its expiry. Its result is `1n` when the
   * key exists (and, for `null`, had an expiry), else `0n`.
   *
   * @param key The key.
   * @param ms Milliseconds until it expires; 0 or less deletes it now.
   * @returns This operation.
   */
  expire(key: Bytes, ms: number | null): this {
    const bytes = toBytes(key);
    checkKey(bytes);
    if (
      ms !== null && (!Number.isSafeInteger(ms) || Math.abs(ms) > MAX_EXPIRE_MS)
    ) {
      throw new InvalidArgumentError(
        `An expiry must be a whole number of milliseconds within ±${MAX_EXPIRE_MS}, got ${ms}`,
      );
    }
    this.#steps.push({
      kind: StepKind.EXPIRE,
      key: bytes,
      flags: ms === null ? ExpireFlag.PERSIST : ExpireFlag.RELATIVE,
      time: ms ?? 0,
    });
    return this;
  }

  /**
   * Reads a key's time to live at the operation's time; its result is the
   * milliseconds left, `-1n` for a key without expiry, `-2n` when absent.
   *
   * @param key The key.
   * @returns This operation.
   */
  ttl(key: Bytes): this {
    const bytes = toBytes(key);
    checkKey(bytes);
    this.#steps.push({ kind: StepKind.TTL, key: bytes });
    return this;
  }

  /**
   * Deletes a key (a missing key is no error).
   *
   * @param key The key.
   * @returns This operation.
   */
  delete(key: Bytes): this {
    const bytes = toBytes(key);
    checkKey(bytes);
    this.#steps.push({ kind: StepKind.DELETE, key: bytes });
    return this;
  }

  /**
   * Adds `n` to a decimal integer value (signed 64-bit; overflow fails).
   *
   * @param key The key.
   * @param n What to add; negative subtracts.
   * @returns This operation.
   */
  sum(key: Bytes, n: bigint | number): this {
    return this.#integer(StepKind.ADD, key, n);
  }

  /**
   * Keeps the smaller of a decimal integer value and `n`.
   *
   * @param key The key.
   * @param n The operand.
   * @returns This operation.
   */
  min(key: Bytes, n: bigint | number): this {
    return this.#integer(StepKind.MIN, key, n);
  }

  /**
   * Keeps the larger of a decimal integer value and `n`.
   *
   * @param key The key.
   * @param n The operand.
   * @returns This operation.
   */
  max(key: Bytes, n: bigint | number): this {
    return this.#integer(StepKind.MAX, key, n);
  }

  /**
   * Sets a key only if it does not exist; its result is `1n` when it was
   * set, `0n` when it existed.
   *
   * @param key The key.
   * @param value The value.
   * @returns This operation.
   */
  setIfAbsent(key: Bytes, value: Bytes): this {
    return this.#set(key, value, SetFlag.NX);
  }

  #set(key: Bytes, value: Bytes, flags: number, time?: number): this {
    const keyBytes = toBytes(key);
    const valueBytes = toBytes(value);
    checkKey(keyBytes);
    checkValue(valueBytes);
    this.#steps.push(
      time === undefined
        ? { kind: StepKind.SET, key: keyBytes, value: valueBytes, flags }
        : { kind: StepKind.SET, key: keyBytes, value: valueBytes, flags, time },
    );
    return this;
  }

  /**
   * Commits the operation.
   *
   * @param options Acknowledgement level, signal and timeout.
   * @returns `{ ok: true, version, results }`, or `{ ok: false }` when a
   *   check did not hold (nothing was written).
   * @throws {InvalidArgumentError} When a step cannot apply (a value that is
   *   not an integer, an overflow); nothing was written.
   */
  async commit(
    options?: WriteOptions,
  ): Promise<AtomicCommitted | AtomicFailed> {
    if (this.#steps.length === 0) {
      throw new InvalidArgumentError("An atomic operation needs a step");
    }
    const reply = await this.#run(
      AtomicFlag.ALL_OR_NOTHING,
      this.#steps,
      options,
    );
    const failed = reply.results.find((result) => result.kind === "error");
    if (failed !== undefined && failed.kind === "error") {
      throw new InvalidArgumentError(failed.message.replace(/^ERR /, ""));
    }
    if (!reply.committed) return { ok: false };
    return { ok: true, version: reply.version, results: reply.results };
  }

  #integer(
    kind: typeof StepKind.ADD | typeof StepKind.MIN | typeof StepKind.MAX,
    key: Bytes,
    n: bigint | number,
  ): this {
    const bytes = toBytes(key);
    checkKey(bytes);
    this.#steps.push({ kind, key: bytes, delta: toBigInt(n, "The operand") });
    return this;
  }
}
