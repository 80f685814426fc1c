// The reconnecting client's messages between send() and the settling of its promise: the bound on how many
// may be unsettled, the queue of those not yet written to a connection, and the errors a send can end with.
import { SwitchyardError } from '../errors.js';

/** The stable codes a SendError carries. */
export const SendErrorCode = {
  /** send() refused the message: maxQueuedMessages or maxQueuedBytes would be exceeded. Never written. */
  QueueFull: 'ERR_QUEUE_FULL',
  /** close() was called before the message could be written (or, if written, confirmed). */
  ClientClosed: 'ERR_CLIENT_CLOSED',
  /** The client stopped reconnecting (maxAttempts, or a failure shouldReconnect declined) before writing it. */
  GaveUp: 'ERR_GAVE_UP',
  /** Written to a connection that then ended abnormally before the peer confirmed it: it may or may not have arrived. */
  Unconfirmed: 'ERR_UNCONFIRMED',
  /** The open connection refused the message (its slow-consumer policy dropped it). Never written. */
  Refused: 'ERR_SEND_REFUSED',
} as const;
export type SendErrorCode = (typeof SendErrorCode)[keyof typeof SendErrorCode];

/** Why a send() promise rejected. `written` is false when the peer certainly never saw the message. */
export class SendError extends SwitchyardError {
  declare readonly code: SendErrorCode;
  /** The message's bytes were written to a connection at least once, so the peer may have received it. */
  readonly written: boolean;
  constructor(code: SendErrorCode, message: string, written: boolean, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'SendError';
    this.written = written;
  }
}

export interface OutgoingMessage {
  readonly data: string | Uint8Array;
  readonly isBinary: boolean;
  readonly byteLength: number;
  /** Written to some connection at least once. */
  written: boolean;
  readonly resolve: () => void;
  readonly reject: (error: SendError) => void;
}

const ignore = (): void => {};

export class Outbox {
  readonly maxMessages: number;
  readonly maxBytes: number;
  /** Messages whose promise has not settled (waiting, or written and not yet confirmed), and their bytes. */
  #unsettled = 0;
  #unsettledBytes = 0;
  // Waiting messages in order: a queue read from #head, compacted as it empties.
  #waiting: OutgoingMessage[] = [];
  #head = 0;

  constructor(maxMessages: number, maxBytes: number) {
    this.maxMessages = maxMessages;
    this.maxBytes = maxBytes;
  }

  get unsettledMessages(): number {
    return this.#unsettled;
  }

  get unsettledBytes(): number {
    return this.#unsettledBytes;
  }

  get waitingMessages(): number {
    return this.#waiting.length - this.#head;
  }

  /**
   * Accepts a message into the waiting queue, or returns the rejected promise of one that does not fit. The
   * returned promise is marked handled: a caller that never awaits it cannot crash the process with an
   * unhandled rejection (the client's events report what went wrong).
   */
  accept(data: string | Uint8Array, isBinary: boolean): Promise<void> {
    const byteLength = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
    if (this.#unsettled + 1 > this.maxMessages || this.#unsettledBytes + byteLength > this.maxBytes) {
      const what = this.#unsettled + 1 > this.maxMessages
        ? `${this.#unsettled} messages are already waiting (maxQueuedMessages ${this.maxMessages})`
        : `${byteLength} more bytes would pass maxQueuedBytes (${this.#unsettledBytes} of ${this.maxBytes} in use)`;
      return this.refuse(new SendError(SendErrorCode.QueueFull, `send queue full: ${what}`, false));
    }
    let resolve!: () => void;
    let reject!: (error: SendError) => void;
    const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
    promise.catch(ignore);
    this.#unsettled++;
    this.#unsettledBytes += byteLength;
    this.#waiting.push({ data, isBinary, byteLength, written: false, resolve, reject });
    return promise;
  }

  /** A promise already rejected with `error`, marked handled like accept()'s. */
  refuse(error: SendError): Promise<void> {
    const promise = Promise.reject(error);
    promise.catch(ignore);
    return promise;
  }

  peek(): OutgoingMessage | undefined {
    return this.#waiting[this.#head];
  }

  shift(): OutgoingMessage | undefined {
    const message = this.#waiting[this.#head];
    if (message === undefined) return undefined;
    this.#waiting[this.#head++] = undefined as never;
    if (this.#head === this.#waiting.length) {
      this.#waiting = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#waiting.length) {
      this.#waiting = this.#waiting.slice(this.#head);
      this.#head = 0;
    }
    return message;
  }

  /** Puts written-but-unconfirmed messages back in front of the queue, in their order (at-least-once). */
  requeueFront(messages: readonly OutgoingMessage[]): void {
    if (messages.length === 0) return;
    this.#waiting = [...messages, ...this.#waiting.slice(this.#head)];
    this.#head = 0;
  }

  resolve(message: OutgoingMessage): void {
    this.#settled(message);
    message.resolve();
  }

  reject(message: OutgoingMessage, error: SendError): void {
    this.#settled(message);
    message.reject(error);
  }

  /** Rejects every waiting message; `errorFor` makes each one's error (it may depend on `written`). */
  rejectWaiting(errorFor: (message: OutgoingMessage) => SendError): void {
    for (let message = this.shift(); message !== undefined; message = this.shift()) this.reject(message, errorFor(message));
  }

  #settled(message: OutgoingMessage): void {
    this.#unsettled--;
    this.#unsettledBytes -= message.byteLength;
  }
}
