// A Deno KV store holding data KVNDB did not write (a damaged file, or
// another program writing to it) fails with a DamagedDataError that says how
// to get out, never with a wrong answer.

import assert from "node:assert/strict";
import { DamagedDataError, WriteOp } from "../protocol/mod.ts";
import { encodeKey } from "./_kv_key.ts";
import { KvDatabase } from "./kv_database.ts";

/** A database on a temporary file, with a second handle to damage it. */
async function damaged(
  damage: (kv: Deno.Kv) => Promise<unknown>,
): Promise<KvDatabase & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "kvndb_damage_" });
  const path = `${dir}/kvndb.sqlite3`;
  const db = await KvDatabase.open(path);
  await db.apply([{
    seq: 1,
    op: WriteOp.SET,
    key: new Uint8Array([97]),
    value: new Uint8Array(100_000).fill(7),
  }]);
  const kv = await Deno.openKv(path);
  await damage(kv);
  kv.close();
  const close = db.close.bind(db);
  return Object.assign(db, {
    async [Symbol.asyncDispose]() {
      await close();
      await Deno.remove(dir, { recursive: true });
    },
  });
}

const a = new Uint8Array([97]);
const everything = {
  prefix: new Uint8Array(0),
  after: new Uint8Array(0),
  limit: 10,
  maxBytes: 1 << 20,
};

function isDamage(error: unknown): boolean {
  return error instanceof DamagedDataError &&
    error.message.includes("--reset");
}

Deno.test("kv damage: an entry that is not bytes", async () => {
  await using db = await damaged((kv) => kv.set(["d", encodeKey(a)], "text"));
  await assert.rejects(() => db.get(a), isDamage);
});

Deno.test("kv damage: an entry of an unknown kind", async () => {
  await using db = await damaged((kv) =>
    kv.set(["d", encodeKey(a)], new Uint8Array([99, 0, 0, 0, 0, 0, 0, 0, 1]))
  );
  await assert.rejects(() => db.get(a), isDamage);
});

Deno.test("kv damage: a chunk of a large value gone", async () => {
  await using db = await damaged((kv) => kv.delete(["c", encodeKey(a), 1]));
  await assert.rejects(() => db.get(a), isDamage);
});

Deno.test("kv damage: a key with parts KVNDB never writes", async () => {
  await using db = await damaged((kv) =>
    kv.set(["d", "not", "ours"], new Uint8Array(9))
  );
  await assert.rejects(() => db.keys(everything), isDamage);
});
