/**
 * The router's persisted state: the cluster id and the ids of the databases
 * that were ready. It is all a restarted router needs to know which databases
 * hold every acknowledged write. See `docs/architecture.md`, "Router restart".
 *
 * @module
 */

import { fromHex, toHex } from "../protocol/mod.ts";

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
}

/**
 * Reads and writes the router's state file. Writes go to a temporary file
 * that is synced and then renamed over the old one, so a crash leaves either
 * the old state or the new one, never half of either.
 *
 * @example
 * ```ts
 * import { StateFile } from "./state_file.ts";
 * const path = await Deno.makeTempFile();
 * const file = new StateFile(path);
 * await file.save({ clusterId: new Uint8Array([1]), members: [], seq: 3 });
 * console.log(file.load()?.seq); // 3
 * await Deno.remove(path);
 * ```
 */
export class StateFile {
  #path: string;
  #queue: Promise<void> = Promise.resolve();

  /** @param path Where the state lives. */
  constructor(path: string) {
    this.#path = path;
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
   * @throws {Error} When the file exists but cannot be understood.
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
      };
      return {
        clusterId: parseHex(json.clusterId),
        members: json.members.map(parseHex),
        seq: json.seq,
        weak: json.weak === true,
        ceiling: typeof json.ceiling === "number" ? json.ceiling : json.seq,
      };
    } catch (cause) {
      throw new Error(
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
