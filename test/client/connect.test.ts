// connect(): the client role against our own server, and against tiny raw `net` servers that answer the
// handshake wrongly or never.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import * as net from 'node:net';
import { connect } from '../../src/client/connect.js';
import { createServer, type WebSocketRoute } from '../../src/server/server.js';
import type { WebSocket, WebSocketHandlers } from '../../src/transport/websocket.js';
import { HandshakeError } from '../../src/errors.js';
import { ReadyState } from '../../src/protocol/constants.js';
import { cleanupStack, withTimeout } from '../_support/cleanup.js';

const HOST = '127.0.0.1';
const TIMEOUT_MS = 3000;


/** Handlers that record messages and the close, with promise-returning waits. */
class Inbox {
  readonly messages: Array<{ data: Buffer; isBinary: boolean }> = [];
  closeInfo: { code: number; reason: string; wasClean: boolean } | undefined;
  #wakeups: Array<() => void> = [];

  readonly handlers: WebSocketHandlers<undefined> = {
    message: (_ws, data, isBinary) => { this.messages.push({ data: Buffer.from(data), isBinary }); this.#wake(); },
    close: (_ws, code, reason, wasClean) => { this.closeInfo = { code, reason, wasClean }; this.#wake(); },
  };

  #wake(): void {
    const wakeups = this.#wakeups;
    this.#wakeups = [];
    for (const wake of wakeups) wake();
  }

  async until<T>(take: () => T | undefined, what: string, ms = TIMEOUT_MS): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const value = take();
      if (value !== undefined) return value;
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(remaining, 10)); // also polls state set outside the inbox
        this.#wakeups.push(() => { clearTimeout(timer); resolve(); });
      });
    }
  }

  nextMessage(index: number): Promise<{ data: Buffer; isBinary: boolean }> {
    return this.until(() => this.messages[index], `message #${index}`);
  }

  closed(): Promise<{ code: number; reason: string; wasClean: boolean }> {
    return this.until(() => this.closeInfo, 'the close handler');
  }
}

async function startServer(defer: (cleanup: () => unknown) => void, routes: Record<string, WebSocketRoute<undefined>>): Promise<number> {
  const app = createServer({ pingIntervalMs: 0, closeTimeoutMs: 1000 });
  for (const [path, route] of Object.entries(routes)) app.websocket<undefined>(path, route);
  defer(() => app.close());
  return (await app.listen({ port: 0, host: HOST })).port;
}

const echo: WebSocketRoute<undefined> = { message(ws, data, isBinary) { ws.send(data, isBinary); } };

async function open(defer: (cleanup: () => unknown) => void, url: string, options: Parameters<typeof connect<undefined>>[1] = {}): Promise<WebSocket<undefined>> {
  const ws = await withTimeout(connect<undefined>(url, options), TIMEOUT_MS, `connect(${url})`);
  defer(() => ws.terminate());
  return ws;
}

/** A raw TCP server that hands each request head (once complete) to `answer`. */
async function rawHttpServer(defer: (cleanup: () => unknown) => void, answer: (head: string, socket: net.Socket) => void): Promise<{ port: number; sockets: net.Socket[] }> {
  const sockets: net.Socket[] = [];
  const server = net.createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => {});
    let received = '';
    socket.setEncoding('latin1').on('data', (chunk: string) => {
      const before = received.length;
      received += chunk;
      if (before < received.length && received.includes('\r\n\r\n') && !received.slice(0, before).includes('\r\n\r\n')) answer(received, socket);
    });
  });
  defer(() => new Promise<void>((resolve) => { for (const socket of sockets) socket.destroy(); server.close(() => resolve()); }));
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  return { port: (server.address() as net.AddressInfo).port, sockets };
}

function socketClosed(socket: net.Socket): Promise<void> {
  return socket.destroyed ? Promise.resolve() : new Promise((resolve) => socket.once('close', () => resolve()));
}

async function expectHandshakeError(promise: Promise<unknown>, code: string, status: number): Promise<HandshakeError> {
  let caught: unknown;
  try {
    await withTimeout(promise, TIMEOUT_MS * 2, 'connect() to settle');
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof HandshakeError, `expected a HandshakeError, got ${String(caught)}`);
  assert.equal(caught.code, code);
  assert.equal(caught.status, status);
  return caught;
}

describe('connect() against our server', () => {
  it('echoes text as text and binary as binary', async (t) => {
    const defer = cleanupStack(t);
    const port = await startServer(defer, { '/echo': echo });
    const inbox = new Inbox();
    const ws = await open(defer, `ws://${HOST}:${port}/echo`, { handlers: inbox.handlers });
    assert.equal(ws.readyState, ReadyState.Open);
    assert.equal(ws.url, `ws://${HOST}:${port}/echo`);

    assert.equal(ws.send('héllo wörld'), true);
    const first = await inbox.nextMessage(0);
    assert.equal(first.isBinary, false);
    assert.equal(first.data.toString('utf8'), 'héllo wörld');

    const bytes = Buffer.from([0, 0xff, 0x80, 0x7f]);
    ws.send(bytes);
    const second = await inbox.nextMessage(1);
    assert.equal(second.isBinary, true);
    assert.ok(second.data.equals(bytes));

    ws.send('text sent as binary', true);
    ws.send(Buffer.from('bytes sent as text'), false);
    const third = await inbox.nextMessage(2);
    const fourth = await inbox.nextMessage(3);
    assert.deepEqual([third.isBinary, third.data.toString()], [true, 'text sent as binary']);
    assert.deepEqual([fourth.isBinary, fourth.data.toString()], [false, 'bytes sent as text']);

    const big = Buffer.alloc(200_000, 7);
    ws.send(big);
    assert.ok((await inbox.nextMessage(4)).data.equals(big), 'a 200 kB message round-trips');
  });

  it('delivers a message the server sends from open (possibly in the same TCP read as the 101)', async (t) => {
    const defer = cleanupStack(t);
    const port = await startServer(defer, { '/hello': { open(ws) { ws.send('welcome'); } } });
    const inbox = new Inbox();
    await open(defer, `ws://${HOST}:${port}/hello`, { handlers: inbox.handlers });
    const message = await inbox.nextMessage(0);
    assert.deepEqual([message.isBinary, message.data.toString()], [false, 'welcome']);
  });

  it('throws RangeError synchronously for a close code or reason that may not be sent', async (t) => {
    const defer = cleanupStack(t);
    const port = await startServer(defer, { '/echo': echo });
    const ws = await open(defer, `ws://${HOST}:${port}/echo`);
    assert.throws(() => ws.close(1005), RangeError, '1005 is reserved (RFC 6455 §7.4.1)');
    assert.throws(() => ws.close(1000, 'x'.repeat(124)), RangeError, 'a reason over 123 bytes does not fit a control frame');
    assert.equal(ws.readyState, ReadyState.Open, 'a refused close() leaves the connection open');
  });

  it('negotiates a subprotocol the server picks from those offered', async (t) => {
    const defer = cleanupStack(t);
    let serverProtocol: string | undefined;
    const port = await startServer(defer, { '/chat': { protocols: ['chat.v2', 'chat.v1'], open(ws) { serverProtocol = ws.protocol; } } });
    const ws = await open(defer, `ws://${HOST}:${port}/chat`, { protocols: ['chat.v1', 'chat.v2'] });
    assert.equal(ws.protocol, 'chat.v2');
    assert.equal(serverProtocol, 'chat.v2');
    const none = await open(defer, `ws://${HOST}:${port}/chat`, { protocols: ['other'] });
    assert.equal(none.protocol, '', 'no protocol when the server speaks none of those offered');
  });

  it('rejects with HandshakeError status 404 for a path with no route', async (t) => {
    const defer = cleanupStack(t);
    const port = await startServer(defer, { '/echo': echo });
    await expectHandshakeError(connect(`ws://${HOST}:${port}/missing`), 'ERR_HANDSHAKE_STATUS', 404);
  });

  it('delivers the close code and reason of a client-initiated close to both sides', async (t) => {
    const defer = cleanupStack(t);
    let serverClose: { code: number; reason: string; wasClean: boolean } | undefined;
    const port = await startServer(defer, { '/echo': { ...echo, close(_ws, code, reason, wasClean) { serverClose = { code, reason, wasClean }; } } });
    const inbox = new Inbox();
    const ws = await open(defer, `ws://${HOST}:${port}/echo`, { handlers: inbox.handlers });
    ws.close(4001, 'client done');
    assert.deepEqual(await inbox.closed(), { code: 4001, reason: 'client done', wasClean: true });
    await inbox.until(() => serverClose, 'the server close handler');
    assert.deepEqual(serverClose, { code: 4001, reason: 'client done', wasClean: true });
    assert.equal(ws.readyState, ReadyState.Closed);
    assert.equal(ws.send('too late'), false, 'send() after close reports it sent nothing');
  });

  it('delivers the close code and reason of a server-initiated close to both sides', async (t) => {
    const defer = cleanupStack(t);
    let serverClose: { code: number; reason: string; wasClean: boolean } | undefined;
    const port = await startServer(defer, {
      '/bye': {
        message(ws, data) { if (data.toString() === 'close me') ws.close(4002, 'server done'); },
        close(_ws, code, reason, wasClean) { serverClose = { code, reason, wasClean }; },
      },
    });
    const inbox = new Inbox();
    const ws = await open(defer, `ws://${HOST}:${port}/bye`, { handlers: inbox.handlers });
    ws.send('close me');
    assert.deepEqual(await inbox.closed(), { code: 4002, reason: 'server done', wasClean: true });
    await inbox.until(() => serverClose, 'the server close handler');
    assert.deepEqual(serverClose, { code: 4002, reason: 'server done', wasClean: true });
  });
});

describe('connect() refuses bad servers', () => {
  it('rejects a 101 answer with a wrong Sec-WebSocket-Accept and drops the socket', async (t) => {
    const defer = cleanupStack(t);
    const server = await rawHttpServer(defer, (_head, socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
        + 'Sec-WebSocket-Accept: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
    });
    await expectHandshakeError(connect(`ws://${HOST}:${server.port}/`), 'ERR_HANDSHAKE_ACCEPT', 101);
    assert.equal(server.sockets.length, 1);
    await withTimeout(socketClosed(server.sockets[0]!), TIMEOUT_MS, 'the client to drop the connection');
  });

  it('rejects a 101 answer that selects a subprotocol the client did not offer', async (t) => {
    const defer = cleanupStack(t);
    const server = await rawHttpServer(defer, (head, socket) => {
      const key = /sec-websocket-key:\s*(\S+)/i.exec(head)?.[1] ?? '';
      const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n`
        + 'Sec-WebSocket-Protocol: surprise\r\n\r\n');
    });
    await expectHandshakeError(connect(`ws://${HOST}:${server.port}/`, { protocols: ['chat'] }), 'ERR_HANDSHAKE_PROTOCOL', 101);
  });

  it('rejects with ERR_HANDSHAKE_TIMEOUT when the server never answers, and closes the connection', async (t) => {
    const defer = cleanupStack(t);
    const server = await rawHttpServer(defer, () => { /* never answer */ });
    const startedAt = Date.now();
    await expectHandshakeError(connect(`ws://${HOST}:${server.port}/`, { handshakeTimeoutMs: 200 }), 'ERR_HANDSHAKE_TIMEOUT', 0);
    const elapsedMs = Date.now() - startedAt;
    assert.ok(elapsedMs >= 100, `timed out after ${elapsedMs} ms, before the 200 ms handshake timeout`);
    await withTimeout((async () => {
      while (server.sockets.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      await socketClosed(server.sockets[0]!);
    })(), TIMEOUT_MS, 'the client to close the connection it gave up on');
  });

  it('rejects a URL that is not ws:// or wss://, or that has a fragment, with TypeError', async () => {
    await assert.rejects(connect('http://127.0.0.1:1/'), TypeError);
    await assert.rejects(connect('ws://127.0.0.1:1/#fragment'), TypeError);
  });

  it('rejects with ECONNREFUSED when nothing listens on the port', async () => {
    const closedServer = net.createServer();
    await new Promise<void>((resolve) => closedServer.listen(0, HOST, resolve));
    const freePort = (closedServer.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => closedServer.close(() => resolve()));
    await assert.rejects(withTimeout(connect(`ws://${HOST}:${freePort}/`), TIMEOUT_MS, 'connect to a closed port'), (error: NodeJS.ErrnoException) => error.code === 'ECONNREFUSED');
  });
});
