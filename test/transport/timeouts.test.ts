// The two deadlines that protect the server from peers that stop half way: the handshake timeout (a request
// head that never completes) and the close timeout (a closing handshake the peer never finishes). Short
// configured values, generous bounds: the tests prove the timer fires, not how fast.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { createServer } from '../../src/server/server.js';
import type { ServerOptions } from '../../src/server/options.js';
import type { WebSocketRoute } from '../../src/server/server.js';
import { Opcode, close as closeFrame, text } from '../_support/frames.js';
import { openRawClient, type RawClient } from '../_support/raw-client.js';
import { cleanupStack, sleep } from '../_support/cleanup.js';

const HOST = '127.0.0.1';


async function listen(defer: (cleanup: () => unknown) => void, options: ServerOptions, route: WebSocketRoute<undefined>): Promise<number> {
  const app = createServer(options).websocket<undefined>('/ws', route);
  defer(() => app.close());
  return (await app.listen({ port: 0, host: HOST })).port;
}


interface Dropped { closed: boolean; elapsedMs: number; received: string }

/** Opens a raw TCP connection, writes `bytes` (maybe none), and waits up to `limitMs` for the server to close it. */
async function sendAndAwaitDrop(defer: (cleanup: () => unknown) => void, port: number, bytes: string, limitMs: number): Promise<Dropped> {
  const socket = net.connect(port, HOST);
  defer(() => socket.destroy());
  socket.on('error', () => { /* a reset is a way of being dropped too */ });
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject); });
  const startedAt = Date.now();
  let received = '';
  socket.setEncoding('latin1').on('data', (chunk: string) => { received += chunk; });
  if (bytes !== '') socket.write(bytes);
  let timer: NodeJS.Timeout | undefined;
  const closed = await new Promise<boolean>((resolve) => {
    socket.once('close', () => resolve(true));
    timer = setTimeout(() => resolve(false), limitMs);
  });
  clearTimeout(timer);
  return { closed, elapsedMs: Date.now() - startedAt, received };
}

function assertDroppedWith408OrNothing(result: Dropped, handshakeTimeoutMs: number, limitMs: number): void {
  assert.ok(result.closed, `the server kept the connection open for ${limitMs} ms (handshakeTimeoutMs ${handshakeTimeoutMs}); received ${JSON.stringify(result.received)}`);
  assert.ok(result.received === '' || result.received.startsWith('HTTP/1.1 408 '), `expected a 408 or a plain close, got ${JSON.stringify(result.received)}`);
  assert.doesNotMatch(result.received, / 101 /);
  assert.ok(result.elapsedMs >= handshakeTimeoutMs / 2, `dropped after ${result.elapsedMs} ms, well before the ${handshakeTimeoutMs} ms timeout`);
}

describe('handshake timeout (handshakeTimeoutMs)', () => {
  const handshakeTimeoutMs = 200;
  const limitMs = 4000;

  it('drops a client that sends half a request head', async (t) => {
    const defer = cleanupStack(t);
    const port = await listen(defer, { handshakeTimeoutMs, pingIntervalMs: 0 }, {});
    const result = await sendAndAwaitDrop(defer, port, 'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n', limitMs);
    assertDroppedWith408OrNothing(result, handshakeTimeoutMs, limitMs);
  });

  it('drops a client that connects and sends nothing', async (t) => {
    const defer = cleanupStack(t);
    const port = await listen(defer, { handshakeTimeoutMs, pingIntervalMs: 0 }, {});
    const result = await sendAndAwaitDrop(defer, port, '', limitMs);
    assertDroppedWith408OrNothing(result, handshakeTimeoutMs, limitMs);
  });

  it('leaves a WebSocket that completed its handshake open long after the handshake timeout', async (t) => {
    const defer = cleanupStack(t);
    const port = await listen(defer, { handshakeTimeoutMs, pingIntervalMs: 0 }, { message(ws, data, isBinary) { ws.send(data, isBinary); } });
    const client = await openRawClient(port, HOST, { path: '/ws' });
    defer(() => client.destroy());
    assert.equal(client.response.statusCode, 101);
    await sleep(handshakeTimeoutMs * 4);
    assert.equal(client.tcpClosed, false, 'the upgraded connection was dropped by the HTTP request timers');
    await client.send(text('still open'));
    assert.equal((await client.nextMessage(3000)).payload.toString(), 'still open');
  });
});

describe('close timeout (closeTimeoutMs)', () => {
  it('drops a peer that never answers the server\'s close frame after closeTimeoutMs', async (t) => {
    const defer = cleanupStack(t);
    const closeTimeoutMs = 200;
    const closes: Array<{ code: number; wasClean: boolean }> = [];
    const port = await listen(defer, { closeTimeoutMs, pingIntervalMs: 0 }, {
      open(ws) { ws.close(1000, 'bye'); },
      close(_ws, code, _reason, wasClean) { closes.push({ code, wasClean }); },
    });
    const client: RawClient = await openRawClient(port, HOST, { path: '/ws' });
    defer(() => client.destroy());
    const frame = await client.nextFrame(3000);
    assert.equal(frame.opcode, Opcode.close);
    assert.equal(frame.payload.readUInt16BE(0), 1000);
    assert.equal(frame.payload.subarray(2).toString(), 'bye');
    const sentAt = Date.now();
    // The peer reads on but never answers and never closes its side.
    const dropped = await Promise.race([client.closed.then(() => true), sleep(closeTimeoutMs * 20).then(() => false)]);
    const elapsedMs = Date.now() - sentAt;
    assert.ok(dropped, `the server kept a non-answering peer for ${closeTimeoutMs * 20} ms (closeTimeoutMs ${closeTimeoutMs})`);
    assert.ok(elapsedMs >= closeTimeoutMs / 2, `dropped after ${elapsedMs} ms, before the close timeout could pass`);
    assert.deepEqual(client.pendingFrames, [], 'nothing follows the close frame');
    const deadline = Date.now() + 3000;
    while (closes.length === 0 && Date.now() < deadline) await sleep(5);
    assert.equal(closes.length, 1, 'the close handler ran once');
    assert.equal(closes[0]?.wasClean, false, 'a closing handshake the peer never answered is not clean');
  });

  it('reports 1006 to the close handler when the peer never answered (RFC 6455 §7.1.5)', {
  }, async (t) => {
    const defer = cleanupStack(t);
    const closes: number[] = [];
    const port = await listen(defer, { closeTimeoutMs: 100, pingIntervalMs: 0 }, {
      open(ws) { ws.close(1000); },
      close(_ws, code) { closes.push(code); },
    });
    const client = await openRawClient(port, HOST, { path: '/ws' });
    defer(() => client.destroy());
    await Promise.race([client.closed, sleep(3000)]);
    const deadline = Date.now() + 3000;
    while (closes.length === 0 && Date.now() < deadline) await sleep(5);
    assert.deepEqual(closes, [1006]);
  });

  it('finishes at once, without waiting for the timeout, when the peer answers', async (t) => {
    const defer = cleanupStack(t);
    const closes: Array<{ code: number; wasClean: boolean }> = [];
    // A timeout far longer than the test's wait: the TCP close must come from the answered handshake.
    const port = await listen(defer, { closeTimeoutMs: 60_000, pingIntervalMs: 0 }, {
      open(ws) { ws.close(4000, 'done'); },
      close(_ws, code, _reason, wasClean) { closes.push({ code, wasClean }); },
    });
    const client = await openRawClient(port, HOST, { path: '/ws' });
    defer(() => client.destroy());
    const frame = await client.nextFrame(3000);
    assert.equal(frame.opcode, Opcode.close);
    await client.send(closeFrame(4000));
    const closed = await Promise.race([client.closed.then(() => true), sleep(3000).then(() => false)]);
    assert.ok(closed, 'the server did not close TCP after the peer answered its close');
    const deadline = Date.now() + 3000;
    while (closes.length === 0 && Date.now() < deadline) await sleep(5);
    assert.deepEqual(closes, [{ code: 4000, wasClean: true }]);
  });
});
