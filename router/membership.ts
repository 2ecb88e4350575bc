/**
 * The member set: the node ids of the databases known to hold every
 * acknowledged write, with what the router knows of each (whether its data
 * outlives its process, its last address, since when it is away). See
 * `docs/architecture.md`, "Router restart and membership".
 *
 * @module
 */

import type { MemberInfo, MemberStats } from "../protocol/mod.ts";

interface Member extends MemberInfo {
  /** `performance.now()` when it left; `undefined` while present. */
  absentSince?: number;
}

/**
 * The member set and what is known of each member.
 *
 * A volatile member that has been away for longer than the grace period is
 * **gone**: a memory database that restarts is a new, empty node with a new
 * id, so waiting for the old one protects nothing. A live memory database
 * whose link broke reconnects with its id well within the grace period (its
 * retries are at most 5 s apart).
 *
 * @example
 * ```ts
 * import { Membership } from "./membership.ts";
 * const members = new Membership({ volatileGrace: 10_000 });
 * members.add("ab", { volatile: true, address: "127.0.0.1:4000" });
 * members.absent("ab", 0);
 * console.log(members.isGone("ab", 5_000), members.isGone("ab", 10_000)); // false true
 * ```
 */
export class Membership implements Iterable<string> {
  #members = new Map<string, Member>();
  #volatileGrace: number;

  /** @param options How long a volatile member may be away before it is gone. */
  constructor(options: { volatileGrace: number }) {
    this.#volatileGrace = options.volatileGrace;
  }

  /** How many members there are. */
  get size(): number {
    return this.#members.size;
  }

  /** How long a volatile member may be away before it counts as gone, in ms. */
  get volatileGrace(): number {
    return this.#volatileGrace;
  }

  /** Whether `id` is a member. */
  has(id: string): boolean {
    return this.#members.has(id);
  }

  /** The members' ids. */
  [Symbol.iterator](): IterableIterator<string> {
    return this.#members.keys();
  }

  /** A copy, with the same members and what is known of them. */
  clone(): Membership {
    const copy = new Membership({ volatileGrace: this.#volatileGrace });
    for (const [id, member] of this.#members) {
      copy.#members.set(id, { ...member });
    }
    return copy;
  }

  /** A copy with `other`'s members added where this has none of that id. */
  union(other: Membership | undefined): Membership {
    const copy = this.clone();
    if (other === undefined) return copy;
    for (const [id, member] of other.#members) {
      if (!copy.#members.has(id)) copy.#members.set(id, { ...member });
    }
    return copy;
  }

  /** What is known of member `id`. */
  info(id: string): MemberInfo | undefined {
    return this.#members.get(id);
  }

  /**
   * Adds a member, present; does nothing if it is one already.
   *
   * @returns Whether it was added.
   */
  add(id: string, info: MemberInfo): boolean {
    if (this.#members.has(id)) return false;
    this.#members.set(id, { ...info });
    return true;
  }

  /**
   * Adds a member known from the state file: away since `now`.
   *
   * @param id The node id.
   * @param info What the state file says of it.
   * @param now `performance.now()` at the router's start.
   */
  restore(id: string, info: MemberInfo, now: number): void {
    this.#members.set(id, { ...info, absentSince: now });
  }

  /** Removes a member; returns whether it was one. */
  delete(id: string): boolean {
    return this.#members.delete(id);
  }

  /** Records that a database with id `id` connected from `address`. */
  present(id: string, address: string, volatile: boolean): void {
    const member = this.#members.get(id);
    if (member === undefined) return;
    member.absentSince = undefined;
    member.address = address;
    member.volatile = volatile;
  }

  /** Records that the last database with id `id` left at `now`. */
  absent(id: string, now: number): void {
    const member = this.#members.get(id);
    if (member !== undefined && member.absentSince === undefined) {
      member.absentSince = now;
    }
  }

  /** Whether member `id` is away. */
  isAway(id: string): boolean {
    return this.#members.get(id)?.absentSince !== undefined;
  }

  /** Whether member `id` is volatile and away for longer than the grace period. */
  isGone(id: string, now: number): boolean {
    const member = this.#members.get(id);
    return member !== undefined && member.volatile &&
      member.absentSince !== undefined &&
      now - member.absentSince >= this.#volatileGrace;
  }

  /**
   * Describes member `id` for people: a short id, its backend, its last
   * address and how long it has been away.
   */
  describe(id: string, now: number): string {
    const member = this.#members.get(id);
    const short = id.slice(0, 12);
    if (member === undefined) return short;
    const kind = member.volatile ? "volatile (memory)" : "durable";
    const away = member.absentSince === undefined
      ? "connected"
      : `away ${seconds(now - member.absentSince)} s`;
    return `${short} (${kind}, last at ${member.address || "?"}, ${away})`;
  }

  /** The members as `stats` reports them. */
  stats(now: number): MemberStats[] {
    return [...this.#members].map(([id, member]) => ({
      id,
      volatile: member.volatile,
      address: member.address,
      present: member.absentSince === undefined,
      awaySeconds: member.absentSince === undefined
        ? 0
        : Math.round((now - member.absentSince) / 1000),
    }));
  }
}

/** `1 member`, `2 members`: a count with its noun, for people. */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

/** Milliseconds as seconds for people: one decimal below 10 s. */
export function seconds(ms: number): string {
  return ms < 10_000 ? (ms / 1000).toFixed(1) : String(Math.round(ms / 1000));
}
