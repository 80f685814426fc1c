// One WebSocket's protocol state, sans-I/O (python-websockets' design): bytes in through receiveData(),
// events out through a sink, bytes to write out through takeOutgoing(). Owns message reassembly, UTF-8
// checks, ping/pong and the closing handshake (RFC 6455 §5.4, §5.5, §7) for either role.
import { ProtocolError } from '../errors.js';
import { assertSendableClose, encodeClosePayload, isValidWireCloseCode, truncateCloseReason } from './close.js';
import {
  CloseCode, DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_MESSAGE_BYTES, Opcode, ReadyState, type Role,
} from './constants.js';
import { encodeClientFrame, encodeServerFrame, encodeServerTextFrame } from './frame.js';
import { FrameParser, type FrameSink } from './frame-parser.js';
import { isUtf8, Utf8Validator } from './utf8.js';

export interface ProtocolEvents {
  onMessage(data: Buffer, isBinary: boolean): void;
  /** A ping arrived; the pong with the same payload is already queued. */
  onPing(data: Buffer): void;
  onPong(data: Buffer): void;
  /** The peer's close frame arrived (1005 when it carried no code); our answer is already queued. */
  onCloseFrame(code: number, reason: string): void;
  /** The peer broke the protocol or a limit; our close frame with `error.closeCode` is queued. */
  onProtocolError(error: ProtocolError): void;
  /** With messagePieceBytes set: the next piece of a message (at most that many bytes), in order. */
  onMessagePiece?(piece: Buffer, isBinary: boolean, isLast: boolean): void;
  /**
   * With perMessageDeflate: a whole message whose first frame had RSV1, still compressed (RFC 7692 §6). The
   * I/O layer inflates it, checks text for UTF-8 and delivers it; the core never sees its plain bytes.
   */
  onCompressedMessage?(payload: Buffer, isBinary: boolean): void;
}

export interface ConnectionOptions {
  /** Largest payload of one frame, checked from the header (close 1009). */
  maxFrameBytes?: number;
  /** Largest message after reassembly, checked from each frame header (close 1009). */
  maxMessageBytes?: number;
  /**
   * Deliver data messages through onMessagePiece in pieces of at most this many bytes as they arrive, never
   * holding a whole message (Appweb's LimitWebSocketsPacket). 0 (the default) delivers whole messages.
   */
  messagePieceBytes?: number;
  /** Deliver text messages that are not valid UTF-8 instead of failing with 1007 (Appweb's IgnoreEncodingErrors). */
  allowInvalidUtf8?: boolean;
  /** permessage-deflate was negotiated: RSV1 marks a compressed message (RFC 7692 §6). */
  perMessageDeflate?: boolean;
}

export interface CloseInfo {
  code: number;
  reason: string;
  /** Both close frames were exchanged and nobody failed the connection. */
  wasClean: boolean;
}

const EMPTY = Buffer.alloc(0);
const COMPRESSED = Object.freeze({ rsv1: true });

export class Connection implements FrameSink {
  readonly role: Role;
  readonly #events: ProtocolEvents;
  readonly #parser: FrameParser;
  readonly #maxMessageBytes: number;
  readonly #messagePieceBytes: number;
  readonly #checkUtf8: boolean;
  #outgoing: Buffer[] = [];
  #outgoingBytes = 0;
  #state: ReadyState = ReadyState.Open;

  // Message reassembly: the opcode of the fragmented message in progress (0 when none) and its parts.
  #messageOpcode = 0;
  #fragments: Buffer[] = [];
  #messageBytes = 0;
  /** The current frame carries text that the core checks for UTF-8 (not compressed, not allowed invalid). */
  #frameNeedsUtf8 = false;
  /** The message in progress arrived compressed (RSV1 on its first frame). */
  #messageCompressed = false;
  /** The current frame's bytes went through the incremental validator as they arrived. */
  #frameCheckedInPieces = false;
  #utf8: Utf8Validator | undefined;
  /** Streaming mode: received bytes of the current message not yet handed out as a piece. */
  #pieceQueue: Buffer[] = [];
  #pieceQueueBytes = 0;

  #closeSent = false;
  #closeReceived = false;
  #failed = false;
  #transportClosed = false;
  #endTransport = false;
  #closeCode: number = CloseCode.Abnormal;
  #closeReason = '';

  constructor(role: Role, events: ProtocolEvents, options: ConnectionOptions = {}) {
    this.role = role;
    this.#events = events;
    this.#maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.#messagePieceBytes = options.messagePieceBytes ?? 0;
    this.#checkUtf8 = !(options.allowInvalidUtf8 ?? false);
    this.#parser = new FrameParser(role, this, {
      maxFrameBytes: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
      streamDataPayloads: this.#messagePieceBytes > 0,
    });
    this.#parser.rsv1Allowed = options.perMessageDeflate ?? false;
  }

  get readyState(): ReadyState {
    return this.#state;
  }

  /** Bytes queued by this connection and not yet taken by the transport. */
  get outgoingBytes(): number {
    return this.#outgoingBytes;
  }

  /** Feeds received bytes. Never throws: violations become a queued close frame and onProtocolError. */
  receiveData(chunk: Buffer): void {
    if (!this.#parser.stopped) this.#parser.push(chunk);
  }

  /** The peer closed its side of the transport. */
  receiveEof(): void {
    this.#transportClosed = true;
    this.#parser.stop();
    this.#state = ReadyState.Closed;
    this.#releaseMessage();
  }

  // ---- sending ----

  /** Queues a data message; returns false (and sends nothing) once our close frame has been sent. */
  /** `compressed`: the payload is permessage-deflate output; its frame carries RSV1 (RFC 7692 §6). */
  send(payload: Uint8Array, isBinary: boolean, compressed = false): boolean {
    if (!this.#canSend()) return false;
    this.#queueFrame(isBinary ? Opcode.Binary : Opcode.Text, payload, compressed);
    return true;
  }

  /** Queues a text message straight from a string. */
  sendText(text: string): boolean {
    if (!this.#canSend()) return false;
    if (this.role === 'server') this.#queue(encodeServerTextFrame(text));
    else this.#queueFrame(Opcode.Text, Buffer.from(text));
    return true;
  }

  /** Queues frames encoded once elsewhere (a server publishing the same bytes to many connections). */
  sendEncoded(frames: readonly Buffer[]): boolean {
    if (!this.#canSend()) return false;
    if (this.role !== 'server') throw new TypeError('pre-encoded frames are unmasked: server role only');
    this.#queue(frames);
    return true;
  }

  ping(payload: Uint8Array = EMPTY): boolean {
    return this.#sendControl(Opcode.Ping, payload);
  }

  pong(payload: Uint8Array = EMPTY): boolean {
    return this.#sendControl(Opcode.Pong, payload);
  }

  /**
   * Starts (or answers) the closing handshake. Throws RangeError for a code or reason that may not be sent.
   * After this no data frame is sent.
   */
  close(code: number = CloseCode.Normal, reason = ''): void {
    assertSendableClose(code, reason);
    // Nothing can be sent once the transport ended (receiveEof); the state stays Closed.
    if (this.#closeSent || this.#state === ReadyState.Closed) return;
    this.#sendClose(code, reason);
    if (this.#closeReceived) this.#finishHandshake();
    else this.#state = ReadyState.Closing;
  }

  /**
   * Fails the connection (RFC 6455 §7.1.7): sends a close frame with `code` if none was sent, stops reading,
   * and asks the transport to close. Used by the I/O layer for timeouts; the receive path uses it for
   * violations.
   */
  fail(code: number, reason: string): void {
    if (!this.#closeSent) {
      this.#sendClose(isValidWireCloseCode(code) ? code : CloseCode.ProtocolError, truncateCloseReason(reason));
    }
    this.#failed = true;
    this.#parser.stop();
    this.#state = ReadyState.Closed;
    this.#endTransport = true;
    this.#releaseMessage();
  }

  /** The bytes to write, in order; the queue is empty afterwards. */
  takeOutgoing(): Buffer[] {
    const outgoing = this.#outgoing;
    this.#outgoing = [];
    this.#outgoingBytes = 0;
    return outgoing;
  }

  /** True once the transport should be closed after writing what takeOutgoing() returned. */
  shouldCloseTransport(): boolean {
    return this.#endTransport;
  }

  /** True while the transport stays open only to finish closing: the I/O layer arms its close timer. */
  closeExpected(): boolean {
    return this.#state !== ReadyState.Open;
  }

  /** How the connection ended (or is ending): the peer's close code, ours after a failure, else 1006. */
  closeInfo(): CloseInfo {
    // RFC 6455 §7.1.5: with no close frame received the code is 1006, even when we sent ours (a failure
    // reports the code we failed with, as documented).
    if (!this.#closeReceived && !this.#failed) return { code: CloseCode.Abnormal, reason: '', wasClean: false };
    return { code: this.#closeCode, reason: this.#closeReason, wasClean: this.#closeSent && this.#closeReceived && !this.#failed };
  }

  // ---- FrameSink: called by the parser ----

  onFrameHeader(parser: FrameParser): boolean {
    const opcode = parser.opcode;
    if (opcode >= Opcode.Close) return true;
    if (opcode === Opcode.Continuation) {
      // RFC 6455 §5.4: a continuation frame only continues a message started by a text or binary frame.
      if (this.#messageOpcode === 0) return this.#violate('ERR_UNEXPECTED_CONTINUATION', CloseCode.ProtocolError, 'continuation frame without a message to continue');
      this.#frameNeedsUtf8 = this.#messageOpcode === Opcode.Text && this.#checkUtf8 && !this.#messageCompressed;
    } else {
      // RFC 6455 §5.4: the fragments of one message MUST NOT be interleaved with another message's frames.
      if (this.#messageOpcode !== 0) return this.#violate('ERR_INCOMPLETE_MESSAGE', CloseCode.ProtocolError, 'new message before the fragmented one ended');
      // RFC 7692 §6.1: RSV1 on a message's first frame marks the whole message compressed (the parser already
      // refused RSV1 on continuation and control frames, and without the extension).
      this.#messageCompressed = parser.rsv1;
      if (this.#messagePieceBytes > 0) parser.streamDataPayloads = !parser.rsv1;
      this.#frameNeedsUtf8 = opcode === Opcode.Text && this.#checkUtf8 && !parser.rsv1;
      if (!parser.fin) this.#messageOpcode = opcode;
    }
    if (this.#messageBytes + parser.payloadLength > this.#maxMessageBytes) {
      return this.#violate('ERR_MESSAGE_TOO_BIG', CloseCode.MessageTooBig, `message over ${this.#maxMessageBytes} bytes`);
    }
    this.#frameCheckedInPieces = false;
    return true;
  }

  onPayloadPiece(piece: Buffer): boolean {
    if (this.#parser.opcode >= Opcode.Close) return true;
    if (this.#frameNeedsUtf8) {
      // Fail fast: a text frame arriving in pieces is checked as each piece lands (Autobahn 6.4).
      this.#frameCheckedInPieces = true;
      if (!(this.#utf8 ??= new Utf8Validator()).write(piece)) return this.#violate('ERR_INVALID_UTF8', CloseCode.InvalidPayload, 'invalid UTF-8 in text message');
    }
    if (this.#parser.streamDataPayloads && piece.length > 0) {
      this.#pieceQueue.push(piece);
      this.#pieceQueueBytes += piece.length;
      if (this.#pieceQueueBytes > this.#messagePieceBytes) this.#emitPieces(false);
      return !this.#parser.stopped;
    }
    return true;
  }

  onFrame(payload: Buffer): boolean {
    const parser = this.#parser;
    const opcode = parser.opcode;
    if (opcode >= Opcode.Close) return this.#onControlFrame(opcode, payload);
    if (this.#parser.streamDataPayloads) return this.#onStreamedFrameEnd();

    const fin = parser.fin;
    const fragmented = this.#messageOpcode !== 0;
    if (this.#frameNeedsUtf8) {
      if (!fragmented && !this.#frameCheckedInPieces) {
        // The common case: a whole text message in one frame, checked natively.
        if (!isUtf8(payload)) return this.#violate('ERR_INVALID_UTF8', CloseCode.InvalidPayload, 'invalid UTF-8 in text message');
      } else {
        const validator = (this.#utf8 ??= new Utf8Validator());
        if (!this.#frameCheckedInPieces && !validator.write(payload)) {
          return this.#violate('ERR_INVALID_UTF8', CloseCode.InvalidPayload, 'invalid UTF-8 in text message');
        }
        if (fin && !validator.atBoundary) {
          return this.#violate('ERR_INVALID_UTF8', CloseCode.InvalidPayload, 'text message ends inside a UTF-8 sequence');
        }
      }
    }
    if (!fragmented) {
      if (this.#frameCheckedInPieces) this.#utf8!.reset();
      this.#deliver(payload, opcode === Opcode.Binary);
      return !this.#parser.stopped;
    }
    if (payload.length > 0) this.#fragments.push(payload);
    this.#messageBytes += payload.length;
    if (!fin) return true;

    const isBinary = this.#messageOpcode === Opcode.Binary;
    const fragments = this.#fragments;
    const message = fragments.length === 1 ? fragments[0]! : fragments.length === 0 ? EMPTY : Buffer.concat(fragments, this.#messageBytes);
    const compressed = this.#messageCompressed;
    this.#releaseMessage();
    this.#messageCompressed = compressed;
    this.#deliver(message, isBinary);
    return !this.#parser.stopped;
  }

  onFrameError(error: ProtocolError): void {
    this.fail(error.closeCode, error.message);
    this.#events.onProtocolError(error);
  }

  // ---- internals ----

  #deliver(message: Buffer, isBinary: boolean): void {
    if (this.#messageCompressed) {
      this.#messageCompressed = false;
      this.#events.onCompressedMessage?.(message, isBinary);
    } else {
      this.#events.onMessage(message, isBinary);
    }
  }

  /** Streaming mode: a data frame's payload has all been seen through onPayloadPiece. */
  #onStreamedFrameEnd(): boolean {
    const parser = this.#parser;
    if (!parser.fin) {
      this.#messageBytes += parser.payloadLength;
      return true;
    }
    if (this.#frameNeedsUtf8 && !(this.#utf8?.atBoundary ?? true)) {
      return this.#violate('ERR_INVALID_UTF8', CloseCode.InvalidPayload, 'text message ends inside a UTF-8 sequence');
    }
    this.#emitPieces(true);
    this.#releaseMessage();
    return !parser.stopped;
  }

  /** Hands out queued bytes in pieces of messagePieceBytes, keeping the last (up to a whole piece) for `final`. */
  #emitPieces(final: boolean): void {
    const size = this.#messagePieceBytes;
    const isBinary = (this.#messageOpcode !== 0 ? this.#messageOpcode : this.#parser.opcode) === Opcode.Binary;
    while (this.#pieceQueueBytes > size) {
      this.#events.onMessagePiece?.(this.#takeQueued(size), isBinary, false);
      if (this.#parser.stopped) return;
    }
    if (final) this.#events.onMessagePiece?.(this.#takeQueued(this.#pieceQueueBytes), isBinary, true);
  }

  #takeQueued(byteCount: number): Buffer {
    const queue = this.#pieceQueue;
    this.#pieceQueueBytes -= byteCount;
    const first = queue[0];
    if (first === undefined || byteCount === 0) return EMPTY;
    if (first.length >= byteCount) {
      // One view covers the piece: hand out a view, no copy.
      if (first.length === byteCount) queue.shift();
      else queue[0] = first.subarray(byteCount);
      return first.subarray(0, byteCount);
    }
    const piece = Buffer.allocUnsafe(byteCount);
    let filled = 0;
    while (filled < byteCount) {
      const part = queue[0]!;
      const take = Math.min(part.length, byteCount - filled);
      part.copy(piece, filled, 0, take);
      filled += take;
      if (take === part.length) queue.shift();
      else queue[0] = part.subarray(take);
    }
    return piece;
  }

  #onControlFrame(opcode: number, payload: Buffer): boolean {
    if (opcode === Opcode.Ping) {
      // RFC 6455 §5.5.2: answer with a pong carrying the same payload, unless we already sent a close.
      this.#sendControl(Opcode.Pong, payload);
      this.#events.onPing(payload);
      return !this.#parser.stopped;
    }
    if (opcode === Opcode.Pong) {
      // RFC 6455 §5.5.3: an unsolicited pong is allowed and needs no answer.
      this.#events.onPong(payload);
      return !this.#parser.stopped;
    }
    return this.#onCloseFrame(payload);
  }

  #onCloseFrame(payload: Buffer): boolean {
    let code: number = CloseCode.NoStatus;
    let reason = '';
    if (payload.length === 1) return this.#violate('ERR_CLOSE_PAYLOAD_TOO_SHORT', CloseCode.ProtocolError, 'close payload of 1 byte');
    if (payload.length >= 2) {
      code = payload.readUInt16BE(0);
      // RFC 6455 §7.4: 1005, 1006, 1015 and unassigned codes MUST NOT appear in a close frame.
      if (!isValidWireCloseCode(code)) return this.#violate('ERR_INVALID_CLOSE_CODE', CloseCode.ProtocolError, `invalid close code ${code}`);
      const reasonBytes = payload.subarray(2);
      // RFC 6455 §5.5.1: the reason is UTF-8 encoded.
      if (!isUtf8(reasonBytes)) return this.#violate('ERR_INVALID_UTF8', CloseCode.InvalidPayload, 'close reason is not valid UTF-8');
      reason = reasonBytes.toString();
    }
    this.#closeReceived = true;
    this.#closeCode = code;
    this.#closeReason = reason;
    this.#parser.stop();
    this.#releaseMessage();
    // RFC 6455 §5.5.1: answer with a close frame, typically echoing the status code received.
    if (!this.#closeSent) this.#sendClose(code, reason);
    this.#finishHandshake();
    this.#events.onCloseFrame(code, reason);
    return false;
  }

  /** Both close frames are out: RFC 6455 §7.1.1 has the server close the TCP connection first. */
  #finishHandshake(): void {
    this.#state = ReadyState.Closed;
    if (this.role === 'server') this.#endTransport = true;
  }

  #sendClose(code: number, reason: string): void {
    this.#closeSent = true;
    if (!this.#closeReceived) {
      this.#closeCode = code;
      this.#closeReason = reason;
    }
    this.#queueFrame(Opcode.Close, encodeClosePayload(code, reason));
  }

  #sendControl(opcode: number, payload: Uint8Array): boolean {
    if (!this.#canSend()) return false;
    if (payload.length > 125) throw new RangeError('control frame payloads are at most 125 bytes (RFC 6455 §5.5)');
    this.#queueFrame(opcode, payload);
    return true;
  }

  #queueFrame(opcode: number, payload: Uint8Array, rsv1 = false): void {
    const options = rsv1 ? COMPRESSED : undefined;
    if (this.role === 'server') this.#queue(encodeServerFrame(opcode, payload, options));
    else {
      const frame = encodeClientFrame(opcode, payload, options);
      this.#outgoing.push(frame);
      this.#outgoingBytes += frame.length;
    }
  }

  #queue(frames: readonly Buffer[]): void {
    for (const frame of frames) {
      this.#outgoing.push(frame);
      this.#outgoingBytes += frame.length;
    }
  }

  /** RFC 6455 §5.5.1: nothing follows our close frame; and nothing can be sent once the transport is gone. */
  #canSend(): boolean {
    return !this.#closeSent && !this.#transportClosed;
  }

  #violate(code: string, closeCode: number, message: string): false {
    this.onFrameError(new ProtocolError(code, closeCode, message));
    return false;
  }

  #releaseMessage(): void {
    this.#messageOpcode = 0;
    this.#messageCompressed = false;
    this.#messageBytes = 0;
    if (this.#fragments.length > 0) this.#fragments = [];
    if (this.#pieceQueueBytes > 0 || this.#pieceQueue.length > 0) {
      this.#pieceQueue = [];
      this.#pieceQueueBytes = 0;
    }
    this.#utf8?.reset();
  }
}
