// The reverse proxy for WebSocket, in process: a switchyard with proxyWebSocketRoute() at /legacy/* in front of
// a `ws` WebSocketServer (a peer nobody here wrote) or another switchyard, with our connect() (and a `ws`
// client where it must send what ours will not) as the client. The backend opens before the 101; what the
// backend saw; messages both ways; pings per hop; the close-code matrix; 502/504/4xx; backpressure; no
// sockets left open.
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import * as net from 'node:net';
import { once } from 'node:events';
import WsClient, { WebSocketServer, type WebSocket as WsSocket } from 'ws';
import { createServer, type Switchyard, type WebSocketRoute } from '../../src/server/server.js';
import type { ServerOptions } from '../../src/server/options.js';
import { connect, type ConnectOptions } from '../../src/client/connect.js';
import type { WebSocket } from '../../src/transport/websocket.js';
import { HandshakeError } from '../../src/errors.js';
import { proxyHttpHandler, proxyWebSocketRoute, type ProxyOptions, type ProxyWebSocketData } from '../../src/bridges/proxy.js';
import { cleanupStack, sleep, waitFor } from '../_support/cleanup.js';
import { needPeer } from '../_support/peers.js';
import { freePort, openFdCount } from '../_support/resources.js';
import { makeCertificate, OPENSSL_MISSING } from '../config/_certificates.js';
import { AsyncQueue, patternBytes, withTimeout } from '../interop/_wait.js';

const HOST = '127.0.0.1';
const TIMEOUT_MS = 5000;
type Defer = (cleanup: () => unknown) => void;

interface Received { data: Buffer; isBinary: boolean }
interface Closed { code: number; reason: string }

/** One connection as the `ws` backend sees it. */
interface BackendPeer {
  readonly socket: WsSocket;
  readonly request: IncomingMessage;
  readonly messages: AsyncQueue<Received>;
  readonly closes: AsyncQueue<Closed>;
  readonly pings: Buffer[];
}

interface WsBackend {
  readonly port: number;
  readonly peers: AsyncQueue<BackendPeer>;
  readonly server: WebSocketServer;
}

interface WsBackendOptions {
  handleProtocols?: (protocols: Set<string>) => string | false;
  verifyClient?: (info: { req: IncomingMessage }, callback: (ok: boolean, status?: number) => void) => void;
  onConnection?: (socket: WsSocket, request: IncomingMessage) => void;
}

async function startWsBackend(defer: Defer, options: WsBackendOptions = {}): Promise<WsBackend> {
  const httpServer = createHttpServer();
  // Every TCP connection, so that cleanup also ends handshakes the backend never answered.
  const sockets = new Set<net.Socket>();
  httpServer.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const server = new WebSocketServer({
    server: httpServer, perMessageDeflate: false, maxPayload: 64 << 20,
    ...(options.handleProtocols !== undefined && { handleProtocols: options.handleProtocols }),
    ...(options.verifyClient !== undefined && { verifyClient: options.verifyClient }),
  });
  httpServer.listen(0, HOST);
  await once(httpServer, 'listening');
  const peers = new AsyncQueue<BackendPeer>();
  server.on('connection', (socket, request) => {
    const peer: BackendPeer = { socket, request, messages: new AsyncQueue(), closes: new AsyncQueue(), pings: [] };
    socket.on('message', (data, isBinary) => peer.messages.push({ data: Buffer.from(data as Buffer), isBinary }));
    socket.on('close', (code, reason) => peer.closes.push({ code, reason: reason.toString() }));
    socket.on('ping', (data) => peer.pings.push(data));
    socket.on('error', () => {});
    options.onConnection?.(socket, request);
    peers.push(peer);
  });
  defer(() => new Promise<void>((resolve) => {
    for (const socket of sockets) socket.destroy();
    server.close();
    httpServer.close(() => resolve());
  }));
  return { port: (httpServer.address() as net.AddressInfo).port, peers, server };
}

interface Proxy {
  readonly port: number;
  readonly app: Switchyard;
  readonly logs: string[];
  /** The proxy's client-side WebSockets, as they open. */
  readonly opened: Array<WebSocket<ProxyWebSocketData>>;
}

async function startProxy(defer: Defer, options: Omit<ProxyOptions, 'prefix'>, serverOptions: ServerOptions = {}): Promise<Proxy> {
  const logs: string[] = [];
  const opened: Array<WebSocket<ProxyWebSocketData>> = [];
  const proxyOptions: ProxyOptions = { prefix: '/legacy', log: (line) => logs.push(line), ...options };
  const route = proxyWebSocketRoute(proxyOptions);
  const watched: WebSocketRoute<ProxyWebSocketData> = { ...route, open(ws) { opened.push(ws); route.open?.(ws); } };
  const http = proxyHttpHandler(proxyOptions);
  const app = createServer({ pingIntervalMs: 0, closeTimeoutMs: 1000, shutdownTimeoutMs: 2000, ...serverOptions })
    .websocket('/legacy/*', watched)
    .all('/legacy/*', http);
  defer(() => app.close());
  defer(() => http.close());
  const { port } = await app.listen({ port: 0, host: HOST });
  return { port, app, logs, opened };
}

interface Client {
  readonly ws: WebSocket<undefined>;
  readonly messages: AsyncQueue<Received>;
  readonly closes: AsyncQueue<Closed>;
  readonly pings: Buffer[];
  readonly pongs: AsyncQueue<Buffer>;
}

async function openClient(defer: Defer, url: string, options: Omit<ConnectOptions<undefined>, 'handlers'> = {}): Promise<Client> {
  const messages = new AsyncQueue<Received>();
  const closes = new AsyncQueue<Closed>();
  const pongs = new AsyncQueue<Buffer>();
  const pings: Buffer[] = [];
  const ws = await withTimeout(connect(url, {
    ...options,
    handlers: {
      message: (_ws, data, isBinary) => messages.push({ data: Buffer.from(data), isBinary }),
      close: (_ws, code, reason) => closes.push({ code, reason }),
      ping: (_ws, data) => pings.push(Buffer.from(data)),
      pong: (_ws, data) => pongs.push(Buffer.from(data)),
    },
  }), TIMEOUT_MS, `connect ${url}`);
  defer(() => ws.terminate());
  return { ws, messages, closes, pings, pongs };
}

async function refusalStatus(url: string, options: Omit<ConnectOptions<undefined>, 'handlers'> = {}): Promise<number> {
  try {
    const ws = await withTimeout(connect(url, options), TIMEOUT_MS, `connect ${url}`);
    ws.terminate();
    return 101;
  } catch (error) {
    assert.ok(error instanceof HandshakeError, `expected a HandshakeError, got ${String(error)}`);
    return error.status;
  }
}

const next = <T>(queue: AsyncQueue<T>, what: string): Promise<T> => queue.next(TIMEOUT_MS, what);

describe('proxyWebSocketRoute: opening', () => {
  it('opens the backend at the mapped path with the client\'s subprotocols and fields; the backend\'s choice is ours', async (t) => {
    const defer = cleanupStack(t);
    const backend = await startWsBackend(defer, { handleProtocols: (offered) => (offered.has('chat.v2') ? 'chat.v2' : false) });
    const proxy = await startProxy(defer, { target: `http://${HOST}:${backend.port}/base` });
    const client = await openClient(defer, `ws://${HOST}:${proxy.port}/legacy/room/1?token=abc%20d`, {
      protocols: ['chat.v1', 'chat.v2'], origin: 'https://app.example',
      headers: { Cookie: 'session=s1', Authorization: 'Bearer t', 'X-Custom': 'yes', 'X-Forwarded-For': '203.0.113.9' },
    });
    assert.equal(client.ws.protocol, 'chat.v2', 'the backend\'s subprotocol is the one the client gets');
    const peer = await next(backend.peers, 'the backend connection');
    const seen = peer.request.headers;
    assert.equal(peer.request.url, '/base/room/1?token=abc%20d');
    assert.equal(seen.host, `${HOST}:${backend.port}`);
    assert.equal(seen['sec-websocket-protocol'], 'chat.v1, chat.v2');
    assert.equal(seen.origin, 'https://app.example');
    assert.equal(seen.cookie, 'session=s1');
    assert.equal(seen.authorization, 'Bearer t');
    assert.equal(seen['x-custom'], 'yes');
    assert.equal(seen['x-forwarded-for'], HOST, 'a client cannot forge X-Forwarded-For');
    assert.equal(seen['x-forwarded-proto'], 'http');
    assert.equal(seen['x-forwarded-host'], `${HOST}:${proxy.port}`);
    assert.equal(seen.via, '1.1 switchyard');
    assert.equal(peer.socket.protocol, 'chat.v2');
    // No subprotocol from the backend: none for the client either.
    const plain = await openClient(defer, `ws://${HOST}:${proxy.port}/legacy/plain`, { protocols: ['chat.v1'] });
    assert.equal(plain.ws.protocol, '');
  });

  it('behind a peer in the server\'s trustProxy keeps the X-Forwarded-For chain and appends the peer (not the client it names)', async (t) => {
    const defer = cleanupStack(t);
    const backend = await startWsBackend(defer);
    const proxy = await startProxy(defer, { target: `http://${HOST}:${backend.port}/` }, { trustProxy: ['loopback'] });
    await openClient(defer, `ws://${HOST}:${proxy.port}/legacy/x`, { headers: { 'X-Forwarded-For': '203.0.113.9', 'X-Forwarded-Proto': 'https' } });
    const seen = (await next(backend.peers, 'the backend connection')).request.headers;
    assert.equal(seen['x-forwarded-for'], `203.0.113.9, ${HOST}`);
    assert.equal(seen['x-forwarded-proto'], 'https');
  });

  it('does not pass the client\'s extension offer on: each hop negotiates its own', async (t) => {
    const defer = cleanupStack(t);
    const backend = await startWsBackend(defer);
    const proxy = await startProxy(defer, { target: `http://${HOST}:${backend.port}/` });
    const client = new WsClient(`ws://${HOST}:${proxy.port}/legacy/x`, { perMessageDeflate: true });
    defer(() => client.terminate());
    client.on('error', () => {});
    await withTimeout(once(client, 'open'), TIMEOUT_MS, 'the ws client to open');
    const peer = await next(backend.peers, 'the backend connection');
    assert.equal(peer.request.headers['sec-websocket-extensions'], undefined);
    assert.equal(client.extensions, '', 'the proxy route does not accept deflate unless the server policy says so');
  });

  it('refuses with 502 before any 101 when the backend is down, and logs it', async (t) => {
    const defer = cleanupStack(t);
    const proxy = await startProxy(defer, { target: `http://${HOST}:${await freePort()}/base` });
    assert.equal(await refusalStatus(`ws://${HOST}:${proxy.port}/legacy/x`), 502);
    assert.equal(proxy.opened.length, 0);
    assert.match(proxy.logs[0] ?? '', /websocket \/legacy\/x -> ws:\/\/127\.0\.0\.1:\d+\/base\/x: backend unreachable: ECONNREFUSED \(502\)/);
  });

  it('passes a backend\'s 4xx refusal on, turns its 5xx into 502, its silence into 504, and refuses dot segments', async (t) => {
    const defer = cleanupStack(t);
    const backend = await startWsBackend(defer, {
      verifyClient: ({ req }, callback) => {
        if (req.url === '/forbidden') callback(false, 403);
        else if (req.url === '/broken') callback(false, 500);
        else if (req.url === '/silent') return; // never answers
        else callback(true);
      },
    });
    const proxy = await startProxy(defer, { target: `http://${HOST}:${backend.port}/`, timeoutMs: 300 });
    const base = `ws://${HOST}:${proxy.port}/legacy`;
    assert.equal(await refusalStatus(`${base}/forbidden`), 403);
    assert.equal(await refusalStatus(`${base}/broken`), 502);
    const startedAt = Date.now();
    assert.equal(await refusalStatus(`${base}/silent`), 504);
    assert.ok(Date.now() - startedAt >= 290, 'the 504 came before timeoutMs');
    assert.equal(await refusalStatus(`${base}/a/..%2fx`), 400);
    assert.equal(proxy.opened.length, 0);
    assert.equal(proxy.logs.length, 3, proxy.logs.join('\n'));
  });

  it('closes the backend connection when the client leaves before the backend answered', async (t) => {
    const defer = cleanupStack(t);
    const backend = await startWsBackend(defer, { verifyClient: (_info, callback) => { setTimeout(() => callback(true), 200); } });
    const proxy = await startProxy(defer, { target: `http://${HOST}:${backend.port}/` });
    const socket = net.connect(proxy.port, HOST);
    socket.on('error', () => {});
    await once(socket, 'connect');
    socket.write(`GET /legacy/x HTTP/1.1\r\nHost: ${HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    await sleep(50);
    socket.destroy();
    const peer = await next(backend.peers, 'the backend connection (opened after the client left)');
    assert.deepEqual(await next(peer.closes, 'the backend close'), { code: 1001, reason: 'client went away' });
    assert.equal(proxy.opened.length, 0);
  });
});

describe('proxyWebSocketRoute: relaying', () => {
  it('relays text and binary both ways, in order and unchanged, including what the backend sent with its 101', async (t) => {
    const defer = cleanupStack(t);
    const backend = await startWsBackend(defer, {
      onConnection: (socket) => {
        socket.send('hello from the backend'); // leaves with the 101, before the client's side is open
        socket.on('message', (data, isBinary) => socket.send(data as Buffer, { binary: isBinary }));
      },
    });
    const proxy = await startProxy(defer, { target: `http://${HOST}:${backend.port}/` });
    const client = await openClient(defer, `ws://${HOST}:${proxy.port}/legacy/echo`);
    assert.deepEqual(await next(client.messages, 'the greeting'), { data: Buffer.from('hello from the backend'), isBinary: false });
    const sent: Received[] = [
      { data: Buffer.from('text \u2713 \u{1F600}'), isBinary: false },
      { data: Buffer.from([0, 1, 2, 255]), isBinary: true },
      { data: Buffer.alloc(0), isBinary: false },
      { data: Buffer.alloc(0), isBinary: true },
      { data: patternBytes(1 << 20), isBinary: true },
      { data: Buffer.from('x'.repeat(200_000)), isBinary: false },
    ];
    for (const message of sent) client.ws.send(message.data, message.isBinary);
    const peer = await next(backend.peers, 'the backend connection');
    for (const [index, message] of sent.entries()) {
      const atBackend = await next(peer.messages, `message ${index} at the backend`);
      assert.equal(atBackend.isBinary, message.isBinary, `message ${index} changed type on the way in`);
      assert.ok(atBackend.data.equals(message.data), `message ${index} changed on the way in`);
      const echoed = await next(client.messages, `echo ${index}`);
      assert.equal(echoed.isBinary, message.isBinary, `message ${index} changed type on the way out`);
      assert.ok(echoed.data.equals(message.data), `message ${index} changed on the way out`);
    }
  });

  it('answers pings on each hop and forwards none', async (t) => {
    const defer = cleanupStack(t);
    const backend = await startWsBackend(defer);
    const proxy = await startProxy(defer, { target: `http://${HOST}:${backend.port}/` });
    const client = await openClient(defer, `ws://${HOST}:${proxy.port}/legacy/p`);
    const peer = await next(backend.peers, 'the backend connection');
    const backendPong = once(peer.socket, 'pong');
    peer.socket.ping('from-backend');
    assert.equal(((await withTimeout(backendPong, TIMEOUT_MS, 'the proxy\'s pong'))[0] as Buffer).toString(), 'from-backend');
    client.ws.ping('from-client');
    assert.equal((await next(client.pongs, 'the proxy\'s pong')).toString(), 'from-client');
    // A message each way after the pings: had a ping been forwarded, it would have arrived before these.
    client.ws.send('after');
    assert.equal((await next(peer.messages, 'a message after the ping')).data.toString(), 'after');
    peer.socket.send('after too');
    assert.equal((await next(client.messages, 'a message after the ping')).data.toString(), 'after too');
    assert.deepEqual(client.pings, [], 'the backend\'s ping reached the client');
    assert.deepEqual(peer.pings, [], 'the client\'s ping reached the backend');
  });
});

describe('proxyWebSocketRoute: closing', () => {
  async function pair(t: TestContext) {
    const defer = cleanupStack(t);
    const backend = await startWsBackend(defer);
    const proxy = await startProxy(defer, { target: `http://${HOST}:${backend.port}/` });
    const client = await openClient(defer, `ws://${HOST}:${proxy.port}/legacy/c`);
    const peer = await next(backend.peers, 'the backend connection');
    return { defer, backend, proxy, client, peer };
  }

  it('client closes 4001 "x": the backend sees 4001 "x"', async (t) => {
    const { client, peer } = await pair(t);
    client.ws.close(4001, 'x');
    assert.deepEqual(await next(peer.closes, 'the backend close'), { code: 4001, reason: 'x' });
    assert.deepEqual(await next(client.closes, 'the client close'), { code: 4001, reason: 'x' });
  });

  it('backend closes 4002 "y" after a last message: the client gets the message, then 4002 "y"', async (t) => {
    const { client, peer } = await pair(t);
    peer.socket.send('last words');
    peer.socket.close(4002, 'y');
    assert.equal((await next(client.messages, 'the last message')).data.toString(), 'last words');
    assert.deepEqual(await next(client.closes, 'the client close'), { code: 4002, reason: 'y' });
    assert.deepEqual(await next(peer.closes, 'the backend close'), { code: 4002, reason: 'y' });
  });

  it('carries 1000 and 1011 across, and a close without a status as 1000', async (t) => {
    const first = await pair(t);
    first.client.ws.close(1000, 'bye');
    assert.deepEqual(await next(first.peer.closes, 'the backend close'), { code: 1000, reason: 'bye' });
    const second = await pair(t);
    second.peer.socket.close(1011, 'oops');
    assert.deepEqual(await next(second.client.closes, 'the client close'), { code: 1011, reason: 'oops' });
    const third = await pair(t);
    third.peer.socket.close(); // a close frame with no status code: 1005 on our side, never sent as such
    assert.deepEqual(await next(third.client.closes, 'the client close'), { code: 1000, reason: '' });
    // A `ws` client closing without a status code.
    const wsClient = new WsClient(`ws://${HOST}:${third.proxy.port}/legacy/c`, { perMessageDeflate: false });
    third.defer(() => wsClient.terminate());
    wsClient.on('error', () => {});
    await withTimeout(once(wsClient, 'open'), TIMEOUT_MS, 'the ws client');
    const peer = await next(third.backend.peers, 'the second backend connection');
    wsClient.close();
    assert.deepEqual(await next(peer.closes, 'the backend close'), { code: 1000, reason: '' });
  });

  it('backend drops the connection with a TCP reset: the client gets 1014', async (t) => {
    const { client, peer } = await pair(t);
    ((peer.socket as unknown as { _socket: net.Socket })._socket).resetAndDestroy();
    assert.deepEqual(await next(client.closes, 'the client close'), { code: 1014, reason: 'backend connection lost' });
  });

  it('backend drops the connection without a close frame (FIN): the client gets 1014', async (t) => {
    const { client, peer } = await pair(t);
    peer.socket.terminate();
    assert.deepEqual(await next(client.closes, 'the client close'), { code: 1014, reason: 'backend connection lost' });
  });

  it('client drops the connection: the backend is closed with 1001', async (t) => {
    const { client, peer } = await pair(t);
    client.ws.terminate();
    assert.deepEqual(await next(peer.closes, 'the backend close'), { code: 1001, reason: 'client went away' });
  });

  it('the proxy shutting down closes both sides with 1001', async (t) => {
    const { client, peer, proxy } = await pair(t);
    const stopped = proxy.app.close();
    assert.equal((await next(client.closes, 'the client close')).code, 1001);
    assert.equal((await next(peer.closes, 'the backend close')).code, 1001);
    await withTimeout(stopped, TIMEOUT_MS, 'the proxy to stop');
  });
});

describe('proxyWebSocketRoute: backpressure', () => {
  it('a client that does not read stops the backend\'s stream instead of growing the proxy\'s buffers', async (t) => {
    const defer = cleanupStack(t);
    const messageBytes = 64 * 1024;
    const totalMessages = 600; // 37.5 MiB, more than every buffer on the way together
    let sent = 0;
    const backend = await startWsBackend(defer, {
      onConnection: (socket) => {
        // A well-behaved producer: it sends while its own buffer is small, so a stall shows up as a count that stops.
        const pump = (): void => {
          while (sent < totalMessages && socket.readyState === socket.OPEN && socket.bufferedAmount < 512 * 1024) {
            const message = Buffer.alloc(messageBytes, sent % 251);
            message.writeUInt32BE(sent, 0);
            socket.send(message);
            sent++;
          }
          if (sent < totalMessages && socket.readyState === socket.OPEN) setTimeout(pump, 5);
        };
        pump();
      },
    });
    const backpressureBytes = 256 * 1024;
    const proxy = await startProxy(defer, { target: `http://${HOST}:${backend.port}/` }, { backpressureBytes });
    const received: number[] = [];
    const ws = await connect(`ws://${HOST}:${proxy.port}/legacy/stream`, {
      handlers: { message: (_ws, data) => { received.push(data.readUInt32BE(0)); } },
    });
    defer(() => ws.terminate());
    ws.pause();
    // Wait for the stream to stall: the backend's count stops moving.
    let lastSent = -1;
    for (let stableFor = 0; stableFor < 300; stableFor += 50) {
      if (sent !== lastSent) stableFor = 0;
      lastSent = sent;
      await sleep(50);
    }
    assert.ok(sent < totalMessages, `the backend sent all ${totalMessages} messages to a client that reads nothing`);
    const proxySide = proxy.opened[0]!;
    const bound = backpressureBytes + 2 * messageBytes + 64 * 1024;
    assert.ok(proxySide.bufferedAmount <= bound, `the proxy holds ${proxySide.bufferedAmount} unsent bytes for the client (bound ${bound})`);
    assert.equal(proxySide.data.backend.isPaused, true, 'the proxy should have stopped reading the backend');
    // The client reads again: everything arrives, in order.
    ws.resume();
    await waitFor(() => received.length === totalMessages, 20_000, `all ${totalMessages} messages (got ${received.length})`);
    assert.deepEqual(received, Array.from({ length: totalMessages }, (_, i) => i));
    assert.equal(proxySide.data.backend.isPaused, false);
  });

  it('a backend that does not read stops the client\'s side the same way', async (t) => {
    const defer = cleanupStack(t);
    let backendSocket: WsSocket | undefined;
    const backend = await startWsBackend(defer, {
      onConnection: (socket) => {
        backendSocket = socket;
        ((socket as unknown as { _socket: net.Socket })._socket).pause();
      },
    });
    const backpressureBytes = 256 * 1024;
    const proxy = await startProxy(defer, { target: `http://${HOST}:${backend.port}/`, webSocket: { backpressureBytes } });
    // The client keeps what it cannot send (37.5 MiB): its own cap must allow that.
    const client = await openClient(defer, `ws://${HOST}:${proxy.port}/legacy/up`, { maxBackpressureBytes: 64 << 20 });
    const message = Buffer.alloc(64 * 1024, 7);
    for (let i = 0; i < 600; i++) client.ws.send(message);
    const proxySide = proxy.opened[0]!;
    await waitFor(() => proxySide.isPaused, TIMEOUT_MS, 'the proxy to stop reading the client');
    await sleep(300);
    const backendHop = proxySide.data.backend;
    const bound = backpressureBytes + 2 * message.length + 64 * 1024;
    assert.ok(backendHop.bufferedAmount <= bound, `the proxy holds ${backendHop.bufferedAmount} unsent bytes for the backend (bound ${bound})`);
    assert.ok(client.ws.bufferedAmount > 0, 'the client is the one left holding what it could not send');
    let count = 0;
    const peer = await next(backend.peers, 'the backend connection');
    peer.socket.on('message', () => { count++; });
    ((backendSocket as unknown as { _socket: net.Socket })._socket).resume();
    await waitFor(() => count + peer.messages.pending.length >= 600, 20_000, `all 600 messages at the backend (got ${count})`);
    assert.equal(proxySide.isPaused, false);
  });
});

describe('proxyWebSocketRoute: other backends', () => {
  it('proxies HTTP and WebSocket to another switchyard', async (t) => {
    const defer = cleanupStack(t);
    const inner = createServer({ pingIntervalMs: 0 })
      .get('/api/hello', (req, res) => { res.end(`hello ${String(req.headers['x-forwarded-for'])}`); })
      .websocket('/api/echo', {
        protocols: ['echo.v1'],
        message(ws, data, isBinary) { ws.send(data, isBinary); },
        close() {},
      });
    defer(() => inner.close());
    const { port: innerPort } = await inner.listen({ port: 0, host: HOST });
    const proxy = await startProxy(defer, { target: `http://${HOST}:${innerPort}/api` });
    const text = await withTimeout(fetch(`http://${HOST}:${proxy.port}/legacy/hello`).then((response) => response.text()), TIMEOUT_MS, 'the HTTP answer');
    assert.equal(text, `hello ${HOST}`);
    const client = await openClient(defer, `ws://${HOST}:${proxy.port}/legacy/echo`, { protocols: ['other', 'echo.v1'] });
    assert.equal(client.ws.protocol, 'echo.v1');
    client.ws.send('ping me');
    client.ws.send(Buffer.from([9, 8, 7]));
    assert.deepEqual(await next(client.messages, 'the text echo'), { data: Buffer.from('ping me'), isBinary: false });
    assert.deepEqual(await next(client.messages, 'the binary echo'), { data: Buffer.from([9, 8, 7]), isBinary: true });
    client.ws.close(4003, 'done');
    assert.deepEqual(await next(client.closes, 'the close'), { code: 4003, reason: 'done' });
    await waitFor(() => inner.connectionCount === 0, TIMEOUT_MS, 'the inner connection to close');
  });

  it('reaches a wss:// backend, trusting its certificate through tls.ca', async (t) => {
    const certificate = await makeCertificate();
    if (!needPeer(t, certificate === undefined ? OPENSSL_MISSING : undefined) || certificate === undefined) return;
    const defer = cleanupStack(t);
    const inner = createServer({ pingIntervalMs: 0, tls: { cert: certificate.cert, key: certificate.key } })
      .websocket('/echo', { message(ws, data, isBinary) { ws.send(data, isBinary); } });
    defer(() => inner.close());
    const { port: innerPort } = await inner.listen({ port: 0, host: HOST });
    const proxy = await startProxy(defer, { target: `https://localhost:${innerPort}/`, tls: { ca: certificate.cert } });
    const client = await openClient(defer, `ws://${HOST}:${proxy.port}/legacy/echo`);
    client.ws.send('over tls');
    assert.equal((await next(client.messages, 'the echo')).data.toString(), 'over tls');
    const untrusted = await startProxy(defer, { target: `wss://localhost:${innerPort}/` });
    assert.equal(await refusalStatus(`ws://${HOST}:${untrusted.port}/legacy/echo`), 502);
  });
});

describe('proxyWebSocketRoute: resources', () => {
  it('leaves no sockets open once connections, failures and servers are closed', async (t) => {
    const baseline = openFdCount();
    if (baseline === undefined) {
      t.skip('no /proc/self/fd on this system');
      return;
    }
    {
      const defers: Array<() => unknown> = [];
      const defer: Defer = (cleanup) => { defers.push(cleanup); };
      const backend = await startWsBackend(defer, { onConnection: (socket) => socket.on('message', (data) => socket.send(data as Buffer)) });
      const proxy = await startProxy(defer, { target: `http://${HOST}:${backend.port}/` });
      const dead = await startProxy(defer, { target: `http://${HOST}:${await freePort()}/` });
      const clients: Client[] = [];
      for (let i = 0; i < 10; i++) clients.push(await openClient(defer, `ws://${HOST}:${proxy.port}/legacy/${i}`));
      for (const client of clients) client.ws.send('x');
      for (const client of clients) await next(client.messages, 'an echo');
      for (const [i, client] of clients.entries()) {
        if (i % 3 === 0) client.ws.terminate();
        else client.ws.close(1000);
      }
      for (let i = 0; i < 5; i++) assert.equal(await refusalStatus(`ws://${HOST}:${dead.port}/legacy/x`), 502);
      await waitFor(() => proxy.app.connectionCount === 0, TIMEOUT_MS, 'the proxied connections to close');
      await waitFor(() => backend.server.clients.size === 0, TIMEOUT_MS, 'the backend connections to close');
      for (const cleanup of defers.reverse()) await cleanup();
    }
    await waitFor(() => openFdCount() <= baseline, TIMEOUT_MS, `open file descriptors to return to ${baseline} (now ${openFdCount()})`);
  });
});
