// sorted-btree ships CommonJS whose default export is nested one level deeper
// under Deno's npm interop; this file hides that and gives it a type.
import BTreeModule from "sorted-btree";

/** The part of sorted-btree's BTree that KVNDB uses. */
export interface SortedMap<K, V> {
  readonly size: number;
  get(key: K): V | undefined;
  set(key: K, value: V, overwrite?: boolean): boolean;
  delete(key: K): boolean;
  clear(): void;
  entries(lowestKey?: K): IterableIterator<[K, V]>;
  nextHigherKey(key: K): K | undefined;
}

// deno-lint-ignore no-explicit-any
const BTree: new <K, V>() => SortedMap<K, V> = (BTreeModule as any).default ??
  BTreeModule;

/** Creates an empty sorted map ordered by the keys' natural order. */
export function createSortedMap<K, V>(): SortedMap<K, V> {
  return new BTree<K, V>();
}
