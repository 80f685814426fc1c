// Message order on a compressed connection. zlib works asynchronously, so a message waiting to be inflated
// holds back the messages received after it, and a message waiting to be compressed holds back the ones sent
// after it. Both queues live here; the WebSocket stays synchronous when nothing is waiting.
import type { PerMessageDeflate } from '../codec/permessage-deflate.js';
import type { ProtocolError } from '../errors.js';
import type { PublishedMessage } from '../pubsub/published-message.js';

/** What the pipeline needs from its WebSocket. */
export interface PipelineHost {
  /** The next received message, in order; `inflated` when it arrived compressed. */
  deliver(data: Buffer, isBinary: boolean, inflated: boolean): void;
  /** Queues a frame on the connection; `compressed` sets RSV1. */
  queueFrame(payload: Uint8Array, isBinary: boolean, compressed: boolean): void;
  queueEncoded(frames: readonly Buffer[]): void;
  fail(error: ProtocolError): void;
  pauseReading(): void;
  resumeReading(): void;
  /** Write what was queued (called after asynchronous work). */
  flush(): void;
}

interface Inbound {
  data: Buffer;
  isBinary: boolean;
  compressed: boolean;
}

type Outbound =
  | { kind: 'plain'; payload: Uint8Array; isBinary: boolean }
  | { kind: 'compress'; payload: Uint8Array; isBinary: boolean }
  | { kind: 'published'; message: PublishedMessage };

export class DeflatePipeline {
  readonly #codec: PerMessageDeflate;
  readonly #host: PipelineHost;
  /** Messages at least this long are compressed; shorter ones gain too little to pay for zlib. */
  readonly #thresholdBytes: number;
  readonly #inbound: Inbound[] = [];
  #inflating = false;
  readonly #outbound: Outbound[] = [];
  #outboundBytes = 0;
  #compressing = false;
  #outboundDone: Array<() => void> | undefined;
  #inboundDone: Array<() => void> | undefined;
  #closed = false;

  constructor(codec: PerMessageDeflate, host: PipelineHost, thresholdBytes: number) {
    this.#codec = codec;
    this.#host = host;
    this.#thresholdBytes = thresholdBytes;
  }

  /** True while messages accepted for sending wait for compression. */
  get holdsOutbound(): boolean {
    return this.#outbound.length > 0;
  }

  /** Runs `callback` once every message accepted so far has been queued on the connection. */
  whenOutboundDone(callback: () => void): void {
    if (this.#outbound.length === 0) callback();
    else (this.#outboundDone ??= []).push(callback);
  }

  /** Runs `callback` once every received message has been inflated and delivered (or failed). */
  whenInboundDone(callback: () => void): void {
    if (!this.holdsInbound || this.#closed) callback();
    else (this.#inboundDone ??= []).push(callback);
  }

  /** The transport is gone: messages waiting to be compressed will never be sent. */
  dropOutbound(): void {
    this.#outbound.length = 0;
    this.#outboundBytes = 0;
    this.#outboundDone = undefined;
  }

  /** True while received messages wait for an inflation: later ones must queue behind it. */
  get holdsInbound(): boolean {
    return this.#inflating || this.#inbound.length > 0;
  }

  /** Bytes accepted for sending that still wait for compression (part of bufferedAmount). */
  get queuedBytes(): number {
    return this.#outboundBytes;
  }

  receive(data: Buffer, isBinary: boolean, compressed: boolean): void {
    if (this.#closed) return;
    this.#inbound.push({ data, isBinary, compressed });
    if (!this.#inflating) this.#pumpInbound();
  }

  #pumpInbound(): void {
    while (!this.#closed) {
      const next = this.#inbound.shift();
      if (next === undefined) {
        this.#host.resumeReading();
        this.#settleInbound();
        return;
      }
      if (!next.compressed) {
        this.#host.deliver(next.data, next.isBinary, false);
        continue;
      }
      this.#inflating = true;
      // Backpressure: read nothing more from the peer until this message is inflated.
      this.#host.pauseReading();
      this.#codec.decompress(next.data, (error, message) => {
        this.#inflating = false;
        if (this.#closed) return;
        if (error !== null) {
          this.#inbound.length = 0;
          this.#host.fail(error);
          // Keep reading so the peer's close is seen; the failed connection ignores any data.
          this.#host.resumeReading();
          this.#settleInbound();
          return;
        }
        this.#host.deliver(message, next.isBinary, true);
        this.#host.flush();
        this.#pumpInbound();
      });
      return;
    }
  }

  /** Sends a message, compressing it when it is long enough, after everything sent before it. */
  send(payload: Uint8Array, isBinary: boolean): void {
    const compress = payload.length >= this.#thresholdBytes;
    if (!compress && this.#outbound.length === 0) {
      this.#host.queueFrame(payload, isBinary, false);
      return;
    }
    this.#enqueue({ kind: compress ? 'compress' : 'plain', payload, isBinary }, payload.length);
  }

  /** Sends a published message: its shared plain frame, or a compressed frame (shared when stateless). */
  sendPublished(message: PublishedMessage): void {
    if (message.data.length < this.#thresholdBytes && this.#outbound.length === 0) {
      this.#host.queueEncoded(message.plainFrames());
      return;
    }
    this.#enqueue({ kind: 'published', message }, message.data.length);
  }

  #enqueue(entry: Outbound, byteLength: number): void {
    this.#outbound.push(entry);
    this.#outboundBytes += byteLength;
    if (!this.#compressing) this.#pumpOutbound();
  }

  #pumpOutbound(): void {
    while (!this.#closed) {
      const entry = this.#outbound[0];
      if (entry === undefined) {
        const waiting = this.#outboundDone;
        this.#outboundDone = undefined;
        if (waiting !== undefined) for (const callback of waiting) callback();
        return;
      }
      if (entry.kind === 'plain') {
        this.#finishOutbound(entry.payload.length);
        this.#host.queueFrame(entry.payload, entry.isBinary, false);
        continue;
      }
      if (entry.kind === 'published' && entry.message.data.length < this.#thresholdBytes) {
        this.#finishOutbound(entry.message.data.length);
        this.#host.queueEncoded(entry.message.plainFrames());
        continue;
      }
      this.#compressing = true;
      if (entry.kind === 'published' && this.#codec.compressesStatelessly) {
        const message = entry.message;
        message.compressedFrames(this.#codec.compressionKey, (done) => this.#codec.compress(message.data, done), (frames) => {
          if (frames === undefined) {
            // The subscriber that compressed for everyone went away mid-way: compress this one ourselves.
            this.#outbound[0] = { kind: 'compress', payload: message.data, isBinary: message.isBinary };
            this.#compressing = false;
            this.#pumpOutbound();
            this.#host.flush();
            return;
          }
          this.#afterCompression(message.data.length, () => this.#host.queueEncoded(frames));
        });
        return;
      }
      const payload = entry.kind === 'published' ? entry.message.data : entry.payload;
      const isBinary = entry.kind === 'published' ? entry.message.isBinary : entry.isBinary;
      this.#codec.compress(payload, (error, compressed) => {
        this.#afterCompression(payload.length, () => {
          if (error === null) this.#host.queueFrame(compressed, isBinary, true);
        });
      });
      return;
    }
  }

  #settleInbound(): void {
    const waiting = this.#inboundDone;
    this.#inboundDone = undefined;
    if (waiting !== undefined) for (const callback of waiting) callback();
  }

  #afterCompression(byteLength: number, queue: () => void): void {
    this.#compressing = false;
    if (this.#closed) return;
    this.#finishOutbound(byteLength);
    queue();
    // Pump first: uncompressed messages queued behind this one go out in the same write.
    this.#pumpOutbound();
    this.#host.flush();
  }

  #finishOutbound(byteLength: number): void {
    this.#outbound.shift();
    this.#outboundBytes -= byteLength;
  }

  /** The connection is gone: drop everything waiting and free the zlib contexts. */
  close(): void {
    this.#closed = true;
    this.#inbound.length = 0;
    this.#outbound.length = 0;
    this.#outboundBytes = 0;
    this.#outboundDone = undefined;
    this.#codec.close();
  }
}
