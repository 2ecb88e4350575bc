// Peer addresses, for protected mode and login throttling.

/** The peer's IP address, or `undefined` for a Unix socket. */
export function peerAddress(addr: Deno.Addr): string | undefined {
  return addr.transport === "tcp" ? addr.hostname : undefined;
}

/** Whether an address or host name means this machine. */
export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host.startsWith("127.") ||
    host.startsWith("::ffff:127.");
}

/**
 * A test hook: a router option under this symbol replaces {@linkcode isLoopback}
 * for peers, so tests can play a peer from another machine on loopback.
 */
export const IS_LOCAL_PEER: unique symbol = Symbol("kvndb.isLocalPeer");
