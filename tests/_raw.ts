// Raw sockets for tests that play a misbehaving peer.

/** Reads whatever the peer sends until it closes, or `timeout` ms; then closes. */
export async function drain(
  conn: Deno.Conn,
  timeout = 3000,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(65536);
  const timer = setTimeout(() => close(conn), timeout);
  try {
    while (true) {
      const count = await conn.read(buffer);
      if (count === null) break;
      chunks.push(buffer.slice(0, count));
    }
  } catch {
    // Closed by the timer, or reset by the peer.
  } finally {
    clearTimeout(timer);
    close(conn);
  }
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/**
 * Connects to `port` on loopback, sends `bytes` (then ends our side when
 * `closeWrite` is set), and returns everything answered until the close.
 */
export async function sendRaw(
  port: number,
  bytes: Uint8Array,
  options: { timeout?: number; closeWrite?: boolean } = {},
): Promise<Uint8Array> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(bytes);
    if (options.closeWrite) await conn.closeWrite();
  } catch {
    // Reset already: what was answered is still read below.
  }
  return await drain(conn, options.timeout);
}

function close(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}
