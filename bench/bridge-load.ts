// The load generator of the bridge benchmarks (bench/bridges.ts), its own process: one run against one server, then
// one JSON line on stdout. exec-*: line messages through `cat` (K in flight on one connection, or one echo per new
// connection); tcp-*: 64 KiB binary messages through to a TCP target (echoed, counted, or sent by it).
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import {
  CountReader, PayloadCounter, SOURCE_CHUNK, STEP_TIMEOUT_MS, closeWebSocket, handshakeRequest, keystream, linePayload, openWebSocket, readFrames, type Opened,
} from './bridge-client.js';
import { FrameCounter, OPCODE, buildMaskedFrame } from './frames.js';
import { readTreeCpuSeconds } from './proc-tree.js';

export type BridgeScenario = 'exec-messages' | 'exec-roundtrip' | 'exec-connections' | 'tcp-bulk' | 'tcp-upload' | 'tcp-download';
const SCENARIOS: readonly BridgeScenario[] = ['exec-messages', 'exec-roundtrip', 'exec-connections', 'tcp-bulk', 'tcp-upload', 'tcp-download'];

export interface BridgeLoadResult {
  scenario: BridgeScenario;
  /** In the window: echoed messages (exec-messages, exec-roundtrip), completed connections (exec-connections), or payload bytes (tcp-*). */
  count: number;
  elapsedMs: number;
  /** count per second of the measured window. */
  ratePerSecond: number;
  /** CPU of the server and every process under it (cat, websockify's forked workers), in % of one core. */
  serverCpuPercent: number;
  loadCpuPercent: number;
  /** CPU of the TCP target (tcp-*, when its pid was given), in % of one core; undefined otherwise. */
  targetCpuPercent?: number;
  /** The cap on messages, connections or bytes was reached before the window ended (the window was cut short). */
  hitCap: boolean;
  /** The subprotocol the server selected (tcp-*), '' for none. */
  protocol: string;
}

export type BridgeLoadOutput = { ok: true; result: BridgeLoadResult } | { ok: false; error: string };

/** exec-messages: distinct messages sent at once and checked byte for byte, in order, before the run. */
const VERIFY_MESSAGES = 16;

interface Options {
  scenario: BridgeScenario;
  host: string;
  port: number;
  path: string;
  serverPid: number;
  /** The TCP target's process (tcp-*), whose CPU is measured over the same window; undefined: not measured. */
  targetPid: number | undefined;
  warmupMs: number;
  durationMs: number;
  inflight: number;
  concurrency: number;
  messageBytes: number;
  chunkBytes: number;
  windowBytes: number;
  maxCount: number;
}

/** One upgraded connection to the server under test (the bridges select `binary` when it is offered). */
function upgrade(options: Options, protocol: string | undefined): Promise<Opened> {
  return openWebSocket(options.host, options.port, handshakeRequest(options.host, options.port, options.path, protocol));
}

// ---------------------------------------------------------------------------------------------------------------
// Measurement window.

const cpuSecondsOfLoad = (): number => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
};

interface Mark {
  atMs: number;
  count: number;
  serverCpuSeconds: number;
  loadCpuSeconds: number;
  targetCpuSeconds: number;
}

function mark(options: Options, count: number): Mark {
  return {
    atMs: performance.now(), count, serverCpuSeconds: readTreeCpuSeconds(options.serverPid), loadCpuSeconds: cpuSecondsOfLoad(),
    targetCpuSeconds: options.targetPid === undefined ? 0 : readTreeCpuSeconds(options.targetPid),
  };
}

/** Warm-up, then the measured window, which ends early once `capped()` says the count cap was reached. */
async function measure(options: Options, count: () => number, capped: () => boolean): Promise<{ start: Mark; end: Mark; hitCap: boolean }> {
  const warmupEnd = performance.now() + options.warmupMs;
  while (performance.now() < warmupEnd && !capped()) await sleep(Math.min(50, warmupEnd - performance.now()));
  const start = mark(options, count());
  const windowEnd = start.atMs + options.durationMs;
  while (performance.now() < windowEnd && !capped()) await sleep(Math.min(20, Math.max(1, windowEnd - performance.now())));
  return { start, end: mark(options, count()), hitCap: capped() };
}

function resultOf(options: Options, window: { start: Mark; end: Mark; hitCap: boolean }, protocol: string): BridgeLoadResult {
  const { start, end } = window;
  const elapsedMs = end.atMs - start.atMs;
  const seconds = elapsedMs / 1000;
  return {
    scenario: options.scenario,
    count: end.count - start.count,
    elapsedMs,
    ratePerSecond: (end.count - start.count) / seconds,
    serverCpuPercent: ((end.serverCpuSeconds - start.serverCpuSeconds) / seconds) * 100,
    loadCpuPercent: ((end.loadCpuSeconds - start.loadCpuSeconds) / seconds) * 100,
    ...(options.targetPid !== undefined && { targetCpuPercent: ((end.targetCpuSeconds - start.targetCpuSeconds) / seconds) * 100 }),
    hitCap: window.hitCap,
    protocol,
  };
}

/** Waits (bounded) until `done()`; false if it timed out. */
async function settle(done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    if (performance.now() > deadline) return false;
    await sleep(5);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------------------------
// Scenarios.

/** One connection, K line messages in flight: each echoed line sends the next message. */
async function runExecMessages(options: Options): Promise<BridgeLoadResult> {
  const { socket, leftover } = await upgrade(options, undefined);
  socket.on('error', () => {}); // surfaces as 'close' below
  // Before counting: distinct messages sent at once must come back as the same text, byte for byte, in order.
  const samples = Array.from({ length: VERIFY_MESSAGES }, (_, index) => linePayload(options.messageBytes, index));
  socket.write(Buffer.concat(samples.map((payload) => buildMaskedFrame(payload, OPCODE.text))));
  const { frames, rest } = await readFrames(socket, leftover, samples.length, 'checking the first echoes');
  frames.forEach((frame, index) => {
    if (!frame.fin || frame.opcode !== OPCODE.text || !frame.payload.equals(samples[index]!)) {
      throw new Error(`echo ${index} differs: opcode ${frame.opcode}, ${frame.payload.length} B "${frame.payload.subarray(0, 40).toString('latin1')}"`);
    }
  });

  const counter = new FrameCounter(OPCODE.text, options.messageBytes);
  const frame = buildMaskedFrame(linePayload(options.messageBytes, VERIFY_MESSAGES), OPCODE.text);
  const batch = Buffer.concat(Array.from({ length: options.inflight }, () => frame));
  let sent = 0;
  let replies = 0;
  let sending = true;
  let closedEarly = false;
  const send = (wanted: number): void => {
    const count = sending ? Math.min(wanted, options.maxCount - sent) : 0;
    if (count <= 0) return;
    socket.write(batch.subarray(0, count * frame.length));
    sent += count;
  };
  socket.on('data', (chunk: Buffer) => {
    const completed = counter.feed(chunk);
    if (completed === 0) return;
    replies += completed;
    send(completed);
  });
  socket.once('close', () => { closedEarly = true; });
  if (rest.length > 0) replies += counter.feed(rest);
  send(options.inflight);
  socket.resume();
  const window = await measure(options, () => replies, () => sent >= options.maxCount || closedEarly);
  sending = false;
  if (closedEarly) throw new Error(`the server closed the connection after ${replies} echoes`);
  if (!(await settle(() => replies >= sent || closedEarly, STEP_TIMEOUT_MS))) throw new Error(`${sent - replies} messages never came back`);
  if (counter.unexpectedFrames > 0) throw new Error(`${counter.unexpectedFrames} unexpected frames (last: ${counter.lastUnexpected})`);
  socket.removeAllListeners('data');
  await closeWebSocket(socket);
  return resultOf(options, window, '');
}

/** C at a time: connect, upgrade, one message and its echo (checked), closing handshake; then the next. */
async function runExecConnections(options: Options): Promise<BridgeLoadResult> {
  const request = handshakeRequest(options.host, options.port, options.path, undefined);
  let started = 0;
  let completed = 0;
  let stopping = false;
  const oneConnection = async (index: number): Promise<void> => {
    const { socket, leftover } = await openWebSocket(options.host, options.port, request);
    socket.on('error', () => {});
    try {
      const payload = linePayload(options.messageBytes, index);
      socket.write(buildMaskedFrame(payload, OPCODE.text));
      const { frames } = await readFrames(socket, leftover, 1, `connection ${index}`);
      const reply = frames[0]!;
      if (!reply.fin || reply.opcode !== OPCODE.text || !reply.payload.equals(payload)) {
        throw new Error(`connection ${index}: echo differs (opcode ${reply.opcode}, "${reply.payload.subarray(0, 40).toString('latin1')}")`);
      }
      await closeWebSocket(socket);
    } finally {
      socket.destroy();
    }
  };
  const worker = async (): Promise<void> => {
    while (!stopping && started < options.maxCount) {
      await oneConnection(started++);
      completed++;
    }
  };
  const workers = Array.from({ length: options.concurrency }, () => worker().catch((error: unknown) => {
    stopping = true;
    throw error;
  }));
  const failed = Promise.all(workers).then(() => undefined, (error: unknown) => error as Error);
  let failure: Error | undefined;
  void failed.then((error) => { failure = error; });
  const window = await measure(options, () => completed, () => started >= options.maxCount || failure !== undefined);
  stopping = true;
  const error = await failed;
  if (error !== undefined) throw error;
  return resultOf(options, window, '');
}

/** One connection: 64 KiB binary messages, at most `windowBytes` sent and not yet echoed back through the target. */
async function runTcpBulk(options: Options): Promise<BridgeLoadResult> {
  const { socket, leftover, protocol } = await upgrade(options, 'binary');
  socket.on('error', () => {});
  const counter = new PayloadCounter();
  let received = 0;
  let sent = 0;
  let closedEarly = false;
  socket.once('close', () => { closedEarly = true; });
  // Before counting: one message of pseudo-random bytes must come back byte for byte (in however many frames).
  const sample = keystream(1, options.chunkBytes);
  counter.captureBytes = sample.length;
  const onSample = (chunk: Buffer): void => { received += counter.feed(chunk); };
  socket.on('data', onSample);
  socket.write(buildMaskedFrame(sample, OPCODE.binary));
  sent += sample.length;
  onSample(leftover);
  socket.resume();
  if (!(await settle(() => received >= sample.length || closedEarly, STEP_TIMEOUT_MS))) throw new Error('the first message did not come back');
  if (closedEarly) throw new Error('the server closed the connection before the first echo');
  const echoed = Buffer.concat(counter.captured);
  if (!echoed.equals(sample)) throw new Error(`the first ${sample.length} bytes came back different`);
  socket.off('data', onSample);

  const frame = buildMaskedFrame(keystream(2, options.chunkBytes), OPCODE.binary);
  let sending = true;
  const pump = (): void => {
    while (sending && sent - received + options.chunkBytes <= options.windowBytes && sent + options.chunkBytes <= options.maxCount) {
      socket.write(frame);
      sent += options.chunkBytes;
    }
  };
  socket.on('data', (chunk: Buffer) => {
    received += counter.feed(chunk);
    pump();
  });
  pump();
  const window = await measure(options, () => received, () => sent + options.chunkBytes > options.maxCount || closedEarly);
  sending = false;
  if (closedEarly) throw new Error(`the server closed the connection after ${received} bytes`);
  // Nothing lost or added: every byte sent comes back, then nothing more.
  if (!(await settle(() => received >= sent || closedEarly, STEP_TIMEOUT_MS))) throw new Error(`${sent - received} bytes never came back`);
  if (received !== sent) throw new Error(`received ${received} bytes for ${sent} sent`);
  if (counter.unexpectedFrames > 0) throw new Error(`${counter.unexpectedFrames} unexpected frames (last: ${counter.lastUnexpected})`);
  socket.removeAllListeners('data');
  await closeWebSocket(socket);
  return resultOf(options, window, protocol);
}

/** One connection: 64 KiB binary messages into a TCP sink, at most `windowBytes` not yet counted by the sink. */
async function runTcpUpload(options: Options): Promise<BridgeLoadResult> {
  const { socket, leftover, protocol } = await upgrade(options, 'binary');
  socket.on('error', () => {});
  const counter = new PayloadCounter();
  const counts = new CountReader();
  counter.onBytes = (bytes) => counts.push(bytes);
  let sent = 0;
  let closedEarly = false;
  let sending = true;
  socket.once('close', () => { closedEarly = true; });
  const frame = buildMaskedFrame(keystream(2, options.chunkBytes), OPCODE.binary);
  const pump = (): void => {
    while (sending && sent - counts.latest + options.chunkBytes <= options.windowBytes && sent + options.chunkBytes <= options.maxCount) {
      socket.write(frame);
      sent += options.chunkBytes;
    }
  };
  socket.on('data', (chunk: Buffer) => {
    counter.feed(chunk);
    pump();
  });
  counter.feed(leftover);
  pump();
  socket.resume();
  const window = await measure(options, () => counts.latest, () => sent + options.chunkBytes > options.maxCount || closedEarly);
  sending = false;
  if (closedEarly) throw new Error(`the server closed the connection after ${counts.latest} bytes`);
  if (!(await settle(() => counts.latest >= sent || closedEarly, STEP_TIMEOUT_MS))) throw new Error(`${sent - counts.latest} bytes never reached the target`);
  if (counts.latest !== sent) throw new Error(`the target counted ${counts.latest} bytes for ${sent} sent`);
  if (counter.unexpectedFrames > 0) throw new Error(`${counter.unexpectedFrames} unexpected frames (last: ${counter.lastUnexpected})`);
  socket.removeAllListeners('data');
  await closeWebSocket(socket);
  return resultOf(options, window, protocol);
}

/** One connection: the TCP source sends as far as our credit (bytes received + `windowBytes`) allows. */
async function runTcpDownload(options: Options): Promise<BridgeLoadResult> {
  const { socket, leftover, protocol } = await upgrade(options, 'binary');
  socket.on('error', () => {});
  const counter = new PayloadCounter();
  counter.captureBytes = SOURCE_CHUNK.length;
  let received = 0;
  let credit = 0;
  let granting = true;
  let closedEarly = false;
  socket.once('close', () => { closedEarly = true; });
  const creditPayload = Buffer.alloc(8);
  // A new credit once a quarter of the window has arrived: small messages, few of them.
  const grant = (): void => {
    if (!granting || received + options.windowBytes - credit < options.windowBytes / 4) return;
    credit = Math.min(received + options.windowBytes, options.maxCount);
    creditPayload.writeBigUInt64BE(BigInt(credit));
    socket.write(buildMaskedFrame(creditPayload, OPCODE.binary));
  };
  socket.on('data', (chunk: Buffer) => {
    received += counter.feed(chunk);
    grant();
  });
  received += counter.feed(leftover);
  grant();
  socket.resume();
  const window = await measure(options, () => received, () => credit >= options.maxCount || closedEarly);
  granting = false;
  if (closedEarly) throw new Error(`the server closed the connection after ${received} bytes`);
  if (!(await settle(() => received >= credit || closedEarly, STEP_TIMEOUT_MS))) throw new Error(`${credit - received} bytes never came`);
  if (received !== credit) throw new Error(`received ${received} bytes for a credit of ${credit}`);
  const first = Buffer.concat(counter.captured);
  if (!first.equals(SOURCE_CHUNK)) throw new Error(`the first ${SOURCE_CHUNK.length} bytes differ from what the target sends`);
  if (counter.unexpectedFrames > 0) throw new Error(`${counter.unexpectedFrames} unexpected frames (last: ${counter.lastUnexpected})`);
  socket.removeAllListeners('data');
  await closeWebSocket(socket);
  return resultOf(options, window, protocol);
}

// ---------------------------------------------------------------------------------------------------------------
// Main.

function readOptions(): Options {
  const { values } = parseArgs({
    options: {
      scenario: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' }, port: { type: 'string' },
      path: { type: 'string', default: '/' }, 'server-pid': { type: 'string' }, 'target-pid': { type: 'string' },
      'warmup-ms': { type: 'string', default: '1000' }, 'duration-ms': { type: 'string', default: '5000' },
      inflight: { type: 'string', default: '16' }, concurrency: { type: 'string', default: '8' },
      'message-bytes': { type: 'string', default: '64' }, 'chunk-bytes': { type: 'string', default: '65536' },
      'window-bytes': { type: 'string', default: '1048576' }, 'max-count': { type: 'string' },
    },
  });
  const scenario = SCENARIOS.find((id) => id === values.scenario);
  if (scenario === undefined) throw new RangeError(`unknown --scenario ${String(values.scenario)} (known: ${SCENARIOS.join(', ')})`);
  const integer = (text: string | undefined, name: string): number => {
    const value = Number(text);
    if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`--${name} must be a positive integer (got ${String(text)})`);
    return value;
  };
  return {
    scenario, host: values.host, path: values.path,
    port: integer(values.port, 'port'), serverPid: integer(values['server-pid'], 'server-pid'),
    targetPid: values['target-pid'] === undefined ? undefined : integer(values['target-pid'], 'target-pid'),
    warmupMs: integer(values['warmup-ms'], 'warmup-ms'), durationMs: integer(values['duration-ms'], 'duration-ms'),
    inflight: integer(values.inflight, 'inflight'), concurrency: integer(values.concurrency, 'concurrency'),
    messageBytes: integer(values['message-bytes'], 'message-bytes'), chunkBytes: integer(values['chunk-bytes'], 'chunk-bytes'),
    windowBytes: integer(values['window-bytes'], 'window-bytes'), maxCount: integer(values['max-count'], 'max-count'),
  };
}

function emit(output: BridgeLoadOutput): void {
  process.stdout.write(`${JSON.stringify(output)}\n`, () => process.exit(output.ok ? 0 : 1));
}

async function main(): Promise<void> {
  const options = readOptions();
  // A last resort: every step has its own timeout, and the suite kills this process too.
  setTimeout(() => emit({ ok: false, error: 'load generator timed out' }), options.warmupMs + options.durationMs + 60_000).unref();
  const runs: Record<BridgeScenario, (options: Options) => Promise<BridgeLoadResult>> = {
    'exec-messages': runExecMessages, 'exec-roundtrip': runExecMessages, 'exec-connections': runExecConnections,
    'tcp-bulk': runTcpBulk, 'tcp-upload': runTcpUpload, 'tcp-download': runTcpDownload,
  };
  const run = runs[options.scenario];
  emit({ ok: true, result: await run(options) });
}

main().catch((error: unknown) => emit({ ok: false, error: error instanceof Error ? error.message : String(error) }));
