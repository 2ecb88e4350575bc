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

export {
  type Bytes,
  Client,
  connect,
  type ConnectOptions,
  type KeyPageResult,
  type KeysOptions,
  type RequestOptions,
  type WriteOptions,
} from "./client.ts";
export {
  AuthError,
  ConnectionClosedError,
  type DatabaseStats,
  ErrorCode,
  KvndbError,
  type MemberStats,
  type RouterStats,
  TimeoutError,
  TooLargeError,
  VersionMismatchError,
} from "../protocol/mod.ts";
