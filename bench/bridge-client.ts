// The WebSocket client side of the bridge benchmarks' load generator (bridge-load.ts): a hand-written upgrade with
// an optional subprotocol, whole frames read for the checks before a run, the client's closing handshake, and
// counters that walk frame headers only. Independent of src/, like frames.ts, so the client is not what is measured.
import { createCipheriv } from 'node:crypto';
import type { Socket } from 'node:net';
import { HANDSHAKE_KEY, OPCODE, buildMaskedFrame, decodeFrame, headerSize, openWebSocket as openRawWebSocket, type DecodedFrame } from './frames.js';

/** Every step of a connection (upgrade, a reply, the closing handshake) must finish within this. */
export const STEP_TIMEOUT_MS = 10_000;
/** What tcp-target.ts --mode source sends, over and over, so the client can check what arrives. */
export const SOURCE_CHUNK = Buffer.alloc(64 * 1024, 'switchyard tcp-target source stream 0123456789abcdefghijklmnopqrstuvwxyz');

export interface Opened {
  socket: Socket;
  /** Bytes that came after the response head. */
  leftover: Buffer;
  protocol: string;
}

/** The upgrade request, offering `protocol` as the subprotocol if given. */
export function handshakeRequest(host: string, port: number, path: string, protocol: string | undefined): Buffer {
  return Buffer.from(
    `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${HANDSHAKE_KEY}\r\nSec-WebSocket-Version: 13\r\n` +
      (protocol === undefined ? '' : `Sec-WebSocket-Protocol: ${protocol}\r\n`) +
      '\r\n',
    'latin1',
  );
}

/** Connects and upgrades (frames.ts), and reads the selected subprotocol from the answer. */
export async function openWebSocket(host: string, port: number, request: Buffer): Promise<Opened> {
  const { socket, leftover, head } = await openRawWebSocket(host, port, request, STEP_TIMEOUT_MS);
  const protocol = /\r\nsec-websocket-protocol:[ \t]*([^\r\n]*?)[ \t]*(?:\r\n|$)/i.exec(head)?.[1] ?? '';
  return { socket, leftover, protocol };
}

/** Reads whole frames until `count` arrived; resolves with them and the bytes after them, the socket paused again. */
export function readFrames(socket: Socket, leftover: Buffer, count: number, what: string): Promise<{ frames: DecodedFrame[]; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let pending = leftover;
    const frames: DecodedFrame[] = [];
    const timer = setTimeout(() => finish(new Error(`${what}: timed out after ${STEP_TIMEOUT_MS} ms (${frames.length} of ${count} frames)`)), STEP_TIMEOUT_MS);
    const onClose = (): void => finish(new Error(`${what}: connection closed after ${frames.length} of ${count} frames`));
    function finish(error?: Error): void {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.pause();
      if (error !== undefined) reject(error);
      else resolve({ frames, rest: pending });
    }
    function onData(chunk?: Buffer): void {
      if (chunk !== undefined) pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (frames.length < count) {
        const frame = decodeFrame(pending);
        if (frame === undefined) return;
        frames.push(frame);
        pending = pending.subarray(frame.frameBytes);
      }
      finish();
    }
    socket.on('data', onData);
    socket.on('close', onClose);
    onData();
    if (frames.length < count) socket.resume();
  });
}

const CLOSE_FRAME = buildMaskedFrame(Buffer.from([0x03, 0xe8]), OPCODE.close); // 1000

/** The client's closing handshake: close frame, then wait for the server's close (frame or FIN) and the TCP close. */
export function closeWebSocket(socket: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    if (socket.destroyed) return resolve();
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`closing handshake not finished after ${STEP_TIMEOUT_MS} ms`));
    }, STEP_TIMEOUT_MS);
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      for (let frame = decodeFrame(pending); frame !== undefined; frame = decodeFrame(pending)) {
        pending = pending.subarray(frame.frameBytes);
        if (frame.opcode === OPCODE.close) socket.end();
      }
    });
    socket.on('error', () => {}); // a reset after the close frame still ends the connection
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.write(CLOSE_FRAME);
    socket.resume();
  });
}

/** A text line of `bytes` printable bytes (no newline) that names `index`, so every message differs. */
export function linePayload(bytes: number, index: number): Buffer {
  const tag = `message ${index} `;
  const line = Buffer.alloc(bytes, 'abcdefghijklmnopqrstuvwxyz0123456789');
  line.write(tag.slice(0, bytes), 0, 'latin1');
  return line;
}

/** Deterministic pseudo-random bytes (AES-128-CTR keystream). */
export function keystream(seed: number, bytes: number): Buffer {
  return createCipheriv('aes-128-ctr', Buffer.alloc(16, seed), Buffer.alloc(16, 0)).update(Buffer.alloc(bytes));
}

/**
 * Counts payload bytes of binary frames as they arrive (a bridge cuts its messages wherever its reads end, so
 * only bytes mean anything), reading headers only. Other frames are counted in `unexpectedFrames`. While
 * `captureBytes` > 0 the payload bytes are kept too, for the byte-for-byte check before the run.
 */
export class PayloadCounter {
  readonly #header = Buffer.alloc(14);
  #headerHave = 0;
  #payloadLeft = 0;
  #counting = false;
  unexpectedFrames = 0;
  lastUnexpected = '';
  captureBytes = 0;
  captured: Buffer[] = [];
  /** Receives the payload bytes of expected frames, for streams that carry records (tcp-upload's counts). */
  onBytes: ((bytes: Buffer) => void) | undefined;

  /** Returns the payload bytes of expected frames in `chunk`. */
  feed(chunk: Buffer): number {
    let counted = 0;
    let i = 0;
    while (i < chunk.length) {
      if (this.#payloadLeft > 0) {
        const take = Math.min(this.#payloadLeft, chunk.length - i);
        if (this.#counting) {
          counted += take;
          this.onBytes?.(chunk.subarray(i, i + take));
          if (this.captureBytes > 0) {
            const kept = Math.min(take, this.captureBytes);
            this.captured.push(Buffer.from(chunk.subarray(i, i + kept)));
            this.captureBytes -= kept;
          }
        }
        this.#payloadLeft -= take;
        i += take;
        continue;
      }
      this.#header[this.#headerHave++] = chunk[i++]!;
      if (this.#headerHave < 2 || this.#headerHave < headerSize(this.#header[1]!)) continue;
      const length7 = this.#header[1]! & 0x7f;
      this.#payloadLeft =
        length7 === 126 ? this.#header.readUInt16BE(2) : length7 === 127 ? this.#header.readUInt32BE(2) * 2 ** 32 + this.#header.readUInt32BE(6) : length7;
      const opcode = this.#header[0]! & 0x0f;
      this.#counting = opcode === OPCODE.binary || opcode === 0x0;
      if (!this.#counting) {
        this.unexpectedFrames++;
        this.lastUnexpected = `opcode=${opcode} length=${this.#payloadLeft}`;
      }
      this.#headerHave = 0;
    }
    return counted;
  }
}

/** Reads the 8-byte big-endian numbers of a byte stream that arrives cut anywhere; returns the latest one. */
export class CountReader {
  #partial: Buffer = Buffer.alloc(0);
  latest = 0;
  push(bytes: Buffer): void {
    this.#partial = this.#partial.length === 0 ? Buffer.from(bytes) : Buffer.concat([this.#partial, bytes]);
    while (this.#partial.length >= 8) {
      this.latest = Number(this.#partial.readBigUInt64BE(0));
      this.#partial = this.#partial.subarray(8);
    }
  }
}
