// The plumbing under the byte-level test clients (raw-client.ts, deflate-frames.ts) and the frame tap
// (frame-tap.ts): reading and parsing an HTTP head off a socket, and queueing the server frames that follow.
// Like them, deliberately independent of src/.
import { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';
import { describeFrame, parseServerFrames, type ServerFrame } from './frames.js';

export interface ParsedHead {
  /** The request or status line. */
  readonly firstLine: string;
  /** Lower-case names; repeated fields joined with ', '. */
  readonly headers: Map<string, string>;
}

/**
 * Splits an HTTP head (with or without its closing blank line) into its first line and its header fields. A
 * line that is not `name: value` throws when `strict`; otherwise it is passed over (for a relay, which must not
 * fail on what it forwards).
 */
export function parseHead(head: string, strict: boolean): ParsedHead {
  const lines = head.split('\r\n');
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) {
      if (strict) throw new Error(`malformed HTTP header line: ${JSON.stringify(line)}`);
      continue;
    }
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const previous = headers.get(name);
    headers.set(name, previous === undefined ? value : `${previous}, ${value}`);
  }
  return { firstLine: lines[0] ?? '', headers };
}

export interface ResponseHeadBytes {
  /** The response head as received, up to and including the blank line. */
  readonly head: string;
  /** What came after the head in the same reads. */
  readonly leftover: Buffer;
}

/**
 * Writes `request` once `socket` connects and resolves with the response head. Rejects when the server closes
 * first, on a socket error, or after `timeoutMs`. Either way the socket is left paused with no listener of its
 * own, so the caller's 'data' listener misses no byte.
 */
export function readResponseHead(socket: Socket, request: string, timeoutMs: number): Promise<ResponseHeadBytes> {
  let received = Buffer.alloc(0);
  return new Promise<ResponseHeadBytes>((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`no HTTP response head within ${timeoutMs} ms; got ${JSON.stringify(received.toString('latin1'))}`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf('\r\n\r\n');
      if (end >= 0) finish(undefined, { head: received.subarray(0, end + 4).toString('latin1'), leftover: Buffer.from(received.subarray(end + 4)) });
    };
    const onClose = (): void => finish(new Error(`the server closed the connection before a complete response head; got ${JSON.stringify(received.toString('latin1'))}`));
    const onError = (error: Error): void => finish(new Error(`socket error before the response head: ${error.message}`, { cause: error }));
    function finish(error: Error | undefined, value?: ResponseHeadBytes): void {
      clearTimeout(timer);
      socket.pause();
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onError);
      if (error !== undefined) reject(error);
      else resolve(value!);
    }
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.on('error', onError);
    socket.once('connect', () => socket.write(request));
  });
}

/** Writes bytes; resolves when written (or at once when the socket is already closed for writing). */
export function sendBytes(socket: Socket, bytes: Uint8Array): Promise<void> {
  if (socket.destroyed || socket.writableEnded) return Promise.resolve();
  return new Promise((resolve) => { socket.write(bytes, () => resolve()); });
}

/**
 * The server frames of one upgraded connection, parsed with frames.ts as the bytes arrive: queued until taken,
 * all kept for failure messages, and waited for with a deadline. Checks nothing about the frames themselves:
 * each client applies its own rules to what take() returns.
 */
export class FrameInbox {
  /** Frames not yet taken, oldest first. */
  readonly pending: ServerFrame[] = [];
  /** Every frame received, in order, including those taken. */
  readonly received: ServerFrame[] = [];
  #buffer: Buffer = Buffer.alloc(0);
  #tcpClosed: boolean;
  #socketError: Error | undefined;
  #parseError: Error | undefined;
  #wakeups: Array<() => void> = [];
  readonly #framesShown: number;

  /**
   * `tcpClosed`: the connection closed before the inbox was made. `framesShown`: how many of the last frames
   * failure messages list (default all).
   */
  constructor(options: { readonly tcpClosed?: boolean; readonly framesShown?: number } = {}) {
    this.#tcpClosed = options.tcpClosed ?? false;
    this.#framesShown = options.framesShown ?? Number.POSITIVE_INFINITY;
  }

  get tcpClosed(): boolean { return this.#tcpClosed; }
  get socketError(): Error | undefined { return this.#socketError; }

  /** Bytes from the server after its 101 response. Unparseable bytes are kept as an error take() reports. */
  push(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    try {
      const { frames, rest } = parseServerFrames(this.#buffer);
      this.#buffer = rest;
      this.pending.push(...frames);
      this.received.push(...frames);
    } catch (error) {
      this.#parseError = error as Error;
    }
    this.#wake();
  }

  noteSocketError(error: Error): void {
    this.#socketError = error;
  }

  noteTcpClosed(): void {
    this.#tcpClosed = true;
    this.#wake();
  }

  #wake(): void {
    const wakeups = this.#wakeups;
    this.#wakeups = [];
    for (const wake of wakeups) wake();
  }

  /** Waits until something changes (a frame, the TCP close) or the deadline passes; returns false on timeout. */
  async waitForChange(deadline: number): Promise<boolean> {
    const remaining = deadline - Date.now();
    if (remaining <= 0) return false;
    let timer: NodeJS.Timeout | undefined;
    const changed = await new Promise<boolean>((resolve) => {
      this.#wakeups.push(() => resolve(true));
      timer = setTimeout(() => resolve(false), remaining);
    });
    clearTimeout(timer);
    return changed;
  }

  /** The next frame; throws when the server sent unparseable bytes, closed TCP first, or sent nothing in time. */
  async take(timeoutMs: number): Promise<ServerFrame> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const frame = this.pending.shift();
      if (frame !== undefined) return frame;
      if (this.#parseError !== undefined) throw new Error(`server sent unparseable bytes: ${this.#parseError.message}${this.describe()}`);
      if (this.#tcpClosed) throw new Error(`the server closed the TCP connection without sending another frame${this.describe()}`);
      if (!(await this.waitForChange(deadline))) throw new Error(`no frame from the server within ${timeoutMs} ms${this.describe()}`);
    }
  }

  /** What arrived so far, for failure messages: '' or ' (...)'. */
  describe(): string {
    const parts: string[] = [];
    if (this.received.length > 0) {
      const shown = this.received.length > this.#framesShown ? this.received.slice(-this.#framesShown) : this.received;
      const label = shown.length < this.received.length ? `last ${shown.length} of ${this.received.length} frames received` : 'frames received so far';
      parts.push(`${label}: ${shown.map(describeFrame).join('; ')}`);
    }
    if (this.#buffer.length > 0) parts.push(`${this.#buffer.length} unparsed bytes <${this.#buffer.subarray(0, 32).toString('hex')}>`);
    if (this.#socketError !== undefined) parts.push(`socket error ${(this.#socketError as NodeJS.ErrnoException).code ?? this.#socketError.message}`);
    return parts.length === 0 ? '' : ` (${parts.join('; ')})`;
  }
}
