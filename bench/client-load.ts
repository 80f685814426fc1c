// The client under test, as a load process: opens connections with our `connect()` or the `ws` package's client,
// keeps K messages in flight on each against an echo server, and prints one JSON line with the messages per second
// and its own CPU time over the measured window. bench/client-bench.ts runs it, one client at a time.
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { readCpuSeconds } from './proc-stats.js';

// ws reads these when it is first loaded, so set them before its dynamic import below (a static import would be
// hoisted above this code): pure JavaScript, as in every ws row of the bench. The parent sets them too.
process.env['WS_NO_BUFFER_UTIL'] = '1';
process.env['WS_NO_UTF_8_VALIDATE'] = '1';

export type ClientName = 'switchyard' | 'ws';

export interface ClientLoadResult {
  client: ClientName;
  connections: number;
  inflight: number;
  payloadBytes: number;
  binary: boolean;
  /** Echoes received in the measured window. */
  messages: number;
  elapsedMs: number;
  messagesPerSecond: number;
  /** Payload megabytes (10^6 bytes) echoed per second, one direction. */
  payloadMBps: number;
  /** This process's CPU (user + system, every thread) over the window, as % of one core. */
  clientCpuPercent: number;
  clientUserCpuPercent: number;
  clientSystemCpuPercent: number;
  /** Echoes per second of this process's CPU time: the inverse of what one message costs the client. */
  messagesPerClientCpuSecond: number;
  /** The echo server's CPU over the same window (from /proc), as % of one core. */
  serverCpuPercent: number;
  hitMessageCap: boolean;
  /** The measured window on CLOCK_MONOTONIC in microseconds (for `node --cpu-prof` summaries). */
  windowStartUs: number;
  windowEndUs: number;
}

/** What the load loop needs of a client connection, the same for both clients. */
interface LoadConnection {
  send(payload: Buffer): void;
  terminate(): void;
}

type OnMessage = (data: Buffer, isBinary: boolean) => void;
type OnClose = (why: string) => void;

const HANDSHAKE_TIMEOUT_MS = 10_000;
const VERIFY_TIMEOUT_MS = 10_000;

/** CLOCK_MONOTONIC in microseconds: the clock V8 stamps CPU profile samples with. */
const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

async function openSwitchyard(url: string, binary: boolean, onMessage: OnMessage, onClose: OnClose): Promise<LoadConnection> {
  const { connect } = await import('../src/client/connect.js');
  const ws = await connect(url, {
    handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
    maxMessageBytes: 64 << 20,
    maxFrameBytes: 64 << 20,
    handlers: {
      message: (_ws, data, isBinary) => onMessage(data, isBinary),
      close: (_ws, code, reason) => onClose(`closed ${code} ${reason}`),
    },
  });
  return { send: (payload) => { ws.send(payload, binary); }, terminate: () => ws.terminate() };
}

async function openWs(url: string, binary: boolean, onMessage: OnMessage, onClose: OnClose): Promise<LoadConnection> {
  const { default: WebSocket } = await import('ws');
  const socket = new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 << 20, handshakeTimeout: HANDSHAKE_TIMEOUT_MS });
  // ws hands out a Buffer with binaryType 'nodebuffer' (the default) and one fragment per message.
  socket.on('message', (data, isBinary) => onMessage(data as Buffer, isBinary));
  // One options object for every send: what an application that cares would do.
  const sendOptions = { binary };
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => {
      socket.off('error', reject);
      socket.on('error', () => {}); // a close follows, and it is reported
      socket.on('close', (code, reason) => onClose(`closed ${code} ${reason.toString()}`));
      resolve();
    });
    socket.once('error', reject);
  });
  return { send: (payload) => socket.send(payload, sendOptions), terminate: () => socket.terminate() };
}

interface LoadOptions {
  client: ClientName;
  url: string;
  serverPid: number;
  connections: number;
  inflight: number;
  payloadBytes: number;
  binary: boolean;
  warmupMs: number;
  durationMs: number;
  maxMessages: number;
}

/** A payload whose bytes differ from position to position (text: printable ASCII, so valid UTF-8). */
function makePayload(bytes: number, binary: boolean): Buffer {
  const payload = Buffer.allocUnsafe(bytes);
  for (let i = 0; i < bytes; i++) payload[i] = binary ? (i * 7 + 3) % 256 : 0x21 + (i % 94);
  return payload;
}

async function runLoad(options: LoadOptions): Promise<ClientLoadResult> {
  const payload = makePayload(options.payloadBytes, options.binary);
  const open = options.client === 'switchyard' ? openSwitchyard : openWs;
  let failure: string | undefined;
  let finished = false;
  let received = 0;
  let sent = 0;
  let sending = false;
  let wake: (() => void) | undefined;
  const connections: LoadConnection[] = [];
  /** While verifying: the one echo each connection waits for. */
  const firstEcho: Array<((data: Buffer, isBinary: boolean) => void) | undefined> = [];

  const fail = (why: string): void => {
    failure ??= why;
    wake?.();
  };

  for (let index = 0; index < options.connections; index++) {
    let connection: LoadConnection | undefined;
    const onMessage: OnMessage = (data, isBinary) => {
      const check = firstEcho[index];
      if (check !== undefined) {
        firstEcho[index] = undefined;
        check(data, isBinary);
        return;
      }
      // Every echo is checked for type and length (cheap, the same for both clients); the first for every byte.
      if (isBinary !== options.binary || data.length !== options.payloadBytes) {
        fail(`connection ${index}: echo of ${data.length} B (${isBinary ? 'binary' : 'text'}), expected ${options.payloadBytes} B (${options.binary ? 'binary' : 'text'})`);
        return;
      }
      received++;
      if (sending && sent < options.maxMessages) {
        sent++;
        connection!.send(payload);
      }
    };
    const onClose: OnClose = (why) => {
      if (!finished) fail(`connection ${index} ${why} during the run`);
    };
    connection = await open(options.url, options.binary, onMessage, onClose);
    connections.push(connection);
  }

  try {
    // Each connection sends one message and checks its echo byte for byte before anything is measured.
    await Promise.all(connections.map((connection, index) => new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`connection ${index}: no echo within ${VERIFY_TIMEOUT_MS} ms`)), VERIFY_TIMEOUT_MS);
      firstEcho[index] = (data, isBinary) => {
        clearTimeout(timer);
        if (isBinary !== options.binary) return reject(new Error(`connection ${index}: the echo arrived as ${isBinary ? 'binary' : 'text'}`));
        if (!data.equals(payload)) return reject(new Error(`connection ${index}: the echo (${data.length} B) differs from the ${payload.length} B sent`));
        resolve();
      };
      connection.send(payload);
    })));

    sending = true;
    for (const connection of connections) {
      for (let k = 0; k < options.inflight && sent < options.maxMessages; k++) {
        sent++;
        connection.send(payload);
      }
    }
    const waitFor = (ms: number): Promise<void> => new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    await waitFor(options.warmupMs);
    const start = { at: performance.now(), atUs: monotonicUs(), received, cpu: process.cpuUsage(), serverCpu: readCpuSeconds(options.serverPid) };
    if (failure === undefined) await waitFor(options.durationMs);
    sending = false;
    const elapsedMs = performance.now() - start.at;
    const endUs = monotonicUs();
    const cpu = process.cpuUsage(start.cpu);
    const serverCpu = readCpuSeconds(options.serverPid) - start.serverCpu;
    const messages = received - start.received;
    if (failure !== undefined) throw new Error(failure);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    const messagesPerSecond = (messages * 1000) / elapsedMs;
    return {
      client: options.client,
      connections: options.connections,
      inflight: options.inflight,
      payloadBytes: options.payloadBytes,
      binary: options.binary,
      messages,
      elapsedMs,
      messagesPerSecond,
      payloadMBps: (messagesPerSecond * options.payloadBytes) / 1e6,
      clientCpuPercent: (cpuSeconds * 1000 * 100) / elapsedMs,
      clientUserCpuPercent: (cpu.user / 1000 / elapsedMs) * 100,
      clientSystemCpuPercent: (cpu.system / 1000 / elapsedMs) * 100,
      messagesPerClientCpuSecond: cpuSeconds > 0 ? messages / cpuSeconds : 0,
      serverCpuPercent: (serverCpu * 1000 * 100) / elapsedMs,
      hitMessageCap: sent >= options.maxMessages,
      windowStartUs: start.atUs,
      windowEndUs: endUs,
    };
  } finally {
    finished = true;
    sending = false;
    for (const connection of connections) connection.terminate();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      client: { type: 'string' },
      url: { type: 'string' },
      'server-pid': { type: 'string' },
      connections: { type: 'string', default: '1' },
      inflight: { type: 'string', default: '1' },
      'payload-bytes': { type: 'string', default: '64' },
      binary: { type: 'boolean', default: false },
      'warmup-ms': { type: 'string', default: '1000' },
      'duration-ms': { type: 'string', default: '5000' },
      'max-messages': { type: 'string', default: '50000000' },
    },
  });
  const integer = (name: keyof typeof values, min: number): number => {
    const raw = values[name];
    const parsed = Number(raw);
    if (typeof raw !== 'string' || !Number.isInteger(parsed) || parsed < min) throw new RangeError(`--${name} must be an integer >= ${min}, got ${String(raw)}`);
    return parsed;
  };
  if (values.client !== 'switchyard' && values.client !== 'ws') throw new RangeError('--client must be switchyard or ws');
  if (values.url === undefined) throw new RangeError('--url is required (ws://HOST:PORT/PATH of an echo server)');
  const options: LoadOptions = {
    client: values.client,
    url: values.url,
    serverPid: integer('server-pid', 1),
    connections: integer('connections', 1),
    inflight: integer('inflight', 1),
    payloadBytes: integer('payload-bytes', 0),
    binary: values.binary,
    warmupMs: integer('warmup-ms', 0),
    durationMs: integer('duration-ms', 1),
    maxMessages: integer('max-messages', 1),
  };
  // A run that hangs (a server that stopped answering mid-handshake) still ends, with a reason.
  const hardLimitMs = options.warmupMs + options.durationMs + options.connections * HANDSHAKE_TIMEOUT_MS + VERIFY_TIMEOUT_MS + 10_000;
  setTimeout(() => {
    process.stderr.write(`client-load: no result within ${hardLimitMs} ms\n`);
    process.exit(1);
  }, hardLimitMs).unref();
  const result = await runLoad(options);
  // process.exit, so `node --cpu-prof` writes its profile and no socket keeps the process alive.
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
}

main().catch((error: unknown) => {
  process.stderr.write(`client-load: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
