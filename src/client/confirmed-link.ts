// One connection of the reconnecting client: writes waiting messages in order while the connection takes
// them, asks the peer to confirm them with a ping behind them (RFC 6455 §5.5.2), and settles whatever is
// still unconfirmed when the connection ends.
import { ReadyState } from '../protocol/constants.js';
import type { WebSocket } from '../transport/websocket.js';
import { SendError, SendErrorCode, type Outbox, type OutgoingMessage } from './outbox.js';

const CONFIRM_PREFIX = 'switchyard-confirm:';
const CONFIRM_PREFIX_BYTES = Buffer.from(CONFIRM_PREFIX);
/** How often a compressed connection checks whether its confirmation ping may go out. */
const DEFLATE_PING_POLL_MS = 2;

export class ConfirmedLink<Data> {
  readonly ws: WebSocket<Data>;
  /** The onOpen hook finished: waiting messages may be written. */
  ready = false;
  readyAtMs = 0;
  /** Why the onOpen hook failed, reported with the close it caused. */
  hookError: Error | undefined;
  readonly #outbox: Outbox;
  readonly #confirmTimeoutMs: number;
  /** permessage-deflate: compressed messages wait for zlib, where a ping could overtake them. */
  readonly #deflate: boolean;
  /** send() reported backpressure: write again on drain. */
  #blocked = false;
  #ended = false;
  /** Written and not yet confirmed, in order; #inFlight[0] is the message numbered #confirmed on this link. */
  #inFlight: OutgoingMessage[] = [];
  #written = 0;
  #confirmed = 0;
  /** The outstanding confirmation ping: its pong confirms the first `upTo` messages written. */
  #ping: { seq: number; upTo: number } | undefined;
  #nextSeq = 1;
  /** Compressed connection: writing waits until a confirmation ping can go out behind everything sent. */
  #pingWanted = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(ws: WebSocket<Data>, outbox: Outbox, confirmTimeoutMs: number) {
    this.ws = ws;
    this.#outbox = outbox;
    this.#confirmTimeoutMs = confirmTimeoutMs;
    this.#deflate = ws.extensions !== '';
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Writes waiting messages if the connection may take them now. */
  pump(): void {
    if (this.ready && !this.#ended && !this.#blocked && !this.#pingWanted) this.write(false);
  }

  /** The connection's buffer drained after backpressure. */
  drained(): void {
    this.#blocked = false;
    this.pump();
  }

  /**
   * Writes waiting messages in order while the connection takes them. `force` (closing) ignores
   * backpressure and sends no confirmation ping: the close handshake confirms instead.
   */
  write(force: boolean): void {
    const ws = this.ws;
    const outbox = this.#outbox;
    let wrote = false;
    for (let message = outbox.peek(); message !== undefined; message = outbox.peek()) {
      // Once the peer's close frame arrived nothing more can be sent here: the message waits for the next connection.
      if (ws.readyState !== ReadyState.Open) break;
      // send() returns false both for "not queued" and for "queued, over the backpressure limit"; the
      // message counter tells them apart.
      const countBefore = ws.messagesOut;
      let belowLimit: boolean;
      try {
        belowLimit = ws.send(message.data, message.isBinary);
      } catch (error) {
        outbox.shift();
        outbox.reject(message, new SendError(SendErrorCode.Refused, `the connection refused the message: ${(error as Error)?.message ?? String(error)}`, message.written, { cause: error }));
        continue;
      }
      if (ws.messagesOut === countBefore) {
        if (ws.readyState !== ReadyState.Open) break;
        outbox.shift();
        outbox.reject(message, new SendError(SendErrorCode.Refused, `the connection refused a ${message.byteLength}-byte message (over maxBackpressureBytes)`, message.written));
        continue;
      }
      outbox.shift();
      message.written = true;
      this.#inFlight.push(message);
      this.#written++;
      wrote = true;
      if (!belowLimit) {
        this.#blocked = true;
        if (!force) break;
      }
    }
    if (wrote && !force) this.#confirm();
  }

  /**
   * Asks the peer to confirm what was written: a ping behind the messages. RFC 6455 §5.5.2 has the peer
   * answer it with a pong, which it sends only after reading every frame before the ping.
   */
  #confirm(): void {
    if (this.#ping !== undefined || this.#inFlight.length === 0 || this.#ended) return;
    const ws = this.ws;
    if (this.#deflate && ws.bufferedAmount > 0) {
      // Compressed messages may still wait for zlib, and a ping queued now would overtake them: hold further
      // writes until everything accepted so far has left, then ping.
      this.#pingWanted = true;
      this.#timer ??= setTimeout(() => {
        this.#timer = undefined;
        this.#confirm();
      }, DEFLATE_PING_POLL_MS).unref();
      return;
    }
    const seq = this.#nextSeq++;
    if (!ws.ping(CONFIRM_PREFIX + seq)) return; // closing: how the close ends settles them
    this.#ping = { seq, upTo: this.#written };
    if (this.#confirmTimeoutMs > 0) {
      this.#clearTimer();
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        // No answer: the connection is dead. Its messages end as unconfirmed (or are sent again).
        this.ws.terminate();
      }, this.#confirmTimeoutMs).unref();
    }
    if (this.#pingWanted) {
      this.#pingWanted = false;
      this.pump();
    }
  }

  /** Handles a pong answering a confirmation ping (returns true), or returns false for any other pong. */
  handlePong(data: Buffer): boolean {
    if (data.length <= CONFIRM_PREFIX_BYTES.length || !data.subarray(0, CONFIRM_PREFIX_BYTES.length).equals(CONFIRM_PREFIX_BYTES)) return false;
    const ping = this.#ping;
    if (ping === undefined || Number(data.subarray(CONFIRM_PREFIX_BYTES.length).toString('latin1')) !== ping.seq) return true;
    this.#ping = undefined;
    this.#clearTimer();
    const confirmed = this.#inFlight.splice(0, ping.upTo - this.#confirmed);
    this.#confirmed = ping.upTo;
    for (const message of confirmed) this.#outbox.resolve(message);
    this.#confirm();
    return true;
  }

  /**
   * The connection is gone. A clean close confirms everything written: the peer answered our close frame, or
   * we answered its close frame and it read what we wrote before our answer (RFC 6455 §1.4, §5.5.1). After
   * an abnormal end, unconfirmed messages go back to the front of the queue (`resend`) or are rejected.
   */
  end(code: number, wasClean: boolean, resend: boolean): void {
    this.#ended = true;
    this.#clearTimer();
    const inFlight = this.#inFlight;
    this.#inFlight = [];
    if (wasClean) {
      for (const message of inFlight) this.#outbox.resolve(message);
    } else if (resend) {
      this.#outbox.requeueFront(inFlight);
    } else {
      const error = new SendError(SendErrorCode.Unconfirmed,
        `written to a connection that ended with ${code} before the peer confirmed it: it may or may not have arrived`, true);
      for (const message of inFlight) this.#outbox.reject(message, error);
    }
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
