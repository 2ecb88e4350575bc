// A port a test can close and listen on again.
//
// A port the OS picks (port 0) comes from the ephemeral range, the same range
// every outgoing connection takes its local port from. Tests run in parallel:
// between a router's close and its restart on the same port, another test's
// listener or connection may take that port, and a database reconnecting to
// 127.0.0.1:P may even be handed P as its own port (a TCP self-connect). Ports
// below the ephemeral range are only ever taken by an explicit bind.

const FLOOR = 20_000;

function ephemeralLow(): number {
  try {
    const range = Deno.readTextFileSync(
      "/proc/sys/net/ipv4/ip_local_port_range",
    );
    const low = Number(range.trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > FLOOR + 1000) return low;
  } catch {
    // Not Linux, or /proc not mounted: the IANA range starts at 49152.
  }
  return 32_768;
}

/**
 * A free loopback port below the ephemeral range, for a test that restarts a
 * server on the same port.
 */
export function restartablePort(hostname = "127.0.0.1"): number {
  const high = ephemeralLow();
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = FLOOR + Math.floor(Math.random() * (high - FLOOR));
    try {
      Deno.listen({ hostname, port }).close();
      return port;
    } catch (error) {
      if (!(error instanceof Deno.errors.AddrInUse)) throw error;
    }
  }
  throw new Error(`no free port between ${FLOOR} and ${high} after 200 tries`);
}
