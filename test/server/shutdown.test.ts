// Graceful shutdown (issue 3): app.close() stops listening, closes every WebSocket with 1001 "server shutting
// down", waits for the peers up to shutdownTimeoutMs and then drops the rest, refuses what arrives meanwhile, and
// lets an HTTP response in flight finish. Bounds are generous: they prove the deadline exists, not its precision.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import { createServer } from '../../src/server/server.js';
import { Opcode, close, describeFrame } from '../_support/frames.js';
import { openRawClient, type RawClient } from '../_support/raw-client.js';
import { cleanupStack, sleep, withTimeout, waitFor } from '../_support/cleanup.js';
import { LOOPBACK_HOST, listen, upgradedWebSocket } from '../_support/embedded-server.js';

const TIMEOUT_MS = 3000;

async function expectShutdownFrame(client: RawClient): Promise<void> {
  const frame = await client.nextFrame(TIMEOUT_MS);
  assert.equal(frame.opcode, Opcode.close, describeFrame(frame));
  assert.equal(frame.payload.readUInt16BE(0), 1001);
  assert.equal(frame.payload.subarray(2).toString(), 'server shutting down');
}

/** Resolves with the connect error code, or 'connected' if a TCP connection was accepted. */
function tryConnect(port: number): Promise<string> {
  return withTimeout(new Promise((resolve) => {
    const socket = net.connect({ port, host: LOOPBACK_HOST });
    socket.once('connect', () => { socket.destroy(); resolve('connected'); });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  }), TIMEOUT_MS, 'a TCP connect');
}

describe('app.close(): graceful shutdown', () => {
  it('sends every open WebSocket 1001 "server shutting down" and resolves once all have answered', async (t) => {
    const defer = cleanupStack(t);
    const closes: Array<{ route: string; code: number; wasClean: boolean }> = [];
    const app = createServer({ pingIntervalMs: 0, closeTimeoutMs: 60_000, shutdownTimeoutMs: 60_000 })
      .websocket('/a', { close(_ws, code, _reason, wasClean) { closes.push({ route: '/a', code, wasClean }); } })
      .websocket('/b/:id', { close(_ws, code, _reason, wasClean) { closes.push({ route: '/b/:id', code, wasClean }); } });
    const port = await listen(defer, app);
    const clients = [await upgradedWebSocket(defer, port, '/a'), await upgradedWebSocket(defer, port, '/b/1'), await upgradedWebSocket(defer, port, '/b/2')];
    assert.equal(app.connectionCount, 3);

    let resolved = false;
    const closing = app.close().then(() => { resolved = true; });
    for (const client of clients) await expectShutdownFrame(client);
    // The first two answer; close() waits for the third.
    await clients[0]!.send(close(1001));
    await clients[1]!.send(close(1001));
    await waitFor(() => app.connectionCount === 1, TIMEOUT_MS, 'two connections to finish closing');
    await sleep(50);
    assert.equal(resolved, false, 'close() resolved while a connection was still closing');
    await clients[2]!.send(close(1001));
    await withTimeout(closing, TIMEOUT_MS, 'close() after every peer answered');
    for (const client of clients) await withTimeout(client.closed, TIMEOUT_MS, 'TCP close');
    assert.equal(app.connectionCount, 0);
    assert.equal(closes.length, 3);
    assert.ok(closes.every((entry) => entry.code === 1001 && entry.wasClean), JSON.stringify(closes));
  });

  it('drops a peer that never answers after shutdownTimeoutMs, and close() resolves within a bound', async (t) => {
    const defer = cleanupStack(t);
    const shutdownTimeoutMs = 300;
    const closes: Array<{ code: number; wasClean: boolean }> = [];
    // The close timeout is far longer: only shutdownTimeoutMs can end this connection in time.
    const app = createServer({ pingIntervalMs: 0, closeTimeoutMs: 60_000, shutdownTimeoutMs })
      .websocket('/ws', { close(_ws, code, _reason, wasClean) { closes.push({ code, wasClean }); } });
    const port = await listen(defer, app);
    const polite = await upgradedWebSocket(defer, port, '/ws');
    const silent = await upgradedWebSocket(defer, port, '/ws');

    const startedAt = Date.now();
    const closing = app.close();
    await expectShutdownFrame(polite);
    await polite.send(close(1001));
    await expectShutdownFrame(silent); // and never answers
    await withTimeout(closing, shutdownTimeoutMs + TIMEOUT_MS, 'close() with a peer that never answers');
    const elapsedMs = Date.now() - startedAt;
    assert.ok(elapsedMs >= shutdownTimeoutMs * 0.5, `close() resolved after ${elapsedMs} ms, before shutdownTimeoutMs ${shutdownTimeoutMs}`);
    await withTimeout(silent.closed, TIMEOUT_MS, 'the silent peer\'s TCP connection to be dropped');
    assert.equal(app.connectionCount, 0);
    assert.deepEqual(closes.map((entry) => entry.code).sort(), [1001, 1006], 'the polite peer closed cleanly, the silent one was dropped');
  });

  it('stops listening at once and refuses new connections while connections are closing', async (t) => {
    const defer = cleanupStack(t);
    const app = createServer({ pingIntervalMs: 0, closeTimeoutMs: 60_000, shutdownTimeoutMs: 2000 }).websocket('/ws', {});
    const port = await listen(defer, app);
    const lingering = await upgradedWebSocket(defer, port, '/ws');
    assert.equal(await tryConnect(port), 'connected');

    const closing = app.close();
    assert.equal(app.httpServer.listening, false, 'listening stops as soon as close() is called');
    await expectShutdownFrame(lingering);
    // close() is still waiting for `lingering`: a newcomer gets no connection.
    assert.equal(await tryConnect(port), 'ECONNREFUSED');
    await lingering.send(close(1001));
    await withTimeout(closing, TIMEOUT_MS, 'close()');
    assert.equal(await tryConnect(port), 'ECONNREFUSED');
  });

  it('refuses with 503 an upgrade whose hook was still running when close() began; open never runs', async (t) => {
    const defer = cleanupStack(t);
    let hookStarted = false;
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => { release = resolve; });
    defer(() => release());
    let opened = 0;
    const app = createServer({ pingIntervalMs: 0, shutdownTimeoutMs: 2000 }).websocket('/ws', {
      async upgrade() { hookStarted = true; await gate; },
      open() { opened++; },
    });
    const port = await listen(defer, app);
    const pending = openRawClient(port, LOOPBACK_HOST, { path: '/ws' });
    pending.then((client) => defer(() => client.destroy()), () => {});
    await waitFor(() => hookStarted, TIMEOUT_MS, 'the hook to start');
    const closing = app.close();
    release();
    const client = await pending;
    assert.equal(client.response.statusCode, 503, client.response.raw);
    assert.equal(opened, 0);
    await withTimeout(closing, TIMEOUT_MS, 'close()');
  });

  it('lets an HTTP response in flight finish', async (t) => {
    const defer = cleanupStack(t);
    let handlerStarted = false;
    const app = createServer({ pingIntervalMs: 0, shutdownTimeoutMs: 2000 }).get('/slow', (_req, res) => {
      handlerStarted = true;
      setTimeout(() => res.end('finished anyway\n'), 200);
    });
    const port = await listen(defer, app);
    const response = withTimeout(new Promise<{ status: number; body: string }>((resolve, reject) => {
      http.get({ host: LOOPBACK_HOST, port, path: '/slow', agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk; });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      }).on('error', reject);
    }), TIMEOUT_MS, 'the in-flight response');
    await waitFor(() => handlerStarted, TIMEOUT_MS, 'the handler to start');
    const closing = app.close();
    assert.deepEqual(await response, { status: 200, body: 'finished anyway\n' });
    await withTimeout(closing, TIMEOUT_MS, 'close()');
  });
});


