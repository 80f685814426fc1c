// A WebSocket's messages as an async iterator (`for await (const { data, isBinary } of ws.messages())`). They
// wait here in arrival order; holding more than the high-water mark pauses reading from the peer (TCP flow
// control then slows it down) and draining to a quarter of it resumes reading: memory stays bounded however
// slow the loop. A connection gets an inbox only once something asks for one.

export interface ReceivedMessage {
  /** The payload (for text, UTF-8 bytes that were validated on arrival). */
  readonly data: Buffer;
  readonly isBinary: boolean;
}

export interface MessageInboxOptions {
  /**
   * Stop reading from the peer while the inbox holds more than this many bytes (payloads plus 128 per message,
   * so a flood of empty messages is bounded too); reading resumes once it holds a quarter of it. Default 1 MiB.
   */
  inboxHighWaterBytes?: number;
}

/** What the inbox needs of its connection: reading paused and resumed. */
export interface InboxHost {
  pause(): void;
  resume(): void;
}

export const DEFAULT_INBOX_HIGH_WATER_BYTES = 1 << 20;

/** Counted per queued message on top of its payload: its entry, its Buffer view and its queue slot. */
const ENTRY_OVERHEAD_BYTES = 128;

const DONE: IteratorReturnResult<undefined> = Object.freeze({ value: undefined, done: true });

interface Waiter {
  readonly iterator: MessageIterator;
  readonly resolve: (result: IteratorResult<ReceivedMessage, undefined>) => void;
}

export function checkInboxOptions(options: MessageInboxOptions | undefined): number | undefined {
  const bytes = options?.inboxHighWaterBytes;
  if (bytes === undefined) return undefined;
  if (!Number.isSafeInteger(bytes) || bytes < 1) throw new RangeError(`inboxHighWaterBytes must be a positive integer (got ${String(bytes)})`);
  return bytes;
}

export class MessageInbox {
  readonly #host: InboxHost;
  #highWaterBytes: number;
  readonly #queue: ReceivedMessage[] = [];
  #queuedBytes = 0;
  #readingPaused = false;
  #ended = false;
  /** Iterations waiting for the next message; only ever non-empty while the queue is empty. */
  #waiters: Waiter[] = [];

  constructor(host: InboxHost, options?: MessageInboxOptions) {
    this.#host = host;
    this.#highWaterBytes = checkInboxOptions(options) ?? DEFAULT_INBOX_HIGH_WATER_BYTES;
  }

  configure(options: MessageInboxOptions): void {
    const bytes = checkInboxOptions(options);
    if (bytes === undefined) return;
    this.#highWaterBytes = bytes;
    this.#checkWater();
  }

  /** Messages received and not yet taken by an iteration. */
  get queuedMessages(): number {
    return this.#queue.length;
  }

  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** The connection has ended: iterations finish once they have taken every message queued before. */
  get ended(): boolean {
    return this.#ended;
  }

  push(data: Buffer, isBinary: boolean): void {
    if (this.#ended) return;
    const message: ReceivedMessage = { data, isBinary };
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) {
      waiter.resolve({ value: message, done: false });
      return;
    }
    this.#queue.push(message);
    this.#queuedBytes += data.length + ENTRY_OVERHEAD_BYTES;
    this.#checkWater();
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) waiter.resolve(DONE);
  }

  take(iterator: MessageIterator): Promise<IteratorResult<ReceivedMessage, undefined>> {
    const message = this.#queue.shift();
    if (message !== undefined) {
      this.#queuedBytes -= message.data.length + ENTRY_OVERHEAD_BYTES;
      this.#checkWater();
      return Promise.resolve({ value: message, done: false });
    }
    if (this.#ended) return Promise.resolve(DONE);
    return new Promise((resolve) => { this.#waiters.push({ iterator, resolve }); });
  }

  /** An iteration stopped (`break`, `return()`): its pending takes finish empty-handed, losing no message. */
  cancel(iterator: MessageIterator): void {
    if (this.#waiters.length === 0) return;
    const kept: Waiter[] = [];
    for (const waiter of this.#waiters) {
      if (waiter.iterator === iterator) waiter.resolve(DONE);
      else kept.push(waiter);
    }
    this.#waiters = kept;
  }

  #checkWater(): void {
    if (this.#ended) return;
    if (!this.#readingPaused) {
      if (this.#queuedBytes > this.#highWaterBytes) {
        this.#readingPaused = true;
        this.#host.pause();
      }
    } else if (this.#queuedBytes <= this.#highWaterBytes / 4) {
      this.#readingPaused = false;
      this.#host.resume();
    }
  }
}

/**
 * One `for await` over an inbox. Stopping it (`break`, `return()`) does not close the connection: messages
 * keep arriving into the inbox for the next iteration (and reading pauses at the high-water mark meanwhile).
 */
export class MessageIterator implements AsyncIterableIterator<ReceivedMessage> {
  readonly #inbox: MessageInbox;
  #stopped = false;

  constructor(inbox: MessageInbox) {
    this.#inbox = inbox;
  }

  next(): Promise<IteratorResult<ReceivedMessage, undefined>> {
    return this.#stopped ? Promise.resolve(DONE) : this.#inbox.take(this);
  }

  return(): Promise<IteratorResult<ReceivedMessage, undefined>> {
    this.#stopped = true;
    this.#inbox.cancel(this);
    return Promise.resolve(DONE);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
