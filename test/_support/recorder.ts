// Test support for the sans-I/O protocol core: a ProtocolEvents recorder (the `takeEvents()` view), a tiny
// independent frame encoder for input and decoder for output (never src's own parser as the oracle), and
// `feedWays()`, which splits the same bytes whole, byte by byte and at seeded random points.
import assert from 'node:assert/strict';
import { Buffer, isUtf8 } from 'node:buffer';
import { ProtocolError } from '../../src/errors.js';
import { Connection, type ConnectionOptions, type ProtocolEvents } from '../../src/protocol/connection.js';

// ---- events ----

export type RecordedEvent =
  | { type: 'message'; data: Buffer; isBinary: boolean }
  | { type: 'ping'; data: Buffer }
  | { type: 'pong'; data: Buffer }
  | { type: 'close'; code: number; reason: string }
  | { type: 'error'; error: ProtocolError };

/** Records every event in order. Payloads are kept as handed out (views), so identity can be asserted. */
export class Recorder implements ProtocolEvents {
  #events: RecordedEvent[] = [];

  onMessage(data: Buffer, isBinary: boolean): void {
    this.#events.push({ type: 'message', data, isBinary });
  }
  onPing(data: Buffer): void {
    this.#events.push({ type: 'ping', data });
  }
  onPong(data: Buffer): void {
    this.#events.push({ type: 'pong', data });
  }
  onCloseFrame(code: number, reason: string): void {
    this.#events.push({ type: 'close', code, reason });
  }
  onProtocolError(error: ProtocolError): void {
    this.#events.push({ type: 'error', error });
  }

  /** The events since the last call; the list is empty afterwards. */
  takeEvents(): RecordedEvent[] {
    const events = this.#events;
    this.#events = [];
    return events;
  }

  /** How many events are waiting (without taking them). */
  get pending(): number {
    return this.#events.length;
  }
}

/** A plain, comparable summary of events (payloads as hex/utf8 text, errors as code + closeCode). */
export function summarize(events: readonly RecordedEvent[]): unknown[] {
  return events.map((event) => {
    switch (event.type) {
      case 'message':
        return { type: 'message', isBinary: event.isBinary, hex: event.data.toString('hex') };
      case 'ping':
      case 'pong':
        return { type: event.type, hex: event.data.toString('hex') };
      case 'close':
        return { type: 'close', code: event.code, reason: event.reason };
      case 'error':
        return { type: 'error', code: event.error.code, closeCode: event.error.closeCode };
    }
  });
}

// ---- seeded randomness ----

/** mulberry32: small, fast, deterministic. */
export class Rng {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [min, max] (inclusive). */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  bool(probability = 0.5): boolean {
    return this.next() < probability;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)]!;
  }
  bytes(length: number): Buffer {
    const out = Buffer.alloc(length);
    for (let i = 0; i < length; i++) out[i] = this.int(0, 255);
    return out;
  }
}

/** Rng as a Math.random stand-in: the same sequence for the same seed, so a failure reproduces. */
export function seededRandom(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.next();
}

// ---- splitting input ----

export interface FeedWay {
  name: string;
  /** Fresh chunks, each on its own ArrayBuffer (the parser unmasks in place, so nothing is shared). */
  chunks: Buffer[];
}

/** A copy of `bytes[start, end)` on its own ArrayBuffer (Buffer.alloc never uses the shared pool). */
export function ownChunk(bytes: Uint8Array, start = 0, end = bytes.length): Buffer {
  const chunk = Buffer.alloc(end - start);
  chunk.set(bytes.subarray(start, end));
  return chunk;
}

/** Splits `bytes` at the given offsets into fresh chunks. */
export function splitAt(bytes: Uint8Array, offsets: readonly number[]): Buffer[] {
  const points = [...new Set(offsets.filter((o) => o > 0 && o < bytes.length))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let start = 0;
  for (const point of [...points, bytes.length]) {
    chunks.push(ownChunk(bytes, start, point));
    start = point;
  }
  return chunks;
}

/**
 * The ways a test feeds the same bytes: whole, one byte at a time, and `randomSplits` seeded random splits
 * (the seed is fixed, so a failure reproduces). Each way gets fresh copies.
 */
export function* feedWays(bytes: Uint8Array, options: { seed?: number; randomSplits?: number; byteByByte?: boolean } = {}): Generator<FeedWay> {
  yield { name: 'whole', chunks: [ownChunk(bytes)] };
  if (bytes.length > 1 && options.byteByByte !== false) {
    const chunks: Buffer[] = [];
    for (let i = 0; i < bytes.length; i++) chunks.push(ownChunk(bytes, i, i + 1));
    yield { name: 'byte by byte', chunks };
  }
  const rng = new Rng((options.seed ?? 0x5eed) ^ bytes.length);
  const count = options.randomSplits ?? 3;
  for (let n = 0; n < count && bytes.length > 1; n++) {
    const cuts = rng.int(1, Math.min(8, bytes.length - 1));
    const offsets: number[] = [];
    for (let i = 0; i < cuts; i++) offsets.push(rng.int(1, bytes.length - 1));
    yield { name: `random split #${n + 1}`, chunks: splitAt(bytes, offsets) };
  }
}

// ---- encoding input frames (an independent, deliberately naive encoder) ----

export const Op = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

/** A fixed, non-zero, non-repeating key so masking is really exercised. */
export const TEST_MASK_KEY: Readonly<Uint8Array> = Uint8Array.from([0x37, 0xfa, 0x21, 0x3d]);

export interface FrameSpec {
  opcode: number;
  /** A string is UTF-8 encoded. Default empty. */
  payload?: Uint8Array | string;
  fin?: boolean;
  rsv1?: boolean;
  rsv2?: boolean;
  rsv3?: boolean;
  /** true: mask with TEST_MASK_KEY; a Uint8Array: mask with that key; false/absent: unmasked. */
  mask?: boolean | Uint8Array;
  /** Force the length encoding (7, 16 or 64 bits), even a non-minimal one. Default: minimal. */
  lengthBits?: 7 | 16 | 64;
  /** Write this length in the header instead of the payload's (for headers announcing more than follows). */
  declaredLength?: number | bigint;
}

export function payloadBytes(payload: Uint8Array | string | undefined): Buffer {
  if (payload === undefined) return Buffer.alloc(0);
  return typeof payload === 'string' ? Buffer.from(payload, 'utf8') : Buffer.from(payload);
}

/** Encodes one frame exactly as specified (RFC 6455 §5.2), including illegal variants. */
export function encodeFrame(spec: FrameSpec): Buffer {
  const payload = payloadBytes(spec.payload);
  const length = BigInt(spec.declaredLength ?? payload.length);
  const bits = spec.lengthBits ?? (length <= 125n ? 7 : length <= 0xffffn ? 16 : 64);
  const key = spec.mask === true ? TEST_MASK_KEY : spec.mask === false ? undefined : spec.mask;
  const bytes: number[] = [];
  bytes.push((spec.fin === false ? 0 : 0x80) | (spec.rsv1 ? 0x40 : 0) | (spec.rsv2 ? 0x20 : 0) | (spec.rsv3 ? 0x10 : 0) | (spec.opcode & 0x0f));
  const maskBit = key === undefined ? 0 : 0x80;
  if (bits === 7) {
    bytes.push(maskBit | Number(length));
  } else if (bits === 16) {
    bytes.push(maskBit | 126, Number(length >> 8n) & 0xff, Number(length) & 0xff);
  } else {
    bytes.push(maskBit | 127);
    for (let shift = 56n; shift >= 0n; shift -= 8n) bytes.push(Number((length >> shift) & 0xffn));
  }
  if (key !== undefined) bytes.push(...key);
  const body = Buffer.alloc(payload.length);
  for (let i = 0; i < payload.length; i++) body[i] = payload[i]! ^ (key === undefined ? 0 : key[i % 4]!);
  return Buffer.concat([Buffer.from(bytes), body]);
}

/** A frame as the peer of `role` sends it: a client masks (the server receives), a server does not. */
export function peerFrame(role: 'server' | 'client', spec: Omit<FrameSpec, 'mask'>): Buffer {
  return encodeFrame({ ...spec, mask: role === 'server' });
}

/** The same frame with the wrong masking for a peer of `role` (masked to a client, unmasked to a server). */
export function wronglyMaskedFrame(role: 'server' | 'client', spec: Omit<FrameSpec, 'mask'>): Buffer {
  return encodeFrame({ ...spec, mask: role === 'client' });
}

/** Close frame payload (RFC 6455 §5.5.1): 2-byte code and reason (string as UTF-8, or raw bytes). */
export function closeBody(code: number, reason: string | Uint8Array = ''): Buffer {
  const head = Buffer.alloc(2);
  head.writeUInt16BE(code, 0);
  return Buffer.concat([head, payloadBytes(reason)]);
}

// ---- decoding what takeOutgoing() produced ----

export interface DecodedFrame {
  fin: boolean;
  rsv1: boolean;
  rsv2: boolean;
  rsv3: boolean;
  opcode: number;
  masked: boolean;
  maskKey: Buffer | undefined;
  /** 7, 16 or 64: how the length was written. */
  lengthBits: 7 | 16 | 64;
  /** Unmasked payload (a copy). */
  payload: Buffer;
}

/**
 * Decodes a complete byte stream of frames. Throws when the stream ends inside a frame, when a length is
 * not minimally encoded, or when the 64-bit length has its top bit set (RFC 6455 §5.2 — we must never send
 * those).
 */
export function decodeFrames(chunks: readonly Uint8Array[]): DecodedFrame[] {
  const bytes = Buffer.concat(chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength)));
  const frames: DecodedFrame[] = [];
  let at = 0;
  const need = (n: number): void => {
    if (at + n > bytes.length) throw new Error(`outgoing bytes end inside a frame (need ${n} at ${at} of ${bytes.length})`);
  };
  while (at < bytes.length) {
    need(2);
    const b0 = bytes[at]!;
    const b1 = bytes[at + 1]!;
    at += 2;
    let length = b1 & 0x7f;
    let lengthBits: 7 | 16 | 64 = 7;
    if (length === 126) {
      need(2);
      length = bytes[at]! * 256 + bytes[at + 1]!;
      at += 2;
      lengthBits = 16;
      if (length < 126) throw new Error(`non-minimal 16-bit length ${length}`);
    } else if (length === 127) {
      need(8);
      if (bytes[at]! & 0x80) throw new Error('64-bit length with the most significant bit set');
      let big = 0n;
      for (let i = 0; i < 8; i++) big = (big << 8n) | BigInt(bytes[at + i]!);
      at += 8;
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`absurd length ${big}`);
      length = Number(big);
      lengthBits = 64;
      if (length < 65536) throw new Error(`non-minimal 64-bit length ${length}`);
    }
    const masked = (b1 & 0x80) !== 0;
    let maskKey: Buffer | undefined;
    if (masked) {
      need(4);
      maskKey = Buffer.from(bytes.subarray(at, at + 4));
      at += 4;
    }
    need(length);
    const payload = Buffer.from(bytes.subarray(at, at + length));
    at += length;
    if (maskKey !== undefined) for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ maskKey[i % 4]!;
    frames.push({
      fin: (b0 & 0x80) !== 0,
      rsv1: (b0 & 0x40) !== 0,
      rsv2: (b0 & 0x20) !== 0,
      rsv3: (b0 & 0x10) !== 0,
      opcode: b0 & 0x0f,
      masked,
      maskKey,
      lengthBits,
      payload,
    });
  }
  return frames;
}

/**
 * Takes and decodes a connection's outgoing bytes, checking the masking rule of its role on every frame
 * (RFC 6455 §5.1, §5.3: a client masks every frame, a server never does).
 */
export function takeFrames(connection: Connection): DecodedFrame[] {
  const frames = decodeFrames(connection.takeOutgoing());
  for (const frame of frames) {
    if (connection.role === 'client' && !frame.masked) throw new Error('the client sent an unmasked frame (RFC 6455 §5.3)');
    if (connection.role === 'server' && frame.masked) throw new Error('the server sent a masked frame (RFC 6455 §5.1)');
  }
  return frames;
}

/** The code and reason of a decoded close frame (1005 and '' for an empty payload). */
export function closeOf(frame: DecodedFrame): { code: number; reason: string } {
  if (frame.opcode !== Op.close) throw new Error(`not a close frame: opcode ${frame.opcode}`);
  if (frame.payload.length === 0) return { code: 1005, reason: '' };
  return { code: frame.payload.readUInt16BE(0), reason: frame.payload.subarray(2).toString('utf8') };
}

/** Close codes that may appear on the wire (RFC 6455 §7.4.1, §7.4.2), written out independently of src. */
export function isLegalWireCloseCode(code: number): boolean {
  return [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014].includes(code) || (code >= 3000 && code <= 4999);
}

// ---- driving a Connection ----

export type TestRole = 'server' | 'client';
export const ROLES: readonly TestRole[] = ['server', 'client'];

export interface Harness {
  connection: Connection;
  recorder: Recorder;
}

export function open(role: TestRole, options: ConnectionOptions = {}): Harness {
  const recorder = new Recorder();
  return { connection: new Connection(role, recorder, options), recorder };
}

export interface Run extends Harness {
  role: TestRole;
  way: FeedWay;
  /** The chunks fed (after feeding: the parser may have unmasked them in place). */
  chunks: Buffer[];
  events: RecordedEvent[];
  frames: DecodedFrame[];
}

/**
 * Feeds `bytes` to a fresh connection of `role` in every way of feedWays(), and calls `check` with what
 * came out of each. `label` (the way's name) is meant for assertion messages.
 */
export function forEachWay(role: TestRole, bytes: Uint8Array, check: (run: Run, label: string) => void, options: ConnectionOptions & { randomSplits?: number; seed?: number } = {}): void {
  const { randomSplits, seed, ...connectionOptions } = options;
  const wayOptions: { randomSplits?: number; seed?: number } = {};
  if (randomSplits !== undefined) wayOptions.randomSplits = randomSplits;
  if (seed !== undefined) wayOptions.seed = seed;
  for (const way of feedWays(bytes, wayOptions)) {
    const harness = open(role, connectionOptions);
    for (const chunk of way.chunks) harness.connection.receiveData(chunk);
    const run: Run = { ...harness, role, way, chunks: way.chunks, events: harness.recorder.takeEvents(), frames: takeFrames(harness.connection) };
    check(run, `${role}, fed ${way.name}`);
  }
}

/** Concatenates peer frames built for `role` from specs (a Buffer is taken as already encoded). */
export function peerStream(role: TestRole, specs: ReadonlyArray<Omit<FrameSpec, 'mask'> | Buffer>): Buffer {
  return Buffer.concat(specs.map((spec) => (Buffer.isBuffer(spec) ? spec : peerFrame(role, spec))));
}

/** Input a healthy peer could still send: used to prove that a stopped connection ignores everything. */
export function moreInput(role: TestRole): Buffer {
  return peerStream(role, [
    { opcode: Op.text, payload: 'after' },
    { opcode: Op.ping, payload: 'p' },
    { opcode: Op.binary, payload: Buffer.from([1, 2, 3]) },
    { opcode: Op.close, payload: closeBody(1000, 'bye') },
  ]);
}

/**
 * Asserts the shape every failure must have (RFC 6455 §7.1.7): exactly one error event, last, carrying
 * `code` and `closeCode`; exactly one close frame queued, last, with `closeCode`; the transport is to be
 * closed; and afterwards further input, sends, pings and pongs produce nothing at all.
 */
export function assertFailed(run: Harness & { events: RecordedEvent[]; frames: DecodedFrame[] }, code: string, closeCode: number, label = ''): void {
  const { connection, recorder, events, frames } = run;
  const at = label === '' ? '' : ` (${label})`;
  const errors = events.filter((e) => e.type === 'error' || e.type === 'close');
  assert.equal(errors.length, 1, `exactly one error event expected${at}: ${JSON.stringify(summarize(events))}`);
  const last = events[events.length - 1]!;
  assert.equal(last.type, 'error', `the error is the last event${at}`);
  if (last.type !== 'error') return;
  assert.ok(last.error instanceof ProtocolError, `a ProtocolError${at}`);
  assert.equal(last.error.code, code, `error code${at}`);
  assert.equal(last.error.closeCode, closeCode, `error closeCode${at}`);
  assert.ok(frames.length >= 1, `a close frame is queued${at}`);
  const closeFrames = frames.filter((f) => f.opcode === Op.close);
  assert.equal(closeFrames.length, 1, `exactly one close frame${at}`);
  const lastFrame = frames[frames.length - 1]!;
  assert.equal(lastFrame.opcode, Op.close, `the close frame is the last frame${at}`);
  assert.equal(closeOf(lastFrame).code, closeCode, `close frame code${at}`);
  assert.ok(isUtf8(lastFrame.payload.subarray(2)), `close reason is UTF-8${at}`);
  assert.ok(lastFrame.payload.length <= 125, `close frame within 125 bytes${at}`);
  assert.equal(connection.shouldCloseTransport(), true, `the transport is to be closed${at}`);
  const info = connection.closeInfo();
  assert.equal(info.code, closeCode, `closeInfo().code${at}`);
  assert.equal(info.wasClean, false, `closeInfo().wasClean${at}`);
  // Nothing more, ever.
  assert.doesNotThrow(() => connection.receiveData(moreInput(connection.role)));
  assert.doesNotThrow(() => connection.receiveData(Buffer.from([0xff, 0xff, 0xff, 0xff])));
  assert.equal(connection.send(Buffer.from('x'), true), false, `send() after failing${at}`);
  assert.equal(connection.sendText('x'), false, `sendText() after failing${at}`);
  assert.equal(connection.ping(Buffer.from('p')), false, `ping() after failing${at}`);
  assert.equal(connection.pong(Buffer.from('p')), false, `pong() after failing${at}`);
  connection.close(1000, 'late');
  connection.fail(1011, 'late');
  assert.deepEqual(recorder.takeEvents(), [], `no events after failing${at}`);
  assert.deepEqual(connection.takeOutgoing(), [], `nothing queued after failing${at}`);
  assert.equal(connection.outgoingBytes, 0);
}

/** Feeds the peer's bytes for `role` in every way and asserts the failure shape for each. */
export function assertFailsAllWays(role: TestRole, bytes: Uint8Array, code: string, closeCode: number, options: ConnectionOptions & { randomSplits?: number; seed?: number } = {}): void {
  forEachWay(role, bytes, (run, label) => assertFailed(run, code, closeCode, label), options);
}

/** The message events among `events`, with their payloads and types. */
export function messagesOf(events: readonly RecordedEvent[]): Array<{ data: Buffer; isBinary: boolean }> {
  const out: Array<{ data: Buffer; isBinary: boolean }> = [];
  for (const event of events) if (event.type === 'message') out.push({ data: event.data, isBinary: event.isBinary });
  return out;
}
