/**
 * What the client library's calls take: keys and values, and the options of
 * each kind of call.
 *
 * @module
 */

import type { AckName, Endpoint, TransportType } from "../protocol/mod.ts";

const encoder = new TextEncoder();

/** A key or value: text (sent as UTF-8) or raw bytes. */
export type Bytes = string | Uint8Array;

/** Options for {@linkcode connect}. */
export interface ConnectOptions {
  /** The router's host. Defaults to `127.0.0.1`. */
  hostname?: string;
  /** The router's port. Defaults to 54565. */
  port?: number;
  /** The transport. Defaults to `tcp`. */
  transport?: TransportType;
  /** The socket path, for `unix`. */
  path?: string;
  /** A PEM CA certificate file to trust, for `tls` with a self-signed certificate. */
  caFile?: string;
  /** A full endpoint; overrides hostname, port, transport, path and caFile. */
  endpoint?: Endpoint;
  /** The router's password, if it has one. */
  password?: string;
  /** How long each request may take, in milliseconds. Defaults to 10 s. */
  timeout?: number;
  /** Aborts connecting. */
  signal?: AbortSignal;
}

/** Options every request takes. */
export interface RequestOptions {
  /** Aborts waiting for the answer (the request may still take effect). */
  signal?: AbortSignal;
  /** Overrides the client's timeout for this request, in milliseconds. */
  timeout?: number;
}

/** Options for writes. */
export interface WriteOptions extends RequestOptions {
  /** How many databases must apply the write first; the router's `--acks` if absent. */
  acks?: AckName;
}

/** Options for {@linkcode Client.watch}. */
export interface WatchOptions {
  /** Watch every key that starts with this (the default: every key). */
  prefix?: Bytes;
  /** Watch exactly these keys (up to 64) instead of a prefix. */
  keys?: Bytes[];
  /** Resume after this version (a batch's `upTo`); absent: from now on. */
  from?: number;
  /** Ends the watch. */
  signal?: AbortSignal;
}

/** Options of a set: its expiry (`Client.set`, `AtomicOperation.set`). */
export interface SetOptions {
  /**
   * Milliseconds from the write (by the router's clock) after which the key
   * expires: no read returns it from then on, and the router deletes it.
   * Absent, the key does not expire (and loses any expiry it had).
   */
  expireIn?: number;
  /** The same as an absolute time, in ms since the epoch (not with `expireIn`). */
  expireAt?: number;
}

/** Options for {@linkcode Client.set}. */
export interface ClientSetOptions extends WriteOptions, SetOptions {}

/** Options for {@linkcode Client.keys}. */
export interface KeysOptions extends RequestOptions {
  /** Only keys that start with this. */
  prefix?: Bytes;
  /** Keys per page. Defaults to the router's default (1000). */
  pageSize?: number;
}

/** Options for {@linkcode Client.entries}. */
export interface EntriesOptions extends RequestOptions {
  /** Only keys that start with this (unless `start` or `end` is given). */
  prefix?: Bytes;
  /** The first key, inclusive. */
  start?: Bytes;
  /** The key after the last, exclusive; empty: no end. */
  end?: Bytes;
  /** Entries a page, at most 1,000 (the default). */
  pageSize?: number;
}

/** One page of keys, as bytes. */
export interface KeyPageResult {
  /** The keys, in byte order. */
  keys: Uint8Array[];
  /** Where the next page starts, or `null` after the last page. */
  cursor: Uint8Array | null;
}

/** A key or value as bytes: text is sent as UTF-8. */
export function toBytes(value: Bytes): Uint8Array {
  return typeof value === "string" ? encoder.encode(value) : value;
}
