/**
 * The KVNDB client library.
 *
 * @example
 * ```ts ignore
 * import { connect } from "./mod.ts";
 * await using client = await connect({ hostname: "127.0.0.1", port: 54565 });
 * await client.set("a", "1");
 * console.log(await client.get("a")); // "1"
 * ```
 *
 * @module
 */

export { Client, connect } from "./client.ts";
export {
  type Bytes,
  type ClientSetOptions,
  type ConnectOptions,
  type EntriesOptions,
  type KeyPageResult,
  type KeysOptions,
  type RequestOptions,
  type SetOptions,
  type WatchOptions,
  type WriteOptions,
} from "./options.ts";
export {
  type AtomicCheck,
  type AtomicCommitted,
  type AtomicFailed,
  AtomicOperation,
} from "./atomic.ts";
export { WatchStream } from "./watch.ts";
export {
  AuthError,
  type Change,
  type ChangeBatch,
  ConnectionClosedError,
  type DatabaseStats,
  ErrorCode,
  InvalidArgumentError,
  KvndbError,
  type MemberStats,
  type RangeEntry,
  type RouterStats,
  type StepResult,
  TimeoutError,
  TooLargeError,
  VersionMismatchError,
} from "../protocol/mod.ts";
