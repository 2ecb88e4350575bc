/**
 * Database nodes and their storage backends.
 *
 * @example A memory database node joining a router
 * ```ts ignore
 * import { DatabaseNode, MemoryDatabase } from "./mod.ts";
 * await using node = DatabaseNode.start({ database: new MemoryDatabase(), port: 54565 });
 * await node.ready();
 * ```
 *
 * @module
 */

export {
  DatabaseNode,
  type DatabaseNodeOptions,
  type NodeStatus,
} from "./node.ts";
export { MemoryDatabase } from "./memory_database.ts";
export { KvDatabase } from "./kv_database.ts";
export type {
  Database,
  DatabaseState,
  KeysQuery,
  RangeQuery,
  SnapshotOptions,
  StoredEntry,
} from "./types.ts";
