/**
 * The expiry sweep: expired keys removed for real, by sequenced deletes, so
 * that every database gives the memory back alike. Reads already leave
 * expired keys out; the sweep is housekeeping. See `docs/architecture.md`,
 * "Expiry".
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import {
  AckLevel,
  decodeAtomicReply,
  decodeKeyPage,
  encodeAtomic,
  encodeExpired,
  Opcode,
  sleep,
  StepKind,
} from "../protocol/mod.ts";
import { InternalClient } from "./_internal_client.ts";
import type { ClientLink, RouterSession } from "./resp_front_end.ts";

const log = getLogger(["kvndb", "router"]);

/** Options of the sweep. */
export interface ExpirySweeperOptions {
  /** Opens the sweep's session with the router, as a client's. */
  attach(link: ClientLink): RouterSession;
  /** Pause between sweeps that found nothing to do, in ms. */
  interval: number;
  /** Keys deleted by one atomic operation (at most 128). */
  batch: number;
  /** Ends the sweep. */
  signal: AbortSignal;
}

/**
 * Lists keys a ready database has expired, by the router's clock, and
 * deletes them with one atomic operation of SWEEP steps per batch: each
 * deletes its key only if it is still expired at the operation's own time,
 * so a key written again meanwhile is kept. One request at a time, so live
 * traffic is never stalled behind a sweep; full batches follow each other
 * at once, a sweep that finds fewer waits `interval`.
 *
 * @example
 * ```ts ignore
 * const sweeper = new ExpirySweeper({ attach, interval: 250, batch: 128, signal });
 * await sweeper.done;
 * ```
 */
export class ExpirySweeper {
  #options: ExpirySweeperOptions;
  #client: InternalClient;
  /** Keys deleted so far. */
  swept = 0;
  /**
   * The time (ms since the epoch, the router's clock) of the listing of the
   * last round that left nothing behind: every key expired by then has been
   * deleted by a numbered operation. 0 until such a round.
   */
  caughtUpAt = 0;
  /** Resolves once the sweep has stopped. */
  readonly done: Promise<void>;

  /**
   * Starts sweeping.
   *
   * @param options The router's session, the pace, and the signal to stop.
   */
  constructor(options: ExpirySweeperOptions) {
    this.#options = options;
    this.#client = new InternalClient(
      options.attach,
      options.signal,
      "expiry sweep",
    );
    this.done = this.#run();
  }

  async #run(): Promise<void> {
    const { signal, interval, batch } = this.#options;
    let skipped = false;
    try {
      while (await sleep(interval, signal)) {
        try {
          // Full batches follow each other at once, as long as they delete
          // something: keys that cannot be swept must not spin the loop.
          while (!signal.aborted) {
            const listedAt = Date.now();
            const { listed, swept } = await this.#sweepOnce(batch, listedAt);
            if (listed < batch) this.caughtUpAt = listedAt;
            if (listed < batch || swept === 0) break;
          }
          skipped = false;
        } catch (error) {
          // No database ready, a hold, a timeout: the next round tries again,
          // and the log says so once, not four times a second.
          if (!skipped) {
            log.debug("Expiry sweep paused: {reason}", {
              reason: (error as Error).message,
            });
          }
          skipped = true;
        }
      }
    } finally {
      this.#client.close();
    }
  }

  /**
   * One round: list up to `batch` expired keys and delete them. A batch
   * refused as too costly (many large values) is split in halves until each
   * part fits; a single key always does.
   */
  async #sweepOnce(
    batch: number,
    now: number,
  ): Promise<{ listed: number; swept: number }> {
    const listed = await this.#client.request((id) =>
      encodeExpired(id, now, batch)
    );
    if (listed.opcode !== Opcode.KEY_PAGE) return { listed: 0, swept: 0 };
    const { keys } = decodeKeyPage(listed.payload);
    let swept = 0;
    let size = keys.length;
    for (let i = 0; i < keys.length;) {
      const part = keys.slice(i, i + size);
      const answer = await this.#client.request((id) =>
        encodeAtomic(id, {
          acks: AckLevel.DEFAULT,
          flags: 0,
          steps: part.map((key) => ({ kind: StepKind.SWEEP, key })),
        })
      );
      if (answer.opcode !== Opcode.ATOMIC_REPLY) break;
      const reply = decodeAtomicReply(answer.payload);
      if (!reply.committed && part.length > 1) {
        size = Math.ceil(part.length / 2);
        continue;
      }
      for (const result of reply.results) {
        if (result.kind === "integer" && result.value === 1n) swept++;
      }
      i += part.length;
    }
    this.swept += swept;
    return { listed: keys.length, swept };
  }
}
