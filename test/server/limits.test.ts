// Connection and size limits (issue 3, item 4): a route's and the server's maxConnections answer 503 beyond the
// limit and free a slot when a connection closes (upgrades still in their async hook count too); a route's
// maxMessageBytes / maxFrameBytes override the server's, so the same message is refused with 1009 on one route
// and accepted on another.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from '../../src/server/server.js';
import type { WebSocket } from '../../src/transport/websocket.js';
import { Opcode, binary, close, continuation, patternBytes, text } from '../_support/frames.js';
import { openRawClient, type RawClient } from '../_support/raw-client.js';
import { cleanupStack, waitFor } from '../_support/cleanup.js';
import { LOOPBACK_HOST, listen, rawWebSocket } from '../_support/embedded-server.js';

const TIMEOUT_MS = 3000;

function echo(): { message(ws: WebSocket<undefined>, data: Buffer, isBinary: boolean): void } {
  return { message(ws, data, isBinary) { ws.send(data, isBinary); } };
}

async function expect503(client: RawClient): Promise<void> {
  assert.equal(client.response.statusCode, 503, `expected 503, got:\n${client.response.raw}`);
  assert.doesNotMatch(client.response.raw, /Sec-WebSocket-Accept/i);
}

async function closeCleanly(client: RawClient): Promise<void> {
  await client.send(close(1000));
  const result = await client.expectClose(TIMEOUT_MS);
  assert.equal(result.code, 1000);
}

async function assertEchoes(client: RawClient, message: string): Promise<void> {
  await client.send(text(message));
  const reply = await client.nextMessage(TIMEOUT_MS);
  assert.equal(reply.opcode, Opcode.text);
  assert.equal(reply.payload.toString(), message);
}

describe('maxConnections', () => {
  it('a route answers 503 beyond its maxConnections and frees a slot when a connection closes', async (t) => {
    const defer = cleanupStack(t);
    const app = createServer({ pingIntervalMs: 0 })
      .websocket('/limited/:id', { ...echo(), maxConnections: 2 })
      .websocket('/free', echo());
    const port = await listen(defer, app);
    const first = await rawWebSocket(defer, port, '/limited/1');
    const second = await rawWebSocket(defer, port, '/limited/2');
    assert.equal(first.response.statusCode, 101);
    assert.equal(second.response.statusCode, 101);
    assert.equal(app.routeConnectionCount('/limited/:id'), 2);
    await expect503(await rawWebSocket(defer, port, '/limited/3'));
    await expect503(await rawWebSocket(defer, port, '/limited/4'));
    // Another route is not limited by this one.
    assert.equal((await rawWebSocket(defer, port, '/free')).response.statusCode, 101);
    assert.equal(app.routeConnectionCount('/limited/:id'), 2, 'refused upgrades are not counted');
    assert.equal(app.connectionCount, 3);

    await closeCleanly(first);
    await waitFor(() => app.routeConnectionCount('/limited/:id') === 1, TIMEOUT_MS, 'the route count to drop to 1');
    const third = await rawWebSocket(defer, port, '/limited/5');
    assert.equal(third.response.statusCode, 101, 'the freed slot is usable');
    await assertEchoes(third, 'in the freed slot');
    await assertEchoes(second, 'the older one still works');
    await expect503(await rawWebSocket(defer, port, '/limited/6'));
    // A connection that drops without a closing handshake frees its slot too.
    second.destroy();
    await waitFor(() => app.routeConnectionCount('/limited/:id') === 1, TIMEOUT_MS, 'the route count to drop after a reset');
    assert.equal((await rawWebSocket(defer, port, '/limited/7')).response.statusCode, 101);
  });

  it('the server answers 503 beyond its maxConnections across all routes and frees a slot on close', async (t) => {
    const defer = cleanupStack(t);
    const app = createServer({ pingIntervalMs: 0, maxConnections: 3 })
      .websocket('/a', echo())
      .websocket('/b', echo());
    const port = await listen(defer, app);
    const a1 = await rawWebSocket(defer, port, '/a');
    const b1 = await rawWebSocket(defer, port, '/b');
    const a2 = await rawWebSocket(defer, port, '/a');
    for (const client of [a1, b1, a2]) assert.equal(client.response.statusCode, 101);
    assert.equal(app.connectionCount, 3);
    assert.equal(app.routeConnectionCount('/a'), 2);
    assert.equal(app.routeConnectionCount('/b'), 1);
    await expect503(await rawWebSocket(defer, port, '/a'));
    await expect503(await rawWebSocket(defer, port, '/b'));
    assert.equal(app.connectionCount, 3);

    await closeCleanly(b1);
    await waitFor(() => app.connectionCount === 2, TIMEOUT_MS, 'the server count to drop to 2');
    assert.equal(app.routeConnectionCount('/b'), 0);
    const a3 = await rawWebSocket(defer, port, '/a');
    assert.equal(a3.response.statusCode, 101);
    await assertEchoes(a3, 'freed by another route');
    await expect503(await rawWebSocket(defer, port, '/b'));
  });

  it('counts upgrades still in an async hook against the route and server limits', async (t) => {
    const defer = cleanupStack(t);
    let hooksStarted = 0;
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => { release = resolve; });
    defer(() => release());
    const app = createServer({ pingIntervalMs: 0, maxConnections: 3 })
      .websocket('/held', { ...echo(), maxConnections: 2, async upgrade() { hooksStarted++; await gate; } })
      .websocket('/other', { ...echo(), async upgrade() { hooksStarted++; await gate; } });
    const port = await listen(defer, app);

    // Two upgrades wait in the route's hook: the route is full although nothing is open yet.
    const held = [openRawClient(port, LOOPBACK_HOST, { path: '/held' }), openRawClient(port, LOOPBACK_HOST, { path: '/held' })];
    for (const pending of held) pending.then((client) => defer(() => client.destroy()), () => {});
    await waitFor(() => hooksStarted === 2, TIMEOUT_MS, 'two hooks to start');
    assert.equal(app.connectionCount, 0);
    assert.equal(app.routeConnectionCount('/held'), 2);
    await expect503(await rawWebSocket(defer, port, '/held'));
    assert.equal(hooksStarted, 2, 'a refused upgrade never reaches the hook');

    // A third upgrade on another route waits too: now the server (limit 3) is full.
    const other = openRawClient(port, LOOPBACK_HOST, { path: '/other' });
    other.then((client) => defer(() => client.destroy()), () => {});
    await waitFor(() => hooksStarted === 3, TIMEOUT_MS, 'the third hook to start');
    await expect503(await rawWebSocket(defer, port, '/other'));

    release();
    const admitted = await Promise.all([...held, other]);
    for (const client of admitted) assert.equal(client.response.statusCode, 101, client.response.raw);
    assert.equal(app.connectionCount, 3);
    assert.equal(app.routeConnectionCount('/held'), 2);
    await assertEchoes(admitted[0]!, 'admitted after the hook');
    await expect503(await rawWebSocket(defer, port, '/other'));
  });
});

describe('per-route message and frame limits', () => {
  it('closes with 1009 on a route whose maxMessageBytes is below the message, and accepts it on a route above', async (t) => {
    const defer = cleanupStack(t);
    const app = createServer({ pingIntervalMs: 0, maxMessageBytes: 1000 })
      .websocket('/small', { ...echo(), maxMessageBytes: 100 })
      .websocket('/big', { ...echo(), maxMessageBytes: 10_000 })
      .websocket('/default', echo());
    const port = await listen(defer, app);
    const message = patternBytes(500);
    const large = patternBytes(5000);

    const big = await rawWebSocket(defer, port, '/big');
    await big.send(binary(large));
    assert.ok((await big.nextMessage(TIMEOUT_MS)).payload.equals(large), '5000 bytes pass on a route allowing 10000');

    const byDefault = await rawWebSocket(defer, port, '/default');
    await byDefault.send(binary(message));
    assert.ok((await byDefault.nextMessage(TIMEOUT_MS)).payload.equals(message), '500 bytes pass under the server\'s 1000');
    await byDefault.send(binary(large));
    assert.equal((await byDefault.expectClose(TIMEOUT_MS)).code, 1009, 'the server\'s own limit applies to a route without one');

    const small = await rawWebSocket(defer, port, '/small');
    await small.send(binary(message));
    const refused = await small.expectClose(TIMEOUT_MS);
    assert.equal(refused.code, 1009);
    assert.equal(refused.tcpClosed, true);

    // Reassembled size counts: three 60-byte fragments (180 bytes) pass frame checks but not a 100-byte message.
    const fragmented = await rawWebSocket(defer, port, '/small');
    await fragmented.send(Buffer.concat([text('a'.repeat(60), false), continuation('b'.repeat(60), false), continuation('c'.repeat(60))]));
    assert.equal((await fragmented.expectClose(TIMEOUT_MS)).code, 1009);

    await big.send(binary(message));
    assert.ok((await big.nextMessage(TIMEOUT_MS)).payload.equals(message), 'the other route\'s connection is untouched');
  });

  it('closes with 1009 on a route whose maxFrameBytes is below one frame, while a route above accepts it', async (t) => {
    const defer = cleanupStack(t);
    const app = createServer({ pingIntervalMs: 0, maxFrameBytes: 10_000 })
      .websocket('/tight', { ...echo(), maxFrameBytes: 64 })
      .websocket('/loose', { ...echo(), maxFrameBytes: 4096 });
    const port = await listen(defer, app);
    const payload = 'x'.repeat(100);

    const loose = await rawWebSocket(defer, port, '/loose');
    await loose.send(text(payload));
    assert.equal((await loose.nextMessage(TIMEOUT_MS)).payload.toString(), payload);

    // Many small frames make a message larger than one frame may be: fine on the tight route.
    const tightFragments = await rawWebSocket(defer, port, '/tight');
    await tightFragments.send(Buffer.concat([text('x'.repeat(50), false), continuation('x'.repeat(50))]));
    assert.equal((await tightFragments.nextMessage(TIMEOUT_MS)).payload.toString(), payload);

    const tight = await rawWebSocket(defer, port, '/tight');
    await tight.send(text(payload));
    const refused = await tight.expectClose(TIMEOUT_MS);
    assert.equal(refused.code, 1009);
    assert.equal(refused.tcpClosed, true);
  });
});
