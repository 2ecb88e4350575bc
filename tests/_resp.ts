// Raw RESP for tests: commands encoded as Redis clients send them, and one
// exchange of a whole pipeline on a connection.

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A command as a RESP array of bulk strings. */
export function command(...args: string[]): string {
  return `*${args.length}\r\n` +
    args.map((a) => `$${encoder.encode(a).length}\r\n${a}\r\n`).join("");
}

/**
 * Sends `text` on `target` (a connection, or a loopback port to connect
 * to), closes the sending side, and returns everything answered.
 */
export async function exchange(
  target: number | Deno.Conn,
  text: string,
): Promise<string> {
  const conn = typeof target === "number"
    ? await Deno.connect({ hostname: "127.0.0.1", port: target })
    : target;
  await conn.write(encoder.encode(text));
  await conn.closeWrite();
  const chunks: string[] = [];
  const buffer = new Uint8Array(65536);
  while (true) {
    const count = await conn.read(buffer);
    if (count === null) break;
    chunks.push(decoder.decode(buffer.subarray(0, count)));
  }
  conn.close();
  return chunks.join("");
}
