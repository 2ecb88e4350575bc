/**
 * The router's persisted state: the cluster id and the ids of the databases
 * that were ready. It is all a restarted router needs to know which databases
 * hold every acknowledged write. See `docs/architecture.md`, "Router restart".
 *
 * @module
 */

import {
  DamagedDataError,
  fromHex,
  type MemberInfo,
  toHex,
} from "../protocol/mod.ts";

/** What the router keeps across restarts. */
export interface RouterState {
  /** The cluster's id. */
  clusterId: Uint8Array;
  /** Node ids of the databases that were ready. */
  members: Uint8Array[];
  /** The last sequence number given out when this was written (for people). */
  seq: number;
  /** Whether a write may have been acknowledged by fewer than every ready database. */
  weak?: boolean;
  /** The highest sequence number that may have been given out. */
  ceiling?: number;
  /**
   * What is known of each member, by node id as hex. Members missing here
   * (a file written before this was kept) count as durable.
   */
  details?: Record<string, MemberInfo>;
}

/**
 * Thrown when another router holds the state file: two routers on one state
 * file would each wait for the other's databases.
 *
 * @example
 * ```ts
 * import { StateFile, StateFileInUseError } from "./state_file.ts";
 * const dir = await Deno.makeTempDir();
 * using first = StateFile.open(`${dir}/router.json`);
 * try {
 *   StateFile.open(`${dir}/router.json`);
 * } catch (error) {
 *   console.log(error instanceof StateFileInUseError); // true
 * }
 * first.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class StateFileInUseError extends Error {
  /** The state file's path. */
  readonly path: string;

  /**
   * @param path The state file's path.
   * @param options The cause, if any.
   */
  constructor(path: string, options?: ErrorOptions) {
    super(
      `The router state file ${path} is in use by another router: give this one its own file with --state PATH (or stop the other router)`,
      options,
    );
    this.name = "StateFileInUseError";
    this.path = path;
  }
}

/**
 * Reads and writes the router's state file. Writes go to a temporary file
 * that is synced and then renamed over the old one, so a crash leaves either
 * the old state or the new one, never half of either.
 *
 * While open, it holds an exclusive lock on `PATH.lock` (an advisory lock the
 * kernel drops with the process, so a router killed with `kill -9` leaves no
 * stale lock): a second router on the same file is refused.
 *
 * @example
 * ```ts
 * import { StateFile } from "./state_file.ts";
 * const dir = await Deno.makeTempDir();
 * using file = StateFile.open(`${dir}/router.json`);
 * await file.save({ clusterId: new Uint8Array([1]), members: [], seq: 3 });
 * console.log(file.load()?.seq); // 3
 * file.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class StateFile implements Disposable {
  #path: string;
  #queue: Promise<void> = Promise.resolve();
  #lock?: Deno.FsFile;

  private constructor(path: string, lock: Deno.FsFile) {
    this.#path = path;
    this.#lock = lock;
  }

  /**
   * Opens the state file at `path`, locking it against other routers.
   *
   * @param path Where the state lives.
   * @returns The open state file.
   * @throws {StateFileInUseError} When another router holds it.
   */
  static open(path: string): StateFile {
    // The lock lives beside the state, not on it: saves rename a new file
    // over the state, which would leave a lock on the old one behind.
    const lock = Deno.openSync(`${path}.lock`, {
      read: true,
      write: true,
      create: true,
    });
    let locked = false;
    try {
      locked = lock.tryLockSync(true);
    } finally {
      if (!locked) lock.close();
    }
    if (!locked) throw new StateFileInUseError(path);
    return new StateFile(path, lock);
  }

  /** Releases the lock. Idempotent; call after {@linkcode settled}. */
  close(): void {
    this.#lock?.close();
    this.#lock = undefined;
  }

  /** Releases the lock; for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Resolves once every save begun so far has finished. */
  async settled(): Promise<void> {
    await this.#queue;
  }

  /** The file's path. */
  get path(): string {
    return this.#path;
  }

  /**
   * Reads the state.
   *
   * @returns The state, or `undefined` when there is none yet.
   * @throws {DamagedDataError} When the file exists but cannot be understood.
   */
  load(): RouterState | undefined {
    let text: string;
    try {
      text = Deno.readTextFileSync(this.#path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw error;
    }
    if (text.trim() === "") return undefined;
    try {
      const json = JSON.parse(text) as {
        clusterId: string;
        members: string[];
        seq: number;
        weak?: boolean;
        ceiling?: number;
        details?: Record<string, { volatile?: unknown; address?: unknown }>;
      };
      const details: Record<string, MemberInfo> = {};
      for (const [id, info] of Object.entries(json.details ?? {})) {
        details[id] = {
          volatile: info.volatile === true,
          address: typeof info.address === "string" ? info.address : "",
        };
      }
      return {
        clusterId: parseHex(json.clusterId),
        members: json.members.map(parseHex),
        seq: json.seq,
        weak: json.weak === true,
        ceiling: typeof json.ceiling === "number" ? json.ceiling : json.seq,
        details,
      };
    } catch (cause) {
      throw new DamagedDataError(
        `The router state file ${this.#path} is damaged; move it away to start afresh (acknowledged writes are then only as safe as the first database to join)`,
        { cause },
      );
    }
  }

  /**
   * Writes the state durably. Saves run one after another, in call order.
   *
   * @param state The state.
   */
  save(state: RouterState): Promise<void> {
    const text = JSON.stringify({
      clusterId: toHex(state.clusterId),
      members: state.members.map(toHex),
      seq: state.seq,
      weak: state.weak ?? false,
      ceiling: state.ceiling ?? state.seq,
      details: state.details ?? {},
    }) + "\n";
    const run = this.#queue.then(() => this.#write(text));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #write(text: string): Promise<void> {
    const temporary = `${this.#path}.tmp`;
    using file = await Deno.open(temporary, {
      write: true,
      create: true,
      truncate: true,
    });
    const bytes = new TextEncoder().encode(text);
    let written = 0;
    while (written < bytes.length) {
      written += await file.write(bytes.subarray(written));
    }
    await file.sync();
    await Deno.rename(temporary, this.#path);
  }
}

function parseHex(text: string): Uint8Array {
  const bytes = fromHex(text);
  if (bytes === undefined) throw new Error(`Bad hex '${text}'`);
  return bytes;
}
