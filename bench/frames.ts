// WebSocket bytes for the load generator: the client handshake, pre-built masked frames, and a counter that walks
// frame headers across chunk boundaries without reading payloads. Deliberately independent of src/ so the
// benchmark measures the server, not our own protocol code on the client side.
import { connect, type Socket } from 'node:net';
import { constants as zlibConstants, deflateRawSync, inflateRawSync } from 'node:zlib';

/** RFC 6455 §1.3 example key and its accept value; servers do not require keys to be unique. */
export const HANDSHAKE_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
export const HANDSHAKE_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

export const OPCODE = { text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

/** One fixed masking key for every frame: the bytes are built once and reused for the whole run. */
export const FIXED_MASK = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);

/** `extensions`, if given, is sent as Sec-WebSocket-Extensions (the permessage-deflate offer). */
export function buildHandshakeRequest(host: string, port: number, path: string, extensions?: string): Buffer {
  return Buffer.from(
    `GET ${path} HTTP/1.1\r\n` +
      `Host: ${host}:${port}\r\n` +
      'Upgrade: websocket\r\n' +
      'Connection: Upgrade\r\n' +
      `Sec-WebSocket-Key: ${HANDSHAKE_KEY}\r\n` +
      (extensions === undefined ? '' : `Sec-WebSocket-Extensions: ${extensions}\r\n`) +
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

/** A complete client frame (FIN set, masked with `mask`; RSV1 set if `rsv1`, for a compressed message) carrying `payload`. */
export function buildMaskedFrame(payload: Buffer, opcode: number, mask: Buffer = FIXED_MASK, rsv1 = false): Buffer {
  const length = payload.length;
  const lengthBytes = length < 126 ? 0 : length < 0x10000 ? 2 : 8;
  const headerBytes = 2 + lengthBytes + 4;
  const frame = Buffer.allocUnsafe(headerBytes + length);
  frame[0] = 0x80 | (rsv1 ? 0x40 : 0) | opcode;
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
export function headerSize(secondByte: number): number {
  const length7 = secondByte & 0x7f;
  return 2 + (length7 === 126 ? 2 : length7 === 127 ? 8 : 0) + (secondByte & 0x80 ? 4 : 0);
}

/**
 * Counts complete frames in a byte stream by reading headers only and skipping payloads. Frames that are not
 * FIN + `expectedOpcode` + `expectedPayloadBytes` are skipped and counted in `unexpectedFrames` instead.
 * Masked frames are accepted too, so a raw TCP echo (which reflects our masked frames) can be counted.
 * For compressed replies, `expectedPayloadBytes` is 'any' (their length varies from message to message) and
 * `requireRsv1` counts only frames with RSV1 set (a permessage-deflate compressed message).
 */
export class FrameCounter {
  readonly #expectedOpcode: number;
  readonly #expectedPayloadBytes: number | 'any';
  readonly #requireRsv1: boolean;
  readonly #header = Buffer.alloc(14);
  #headerHave = 0;
  #payloadLeft = 0;
  #counting = false;
  unexpectedFrames = 0;
  lastUnexpected = '';
  /** Payload bytes of the counted frames so far (on the wire: compressed, for compressed frames). */
  countedPayloadBytes = 0;

  constructor(expectedOpcode: number, expectedPayloadBytes: number | 'any', requireRsv1 = false) {
    this.#expectedOpcode = expectedOpcode;
    this.#expectedPayloadBytes = expectedPayloadBytes;
    this.#requireRsv1 = requireRsv1;
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
    this.#counting =
      (first & 0x80) !== 0 &&
      opcode === this.#expectedOpcode &&
      (this.#expectedPayloadBytes === 'any' || length === this.#expectedPayloadBytes) &&
      (!this.#requireRsv1 || (first & 0x40) !== 0);
    if (this.#counting) {
      this.countedPayloadBytes += length;
    } else {
      this.unexpectedFrames++;
      this.lastUnexpected = `fin=${first >> 7} rsv1=${(first >> 6) & 1} opcode=${opcode} length=${length}`;
    }
    this.#payloadLeft = length;
    return length === 0 && this.#counting ? 1 : 0;
  }
}

export interface DecodedFrame {
  fin: boolean;
  /** Set on the first frame of a permessage-deflate compressed message. */
  rsv1: boolean;
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
  return { fin: (bytes[0]! & 0x80) !== 0, rsv1: (bytes[0]! & 0x40) !== 0, opcode: bytes[0]! & 0x0f, payload, frameBytes: size + length };
}

// ---------------------------------------------------------------------------------------------------------------
// permessage-deflate (RFC 7692) for the load generator: the offer, a check of the server's answer, a message
// compressed once, and an inflater that checks replies in the negotiated context mode. node:zlib only.

/**
 * Our offer. client_no_context_takeover: we compress every message from a fresh context, so one compressed
 * payload, built once, is valid for every message on every connection (and the server may drop its inflater's
 * window between messages). client_max_window_bits: we would accept a smaller window (we then refuse the run,
 * see parseDeflateAnswer, because the pre-built payload uses 15 bits).
 */
export const DEFLATE_OFFER = 'permessage-deflate; client_no_context_takeover; client_max_window_bits';

/** The 4 octets a sync flush ends with: removed from a compressed payload (RFC 7692 §7.2.1), restored to inflate. */
const DEFLATE_TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/** What the server agreed to, read from its Sec-WebSocket-Extensions. */
export interface DeflateAnswer {
  /** The server compresses every message from a fresh context (otherwise replies refer to earlier ones). */
  serverNoContextTakeover: boolean;
  serverMaxWindowBits: number;
  clientMaxWindowBits: number;
}

/**
 * Checks the response head's Sec-WebSocket-Extensions against DEFLATE_OFFER: exactly one permessage-deflate
 * element, no unknown parameters, client_no_context_takeover confirmed (the bench's frames rely on it), and no
 * client window below 15 bits. Returns the agreement, or a problem description.
 */
export function parseDeflateAnswer(head: string): DeflateAnswer | string {
  const values = [...head.matchAll(/\r\nsec-websocket-extensions:[ \t]*([^\r\n]*)/gi)].map((match) => match[1]!.trim());
  if (values.length === 0) return 'the server did not accept permessage-deflate (no Sec-WebSocket-Extensions in its 101)';
  const elements = values.join(',').split(',').map((element) => element.trim()).filter((element) => element !== '');
  if (elements.length !== 1) return `expected one extension in the answer, got "${values.join(', ')}"`;
  const [name, ...params] = elements[0]!.split(';').map((part) => part.trim());
  if (name!.toLowerCase() !== 'permessage-deflate') return `the server answered with extension "${name}"`;
  const answer: DeflateAnswer = { serverNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 };
  let clientNoContextTakeover = false;
  for (const param of params) {
    const [key, rawValue] = param.split('=').map((part) => part.trim()) as [string, string | undefined];
    const value = rawValue === undefined ? undefined : Number(rawValue.replace(/^"(.*)"$/, '$1'));
    switch (key.toLowerCase()) {
      case 'server_no_context_takeover':
        answer.serverNoContextTakeover = true;
        break;
      case 'client_no_context_takeover':
        clientNoContextTakeover = true;
        break;
      case 'server_max_window_bits':
        if (value === undefined || !(value >= 8 && value <= 15)) return `bad server_max_window_bits in "${elements[0]}"`;
        answer.serverMaxWindowBits = value;
        break;
      case 'client_max_window_bits':
        if (value === undefined || !(value >= 8 && value <= 15)) return `bad client_max_window_bits in "${elements[0]}"`;
        answer.clientMaxWindowBits = value;
        break;
      default:
        return `unknown parameter "${key}" in "${elements[0]}"`;
    }
  }
  if (!clientNoContextTakeover) return `the server did not confirm client_no_context_takeover: "${elements[0]}"`;
  if (answer.clientMaxWindowBits < 15) return `the server limited our window to ${answer.clientMaxWindowBits} bits; the bench's pre-built frames need 15`;
  return answer;
}

/**
 * Compresses one message the way a client without context takeover does (RFC 7692 §7.2.1): raw deflate from a
 * fresh context, ended with a sync flush whose trailing 00 00 ff ff is removed.
 */
export function compressMessage(message: Buffer, windowBits = 15): Buffer {
  const compressed = deflateRawSync(message, { windowBits, finishFlush: zlibConstants.Z_SYNC_FLUSH });
  if (!compressed.subarray(compressed.length - 4).equals(DEFLATE_TRAILER)) throw new Error('deflateRawSync with Z_SYNC_FLUSH did not end with 00 00 ff ff');
  return compressed.subarray(0, compressed.length - 4);
}

/**
 * Inflates the compressed replies of one connection, in order, in the negotiated context mode: with server
 * context takeover a reply may refer to the earlier ones, so every payload so far is inflated as one stream (only
 * used for a few replies per connection); with server_no_context_takeover each one is inflated on its own.
 */
export class ReplyInflater {
  readonly #keepsContext: boolean;
  readonly #history: Buffer[] = [];
  #inflatedBytes = 0;

  constructor(answer: DeflateAnswer) {
    this.#keepsContext = !answer.serverNoContextTakeover;
  }

  /** The message `payload` (a reply's compressed payload) stands for; throws when it does not inflate. */
  inflate(payload: Buffer): Buffer {
    const options = { finishFlush: zlibConstants.Z_SYNC_FLUSH };
    if (!this.#keepsContext) return inflateRawSync(Buffer.concat([payload, DEFLATE_TRAILER]), options);
    this.#history.push(payload, DEFLATE_TRAILER);
    const all = inflateRawSync(Buffer.concat(this.#history), options);
    const message = all.subarray(this.#inflatedBytes);
    this.#inflatedBytes = all.length;
    return message;
  }
}

/**
 * A realistic JSON text message of exactly `bytes` bytes (ASCII): a sensor gateway's batch of readings, with the
 * repetition such messages have (the same keys in every object, similar numbers) and no run of identical bytes.
 * Deterministic: `variant` n is the gateway's n-th batch (same structure, other readings), the same for every
 * server.
 */
export function sensorJson(bytes: number, variant = 0): Buffer {
  let seed = (0x2545f491 + Math.imul(variant, 0x9e3779b9)) >>> 0;
  const random = (): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  const head = `{"type":"readings","site":"plant-7","gateway":"gw-03","device":"sensor-0042","seq":${18231 + variant},` +
    '"units":{"temp":"C","hum":"%","pm25":"ug/m3","co2":"ppm"},"readings":[';
  const readings: string[] = [];
  let t = 1_700_000_000_000 + variant * 12_000;
  const closeWith = (note: string): string => `${head}${readings.join(',')}],"note":"${note}"}`;
  const NOTE = 'status nominal; battery 87%, firmware 2.4.1, rssi -67 dBm, next calibration 2024-03-01; uplink ok. ';
  for (;;) {
    t += 1000 + Math.floor(random() * 40);
    const reading =
      `{"t":${t},"temp":${(21 + random() * 3).toFixed(2)},"hum":${(38 + random() * 6).toFixed(1)},` +
      `"pm25":${(6 + random() * 5).toFixed(1)},"co2":${412 + Math.floor(random() * 60)},"ok":${random() < 0.95}}`;
    if (closeWith('').length + reading.length + (readings.length > 0 ? 1 : 0) > bytes) break;
    readings.push(reading);
  }
  const room = bytes - closeWith('').length;
  if (room < 0) throw new RangeError(`a sensor JSON message needs at least ${closeWith('').length} bytes`);
  const message = Buffer.from(closeWith(NOTE.repeat(Math.ceil(room / NOTE.length) + 1).slice(0, room)), 'latin1');
  if (message.length !== bytes) throw new Error(`sensorJson made ${message.length} bytes, not ${bytes}`);
  return message;
}

const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
const MAX_HEAD_BYTES = 16_384;

/**
 * The client side of an upgrade in progress on `socket`: collects the response head from what arrives, and fails
 * (socket destroyed, `reject` called once) on a timeout, an error, a close, an oversized head or a response that
 * is not a valid 101. Callers read the socket their own way (stream events or `onread`) and feed it here.
 */
export class HandshakeWatch {
  readonly #socket: Socket;
  readonly #reject: (error: Error) => void;
  readonly #timer: NodeJS.Timeout;
  #head = Buffer.alloc(0);
  #settled = false;
  readonly #fail = (error: Error): void => {
    if (this.#settled) return;
    this.#stopWatching();
    this.#socket.destroy();
    this.#reject(error);
  };
  readonly #onClose = (): void => this.#fail(new Error('connection closed during the handshake'));

  constructor(socket: Socket, timeoutMs: number, reject: (error: Error) => void) {
    this.#socket = socket;
    this.#reject = reject;
    this.#timer = setTimeout(() => this.#fail(new Error(`handshake timed out after ${timeoutMs} ms`)), timeoutMs);
    socket.on('error', this.#fail);
    socket.on('close', this.#onClose);
  }

  /** True once the handshake succeeded or failed: what arrives after belongs to the caller. */
  get settled(): boolean {
    return this.#settled;
  }

  /**
   * Takes bytes read from the socket (copied: the caller may reuse its buffer). Returns the head and the bytes
   * after it once the head is complete and valid; until then, or if it failed, undefined.
   */
  feed(chunk: Uint8Array): { head: string; leftover: Buffer } | undefined {
    if (this.#settled) return undefined;
    this.#head = Buffer.concat([this.#head, chunk]);
    const end = this.#head.indexOf(HEAD_END);
    if (end === -1) {
      if (this.#head.length > MAX_HEAD_BYTES) this.#fail(new Error('response head larger than 16 KiB'));
      return undefined;
    }
    const head = this.#head.subarray(0, end).toString('latin1');
    const problem = checkHandshakeResponse(head);
    if (problem !== undefined) {
      this.#fail(new Error(`handshake failed: ${problem}`));
      return undefined;
    }
    this.#stopWatching();
    return { head, leftover: this.#head.subarray(end + HEAD_END.length) };
  }

  #stopWatching(): void {
    this.#settled = true;
    clearTimeout(this.#timer);
    this.#socket.off('error', this.#fail);
    this.#socket.off('close', this.#onClose);
  }
}

export interface OpenedSocket {
  socket: Socket;
  /** Bytes that arrived after the response head. */
  leftover: Buffer;
  /** The response head (status line and headers, latin1), for the extension answer. */
  head: string;
}

/** Connects and upgrades; resolves with the socket paused, so no frame is lost before the caller listens. */
export function openWebSocket(host: string, port: number, request: Buffer, timeoutMs: number): Promise<OpenedSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    socket.setNoDelay(true);
    const watch = new HandshakeWatch(socket, timeoutMs, reject);
    const onData = (chunk: Buffer): void => {
      const done = watch.feed(chunk);
      if (watch.settled) socket.off('data', onData);
      if (done === undefined) return;
      socket.pause();
      resolve({ socket, leftover: done.leftover, head: done.head });
    };
    socket.on('data', onData);
    socket.once('connect', () => socket.write(request));
  });
}
