// The load generator's broadcast workers: subscriber processes and one publisher process, driven by broadcast-run.ts
// through stdin commands (one per line) and answering with JSON lines on stdout. Each process measures its own
// counters and clock, so the bench can add up rates from processes that answer at slightly different moments.
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { OPCODE, FrameCounter, HandshakeWatch, buildHandshakeRequest, buildMaskedFrame, decodeFrame } from './frames.js';
import { HANDSHAKE_TIMEOUT_MS, connectRetries, openInBatches, openMany } from './load-connect.js';


/** Every JSON line a broadcast worker prints. `wallMs` is a high-resolution wall clock (ms since the epoch). */
export type WorkerEvent =
  | { event: 'ready'; connections: number; openMs: number; connectRetries: number; cpuMicros: number }
  | { event: 'mark'; wallMs: number; cpuMicros: number; received: number; verified: number; unexpectedFrames: number; lastUnexpected: string }
  | { event: 'published'; wallMs: number; cpuMicros: number; published: number; echoed: number; hitMessageCap: boolean }
  | { event: 'stopped'; published: number; echoed: number }
  | { event: 'error'; message: string };

export function emit(event: WorkerEvent): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

const wallClockMs = (): number => performance.timeOrigin + performance.now();

function cpuMicros(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

/** Reports the failure to run.ts and exits; used for anything that makes the run's numbers meaningless. */
function failWorker(message: string): never {
  emit({ event: 'error', message });
  process.exit(1);
}

/** Calls `onCommand` for each line on stdin; exits when stdin closes (run.ts is gone: never outlive it). */
function listenForCommands(onCommand: (command: string) => void): void {
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => onCommand(line.trim()));
  lines.on('close', () => process.exit(0));
}

/** The broadcast payload: ASCII, so it is valid UTF-8 text, and the same bytes in every message. */
function textPayload(bytes: number): Buffer {
  const payload = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) payload[i] = 0x61 + (i % 26);
  return payload;
}

/**
 * Counts the text frames arriving on one connection. The first frame is decoded whole and compared byte for byte
 * with the payload the publisher sends (so a server that delivers wrong bytes fails the run); after that only
 * frame headers are read. Keeps no reference to the bytes it is fed (they may be a shared read buffer).
 */
class SubscriberCounter {
  readonly #payload: Buffer;
  readonly #counter: FrameCounter;
  #pending: Buffer | undefined = Buffer.alloc(0);
  received = 0;

  constructor(payload: Buffer) {
    this.#payload = payload;
    this.#counter = new FrameCounter(OPCODE.text, payload.length);
  }

  get verified(): boolean {
    return this.#pending === undefined;
  }

  get unexpectedFrames(): number {
    return this.#counter.unexpectedFrames;
  }

  get lastUnexpected(): string {
    return this.#counter.lastUnexpected;
  }

  /** Feeds `chunk[start, end)`; returns how many expected frames it completed, or a problem description. */
  feed(chunk: Buffer, start = 0, end: number = chunk.length): number | string {
    let completed = 0;
    if (this.#pending !== undefined) {
      const pending = Buffer.concat([this.#pending, chunk.subarray(start, end)]); // a copy: chunk may be reused
      const decoded = decodeFrame(pending);
      if (decoded === undefined) {
        this.#pending = pending;
        return 0;
      }
      if (!decoded.fin || decoded.opcode !== OPCODE.text) return `expected a FIN text frame, got fin=${decoded.fin} opcode=${decoded.opcode}`;
      if (!decoded.payload.equals(this.#payload)) return `payload differs (${decoded.payload.length} bytes, ${this.#payload.length} sent)`;
      this.#pending = undefined;
      completed = 1;
      chunk = pending;
      start = decoded.frameBytes;
      end = pending.length;
    }
    if (start < end) completed += this.#counter.feed(chunk, start, end);
    this.received += completed;
    return completed;
  }
}

/** One read buffer for every subscriber socket in this process: `onread` fills it and calls us synchronously. */
const SHARED_READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

interface Subscriber {
  socket: Socket;
  counter: SubscriberCounter;
}

/** Set once this process is shutting its subscribers down on purpose: closes are then expected. */
let subscribersExiting = false;

/**
 * Connects and upgrades a subscriber that reads through `onread` into SHARED_READ_BUFFER: no Buffer and no stream
 * 'data' event per read, which is most of what a read costs in Node. Bytes after the 101 go to the counter. After
 * the handshake, a wrong message, a socket error or a close the bench did not ask for fails the whole process.
 */
function openSubscriber(host: string, port: number, request: Buffer, payload: Buffer): Promise<Subscriber> {
  const onProblem = (problem: string): void => failWorker(`subscriber received a wrong message: ${problem}`);
  return new Promise((resolve, reject) => {
    const counter = new SubscriberCounter(payload);
    const socket = connect({
      host,
      port,
      noDelay: true,
      onread: {
        buffer: SHARED_READ_BUFFER,
        callback: (bytes: number, buffer: Uint8Array): boolean => {
          const chunk = buffer as Buffer;
          if (watch.settled) {
            const outcome = counter.feed(chunk, 0, bytes);
            if (typeof outcome === 'string') onProblem(outcome);
            return true;
          }
          const done = watch.feed(chunk.subarray(0, bytes));
          if (done === undefined) return true;
          socket.on('error', (error) => {
            if (!subscribersExiting) failWorker(`subscriber socket error: ${error.message}`);
          });
          socket.on('close', () => {
            if (!subscribersExiting) failWorker(`the server closed a subscriber connection (last unexpected frame: ${counter.lastUnexpected || 'none'})`);
          });
          resolve({ socket, counter });
          if (done.leftover.length > 0) {
            const outcome = counter.feed(done.leftover);
            if (typeof outcome === 'string') onProblem(outcome);
          }
          return true;
        },
      },
    });
    const watch = new HandshakeWatch(socket, HANDSHAKE_TIMEOUT_MS, reject);
    socket.once('connect', () => socket.write(request));
  });
}

export interface SubscriberOptions {
  host: string;
  port: number;
  path: string;
  connections: number;
  batchSize: number;
  payloadBytes: number;
}

/**
 * Opens `connections` subscribers that never send, and counts what they receive. Commands: `mark` (print the
 * counters), `exit`.
 */
export async function runSubscribers(options: SubscriberOptions): Promise<void> {
  const payload = textPayload(options.payloadBytes);
  const request = buildHandshakeRequest(options.host, options.port, options.path);
  const openStart = performance.now();
  const subscribers = await openInBatches(options.connections, options.batchSize, () => openSubscriber(options.host, options.port, request, payload));
  const openMs = performance.now() - openStart;
  listenForCommands((command) => {
    if (command === 'mark') {
      let received = 0;
      let verified = 0;
      let unexpectedFrames = 0;
      let lastUnexpected = '';
      for (const { counter } of subscribers) {
        received += counter.received;
        if (counter.verified) verified++;
        unexpectedFrames += counter.unexpectedFrames;
        if (counter.lastUnexpected !== '') lastUnexpected = counter.lastUnexpected;
      }
      emit({ event: 'mark', wallMs: wallClockMs(), cpuMicros: cpuMicros(), received, verified, unexpectedFrames, lastUnexpected });
    } else if (command === 'exit') {
      subscribersExiting = true;
      for (const { socket } of subscribers) socket.destroy();
      process.stdout.write('', () => process.exit(0));
    }
  });
  emit({ event: 'ready', connections: subscribers.length, openMs, connectRetries: connectRetries(), cpuMicros: cpuMicros() });
}

export interface PublisherOptions {
  host: string;
  port: number;
  path: string;
  payloadBytes: number;
  inflight: number;
  maxMessages: number;
  /** Publisher connections (default 1); with more, consecutive messages go out on different connections. */
  publishers: number;
}

/**
 * The publisher connection (also a subscriber: its own copy of each message comes back). It keeps K messages
 * outstanding: each copy that comes back sends the next message, so the server sets the pace and nothing piles up
 * without bound. Commands: `go K` (start, or change K; at most `--inflight`), `mark`, `stop` (send nothing more;
 * answers `stopped` once every copy is back), `exit`. Stops by itself after `maxMessages`.
 *
 * With `--publishers N` (a diagnostic, not in the default scenarios) there are N publisher connections, opened one
 * after the other, and consecutive messages go out round robin on different connections, so several messages reach
 * the server in the same event-loop turn on different sockets instead of in one chunk. K still counts all of them;
 * the copies arriving on the last connection pace the run.
 */
export async function runPublisher(options: PublisherOptions): Promise<void> {
  const payload = textPayload(options.payloadBytes);
  const frame = buildMaskedFrame(payload, OPCODE.text);
  const maxInflight = options.inflight;
  const batch = Buffer.concat(Array.from({ length: maxInflight }, () => frame));
  const batchViews = Array.from({ length: maxInflight + 1 }, (_, k) => batch.subarray(0, k * frame.length));
  const openStart = performance.now();
  // One at a time, so the last one opened is the last in the server's set of connections.
  const connections = await openMany(options.publishers, 1, options.host, options.port, options.path);
  const openMs = performance.now() - openStart;
  const counters = connections.map(() => new SubscriberCounter(payload));
  const pacer = counters[counters.length - 1]!;
  let published = 0;
  let inflight = 0;
  let nextConnection = 0;
  let sending = false;
  let stopRequested = false;
  let exiting = false;

  /** Sends enough to have `inflight` messages outstanding again (nothing after `stop` or at the cap). */
  const topUp = (): void => {
    if (!sending) return;
    const count = Math.min(inflight - (published - pacer.received), options.maxMessages - published);
    if (count <= 0) return;
    published += count;
    if (connections.length === 1) {
      connections[0]!.socket.write(batchViews[count]!);
      return;
    }
    for (let i = 0; i < count; i++) {
      connections[nextConnection]!.socket.write(frame);
      nextConnection = (nextConnection + 1) % connections.length;
    }
  };
  const reportStoppedWhenDrained = (): void => {
    if (stopRequested && counters.every((counter) => counter.received === published)) {
      stopRequested = false;
      emit({ event: 'stopped', published, echoed: pacer.received });
    }
  };
  for (const [index, { socket, leftover }] of connections.entries()) {
    const counter = counters[index]!;
    const onData = (chunk: Buffer): void => {
      const outcome = counter.feed(chunk);
      if (typeof outcome === 'string') failWorker(`publisher received a wrong message: ${outcome}`);
      if (outcome > 0 && counter === pacer) topUp();
      reportStoppedWhenDrained();
    };
    socket.on('data', onData);
    socket.on('error', (error) => {
      if (!exiting) failWorker(`publisher socket error: ${error.message}`);
    });
    socket.on('close', () => {
      if (!exiting) failWorker(`the server closed a publisher connection (last unexpected frame: ${counter.lastUnexpected || 'none'})`);
    });
    if (leftover.length > 0) onData(leftover);
    socket.resume();
  }

  listenForCommands((command) => {
    const go = /^go (\d+)$/.exec(command);
    if (go !== null) {
      inflight = Number(go[1]);
      if (!(inflight >= 1 && inflight <= maxInflight)) failWorker(`go ${go[1]}: K must be 1..${maxInflight}`);
      sending = true;
      topUp();
    } else if (command === 'mark') {
      emit({
        event: 'published',
        wallMs: wallClockMs(),
        cpuMicros: cpuMicros(),
        published,
        echoed: pacer.received,
        hitMessageCap: published >= options.maxMessages,
      });
    } else if (command === 'stop') {
      sending = false;
      stopRequested = true;
      reportStoppedWhenDrained();
    } else if (command === 'exit') {
      exiting = true;
      for (const { socket } of connections) socket.destroy();
      process.stdout.write('', () => process.exit(0));
    }
  });
  emit({ event: 'ready', connections: connections.length, openMs, connectRetries: connectRetries(), cpuMicros: cpuMicros() });
}
