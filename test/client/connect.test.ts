// connect(): the client role against our own server, and against tiny raw `net` servers that answer the
// handshake wrongly or never.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { connect } from '../../src/client/connect.js';
import type { WebSocketRoute } from '../../src/server/server.js';
import type { WebSocket, WebSocketHandlers } from '../../src/transport/websocket.js';
import { HandshakeError, SwitchyardError } from '../../src/errors.js';
import { ReadyState } from '../../src/protocol/constants.js';
import { cleanupStack, withTimeout } from '../_support/cleanup.js';
import { HOST, TIMEOUT_MS, closedPort, echo, expectHandshakeError, rawHttpServer, rejection, socketClosed, startServer as startApp, type Defer } from './_servers.js';

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

async function startServer(defer: Defer, routes: Record<string, WebSocketRoute<undefined>>): Promise<number> {
  return (await startApp(defer, routes)).port;
}

async function open(defer: Defer, url: string, options: Parameters<typeof connect<undefined>>[1] = {}): Promise<WebSocket<undefined>> {
  const ws = await withTimeout(connect<undefined>(url, options), TIMEOUT_MS, `connect(${url})`);
  defer(() => ws.terminate());
  return ws;
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

  it('rejects with SwitchyardError code ECONNREFUSED naming the URL, with node\'s error as cause, when nothing listens', async () => {
    const port = await closedPort();
    const error = await rejection(connect(`ws://${HOST}:${port}/x`), 'connect to a closed port');
    assert.ok(error instanceof SwitchyardError && !(error instanceof HandshakeError), `got ${String(error)}`);
    assert.equal(error.code, 'ECONNREFUSED');
    assert.match(error.message, new RegExp(`ws://${HOST}:${port}/x.*connection refused`));
    assert.equal((error.cause as NodeJS.ErrnoException).code, 'ECONNREFUSED');
  });

  it('rejects with the resolver\'s code and "cannot resolve host name" when DNS has no such host', async () => {
    const error = await rejection(connect('ws://no-such-host.invalid/'), 'connect to an unresolvable host');
    assert.ok(error instanceof SwitchyardError);
    assert.ok(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME'].includes(error.code), error.code);
    assert.match(error.message, /cannot resolve host name no-such-host\.invalid/);
    assert.ok(error.cause instanceof Error);
  });

  it('rejects with ECONNRESET "closed the connection before answering" when the server hangs up on the request', async (t) => {
    const defer = cleanupStack(t);
    const server = await rawHttpServer(defer, (_head, socket) => socket.destroy());
    const error = await rejection(connect(`ws://${HOST}:${server.port}/`), 'connect to a server that hangs up');
    assert.ok(error instanceof SwitchyardError);
    assert.equal(error.code, 'ECONNRESET');
    assert.match(error.message, /closed the connection before answering the handshake/);
    assert.ok(error.cause instanceof Error);
  });

  it('puts the response headers on a HandshakeError for a refused upgrade', async (t) => {
    const defer = cleanupStack(t);
    const server = await rawHttpServer(defer, (_head, socket) => {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    });
    const error = await expectHandshakeError(connect(`ws://${HOST}:${server.port}/`), 'ERR_HANDSHAKE_STATUS', 503);
    assert.equal(error.headers?.['retry-after'], '7');
    assert.equal(error.location, undefined);
  });
});

describe('connect() URLs and arguments', () => {
  it('takes http:// and https:// URLs as ws:// and wss://, and ws.url reports the ws:// form', async (t) => {
    const defer = cleanupStack(t);
    const port = await startServer(defer, { '/echo': echo });
    const ws = await open(defer, `http://${HOST}:${port}/echo?room=1`);
    assert.equal(ws.url, `ws://${HOST}:${port}/echo?room=1`);
    const secure = await rejection(connect(`https://${HOST}:${port}/echo`, { handshakeTimeoutMs: 2000 }), 'https:// to a plain server');
    assert.ok(!(secure instanceof TypeError), 'https:// is dialled (as wss://), not refused as a URL');
  });

  it('rejects, before any I/O, a URL of another scheme, with a fragment, or not a URL at all, with TypeError', async () => {
    for (const url of ['ftp://127.0.0.1:1/', 'ws://127.0.0.1:1/#fragment', 'ws://127.0.0.1:1/#', 'not a url', 'ws+unix://host/x.sock:/', 'ws+unix:///x.sock:nopath']) {
      await assert.rejects(connect(url), TypeError, url);
    }
    const pending = connect('ftp://x/');
    pending.catch(() => {});
    assert.ok(pending instanceof Promise, 'bad URLs reject; connect() itself does not throw');
  });

  it('rejects bad options with TypeError or RangeError before any I/O', async () => {
    const url = `ws://${HOST}:1/`;
    await assert.rejects(connect(url, { followRedirects: -1 }), RangeError);
    await assert.rejects(connect(url, { followRedirects: 1.5 }), RangeError);
    await assert.rejects(connect(url, { handshakeTimeoutMs: 0 }), RangeError);
    await assert.rejects(connect(url, { inboxHighWaterBytes: 0 }), RangeError);
    await assert.rejects(connect(url, { socketPath: '' }), TypeError);
    await assert.rejects(connect('ws+unix:///tmp/x.sock:/', { socketPath: '/tmp/y.sock' }), TypeError);
    await assert.rejects(connect(url, { protocols: ['two words'] }), TypeError);
    await assert.rejects(connect(url, { headers: { 'X-Bad': 'line\r\nbreak' } }), TypeError);
  });

  it('sends extra headers, Origin and URL credentials (as Basic), and keeps its own handshake fields', async (t) => {
    const defer = cleanupStack(t);
    const seen: Array<Record<string, string | string[] | undefined>> = [];
    const port = await startServer(defer, { '/h': { upgrade(req) { seen.push(req.headers); } } });
    await open(defer, `ws://alice:s%3Acret@${HOST}:${port}/h`, {
      origin: 'https://app.example', headers: { 'X-Trace': 'abc', 'sec-websocket-version': '8', Upgrade: 'h2c' },
    });
    const headers = seen[0]!;
    assert.equal(headers['x-trace'], 'abc');
    assert.equal(headers['origin'], 'https://app.example');
    assert.equal(headers['authorization'], `Basic ${Buffer.from('alice:s:cret').toString('base64')}`);
    assert.equal(headers['sec-websocket-version'], '13');
    assert.equal(headers['upgrade'], 'websocket');

    await open(defer, `ws://alice:pw@${HOST}:${port}/h`, { headers: { Authorization: 'Bearer token' } });
    assert.equal(seen[1]!['authorization'], 'Bearer token', 'an Authorization header beats URL credentials');
  });
});
