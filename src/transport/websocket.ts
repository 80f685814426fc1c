// A WebSocket over a stream socket: feeds received bytes to the sans-I/O Connection, calls the application's
// handlers directly, writes each tick's outgoing frames in one batch, bounds unsent bytes with the route's
// slow-consumer policy, and keeps time through a shared sweep (pings, idle, lifetime, close deadline).
import type { Socket } from 'node:net';
import type { ProtocolError } from '../errors.js';
import { CloseCode, ReadyState } from '../protocol/constants.js';
import { assertSendableClose } from '../protocol/close.js';
import { Connection, type ProtocolEvents } from '../protocol/connection.js';
import type { Role } from '../protocol/constants.js';
import type { TimerSweep, Sweepable } from './timers.js';
import type { WebSocketPolicy } from './policy.js';
import type { TopicBroker } from '../pubsub/broker.js';
import type { PublishedMessage } from '../pubsub/published-message.js';
import { PerMessageDeflate } from '../codec/permessage-deflate.js';
import type { DeflateAgreement } from '../protocol/deflate-negotiation.js';
import type { RequestClient } from '../http/client-address.js';
import { isUtf8 } from '../protocol/utf8.js';
import { ProtocolError as ProtocolErrorClass } from '../errors.js';
import { DeflatePipeline, type PipelineHost } from './deflate-pipeline.js';
import { MessageInbox, MessageIterator, type MessageInboxOptions, type ReceivedMessage } from './message-inbox.js';
import { CloseRecord, type CloseDetails } from './close-details.js';
import type { WebSocketHandlers, WebSocketInit, WebSocketOwner } from './websocket-contracts.js';

export type { WebSocketPolicy } from './policy.js';
export type { MessageInboxOptions, ReceivedMessage } from './message-inbox.js';
export type { CloseDetails } from './close-details.js';
export type { WebSocketHandlers, UpgradeRequestInfo, WebSocketInit, WebSocketOwner } from './websocket-contracts.js';

const NO_PARAMS: Readonly<Record<string, string>> = Object.freeze({});

const kWebSocket = Symbol('switchyard.websocket');
const EMPTY_WRITE = Buffer.alloc(0);
type OwnedSocket = Socket & { [kWebSocket]: WebSocket<any> };

/** Outgoing frames adding up to at most this are copied into one buffer and written with one call. */
const COALESCE_MAX_BYTES = 64 * 1024;

export class WebSocket<Data = unknown> implements ProtocolEvents, Sweepable {
  /** Application data attached at upgrade time (the route's `upgrade` hook, or undefined). */
  data: Data;
  readonly protocol: string;
  readonly url: string;
  /** Round-trip time of the last answered keep-alive ping, or -1 before the first. */
  latencyMs = -1;
  readonly id: number;
  readonly params: Readonly<Record<string, string>>;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** Wall-clock time the connection opened (ms since the epoch). */
  readonly openedAtMs: number;
  // Traffic counters: data messages and their payload bytes each way (frame headers, masks and control frames
  // excluded, as the access log and metrics document), and messages the slow-consumer policy dropped.
  messagesIn = 0;
  messagesOut = 0;
  bytesIn = 0;
  bytesOut = 0;
  droppedMessages = 0;

  readonly #socket: Socket;
  readonly #connection: Connection;
  readonly #handlers: WebSocketHandlers<Data>;
  readonly #policy: WebSocketPolicy;
  readonly #sweep: TimerSweep;
  readonly #broker: TopicBroker<WebSocket<any>> | undefined;
  readonly #owner: WebSocketOwner | undefined;
  /** Topics this connection is subscribed to; allocated on the first subscribe. */
  #topics: Set<string> | undefined;
  #remoteAddress: string | undefined;
  #peerAddress: string | undefined;
  readonly #requestClient: RequestClient | undefined;
  /** Bound once, used only while send() is reporting backpressure. */
  #drainCheckBound: (() => void) | undefined;
  /** keep-latest policy: the newest unsent message per topic, written when the socket drains. */
  #latestByTopic: Map<string, PublishedMessage> | undefined;
  /** Present when permessage-deflate was negotiated: keeps message order around asynchronous zlib work. */
  #deflate: DeflatePipeline | undefined;
  /** The negotiated permessage-deflate, if any; its codec and pipeline are made on first use (idle costs nothing). */
  readonly #deflateAgreement: DeflateAgreement | undefined;
  readonly #role: Role;
  /** The negotiated extension, for logs and the application ("" when none). */
  readonly extensions: string;
  #receiving = false;
  /** The application paused reading (pause()); the deflate pipeline must not resume behind its back. */
  #readingPaused = false;
  /** close() was called while compressed messages were still on their way; the close frame waits for them. */
  #closeRequested = false;
  #flushScheduled = false;
  #awaitingDrain = false;
  #transportEnded = false;
  #socketClosed = false;
  /** Set when anything arrives from the peer; the keep-alive check clears it. */
  #heardFromPeer = true;
  #pingSentAtMs = 0;
  #nextPingAtMs: number;
  #lastMessageAtMs: number;
  #closeDeadlineMs = 0;
  /** Messages kept for messages(); made on first use. */
  #inbox: MessageInbox | undefined;
  /** How the connection ended; made when it closes, or earlier if someone awaits `closed`. */
  #close: CloseRecord | undefined;

  constructor(init: WebSocketInit<Data>) {
    const { socket, policy } = init;
    this.#socket = socket;
    this.#policy = policy;
    this.#handlers = init.handlers;
    this.#sweep = init.sweep;
    this.#broker = init.broker;
    this.#owner = init.owner;
    this.data = init.data;
    this.protocol = init.protocol;
    this.url = init.url;
    this.id = init.id ?? 0;
    this.params = init.request?.params ?? NO_PARAMS;
    this.headers = init.request?.headers ?? NO_PARAMS;
    this.#requestClient = init.request?.client;
    this.#connection = new Connection(init.role, this, {
      maxFrameBytes: policy.maxFrameBytes,
      maxMessageBytes: policy.maxMessageBytes,
      // With compression, messages are whole before they can be inflated; pieces are cut afterwards, here.
      messagePieceBytes: init.deflate === undefined ? policy.messagePieceBytes : 0,
      allowInvalidUtf8: policy.allowInvalidUtf8,
      perMessageDeflate: init.deflate !== undefined,
    });
    this.#role = init.role;
    this.#deflateAgreement = init.deflate;
    this.extensions = init.deflate === undefined ? '' : 'permessage-deflate';
    // The real clock, not the sweep's: a sweep that has no members is not ticking, and its last tick may be long
    // past (the first connection of an idle server would otherwise start out idle, old and due for a ping).
    const now = Date.now();
    this.openedAtMs = now;
    this.#nextPingAtMs = now + policy.pingIntervalMs;
    this.#lastMessageAtMs = now;

    socket.setNoDelay(true);
    // Shared listener functions that find their WebSocket on the socket: no closures per connection.
    (socket as OwnedSocket)[kWebSocket] = this;
    socket.on('data', WebSocket.#socketData);
    socket.on('end', WebSocket.#socketEnd);
    socket.on('drain', WebSocket.#socketDrain);
    socket.on('error', WebSocket.#socketError);
    socket.on('close', WebSocket.#socketClose);
    init.sweep.add(this);
  }

  static #socketData(this: Socket, chunk: Buffer): void {
    (this as OwnedSocket)[kWebSocket].#onData(chunk);
  }

  static #socketEnd(this: Socket): void {
    (this as OwnedSocket)[kWebSocket].#onEnd();
  }

  static #socketDrain(this: Socket): void {
    (this as OwnedSocket)[kWebSocket].#onDrain();
  }

  static #socketError(this: Socket, error: NodeJS.ErrnoException): void {
    (this as OwnedSocket)[kWebSocket].#onSocketError(error);
  }

  static #socketClose(this: Socket): void {
    (this as OwnedSocket)[kWebSocket].#onSocketClose();
  }

  /**
   * The client's address: the peer's, or, on a server with trustProxy whose peer is a trusted proxy, the client
   * that proxy named in X-Forwarded-For (what logs, rate limits and REMOTE_ADDR want). Kept, so it outlives
   * the connection.
   */
  get remoteAddress(): string {
    return (this.#remoteAddress ??= this.#requestClient?.address ?? this.peerAddress);
  }

  /** The TCP peer's address (behind a reverse proxy, the proxy's); read on first use and kept. */
  get peerAddress(): string {
    return (this.#peerAddress ??= this.#requestClient?.peerAddress ?? this.#socket.remoteAddress ?? '');
  }

  /** The TCP peer's port (the proxy's, when remoteAddress was forwarded: see requestClient.port). */
  get remotePort(): number {
    return this.#socket.remotePort ?? 0;
  }

  /**
   * Server side with trustProxy: who sent the upgrade request, as the server resolved it. Undefined without
   * trustProxy (the peer is the client: remoteAddress, remotePort) and on a client's WebSocket.
   */
  get requestClient(): RequestClient | undefined {
    return this.#requestClient;
  }

  /** Our side's address and port (for SERVER_PORT-style values); empty/0 once the socket is gone. */
  get localAddress(): string {
    return this.#socket.localAddress ?? '';
  }

  get localPort(): number {
    return this.#socket.localPort ?? 0;
  }

  /**
   * Stops reading from the peer (its messages wait in the kernel, and TCP flow control slows it down): for
   * bridges and proxies whose other side is not keeping up. Pings are not answered while paused.
   */
  pause(): void {
    this.#readingPaused = true;
    this.#socket.pause();
  }

  resume(): void {
    this.#readingPaused = false;
    if (!this.#socket.destroyed) this.#socket.resume();
  }

  get isPaused(): boolean {
    return this.#readingPaused;
  }

  /** The request's query parameters, parsed when first asked for. */
  get query(): URLSearchParams {
    const at = this.url.indexOf('?');
    return new URLSearchParams(at === -1 ? '' : this.url.slice(at + 1));
  }

  /**
   * The connection's messages, in order, as an async iterator: `for await (const { data, isBinary } of
   * ws.messages())`. Messages are kept from the first call on (connect() without a `message` handler keeps them
   * from the start), reading pauses while more than `inboxHighWaterBytes` wait, and the loop ends once the
   * connection has closed and every message received before the close was yielded. `break` does not close the
   * connection: later messages wait for the next loop. The `message` handler, if any, still sees each message.
   */
  messages(options?: MessageInboxOptions): AsyncIterableIterator<ReceivedMessage> {
    return new MessageIterator(this.openInbox(options));
  }

  /** @internal Starts keeping messages for messages(); connect() calls it before the first can arrive. */
  openInbox(options?: MessageInboxOptions): MessageInbox {
    let inbox = this.#inbox;
    if (inbox === undefined) {
      if (this.#policy.messagePieceBytes > 0) {
        throw new TypeError('messages() takes whole messages, and this connection delivers them in pieces (messagePieceBytes > 0)');
      }
      inbox = this.#inbox = new MessageInbox(this, options);
      if (this.#close?.details !== undefined) inbox.end();
    } else if (options !== undefined) {
      inbox.configure(options);
    }
    return inbox;
  }

  /** The close code the `close` handler got; undefined until then. */
  get closeCode(): number | undefined {
    return this.#close?.details?.code;
  }

  get closeReason(): string | undefined {
    return this.#close?.details?.reason;
  }

  get closeWasClean(): boolean | undefined {
    return this.#close?.details?.wasClean;
  }

  /** Resolves (never rejects) with the code, reason and wasClean once the connection has closed. */
  get closed(): Promise<CloseDetails> {
    return (this.#close ??= new CloseRecord()).promise;
  }

  /** Starts delivery: calls `open`, then feeds bytes that arrived together with the handshake. */
  start(head?: Buffer): void {
    if (this.#handlers.open !== undefined) {
      try {
        this.#handlers.open(this);
      } catch (error) {
        this.#failFromHandler(error);
        return;
      }
    }
    if (head !== undefined && head.length > 0) this.#onData(head);
    else if (this.#connection.outgoingBytes > 0) this.#scheduleFlush();
  }

  get readyState(): ReadyState {
    if (this.#socketClosed) return ReadyState.Closed;
    const state = this.#connection.readyState;
    return state === ReadyState.Open && this.#closeRequested ? ReadyState.Closing : state;
  }

  /** Bytes accepted by send() and not yet handed to the kernel (including any waiting for compression). */
  get bufferedAmount(): number {
    const waiting = this.#deflate === undefined ? 0 : this.#deflate.queuedBytes;
    return this.#connection.outgoingBytes + this.#socket.writableLength + waiting;
  }

  /**
   * Queues a message: a string goes as text, anything else as binary, unless `isBinary` says otherwise
   * (bytes sent as text must be UTF-8). Returns false when the message was not sent because the
   * connection is closing, or when it was queued but the buffer is over the backpressure limit: wait for
   * `drain` before sending more.
   */
  send(data: string | Buffer | Uint8Array | ArrayBuffer, isBinary: boolean = typeof data !== 'string'): boolean {
    const connection = this.#connection;
    const byteLength = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
    if (!this.#admit(byteLength, undefined)) return false;
    if (this.#deflateAgreement !== undefined && (byteLength >= this.#policy.deflateThresholdBytes || this.#deflate?.holdsOutbound === true)) {
      if (connection.readyState !== ReadyState.Open || this.#socketClosed || this.#closeRequested) return false;
      const payload = typeof data === 'string' ? Buffer.from(data) : data instanceof ArrayBuffer ? new Uint8Array(data) : data;
      this.#pipeline().send(payload, isBinary);
      return this.#afterQueue(true, byteLength);
    }
    if (this.#closeRequested) return false;
    let queued: boolean;
    if (typeof data === 'string') queued = isBinary ? connection.send(Buffer.from(data), true) : connection.sendText(data);
    else queued = connection.send(data instanceof ArrayBuffer ? new Uint8Array(data) : data, isBinary);
    return this.#afterQueue(queued, byteLength);
  }

  /** Queues a published message (the broker calls this): its shared frame, or a compressed one. */
  sendPublished(message: PublishedMessage, topic: string): boolean {
    const byteLength = message.data.length;
    if (!this.#admit(byteLength, topic, message)) return false;
    return this.#afterQueue(this.#queuePublished(message), byteLength);
  }

  #queuePublished(message: PublishedMessage): boolean {
    if (this.#deflateAgreement === undefined || (message.data.length < this.#policy.deflateThresholdBytes && this.#deflate?.holdsOutbound !== true)) {
      return !this.#closeRequested && this.#connection.sendEncoded(message.plainFrames());
    }
    if (this.#connection.readyState !== ReadyState.Open || this.#socketClosed || this.#closeRequested) return false;
    this.#pipeline().sendPublished(message);
    return true;
  }

  /** The compression pipeline, made when the connection first compresses or inflates something. */
  #pipeline(): DeflatePipeline {
    if (this.#deflate === undefined) {
      const policy = this.#policy;
      const codec = new PerMessageDeflate(this.#deflateAgreement!, this.#role, {
        level: policy.deflateLevel, memLevel: policy.deflateMemLevel, maxMessageBytes: policy.maxMessageBytes,
      });
      this.#deflate = new DeflatePipeline(codec, this.#pipelineHost(), policy.deflateThresholdBytes);
    }
    return this.#deflate;
  }

  /** Queues frames the caller encoded (unmasked, uncompressed server frames). */
  sendEncoded(frames: readonly Buffer[]): boolean {
    if (!this.#admit(totalLength(frames), undefined)) return false;
    return this.#afterQueue(this.#connection.sendEncoded(frames), encodedPayloadLength(frames));
  }

  #afterQueue(queued: boolean, payloadBytes: number): boolean {
    if (!queued) return false;
    this.messagesOut++;
    this.bytesOut += payloadBytes;
    this.#lastMessageAtMs = this.#sweep.nowMs;
    this.#scheduleFlush();
    return this.#checkBackpressure();
  }

  /**
   * The slow-consumer policy: lets a message through while unsent bytes stay within maxBackpressureBytes;
   * otherwise closes (1008), drops it, or (keep-latest, published messages) parks it as its topic's newest.
   */
  #admit(byteLength: number, topic: string | undefined, message?: PublishedMessage): boolean {
    const policy = this.#policy;
    const fits = this.bufferedAmount + byteLength <= policy.maxBackpressureBytes;
    // While an older message of this topic is parked, a newer one replaces it, so a topic never reorders.
    if (fits && (topic === undefined || this.#latestByTopic?.has(topic) !== true)) return true;
    if (this.#connection.readyState !== ReadyState.Open) return false;
    if (policy.slowConsumerPolicy === 'keep-latest' && topic !== undefined && message !== undefined) {
      const parked = (this.#latestByTopic ??= new Map());
      const replaced = parked.get(topic);
      if (replaced !== undefined) this.#recordDrop(replaced.data.length, topic);
      parked.set(topic, message);
      this.#awaitingDrain = true;
      this.#ensureDrainSignal();
      return false;
    }
    this.#recordDrop(byteLength, topic);
    if (policy.slowConsumerPolicy === 'close') {
      this.#connection.fail(CloseCode.PolicyViolation, 'slow consumer: too many unsent bytes');
      this.#flush();
    }
    return false;
  }

  #recordDrop(byteLength: number, topic: string | undefined): void {
    this.droppedMessages++;
    const dropped = this.#handlers.dropped;
    if (dropped !== undefined) {
      try {
        dropped(this, byteLength, topic);
      } catch (error) {
        this.#reportError(error);
      }
    }
    this.#owner?.dropped(this, byteLength, topic);
  }

  /** Writes parked keep-latest messages once there is room again; returns false if some must keep waiting. */
  #releaseParked(): boolean {
    const parked = this.#latestByTopic;
    if (parked === undefined) return true;
    for (const [topic, message] of parked) {
      if (this.bufferedAmount + message.data.length > this.#policy.maxBackpressureBytes) return false;
      parked.delete(topic);
      if (this.#queuePublished(message)) {
        this.messagesOut++;
        this.bytesOut += message.data.length;
      }
    }
    this.#latestByTopic = undefined;
    this.#flush();
    return true;
  }

  ping(data: string | Uint8Array = Buffer.alloc(0)): boolean {
    const sent = this.#connection.ping(typeof data === 'string' ? Buffer.from(data) : data);
    if (sent) this.#scheduleFlush();
    return sent;
  }

  /** Starts the closing handshake. Throws RangeError for a code or reason that may not be sent. */
  close(code: number = CloseCode.Normal, reason = ''): void {
    assertSendableClose(code, reason);
    const deflate = this.#deflate;
    if (deflate !== undefined && deflate.holdsOutbound) {
      // Messages sent before close() still wait for zlib: the close frame follows them, and nothing sent
      // from now on is accepted.
      if (this.#closeRequested) return;
      this.#closeRequested = true;
      deflate.whenOutboundDone(() => {
        this.#connection.close(code, reason);
        this.#flush();
      });
      return;
    }
    this.#connection.close(code, reason);
    this.#scheduleFlush();
  }

  subscribe(topic: string): boolean {
    if (this.#broker === undefined) throw new TypeError('this WebSocket has no topic broker (client connections cannot subscribe)');
    if (this.#socketClosed) return false;
    (this.#topics ??= new Set()).add(topic);
    return this.#broker.subscribe(topic, this);
  }

  unsubscribe(topic: string): boolean {
    this.#topics?.delete(topic);
    return this.#broker?.unsubscribe(topic, this) ?? false;
  }

  isSubscribed(topic: string): boolean {
    return this.#topics?.has(topic) ?? false;
  }

  get topics(): readonly string[] {
    return this.#topics === undefined ? [] : [...this.#topics];
  }

  /** Drops the connection at once, without a closing handshake (the peer sees 1006). */
  terminate(): void {
    this.#socket.destroy();
  }

  // ---- ProtocolEvents (called by the Connection; not for applications) ----

  onMessage(data: Buffer, isBinary: boolean): void {
    if (this.#deflate?.holdsInbound === true) {
      // An earlier compressed message is still being inflated: this one waits its turn.
      this.#deflate.receive(data, isBinary, false);
      return;
    }
    this.#deliverMessage(data, isBinary);
  }

  #deliverMessage(data: Buffer, isBinary: boolean): void {
    const pieceBytes = this.#policy.messagePieceBytes;
    if (pieceBytes > 0 && this.#deflateAgreement !== undefined) {
      for (let offset = 0; ; offset += pieceBytes) {
        const end = Math.min(data.length, offset + pieceBytes);
        this.onMessagePiece(data.subarray(offset, end), isBinary, end === data.length);
        if (end === data.length) return;
      }
    }
    this.messagesIn++;
    this.bytesIn += data.length;
    this.#lastMessageAtMs = this.#sweep.nowMs;
    this.#handlers.message?.(this, data, isBinary);
    this.#inbox?.push(data, isBinary);
  }

  onMessagePiece(piece: Buffer, isBinary: boolean, isLast: boolean): void {
    if (isLast) this.messagesIn++;
    this.bytesIn += piece.length;
    this.#lastMessageAtMs = this.#sweep.nowMs;
    this.#handlers.messagePiece?.(this, piece, isBinary, isLast);
  }

  onCompressedMessage(data: Buffer, isBinary: boolean): void {
    if (this.#deflateAgreement === undefined) {
      this.#connection.fail(CloseCode.ProtocolError, 'compressed message without permessage-deflate');
      return;
    }
    this.#pipeline().receive(data, isBinary, true);
  }

  /** A message the pipeline releases in order: inflated ones get their UTF-8 check here, then the handlers. */
  #deliverInflated(data: Buffer, isBinary: boolean, inflated: boolean): void {
    if (inflated && !isBinary && !this.#policy.allowInvalidUtf8 && !isUtf8(data)) {
      this.#failWith(new ProtocolErrorClass('ERR_INVALID_UTF8', CloseCode.InvalidPayload, 'invalid UTF-8 in text message'));
      return;
    }
    try {
      this.#deliverMessage(data, isBinary);
    } catch (error) {
      this.#failFromHandler(error);
    }
  }

  #failWith(error: ProtocolError): void {
    this.#connection.fail(error.closeCode, error.message);
    this.#flush();
    this.onProtocolError(error);
  }

  #pipelineHost(): PipelineHost {
    return {
      deliver: (data, isBinary, inflated) => this.#deliverInflated(data, isBinary, inflated),
      queueFrame: (payload, isBinary, compressed) => { this.#connection.send(payload, isBinary, compressed); },
      queueEncoded: (frames) => { this.#connection.sendEncoded(frames); },
      fail: (error) => this.#failWith(error),
      pauseReading: () => { this.#socket.pause(); },
      resumeReading: () => { if (!this.#socket.destroyed && !this.#readingPaused) this.#socket.resume(); },
      flush: () => this.#flush(),
    };
  }

  onPing(data: Buffer): void {
    this.#handlers.ping?.(this, data);
  }

  onPong(data: Buffer): void {
    if (this.#pingSentAtMs !== 0) {
      this.latencyMs = Date.now() - this.#pingSentAtMs;
      this.#pingSentAtMs = 0;
    }
    this.#handlers.pong?.(this, data);
  }

  onCloseFrame(): void {
    // Reported through `close` once the transport is gone, with wasClean known.
  }

  onProtocolError(error: ProtocolError): void {
    this.#handlers.error?.(this, error);
  }

  // ---- Sweepable ----

  sweep(nowMs: number): void {
    const connection = this.#connection;
    if (connection.closeExpected()) {
      if (this.#closeDeadlineMs === 0) this.#closeDeadlineMs = nowMs + this.#policy.closeTimeoutMs;
      else if (nowMs >= this.#closeDeadlineMs) this.#socket.destroy();
      return;
    }
    const policy = this.#policy;
    if (policy.idleTimeoutMs > 0 && nowMs - this.#lastMessageAtMs >= policy.idleTimeoutMs) {
      connection.close(CloseCode.GoingAway, 'idle timeout');
      this.#flush();
      return;
    }
    if (policy.maxLifetimeMs > 0 && nowMs - this.openedAtMs >= policy.maxLifetimeMs) {
      connection.close(CloseCode.GoingAway, 'connection lifetime exceeded');
      this.#flush();
      return;
    }
    if (policy.pingIntervalMs > 0 && nowMs >= this.#nextPingAtMs) {
      this.#nextPingAtMs = nowMs + policy.pingIntervalMs;
      if (this.#heardFromPeer) {
        this.#heardFromPeer = false;
      } else if (this.#pingSentAtMs !== 0) {
        // A whole interval passed after our ping without a byte from the peer.
        connection.fail(CloseCode.InternalError, 'keepalive ping timeout');
        this.#flush();
        return;
      }
      if (this.#pingSentAtMs === 0) {
        this.#pingSentAtMs = Date.now();
        connection.ping();
        this.#flush();
      }
    }
  }

  // ---- I/O ----

  #onData(chunk: Buffer): void {
    this.#heardFromPeer = true;
    this.#receiving = true;
    try {
      this.#connection.receiveData(chunk);
    } catch (error) {
      // Only an application handler can throw here (the core never does).
      this.#receiving = false;
      this.#failFromHandler(error);
      return;
    } finally {
      this.#receiving = false;
    }
    this.#flush();
  }

  #onEnd(): void {
    this.#connection.receiveEof();
    this.#flush();
    if (!this.#transportEnded) {
      this.#transportEnded = true;
      this.#socket.end();
    }
  }

  #onDrain(): void {
    if (!this.#awaitingDrain) return;
    if (!this.#releaseParked()) {
      this.#ensureDrainSignal();
      return;
    }
    if (this.bufferedAmount > this.#policy.backpressureBytes) return;
    this.#awaitingDrain = false;
    const drain = this.#handlers.drain;
    if (drain === undefined) return;
    try {
      drain(this);
    } catch (error) {
      this.#failFromHandler(error);
    }
  }

  /** An application handler threw: report it and fail this connection with 1011; others are unaffected. */
  #failFromHandler(error: unknown): void {
    this.#connection.fail(CloseCode.InternalError, 'internal error');
    this.#reportError(error);
    this.#flush();
  }

  #onSocketError(error: NodeJS.ErrnoException): void {
    // A peer that resets or vanishes is ordinary on the internet; `close` reports it as 1006.
    if (error.code === 'ECONNRESET' || error.code === 'EPIPE') return;
    this.#reportError(error);
  }

  #onSocketClose(): void {
    this.#socketClosed = true;
    this.#sweep.delete(this);
    this.#latestByTopic = undefined;
    if (this.#topics !== undefined) {
      for (const topic of this.#topics) this.#broker?.unsubscribe(topic, this);
      this.#topics = undefined;
    }
    this.#connection.receiveEof();
    const deflate = this.#deflate;
    if (deflate !== undefined) {
      // Messages that arrived before the close but still wait for inflation are delivered before `close`.
      deflate.dropOutbound();
      deflate.whenInboundDone(() => {
        deflate.close();
        this.#reportClosed();
      });
      return;
    }
    this.#reportClosed();
  }

  #reportClosed(): void {
    const details = this.#connection.closeInfo();
    (this.#close ??= new CloseRecord()).settle(details);
    this.#inbox?.end();
    const { code, reason, wasClean } = details;
    const close = this.#handlers.close;
    if (close !== undefined) {
      try {
        close(this, code, reason, wasClean);
      } catch (error) {
        this.#reportError(error);
      }
    }
    this.#owner?.closed(this, code, reason, wasClean);
  }

  /** Hands an error to the route's `error` handler, or, without one, to a process warning (never a crash). */
  #reportError(error: unknown): void {
    const failure = error instanceof Error ? error : new Error(String(error));
    const handler = this.#handlers.error;
    try {
      if (handler !== undefined) {
        handler(this, failure);
        return;
      }
    } catch (handlerError) {
      process.emitWarning(`WebSocket error handler threw: ${(handlerError as Error)?.stack ?? String(handlerError)}`, 'SwitchyardWarning');
    }
    process.emitWarning(`WebSocket handler threw: ${failure.stack ?? failure.message}`, 'SwitchyardWarning');
  }

  #scheduleFlush(): void {
    if (this.#receiving || this.#flushScheduled) return;
    this.#flushScheduled = true;
    pendingFlushes.push(this);
    if (pendingFlushes.length === 1) setImmediate(flushPending);
  }

  /** @internal Writes what the connection queued, then follows its lead on closing the transport. */
  flushNow(): void {
    this.#flushScheduled = false;
    this.#flush();
  }

  #flush(): void {
    const connection = this.#connection;
    if (connection.outgoingBytes > 0) {
      const chunks = connection.takeOutgoing();
      if (!this.#transportEnded && !this.#socket.destroyed) this.#write(chunks);
    }
    if (connection.shouldCloseTransport() && !this.#transportEnded) {
      this.#transportEnded = true;
      this.#socket.end();
    }
    if (this.#closeDeadlineMs === 0 && connection.closeExpected() && !this.#socketClosed) {
      this.#closeDeadlineMs = this.#sweep.nowMs + this.#policy.closeTimeoutMs;
    }
  }

  #write(chunks: Buffer[]): void {
    const socket = this.#socket;
    // send() reported backpressure from our own limit while the socket itself may never fill up (and so never
    // emit 'drain'): the last write's callback checks again once the bytes have left.
    const afterWrite = this.#awaitingDrain ? this.#drainCheck : undefined;
    let belowHighWater: boolean;
    if (chunks.length === 1) {
      belowHighWater = socket.write(chunks[0]!, afterWrite);
    } else {
      let totalBytes = 0;
      for (const chunk of chunks) totalBytes += chunk.length;
      if (totalBytes <= COALESCE_MAX_BYTES) {
        belowHighWater = socket.write(Buffer.concat(chunks, totalBytes), afterWrite);
      } else {
        socket.cork();
        belowHighWater = true;
        const last = chunks.length - 1;
        for (let i = 0; i < last; i++) socket.write(chunks[i]!);
        belowHighWater = socket.write(chunks[last]!, afterWrite);
        socket.uncork();
      }
    }
    if (!belowHighWater) this.#awaitingDrain = true;
  }

  get #drainCheck(): () => void {
    return (this.#drainCheckBound ??= () => this.#onDrain());
  }

  /** Makes sure a drain check will come: the socket's own 'drain' if it is full, else a write callback. */
  #ensureDrainSignal(): void {
    const socket = this.#socket;
    if (socket.writableNeedDrain || socket.destroyed) return;
    if (this.#connection.outgoingBytes > 0) return; // the coming flush attaches the callback
    socket.write(EMPTY_WRITE, this.#drainCheck);
  }

  #checkBackpressure(): boolean {
    if (this.bufferedAmount <= this.#policy.backpressureBytes) return true;
    this.#awaitingDrain = true;
    return false;
  }
}

function totalLength(frames: readonly Buffer[]): number {
  let byteLength = 0;
  for (const frame of frames) byteLength += frame.length;
  return byteLength;
}

/** The payload length of one pre-encoded (unmasked) server frame: its length minus its 2, 4 or 10 header bytes. */
function encodedPayloadLength(frames: readonly Buffer[]): number {
  const length7 = (frames[0]?.[1] ?? 0) & 0x7f;
  return Math.max(0, totalLength(frames) - (length7 === 127 ? 10 : length7 === 126 ? 4 : 2));
}

/**
 * Connections with frames queued outside a receive (publish, timers, other connections' handlers). They are
 * written once per event-loop turn, after every socket read of that turn: messages published from several
 * connections' reads reach each subscriber in one write, not one write per message.
 */
let pendingFlushes: Array<WebSocket<any>> = [];

function flushPending(): void {
  const batch = pendingFlushes;
  pendingFlushes = [];
  for (const ws of batch) ws.flushNow();
}
