// Test oracle for RFC 6455 framing: builds raw frames as a client would and parses what a server sends.
// Deliberately independent of src/ — a test must not check the server with the server's own code.
import { Buffer } from 'node:buffer';

/** RFC 6455 §5.2 / §11.8 opcodes. */
export const Opcode = {
  continuation: 0x0,
  text: 0x1,
  binary: 0x2,
  close: 0x8,
  ping: 0x9,
  pong: 0xa,
} as const;

/** How the payload length is written: 7-bit, 7+16-bit (126) or 7+64-bit (127). */
export type LengthEncoding = '7' | '16' | '64';

export interface FrameSpec {
  /** Default true. */
  readonly fin?: boolean;
  readonly rsv1?: boolean;
  readonly rsv2?: boolean;
  readonly rsv3?: boolean;
  /** 0-15; reserved values are allowed on purpose. */
  readonly opcode: number;
  /** A string is encoded as UTF-8. Default empty. */
  readonly payload?: Uint8Array | string;
  /** 4-byte masking key; default a fixed non-zero key so masking is really exercised. */
  readonly mask?: Uint8Array;
  /** Force an encoding (possibly non-minimal, which RFC 6455 §5.2 forbids). Default: minimal. */
  readonly lengthEncoding?: LengthEncoding;
}

export interface HeaderSpec {
  readonly fin?: boolean;
  readonly rsv1?: boolean;
  readonly rsv2?: boolean;
  readonly rsv3?: boolean;
  readonly opcode: number;
  /** The length written into the header, which need not match any payload that follows. */
  readonly payloadLength: number | bigint;
  readonly lengthEncoding?: LengthEncoding;
  /** Present: MASK bit set and these 4 bytes follow the length. Absent: unmasked. */
  readonly mask?: Uint8Array;
}

const defaultMask = Uint8Array.from([0x37, 0xfa, 0x21, 0x3d]);

export function toBytes(payload: Uint8Array | string | undefined): Buffer {
  if (payload === undefined) return Buffer.alloc(0);
  if (typeof payload === 'string') return Buffer.from(payload, 'utf8');
  return Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
}

function minimalEncoding(length: bigint): LengthEncoding {
  if (length <= 125n) return '7';
  if (length <= 0xffffn) return '16';
  return '64';
}

/** Builds only a frame header (first byte, length, optional masking key). */
export function frameHeader(spec: HeaderSpec): Buffer {
  if (!Number.isInteger(spec.opcode) || spec.opcode < 0 || spec.opcode > 15) throw new RangeError(`opcode ${spec.opcode} is not 0-15`);
  const length = BigInt(spec.payloadLength);
  if (length < 0n || length > 0xffff_ffff_ffff_ffffn) throw new RangeError(`payload length ${length} does not fit 64 bits`);
  const encoding = spec.lengthEncoding ?? minimalEncoding(length);
  if (encoding === '7' && length > 125n) throw new RangeError(`length ${length} does not fit the 7-bit encoding`);
  if (encoding === '16' && length > 0xffffn) throw new RangeError(`length ${length} does not fit the 16-bit encoding`);
  if (spec.mask !== undefined && spec.mask.length !== 4) throw new RangeError('a masking key is 4 bytes');

  const extendedBytes = encoding === '7' ? 0 : encoding === '16' ? 2 : 8;
  const maskBytes = spec.mask === undefined ? 0 : 4;
  const header = Buffer.alloc(2 + extendedBytes + maskBytes);
  header[0] = ((spec.fin ?? true) ? 0x80 : 0)
    | (spec.rsv1 === true ? 0x40 : 0)
    | (spec.rsv2 === true ? 0x20 : 0)
    | (spec.rsv3 === true ? 0x10 : 0)
    | spec.opcode;
  const maskBit = spec.mask === undefined ? 0 : 0x80;
  if (encoding === '7') {
    header[1] = maskBit | Number(length);
  } else if (encoding === '16') {
    header[1] = maskBit | 126;
    header.writeUInt16BE(Number(length), 2);
  } else {
    header[1] = maskBit | 127;
    header.writeBigUInt64BE(length, 2);
  }
  if (spec.mask !== undefined) header.set(spec.mask, 2 + extendedBytes);
  return header;
}

/** XOR with a 4-byte key (RFC 6455 §5.3); returns a new buffer. */
export function applyMask(payload: Uint8Array, mask: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(payload.length);
  for (let i = 0; i < payload.length; i++) out[i] = payload[i]! ^ mask[i & 3]!;
  return out;
}

/** A frame as a conforming client sends it: MASK bit set, payload masked (RFC 6455 §5.3). */
export function maskedFrame(spec: FrameSpec): Buffer {
  const payload = toBytes(spec.payload);
  const mask = spec.mask ?? defaultMask;
  const header = frameHeader({ ...headerFields(spec), payloadLength: payload.length, mask });
  return Buffer.concat([header, applyMask(payload, mask)]);
}

/** A frame with the MASK bit clear — what a server sends, and what a server MUST reject from a client (§5.1). */
export function unmaskedFrame(spec: Omit<FrameSpec, 'mask'>): Buffer {
  const payload = toBytes(spec.payload);
  return Buffer.concat([frameHeader({ ...headerFields(spec), payloadLength: payload.length }), payload]);
}

function headerFields(spec: FrameSpec): Omit<HeaderSpec, 'payloadLength'> {
  const fields: { -readonly [K in keyof Omit<HeaderSpec, 'payloadLength'>]: Omit<HeaderSpec, 'payloadLength'>[K] } = { opcode: spec.opcode };
  if (spec.fin !== undefined) fields.fin = spec.fin;
  if (spec.rsv1 !== undefined) fields.rsv1 = spec.rsv1;
  if (spec.rsv2 !== undefined) fields.rsv2 = spec.rsv2;
  if (spec.rsv3 !== undefined) fields.rsv3 = spec.rsv3;
  if (spec.lengthEncoding !== undefined) fields.lengthEncoding = spec.lengthEncoding;
  return fields;
}

/** Close frame body (RFC 6455 §5.5.1): 2-byte big-endian code, then the reason (string as UTF-8, or raw bytes). */
export function closePayload(code: number, reason: string | Uint8Array = ''): Buffer {
  const codeBytes = Buffer.alloc(2);
  codeBytes.writeUInt16BE(code, 0);
  return Buffer.concat([codeBytes, toBytes(reason)]);
}

/** Convenience builders for the common client frames. */
export const text = (payload: Uint8Array | string, fin = true): Buffer => maskedFrame({ opcode: Opcode.text, payload, fin });
export const binary = (payload: Uint8Array | string, fin = true): Buffer => maskedFrame({ opcode: Opcode.binary, payload, fin });
export const continuation = (payload: Uint8Array | string, fin = true): Buffer => maskedFrame({ opcode: Opcode.continuation, payload, fin });
export const ping = (payload: Uint8Array | string = ''): Buffer => maskedFrame({ opcode: Opcode.ping, payload });
export const pong = (payload: Uint8Array | string = ''): Buffer => maskedFrame({ opcode: Opcode.pong, payload });
export const close = (code?: number, reason: string | Uint8Array = ''): Buffer =>
  maskedFrame({ opcode: Opcode.close, payload: code === undefined ? Buffer.alloc(0) : closePayload(code, reason) });

export interface ServerFrame {
  readonly fin: boolean;
  /** The three RSV bits as a number 0-7 (RSV1 = 4, RSV2 = 2, RSV3 = 1). */
  readonly rsv: number;
  readonly opcode: number;
  readonly masked: boolean;
  /** How the server encoded the length; RFC 6455 §5.2 requires the minimal one. */
  readonly lengthEncoding: LengthEncoding;
  /** Whether lengthEncoding is the minimal one for the payload length. */
  readonly minimalLength: boolean;
  /** Unmasked payload. */
  readonly payload: Buffer;
}

export interface ParseResult {
  readonly frames: ServerFrame[];
  /** Bytes of an incomplete frame at the end of the buffer. */
  readonly rest: Buffer;
}

/**
 * Parses every complete frame at the start of `buffer`. Incremental: feed `rest` plus the next chunk again.
 * Throws on a 64-bit length with the MSB set or beyond Number.MAX_SAFE_INTEGER (nothing sane sends those).
 */
export function parseServerFrames(buffer: Buffer): ParseResult {
  const frames: ServerFrame[] = [];
  let offset = 0;
  while (buffer.length - offset >= 2) {
    const b0 = buffer[offset]!;
    const b1 = buffer[offset + 1]!;
    const masked = (b1 & 0x80) !== 0;
    const len7 = b1 & 0x7f;
    let headerLength = 2;
    let payloadLength: number;
    let lengthEncoding: LengthEncoding;
    if (len7 === 126) {
      if (buffer.length - offset < 4) break;
      payloadLength = buffer.readUInt16BE(offset + 2);
      headerLength = 4;
      lengthEncoding = '16';
    } else if (len7 === 127) {
      if (buffer.length - offset < 10) break;
      const big = buffer.readBigUInt64BE(offset + 2);
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`server frame announces a 64-bit length of ${big}`);
      payloadLength = Number(big);
      headerLength = 10;
      lengthEncoding = '64';
    } else {
      payloadLength = len7;
      lengthEncoding = '7';
    }
    const maskOffset = offset + headerLength;
    if (masked) headerLength += 4;
    if (buffer.length - offset < headerLength + payloadLength) break;
    const start = offset + headerLength;
    let payload: Buffer = Buffer.from(buffer.subarray(start, start + payloadLength));
    if (masked) payload = applyMask(payload, buffer.subarray(maskOffset, maskOffset + 4));
    frames.push({
      fin: (b0 & 0x80) !== 0,
      rsv: (b0 >> 4) & 0x7,
      opcode: b0 & 0x0f,
      masked,
      lengthEncoding,
      minimalLength: lengthEncoding === minimalEncoding(BigInt(payloadLength)),
      payload,
    });
    offset = start + payloadLength;
  }
  return { frames, rest: Buffer.from(buffer.subarray(offset)) };
}

/** A short human description of a frame for assertion messages. */
export function describeFrame(frame: ServerFrame): string {
  const name = opcodeNames[frame.opcode] ?? `opcode ${frame.opcode}`;
  let detail = `${frame.payload.length} bytes`;
  if (frame.opcode === Opcode.close && frame.payload.length >= 2) {
    detail = `code ${frame.payload.readUInt16BE(0)}, reason ${JSON.stringify(frame.payload.subarray(2).toString('utf8'))}`;
  } else if (frame.payload.length <= 32) {
    detail += ` <${frame.payload.toString('hex')}>`;
  }
  return `${name} frame (fin=${frame.fin ? 1 : 0}, rsv=${frame.rsv}, masked=${frame.masked ? 1 : 0}, ${detail})`;
}

const opcodeNames: Readonly<Record<number, string>> = { 0: 'continuation', 1: 'text', 2: 'binary', 8: 'close', 9: 'ping', 10: 'pong' };

/** Deterministic pseudo-random bytes covering the whole 0x00-0xff range. */
export function patternBytes(length: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(length);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    state ^= state << 13; state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5; state >>>= 0;
    out[i] = state & 0xff;
  }
  return out;
}

/** ASCII text of exactly `length` bytes. */
export function patternText(length: number): string {
  const alphabet = 'Hello, switchyard! abcdefghijklmnopqrstuvwxyz 0123456789 ';
  let out = '';
  while (out.length < length) out += alphabet;
  return out.slice(0, length);
}
