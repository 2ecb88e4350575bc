/**
 * Redis transactions and the commands that are atomic operations, for one
 * RESP session: MULTI queues commands as planned steps, WATCH records the
 * versions of keys, and EXEC sends the checks of those versions and every
 * queued step as one atomic operation (`resp_commands.ts` plans them).
 *
 * @module
 */

import {
  type AtomicReply,
  type AtomicStep,
  decodeAtomicReply,
  decodeValue,
  encodeAtomic,
  encodeGet,
  type Frame,
  MAX_ATOMIC_STEPS,
  respArray,
  respError,
  respSimple,
  StepKind,
  toHex,
} from "../protocol/mod.ts";
import {
  type Plan,
  planCommand,
  resultCount,
  TRANSACTION_COMMANDS,
} from "./resp_commands.ts";
import { checkKeyLength } from "./_resp_text.ts";

const RESP_NULL_ARRAY = new TextEncoder().encode("*-1\r\n");

/** Commands that act on a transaction, rather than being queued in it. */
const CONTROL = new Set([
  "MULTI",
  "EXEC",
  "DISCARD",
  "WATCH",
  "UNWATCH",
  "QUIT",
  "RESET",
]);

/** What a session gives its transactions: requests into the router. */
export interface TransactionHost {
  /** Sends a native request; resolves with its answer, rejects on an error. */
  request(bytes: Uint8Array): Promise<Frame>;
  /** A fresh request id. */
  id(): number;
}

/**
 * One session's transaction state.
 *
 * @example
 * ```ts ignore
 * const transactions = new Transactions(host);
 * const reply = transactions.handles("MULTI")
 *   ? await transactions.run("MULTI", [])
 *   : undefined;
 * ```
 */
export class Transactions {
  #host: TransactionHost;
  #queued?: { plans: Plan[]; failed: boolean };
  /** Keys under WATCH, by hex, with the version each had. */
  #watched = new Map<string, { key: Uint8Array; version: number | null }>();

  /** @param host How requests reach the router. */
  constructor(host: TransactionHost) {
    this.#host = host;
  }

  /** Whether `name` is queued (inside MULTI) or is a transaction command. */
  handles(name: string): boolean {
    return (this.#queued !== undefined && !CONTROL.has(name)) ||
      (CONTROL.has(name) && name !== "QUIT" && name !== "RESET");
  }

  /** Whether a MULTI is open: plain GET and SET must be queued too. */
  get open(): boolean {
    return this.#queued !== undefined;
  }

  /** Runs a transaction command, or queues one inside MULTI. */
  async run(name: string, args: Uint8Array[]): Promise<Uint8Array> {
    if (this.#queued !== undefined && !CONTROL.has(name)) {
      return this.#queue(name, args);
    }
    const arity = (min: number, max = min) =>
      args.length >= min && args.length <= max;
    const wrong = () =>
      respError(
        `ERR wrong number of arguments for '${name.toLowerCase()}' command`,
      );
    switch (name) {
      case "MULTI":
        if (!arity(0)) return wrong();
        if (this.#queued !== undefined) {
          return respError("ERR MULTI calls can not be nested");
        }
        this.#queued = { plans: [], failed: false };
        return respSimple("OK");
      case "EXEC":
        if (!arity(0)) return wrong();
        return await this.#exec();
      case "DISCARD":
        if (!arity(0)) return wrong();
        if (this.#queued === undefined) {
          return respError("ERR DISCARD without MULTI");
        }
        this.#queued = undefined;
        this.#watched.clear();
        return respSimple("OK");
      case "WATCH":
        if (!arity(1, Infinity)) return wrong();
        if (this.#queued !== undefined) {
          return respError("ERR WATCH inside MULTI is not allowed");
        }
        for (const key of args) {
          checkKeyLength(key);
          const id = toHex(key);
          if (this.#watched.has(id)) continue;
          const frame = await this.#host.request(
            encodeGet(this.#host.id(), key),
          );
          const entry = decodeValue(frame.payload);
          this.#watched.set(id, {
            key: key.slice(),
            version: entry?.version ?? null,
          });
        }
        return respSimple("OK");
      case "UNWATCH":
        if (!arity(0)) return wrong();
        this.#watched.clear();
        return respSimple("OK");
      default:
        return await this.runPlan(name, args);
    }
  }

  /** Runs one command as an atomic operation of its own. */
  async runPlan(name: string, args: Uint8Array[]): Promise<Uint8Array> {
    const plan = planCommand(name, args);
    if ("error" in plan) return respError(plan.error);
    if (plan.steps.length === 0) return plan.reply([]);
    const reply = await this.#atomic(plan.steps);
    const failed = reply.results.find((result) => result.kind === "error");
    if (!reply.committed && failed?.kind === "error") {
      return respError(failed.message);
    }
    return plan.reply(reply.results);
  }

  /** Queues a command of a transaction, or marks the transaction failed. */
  #queue(name: string, args: Uint8Array[]): Uint8Array {
    const queued = this.#queued!;
    // Copies: the arguments view the session's read buffer.
    const plan = TRANSACTION_COMMANDS.has(name)
      ? planCommand(name, args.map((arg) => arg.slice()))
      : {
        error: `ERR KVNDB cannot run '${name.toLowerCase()}' in a transaction`,
      };
    if ("error" in plan) {
      queued.failed = true;
      return respError(plan.error);
    }
    queued.plans.push(plan);
    return respSimple("QUEUED");
  }

  /** EXEC: the queued commands, and checks of the watched keys, as one. */
  async #exec(): Promise<Uint8Array> {
    const queued = this.#queued;
    // Without MULTI, the watches stay, as in Redis.
    if (queued === undefined) return respError("ERR EXEC without MULTI");
    const watched = [...this.#watched.values()];
    this.#queued = undefined;
    this.#watched.clear();
    if (queued.failed) {
      return respError(
        "EXECABORT Transaction discarded because of previous errors.",
      );
    }
    const steps: AtomicStep[] = watched.map(({ key, version }) => ({
      kind: StepKind.CHECK,
      key,
      version,
    }));
    for (const plan of queued.plans) steps.push(...plan.steps);
    if (steps.length === 0) return respArray([]);
    if (steps.length > MAX_ATOMIC_STEPS) {
      return respError(
        `ERR KVNDB runs at most ${MAX_ATOMIC_STEPS} steps in one transaction (each watched key, and each key a command touches, is one); this one has ${steps.length}`,
      );
    }
    const reply = await this.#atomic(steps);
    if (!reply.committed) {
      const failed = reply.results.find((result) => result.kind === "error");
      return failed?.kind === "error"
        ? respError(failed.message)
        : RESP_NULL_ARRAY;
    }
    const replies: Uint8Array[] = [];
    let at = 0;
    for (const plan of queued.plans) {
      const count = resultCount(plan);
      replies.push(plan.reply(reply.results.slice(at, at + count)));
      at += count;
    }
    return respArray(replies);
  }

  async #atomic(steps: AtomicStep[]): Promise<AtomicReply> {
    const frame = await this.#host.request(
      encodeAtomic(this.#host.id(), { acks: 0, flags: 0, steps }),
    );
    return decodeAtomicReply(frame.payload);
  }
}
