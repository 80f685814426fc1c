// The permessage-deflate codec (RFC 7692 §7.2) on node:zlib: compresses a message into the payload of an
// RSV1 frame and back. Inflation is bounded while it runs, so a small bomb is stopped at maxMessageBytes and
// never inflated whole; contexts are reset or kept as negotiated and created only when first needed.
import { constants, createDeflateRaw, createInflateRaw, type DeflateRaw, type InflateRaw } from 'node:zlib';
import { ProtocolError } from '../errors.js';
import { CloseCode, type Role } from '../protocol/constants.js';
import type { DeflateAgreement } from '../protocol/deflate-negotiation.js';
import { zlibLimiter } from './limiter.js';

/** RFC 7692 §7.2.1: the empty stored block a sync flush ends with, removed on send and restored on receive. */
const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);
const EMPTY = Buffer.alloc(0);
/** Payloads up to this size are copied behind the trailer so inflation is a single write. */
const SINGLE_WRITE_MAX_BYTES = 64 * 1024;

export interface DeflateCodecOptions {
  /** zlib compression level 0-9. Default 1: most of the gain on short JSON for a fraction of the CPU. */
  level?: number;
  /** zlib memLevel 1-9: memory for the compressor's internal state. Default 8. */
  memLevel?: number;
  /** Largest message, after inflation (close 1009 as soon as inflation passes it). */
  maxMessageBytes: number;
}

/** Process-wide counts of zlib jobs started: for metrics, and for tests that prove work is shared. */
export const codecStats = { compressions: 0, decompressions: 0 };

export type CompressCallback = (error: Error | null, payload: Buffer) => void;
export type DecompressCallback = (error: ProtocolError | null, message: Buffer) => void;

export class PerMessageDeflate {
  readonly #compressWindowBits: number;
  readonly #decompressWindowBits: number;
  readonly #resetCompressor: boolean;
  readonly #resetDecompressor: boolean;
  readonly #level: number;
  readonly #memLevel: number;
  readonly #maxMessageBytes: number;
  #deflater: DeflateRaw | undefined;
  /** Calls waiting their turn on each zlib stream, the running one first. */
  readonly #compressions: Array<() => void> = [];
  readonly #decompressions: Array<() => void> = [];
  #inflater: InflateRaw | undefined;
  /** The current inflater's stream was ended by a BFINAL block. */
  #inflaterEnded = false;
  /** What the next inflater starts from after a BFINAL ended the last one (context takeover). */
  #inflaterDictionary: Buffer | undefined;
  #closed = false;

  constructor(agreement: DeflateAgreement, role: Role, options: DeflateCodecOptions) {
    const ours = role === 'server' ? 'server' : 'client';
    const theirs = role === 'server' ? 'client' : 'server';
    // zlib needs a 9-bit window at least for raw deflate; a larger window still inflates a smaller one's data.
    this.#compressWindowBits = Math.max(9, agreement[`${ours}MaxWindowBits`]);
    this.#decompressWindowBits = Math.max(9, agreement[`${theirs}MaxWindowBits`]);
    this.#resetCompressor = agreement[`${ours}NoContextTakeover`];
    this.#resetDecompressor = agreement[`${theirs}NoContextTakeover`];
    this.#level = options.level ?? 1;
    this.#memLevel = options.memLevel ?? 8;
    this.#maxMessageBytes = options.maxMessageBytes;
  }

  /** True when every message is compressed from a fresh context, so equal inputs give equal outputs. */
  get compressesStatelessly(): boolean {
    return this.#resetCompressor;
  }

  /** Identifies the compressor settings: stateless codecs with equal keys produce identical payloads. */
  get compressionKey(): string {
    return `${this.#compressWindowBits}:${this.#level}:${this.#memLevel}`;
  }

  /**
   * Compresses one message into a frame payload (trailer removed). Calls back asynchronously; several calls
   * are served one after another, in order, since they share one zlib stream.
   */
  compress(data: Uint8Array, callback: CompressCallback): void {
    this.#compressions.push(() => this.#compressNow(data, (error, payload) => {
      this.#compressions.shift();
      this.#compressions[0]?.();
      callback(error, payload);
    }));
    if (this.#compressions.length === 1) this.#compressions[0]!();
  }

  #compressNow(data: Uint8Array, callback: CompressCallback): void {
    if (data.length === 0) {
      // An empty message compresses to one empty stored block, 0x00 once the trailer is removed: valid whatever
      // the context, and zlib would not be asked to flush nothing twice.
      queueMicrotask(() => callback(null, Buffer.from([0x00])));
      return;
    }
    codecStats.compressions++;
    zlibLimiter.run((done) => {
      if (this.#closed) {
        done();
        callback(new Error('codec closed'), Buffer.alloc(0));
        return;
      }
      // flush: Z_SYNC_FLUSH makes each write one complete thread-pool job (write + flush would be two).
      const deflater = (this.#deflater ??= withQuietErrors(createDeflateRaw({
        level: this.#level, memLevel: this.#memLevel, windowBits: this.#compressWindowBits, flush: constants.Z_SYNC_FLUSH,
      })));
      const chunks: Buffer[] = [];
      let length = 0;
      const onData = (chunk: Buffer): void => { chunks.push(chunk); length += chunk.length; };
      deflater.on('data', onData);
      const finished = (): void => {
        deflater.off('data', onData);
        if (this.#closed) {
          done();
          callback(new Error('codec closed'), Buffer.alloc(0));
          return;
        }
        let payload = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length);
        // RFC 7692 §7.2.1: remove the 4 octets 0x00 0x00 0xff 0xff at the tail end.
        if (payload.length >= 4 && payload.subarray(payload.length - 4).equals(TRAILER)) payload = payload.subarray(0, payload.length - 4);
        if (this.#resetCompressor) deflater.reset();
        done();
        callback(null, payload);
      };
      // The write's callback comes after all its output: one job.
      deflater.write(data, finished);
    });
  }

  /**
   * Inflates one message's payload. Fails with 1009 as soon as the output passes maxMessageBytes (the
   * inflater is discarded mid-way), and with 1007 when the data does not inflate.
   */
  decompress(payload: Buffer, callback: DecompressCallback): void {
    this.#decompressions.push(() => this.#decompressNow(payload, (error, message) => {
      this.#decompressions.shift();
      this.#decompressions[0]?.();
      callback(error, message);
    }));
    if (this.#decompressions.length === 1) this.#decompressions[0]!();
  }

  #decompressNow(payload: Buffer, callback: DecompressCallback): void {
    if (payload.length === 0) {
      // Not DEFLATE output (a sync flush of nothing leaves 0x00), but some peers send it for an empty message.
      // Feeding only the trailer would leave the inflater inside a block header, so it is not touched.
      codecStats.decompressions++;
      queueMicrotask(() => callback(null, EMPTY));
      return;
    }
    codecStats.decompressions++;
    zlibLimiter.run((done) => {
      if (this.#closed) {
        done();
        callback(new ProtocolError('ERR_CODEC_CLOSED', CloseCode.Abnormal, 'codec closed'), Buffer.alloc(0));
        return;
      }
      const inflater = (this.#inflater ??= this.#newInflater());
      const chunks: Buffer[] = [];
      let length = 0;
      let finished = false;
      const finish = (error: ProtocolError | null): void => {
        if (finished) return;
        finished = true;
        inflater.off('data', onData);
        inflater.off('error', onError);
        const message = error === null ? (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length)) : EMPTY;
        if (error !== null) {
          // A failed or abandoned inflater holds partial state: throw it away; a new one is made if needed.
          inflater.destroy();
          if (this.#inflater === inflater) this.#inflater = undefined;
        } else if (this.#inflaterEnded) {
          // RFC 7692 §7.2.3.4: the peer ended its DEFLATE stream with a BFINAL block. zlib's stream is over, so
          // the next message gets a new inflater, primed with this message's tail when context carries over.
          inflater.destroy();
          this.#inflater = undefined;
          if (!this.#resetDecompressor) {
            const windowBytes = 1 << this.#decompressWindowBits;
            this.#inflaterDictionary = Buffer.from(message.subarray(Math.max(0, message.length - windowBytes)));
          }
        } else if (this.#resetDecompressor) {
          inflater.reset();
        }
        done();
        callback(error, message);
      };
      const onData = (chunk: Buffer): void => {
        length += chunk.length;
        if (length > this.#maxMessageBytes) {
          finish(new ProtocolError('ERR_MESSAGE_TOO_BIG', CloseCode.MessageTooBig, `message inflates past ${this.#maxMessageBytes} bytes`));
          return;
        }
        chunks.push(chunk);
      };
      const onError = (error: Error): void => {
        finish(new ProtocolError('ERR_INVALID_COMPRESSED_DATA', CloseCode.InvalidPayload, 'compressed data does not inflate', { cause: error }));
      };
      inflater.on('data', onData);
      inflater.on('error', onError);
      // close() may have destroyed the inflater mid-way: report that (resetting a closed stream would throw).
      const written = (): void => finish(this.#closed ? new ProtocolError('ERR_CODEC_CLOSED', CloseCode.Abnormal, 'codec closed') : null);
      // RFC 7692 §7.2.2: append 00 00 ff ff. Small payloads go as one write, so one thread-pool job.
      if (payload.length <= SINGLE_WRITE_MAX_BYTES) {
        inflater.write(Buffer.concat([payload, TRAILER], payload.length + 4), written);
      } else {
        inflater.write(payload);
        inflater.write(TRAILER, written);
      }
    });
  }

  #newInflater(): InflateRaw {
    const dictionary = this.#inflaterDictionary;
    this.#inflaterDictionary = undefined;
    this.#inflaterEnded = false;
    const inflater = withQuietErrors(createInflateRaw({
      windowBits: this.#decompressWindowBits, flush: constants.Z_SYNC_FLUSH,
      ...(dictionary !== undefined && dictionary.length > 0 && { dictionary }),
    }));
    // zlib emits 'end' (before the flush callback) when a BFINAL block finishes the stream.
    inflater.once('end', () => { if (this.#inflater === inflater) this.#inflaterEnded = true; });
    return inflater;
  }

  /** Frees both zlib contexts; pending callbacks report that the codec closed. */
  close(): void {
    this.#closed = true;
    this.#deflater?.close();
    this.#inflater?.close();
    this.#deflater = undefined;
    this.#inflater = undefined;
  }
}

/**
 * A permanent no-op error listener: a job reports errors through its own listener, and an error emitted after
 * the job gave the stream up (say, past the size limit) must not become an uncaught exception.
 */
function withQuietErrors<T extends DeflateRaw | InflateRaw>(stream: T): T {
  stream.on('error', () => {});
  return stream;
}
