// The incremental frame parser (RFC 6455 §5.2): takes bytes split in any way, checks every framing rule from
// the header before any payload is buffered, and hands payloads out as unmasked views of the input chunk,
// copying only when a frame spans chunks.
import { ProtocolError } from '../errors.js';
import { CloseCode, MAX_CONTROL_PAYLOAD_BYTES, type Role } from './constants.js';
import { applyMask } from './frame.js';

/** Receives what the parser finds; each method returns false when it has stopped the connection. */
export interface FrameSink {
  /** A complete, framing-valid header; `parser.fin/rsv1/opcode/payloadLength` describe it. */
  onFrameHeader(parser: FrameParser): boolean;
  /**
   * Unmasked payload bytes of the current frame as they arrive: when the frame spans chunks (the bytes are
   * also collected for onFrame), and for every data frame in streaming mode (views, not collected).
   */
  onPayloadPiece(piece: Buffer): boolean;
  /** The whole unmasked payload of the current frame; empty for data frames in streaming mode. */
  onFrame(payload: Buffer): boolean;
  /** A framing rule was broken; parsing has stopped. */
  onFrameError(error: ProtocolError): void;
}

const State = { Header: 0, Payload: 1, Stopped: 2, StreamPayload: 3 } as const;
type State = (typeof State)[keyof typeof State];

const EMPTY = Buffer.alloc(0);
const MAX_HEADER_BYTES = 14;

export interface FrameParserOptions {
  maxFrameBytes: number;
  /**
   * Hand data-frame payloads to onPayloadPiece as views of the input, never collecting a frame in memory
   * (for delivering large messages in pieces as they arrive). Control frames are still collected.
   */
  streamDataPayloads?: boolean;
}

export class FrameParser {
  // The current frame's header, read by the sink in onFrameHeader (fields, not an object, to avoid an
  // allocation per frame).
  fin = false;
  rsv1 = false;
  opcode = 0;
  payloadLength = 0;
  /** RSV1 may be set on the first frame of a data message only when an extension (permessage-deflate) is on. */
  rsv1Allowed = false;

  readonly #expectMasked: boolean;
  readonly #sink: FrameSink;
  readonly #maxFrameBytes: number;
  /**
   * Hand data-frame payloads to onPayloadPiece as views, never collecting a frame (see FrameParserOptions).
   * The sink may change it at a message's first frame header (a compressed message is never streamed).
   */
  streamDataPayloads: boolean;
  /** In streaming mode: payload bytes of the current frame not yet seen, and how many were. */
  #streamRemaining = 0;
  #streamSeen = 0;
  #state: State = State.Header;
  #masked = false;
  /** The current frame's masking key as a big-endian 32-bit number. */
  #maskKey = 0;
  /** Holds a header that arrived split across chunks; allocated the first time that happens. */
  #headerBuffer: Buffer | undefined;
  #headerBytesHave = 0;
  /** The payload of a frame that spans chunks, filled as bytes arrive. */
  #payloadBuffer: Buffer = EMPTY;
  #payloadBytesHave = 0;

  constructor(role: Role, sink: FrameSink, options: FrameParserOptions) {
    // RFC 6455 §5.1: a server MUST close on an unmasked frame; a client MUST close on a masked one.
    this.#expectMasked = role === 'server';
    this.#sink = sink;
    this.#maxFrameBytes = options.maxFrameBytes;
    this.streamDataPayloads = options.streamDataPayloads ?? false;
  }

  get stopped(): boolean {
    return this.#state === State.Stopped;
  }

  /** Stops parsing for good: later input is ignored (after a close frame or a failure). */
  stop(): void {
    this.#state = State.Stopped;
    this.#payloadBuffer = EMPTY;
    this.#headerBuffer = undefined;
  }

  push(chunk: Buffer): void {
    let offset = 0;
    const length = chunk.length;
    while (offset < length) {
      if (this.#state === State.Header) {
        if (this.#headerBytesHave === 0) {
          // Fast path: the whole header is in this chunk.
          const headerBytes = length - offset >= 2 ? fullHeaderLength(chunk[offset + 1]!) : 0;
          if (headerBytes !== 0 && length - offset >= headerBytes) {
            if (!this.#readHeader(chunk, offset)) return;
            offset += headerBytes;
            offset = this.#startPayload(chunk, offset);
            continue;
          }
        }
        offset = this.#collectHeader(chunk, offset);
      } else if (this.#state === State.Payload) {
        offset = this.#continuePayload(chunk, offset);
      } else if (this.#state === State.StreamPayload) {
        offset = this.#streamPayload(chunk, offset);
      } else {
        return;
      }
    }
  }

  /** Copies header bytes that straddle chunks into the header buffer; parses once it is complete. */
  #collectHeader(chunk: Buffer, offset: number): number {
    const buffer = (this.#headerBuffer ??= Buffer.allocUnsafe(MAX_HEADER_BYTES));
    if (this.#headerBytesHave < 2) {
      const take = Math.min(2 - this.#headerBytesHave, chunk.length - offset);
      chunk.copy(buffer, this.#headerBytesHave, offset, offset + take);
      this.#headerBytesHave += take;
      offset += take;
      if (this.#headerBytesHave < 2) return offset;
    }
    const needed = fullHeaderLength(buffer[1]!);
    const take = Math.min(needed - this.#headerBytesHave, chunk.length - offset);
    chunk.copy(buffer, this.#headerBytesHave, offset, offset + take);
    this.#headerBytesHave += take;
    offset += take;
    if (this.#headerBytesHave < needed) return offset;
    this.#headerBytesHave = 0;
    if (!this.#readHeader(buffer, 0)) return chunk.length;
    return this.#startPayload(chunk, offset);
  }

  /** Decodes and checks a complete header at `bytes[at]`; on a broken rule, stops and reports. */
  #readHeader(bytes: Buffer, at: number): boolean {
    const first = bytes[at]!;
    const second = bytes[at + 1]!;
    const fin = (first & 0x80) !== 0;
    const rsv1 = (first & 0x40) !== 0;
    const opcode = first & 0x0f;
    const masked = (second & 0x80) !== 0;
    let payloadLength = second & 0x7f;
    let position = at + 2;
    const isControl = opcode >= 0x8;

    // RFC 6455 §5.2: RSV bits MUST be 0 unless an extension defining them was negotiated. RFC 7692 §6:
    // permessage-deflate defines RSV1 for the first frame of a data message only.
    if ((first & 0x30) !== 0) return this.#fail('ERR_RESERVED_BITS', CloseCode.ProtocolError, 'RSV2 or RSV3 set');
    if (rsv1 && (!this.rsv1Allowed || isControl || opcode === 0)) {
      return this.#fail('ERR_RESERVED_BITS', CloseCode.ProtocolError, 'RSV1 set without a negotiated extension');
    }
    // RFC 6455 §5.2: opcodes 3-7 and 11-15 are reserved; an unknown opcode MUST fail the connection.
    if ((opcode > 0x2 && opcode < 0x8) || opcode > 0xa) {
      return this.#fail('ERR_RESERVED_OPCODE', CloseCode.ProtocolError, `reserved opcode ${opcode}`);
    }
    if (isControl) {
      // RFC 6455 §5.5: control frames MUST NOT be fragmented and MUST have a payload of 125 bytes or less.
      if (!fin) return this.#fail('ERR_FRAGMENTED_CONTROL', CloseCode.ProtocolError, 'fragmented control frame');
      if (payloadLength > MAX_CONTROL_PAYLOAD_BYTES) {
        return this.#fail('ERR_CONTROL_TOO_LONG', CloseCode.ProtocolError, 'control frame payload over 125 bytes');
      }
    }
    if (masked !== this.#expectMasked) {
      return masked
        ? this.#fail('ERR_MASKED_FRAME', CloseCode.ProtocolError, 'masked frame from a server')
        : this.#fail('ERR_UNMASKED_FRAME', CloseCode.ProtocolError, 'unmasked frame from a client');
    }
    if (payloadLength === 126) {
      payloadLength = bytes.readUInt16BE(position);
      position += 2;
      // RFC 6455 §5.2: the minimal number of bytes MUST be used to encode the length.
      if (payloadLength < 126) return this.#fail('ERR_NON_MINIMAL_LENGTH', CloseCode.ProtocolError, 'non-minimal length');
    } else if (payloadLength === 127) {
      const high = bytes.readUInt32BE(position);
      const low = bytes.readUInt32BE(position + 4);
      position += 8;
      // RFC 6455 §5.2: the most significant bit MUST be 0. Lengths past 2^53 - 1 cannot be held exactly.
      if (high > 0x1fffff) return this.#fail('ERR_LENGTH_OVERFLOW', CloseCode.ProtocolError, 'payload length out of range');
      payloadLength = high * 0x100000000 + low;
      if (payloadLength < 65536) return this.#fail('ERR_NON_MINIMAL_LENGTH', CloseCode.ProtocolError, 'non-minimal length');
    }
    if (payloadLength > this.#maxFrameBytes) {
      return this.#fail('ERR_FRAME_TOO_BIG', CloseCode.MessageTooBig, `frame over ${this.#maxFrameBytes} bytes`);
    }
    if (masked) this.#maskKey = bytes.readUInt32BE(position);
    this.fin = fin;
    this.rsv1 = rsv1;
    this.opcode = opcode;
    this.payloadLength = payloadLength;
    this.#masked = masked;
    if (!this.#sink.onFrameHeader(this)) {
      this.stop();
      return false;
    }
    return true;
  }

  /** Delivers the payload at once when it is all in `chunk`; otherwise starts collecting it. */
  #startPayload(chunk: Buffer, offset: number): number {
    if (this.#state === State.Stopped) return chunk.length;
    const length = this.payloadLength;
    if (length === 0) {
      this.#deliver(EMPTY);
      return offset;
    }
    if (this.streamDataPayloads && this.opcode < 0x8) {
      this.#streamRemaining = length;
      this.#streamSeen = 0;
      this.#state = State.StreamPayload;
      return this.#streamPayload(chunk, offset);
    }
    if (chunk.length - offset >= length) {
      const payload = chunk.subarray(offset, offset + length);
      if (this.#masked) applyMask(payload, this.#maskKey, 0);
      this.#deliver(payload);
      return offset + length;
    }
    this.#payloadBuffer = Buffer.allocUnsafe(length);
    this.#payloadBytesHave = 0;
    this.#state = State.Payload;
    return this.#continuePayload(chunk, offset);
  }

  #continuePayload(chunk: Buffer, offset: number): number {
    const target = this.#payloadBuffer;
    const take = Math.min(target.length - this.#payloadBytesHave, chunk.length - offset);
    const start = this.#payloadBytesHave;
    chunk.copy(target, start, offset, offset + take);
    this.#payloadBytesHave += take;
    const piece = target.subarray(start, start + take);
    if (this.#masked) applyMask(piece, this.#maskKey, start & 3);
    if (!this.#sink.onPayloadPiece(piece)) {
      this.stop();
      return chunk.length;
    }
    if (this.#payloadBytesHave === target.length) {
      this.#payloadBuffer = EMPTY;
      this.#state = State.Header;
      this.#deliver(target);
    }
    return offset + take;
  }

  /** Streaming mode: hands over what this chunk holds of the payload, then ends the frame when it is all seen. */
  #streamPayload(chunk: Buffer, offset: number): number {
    const take = Math.min(this.#streamRemaining, chunk.length - offset);
    const piece = chunk.subarray(offset, offset + take);
    if (this.#masked) applyMask(piece, this.#maskKey, this.#streamSeen & 3);
    this.#streamSeen += take;
    this.#streamRemaining -= take;
    if (!this.#sink.onPayloadPiece(piece)) {
      this.stop();
      return chunk.length;
    }
    if (this.#streamRemaining === 0) this.#deliver(EMPTY);
    return offset + take;
  }

  #deliver(payload: Buffer): void {
    if (this.#state === State.Stopped) return;
    this.#state = State.Header;
    if (!this.#sink.onFrame(payload)) this.stop();
  }

  #fail(code: string, closeCode: number, message: string): false {
    this.stop();
    this.#sink.onFrameError(new ProtocolError(code, closeCode, message));
    return false;
  }
}

/** Header length in bytes, known from the second byte (length indicator and mask bit). */
function fullHeaderLength(secondByte: number): number {
  const indicator = secondByte & 0x7f;
  const lengthBytes = indicator === 126 ? 4 : indicator === 127 ? 10 : 2;
  return (secondByte & 0x80) !== 0 ? lengthBytes + 4 : lengthBytes;
}
