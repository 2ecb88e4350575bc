// A session of the router's own with the router, for work it does as a
// client would (the expiry sweep, the Deno KV front end): frames in, answers
// out, without a socket.

import {
  decodeFrame,
  encodeOpaque,
  type KvndbError,
  Opcode,
} from "../protocol/mod.ts";
import type { ClientLink, RouterSession } from "./resp_front_end.ts";

/** An answer: its opcode and payload (copied). */
export interface Answer {
  opcode: number;
  payload: Uint8Array;
}

/** Requests into the router as an internal client, answered by promise. */
export class InternalClient {
  #session: RouterSession;
  #waiting = new Map<number, PromiseWithResolvers<Answer>>();
  #streams = new Map<
    number,
    { onFrame: (answer: Answer) => void; onEnd: (error: unknown) => void }
  >();
  #nextId = 1;
  #closed = false;

  /**
   * @param attach Opens the session with the router.
   * @param signal Closes the client: waiting requests fail.
   * @param peer How logs name it.
   */
  constructor(
    attach: (link: ClientLink) => RouterSession,
    signal: AbortSignal,
    peer: string,
  ) {
    const link: ClientLink = {
      peer,
      get isClosed() {
        return signal.aborted;
      },
      send: (bytes) => {
        const decoded = decodeFrame(bytes);
        if (decoded !== undefined) {
          this.#settle(decoded.frame.id, {
            opcode: decoded.frame.opcode,
            payload: decoded.frame.payload.slice(),
          });
        }
        return true;
      },
      answer: (id, opcode, payload) =>
        this.#settle(id, { opcode, payload: payload.slice() }),
      acknowledge: (id) =>
        this.#settle(id, { opcode: Opcode.DONE, payload: new Uint8Array() }),
      sendError: (id, error) => this.#fail(id, error),
      fail: (error) => {
        for (const id of [...this.#waiting.keys()]) this.#fail(id, error);
        return Promise.resolve();
      },
    };
    this.#session = attach(link);
    signal.addEventListener("abort", () => this.close(), { once: true });
  }

  /**
   * Sends the request `encode` makes with a fresh id; resolves with its
   * answer, rejects with the error the router answered.
   */
  request(encode: (id: number) => Uint8Array): Promise<Answer> {
    if (this.#closed) {
      return Promise.reject(new Error("The router is closing"));
    }
    const id = this.#takeId();
    const waiter = Promise.withResolvers<Answer>();
    this.#waiting.set(id, waiter);
    this.#session.submit(decodeFrame(encode(id))!.frame);
    return waiter.promise;
  }

  /** Fails every waiting request and leaves the router. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const error = new Error("The router is closing") as KvndbError;
    for (const id of [...this.#waiting.keys()]) this.#fail(id, error);
    for (const id of [...this.#streams.keys()]) this.#fail(id, error);
    this.#session.detach();
  }

  /**
   * Sends the request `encode` makes (a WATCH) whose answers are many: each
   * goes to `onFrame` until an error ends it (`onEnd`) or `close()` does.
   */
  stream(
    encode: (id: number) => Uint8Array,
    onFrame: (answer: Answer) => void,
    onEnd: (error: unknown) => void,
  ): { close(): void } {
    const id = this.#takeId();
    const close = () => {
      if (this.#streams.delete(id) && !this.#closed) {
        this.#session.submit(
          decodeFrame(encodeOpaque(Opcode.UNWATCH, id))!.frame,
        );
      }
    };
    if (this.#closed) {
      onEnd(new Error("The router is closing"));
      return { close };
    }
    this.#streams.set(id, { onFrame, onEnd });
    this.#session.submit(decodeFrame(encode(id))!.frame);
    return { close };
  }

  /** A fresh request id, wrapping before the top bit. */
  #takeId(): number {
    const id = this.#nextId;
    this.#nextId = id >= 0x7fff_ffff ? 1 : id + 1;
    return id;
  }

  #settle(id: number, answer: Answer): void {
    const stream = this.#streams.get(id);
    if (stream !== undefined) {
      stream.onFrame(answer);
      return;
    }
    const waiter = this.#waiting.get(id);
    if (waiter === undefined) return;
    this.#waiting.delete(id);
    waiter.resolve(answer);
  }

  #fail(id: number, error: KvndbError): void {
    const stream = this.#streams.get(id);
    if (stream !== undefined) {
      this.#streams.delete(id);
      stream.onEnd(error);
      return;
    }
    const waiter = this.#waiting.get(id);
    if (waiter === undefined) return;
    this.#waiting.delete(id);
    waiter.reject(error);
  }
}
