// Test oracle for permessage-deflate (RFC 7692) as a client sees it: builds offers, checks a server's answer
// against the RFC, compresses messages with node:zlib (raw DEFLATE, Z_SYNC_FLUSH, the trailing 00 00 ff ff
// removed) and inflates the server's (trailer restored), and a byte-level client whose frame reader accepts
// RSV1 exactly where the extension allows it. Deliberately independent of src/: the server must not be checked
// with its own negotiation or codec.
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { constants, createDeflateRaw, createInflateRaw, deflateRawSync, inflateRawSync, type DeflateRaw, type InflateRaw } from 'node:zlib';
import assert from 'node:assert/strict';
import type { RunningServer } from './cli-server.js';
import { buildRequest } from './raw-client.js';
import { Opcode, close as closeFrame, describeFrame, maskedFrame, type ServerFrame } from './frames.js';
import { FrameInbox, parseHead, readResponseHead, sendBytes } from './_wire.js';

/** RFC 7692 §7.2.1: the 4 octets a sync flush ends with; removed by the sender, appended by the receiver. */
export const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);

// ---- offers and answers (RFC 7692 §5, §7.1) ----

/** One permessage-deflate offer; absent fields are not sent. */
export interface DeflateOffer {
  readonly serverNoContextTakeover?: boolean;
  readonly clientNoContextTakeover?: boolean;
  readonly serverMaxWindowBits?: number;
  /** true: the parameter without a value ("I support it"); a number: with that value. */
  readonly clientMaxWindowBits?: number | true;
}

/** The offer as a Sec-WebSocket-Extensions element. */
export function offerHeader(offer: DeflateOffer = {}): string {
  let text = 'permessage-deflate';
  if (offer.serverNoContextTakeover === true) text += '; server_no_context_takeover';
  if (offer.clientNoContextTakeover === true) text += '; client_no_context_takeover';
  if (offer.serverMaxWindowBits !== undefined) text += `; server_max_window_bits=${offer.serverMaxWindowBits}`;
  if (offer.clientMaxWindowBits === true) text += '; client_max_window_bits';
  else if (offer.clientMaxWindowBits !== undefined) text += `; client_max_window_bits=${offer.clientMaxWindowBits}`;
  return text;
}

/** What both ends use after the handshake, in RFC 7692's terms (server_* governs what the server sends). */
export interface Agreement {
  readonly serverNoContextTakeover: boolean;
  readonly clientNoContextTakeover: boolean;
  readonly serverMaxWindowBits: number;
  readonly clientMaxWindowBits: number;
}

export interface ExtensionElement {
  readonly name: string;
  /** In order, lower-case names; value undefined when the parameter had none; quotes removed. */
  readonly params: ReadonlyArray<readonly [string, string | undefined]>;
}

const tokenChar = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;

/** Parses a Sec-WebSocket-Extensions value (RFC 6455 §9.1); throws on text that does not follow the grammar. */
export function parseExtensionHeader(value: string): ExtensionElement[] {
  const elements: ExtensionElement[] = [];
  let i = 0;
  const space = (): void => { while (value[i] === ' ' || value[i] === '\t') i++; };
  const token = (what: string): string => {
    const start = i;
    while (i < value.length && tokenChar.test(value[i]!)) i++;
    if (i === start) throw new Error(`expected ${what} at offset ${start} of ${JSON.stringify(value)}`);
    return value.slice(start, i);
  };
  while (true) {
    space();
    const name = token('an extension name').toLowerCase();
    const params: Array<[string, string | undefined]> = [];
    space();
    while (value[i] === ';') {
      i++;
      space();
      const param = token('a parameter name').toLowerCase();
      space();
      let paramValue: string | undefined;
      if (value[i] === '=') {
        i++;
        space();
        if (value[i] === '"') {
          const end = value.indexOf('"', i + 1);
          if (end < 0) throw new Error(`unterminated quoted value in ${JSON.stringify(value)}`);
          paramValue = value.slice(i + 1, end);
          i = end + 1;
        } else {
          paramValue = token('a parameter value');
        }
        space();
      }
      params.push([param, paramValue]);
    }
    elements.push({ name, params });
    space();
    if (i >= value.length) return elements;
    if (value[i] !== ',') throw new Error(`unexpected ${JSON.stringify(value[i])} at offset ${i} of ${JSON.stringify(value)}`);
    i++;
  }
}

/**
 * Checks the server's Sec-WebSocket-Extensions (undefined: header absent) against the one offer it answers, as
 * RFC 7692 requires, and returns what was agreed (undefined: the server declined compression). Throws an
 * AssertionError naming the rule broken.
 */
export function checkDeflateAnswer(offer: DeflateOffer, header: string | undefined): Agreement | undefined {
  if (header === undefined || header.trim() === '') return undefined;
  let elements: ExtensionElement[];
  try {
    elements = parseExtensionHeader(header);
  } catch (error) {
    assert.fail(`Sec-WebSocket-Extensions ${JSON.stringify(header)} is not valid RFC 6455 §9.1 syntax: ${(error as Error).message}`);
  }
  // RFC 6455 §9.1: the server answers only with extensions the client offered.
  for (const element of elements) assert.equal(element.name, 'permessage-deflate', `server answered extension "${element.name}", which was not offered`);
  // RFC 7692 §5: one element per accepted offer; the server accepts at most one permessage-deflate offer.
  assert.equal(elements.length, 1, `server answered permessage-deflate ${elements.length} times: ${JSON.stringify(header)}`);
  const seen = new Set<string>();
  let serverNoContextTakeover = false;
  let clientNoContextTakeover = false;
  let serverMaxWindowBits: number | undefined;
  let clientMaxWindowBits: number | undefined;
  const windowBits = (name: string, value: string | undefined): number => {
    // RFC 7692 §7.1.2.1/§7.1.2.2: a decimal integer from 8 to 15 with no leading zeros, and in a response a value is required.
    assert.ok(value !== undefined && /^(?:8|9|1[0-5])$/.test(value), `${name} in the response must have a value 8-15, got ${JSON.stringify(value)}`);
    return Number(value);
  };
  for (const [name, value] of elements[0]!.params) {
    // RFC 7692 §7: a response with a repeated parameter is invalid.
    assert.ok(!seen.has(name), `parameter ${name} appears twice in ${JSON.stringify(header)}`);
    seen.add(name);
    switch (name) {
      case 'server_no_context_takeover':
        assert.equal(value, undefined, 'server_no_context_takeover takes no value');
        serverNoContextTakeover = true;
        break;
      case 'client_no_context_takeover':
        assert.equal(value, undefined, 'client_no_context_takeover takes no value');
        clientNoContextTakeover = true;
        break;
      case 'server_max_window_bits':
        serverMaxWindowBits = windowBits(name, value);
        break;
      case 'client_max_window_bits':
        clientMaxWindowBits = windowBits(name, value);
        break;
      default:
        assert.fail(`unknown permessage-deflate parameter ${name} in the response (RFC 7692 §7)`);
    }
  }
  // §7.1.1.1: an offer with server_no_context_takeover is accepted only by a response that includes it.
  if (offer.serverNoContextTakeover === true) assert.ok(serverNoContextTakeover, 'the offer had server_no_context_takeover but the response does not');
  // §7.1.2.1: an offer with server_max_window_bits=N is accepted only by a response with a value <= N.
  if (offer.serverMaxWindowBits !== undefined) {
    assert.ok(serverMaxWindowBits !== undefined, `the offer had server_max_window_bits=${offer.serverMaxWindowBits} but the response has none`);
    assert.ok(serverMaxWindowBits <= offer.serverMaxWindowBits, `server_max_window_bits=${serverMaxWindowBits} is above the offered ${offer.serverMaxWindowBits}`);
  }
  // §7.1.2.2: client_max_window_bits only when the offer had it, and no larger than an offered value.
  if (clientMaxWindowBits !== undefined) {
    assert.ok(offer.clientMaxWindowBits !== undefined, 'the response has client_max_window_bits but the offer did not (RFC 7692 §7.1.2.2 forbids it)');
    if (typeof offer.clientMaxWindowBits === 'number') {
      assert.ok(clientMaxWindowBits <= offer.clientMaxWindowBits, `client_max_window_bits=${clientMaxWindowBits} is above the offered ${offer.clientMaxWindowBits}`);
    }
  }
  const offeredClientBits = typeof offer.clientMaxWindowBits === 'number' ? offer.clientMaxWindowBits : 15;
  return {
    serverNoContextTakeover,
    clientNoContextTakeover: clientNoContextTakeover || offer.clientNoContextTakeover === true,
    serverMaxWindowBits: serverMaxWindowBits ?? 15,
    clientMaxWindowBits: Math.min(clientMaxWindowBits ?? 15, offeredClientBits),
  };
}

// ---- compression (RFC 7692 §7.2) ----

export interface CodecSettings {
  /** LZ77 window: 2^windowBits bytes, 8-15. */
  readonly windowBits: number;
  /** Start every message from an empty context. */
  readonly noContextTakeover: boolean;
}

/**
 * Compresses messages as an RFC 7692 sender: raw DEFLATE, a sync flush per message, the trailing 00 00 ff ff
 * removed (§7.2.1). Keeps one zlib stream across messages unless `noContextTakeover`. zlib cannot compress with
 * an 8-bit window, so windowBits 8 compresses at level 0 (stored blocks refer to no window at all).
 */
export class MessageDeflater {
  readonly #settings: CodecSettings;
  readonly #level: number;
  #stream: DeflateRaw | undefined;

  constructor(settings: CodecSettings, level = 6) {
    this.#settings = settings;
    this.#level = settings.windowBits < 9 ? 0 : level;
  }

  async compress(data: Uint8Array): Promise<Buffer> {
    const windowBits = Math.max(9, this.#settings.windowBits);
    let output: Buffer;
    if (this.#settings.noContextTakeover) {
      output = deflateRawSync(data, { level: this.#level, windowBits, finishFlush: constants.Z_SYNC_FLUSH });
    } else {
      const stream = (this.#stream ??= createDeflateRaw({ level: this.#level, windowBits }));
      const chunks: Buffer[] = [];
      const onData = (chunk: Buffer): void => { chunks.push(chunk); };
      stream.on('data', onData);
      stream.write(data);
      await new Promise<void>((resolve) => stream.flush(constants.Z_SYNC_FLUSH, () => resolve()));
      stream.off('data', onData);
      output = Buffer.concat(chunks);
    }
    assert.ok(output.subarray(-4).equals(TRAILER), 'zlib sync flush did not end with 00 00 ff ff');
    return output.subarray(0, output.length - 4);
  }

  close(): void {
    this.#stream?.close();
  }
}

/**
 * Inflates messages as an RFC 7692 receiver: appends 00 00 ff ff and inflates with exactly the agreed window, so
 * a sender that used a larger window, or kept a context it said it would reset, fails here ("invalid distance
 * too far back") instead of passing by luck. zlib checks a distance against its window only for output that has
 * left the current output buffer (inside one buffer any distance back to its start passes), so the output
 * buffer is kept at zlib's minimum of 64 bytes: a distance beyond 2^windowBits + 64 is rejected.
 */
/** zlib's smallest output buffer (Z_MIN_CHUNK): keeps the window check within 64 bytes of exact. */
const CHECKED_CHUNK_BYTES = 64;

export class MessageInflater {
  readonly #settings: CodecSettings;
  #stream: InflateRaw | undefined;

  constructor(settings: CodecSettings) {
    this.#settings = settings;
  }

  async decompress(payload: Uint8Array): Promise<Buffer> {
    const input = Buffer.concat([payload, TRAILER]);
    if (this.#settings.noContextTakeover) {
      return inflateRawSync(input, { windowBits: this.#settings.windowBits, chunkSize: CHECKED_CHUNK_BYTES, finishFlush: constants.Z_SYNC_FLUSH });
    }
    const stream = (this.#stream ??= createInflateRaw({ windowBits: this.#settings.windowBits, chunkSize: CHECKED_CHUNK_BYTES }));
    const chunks: Buffer[] = [];
    return await new Promise<Buffer>((resolve, reject) => {
      const onData = (chunk: Buffer): void => { chunks.push(chunk); };
      const onError = (error: Error): void => {
        stream.off('data', onData);
        this.#stream = undefined;
        reject(error);
      };
      stream.on('data', onData);
      stream.once('error', onError);
      stream.write(input);
      stream.flush(constants.Z_SYNC_FLUSH, () => {
        stream.off('data', onData);
        stream.off('error', onError);
        resolve(Buffer.concat(chunks));
      });
    });
  }

  close(): void {
    this.#stream?.close();
  }
}

// ---- frames ----

/** How to split a compressed payload into frames: sizes of the leading frames (the rest goes last), or a count. */
export type Split = readonly number[] | { readonly pieces: number };

/**
 * A compressed message as masked client frames: RSV1 on the first frame only (RFC 7692 §6.1), the payload split
 * as `split` says; an empty list sends one frame.
 */
export function compressedMessageFrames(payload: Uint8Array, opcode: number, split: Split = []): Buffer {
  const splitSizes = 'pieces' in split ? evenSplit(payload.length, split.pieces) : split;
  const frames: Buffer[] = [];
  let offset = 0;
  const pieces: Uint8Array[] = [];
  for (const size of splitSizes) {
    pieces.push(payload.subarray(offset, Math.min(payload.length, offset + size)));
    offset = Math.min(payload.length, offset + size);
  }
  pieces.push(payload.subarray(offset));
  pieces.forEach((piece, index) => {
    frames.push(maskedFrame({
      opcode: index === 0 ? opcode : Opcode.continuation,
      rsv1: index === 0,
      fin: index === pieces.length - 1,
      payload: piece,
      mask: randomBytes(4),
    }));
  });
  return Buffer.concat(frames);
}

/** Splits `length` bytes into `count` nearly equal frame sizes (for compressedMessageFrames). */
export function evenSplit(length: number, count: number): number[] {
  const sizes: number[] = [];
  const size = Math.max(1, Math.floor(length / count));
  for (let i = 0; i < count - 1; i++) sizes.push(size);
  return sizes;
}

// ---- test data ----

const words = ['switchyard', 'deflate', 'window', 'context', 'takeover', 'frame', 'message', 'echo', 'rsv1', 'zlib', 'sliding',
  'json', 'payload', 'server', 'client', 'offer', 'answer', 'bits', 'chunk', 'stream', '\u00e9t\u00e9', '\u20ac', '\u{1F600}'];

/**
 * A deterministic message: text is JSON-ish UTF-8 made of words (compressible, with multi-byte characters);
 * binary is pseudo-random bytes. Both repeat with a period of 5003 bytes, so a compressor with a window of
 * 2^12 bytes or less cannot refer back one period while a 2^13+ window can: a server that compresses with a
 * larger window than it agreed produces distances our inflater rejects. `variant` changes the first bytes.
 */
export function sampleMessage(size: number, isBinary: boolean, variant = 0): Buffer {
  const period = 5003;
  const block = Buffer.alloc(Math.min(size, period));
  let state = 0x9e3779b9 ^ (isBinary ? 0x5bd1e995 : 0);
  const next = (): number => {
    state ^= state << 13; state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5; state >>>= 0;
    return state;
  };
  if (isBinary) {
    for (let i = 0; i < block.length; i++) block[i] = next() & 0xff;
  } else {
    let text = '';
    while (Buffer.byteLength(text) < block.length) text += `{"${words[next() % words.length]}":${next() % 1000},"v":"${words[next() % words.length]}"},`;
    // Cut at a character boundary, then pad with ASCII to the exact length.
    let bytes = Buffer.from(text);
    let end = block.length;
    while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
    bytes = bytes.subarray(0, end);
    bytes.copy(block);
    block.fill(0x20, end);
  }
  const message = Buffer.alloc(size);
  for (let offset = 0; offset < size; offset += block.length) block.copy(message, offset, 0, Math.min(block.length, size - offset));
  const tag = Buffer.from(`#${variant}:`);
  if (size >= tag.length) tag.copy(message);
  // The tag and the cut at the end may split a multi-byte character: blank out the broken pieces.
  if (!isBinary) blankBrokenUtf8(message);
  return message;
}

/** Replaces every byte that is not part of a complete UTF-8 sequence with a space (enough for sampleMessage's edges). */
function blankBrokenUtf8(bytes: Buffer): void {
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i]!;
    const length = lead < 0x80 ? 1 : lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc2 ? 2 : 0;
    let complete = length > 0 && i + length <= bytes.length;
    for (let k = 1; complete && k < length; k++) complete = (bytes[i + k]! & 0xc0) === 0x80;
    if (complete) {
      i += length;
    } else {
      bytes[i] = 0x20;
      i++;
    }
  }
}

// ---- the client ----

export interface DeflateMessage {
  readonly opcode: number;
  /** The message after inflation (or as received when it was not compressed). */
  readonly data: Buffer;
  /** RSV1 was set on its first frame. */
  readonly compressed: boolean;
  /** Payload bytes on the wire (compressed size). */
  readonly wireBytes: number;
  readonly frames: readonly ServerFrame[];
}

export interface DeflateClose {
  readonly code: number | undefined;
  readonly reason: string;
  readonly tcpClosed: boolean;
  readonly framesAfterClose: readonly ServerFrame[];
}

export interface DeflateClientOptions {
  /** Default '/echo'. */
  readonly path?: string;
  /** Sec-WebSocket-Extensions to send, verbatim; undefined: none. */
  readonly extensions?: string;
  /** The offer the answer is checked against (default: `offers[0]`-less: checked only when given). */
  readonly offer?: DeflateOffer;
  /** zlib level for our messages. Default 6. */
  readonly level?: number;
  readonly timeoutMs?: number;
}

const defaultTimeoutMs = 5000;

/** The status code of an HTTP/1.1 status line; 0 for anything else. */
function statusOf(statusLine: string): number {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1] ?? 0);
}

/**
 * A raw WebSocket client that negotiates permessage-deflate with the oracle above: sends the offer, checks the
 * 101 answer (when `offer` is given), then compresses and inflates as agreed. Every server frame is checked for
 * RFC 6455 §5.1/§5.2 and RFC 7692 §6 rules (RSV1 only on the first frame of a data message, and only when
 * negotiated).
 */
export class DeflateClient {
  readonly socket: Socket;
  readonly statusCode: number;
  readonly responseHead: string;
  /** Lower-case header names; repeated headers joined with ', '. */
  readonly responseHeaders: ReadonlyMap<string, string>;
  /** undefined: no compression negotiated. */
  readonly agreement: Agreement | undefined;
  readonly #deflater: MessageDeflater | undefined;
  readonly #inflater: MessageInflater | undefined;
  readonly #inbox = new FrameInbox({ framesShown: 5 });
  /** Every frame received, in order, including those taken. */
  readonly received: ServerFrame[] = this.#inbox.received;

  constructor(socket: Socket, head: string, leftover: Buffer, agreement: Agreement | undefined, level: number) {
    this.socket = socket;
    this.responseHead = head;
    const { firstLine, headers } = parseHead(head, false);
    this.statusCode = statusOf(firstLine);
    this.responseHeaders = headers;
    this.agreement = agreement;
    if (agreement !== undefined) {
      this.#deflater = new MessageDeflater({ windowBits: agreement.clientMaxWindowBits, noContextTakeover: agreement.clientNoContextTakeover }, level);
      this.#inflater = new MessageInflater({ windowBits: agreement.serverMaxWindowBits, noContextTakeover: agreement.serverNoContextTakeover });
    }
    const inbox = this.#inbox;
    socket.on('data', (chunk: Buffer) => inbox.push(chunk));
    socket.on('error', (error) => inbox.noteSocketError(error));
    socket.on('close', () => inbox.noteTcpClosed());
    if (leftover.length > 0) inbox.push(leftover);
    socket.resume();
  }

  get tcpClosed(): boolean { return this.#inbox.tcpClosed; }

  send(bytes: Uint8Array): Promise<void> {
    return sendBytes(this.socket, bytes);
  }

  /** Compresses `data` with our context, as agreed: the payload of the message's frames (trailer removed). */
  compress(data: Uint8Array): Promise<Buffer> {
    assert.ok(this.#deflater, 'permessage-deflate was not negotiated');
    return this.#deflater.compress(data);
  }

  /** Compresses `data` with our context (as agreed) and returns the frames, without sending them. */
  async compressedFrames(data: Uint8Array, isBinary: boolean, split: Split = []): Promise<Buffer> {
    return compressedMessageFrames(await this.compress(data), isBinary ? Opcode.binary : Opcode.text, split);
  }

  /** Sends one message compressed (RSV1), split into frames as `split` says. */
  async sendCompressed(data: Uint8Array, isBinary: boolean, split: Split = []): Promise<void> {
    await this.send(await this.compressedFrames(data, isBinary, split));
  }

  /** The next frame, checked against RFC 6455 §5.1/§5.2 and RFC 7692 §6. */
  async nextFrame(timeoutMs = defaultTimeoutMs): Promise<ServerFrame> {
    const frame = await this.#inbox.take(timeoutMs);
    assert.equal(frame.masked, false, `server sent a masked frame: ${describeFrame(frame)}`);
    assert.ok(frame.minimalLength, `server used a non-minimal length: ${describeFrame(frame)}`);
    // RFC 6455 §5.2 / RFC 7692 §6: permessage-deflate defines RSV1 only; RSV2 and RSV3 stay 0.
    assert.equal(frame.rsv & 0b011, 0, `server set RSV2/RSV3: ${describeFrame(frame)}`);
    const rsv1 = (frame.rsv & 0b100) !== 0;
    if (rsv1) {
      assert.ok(this.agreement !== undefined, `server set RSV1 without permessage-deflate negotiated: ${describeFrame(frame)}`);
      // RFC 7692 §6.1: RSV1 only on the first frame of a data message; never on control or continuation frames.
      assert.ok(frame.opcode === Opcode.text || frame.opcode === Opcode.binary, `server set RSV1 on a ${frame.opcode === 0 ? 'continuation' : 'control'} frame: ${describeFrame(frame)}`);
    }
    return frame;
  }

  /** The next data message, inflated when its first frame had RSV1; fails on a control frame in between. */
  async nextMessage(timeoutMs = defaultTimeoutMs): Promise<DeflateMessage> {
    const deadline = Date.now() + timeoutMs;
    const frames: ServerFrame[] = [];
    while (true) {
      const frame = await this.nextFrame(Math.max(1, deadline - Date.now()));
      if (frame.opcode >= 8) assert.fail(`expected a data message, got ${describeFrame(frame)}`);
      if (frames.length === 0) assert.notEqual(frame.opcode, Opcode.continuation, `continuation frame with no message started: ${describeFrame(frame)}`);
      else assert.equal(frame.opcode, Opcode.continuation, `new message inside a fragmented one: ${describeFrame(frame)}`);
      frames.push(frame);
      if (!frame.fin) continue;
      const payload = Buffer.concat(frames.map((f) => f.payload));
      const compressed = (frames[0]!.rsv & 0b100) !== 0;
      let data: Buffer = payload;
      if (compressed) {
        try {
          data = await this.#inflater!.decompress(payload);
        } catch (error) {
          assert.fail(`the server's compressed message (${payload.length} bytes, first frame ${describeFrame(frames[0]!)}) does not inflate with the agreed ${JSON.stringify(this.agreement)}: ${(error as Error).message}`);
        }
      }
      return { opcode: frames[0]!.opcode, data, compressed, wireBytes: payload.length, frames };
    }
  }

  /** Waits for the server's close frame and its TCP close (does not answer: after a failure none is expected). */
  async expectClose(timeoutMs = defaultTimeoutMs): Promise<DeflateClose> {
    const deadline = Date.now() + timeoutMs;
    const frame = await this.nextFrame(timeoutMs);
    assert.equal(frame.opcode, Opcode.close, `expected a close frame, got ${describeFrame(frame)}`);
    const inbox = this.#inbox;
    while (!inbox.tcpClosed && (await inbox.waitForChange(deadline))) { /* wait for TCP close */ }
    return {
      code: frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : undefined,
      reason: frame.payload.subarray(2).toString('utf8'),
      tcpClosed: inbox.tcpClosed,
      framesAfterClose: inbox.pending.splice(0),
    };
  }

  /** Sends a close 1000 and checks the server answers it. */
  async closeCleanly(): Promise<void> {
    await this.send(closeFrame(1000));
    const result = await this.expectClose();
    assert.equal(result.code, 1000);
    this.destroy();
  }

  destroy(): void {
    this.socket.destroy();
    this.#deflater?.close();
    this.#inflater?.close();
  }
}

const openClients = new Set<DeflateClient>();

/**
 * Opens a TCP connection, sends the upgrade with `extensions`, reads the response head and, when it is a 101
 * with a permessage-deflate answer, checks that answer against `offer` (when given) and agrees accordingly.
 */
export async function openDeflateClient(server: Pick<RunningServer, 'host' | 'port'>, options: DeflateClientOptions = {}): Promise<DeflateClient> {
  const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
  const request = buildRequest(server.host, server.port, {
    path: options.path ?? '/echo',
    ...(options.extensions !== undefined && { headers: { 'Sec-WebSocket-Extensions': options.extensions } }),
  });
  const socket = connect({ host: server.host, port: server.port });
  socket.setNoDelay(true);
  socket.on('error', () => { /* reported through close / the waits */ });
  try {
    const { head, leftover } = await readResponseHead(socket, request, timeoutMs);
    const { firstLine, headers } = parseHead(head, false);
    const answer = headers.get('sec-websocket-extensions');
    let agreement: Agreement | undefined;
    if (statusOf(firstLine) === 101 && answer !== undefined) {
      assert.ok(options.extensions !== undefined, `server answered Sec-WebSocket-Extensions ${JSON.stringify(answer)} to a request that offered none`);
      agreement = checkDeflateAnswer(options.offer ?? {}, answer);
    }
    const client = new DeflateClient(socket, head, leftover, agreement, options.level ?? 6);
    openClients.add(client);
    void new Promise<void>((resolve) => socket.once('close', () => resolve())).then(() => openClients.delete(client));
    return client;
  } catch (error) {
    socket.destroy();
    throw error;
  }
}

/** Destroys every client openDeflateClient opened (call it in afterEach). */
export function closeAllDeflateClients(): void {
  for (const client of openClients) client.destroy();
  openClients.clear();
}
