// What the router's HTTP ports (the status and metrics port, the KV Connect
// port) share: their plain-text answers and their password check.

/**
 * Compares two strings in time that depends on their lengths only (tokens,
 * passwords).
 *
 * @example
 * ```ts
 * import { sameText } from "./_http_auth.ts";
 * console.log(sameText("a", "a")); // true
 * ```
 */
export function sameText(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) {
    difference |= a.charCodeAt(i) ^ b.charCodeAt(i);
  }
  return difference === 0;
}

/** A plain-text answer, with a line end. */
export function text(
  status: number,
  body: string,
  headers?: HeadersInit,
): Response {
  return new Response(body + "\n", {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", ...headers },
  });
}

/** The bearer token a request carries (`Authorization: Bearer …`). */
export function bearerOf(request: Request): string | undefined {
  const [scheme, value] = authorizationOf(request);
  return scheme === "bearer" ? value : undefined;
}

/** The password a request carries: a bearer token, or by basic authentication. */
function passwordOf(request: Request): string | undefined {
  const [scheme, value] = authorizationOf(request);
  if (scheme === "bearer") return value;
  if (scheme !== "basic" || value === undefined) return undefined;
  try {
    const decoded = new TextDecoder().decode(
      Uint8Array.from(atob(value), (c) => c.charCodeAt(0)),
    );
    const colon = decoded.indexOf(":");
    return colon < 0 ? undefined : decoded.slice(colon + 1);
  } catch {
    return undefined;
  }
}

/** The Authorization header's scheme (lower case) and value. */
function authorizationOf(
  request: Request,
): [string | undefined, string | undefined] {
  const header = request.headers.get("authorization") ?? "";
  const [scheme, value] = header.split(" ", 2);
  return [scheme?.toLowerCase(), value];
}

/** What a password check needs of the router. */
export interface PasswordHost {
  /** Whether the router has a password. */
  readonly passwordRequired: boolean;
  /** Checks a password, with the router's throttling for `address`. */
  checkPassword(password: string, address: string): Promise<boolean>;
}

/**
 * A port's password check. It remembers the last Authorization header that
 * carried the right password, so that a client's every request does not
 * cost a password check (PBKDF2, throttled).
 */
export class PasswordCheck {
  #accepted?: string;
  #bearerOnly: boolean;

  /**
   * @param options `bearerOnly`: take the password as a bearer token only
   *   (KV Connect's access token), not by basic authentication.
   */
  constructor(options: { bearerOnly?: boolean } = {}) {
    this.#bearerOnly = options.bearerOnly ?? false;
  }

  /** Whether `request` may pass: no password is needed, or it carries it. */
  async passes(
    request: Request,
    address: string,
    host: PasswordHost,
  ): Promise<boolean> {
    if (!host.passwordRequired) return true;
    const authorization = request.headers.get("authorization") ?? "";
    if (
      this.#accepted !== undefined && sameText(authorization, this.#accepted)
    ) return true;
    const password = this.#bearerOnly ? bearerOf(request) : passwordOf(request);
    if (
      password === undefined || !await host.checkPassword(password, address)
    ) return false;
    this.#accepted = authorization;
    return true;
  }
}
