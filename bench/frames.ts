// WebSocket bytes for the load generator: the client handshake, pre-built masked frames, and a counter that walks
// frame headers across chunk boundaries without reading payloads. Deliberately independent of src/ so the
// benchmark measures the server, not our own protocol code on the client side.

/** RFC 6455 §1.3 example key and its accept value; servers do not require keys to be unique. */
export const HANDSHAKE_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
export const HANDSHAKE_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

export const OPCODE = { text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

/** One fixed masking key for every frame: the bytes are built once and reused for the whole run. */
export const FIXED_MASK = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);

export function buildHandshakeRequest(host: string, port: number, path: string): Buffer {
  return Buffer.from(
    `GET ${path} HTTP/1.1\r\n` +
      `Host: ${host}:${port}\r\n` +
      'Upgrade: websocket\r\n' +
      'Connection: Upgrade\r\n' +
      `Sec-WebSocket-Key: ${HANDSHAKE_KEY}\r\n` +
      'Sec-WebSocket-Version: 13\r\n\r\n',
    'latin1',
  );
}

/** Checks a response head (without the final CRLFCRLF); returns a problem description, or undefined if fine. */
export function checkHandshakeResponse(head: string): string | undefined {
  const statusLine = head.slice(0, head.indexOf('\r\n') === -1 ? head.length : head.indexOf('\r\n'));
  if (!/^HTTP\/1\.1 101\b/.test(statusLine)) return `expected 101, got "${statusLine}"`;
  const accept = /\r\nsec-websocket-accept:[ \t]*([^\r\n]*?)[ \t]*(?:\r\n|$)/i.exec(head)?.[1];
  if (accept !== HANDSHAKE_ACCEPT) return `bad Sec-WebSocket-Accept: ${String(accept)}`;
  return undefined;
}

/** A complete client frame (FIN set, masked with `mask`) carrying `payload`. */
export function buildMaskedFrame(payload: Buffer, opcode: number, mask: Buffer = FIXED_MASK): Buffer {
  const length = payload.length;
  const lengthBytes = length < 126 ? 0 : length < 0x10000 ? 2 : 8;
  const headerBytes = 2 + lengthBytes + 4;
  const frame = Buffer.allocUnsafe(headerBytes + length);
  frame[0] = 0x80 | opcode;
  if (lengthBytes === 0) {
    frame[1] = 0x80 | length;
  } else if (lengthBytes === 2) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    frame.writeUInt32BE(length >>> 0, 6);
  }
  mask.copy(frame, 2 + lengthBytes);
  for (let i = 0; i < length; i++) frame[headerBytes + i] = payload[i]! ^ mask[i & 3]!;
  return frame;
}

/** Bytes in a frame header, from its second byte: 2, plus 2 or 8 for the extended length, plus 4 if masked. */
function headerSize(secondByte: number): number {
  const length7 = secondByte & 0x7f;
  return 2 + (length7 === 126 ? 2 : length7 === 127 ? 8 : 0) + (secondByte & 0x80 ? 4 : 0);
}

/**
 * Counts complete frames in a byte stream by reading headers only and skipping payloads. Frames that are not
 * FIN + `expectedOpcode` + `expectedPayloadBytes` are skipped and counted in `unexpectedFrames` instead.
 * Masked frames are accepted too, so a raw TCP echo (which reflects our masked frames) can be counted.
 */
export class FrameCounter {
  readonly #expectedOpcode: number;
  readonly #expectedPayloadBytes: number;
  readonly #header = Buffer.alloc(14);
  #headerHave = 0;
  #payloadLeft = 0;
  #counting = false;
  unexpectedFrames = 0;
  lastUnexpected = '';

  constructor(expectedOpcode: number, expectedPayloadBytes: number) {
    this.#expectedOpcode = expectedOpcode;
    this.#expectedPayloadBytes = expectedPayloadBytes;
  }

  /**
   * Feeds `chunk[start, end)`; returns how many expected frames were completed by it. The bytes are not kept, so
   * the caller may reuse the buffer (the broadcast subscribers read every socket into one shared buffer).
   */
  feed(chunk: Buffer, start = 0, end: number = chunk.length): number {
    let completed = 0;
    let i = start;
    while (i < end) {
      if (this.#payloadLeft > 0) {
        const available = end - i;
        if (available < this.#payloadLeft) {
          this.#payloadLeft -= available;
          return completed;
        }
        i += this.#payloadLeft;
        this.#payloadLeft = 0;
        if (this.#counting) completed++;
        continue;
      }
      // Fast path: the whole header is in this chunk.
      if (this.#headerHave === 0 && end - i >= 2) {
        const size = headerSize(chunk[i + 1]!);
        if (end - i >= size) {
          completed += this.#startFrame(chunk, i);
          i += size;
          continue;
        }
      }
      // Slow path: the header spans chunks; stash it byte by byte.
      this.#header[this.#headerHave++] = chunk[i++]!;
      if (this.#headerHave >= 2 && this.#headerHave === headerSize(this.#header[1]!)) {
        completed += this.#startFrame(this.#header, 0);
        this.#headerHave = 0;
      }
    }
    return completed;
  }

  /** Reads a complete header at `at`; returns 1 if it is an expected frame with an empty payload. */
  #startFrame(bytes: Buffer, at: number): number {
    const first = bytes[at]!;
    const length7 = bytes[at + 1]! & 0x7f;
    const length =
      length7 === 126
        ? bytes.readUInt16BE(at + 2)
        : length7 === 127
          ? bytes.readUInt32BE(at + 2) * 2 ** 32 + bytes.readUInt32BE(at + 6)
          : length7;
    const opcode = first & 0x0f;
    this.#counting = (first & 0x80) !== 0 && opcode === this.#expectedOpcode && length === this.#expectedPayloadBytes;
    if (!this.#counting) {
      this.unexpectedFrames++;
      this.lastUnexpected = `fin=${first >> 7} opcode=${opcode} length=${length}`;
    }
    this.#payloadLeft = length;
    return length === 0 && this.#counting ? 1 : 0;
  }
}

export interface DecodedFrame {
  fin: boolean;
  opcode: number;
  /** Unmasked payload (a copy when the frame was masked). */
  payload: Buffer;
  /** Bytes the frame occupied, header included. */
  frameBytes: number;
}

/** Decodes the first frame in `bytes`, or returns undefined if it is not complete yet. Used to spot-check echoes. */
export function decodeFrame(bytes: Buffer): DecodedFrame | undefined {
  if (bytes.length < 2) return undefined;
  const size = headerSize(bytes[1]!);
  if (bytes.length < size) return undefined;
  const length7 = bytes[1]! & 0x7f;
  const length =
    length7 === 126 ? bytes.readUInt16BE(2) : length7 === 127 ? bytes.readUInt32BE(2) * 2 ** 32 + bytes.readUInt32BE(6) : length7;
  if (bytes.length < size + length) return undefined;
  let payload = bytes.subarray(size, size + length);
  if (bytes[1]! & 0x80) {
    const mask = bytes.subarray(size - 4, size);
    payload = Buffer.from(payload);
    for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ mask[i & 3]!;
  }
  return { fin: (bytes[0]! & 0x80) !== 0, opcode: bytes[0]! & 0x0f, payload, frameBytes: size + length };
}
