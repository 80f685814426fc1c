// I/O tests for createServer(): one port for files and WebSocket routes, the upgrade decisions (404, 426,
// subprotocols), publish, close(), failures that stay on one connection, and connectionCount. The peers are raw
// `net` clients (test/_support/raw-client.ts) so the server is never checked with its own code.
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { promises as fsp } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { createServer, type Switchyard } from '../../src/server/server.js';
import type { WebSocket } from '../../src/transport/websocket.js';
import { ProtocolError } from '../../src/errors.js';
import { Opcode, binary, close, text, unmaskedFrame } from '../_support/frames.js';
import type { RawClient } from '../_support/raw-client.js';
import { cleanupStack, withTimeout, waitFor } from '../_support/cleanup.js';
import { LOOPBACK_HOST, listen, rawWebSocket } from '../_support/embedded-server.js';

const TIMEOUT_MS = 3000;


interface HttpResult { status: number; headers: http.IncomingHttpHeaders; body: string }

function httpGet(port: number, urlPath: string): Promise<HttpResult> {
  return withTimeout(new Promise((resolve, reject) => {
    const request = http.get({ host: LOOPBACK_HOST, port, path: urlPath, agent: false, headers: { Connection: 'close' } }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => { body += chunk; });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
      response.on('error', reject);
    });
    request.on('error', reject);
  }), TIMEOUT_MS, `GET ${urlPath}`);
}

async function expectText(client: RawClient, expected: string): Promise<void> {
  const message = await client.nextMessage(TIMEOUT_MS);
  assert.equal(message.opcode, Opcode.text);
  assert.equal(message.payload.toString('utf8'), expected);
}

function echoRoute(): { message(ws: WebSocket<undefined>, data: Buffer, isBinary: boolean): void } {
  return { message(ws, data, isBinary) { ws.send(data, isBinary); } };
}

describe('createServer: static files and WebSocket routes share one port', () => {
  it('serves GET / from root and upgrades /echo on the same port', async (t) => {
    const defer = cleanupStack(t);
    const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'switchyard-server-'));
    defer(() => fsp.rm(root, { recursive: true, force: true }));
    await fsp.writeFile(path.join(root, 'index.html'), '<h1>switchyard</h1>\n');
    const app = createServer({ root, pingIntervalMs: 0 }).websocket('/echo', echoRoute());
    const port = await listen(defer, app);

    const page = await httpGet(port, '/');
    assert.equal(page.status, 200);
    assert.equal(page.body, '<h1>switchyard</h1>\n');
    assert.match(String(page.headers['content-type']), /^text\/html/);

    const client = await rawWebSocket(defer, port, '/echo');
    assert.equal(client.response.statusCode, 101);
    assert.equal(client.socket.remotePort, port, 'the WebSocket must be on the port that served the file');
    await client.send(text('same port'));
    await expectText(client, 'same port');
    await client.send(binary(Buffer.from([0, 1, 2, 255])));
    const echoed = await client.nextMessage(TIMEOUT_MS);
    assert.equal(echoed.opcode, Opcode.binary);
    assert.deepEqual([...echoed.payload], [0, 1, 2, 255]);

    const missing = await httpGet(port, '/no-such-file.txt');
    assert.equal(missing.status, 404);
  });

  it('answers an upgrade for a path with no WebSocket route with 404 and never 101', async (t) => {
    const defer = cleanupStack(t);
    const app = createServer({ pingIntervalMs: 0 }).websocket('/echo', echoRoute());
    const port = await listen(defer, app);
    const client = await rawWebSocket(defer, port, '/nope');
    assert.equal(client.response.statusCode, 404, `expected 404, got:\n${client.response.raw}`);
    assert.doesNotMatch(client.response.raw, /\b101\b|Sec-WebSocket-Accept/i);
    // The server ends the exchange; nothing is upgraded and no frame ever arrives.
    await withTimeout(client.closed, TIMEOUT_MS, 'the server to close the rejected socket');
    assert.equal(client.receivedFrames.length, 0);
    assert.equal(app.connectionCount, 0);
  });

  it('answers a plain GET to a WebSocket route with 426 Upgrade Required', async (t) => {
    const defer = cleanupStack(t);
    const app = createServer({ pingIntervalMs: 0 }).websocket('/echo', echoRoute());
    const port = await listen(defer, app);
    const result = await httpGet(port, '/echo');
    assert.equal(result.status, 426);
    assert.equal(String(result.headers['upgrade']).toLowerCase(), 'websocket');
    assert.equal(result.headers['sec-websocket-version'], '13');
    const withQuery = await httpGet(port, '/echo?x=1');
    assert.equal(withQuery.status, 426, 'the query string is not part of the route path');
  });

  it('answers a plain GET with 404 when there is no root and no route', async (t) => {
    const defer = cleanupStack(t);
    const port = await listen(defer, createServer({ pingIntervalMs: 0 }));
    assert.equal((await httpGet(port, '/')).status, 404);
  });
});

describe('createServer: subprotocol selection through a route\'s protocols', () => {
  async function negotiate(t: TestContext, offered: string | null): Promise<{ header: string | undefined; serverProtocol: string }> {
    const defer = cleanupStack(t);
    let serverProtocol: string | undefined;
    const app = createServer({ pingIntervalMs: 0 }).websocket('/chat', {
      protocols: ['chat.v2', 'chat.v1'],
      open(ws) { serverProtocol = ws.protocol; },
    });
    const port = await listen(defer, app);
    const client = await rawWebSocket(defer, port, '/chat', { headers: { 'Sec-WebSocket-Protocol': offered } });
    assert.equal(client.response.statusCode, 101, client.response.raw);
    assert.notEqual(serverProtocol, undefined, 'open ran before the 101 reached the client');
    return { header: client.response.headers.get('sec-websocket-protocol'), serverProtocol: serverProtocol! };
  }

  it('selects the route\'s most preferred protocol among those the client offered', async (t) => {
    const result = await negotiate(t, 'chat.v1, chat.v2');
    assert.equal(result.header, 'chat.v2');
    assert.equal(result.serverProtocol, 'chat.v2');
  });

  it('selects the only offered protocol the route speaks', async (t) => {
    const result = await negotiate(t, 'other, chat.v1');
    assert.equal(result.header, 'chat.v1');
    assert.equal(result.serverProtocol, 'chat.v1');
  });

  it('selects none (no Sec-WebSocket-Protocol header, ws.protocol "") when nothing offered matches', async (t) => {
    const result = await negotiate(t, 'other');
    assert.equal(result.header, undefined);
    assert.equal(result.serverProtocol, '');
  });

  it('selects none when the client offers nothing', async (t) => {
    const result = await negotiate(t, null);
    assert.equal(result.header, undefined);
    assert.equal(result.serverProtocol, '');
  });
});

describe('createServer: publish', () => {
  async function topicServer(t: TestContext): Promise<{ app: Switchyard; port: number; defer: (cleanup: () => unknown) => void }> {
    const defer = cleanupStack(t);
    const app = createServer({ pingIntervalMs: 0 }).websocket('/news', {
      open(ws) { ws.subscribe('news'); },
      message(ws, data) {
        if (data.toString() === 'unsubscribe') {
          ws.unsubscribe('news');
          ws.send('unsubscribed');
        }
      },
    });
    return { app, port: await listen(defer, app), defer };
  }

  it('reaches every subscriber exactly once and not an unsubscribed connection', async (t) => {
    const { app, port, defer } = await topicServer(t);
    const a = await rawWebSocket(defer, port, '/news');
    const b = await rawWebSocket(defer, port, '/news');
    const leaver = await rawWebSocket(defer, port, '/news');
    await leaver.send(text('unsubscribe'));
    await expectText(leaver, 'unsubscribed');

    assert.equal(app.publish('news', 'headline'), 2, 'publish returns how many subscribers it reached');
    await expectText(a, 'headline');
    await expectText(b, 'headline');
    assert.equal(app.publish('news', Buffer.from([7, 8, 9])), 2);
    for (const client of [a, b]) {
      const message = await client.nextMessage(TIMEOUT_MS);
      assert.equal(message.opcode, Opcode.binary);
      assert.deepEqual([...message.payload], [7, 8, 9]);
    }
    // Exactly once: nothing further arrives at the subscribers, and nothing at all at the one that left.
    await Promise.all([a.expectSilence(200), b.expectSilence(200), leaver.expectSilence(200)]);
    assert.equal(app.publish('other-topic', 'nobody'), 0);
  });

  it('sends a string published with isBinary=true as a binary message', async (t) => {
    const { app, port, defer } = await topicServer(t);
    const a = await rawWebSocket(defer, port, '/news');
    assert.equal(app.publish('news', 'bytes', true), 1);
    const message = await a.nextMessage(TIMEOUT_MS);
    assert.equal(message.opcode, Opcode.binary);
    assert.equal(message.payload.toString(), 'bytes');
  });

  it('stops counting a connection once it has closed', async (t) => {
    const { app, port, defer } = await topicServer(t);
    const stays = await rawWebSocket(defer, port, '/news');
    const goes = await rawWebSocket(defer, port, '/news');
    await goes.send(close(1000));
    await goes.expectClose(TIMEOUT_MS);
    await waitFor(() => app.connectionCount === 1, TIMEOUT_MS, 'the closed connection to be forgotten');
    assert.equal(app.publish('news', 'after'), 1);
    await expectText(stays, 'after');
  });
});

describe('createServer: close()', () => {
  it('closes every WebSocket with 1001 and resolves once the peers have answered', async (t) => {
    const defer = cleanupStack(t);
    const closes: Array<{ code: number; wasClean: boolean }> = [];
    // A close timeout far beyond the test's waits: close() must resolve because the peers answered.
    const app = createServer({ pingIntervalMs: 0, closeTimeoutMs: 60_000 }).websocket('/echo', {
      ...echoRoute(),
      close(_ws, code, _reason, wasClean) { closes.push({ code, wasClean }); },
    });
    const port = await listen(defer, app);
    const clients = [await rawWebSocket(defer, port, '/echo'), await rawWebSocket(defer, port, '/echo')];
    assert.equal(app.connectionCount, 2);

    const closing = app.close();
    for (const client of clients) {
      const frame = await client.nextFrame(TIMEOUT_MS);
      assert.equal(frame.opcode, Opcode.close);
      assert.equal(frame.payload.readUInt16BE(0), 1001);
      await client.send(close(1001));
    }
    await withTimeout(closing, TIMEOUT_MS, 'app.close() after every peer answered');
    for (const client of clients) await withTimeout(client.closed, TIMEOUT_MS, 'TCP close');
    assert.equal(app.connectionCount, 0);
    assert.deepEqual(closes, [{ code: 1001, wasClean: true }, { code: 1001, wasClean: true }]);
    assert.equal(app.httpServer.listening, false);
  });

  it('drops a peer that never answers after closeTimeoutMs and still resolves', async (t) => {
    const defer = cleanupStack(t);
    const app = createServer({ pingIntervalMs: 0, closeTimeoutMs: 200 }).websocket('/echo', echoRoute());
    const port = await listen(defer, app);
    const silent = await rawWebSocket(defer, port, '/echo');
    const closing = app.close();
    const frame = await silent.nextFrame(TIMEOUT_MS);
    assert.equal(frame.opcode, Opcode.close);
    assert.equal(frame.payload.readUInt16BE(0), 1001);
    await withTimeout(closing, 5000, 'app.close() with a peer that never answers');
    await withTimeout(silent.closed, TIMEOUT_MS, 'the silent peer to be dropped');
  });

  it('returns the same promise from repeated calls and resolves with no connections', async (t) => {
    const defer = cleanupStack(t);
    const app = createServer({ pingIntervalMs: 0 }).websocket('/echo', echoRoute());
    await listen(defer, app);
    const first = app.close();
    assert.equal(app.close(), first, 'a second close() returns the same promise');
    await withTimeout(first, TIMEOUT_MS, 'close() with no connections');
  });
  it('resolves within the close timeout even when a rejected upgrade\'s peer keeps its socket open', {
  }, async (t) => {
    const defer = cleanupStack(t);
    const app = createServer({ pingIntervalMs: 0, closeTimeoutMs: 200 }).websocket('/echo', echoRoute());
    const port = await listen(defer, app);
    // A peer that is answered 404 but neither reads the answer nor closes its side.
    const socket = net.connect({ port, host: LOOPBACK_HOST, allowHalfOpen: true });
    defer(() => socket.destroy());
    socket.on('error', () => {});
    const request = `GET /nope HTTP/1.1\r\nHost: ${LOOPBACK_HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`
      + 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
    await new Promise<void>((resolve) => socket.write(request, () => resolve()));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const startedAt = Date.now();
    await withTimeout(app.close(), 10_000, 'app.close()');
    const elapsedMs = Date.now() - startedAt;
    assert.ok(elapsedMs < 2000, `close() took ${elapsedMs} ms with closeTimeoutMs 200`);
  });
});

describe('createServer: failures stay on their own connection', () => {
  it('closes a connection whose message handler throws with 1011 and keeps serving the others', async (t) => {
    const defer = cleanupStack(t);
    const errors: Error[] = [];
    const app = createServer({ pingIntervalMs: 0 }).websocket('/echo', {
      message(ws, data, isBinary) {
        if (data.toString() === 'throw') throw new Error('handler failed');
        ws.send(data, isBinary);
      },
      error(_ws, error) { errors.push(error); },
    });
    const port = await listen(defer, app);
    const victim = await rawWebSocket(defer, port, '/echo');
    const bystander = await rawWebSocket(defer, port, '/echo');

    await victim.send(text('throw'));
    const result = await victim.expectClose(TIMEOUT_MS);
    assert.equal(result.code, 1011);
    assert.equal(result.tcpClosed, true, 'the failed connection is closed at the TCP level');
    assert.equal(errors.length, 1);
    assert.equal(errors[0]?.message, 'handler failed');

    await bystander.send(text('still here'));
    await expectText(bystander, 'still here');
    const fresh = await rawWebSocket(defer, port, '/echo');
    await fresh.send(text('new connection'));
    await expectText(fresh, 'new connection');
  });

  it('closes a connection whose open handler throws with 1011 and keeps serving the others', {
  }, async (t) => {
    const defer = cleanupStack(t);
    const app = createServer({ pingIntervalMs: 0, closeTimeoutMs: 200 })
      .websocket('/bad', { open() { throw new Error('open failed'); } })
      .websocket('/echo', echoRoute());
    const port = await listen(defer, app);
    const victim = await rawWebSocket(defer, port, '/bad');
    const result = await victim.expectClose(1000);
    assert.equal(result.code, 1011);
    const bystander = await rawWebSocket(defer, port, '/echo');
    await bystander.send(text('ok'));
    await expectText(bystander, 'ok');
  });

  it('a protocol violation on one connection never disturbs another connection\'s messages', async (t) => {
    const defer = cleanupStack(t);
    const errors: Error[] = [];
    const app = createServer({ pingIntervalMs: 0 }).websocket('/echo', { ...echoRoute(), error(_ws, error) { errors.push(error); } });
    const port = await listen(defer, app);
    const offender = await rawWebSocket(defer, port, '/echo');
    const bystander = await rawWebSocket(defer, port, '/echo');

    // The bystander's message is half sent when the offender breaks the protocol (an unmasked client frame).
    const message = text('a message that straddles the other connection\'s failure');
    await bystander.send(message.subarray(0, 10));
    await offender.send(unmaskedFrame({ opcode: Opcode.text, payload: 'not masked' }));
    const failure = await offender.expectClose(TIMEOUT_MS);
    assert.equal(failure.code, 1002);
    assert.equal(failure.tcpClosed, true);
    assert.ok(errors[0] instanceof ProtocolError, 'the error handler receives the ProtocolError');
    assert.equal(errors[0].closeCode, 1002);

    await bystander.send(message.subarray(10));
    await expectText(bystander, 'a message that straddles the other connection\'s failure');
    await bystander.send(text('and the next one'));
    await expectText(bystander, 'and the next one');
    assert.equal(errors.length, 1);
  });
});

describe('createServer: connectionCount', () => {
  it('counts open WebSockets across routes and forgets closed ones', async (t) => {
    const defer = cleanupStack(t);
    const app = createServer({ pingIntervalMs: 0 }).websocket('/a', echoRoute()).websocket('/b', echoRoute());
    const port = await listen(defer, app);
    assert.equal(app.connectionCount, 0);
    const first = await rawWebSocket(defer, port, '/a');
    const second = await rawWebSocket(defer, port, '/b');
    const rejected = await rawWebSocket(defer, port, '/c');
    assert.equal(rejected.response.statusCode, 404);
    assert.equal(app.connectionCount, 2, 'a rejected upgrade is not a connection');

    await first.send(close(1000));
    await first.expectClose(TIMEOUT_MS);
    await waitFor(() => app.connectionCount === 1, TIMEOUT_MS, 'connectionCount to drop to 1 after a clean close');
    second.destroy(); // abrupt: no closing handshake
    await waitFor(() => app.connectionCount === 0, TIMEOUT_MS, 'connectionCount to drop to 0 after a reset');
  });
});

describe('createServer: misuse throws synchronously', () => {
  it('throws RangeError naming the option for a bad value', () => {
    assert.throws(() => createServer({ pingIntervalMs: -1 }), (error: Error) => error instanceof RangeError && /pingIntervalMs/.test(error.message));
    assert.throws(() => createServer({ maxMessageBytes: 0 }), (error: Error) => error instanceof RangeError && /maxMessageBytes/.test(error.message));
    assert.throws(() => createServer({ handshakeTimeoutMs: 1.5 }), (error: Error) => error instanceof RangeError && /handshakeTimeoutMs/.test(error.message));
    assert.throws(() => createServer().websocket('/x', { idleTimeoutMs: Number.NaN }), (error: Error) => error instanceof RangeError && /idleTimeoutMs/.test(error.message));
  });

  it('throws TypeError for a route path without a leading slash or a duplicate route', () => {
    const app = createServer();
    assert.throws(() => app.websocket('echo', {}), TypeError);
    app.websocket('/echo', {});
    assert.throws(() => app.websocket('/echo', {}), TypeError);
  });
});
