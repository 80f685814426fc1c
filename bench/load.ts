// The load generator: runs one scenario against one server and prints one JSON line with the result. Built to
// be cheap so it is not the bottleneck: raw net sockets, pre-built masked frames written as one buffer per
// received chunk, and replies counted from frame headers only. Server CPU and RSS are read from /proc/PID.
// For broadcast it runs as a long-lived worker instead (`--scenario subscribe` or `publish`), driven by run.ts
// through stdin commands and answering with JSON lines (see the Broadcast section below).
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import {
  DEFLATE_OFFER,
  FIXED_MASK,
  OPCODE,
  FrameCounter,
  ReplyInflater,
  buildHandshakeRequest,
  buildMaskedFrame,
  checkHandshakeResponse,
  openWebSocket,
  type OpenedSocket,
  compressMessage,
  decodeFrame,
  parseDeflateAnswer,
  sensorJson,
  type DecodedFrame,
} from './frames.js';
import { readCpuSeconds, readMainThreadCpuSeconds, readRssKiB } from './proc-stats.js';

export interface EchoResult {
  kind: 'echo';
  messages: number;
  elapsedMs: number;
  messagesPerSecond: number;
  /** Payload megabytes (10^6 bytes) echoed per second, one direction. */
  payloadMBps: number;
  serverCpuPercent: number;
  /** The server's main (JavaScript) thread alone; the rest is its other threads (zlib runs on libuv's pool). */
  serverMainThreadCpuPercent: number;
  loadCpuPercent: number;
  hitMessageCap: boolean;
  unexpectedFrames: number;
  /** The measured window on CLOCK_MONOTONIC in microseconds (what `--profile` keeps samples from). */
  windowStartUs: number;
  windowEndUs: number;
  /** Payload bytes of one request frame on the wire (compressed, with --deflate). */
  requestWireBytes: number;
  /** Mean payload bytes of a reply frame on the wire over the whole run (compressed, with --deflate). */
  replyWireBytes: number;
}

export interface IdleResult {
  kind: 'idle';
  connections: number;
  rssBeforeKiB: number;
  rssAfterKiB: number;
  kibPerConnection: number;
  openMs: number;
  /** Server CPU time spent per handshake while the connections were opened. */
  serverCpuMicrosPerHandshake: number;
  loadCpuPercent: number;
  /** Connection attempts repeated after ECONNRESET, EADDRNOTAVAIL and the like. */
  connectRetries: number;
  /**
   * With --idle-message: after the reading above, every connection sends one message and gets its echo, then
   * settles again; the RSS then, the growth per connection from rssBeforeKiB, and the server CPU per message.
   */
  afterMessage?: { rssKiB: number; kibPerConnection: number; serverCpuMicrosPerMessage: number; ms: number };
}

export type LoadResult = EchoResult | IdleResult;

const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
const HANDSHAKE_TIMEOUT_MS = 15_000;

/** CLOCK_MONOTONIC in microseconds: the clock V8 stamps CPU profile samples with, the same in every process. */
const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

/** Errors worth another attempt: the kernel refused this one connection, not the server as a whole. */
const RETRIABLE_CODES = new Set(['ECONNRESET', 'EADDRNOTAVAIL', 'EAGAIN', 'ETIMEDOUT', 'EPIPE']);
const CONNECT_ATTEMPTS = 5;

/** Connection attempts repeated after a retriable error, over the whole process (reported in the results). */
let connectRetries = 0;

/** `open`, retried with backoff (100, 200, 400, 800 ms) on ECONNRESET, EADDRNOTAVAIL and the like. */
async function withRetry<T>(open: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await open();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (attempt >= CONNECT_ATTEMPTS || code === undefined || !RETRIABLE_CODES.has(code)) throw error;
      connectRetries++;
      await sleep(100 * 2 ** (attempt - 1));
    }
  }
}

/**
 * Opens `count` connections, `batchSize` at a time (a whole batch is in the server's accept queue at once, so
 * batches keep it under the SYN backlog), each retried on transient errors. On failure, closes what did open and
 * throws an error that says how far it got and what to check.
 */
async function openInBatches<T extends { socket: Socket }>(count: number, batchSize: number, open: () => Promise<T>): Promise<T[]> {
  const opened: T[] = [];
  try {
    for (let start = 0; start < count; start += batchSize) {
      const batch: Promise<T>[] = [];
      for (let i = start; i < Math.min(count, start + batchSize); i++) batch.push(withRetry(open));
      // allSettled so that a failure still lets us destroy the sockets that did open.
      const outcomes = await Promise.allSettled(batch);
      for (const outcome of outcomes) if (outcome.status === 'fulfilled') opened.push(outcome.value);
      const failed = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
      if (failed !== undefined) throw explainOpenFailure(failed.reason, opened.length, count);
    }
  } catch (error) {
    for (const { socket } of opened) socket.destroy();
    throw error;
  }
  return opened;
}

function openMany(count: number, batchSize: number, host: string, port: number, path: string, extensions?: string): Promise<OpenedSocket[]> {
  const request = buildHandshakeRequest(host, port, path, extensions);
  return openInBatches(count, batchSize, () => openWebSocket(host, port, request, HANDSHAKE_TIMEOUT_MS));
}

function explainOpenFailure(reason: unknown, opened: number, wanted: number): Error {
  const error = reason instanceof Error ? reason : new Error(String(reason));
  const code = (error as NodeJS.ErrnoException).code;
  const hint =
    code === 'EMFILE' || code === 'ENFILE'
      ? `this process ran out of file descriptors (ulimit -n is ${OPEN_FILES_LIMIT})`
      : code === 'EADDRNOTAVAIL'
        ? 'no free local port (see /proc/sys/net/ipv4/ip_local_port_range and sockets left in TIME_WAIT: ss -s)'
        : code !== undefined && RETRIABLE_CODES.has(code)
          ? `still failing after ${CONNECT_ATTEMPTS} attempts`
          : 'not retried';
  return new Error(`could not open ${wanted} WebSockets (${opened} open when one failed): ${error.message}; ${hint}`);
}

/** Read at start-up: once descriptors run out, /proc/self/limits cannot be opened any more. */
const OPEN_FILES_LIMIT = ((): string => {
  try {
    return /^Max open files\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
})();

/**
 * What an echo or idle run sends and how it checks replies: plain frames compared byte for byte, or (--deflate)
 * compressed frames built once, in a handshake that offered permessage-deflate, with replies that must be
 * compressed (RSV1) and inflate back to the message sent.
 */
interface MessagePlan {
  opcode: number;
  /** The messages, uncompressed; a connection sends them in turn (one message unless --deflate-variants). */
  messages: Buffer[];
  /** The masked frame each message is sent as (compressed with --deflate), built once. */
  frames: Buffer[];
  /** The Sec-WebSocket-Extensions offer, if any. */
  offer: string | undefined;
  /** Counts replies during a run from their headers. */
  counter(): FrameCounter;
  /** Checks a connection's handshake answer; returns the check for that connection's replies, in order. */
  accept(opened: OpenedSocket): ReplyCheck;
}

/** Checks one reply to messages[index]; returns a problem description, or undefined when it is right. */
type ReplyCheck = (reply: DecodedFrame, index: number) => string | undefined;

function messagePlan(payloadBytes: number, binary: boolean, deflate: boolean, variants = 1): MessagePlan {
  if (deflate) {
    // Realistic JSON text, each message compressed once from a fresh context: valid for every message on every
    // connection because we offered (and require the server to confirm) client_no_context_takeover.
    const messages = Array.from({ length: variants }, (_, variant) => sensorJson(payloadBytes, variant));
    return {
      opcode: OPCODE.text,
      messages,
      frames: messages.map((message) => buildMaskedFrame(compressMessage(message), OPCODE.text, FIXED_MASK, true)),
      offer: DEFLATE_OFFER,
      counter: () => new FrameCounter(OPCODE.text, 'any', true),
      accept: (opened) => {
        const answer = parseDeflateAnswer(opened.head);
        if (typeof answer === 'string') throw new Error(`permessage-deflate negotiation: ${answer}`);
        const inflater = new ReplyInflater(answer);
        return (reply, index) => {
          const message = messages[index]!;
          if (!reply.fin || reply.opcode !== OPCODE.text || !reply.rsv1) {
            return `expected a compressed (RSV1) FIN text frame, got fin=${reply.fin} rsv1=${reply.rsv1} opcode=${reply.opcode}`;
          }
          let inflated: Buffer;
          try {
            inflated = inflater.inflate(reply.payload);
          } catch (error) {
            return `the reply does not inflate (${answer.serverNoContextTakeover ? 'no ' : ''}context takeover): ${(error as Error).message}`;
          }
          return inflated.equals(message) ? undefined : `the reply inflates to ${inflated.length} bytes that differ from the ${message.length} sent`;
        };
      },
    };
  }
  const opcode = binary ? OPCODE.binary : OPCODE.text;
  // Text payloads are ASCII so they are valid UTF-8; binary payloads are arbitrary bytes.
  const message = Buffer.alloc(payloadBytes);
  for (let i = 0; i < message.length; i++) message[i] = binary ? (i * 31 + 7) & 0xff : 0x61 + (i % 26);
  return {
    opcode,
    messages: [message],
    frames: [buildMaskedFrame(message, opcode)],
    offer: undefined,
    counter: () => new FrameCounter(opcode, payloadBytes),
    accept: () => (reply) => {
      if (!reply.fin || reply.opcode !== opcode) return `expected a FIN frame with opcode ${opcode}, got fin=${reply.fin} opcode=${reply.opcode}`;
      return reply.payload.equals(message) ? undefined : `payload differs (${reply.payload.length} bytes back, ${message.length} sent)`;
    },
  };
}

/**
 * Sends plan.frames[first] and checks the reply (`check`: byte for byte, or inflated), then the next message,
 * `times` messages in all, one at a time, so a server that answers fast but wrong cannot score. Resolves with the
 * socket paused again and any bytes after the last reply.
 */
function verifyEcho(opened: OpenedSocket, plan: MessagePlan, check: ReplyCheck, first: number, times = 1): Promise<OpenedSocket> {
  const { socket } = opened;
  let left = times;
  let index = first % plan.frames.length;
  return new Promise((resolve, reject) => {
    let received = opened.leftover;
    const cleanUp = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
    const fail = (message: string): void => {
      cleanUp();
      reject(new Error(`echo check failed: ${message}`));
    };
    const onError = (error: Error): void => fail(error.message);
    const onClose = (): void => fail('connection closed before the reply');
    const timer = setTimeout(() => fail('no reply within 10 s'), 10_000);
    const checkReceived = (): void => {
      const decoded = decodeFrame(received);
      if (decoded === undefined) return;
      const problem = check(decoded, index);
      if (problem !== undefined) return fail(problem);
      received = received.subarray(decoded.frameBytes);
      if (--left > 0) {
        index = (index + 1) % plan.frames.length;
        socket.write(plan.frames[index]!);
        return checkReceived();
      }
      cleanUp();
      socket.pause();
      resolve({ ...opened, socket, leftover: received });
    };
    function onData(chunk: Buffer): void {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      checkReceived();
    }
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.resume();
    socket.write(plan.frames[index]!);
    checkReceived();
  });
}

/** accept() on every connection; on a bad answer every socket is destroyed and the run fails. */
function acceptAll(plan: MessagePlan, opened: OpenedSocket[]): ReplyCheck[] {
  try {
    return opened.map((socket) => plan.accept(socket));
  } catch (error) {
    for (const { socket } of opened) socket.destroy();
    throw error;
  }
}

interface EchoOptions {
  host: string;
  port: number;
  path: string;
  serverPid: number;
  connections: number;
  inflight: number;
  payloadBytes: number;
  binary: boolean;
  /** Negotiate permessage-deflate and send compressed JSON text (see messagePlan). */
  deflate: boolean;
  /** Different messages each connection sends in turn (--deflate). */
  variants: number;
  warmupMs: number;
  durationMs: number;
  maxMessages: number;
}

/** Pipelined echo: `inflight` frames per connection in flight; every reply received sends one more frame. */
async function runEcho(options: EchoOptions): Promise<EchoResult> {
  const plan = messagePlan(options.payloadBytes, options.binary, options.deflate, options.variants);
  const variants = plan.frames.length;
  const inflight = options.inflight;
  // Every message in turn, then the first `inflight` again, in one buffer: any k <= inflight messages from message
  // p on are one contiguous view, made once: writing them is one write of views[p][k].
  const ringFrames = Array.from({ length: variants + inflight }, (_, i) => plan.frames[i % variants]!);
  const ring = Buffer.concat(ringFrames);
  const offsets = [0];
  for (const frame of ringFrames) offsets.push(offsets[offsets.length - 1]! + frame.length);
  const views = Array.from({ length: variants }, (_, p) => Array.from({ length: inflight + 1 }, (_, k) => ring.subarray(offsets[p]!, offsets[p + k]!)));

  const opened = await openMany(options.connections, 200, options.host, options.port, options.path, plan.offer);
  const checks = acceptAll(plan, opened);
  // Connections start at different messages; compressed, each checks two in a row, so the second reply is
  // checked against the first (context takeover).
  const verified = options.deflate ? 2 : 1;
  let sockets: OpenedSocket[];
  try {
    sockets = await Promise.all(opened.map((socket, i) => verifyEcho(socket, plan, checks[i]!, i, verified)));
  } catch (error) {
    for (const { socket } of opened) socket.destroy();
    throw error;
  }
  const counters: FrameCounter[] = [];

  let received = 0;
  let sending = true;
  let finished = false;
  const mark = (): { at: number; atUs: number; received: number; serverCpu: number; serverMainCpu: number; loadCpu: NodeJS.CpuUsage } => ({
    at: performance.now(),
    atUs: monotonicUs(),
    received,
    serverCpu: readCpuSeconds(options.serverPid),
    serverMainCpu: readMainThreadCpuSeconds(options.serverPid),
    loadCpu: process.cpuUsage(),
  });
  let startMark = mark();
  let failure: Error | undefined;
  let warmupTimer: NodeJS.Timeout | undefined;
  let endTimer: NodeJS.Timeout | undefined;

  return new Promise<EchoResult>((resolve, reject) => {
    const finish = (): void => {
      if (finished) return;
      finished = true;
      sending = false;
      const endAt = performance.now();
      const endUs = monotonicUs();
      const loadCpu = process.cpuUsage(startMark.loadCpu);
      const serverCpu = readCpuSeconds(options.serverPid);
      const serverMainCpu = readMainThreadCpuSeconds(options.serverPid);
      clearTimeout(warmupTimer);
      clearTimeout(endTimer);
      for (const { socket } of sockets) socket.destroy();
      if (failure !== undefined) return reject(failure);
      const unexpectedFrames = counters.reduce((sum, counter) => sum + counter.unexpectedFrames, 0);
      if (options.deflate && unexpectedFrames > 0) {
        const last = counters.map((counter) => counter.lastUnexpected).find((text) => text !== '');
        return reject(new Error(`${unexpectedFrames} replies were not compressed FIN text frames (last: ${last})`));
      }
      const elapsedMs = endAt - startMark.at;
      const messages = received - startMark.received;
      const messagesPerSecond = (messages * 1000) / elapsedMs;
      resolve({
        kind: 'echo',
        messages,
        elapsedMs,
        messagesPerSecond,
        payloadMBps: (messagesPerSecond * options.payloadBytes) / 1e6,
        serverCpuPercent: ((serverCpu - startMark.serverCpu) * 1000 * 100) / elapsedMs,
        serverMainThreadCpuPercent: ((serverMainCpu - startMark.serverMainCpu) * 1000 * 100) / elapsedMs,
        loadCpuPercent: ((loadCpu.user + loadCpu.system) / 1000 / elapsedMs) * 100,
        hitMessageCap: received >= options.maxMessages,
        unexpectedFrames,
        windowStartUs: startMark.atUs,
        windowEndUs: endUs,
        requestWireBytes: plan.frames.reduce((sum, frame) => sum + decodeFrame(frame)!.payload.length, 0) / variants,
        replyWireBytes: received > 0 ? counters.reduce((sum, counter) => sum + counter.countedPayloadBytes, 0) / received : 0,
      });
    };

    for (const [index, { socket, leftover }] of sockets.entries()) {
      const counter = plan.counter();
      counters.push(counter);
      // The next message this connection sends.
      let next = (index + verified) % variants;
      const onData = (chunk: Buffer): void => {
        let completed = counter.feed(chunk);
        if (completed === 0) return;
        received += completed;
        if (sending) {
          while (completed > 0) {
            const k = Math.min(completed, inflight);
            socket.write(views[next]![k]!);
            next = (next + k) % variants;
            completed -= k;
          }
        }
        if (received >= options.maxMessages) finish();
      };
      socket.on('data', onData);
      socket.on('error', (error) => {
        failure ??= new Error(`socket error: ${error.message}`);
        finish();
      });
      socket.on('close', () => {
        if (!finished) {
          failure ??= new Error(`server closed a connection (last unexpected frame: ${counter.lastUnexpected || 'none'})`);
          finish();
        }
      });
      if (leftover.length > 0) onData(leftover);
      socket.resume();
      socket.write(views[next]![inflight]!);
      next = (next + inflight) % variants;
    }

    warmupTimer = setTimeout(() => {
      startMark = mark();
    }, options.warmupMs);
    endTimer = setTimeout(finish, options.warmupMs + options.durationMs);
  });
}

interface IdleOptions {
  host: string;
  port: number;
  path: string;
  serverPid: number;
  connections: number;
  batchSize: number;
  warmupConnections: number;
  settleMs: number;
  /** Negotiate permessage-deflate on every connection (the warm-up echoes a compressed message). */
  deflate: boolean;
  /** Bytes of the compressed JSON message (--deflate). */
  payloadBytes: number;
  variants: number;
  /** After the first reading, one message (and its echo) on every connection, then a second reading. */
  idleMessage: boolean;
}

/** Same warm-up for every server: open a few connections, echo one message on each, close them. */
async function warmUp(options: IdleOptions): Promise<void> {
  if (options.deflate) {
    const plan = messagePlan(options.payloadBytes, false, true, options.variants);
    const opened = await openMany(options.warmupConnections, options.batchSize, options.host, options.port, options.path, plan.offer);
    const checks = acceptAll(plan, opened);
    const sockets = await Promise.all(opened.map((socket, i) => verifyEcho(socket, plan, checks[i]!, i)));
    for (const { socket } of sockets) socket.end();
    return;
  }
  const frame = buildMaskedFrame(Buffer.from('warm-up message'), OPCODE.text);
  const sockets = await openMany(options.warmupConnections, options.batchSize, options.host, options.port, options.path);
  await Promise.all(
    sockets.map(
      ({ socket, leftover }) =>
        new Promise<void>((resolve, reject) => {
          const counter = new FrameCounter(OPCODE.text, 15);
          const onData = (chunk: Buffer): void => {
            if (counter.feed(chunk) > 0) {
              socket.off('data', onData);
              socket.end();
              resolve();
            }
          };
          socket.on('data', onData);
          socket.on('error', reject);
          if (leftover.length > 0) onData(leftover);
          socket.resume();
          socket.write(frame);
        }),
    ),
  );
}

/** Opens many idle connections and reports the growth of the server's resident memory per connection. */
async function runIdle(options: IdleOptions): Promise<IdleResult> {
  const plan = messagePlan(options.payloadBytes, false, options.deflate, options.variants);
  await warmUp(options);
  await sleep(options.settleMs);
  const rssBeforeKiB = readRssKiB(options.serverPid);
  const cpuBefore = readCpuSeconds(options.serverPid);
  const loadCpuBefore = process.cpuUsage();
  const openStart = performance.now();
  let sockets = await openMany(options.connections, options.batchSize, options.host, options.port, options.path, plan.offer);
  const openMs = performance.now() - openStart;
  const serverCpuSeconds = readCpuSeconds(options.serverPid) - cpuBefore;
  const loadCpu = process.cpuUsage(loadCpuBefore);
  // With --deflate, every answer is checked here: a connection that did not negotiate would not count.
  const checks = acceptAll(plan, sockets);
  let closedEarly = 0;
  const watch = (): void => {
    for (const { socket } of sockets) {
      socket.on('close', () => closedEarly++);
      socket.on('error', () => {});
    }
  };
  const unwatch = (): void => {
    for (const { socket } of sockets) socket.removeAllListeners('close');
  };
  watch();
  await sleep(options.settleMs);
  const rssAfterKiB = readRssKiB(options.serverPid);
  let afterMessage: IdleResult['afterMessage'];
  if (options.idleMessage && closedEarly === 0) {
    // One message and its echo on every connection (compressed both ways with --deflate, so each one's zlib
    // contexts exist where the server keeps them), all at once, then idle again.
    unwatch();
    const cpuBeforeMessages = readCpuSeconds(options.serverPid);
    const messagesStart = performance.now();
    try {
      sockets = await Promise.all(sockets.map((socket, i) => verifyEcho(socket, plan, checks[i]!, i)));
    } catch (error) {
      for (const { socket } of sockets) socket.destroy();
      throw error;
    }
    const ms = performance.now() - messagesStart;
    const serverCpuMicrosPerMessage = ((readCpuSeconds(options.serverPid) - cpuBeforeMessages) * 1e6) / options.connections;
    watch();
    await sleep(options.settleMs);
    const rssKiB = readRssKiB(options.serverPid);
    afterMessage = { rssKiB, kibPerConnection: (rssKiB - rssBeforeKiB) / options.connections, serverCpuMicrosPerMessage, ms };
  }
  unwatch();
  for (const { socket } of sockets) socket.destroy();
  if (closedEarly > 0) throw new Error(`${closedEarly} idle connections were closed by the server`);
  return {
    kind: 'idle',
    connections: options.connections,
    rssBeforeKiB,
    rssAfterKiB,
    kibPerConnection: (rssAfterKiB - rssBeforeKiB) / options.connections,
    openMs,
    serverCpuMicrosPerHandshake: (serverCpuSeconds * 1e6) / options.connections,
    loadCpuPercent: ((loadCpu.user + loadCpu.system) / 1000 / openMs) * 100,
    connectRetries,
    ...(afterMessage !== undefined && { afterMessage }),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Broadcast: several subscriber processes and one publisher process, driven by run.ts through stdin commands
// (one per line) and answering with JSON lines on stdout. Each process measures its own counters and clock, so
// run.ts can add up rates from processes that answer a command at slightly different moments.

/** Every JSON line a broadcast worker prints. `wallMs` is a high-resolution wall clock (ms since the epoch). */
export type WorkerEvent =
  | { event: 'ready'; connections: number; openMs: number; connectRetries: number; cpuMicros: number }
  | { event: 'mark'; wallMs: number; cpuMicros: number; received: number; verified: number; unexpectedFrames: number; lastUnexpected: string }
  | { event: 'published'; wallMs: number; cpuMicros: number; published: number; echoed: number; hitMessageCap: boolean }
  | { event: 'stopped'; published: number; echoed: number }
  | { event: 'error'; message: string };

function emit(event: WorkerEvent): void {
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
    let head: Buffer | undefined = Buffer.alloc(0);
    const socket = connect({
      host,
      port,
      noDelay: true,
      onread: {
        buffer: SHARED_READ_BUFFER,
        callback: (bytes: number, buffer: Uint8Array): boolean => {
          const chunk = buffer as Buffer;
          if (head === undefined) {
            const outcome = counter.feed(chunk, 0, bytes);
            if (typeof outcome === 'string') onProblem(outcome);
            return true;
          }
          head = Buffer.concat([head, chunk.subarray(0, bytes)]);
          const end = head.indexOf(HEAD_END);
          if (end === -1) {
            if (head.length > 16_384) fail(new Error('response head larger than 16 KiB'));
            return true;
          }
          const problem = checkHandshakeResponse(head.subarray(0, end).toString('latin1'));
          if (problem !== undefined) {
            fail(new Error(`handshake failed: ${problem}`));
            return true;
          }
          const leftover = head.subarray(end + 4);
          head = undefined;
          cleanUp();
          socket.on('error', (error) => {
            if (!subscribersExiting) failWorker(`subscriber socket error: ${error.message}`);
          });
          socket.on('close', () => {
            if (!subscribersExiting) failWorker(`the server closed a subscriber connection (last unexpected frame: ${counter.lastUnexpected || 'none'})`);
          });
          resolve({ socket, counter });
          if (leftover.length > 0) {
            const outcome = counter.feed(leftover);
            if (typeof outcome === 'string') onProblem(outcome);
          }
          return true;
        },
      },
    });
    const timer = setTimeout(() => fail(new Error(`handshake timed out after ${HANDSHAKE_TIMEOUT_MS} ms`)), HANDSHAKE_TIMEOUT_MS);
    function cleanUp(): void {
      clearTimeout(timer);
      socket.off('error', fail);
      socket.off('close', onClose);
    }
    function fail(error: Error): void {
      cleanUp();
      socket.destroy();
      reject(error);
    }
    function onClose(): void {
      fail(new Error('connection closed during the handshake'));
    }
    socket.on('error', fail);
    socket.on('close', onClose);
    socket.once('connect', () => socket.write(request));
  });
}

interface SubscriberOptions {
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
async function runSubscribers(options: SubscriberOptions): Promise<void> {
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
  emit({ event: 'ready', connections: subscribers.length, openMs, connectRetries, cpuMicros: cpuMicros() });
}

interface PublisherOptions {
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
async function runPublisher(options: PublisherOptions): Promise<void> {
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
  emit({ event: 'ready', connections: connections.length, openMs, connectRetries, cpuMicros: cpuMicros() });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scenario: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string' },
      path: { type: 'string', default: '/echo' },
      'server-pid': { type: 'string' },
      connections: { type: 'string' },
      inflight: { type: 'string', default: '1' },
      'payload-bytes': { type: 'string', default: '64' },
      binary: { type: 'boolean', default: false },
      'warmup-ms': { type: 'string', default: '1000' },
      'duration-ms': { type: 'string', default: '5000' },
      'max-messages': { type: 'string', default: '100000000' },
      'batch-size': { type: 'string', default: '200' },
      'warmup-connections': { type: 'string', default: '50' },
      'settle-ms': { type: 'string', default: '1000' },
      publishers: { type: 'string', default: '1' },
      deflate: { type: 'boolean', default: false },
      'deflate-variants': { type: 'string', default: '64' },
      'idle-message': { type: 'boolean', default: false },
    },
  });
  const integer = (name: keyof typeof values): number => {
    const raw = values[name];
    const parsed = Number(raw);
    if (typeof raw !== 'string' || !Number.isInteger(parsed) || parsed < 0) throw new RangeError(`--${name} must be a non-negative integer`);
    return parsed;
  };
  const common = (): { host: string; port: number; path: string; serverPid: number } =>
    ({ host: values.host, port: integer('port'), path: values.path, serverPid: integer('server-pid') });
  let result: LoadResult;
  if (values.scenario === 'echo') {
    result = await runEcho({
      ...common(),
      connections: integer('connections'),
      inflight: Math.max(1, integer('inflight')),
      payloadBytes: integer('payload-bytes'),
      binary: values.binary,
      deflate: values.deflate,
      variants: Math.max(1, integer('deflate-variants')),
      warmupMs: integer('warmup-ms'),
      durationMs: integer('duration-ms'),
      maxMessages: integer('max-messages'),
    });
  } else if (values.scenario === 'idle') {
    result = await runIdle({
      ...common(),
      connections: integer('connections'),
      batchSize: Math.max(1, integer('batch-size')),
      warmupConnections: integer('warmup-connections'),
      settleMs: integer('settle-ms'),
      deflate: values.deflate,
      variants: Math.max(1, integer('deflate-variants')),
      payloadBytes: integer('payload-bytes'),
      idleMessage: values['idle-message'],
    });
  } else if (values.scenario === 'subscribe') {
    // Long-running: answers commands on stdin until `exit` (see runSubscribers); no result line.
    return runSubscribers({
      host: values.host,
      port: integer('port'),
      path: values.path,
      connections: integer('connections'),
      batchSize: Math.max(1, integer('batch-size')),
      payloadBytes: integer('payload-bytes'),
    });
  } else if (values.scenario === 'publish') {
    return runPublisher({
      host: values.host,
      port: integer('port'),
      path: values.path,
      payloadBytes: integer('payload-bytes'),
      inflight: Math.max(1, integer('inflight')),
      maxMessages: integer('max-messages'),
      publishers: Math.max(1, integer('publishers')),
    });
  } else {
    throw new RangeError('--scenario must be echo, idle, subscribe or publish');
  }
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
}

main().catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  // Broadcast workers talk JSON lines to run.ts; the echo and idle runs are read from stderr.
  if (process.argv.includes('subscribe') || process.argv.includes('publish')) emit({ event: 'error', message });
  process.stderr.write(`load: ${message}\n`);
  process.exit(1);
});
