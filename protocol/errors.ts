/**
 * The error hierarchy. Every error KVNDB raises is a {@linkcode KvndbError}
 * with a wire {@linkcode ErrorCode}, so that it can cross the wire as an
 * ERROR frame and come back as the same class on the other side.
 *
 * @module
 */

import { ErrorCode, errorCodeName } from "./opcodes.ts";

/**
 * The base class of every KVNDB error. Carries a wire error code.
 *
 * @example
 * ```ts
 * import { KvndbError } from "./errors.ts";
 * import { ErrorCode } from "./opcodes.ts";
 * const error = new KvndbError(ErrorCode.TIMEOUT, "Request timed out");
 * console.log(error.code); // 8
 * ```
 */
export class KvndbError extends Error {
  /** The wire error code. */
  readonly code: ErrorCode;

  /**
   * Creates a KvndbError.
   *
   * @param code The wire error code.
   * @param message A message that starts with a capital and ends without a period.
   * @param options The cause, if any.
   */
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "KvndbError";
    this.code = code;
  }
}

/**
 * A peer broke the protocol: a malformed, oversized or unexpected frame.
 *
 * @example
 * ```ts
 * import { ProtocolError } from "./errors.ts";
 * const error = new ProtocolError("Frame of 9 bytes is shorter than its header");
 * console.log(error.name); // "ProtocolError"
 * ```
 */
export class ProtocolError extends KvndbError {
  /**
   * Creates a ProtocolError.
   *
   * @param message What was wrong with the bytes.
   * @param options The cause, if any.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.PROTOCOL, message, options);
    this.name = "ProtocolError";
  }
}

/**
 * A key, value or frame is over its documented limit.
 *
 * @example
 * ```ts
 * import { TooLargeError } from "./errors.ts";
 * const error = new TooLargeError("Value of 600000 bytes exceeds the maximum value size (524288 bytes)");
 * console.log(error.name); // "TooLargeError"
 * ```
 */
export class TooLargeError extends KvndbError {
  /**
   * Creates a TooLargeError.
   *
   * @param message Names the limit that was exceeded.
   * @param options The cause, if any.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.TOO_LARGE, message, options);
    this.name = "TooLargeError";
  }
}

/**
 * A request is malformed in a way the caller can fix, such as an empty key.
 *
 * @example
 * ```ts
 * import { InvalidArgumentError } from "./errors.ts";
 * const error = new InvalidArgumentError("Key must not be empty");
 * console.log(error.name); // "InvalidArgumentError"
 * ```
 */
export class InvalidArgumentError extends KvndbError {
  /**
   * Creates a InvalidArgumentError.
   *
   * @param message What is wrong.
   * @param options The cause, if any.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.INVALID_ARGUMENT, message, options);
    this.name = "InvalidArgumentError";
  }
}

/**
 * The two sides speak different protocol versions.
 *
 * @example
 * ```ts
 * import { VersionMismatchError } from "./errors.ts";
 * const error = new VersionMismatchError("Protocol version mismatch: router speaks 1, client speaks 2");
 * console.log(error.name); // "VersionMismatchError"
 * ```
 */
export class VersionMismatchError extends KvndbError {
  /**
   * Creates a VersionMismatchError.
   *
   * @param message Names both versions.
   * @param options The cause, if any.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.VERSION_MISMATCH, message, options);
    this.name = "VersionMismatchError";
  }
}

/**
 * Authentication failed or is required.
 *
 * @example
 * ```ts
 * import { AuthError } from "./errors.ts";
 * const error = new AuthError("Authentication failed");
 * console.log(error.name); // "AuthError"
 * ```
 */
export class AuthError extends KvndbError {
  /**
   * Creates a AuthError.
   *
   * @param message What failed.
   * @param options The cause, and the code (`AUTH_FAILED` unless given).
   */
  constructor(
    message: string,
    options?: ErrorOptions & { code?: ErrorCode },
  ) {
    super(options?.code ?? ErrorCode.AUTH_FAILED, message, options);
    this.name = "AuthError";
  }
}

/**
 * The connection closed, or was closed, before an answer came.
 *
 * @example
 * ```ts
 * import { ConnectionClosedError } from "./errors.ts";
 * const error = new ConnectionClosedError("Connection closed");
 * console.log(error.name); // "ConnectionClosedError"
 * ```
 */
export class ConnectionClosedError extends KvndbError {
  /**
   * Creates a ConnectionClosedError.
   *
   * @param message Why it closed.
   * @param options The cause, if any.
   */
  constructor(message = "Connection closed", options?: ErrorOptions) {
    super(ErrorCode.CLOSED, message, options);
    this.name = "ConnectionClosedError";
  }
}

/**
 * A request did not get its answer in time.
 *
 * @example
 * ```ts
 * import { TimeoutError } from "./errors.ts";
 * const error = new TimeoutError("Request timed out after 5000 ms");
 * console.log(error.name); // "TimeoutError"
 * ```
 */
export class TimeoutError extends KvndbError {
  /**
   * Creates a TimeoutError.
   *
   * @param message How long was waited.
   * @param options The cause, if any.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.TIMEOUT, message, options);
    this.name = "TimeoutError";
  }
}

/**
 * Stored data is not what KVNDB wrote there: a damaged file, or a store that
 * something else wrote to. The message says which data, and how to get out.
 *
 * @example
 * ```ts
 * import { DamagedDataError } from "./errors.ts";
 * const error = new DamagedDataError("Deno KV entry [\"d\"] is not KVNDB data");
 * console.log(error.name, error.code); // "DamagedDataError" 1
 * ```
 */
export class DamagedDataError extends KvndbError {
  /**
   * Creates a DamagedDataError.
   *
   * @param message What is damaged, and what to do about it.
   * @param options The cause, if any.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.INTERNAL, message, options);
    this.name = "DamagedDataError";
  }
}

/**
 * Builds the error class that matches a wire error code, for an ERROR frame
 * that arrived from a peer.
 *
 * @param code The wire error code.
 * @param message The peer's message.
 * @returns An error of the class that matches the code.
 * @example
 * ```ts
 * import { errorFromCode } from "./errors.ts";
 * const error = errorFromCode(8, "Request timed out");
 * console.log(error.name); // "TimeoutError"
 * ```
 */
export function errorFromCode(code: number, message: string): KvndbError {
  switch (code) {
    case ErrorCode.PROTOCOL:
      return new ProtocolError(message);
    case ErrorCode.TOO_LARGE:
      return new TooLargeError(message);
    case ErrorCode.INVALID_ARGUMENT:
      return new InvalidArgumentError(message);
    case ErrorCode.VERSION_MISMATCH:
      return new VersionMismatchError(message);
    case ErrorCode.AUTH_FAILED:
    case ErrorCode.AUTH_REQUIRED:
      return new AuthError(message, { code });
    case ErrorCode.TIMEOUT:
      return new TimeoutError(message);
    case ErrorCode.CLOSED:
      return new ConnectionClosedError(message);
    default: {
      const known = errorCodeName(code) !== "UNKNOWN";
      return new KvndbError(
        known ? code as ErrorCode : ErrorCode.INTERNAL,
        message,
      );
    }
  }
}

/**
 * Turns anything thrown into a {@linkcode KvndbError} fit to cross the wire.
 * Unknown errors become `INTERNAL` with a generic message, so that internals
 * do not leak to peers; the original stays as the cause, for the log.
 *
 * @param error Anything that was thrown.
 * @returns A KVNDB error.
 * @example
 * ```ts
 * import { toKvndbError } from "./errors.ts";
 * console.log(toKvndbError(new TypeError("x")).code); // 1
 * ```
 */
export function toKvndbError(error: unknown): KvndbError {
  if (error instanceof KvndbError) return error;
  return new KvndbError(ErrorCode.INTERNAL, "Internal error", {
    cause: error,
  });
}

/**
 * Tells whether an error means the connection is gone, the way Deno reports
 * it, so that closing paths can ignore exactly that and nothing else.
 *
 * @param error Anything that was thrown.
 * @returns `true` for a closed or reset connection.
 * @example
 * ```ts
 * import { isConnectionGone } from "./errors.ts";
 * console.log(isConnectionGone(new Deno.errors.BadResource())); // true
 * ```
 */
export function isConnectionGone(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.NotConnected ||
    error instanceof Deno.errors.Interrupted ||
    error instanceof ConnectionClosedError;
}
