// One published message and its encodings, made once and shared: the plain frame every uncompressed
// subscriber gets, and a compressed frame per compressor setting for subscribers whose compression is
// stateless (no context takeover), so N such subscribers cost one compression, not N.
import { encodeServerFrame, encodeServerTextFrame } from '../protocol/frame.js';

type FramesCallback = (frames: readonly Buffer[] | undefined) => void;
type Compress = (callback: (error: Error | null, payload: Buffer) => void) => void;

export class PublishedMessage {
  readonly data: Buffer;
  readonly isBinary: boolean;
  #plainFrames: Buffer[] | undefined;
  readonly #text: string | undefined;
  /** Per compressor key: the finished frames, or the callbacks waiting for the compression under way. */
  #compressed: Map<string, readonly Buffer[] | FramesCallback[]> | undefined;

  constructor(data: string | Uint8Array, isBinary: boolean = typeof data !== 'string') {
    this.isBinary = isBinary;
    if (typeof data === 'string') {
      this.#text = isBinary ? undefined : data;
      this.data = Buffer.from(data);
    } else {
      this.data = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    }
  }

  /** The unmasked, uncompressed frame, encoded on first use. */
  plainFrames(): readonly Buffer[] {
    if (this.#plainFrames === undefined) {
      this.#plainFrames = this.#text !== undefined ? encodeServerTextFrame(this.#text) : encodeServerFrame(this.isBinary ? 0x2 : 0x1, this.data);
    }
    return this.#plainFrames;
  }

  /**
   * The compressed frame for compressor setting `key`: the first caller's `compress` runs, later callers with
   * the same key wait for it. `callback` gets undefined when that compression failed; the caller then
   * compresses on its own.
   */
  compressedFrames(key: string, compress: Compress, callback: FramesCallback): void {
    const cache = (this.#compressed ??= new Map());
    const entry = cache.get(key);
    if (entry !== undefined) {
      if (isWaiting(entry)) entry.push(callback);
      else callback(entry);
      return;
    }
    const waiting: FramesCallback[] = [callback];
    cache.set(key, waiting);
    compress((error, payload) => {
      if (error !== null) {
        cache.delete(key);
        for (const waiter of waiting) waiter(undefined);
        return;
      }
      const frames = encodeServerFrame(this.isBinary ? 0x2 : 0x1, payload, { rsv1: true });
      cache.set(key, frames);
      for (const waiter of waiting) waiter(frames);
    });
  }
}

function isWaiting(entry: readonly Buffer[] | FramesCallback[]): entry is FramesCallback[] {
  return entry.length > 0 && typeof entry[0] === 'function';
}
