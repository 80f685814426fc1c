// The TCP bridge under load (issue 5, item 2): 50 MB each way at once arrives intact (sha256), and what the
// bridge holds stays bounded: it never holds more than maxBufferedBytes (plus one read) for either direction,
// a target that stops reading stops the client, and a client that stops reading stops the target.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { createCipheriv, createHash, type Hash } from 'node:crypto';
import { createServer } from '../../src/server/server.js';
import { connect } from '../../src/client/connect.js';
import type { WebSocket } from '../../src/transport/websocket.js';
import { tcpBridge, type TcpBridgeRoute } from '../../src/bridges/tcp-bridge.js';
import { cleanupStack, sleep } from '../_support/cleanup.js';

const HOST = '127.0.0.1';
const MiB = 1024 * 1024;
const TOTAL_BYTES = 50 * MiB;
const CHUNK_BYTES = 64 * 1024;
const MAX_BUFFERED_BYTES = 256 * 1024;
/** What the bridge may hold for one direction: the bound, plus one socket read (and a piece) on top of it. */
const HELD_LIMIT_BYTES = MAX_BUFFERED_BYTES + 2 * CHUNK_BYTES + 64;
const TRANSFER_TIMEOUT_MS = 120_000;
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

async function waitFor(condition: () => boolean, ms: number, what: () => string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what()}`);
    await sleep(10);
  }
}

/** Resolves once `value()` has not changed for `quietMs` (the sender is stuck on backpressure). */
async function plateau(value: () => number, quietMs: number, ms: number, what: string): Promise<number> {
  const deadline = Date.now() + ms;
  let last = value();
  let since = Date.now();
  for (;;) {
    await sleep(25);
    const now = value();
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) {
      return now;
    }
    if (Date.now() > deadline) throw new Error(`${what} never stopped growing (at ${now})`);
  }
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

async function startTarget(defer: Defer, seed: number, options: { readPaused?: boolean } = {}): Promise<Target> {
  const sink = new Sink();
  const stream = new ByteStream(seed);
  let written = 0;
  const server = net.createServer((socket) => {
    handle.socket = socket;
    socket.on('error', () => {});
    if (options.readPaused === true) socket.pause();
    socket.on('data', (chunk: Buffer) => {
      sink.add(chunk);
      if (sink.received === TOTAL_BYTES && written === TOTAL_BYTES) socket.end();
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

async function startClient(defer: Defer, url: string, seed: number): Promise<Client> {
  const sink = new Sink();
  const stream = new ByteStream(seed);
  let drained: () => void = () => {};
  let onClose: (close: { code: number; reason: string }) => void = () => {};
  const closed = new Promise<{ code: number; reason: string }>((resolve) => { onClose = resolve; });
  const ws = await connect(url, {
    protocols: ['binary'],
    handlers: {
      message(_ws, data) { sink.add(data); },
      drain() { drained(); },
      close(_ws, code, reason) { onClose({ code, reason }); },
    },
  });
  defer(() => ws.terminate());
  let sent = 0;
  const sendAll = async (): Promise<void> => {
    while (sent < TOTAL_BYTES) {
      const bytes = stream.next(Math.min(CHUNK_BYTES, TOTAL_BYTES - sent));
      sent += bytes.length;
      if (!ws.send(bytes, true)) await new Promise<void>((resolve) => { drained = resolve; });
    }
  };
  return { ws, sink, stream, closed, sent: () => sent, sendingDone: sendAll() };
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
  it('moves 50 MB each way at once, intact (sha256), holding at most maxBufferedBytes (+ one read) per direction', async (t) => {
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

  it('stops reading the client while the target does not read, then delivers everything intact', async (t) => {
    const defer = cleanupStack(t);
    const target = await startTarget(defer, 3, { readPaused: true });
    const bridge = await startBridge(defer, target.port);
    const peak = sampleHeld(defer, bridge.route);
    const client = await startClient(defer, bridge.url, 4);
    const stuckAt = await plateau(client.sent, 500, 30_000, 'what the client could send');
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

  it('stops reading the target while the client does not read, then delivers everything intact', async (t) => {
    const defer = cleanupStack(t);
    const target = await startTarget(defer, 5);
    const bridge = await startBridge(defer, target.port);
    const peak = sampleHeld(defer, bridge.route);
    const client = await startClient(defer, bridge.url, 6);
    client.ws.pause();
    const stuckAt = await plateau(target.written, 500, 30_000, 'what the target could write');
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
