// The TCP bridge under load (issue 5, item 2): 50 MB each way at once arrives intact (sha256), and what the
// bridge holds stays bounded: it never holds more than maxBufferedBytes (plus one read) for either direction,
// a target that stops reading stops the client, a client that stops reading stops the target, and a bridge in
// its own process keeps its RSS far below the 100 MB that pass through it.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { spawn } from 'node:child_process';
import { createCipheriv, createHash, type Hash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createServer } from '../../src/server/server.js';
import { connect } from '../../src/client/connect.js';
import type { WebSocket } from '../../src/transport/websocket.js';
import { tcpBridge, type TcpBridgeRoute } from '../../src/bridges/tcp-bridge.js';
import { cleanupStack, sleep, waitFor, waitForSteady } from '../_support/cleanup.js';

const HOST = '127.0.0.1';
const MiB = 1024 * 1024;
const TOTAL_BYTES = 50 * MiB;
const CHUNK_BYTES = 64 * 1024;
const MAX_BUFFERED_BYTES = 256 * 1024;
/** What the bridge may hold for one direction: the bound, plus one socket read (and a piece) on top of it. */
const HELD_LIMIT_BYTES = MAX_BUFFERED_BYTES + 2 * CHUNK_BYTES + 64;
const TRANSFER_TIMEOUT_MS = 50_000;
const testOptions = { timeout: 60_000 } as const;
/** How long each side stops reading in the memory test: long enough for a buffering bridge to take in tens of MB. */
const STALL_MS = 1000;
/**
 * Memory of the bridge process (which runs a full GC before each measurement), over its baseline. While a side
 * stalls, live memory (heap in use + Buffers) is what the bridge holds: 1 MiB for the stalled direction, the other
 * direction's bytes in flight (measured 0.5-2.6 MiB); a bridge that does not pause the client holds over 20 MiB
 * there. The peak while data flows also counts Buffers V8 frees on a background thread after each GC (measured
 * 5-8 MiB); RSS also counts freed memory the allocator has not returned to the system (measured 6-12 MiB).
 */
const MAX_STALLED_LIVE_GROWTH_BYTES = 6 * MiB;
const MAX_LIVE_GROWTH_BYTES = 16 * MiB;
const MAX_RSS_GROWTH_BYTES = 32 * MiB;
type Defer = (cleanup: () => unknown) => void;

/** A deterministic pseudo-random byte stream (AES-128-CTR keystream) and the sha256 of what it produced. */
class ByteStream {
  readonly #cipher;
  readonly #hash: Hash = createHash('sha256');
  produced = 0;

  constructor(seed: number) {
    const key = Buffer.alloc(16, seed);
    this.#cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16, 0));
  }

  next(byteCount: number): Buffer {
    const bytes = this.#cipher.update(Buffer.alloc(byteCount));
    this.#hash.update(bytes);
    this.produced += bytes.length;
    return bytes;
  }

  digest(): string { return this.#hash.digest('hex'); }
}

/** Counts and hashes what arrives. */
class Sink {
  readonly #hash: Hash = createHash('sha256');
  received = 0;
  add(bytes: Buffer): void { this.#hash.update(bytes); this.received += bytes.length; }
  digest(): string { return this.#hash.digest('hex'); }
}

/** The target: sends TOTAL_BYTES of stream `seed` honouring backpressure, hashes what it receives, and ends once both are done. */
interface Target {
  readonly port: number;
  readonly sink: Sink;
  readonly stream: ByteStream;
  socket: net.Socket | undefined;
  /** Bytes handed to socket.write() so far. */
  readonly written: () => number;
}

interface TargetOptions {
  /** Paused from the start (resume with target.socket.resume()). */
  readPaused?: boolean;
  /** Stop reading for STALL_MS once this many bytes arrived, calling onStall. */
  stallAtBytes?: number;
  onStall?: () => void;
}

async function startTarget(defer: Defer, seed: number, options: TargetOptions = {}): Promise<Target> {
  const sink = new Sink();
  const stream = new ByteStream(seed);
  let written = 0;
  const server = net.createServer((socket) => {
    handle.socket = socket;
    socket.on('error', () => {});
    if (options.readPaused === true) socket.pause();
    let stalled = false;
    socket.on('data', (chunk: Buffer) => {
      sink.add(chunk);
      if (sink.received === TOTAL_BYTES && written === TOTAL_BYTES) socket.end();
      if (!stalled && options.stallAtBytes !== undefined && sink.received >= options.stallAtBytes) {
        stalled = true;
        socket.pause();
        options.onStall?.();
        setTimeout(() => socket.resume(), STALL_MS);
      }
    });
    const pump = (): void => {
      while (written < TOTAL_BYTES) {
        const bytes = stream.next(Math.min(CHUNK_BYTES, TOTAL_BYTES - written));
        written += bytes.length;
        if (!socket.write(bytes)) {
          socket.once('drain', pump);
          return;
        }
      }
      if (sink.received === TOTAL_BYTES) socket.end();
    };
    pump();
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const handle: Target = { port: (server.address() as net.AddressInfo).port, sink, stream, socket: undefined, written: () => written };
  defer(() => new Promise<void>((resolve) => { handle.socket?.destroy(); server.close(() => resolve()); }));
  return handle;
}

/** Our client: sends TOTAL_BYTES of stream `seed` in CHUNK_BYTES messages, waiting for drain, and hashes what arrives. */
interface Client {
  readonly ws: WebSocket<undefined>;
  readonly sink: Sink;
  readonly stream: ByteStream;
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly sent: () => number;
  readonly sendingDone: Promise<void>;
}

async function startClient(defer: Defer, url: string, seed: number, stallAtBytes = Infinity, onStall?: () => void): Promise<Client> {
  const sink = new Sink();
  let stalled = false;
  const stream = new ByteStream(seed);
  let drained: () => void = () => {};
  let onClose: (close: { code: number; reason: string }) => void = () => {};
  const closed = new Promise<{ code: number; reason: string }>((resolve) => { onClose = resolve; });
  const ws = await connect(url, {
    protocols: ['binary'],
    handlers: {
      message(self, data) {
        sink.add(data);
        if (!stalled && sink.received >= stallAtBytes) {
          stalled = true;
          self.pause();
          onStall?.();
          setTimeout(() => self.resume(), STALL_MS);
        }
      },
      drain() { drained(); },
      close(_ws, code, reason) { onClose({ code, reason }); drained(); },
    },
  });
  defer(() => ws.terminate());
  let sent = 0;
  const sendAll = async (): Promise<void> => {
    while (sent < TOTAL_BYTES) {
      if (ws.readyState !== 1) throw new Error(`the connection closed after the client sent ${sent} bytes`);
      const bytes = stream.next(Math.min(CHUNK_BYTES, TOTAL_BYTES - sent));
      sent += bytes.length;
      if (!ws.send(bytes, true)) await new Promise<void>((resolve) => { drained = resolve; });
    }
  };
  const sendingDone = sendAll();
  sendingDone.catch(() => {}); // awaited by the test; this only keeps an early failure from being "unhandled"
  return { ws, sink, stream, closed, sent: () => sent, sendingDone };
}

/** The largest amounts the bridge held for each direction, sampled every few ms. */
function sampleHeld(defer: Defer, route: TcpBridgeRoute): { toTarget: number; toClient: number } {
  const peak = { toTarget: 0, toClient: 0 };
  const timer = setInterval(() => {
    for (const connection of route.connections()) {
      peak.toTarget = Math.max(peak.toTarget, connection.pendingToTargetBytes);
      peak.toClient = Math.max(peak.toClient, connection.pendingToClientBytes);
    }
  }, 2);
  defer(() => clearInterval(timer));
  return peak;
}

async function startBridge(defer: Defer, port: number): Promise<{ route: TcpBridgeRoute; url: string }> {
  const route = tcpBridge({ target: { host: HOST, port }, maxBufferedBytes: MAX_BUFFERED_BYTES });
  const app = createServer({ pingIntervalMs: 0 }).websocket('/tcp', route);
  const address = await app.listen({ port: 0, host: HOST });
  defer(() => app.close());
  return { route, url: `ws://${HOST}:${address.port}/tcp` };
}

function assertIntact(target: Target, client: Client): void {
  assert.equal(target.sink.received, TOTAL_BYTES, 'bytes at the target');
  assert.equal(client.sink.received, TOTAL_BYTES, 'bytes at the client');
  assert.equal(target.sink.digest(), client.stream.digest(), 'client -> target: same sha256');
  assert.equal(client.sink.digest(), target.stream.digest(), 'target -> client: same sha256');
}

describe('tcpBridge: bulk transfer and bounded buffers', () => {
  it('moves 50 MB each way at once, intact (sha256), holding at most maxBufferedBytes (+ one read) per direction', testOptions, async (t) => {
    const defer = cleanupStack(t);
    const target = await startTarget(defer, 1);
    const bridge = await startBridge(defer, target.port);
    const peak = sampleHeld(defer, bridge.route);
    const started = Date.now();
    const client = await startClient(defer, bridge.url, 2);
    await client.sendingDone;
    let timer: NodeJS.Timeout | undefined;
    const close = await Promise.race([client.closed, new Promise((resolve) => { timer = setTimeout(resolve, TRANSFER_TIMEOUT_MS); })]);
    clearTimeout(timer);
    assert.deepEqual(close, { code: 1000, reason: 'target closed' }, 'the target ends once both directions are done');
    assertIntact(target, client);
    const seconds = (Date.now() - started) / 1000;
    t.diagnostic(`100 MB through the bridge in ${seconds.toFixed(1)} s; peak held: ${peak.toTarget} bytes to target, ${peak.toClient} to client`);
    assert.ok(peak.toTarget <= HELD_LIMIT_BYTES, `held ${peak.toTarget} bytes for the target (limit ${HELD_LIMIT_BYTES})`);
    assert.ok(peak.toClient <= HELD_LIMIT_BYTES, `held ${peak.toClient} bytes for the client (limit ${HELD_LIMIT_BYTES})`);
    await waitFor(() => bridge.route.connections().length === 0, 5000, () => 'the link to go');
  });

  it('stops reading the client while the target does not read, then delivers everything intact', testOptions, async (t) => {
    const defer = cleanupStack(t);
    const target = await startTarget(defer, 3, { readPaused: true });
    const bridge = await startBridge(defer, target.port);
    const peak = sampleHeld(defer, bridge.route);
    const client = await startClient(defer, bridge.url, 4);
    const stuckAt = await waitForSteady(client.sent, 500, 30_000, 'what the client could send');
    const held = bridge.route.connections()[0];
    t.diagnostic(`client stuck after ${stuckAt} of ${TOTAL_BYTES} bytes; bridge holds ${held?.pendingToTargetBytes} for the target`);
    assert.ok(stuckAt < TOTAL_BYTES / 2, `the client was held back (sent ${stuckAt} bytes)`);
    assert.equal(target.sink.received, 0);
    assert.ok(held !== undefined && held.pendingToTargetBytes <= HELD_LIMIT_BYTES, `bridge holds ${held?.pendingToTargetBytes}`);
    assert.ok(held.pendingToTargetBytes >= MAX_BUFFERED_BYTES, 'the bridge filled its buffer before pausing the client');
    target.socket?.resume();
    await client.sendingDone;
    await waitFor(() => target.sink.received === TOTAL_BYTES && client.sink.received === TOTAL_BYTES, TRANSFER_TIMEOUT_MS,
      () => `everything to arrive (target ${target.sink.received}, client ${client.sink.received})`);
    assertIntact(target, client);
    assert.ok(peak.toTarget <= HELD_LIMIT_BYTES, `peak held for the target: ${peak.toTarget}`);
  });

  it('stops reading the target while the client does not read, then delivers everything intact', testOptions, async (t) => {
    const defer = cleanupStack(t);
    const target = await startTarget(defer, 5);
    const bridge = await startBridge(defer, target.port);
    const peak = sampleHeld(defer, bridge.route);
    const client = await startClient(defer, bridge.url, 6);
    client.ws.pause();
    const stuckAt = await waitForSteady(target.written, 500, 30_000, 'what the target could write');
    const held = bridge.route.connections()[0];
    t.diagnostic(`target stuck after ${stuckAt} of ${TOTAL_BYTES} bytes; bridge holds ${held?.pendingToClientBytes} for the client`);
    assert.ok(stuckAt < TOTAL_BYTES / 2, `the target was held back (wrote ${stuckAt} bytes)`);
    assert.ok(held !== undefined && held.pendingToClientBytes <= HELD_LIMIT_BYTES, `bridge holds ${held?.pendingToClientBytes}`);
    assert.ok(held.pendingToClientBytes >= MAX_BUFFERED_BYTES, 'the bridge filled its buffer before pausing the target');
    client.ws.resume();
    await client.sendingDone;
    await waitFor(() => target.sink.received === TOTAL_BYTES && client.sink.received === TOTAL_BYTES, TRANSFER_TIMEOUT_MS,
      () => `everything to arrive (target ${target.sink.received}, client ${client.sink.received})`);
    assertIntact(target, client);
    assert.ok(peak.toClient <= HELD_LIMIT_BYTES, `peak held for the client: ${peak.toClient}`);
  });
});

/**
 * The bridge in a child process, measured alone. Every 10 ms it runs a full GC and records its peak RSS and live
 * memory (V8 heap in use + Buffers). It prints its port, then answers on stdin: "now" (measure now, after two
 * GCs) and "peak" (the peaks since start), each with a JSON line.
 */
const CHILD_SOURCE = `
import { createServer } from ${JSON.stringify(fileURLToPath(new URL('../../src/server/server.js', import.meta.url)))};
import { tcpBridge } from ${JSON.stringify(fileURLToPath(new URL('../../src/bridges/tcp-bridge.js', import.meta.url)))};
const route = tcpBridge({ target: { host: '127.0.0.1', port: Number(process.env.TCP_TARGET_PORT) } });
const app = createServer({ pingIntervalMs: 0 }).websocket('/tcp', route);
const { port } = await app.listen({ port: 0, host: '127.0.0.1' });
const measure = () => {
  globalThis.gc();
  const { rss, heapUsed, arrayBuffers } = process.memoryUsage();
  return { rss, live: heapUsed + arrayBuffers, links: route.connections().length };
};
let peak = { rss: 0, live: 0 };
const sample = () => { const m = measure(); peak = { rss: Math.max(peak.rss, m.rss), live: Math.max(peak.live, m.live) }; };
setInterval(sample, 10);
const reply = (value) => process.stdout.write(JSON.stringify(value) + '\\n');
const lines = (await import('node:readline')).createInterface({ input: process.stdin });
lines.on('line', (command) => {
  // Twice, a moment apart: V8 frees Buffers on a background thread after a GC.
  if (command === 'now') { globalThis.gc(); setTimeout(() => reply(measure()), 20); }
  else if (command === 'peak') { sample(); reply({ ...peak, links: route.connections().length }); }
});
lines.on('close', () => { void app.close().then(() => process.exit(0)); });
process.stdout.write('port ' + port + '\\n');
`;

interface Memory { rss: number; live: number; links: number }

describe('tcpBridge: memory of a bridge in its own process', () => {
  it('holds far less than the 100 MB passing through (live memory and RSS), with each side stalling once', testOptions, async (t) => {
    const defer = cleanupStack(t);
    let targetStalled: () => void = () => {};
    let clientStalled: () => void = () => {};
    const stalls = [new Promise<void>((resolve) => { targetStalled = resolve; }), new Promise<void>((resolve) => { clientStalled = resolve; })];
    const target = await startTarget(defer, 7, { stallAtBytes: 15 * MiB, onStall: () => targetStalled() });
    const child = spawn(process.execPath, ['--expose-gc', '--input-type=module', '-e', CHILD_SOURCE], {
      env: { ...process.env, TCP_TARGET_PORT: String(target.port) }, stdio: ['pipe', 'pipe', 'pipe'],
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    defer(async () => {
      child.stdin.end();
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const nextLine = async (what: string): Promise<string> => {
      let timer: NodeJS.Timeout | undefined;
      const result = await Promise.race([lines.next(), new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no ${what} from the bridge process within 10 s\n${stderr}`)), 10_000);
      })]).finally(() => clearTimeout(timer));
      if (result.done === true) throw new Error(`the bridge process ended before ${what}\n${stderr}`);
      return result.value;
    };
    const ask = async (command: 'now' | 'peak'): Promise<Memory> => {
      child.stdin.write(`${command}\n`);
      return JSON.parse(await nextLine(command)) as Memory;
    };
    const port = Number(/^port (\d+)$/.exec(await nextLine('its port'))?.[1]);
    const baseline = await ask('now');
    const client = await startClient(defer, `ws://${HOST}:${port}/tcp`, 8, 35 * MiB, () => clientStalled());
    // Into each stall (the target's first, then the client's), measure what the bridge holds.
    const stalled: Memory[] = [];
    for (const stall of stalls) {
      await stall;
      await sleep(STALL_MS * 0.6);
      stalled.push(await ask('now'));
    }
    await client.sendingDone;
    let timer: NodeJS.Timeout | undefined;
    const close = await Promise.race([client.closed, new Promise((resolve) => { timer = setTimeout(resolve, TRANSFER_TIMEOUT_MS); })]);
    clearTimeout(timer);
    assert.deepEqual(close, { code: 1000, reason: 'target closed' });
    assertIntact(target, client);
    const peak = await ask('peak');
    const mib = (bytes: number): string => (bytes / MiB).toFixed(1);
    const [targetStall, clientStall] = stalled.map((memory) => memory.live - baseline.live) as [number, number];
    t.diagnostic(`bridge process for 100 MB through it: live memory +${mib(targetStall)} MiB while the target stalled, `
      + `+${mib(clientStall)} MiB while the client stalled, +${mib(peak.live - baseline.live)} MiB at the peak; `
      + `RSS ${mib(baseline.rss)} -> ${mib(peak.rss)} MiB (+${mib(peak.rss - baseline.rss)})`);
    assert.ok(targetStall < MAX_STALLED_LIVE_GROWTH_BYTES, `held ${mib(targetStall)} MiB while the target stalled`);
    assert.ok(clientStall < MAX_STALLED_LIVE_GROWTH_BYTES, `held ${mib(clientStall)} MiB while the client stalled`);
    assert.ok(peak.live - baseline.live < MAX_LIVE_GROWTH_BYTES, `live memory peaked ${mib(peak.live - baseline.live)} MiB over the baseline`);
    assert.ok(peak.rss - baseline.rss < MAX_RSS_GROWTH_BYTES, `RSS grew by ${mib(peak.rss - baseline.rss)} MiB`);
    // The client saw the close frame; the bridge forgets the link once the TCP connection is gone too.
    let links = peak.links;
    for (const deadline = Date.now() + 5000; links !== 0 && Date.now() < deadline; await sleep(20)) links = (await ask('peak')).links;
    assert.equal(links, 0, 'the link is gone');
  });
});
