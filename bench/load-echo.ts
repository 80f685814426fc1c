// The load generator's echo scenario, built to be cheap so it is not the bottleneck: pre-built masked frames written
// as one buffer per received chunk, replies counted from frame headers only, each reply sending the next message;
// the server's CPU (all threads, and its main thread) is read from /proc/PID over the measured window.
import { performance } from 'node:perf_hooks';
import { decodeFrame, type FrameCounter, type OpenedSocket } from './frames.js';
import { readCpuSeconds, readMainThreadCpuSeconds } from './proc-stats.js';
import { openMany } from './load-connect.js';
import { acceptAll, messagePlan, verifyEcho } from './load-messages.js';

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

/** CLOCK_MONOTONIC in microseconds: the clock V8 stamps CPU profile samples with, the same in every process. */
const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

export interface EchoOptions {
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
export async function runEcho(options: EchoOptions): Promise<EchoResult> {
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
