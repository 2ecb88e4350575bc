import assert from "node:assert/strict";
import { DamagedDataError } from "../protocol/mod.ts";
import { Router } from "./router.ts";
import { StateFile, StateFileInUseError } from "./state_file.ts";

Deno.test("a second router on a state file in use is refused, naming the file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/router.json`;
    const first = await Router.start({
      hostname: "127.0.0.1",
      port: 0,
      stateFile: path,
    });
    await assert.rejects(
      () => Router.start({ hostname: "127.0.0.1", port: 0, stateFile: path }),
      (error: unknown) =>
        error instanceof StateFileInUseError && error.path === path &&
        error.message.includes(path) && error.message.includes("--state"),
    );
    await first.close();
    // Closing the router released the lock.
    const second = await Router.start({
      hostname: "127.0.0.1",
      port: 0,
      stateFile: path,
    });
    await second.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a router that cannot listen releases its state file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/router.json`;
    using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    await assert.rejects(
      () =>
        Router.start({
          hostname: "127.0.0.1",
          port: taken.addr.port,
          stateFile: path,
        }),
      Deno.errors.AddrInUse,
    );
    using file = StateFile.open(path);
    assert.equal(file.load(), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a damaged state file is a DamagedDataError that names the file and the way out", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/router.json`;
    await Deno.writeTextFile(path, '{"clusterId": "zz", "members": [');
    using file = StateFile.open(path);
    assert.throws(
      () => file.load(),
      (error: unknown) =>
        error instanceof DamagedDataError && error.message.includes(path) &&
        error.message.includes("move it away"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
