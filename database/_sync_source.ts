// A database node as the source of a full sync: its snapshot streamed to the
// router in chunks of bounded size, with at most two unacknowledged.

import { getLogger } from "@logtape/logtape";
import {
  encodeSyncChunk,
  encodeU64,
  type FramedConnection,
  MAX_FRAME_SIZE,
  MAX_KEY_SIZE,
  MAX_VALUE_SIZE,
  Opcode,
  type SyncEntry,
} from "../protocol/mod.ts";
import type { Database } from "./types.ts";

const log = getLogger(["kvndb", "database"]);

/** Bytes an entry takes in a SYNC_CHUNK besides its key and value. */
const SYNC_ENTRY_OVERHEAD = 2 + 8 + 4;

/** The most entry bytes in one SYNC_CHUNK: a maximal entry still fits a frame. */
const MAX_SYNC_CHUNK_BYTES = MAX_FRAME_SIZE - MAX_KEY_SIZE - MAX_VALUE_SIZE -
  64;

/** A sync this node is the source of: acknowledgements, and who waits for one. */
export interface SyncSource {
  acks: number;
  wake?: () => void;
}

/**
 * Streams `db`'s snapshot for sync `id`, then SYNC_END with the count of
 * keys; stops early, sending nothing more, once `active()` is false (the
 * router cancelled, or the connection closed).
 */
export async function streamSnapshot(
  conn: FramedConnection,
  db: Database,
  id: number,
  options: { source: SyncSource; active: () => boolean; chunkBytes: number },
): Promise<void> {
  const { source, active } = options;
  let sent = 0;
  let keys = 0;
  const chunkBytes = Math.min(options.chunkBytes, MAX_SYNC_CHUNK_BYTES);
  const send = async (entries: SyncEntry[]) => {
    // At most two chunks unacknowledged: memory stays flat on both sides.
    while (active() && sent - source.acks >= 2) {
      await new Promise<void>((resolve) => source.wake = resolve);
    }
    if (!active()) return;
    conn.send(encodeSyncChunk(id, entries));
    sent++;
    keys += entries.length;
  };
  // Re-chunk by encoded size, whatever the backend's chunks are, so that no
  // frame exceeds the frame limit however small the entries.
  let pending: SyncEntry[] = [];
  let pendingBytes = 0;
  for await (const chunk of db.snapshot({ chunkBytes })) {
    for (const entry of chunk) {
      const size = SYNC_ENTRY_OVERHEAD + entry.key.length + entry.value.length;
      if (pending.length > 0 && pendingBytes + size > chunkBytes) {
        await send(pending);
        pending = [];
        pendingBytes = 0;
      }
      if (!active()) return;
      pending.push(entry);
      pendingBytes += size;
    }
  }
  if (pending.length > 0) await send(pending);
  if (!active()) return;
  conn.send(encodeU64(Opcode.SYNC_END, id, keys));
  log.info("Sent {keys} keys for sync {id}", { keys, id });
}
