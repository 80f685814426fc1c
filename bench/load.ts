// The load generator: runs one scenario against one server and prints one JSON line with the result. Built to
// be cheap so it is not the bottleneck: raw net sockets, pre-built masked frames written as one buffer per
// received chunk, and replies counted from frame headers only. Server CPU and RSS are read from /proc/PID.
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import {
  OPCODE,
  FrameCounter,
  buildHandshakeRequest,
  buildMaskedFrame,
  checkHandshakeResponse,
  decodeFrame,
} from './frames.js';
import { readCpuSeconds, readRssKiB } from './proc-stats.js';

export interface EchoResult {
  kind: 'echo';
  messages: number;
  elapsedMs: number;
  messagesPerSecond: number;
  /** Payload megabytes (10^6 bytes) echoed per second, one direction. */
  payloadMBps: number;
  serverCpuPercent: number;
  loadCpuPercent: number;
  hitMessageCap: boolean;
  unexpectedFrames: number;
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
}

export type LoadResult = EchoResult | IdleResult;

const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
const HANDSHAKE_TIMEOUT_MS = 15_000;

interface OpenedSocket {
  socket: Socket;
  /** Bytes that arrived after the response head. */
  leftover: Buffer;
}

/** Connects and upgrades; resolves with the socket paused, so no frame is lost before the caller listens. */
function openWebSocket(host: string, port: number, path: string, request: Buffer): Promise<OpenedSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    socket.setNoDelay(true);
    let head: Buffer | undefined;
    const timer = setTimeout(() => fail(new Error(`handshake timed out after ${HANDSHAKE_TIMEOUT_MS} ms`)), HANDSHAKE_TIMEOUT_MS);
    const cleanUp = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', fail);
      socket.off('close', onClose);
    };
    function fail(error: Error): void {
      cleanUp();
      socket.destroy();
      reject(error);
    }
    function onClose(): void {
      fail(new Error('connection closed during the handshake'));
    }
    function onData(chunk: Buffer): void {
      head = head === undefined ? chunk : Buffer.concat([head, chunk]);
      const end = head.indexOf(HEAD_END);
      if (end === -1) {
        if (head.length > 16_384) fail(new Error('response head larger than 16 KiB'));
        return;
      }
      const problem = checkHandshakeResponse(head.subarray(0, end).toString('latin1'));
      if (problem !== undefined) return fail(new Error(`handshake failed: ${problem}`));
      cleanUp();
      socket.pause();
      resolve({ socket, leftover: head.subarray(end + 4) });
    }
    socket.on('data', onData);
    socket.on('error', fail);
    socket.on('close', onClose);
    socket.once('connect', () => socket.write(request));
  });
}

async function openMany(
  count: number,
  batchSize: number,
  host: string,
  port: number,
  path: string,
): Promise<OpenedSocket[]> {
  const request = buildHandshakeRequest(host, port, path);
  const opened: OpenedSocket[] = [];
  try {
    for (let start = 0; start < count; start += batchSize) {
      const batch: Promise<OpenedSocket>[] = [];
      for (let i = start; i < Math.min(count, start + batchSize); i++) batch.push(openWebSocket(host, port, path, request));
      // allSettled so that a failure still lets us destroy the sockets that did open.
      for (const outcome of await Promise.allSettled(batch)) {
        if (outcome.status === 'rejected') throw outcome.reason;
        opened.push(outcome.value);
      }
    }
  } catch (error) {
    for (const { socket } of opened) socket.destroy();
    throw error;
  }
  return opened;
}

/**
 * Sends one frame and checks the reply byte for byte (type and payload), so a server that answers fast but
 * wrong cannot score. Resolves with the socket paused again and any bytes after the reply.
 */
function verifyEcho(opened: OpenedSocket, frame: Buffer, payload: Buffer, opcode: number): Promise<OpenedSocket> {
  const { socket } = opened;
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
    const check = (): void => {
      const decoded = decodeFrame(received);
      if (decoded === undefined) return;
      if (!decoded.fin || decoded.opcode !== opcode) return fail(`expected a FIN frame with opcode ${opcode}, got fin=${decoded.fin} opcode=${decoded.opcode}`);
      if (!decoded.payload.equals(payload)) return fail(`payload differs (${decoded.payload.length} bytes back, ${payload.length} sent)`);
      cleanUp();
      socket.pause();
      resolve({ socket, leftover: received.subarray(decoded.frameBytes) });
    };
    function onData(chunk: Buffer): void {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      check();
    }
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.resume();
    socket.write(frame);
    check();
  });
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
  warmupMs: number;
  durationMs: number;
  maxMessages: number;
}

/** Pipelined echo: `inflight` frames per connection in flight; every reply received sends one more frame. */
async function runEcho(options: EchoOptions): Promise<EchoResult> {
  const opcode = options.binary ? OPCODE.binary : OPCODE.text;
  // Text payloads are ASCII so they are valid UTF-8; binary payloads are arbitrary bytes.
  const payload = Buffer.alloc(options.payloadBytes);
  for (let i = 0; i < payload.length; i++) payload[i] = options.binary ? (i * 31 + 7) & 0xff : 0x61 + (i % 26);
  const frame = buildMaskedFrame(payload, opcode);
  const frameBytes = frame.length;
  const inflight = options.inflight;
  const batch = Buffer.concat(Array.from({ length: inflight }, () => frame));
  // Views for every batch size, made once: writing k frames is one write of batchViews[k].
  const batchViews = Array.from({ length: inflight + 1 }, (_, k) => batch.subarray(0, k * frameBytes));

  const opened = await openMany(options.connections, 200, options.host, options.port, options.path);
  let sockets: OpenedSocket[];
  try {
    sockets = await Promise.all(opened.map((socket) => verifyEcho(socket, frame, payload, opcode)));
  } catch (error) {
    for (const { socket } of opened) socket.destroy();
    throw error;
  }
  const counters: FrameCounter[] = [];

  let received = 0;
  let sending = true;
  let finished = false;
  let startMark = { at: performance.now(), received: 0, serverCpu: readCpuSeconds(options.serverPid), loadCpu: process.cpuUsage() };
  let failure: Error | undefined;
  let warmupTimer: NodeJS.Timeout | undefined;
  let endTimer: NodeJS.Timeout | undefined;

  return new Promise<EchoResult>((resolve, reject) => {
    const finish = (): void => {
      if (finished) return;
      finished = true;
      sending = false;
      const endAt = performance.now();
      const loadCpu = process.cpuUsage(startMark.loadCpu);
      const serverCpu = readCpuSeconds(options.serverPid);
      clearTimeout(warmupTimer);
      clearTimeout(endTimer);
      for (const { socket } of sockets) socket.destroy();
      if (failure !== undefined) return reject(failure);
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
        loadCpuPercent: ((loadCpu.user + loadCpu.system) / 1000 / elapsedMs) * 100,
        hitMessageCap: received >= options.maxMessages,
        unexpectedFrames: counters.reduce((sum, counter) => sum + counter.unexpectedFrames, 0),
      });
    };

    for (const { socket, leftover } of sockets) {
      const counter = new FrameCounter(opcode, options.payloadBytes);
      counters.push(counter);
      const onData = (chunk: Buffer): void => {
        let completed = counter.feed(chunk);
        if (completed === 0) return;
        received += completed;
        if (sending) {
          while (completed > inflight) {
            socket.write(batch);
            completed -= inflight;
          }
          socket.write(batchViews[completed]!);
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
      socket.write(batch);
    }

    warmupTimer = setTimeout(() => {
      startMark = { at: performance.now(), received, serverCpu: readCpuSeconds(options.serverPid), loadCpu: process.cpuUsage() };
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
}

/** Same warm-up for every server: open a few connections, echo one message on each, close them. */
async function warmUp(options: IdleOptions): Promise<void> {
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
  await warmUp(options);
  await sleep(options.settleMs);
  const rssBeforeKiB = readRssKiB(options.serverPid);
  const cpuBefore = readCpuSeconds(options.serverPid);
  const loadCpuBefore = process.cpuUsage();
  const openStart = performance.now();
  const sockets = await openMany(options.connections, options.batchSize, options.host, options.port, options.path);
  const openMs = performance.now() - openStart;
  const serverCpuSeconds = readCpuSeconds(options.serverPid) - cpuBefore;
  const loadCpu = process.cpuUsage(loadCpuBefore);
  let closedEarly = 0;
  for (const { socket } of sockets) {
    socket.on('close', () => closedEarly++);
    socket.on('error', () => {});
  }
  await sleep(options.settleMs);
  const rssAfterKiB = readRssKiB(options.serverPid);
  for (const { socket } of sockets) socket.removeAllListeners('close');
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
  };
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
    },
  });
  const integer = (name: keyof typeof values): number => {
    const raw = values[name];
    const parsed = Number(raw);
    if (typeof raw !== 'string' || !Number.isInteger(parsed) || parsed < 0) throw new RangeError(`--${name} must be a non-negative integer`);
    return parsed;
  };
  const common = { host: values.host, port: integer('port'), path: values.path, serverPid: integer('server-pid') };
  let result: LoadResult;
  if (values.scenario === 'echo') {
    result = await runEcho({
      ...common,
      connections: integer('connections'),
      inflight: Math.max(1, integer('inflight')),
      payloadBytes: integer('payload-bytes'),
      binary: values.binary,
      warmupMs: integer('warmup-ms'),
      durationMs: integer('duration-ms'),
      maxMessages: integer('max-messages'),
    });
  } else if (values.scenario === 'idle') {
    result = await runIdle({
      ...common,
      connections: integer('connections'),
      batchSize: Math.max(1, integer('batch-size')),
      warmupConnections: integer('warmup-connections'),
      settleMs: integer('settle-ms'),
    });
  } else {
    throw new RangeError('--scenario must be echo or idle');
  }
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
}

main().catch((error: unknown) => {
  process.stderr.write(`load: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
