// connectReconnecting(): a client that keeps one connection open across failures. It redials with capped,
// jittered exponential backoff, re-runs an open hook on every connection, holds messages while disconnected
// (up to a bound), and settles every send() promise: confirmed by the peer, or rejected with a SendError.
import { CloseCode, ReadyState } from '../protocol/constants.js';
import { assertSendableClose } from '../protocol/close.js';
import type { WebSocket, WebSocketHandlers } from '../transport/websocket.js';
import { connect, type ConnectOptions } from './connect.js';
import { parseClientUrl } from './client-url.js';
import { backoffDelayMs, resolveBackoff, type Backoff, type BackoffOptions } from './backoff.js';
import { defaultShouldReconnect, describeFailure, retryAfterMs, type ReconnectFailure } from './reconnect-policy.js';
import { Outbox, SendError, SendErrorCode } from './outbox.js';
import { ConfirmedLink } from './confirmed-link.js';

export interface OpenInfo {
  /** A connection was open before this one: subscriptions and session state must be set up again. */
  reconnect: boolean;
  /** The retry that made this connection (1 = the first retry of this run of failures), 0 for none. */
  attempt: number;
}

export interface ReconnectingOptions<Data = undefined> extends ConnectOptions<Data>, BackoffOptions {
  /** Give up once this many connection attempts in a row have failed. Default Infinity. */
  maxAttempts?: number;
  /**
   * A connection that stays open (and past onOpen) this long ends the run of failures: the next drop starts
   * again at the first retry and the shortest delay. One that closes sooner counts as a failed attempt. Default 5 s.
   */
  resetAfterMs?: number;
  /** Whether a failure is worth another attempt. Default: defaultShouldReconnect. */
  shouldReconnect?: (failure: ReconnectFailure) => boolean;
  /** At most this many send()s may be unsettled (waiting, or written and unconfirmed). Default 10,000. */
  maxQueuedMessages?: number;
  /** At most this many bytes of message data may be unsettled. Default 16 MiB. */
  maxQueuedBytes?: number;
  /**
   * Messages written to a connection that then ended abnormally are sent again on the next connection
   * (at-least-once: the peer may see one twice) instead of rejecting with ERR_UNCONFIRMED (at-most-once).
   * Default false.
   */
  resendUnconfirmed?: boolean;
  /**
   * A connection whose peer has not answered a confirmation ping within this long is dropped as dead (1006)
   * and replaced. 0 waits forever. Default 30 s.
   */
  confirmTimeoutMs?: number;
  /**
   * Runs on every connection, before any waiting message is written: re-subscribe here. Messages sent with
   * `ws.send()` from it go first. A rejected promise or a throw closes the connection (1011) and counts as a
   * failed attempt.
   */
  onOpen?: (ws: WebSocket<Data>, info: OpenInfo) => void | Promise<void>;
  /** The random source for jitter, [0, 1). Default Math.random. */
  random?: () => number;
}

export interface ReconnectingEvents<Data> {
  /** A connection attempt failed or a connection ended; the next attempt is `delayMs` away. */
  reconnecting: { attempt: number; delayMs: number; failure: ReconnectFailure };
  /** A connection opened after at least one retry, and its onOpen hook finished. */
  reconnected: { attempt: number; ws: WebSocket<Data> };
  /** The client stopped for good on its own; every unsettled send was rejected with `error`'s code. */
  'gave-up': { attempts: number; reason: 'max-attempts' | 'not-retryable'; failure: ReconnectFailure; error: SendError };
}

export type ReconnectingState = 'connecting' | 'open' | 'waiting' | 'closing' | 'closed';

type Listener<T> = (info: T) => void;

const ignoreMessage = (): void => {};

export class ReconnectingClient<Data = undefined> {
  readonly url: string;
  readonly #options: ReconnectingOptions<Data>;
  readonly #connectOptions: ConnectOptions<Data>;
  readonly #backoff: Backoff;
  readonly #maxAttempts: number;
  readonly #resetAfterMs: number;
  readonly #confirmTimeoutMs: number;
  readonly #outbox: Outbox;
  readonly #listeners = new Map<keyof ReconnectingEvents<Data>, Set<Listener<any>>>();
  #state: ReconnectingState = 'connecting';
  /** Retries in this run (since the last connection that stayed open resetAfterMs); 0 before the first. */
  #retry = 0;
  /** Failed attempts in a row. */
  #failures = 0;
  #everOpened = false;
  #link: ConfirmedLink<Data> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closeCode: number = CloseCode.Normal;
  #closeReason = '';
  #gaveUp: SendError | undefined;
  readonly closed: Promise<void>;
  #markClosed!: () => void;

  constructor(url: string | URL, options: ReconnectingOptions<Data> = {}) {
    // Every URL connect() takes, checked now (TypeError) rather than reported as a failed attempt.
    parseClientUrl(url, options.socketPath);
    this.url = String(url);
    this.#options = options;
    this.#backoff = resolveBackoff(options);
    this.#maxAttempts = positive('maxAttempts', options.maxAttempts ?? Infinity, 1);
    this.#resetAfterMs = positive('resetAfterMs', options.resetAfterMs ?? 5_000, 0);
    this.#confirmTimeoutMs = positive('confirmTimeoutMs', options.confirmTimeoutMs ?? 30_000, 0);
    this.#outbox = new Outbox(positive('maxQueuedMessages', options.maxQueuedMessages ?? 10_000, 1), positive('maxQueuedBytes', options.maxQueuedBytes ?? 16 * 1024 * 1024, 0));
    const { maxAttempts, resetAfterMs, shouldReconnect, maxQueuedMessages, maxQueuedBytes, resendUnconfirmed, confirmTimeoutMs, onOpen, random,
      initialDelayMs, maxDelayMs, multiplier, jitter, handlers, ...connectOptions } = options;
    this.#connectOptions = connectOptions;
    this.closed = new Promise((resolve) => { this.#markClosed = resolve; });
    this.#dial();
  }

  get state(): ReconnectingState {
    return this.#state;
  }

  get readyState(): ReadyState {
    switch (this.#state) {
      // Open once the onOpen hook finished (messages flow); Closing/Closed while the connection ends.
      case 'open': return this.#link?.ready === true ? this.#link.ws.readyState : ReadyState.Connecting;
      case 'closing': return ReadyState.Closing;
      case 'closed': return ReadyState.Closed;
      default: return ReadyState.Connecting;
    }
  }

  /** The current connection once its onOpen hook finished, else undefined. */
  get ws(): WebSocket<Data> | undefined {
    const link = this.#link;
    return link !== undefined && link.ready && !link.ended ? link.ws : undefined;
  }

  /** send()s not yet settled: waiting for a connection or to be written, or written and unconfirmed. */
  get queuedMessages(): number {
    return this.#outbox.unsettledMessages;
  }

  get queuedBytes(): number {
    return this.#outbox.unsettledBytes;
  }

  on<E extends keyof ReconnectingEvents<Data>>(event: E, listener: Listener<ReconnectingEvents<Data>[E]>): this {
    let set = this.#listeners.get(event);
    if (set === undefined) this.#listeners.set(event, (set = new Set()));
    set.add(listener);
    return this;
  }

  off<E extends keyof ReconnectingEvents<Data>>(event: E, listener: Listener<ReconnectingEvents<Data>[E]>): this {
    this.#listeners.get(event)?.delete(listener);
    return this;
  }

  /**
   * Sends a message (a string as text, anything else as binary unless `isBinary` says otherwise). Resolves
   * once the peer confirmed it (see docs/client-reconnecting.md); rejects with a SendError otherwise. Keep
   * a Buffer unchanged until its promise settles: it may be written again.
   */
  send(data: string | Buffer | Uint8Array | ArrayBuffer, isBinary: boolean = typeof data !== 'string'): Promise<void> {
    if (typeof data !== 'string' && !(data instanceof Uint8Array) && !(data instanceof ArrayBuffer)) {
      throw new TypeError('send() takes a string, Buffer, Uint8Array or ArrayBuffer');
    }
    if (this.#gaveUp !== undefined) return this.#outbox.refuse(new SendError(SendErrorCode.GaveUp, this.#gaveUp.message, false, { cause: this.#gaveUp.cause }));
    if (this.#state === 'closing' || this.#state === 'closed') {
      return this.#outbox.refuse(new SendError(SendErrorCode.ClientClosed, 'send() after close()', false));
    }
    const promise = this.#outbox.accept(data instanceof ArrayBuffer ? new Uint8Array(data) : data, isBinary);
    if (this.#state === 'open') this.#link?.pump();
    return promise;
  }

  /**
   * Stops for good: no more reconnects. Messages already written are settled by how the connection closes
   * (a clean close confirms them); waiting ones are written first if a connection is open and ready, else
   * rejected with ERR_CLIENT_CLOSED. Resolves once everything settled and no timer is left.
   */
  close(code: number = CloseCode.Normal, reason = ''): Promise<void> {
    assertSendableClose(code, reason);
    if (this.#state === 'closing' || this.#state === 'closed') return this.closed;
    this.#state = 'closing';
    this.#closeCode = code;
    this.#closeReason = reason;
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#finish();
      return this.closed;
    }
    const link = this.#link;
    if (link !== undefined && !link.ended) {
      if (link.ready) link.write(true);
      this.#rejectWaiting(SendErrorCode.ClientClosed, 'close() was called before it could be sent');
      link.ws.close(code, reason);
    } else {
      // A connection attempt is under way: its outcome finishes the close (connect() cannot be aborted).
      this.#rejectWaiting(SendErrorCode.ClientClosed, 'close() was called before it could be sent');
    }
    return this.closed;
  }

  // ---- connecting ----

  #dial(): void {
    this.#state = 'connecting';
    connect<Data>(this.url, { ...this.#connectOptions, handlers: this.#handlers() }).then(undefined, (error: unknown) => {
      const failure: ReconnectFailure = { kind: 'error', error: error instanceof Error ? error : new Error(String(error)) };
      if (this.#state === 'closing') this.#finish();
      else this.#failed(failure, false);
    });
  }

  /** The handlers of one connection: ours around the application's. */
  #handlers(): WebSocketHandlers<Data> {
    const user = this.#options.handlers ?? {};
    let link: ConfirmedLink<Data> | undefined;
    const handlers: WebSocketHandlers<Data> = {
      open: (ws) => {
        link = this.#opened(ws);
        user.open?.call(user, ws);
        if (this.#state === 'open') this.#runOpenHook(link);
      },
      drain: (ws) => {
        link?.drained();
        user.drain?.call(user, ws);
      },
      pong: (ws, data) => {
        if (link?.handlePong(data) === true) return;
        user.pong?.call(user, ws, data);
      },
      close: (ws, code, reason, wasClean) => {
        let thrown: unknown;
        try {
          user.close?.call(user, ws, code, reason, wasClean);
        } catch (error) {
          thrown = error ?? new Error('close handler threw');
        }
        if (link !== undefined) this.#ended(link, code, reason, wasClean);
        if (thrown !== undefined) throw thrown;
      },
    };
    // The application's other handlers are passed through untouched (no wrapper on the message path).
    for (const name of ['message', 'messagePiece', 'ping', 'error', 'dropped'] as const) {
      const handler = user[name];
      if (handler !== undefined) (handlers as Record<string, unknown>)[name] = handler.bind(user);
    }
    // Without a message handler connect() would keep every message for ws.messages() and stop reading once
    // they pile up, and then no confirming pong is read either. Messages are dropped instead; call
    // ws.messages() in onOpen (it runs before the first message can arrive) to read them that way.
    if (handlers.message === undefined && handlers.messagePiece === undefined) handlers.message = ignoreMessage;
    return handlers;
  }

  #opened(ws: WebSocket<Data>): ConfirmedLink<Data> {
    const link = new ConfirmedLink<Data>(ws, this.#outbox, this.#confirmTimeoutMs);
    this.#link = link;
    if (this.#state === 'closing') ws.close(this.#closeCode, this.#closeReason);
    else this.#state = 'open';
    return link;
  }

  #runOpenHook(link: ConfirmedLink<Data>): void {
    const hook = this.#options.onOpen;
    const info: OpenInfo = { reconnect: this.#everOpened, attempt: this.#retry };
    this.#everOpened = true;
    if (hook === undefined) return this.#ready(link);
    let result: void | Promise<void>;
    try {
      result = hook(link.ws, info);
    } catch (error) {
      return this.#hookFailed(link, error);
    }
    if (result !== undefined && typeof (result as Promise<void>).then === 'function') {
      (result as Promise<void>).then(() => this.#ready(link), (error: unknown) => this.#hookFailed(link, error));
    } else {
      this.#ready(link);
    }
  }

  #hookFailed(link: ConfirmedLink<Data>, error: unknown): void {
    link.hookError = error instanceof Error ? error : new Error(String(error));
    if (!link.ended && link.ws.readyState === ReadyState.Open) link.ws.close(CloseCode.InternalError, 'onOpen hook failed');
  }

  #ready(link: ConfirmedLink<Data>): void {
    if (link.ended || this.#link !== link || this.#state !== 'open') return;
    link.ready = true;
    link.readyAtMs = Date.now();
    link.write(false);
    if (this.#retry > 0) this.#emit('reconnected', { attempt: this.#retry, ws: link.ws });
  }

  #ended(link: ConfirmedLink<Data>, code: number, reason: string, wasClean: boolean): void {
    if (this.#link === link) this.#link = undefined;
    link.end(code, wasClean, this.#options.resendUnconfirmed === true && this.#state === 'open');
    if (this.#state === 'closing') return this.#finish();
    if (this.#state !== 'open') return;
    const stable = link.ready && Date.now() - link.readyAtMs >= this.#resetAfterMs;
    const failure: ReconnectFailure = { kind: 'close', code, reason, wasClean, ...(link.hookError !== undefined && { error: link.hookError }) };
    this.#failed(failure, stable);
  }

  /** An attempt failed or a connection ended: schedule the next attempt, or give up. */
  #failed(failure: ReconnectFailure, stable: boolean): void {
    if (stable) {
      this.#retry = 0;
      this.#failures = 0;
    } else {
      this.#failures++;
    }
    let retry: boolean;
    try {
      retry = (this.#options.shouldReconnect ?? defaultShouldReconnect)(failure);
    } catch (error) {
      process.emitWarning(`shouldReconnect threw, giving up: ${(error as Error)?.stack ?? String(error)}`, 'SwitchyardWarning');
      retry = false;
    }
    if (!retry) return this.#giveUp(failure, 'not-retryable');
    if (this.#failures >= this.#maxAttempts) return this.#giveUp(failure, 'max-attempts');
    this.#retry++;
    // A 429/503 answer's Retry-After is honoured, up to maxDelayMs.
    const askedMs = retryAfterMs(failure);
    const backoffMs = backoffDelayMs(this.#backoff, this.#retry, this.#options.random);
    const delayMs = askedMs === undefined ? backoffMs : Math.max(backoffMs, Math.min(askedMs, this.#backoff.maxDelayMs));
    this.#state = 'waiting';
    // Ref'd on purpose: a client with messages to deliver keeps the process alive until close() or give-up.
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#dial();
    }, delayMs);
    this.#emit('reconnecting', { attempt: this.#retry, delayMs, failure });
  }

  #giveUp(failure: ReconnectFailure, reason: 'max-attempts' | 'not-retryable'): void {
    const attempts = this.#failures;
    const why = reason === 'max-attempts' ? `${attempts} attempts in a row failed` : 'the failure is not worth retrying';
    const cause = failure.error; // the connect() error, or the onOpen hook's error behind a close
    const error = new SendError(SendErrorCode.GaveUp, `gave up reconnecting to ${this.url} (${why}): ${describeFailure(failure)}`, false, cause === undefined ? undefined : { cause });
    this.#gaveUp = error;
    this.#outbox.rejectWaiting((message) => message.written ? new SendError(error.code, error.message, true, { cause: error.cause }) : error);
    this.#state = 'closed';
    this.#emit('gave-up', { attempts, reason, failure, error });
    this.#markClosed();
  }

  #finish(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#rejectWaiting(SendErrorCode.ClientClosed, 'close() was called before it could be sent');
    this.#markClosed();
  }

  #rejectWaiting(code: SendErrorCode, message: string): void {
    this.#outbox.rejectWaiting((waiting) => new SendError(code, message, waiting.written));
  }

  #emit<E extends keyof ReconnectingEvents<Data>>(event: E, info: ReconnectingEvents<Data>[E]): void {
    const listeners = this.#listeners.get(event);
    if (listeners === undefined) return;
    for (const listener of [...listeners]) {
      try {
        listener(info);
      } catch (error) {
        process.emitWarning(`a "${event}" listener threw: ${(error as Error)?.stack ?? String(error)}`, 'SwitchyardWarning');
      }
    }
  }
}

function positive(name: string, value: number, min: number): number {
  if (typeof value !== 'number' || Number.isNaN(value) || value < min || (!Number.isInteger(value) && value !== Infinity)) {
    throw new RangeError(`${name} must be an integer ≥ ${min} or Infinity (got ${String(value)})`);
  }
  return value;
}

/** Opens a reconnecting client; it starts dialing at once. See docs/client-reconnecting.md. */
export function connectReconnecting<Data = undefined>(url: string | URL, options: ReconnectingOptions<Data> = {}): ReconnectingClient<Data> {
  return new ReconnectingClient<Data>(url, options);
}
