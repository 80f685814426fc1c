// Frame encoding (RFC 6455 §5.2) and masking (§5.3). Server frames are never masked; client frames are
// masked with a fresh key from a CSPRNG for each frame.
import { randomFillSync } from 'node:crypto';

/** Payloads up to this size are copied behind their header into one buffer; larger ones stay separate. */
const COPY_PAYLOAD_MAX_BYTES = 4096;

export function headerLength(payloadLength: number, masked: boolean): number {
  const lengthBytes = payloadLength < 126 ? 2 : payloadLength < 65536 ? 4 : 10;
  return masked ? lengthBytes + 4 : lengthBytes;
}

/** Writes the header into `target` at `offset`; returns the offset after it (before any mask key). */
function writeHeader(target: Buffer, offset: number, fin: boolean, rsv1: boolean, opcode: number, payloadLength: number, masked: boolean): number {
  target[offset] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode;
  const maskBit = masked ? 0x80 : 0;
  if (payloadLength < 126) {
    target[offset + 1] = maskBit | payloadLength;
    return offset + 2;
  }
  if (payloadLength < 65536) {
    target[offset + 1] = maskBit | 126;
    target.writeUInt16BE(payloadLength, offset + 2);
    return offset + 4;
  }
  target[offset + 1] = maskBit | 127;
  // RFC 6455 §5.2: the most significant bit of the 64-bit length MUST be 0; lengths here are < 2^53.
  target.writeUInt32BE(Math.floor(payloadLength / 0x100000000), offset + 2);
  target.writeUInt32BE(payloadLength >>> 0, offset + 6);
  return offset + 10;
}

export interface FrameOptions {
  fin?: boolean;
  rsv1?: boolean;
}

/**
 * Encodes an unmasked (server) frame. Returns one buffer for small payloads (header and payload copied
 * together, which the write batcher likes) and `[header, payload]` for large ones, so a large payload is
 * never copied just to put a header in front of it.
 */
export function encodeServerFrame(opcode: number, payload: Uint8Array, options?: FrameOptions): Buffer[] {
  const fin = options?.fin ?? true;
  const rsv1 = options?.rsv1 ?? false;
  const length = payload.length;
  const headerBytes = headerLength(length, false);
  if (length <= COPY_PAYLOAD_MAX_BYTES) {
    const frame = Buffer.allocUnsafe(headerBytes + length);
    const payloadOffset = writeHeader(frame, 0, fin, rsv1, opcode, length, false);
    frame.set(payload, payloadOffset);
    return [frame];
  }
  const header = Buffer.allocUnsafe(headerBytes);
  writeHeader(header, 0, fin, rsv1, opcode, length, false);
  return [header, Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.length)];
}

/** Encodes a text frame straight from a string: one allocation, no intermediate payload buffer. */
export function encodeServerTextFrame(text: string, options?: FrameOptions): Buffer[] {
  const length = Buffer.byteLength(text);
  if (length > COPY_PAYLOAD_MAX_BYTES) return encodeServerFrame(0x1, Buffer.from(text), options);
  const frame = Buffer.allocUnsafe(headerLength(length, false) + length);
  const payloadOffset = writeHeader(frame, 0, options?.fin ?? true, options?.rsv1 ?? false, 0x1, length, false);
  frame.write(text, payloadOffset);
  return [frame];
}

// Random mask keys come from a pool refilled in one call, since randomFillSync per frame is a syscall-sized cost.
const maskPool = Buffer.allocUnsafe(4096);
let maskPoolOffset = maskPool.length;

function nextMaskKey(target: Buffer, offset: number): void {
  if (maskPoolOffset + 4 > maskPool.length) {
    randomFillSync(maskPool);
    maskPoolOffset = 0;
  }
  maskPool.copy(target, offset, maskPoolOffset, maskPoolOffset + 4);
  maskPoolOffset += 4;
}

/** Encodes a masked (client) frame with a fresh random key: header, key and masked payload in one buffer. */
export function encodeClientFrame(opcode: number, payload: Uint8Array, options?: FrameOptions): Buffer {
  const length = payload.length;
  const frame = Buffer.allocUnsafe(headerLength(length, true) + length);
  const keyOffset = writeHeader(frame, 0, options?.fin ?? true, options?.rsv1 ?? false, opcode, length, true);
  nextMaskKey(frame, keyOffset);
  const payloadOffset = keyOffset + 4;
  frame.set(payload, payloadOffset);
  applyMask(frame.subarray(payloadOffset), frame.readUInt32BE(keyOffset), 0);
  return frame;
}

/**
 * XORs `data` in place with a 4-byte masking key (given as the big-endian 32-bit number of its bytes),
 * starting at key byte `keyPhase` (0-3; non-zero when a payload is unmasked piece by piece). Large buffers go
 * a 32-bit word at a time over their aligned middle, small ones four bytes per step.
 */
export function applyMask(data: Uint8Array, maskKey: number, keyPhase: number): void {
  const length = data.length;
  // The key rotated so that r0 applies to data[0].
  const shift = (keyPhase & 3) * 8;
  const rotatedKey = shift === 0 ? maskKey : ((maskKey << shift) | (maskKey >>> (32 - shift))) >>> 0;
  const r0 = rotatedKey >>> 24;
  const r1 = (rotatedKey >>> 16) & 0xff;
  const r2 = (rotatedKey >>> 8) & 0xff;
  const r3 = rotatedKey & 0xff;
  let i = 0;
  if (length >= 64) {
    // Bytes until the address is 4-aligned, so an Int32Array view can cover the middle.
    const misalign = (4 - (data.byteOffset & 3)) & 3;
    for (; i < misalign; i++) data[i]! ^= rotated(r0, r1, r2, r3, i);
    const b0 = rotated(r0, r1, r2, r3, i), b1 = rotated(r0, r1, r2, r3, i + 1);
    const b2 = rotated(r0, r1, r2, r3, i + 2), b3 = rotated(r0, r1, r2, r3, i + 3);
    // Int32 rather than Uint32 keeps every value a small integer for the JIT (about twice as fast).
    const word = littleEndian ? b0 | (b1 << 8) | (b2 << 16) | (b3 << 24) : (b0 << 24) | (b1 << 16) | (b2 << 8) | b3;
    const words = (length - i) >>> 2;
    const view = new Int32Array(data.buffer, data.byteOffset + i, words);
    let w = 0;
    for (; w + 3 < words; w += 4) {
      view[w]! ^= word;
      view[w + 1]! ^= word;
      view[w + 2]! ^= word;
      view[w + 3]! ^= word;
    }
    for (; w < words; w++) view[w]! ^= word;
    i += words * 4;
  } else {
    for (; i + 3 < length; i += 4) {
      data[i]! ^= r0;
      data[i + 1]! ^= r1;
      data[i + 2]! ^= r2;
      data[i + 3]! ^= r3;
    }
  }
  for (; i < length; i++) data[i]! ^= rotated(r0, r1, r2, r3, i);
}

function rotated(r0: number, r1: number, r2: number, r3: number, position: number): number {
  switch (position & 3) {
    case 0: return r0;
    case 1: return r1;
    case 2: return r2;
    default: return r3;
  }
}

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
