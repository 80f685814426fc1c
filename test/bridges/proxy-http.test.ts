// The reverse proxy for plain HTTP, in process: a switchyard with proxyHttpHandler() mounted at /legacy/* in
// front of a plain node:http backend (or a bare TCP server for broken ones). What the backend saw (method,
// path, query, header fields, body framing), what the client got back, 502/504, aborts both ways, keep-alive
// reuse, HTTPS on both sides, and no sockets left open.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import { once } from 'node:events';
import { createServer, type Switchyard } from '../../src/server/server.js';
import type { ServerOptions } from '../../src/server/options.js';
import { proxyHttpHandler, type ProxyOptions } from '../../src/bridges/proxy.js';
import { cleanupStack, sleep, withTimeout, waitFor } from '../_support/cleanup.js';
import { needPeer } from '../_support/peers.js';
import { freePort, openFdCount } from '../_support/resources.js';
import { makeCertificate, OPENSSL_MISSING } from '../config/_certificates.js';

const HOST = '127.0.0.1';
const TIMEOUT_MS = 5000;
type Defer = (cleanup: () => unknown) => void;

interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly rawHeaders: readonly string[];
}

interface Backend {
  readonly port: number;
  readonly server: http.Server;
  readonly seen: SeenRequest[];
  /** TCP connections the backend accepted. */
  connections(): number;
}

type BackendHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** Answers with JSON describing the request and its body's length. */
const describeRequest: BackendHandler = (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const body = JSON.stringify({ method: req.method, url: req.url, body: Buffer.concat(chunks).toString() });
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  });
};

async function startBackend(defer: Defer, handler: BackendHandler = describeRequest, tls?: { cert: Buffer; key: Buffer }): Promise<Backend> {
  const seen: SeenRequest[] = [];
  let connections = 0;
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders });
    handler(req, res);
  };
  const server = tls === undefined ? http.createServer(onRequest) : https.createServer({ cert: tls.cert, key: tls.key }, onRequest);
  server.on(tls === undefined ? 'connection' : 'secureConnection', () => { connections++; });
  server.listen(0, HOST);
  await once(server, 'listening');
  defer(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  return { port: (server.address() as net.AddressInfo).port, server, seen, connections: () => connections };
}

interface Proxy {
  readonly port: number;
  readonly app: Switchyard;
  readonly logs: string[];
}

async function startProxy(defer: Defer, options: Omit<ProxyOptions, 'prefix'> & { prefix?: string }, serverOptions: ServerOptions = {}): Promise<Proxy> {
  const logs: string[] = [];
  const handler = proxyHttpHandler({ prefix: '/legacy', log: (line) => logs.push(line), ...options });
  const app = createServer({ pingIntervalMs: 0, ...serverOptions }).all(`${options.prefix ?? '/legacy'}/*`, handler);
  defer(() => app.close());
  defer(() => handler.close());
  const { port } = await app.listen({ port: 0, host: HOST });
  return { port, app, logs };
}

interface Answer {
  readonly status: number;
  readonly statusMessage: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

interface Ask {
  method?: string;
  path: string;
  headers?: http.OutgoingHttpHeaders;
  body?: string | Buffer;
}

function ask(port: number, { method = 'GET', path, headers = {}, body }: Ask): Promise<Answer> {
  return withTimeout(new Promise((resolve, reject) => {
    const req = http.request({ host: HOST, port, method, path, agent: false, headers: { Connection: 'close', ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, statusMessage: res.statusMessage ?? '', headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  }), TIMEOUT_MS, `${method} ${path}`);
}

/** Sends raw request bytes and returns everything the server sent until it closed the connection. */
function rawExchange(port: number, request: string): Promise<string> {
  return withTimeout(new Promise((resolve, reject) => {
    const socket = net.connect(port, HOST);
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => { socket.destroy(); resolve(Buffer.concat(chunks).toString('latin1')); });
    socket.on('error', reject);
    socket.write(request);
  }), TIMEOUT_MS, `raw exchange ${JSON.stringify(request.split('\r\n')[0])}`);
}

describe('proxyHttpHandler: the request the backend sees', () => {
  it('forwards method, path under the base, query and body; answers with the backend\'s status, reason and body', async (t) => {
    const defer = cleanupStack(t);
    const backend = await startBackend(defer, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        res.writeHead(201, 'Made It', { 'X-App': 'v1', 'Set-Cookie': ['a=1', 'b=2'] });
        res.end(`${req.method} ${req.url} ${Buffer.concat(chunks).toString()}`);
      });
    });
    const proxy = await startProxy(defer, { target: `http://${HOST}:${backend.port}/base` });
    const answer = await ask(proxy.port, { method: 'POST', path: '/legacy/a/b%20c?x=1&y=%2F', body: 'hello', headers: { 'Content-Length': '5' } });
    assert.equal(answer.status, 201);
    assert.equal(answer.statusMessage, 'Made It');
    assert.equal(answer.headers['x-app'], 'v1');
    assert.deepEqual(answer.headers['set-cookie'], ['a=1', 'b=2'], 'repeated Set-Cookie fields arrive as they were sent');
    assert.equal(answer.body.toString(), 'POST /base/a/b%20c?x=1&y=%2F hello');
    for (const method of ['PUT', 'PATCH', 'DELETE', 'OPTIONS', 'GET']) {
      assert.equal((await ask(proxy.port, { method, path: '/legacy/m?q' })).body.toString(), `${method} /base/m?q `);
    }
    assert.equal((await ask(proxy.port, { path: '/legacy' })).body.toString(), 'GET /base ');
    assert.equal((await ask(proxy.port, { path: '/legacy/' })).body.toString(), 'GET /base/ ');
    assert.equal(proxy.logs.length, 0, proxy.logs.join('\n'));
  });

  it('refuses dot segments with 400 and never asks the backend', async (t) => {
    const defer = cleanupStack(t);
    const backend = await startBackend(defer);
    const proxy = await startProxy(defer, { target: `http://${HOST}:${backend.port}/base` });
    for (const path of ['/legacy/../admin', '/legacy/%2e%2e/admin', '/legacy/a/./b']) {
      assert.equal((await ask(proxy.port, { path })).status, 400, path);
    }
    assert.equal(backend.seen.length, 0);
  });

  it('replaces Host, drops hop-by-hop fields, keeps end-to-end ones and adds X-Forwarded-* and Via', async (t) => {
    const defer = cleanupStack(t);
    const backend = await startBackend(defer);
    const proxy = await startProxy(defer, { target: `http://${HOST}:${backend.port}/base` });
    // Raw bytes: node's client will not send some of these fields (Trailer without chunked framing).
    const answer = await rawExchange(proxy.port, [
      'GET /legacy/h HTTP/1.1', 'Host: public.example:8443', 'Connection: close, X-Drop', 'X-Drop: 1', 'Keep-Alive: timeout=5',
      'TE: trailers', 'Trailer: X-Checksum', 'Upgrade: h2c', 'Proxy-Authorization: Basic eDp5', 'Proxy-Connection: keep-alive',
      'Proxy: http://evil.example', 'Expect: 100-continue', 'X-Forwarded-For: 203.0.113.9', 'X-Forwarded-Proto: https',
      'X-Forwarded-Host: forged.example', 'Forwarded: for=203.0.113.9', 'Cookie: session=1', 'Authorization: Bearer t',
      'X-Keep: yes', 'Via: 1.1 edge', '', '',
    ].join('\r\n'));
    assert.match(answer, /^HTTP\/1\.1 200 /m, 'node answers the Expect with 100 Continue first, then the backend\'s 200');
    const seen = backend.seen[0]!;
    assert.equal(seen.headers.host, `${HOST}:${backend.port}`, 'the backend is asked for by its own name');
    for (const name of ['x-drop', 'keep-alive', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-connection', 'proxy', 'forwarded', 'expect']) {
      assert.equal(seen.headers[name], undefined, `${name} reached the backend`);
    }
    assert.equal(seen.headers.connection, 'keep-alive', 'the backend hop has its own Connection');
    assert.equal(seen.headers['x-forwarded-for'], HOST, 'a client cannot forge X-Forwarded-For');
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
    assert.equal(seen.headers['x-forwarded-host'], 'public.example:8443', 'X-Forwarded-Host is the Host the client asked for');
    assert.equal(seen.headers.via, '1.1 edge, 1.1 switchyard');
    assert.equal(seen.headers.cookie, 'session=1');
    assert.equal(seen.headers.authorization, 'Bearer t');
    assert.equal(seen.headers['x-keep'], 'yes');
  });

  it('with trustForwarded appends the client to X-Forwarded-For and Forwarded, keeping the first hop\'s proto and host', async (t) => {
    const defer = cleanupStack(t);
    const backend = await startBackend(defer);
    const proxy = await startProxy(defer, { target: `http://${HOST}:${backend.port}/`, trustForwarded: true, forwarded: true });
    await ask(proxy.port, {
      path: '/legacy/',
      headers: { Host: 'inner.example', 'X-Forwarded-For': '203.0.113.9', 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'www.example', Forwarded: 'for=203.0.113.9;proto=https' },
    });
    const seen = backend.seen[0]!;
    assert.equal(seen.url, '/');
    assert.equal(seen.headers['x-forwarded-for'], `203.0.113.9, ${HOST}`);
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
    assert.equal(seen.headers['x-forwarded-host'], 'www.example');
    assert.equal(seen.headers.forwarded, `for=203.0.113.9;proto=https, for=${HOST};host=inner.example;proto=http`);
  });

  it('behind a trusted peer (the server\'s trustProxy) appends the peer to the incoming X-Forwarded-For chain and keeps its proto', async (t) => {
    const defer = cleanupStack(t);
    const backend = await startBackend(defer);
    const proxy = await startProxy(defer, { target: `http://${HOST}:${backend.port}/` }, { trustProxy: ['loopback'] });
    await ask(proxy.port, { path: '/legacy/', headers: { 'X-Forwarded-For': '198.51.100.4, 203.0.113.9', 'X-Forwarded-Proto': 'https' } });
    const seen = backend.seen[0]!;
    assert.equal(seen.headers['x-forwarded-for'], `198.51.100.4, 203.0.113.9, ${HOST}`);
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
  });

  it('from a peer not in trustProxy replaces a client-supplied X-Forwarded-For chain with the peer alone', async (t) => {
    const defer = cleanupStack(t);
    const backend = await startBackend(defer);
    const proxy = await startProxy(defer, { target: `http://${HOST}:${backend.port}/` }, { trustProxy: ['10.0.0.0/8'] });
    await ask(proxy.port, { path: '/legacy/', headers: { 'X-Forwarded-For': '198.51.100.4, 203.0.113.9', 'X-Forwarded-Proto': 'https' } });
    const seen = backend.seen[0]!;
    assert.equal(seen.headers['x-forwarded-for'], HOST);
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
  });

  it('frames request bodies for the backend: chunked stays chunked, a bodyless POST says Content-Length: 0', async (t) => {
    const defer = cleanupStack(t);
    const backend = await startBackend(defer);
    const proxy = await startProxy(defer, { target: `http://${HOST}:${backend.port}/` });
    const chunked = await new Promise<string>((resolve, reject) => {
      const req = http.request({ host: HOST, port: proxy.port, method: 'POST', path: '/legacy/up', agent: false, headers: { Connection: 'close' } }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => { text += chunk; }).on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.write('part one, ');
      setTimeout(() => req.end('part two'), 20);
    });
    assert.equal((JSON.parse(chunked) as { body: string }).body, 'part one, part two');
    assert.equal(backend.seen[0]!.headers['transfer-encoding'], 'chunked');
    await ask(proxy.port, { method: 'POST', path: '/legacy/empty', headers: { 'Content-Length': '0' } });
    await rawExchange(proxy.port, `POST /legacy/none HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    await ask(proxy.port, { path: '/legacy/get' });
    const [, empty, none, get] = backend.seen;
    assert.equal(empty!.headers['content-length'], '0');
    assert.equal(none!.headers['content-length'], '0', 'a POST without a body is sent with Content-Length: 0, not chunked');
    assert.equal(none!.headers['transfer-encoding'], undefined);
    assert.equal(get!.headers['content-length'], undefined);
    assert.equal(get!.headers['transfer-encoding'], undefined);
  });

  it('refuses a transfer coding other than chunked with 501', async (t) => {
    const defer = cleanupStack(t);
    const backend = await startBackend(defer);
    const proxy = await startProxy(defer, { target: `http://${HOST}:${backend.port}/` });
    const response = await rawExchange(proxy.port, 'POST /legacy/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n0\r\n\r\n');
    assert.match(response, /^HTTP\/1\.1 (501|400) /, 'node may refuse it first (400); we never pass it on');
    assert.equal(backend.seen.length, 0);
  });
});

describe('proxyHttpHandler: the response the client gets', () => {
  it('drops hop-by-hop response fields and rewrites a Location under the backend\'s base', async (t) => {
    const defer = cleanupStack(t);
    let backendPort = 0;
    const backend = await startBackend(defer, (req, res) => {
      const location = req.url === '/base/abs' ? `http://${HOST}:${backendPort}/base/login?next=%2Fa`
        : req.url === '/base/path' ? '/base/home' : req.url === '/base/away' ? 'https://elsewhere.example/x' : 'relative/next';
      res.writeHead(302, {
        Location: location, Connection: 'X-Secret', 'X-Secret': 'internal', 'Keep-Alive': 'timeout=99',
        'Proxy-Authenticate': 'Basic', 'X-App': 'v', 'Content-Length': '0',
      });
      res.end();
    });
    backendPort = backend.port;
    const proxy = await startProxy(defer, { target: `http://${HOST}:${backend.port}/base` });
    const absolute = await ask(proxy.port, { path: '/legacy/abs' });
    assert.equal(absolute.status, 302);
    assert.equal(absolute.headers.location, '/legacy/login?next=%2Fa');
    assert.equal(absolute.headers['x-secret'], undefined, 'a field the backend\'s Connection listed leaked');
    assert.equal(absolute.headers['proxy-authenticate'], undefined);
    assert.notEqual(absolute.headers['keep-alive'], 'timeout=99', 'the backend\'s Keep-Alive leaked');
    assert.equal(absolute.headers['x-app'], 'v');
    assert.equal((await ask(proxy.port, { path: '/legacy/path' })).headers.location, '/legacy/home');
    assert.equal((await ask(proxy.port, { path: '/legacy/away' })).headers.location, 'https://elsewhere.example/x');
    assert.equal((await ask(proxy.port, { path: '/legacy/rel' })).headers.location, 'relative/next');
  });

  it('sends no body for HEAD, 304 and 204, and keeps the backend\'s Content-Length for HEAD', async (t) => {
    const defer = cleanupStack(t);
    const backend = await startBackend(defer, (req, res) => {
      if (req.url === '/etag' && req.headers['if-none-match'] === '"v1"') {
        res.writeHead(304, { ETag: '"v1"' });
        res.end();
      } else if (req.url === '/nothing') {
        res.writeHead(204);
        res.end();
      } else {
        res.writeHead(200, { 'Content-Length': '11', 'Content-Type': 'text/plain', ETag: '"v1"' });
        res.end(req.method === 'HEAD' ? undefined : 'hello world');
      }
    });
    const proxy = await startProxy(defer, { target: `http://${HOST}:${backend.port}/` });
    const head = await rawExchange(proxy.port, 'HEAD /legacy/etag HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match(head, /^HTTP\/1\.1 200 /);
    assert.match(head, /\r\nContent-Length: 11\r\n/i);
    assert.ok(head.endsWith('\r\n\r\n'), `bytes after a HEAD response's head: ${JSON.stringify(head)}`);
    const notModified = await rawExchange(proxy.port, 'GET /legacy/etag HTTP/1.1\r\nHost: x\r\nIf-None-Match: "v1"\r\nConnection: close\r\n\r\n');
    assert.match(notModified, /^HTTP\/1\.1 304 /);
    assert.ok(notModified.endsWith('\r\n\r\n'), `bytes after a 304's head: ${JSON.stringify(notModified)}`);
    const noContent = await rawExchange(proxy.port, 'GET /legacy/nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match(noContent, /^HTTP\/1\.1 204 /);
    assert.ok(noContent.endsWith('\r\n\r\n'));
    const full = await ask(proxy.port, { path: '/legacy/etag' });
    assert.equal(full.body.toString(), 'hello world');
  });

  it('reuses a kept-alive backend connection, and resends a bodyless request once if that connection was dropped', async (t) => {
    const defer = cleanupStack(t);
    let dropNextReused = false;
    const requestsOnSocket = new WeakMap<net.Socket, number>();
    const backend = await startBackend(defer, (req, res) => {
      const count = (requestsOnSocket.get(req.socket) ?? 0) + 1;
      requestsOnSocket.set(req.socket, count);
      if (dropNextReused && count > 1) {
        // The race a keep-alive client can lose: the backend closes an idle connection as a request arrives.
        dropNextReused = false;
        req.socket.destroy();
        return;
      }
      describeRequest(req, res);
    });
    const proxy = await startProxy(defer, { target: `http://${HOST}:${backend.port}/` });
    for (let i = 0; i < 3; i++) assert.equal((await ask(proxy.port, { path: `/legacy/${i}` })).status, 200);
    assert.equal(backend.connections(), 1, 'three requests in a row should share one backend connection');
    dropNextReused = true;
    const retried = await ask(proxy.port, { path: '/legacy/after-drop' });
    assert.equal(retried.status, 200, 'a GET on a dropped pooled connection is sent again on a new one');
    assert.equal(backend.connections(), 2);
    assert.equal(backend.seen.at(-1)!.url, '/after-drop');
    assert.equal(proxy.logs.length, 0, proxy.logs.join('\n'));
    // A request with a body is not resent (its body is gone): 502.
    await ask(proxy.port, { path: '/legacy/warm' });
    dropNextReused = true;
    const upload = await ask(proxy.port, { method: 'POST', path: '/legacy/post', body: 'once' });
    assert.equal(upload.status, 502);
  });
});

describe('proxyHttpHandler: failures', () => {
  it('answers 502 with a short body and a log line when the backend refuses connections', async (t) => {
    const defer = cleanupStack(t);
    const port = await freePort();
    const proxy = await startProxy(defer, { target: `http://${HOST}:${port}/base` });
    const answer = await ask(proxy.port, { path: '/legacy/x?y=1' });
    assert.equal(answer.status, 502);
    assert.equal(answer.body.toString(), 'bad gateway\n');
    assert.equal(proxy.logs.length, 1);
    assert.match(proxy.logs[0]!, new RegExp(`GET /legacy/x\\?y=1 -> http://${HOST}:${port}/base/x\\?y=1: backend unreachable: ECONNREFUSED \\(502\\)`));
    // A body being uploaded to a dead backend still gets the 502, not a reset.
    const upload = await ask(proxy.port, { method: 'PUT', path: '/legacy/up', body: Buffer.alloc(256 * 1024, 1) });
    assert.equal(upload.status, 502);
  });

  it('answers 502 when the backend closes the connection without an answer', async (t) => {
    const defer = cleanupStack(t);
    const backend = net.createServer((socket) => socket.once('data', () => socket.destroy())).listen(0, HOST);
    await once(backend, 'listening');
    defer(() => backend.close());
    const proxy = await startProxy(defer, { target: `http://${HOST}:${(backend.address() as net.AddressInfo).port}/` });
    const answer = await ask(proxy.port, { path: '/legacy/x' });
    assert.equal(answer.status, 502);
    assert.match(proxy.logs[0] ?? '', /backend dropped the connection: ECONNRESET \(502\)/);
  });

  it('answers 504 when the backend does not answer within timeoutMs, and drops the backend connection', async (t) => {
    const defer = cleanupStack(t);
    const sockets: net.Socket[] = [];
    // It reads (and ignores) the request, so that it notices the proxy hanging up.
    const backend = net.createServer((socket) => { sockets.push(socket); socket.on('error', () => {}); socket.resume(); }).listen(0, HOST);
    await once(backend, 'listening');
    defer(() => { for (const socket of sockets) socket.destroy(); backend.close(); });
    const proxy = await startProxy(defer, { target: `http://${HOST}:${(backend.address() as net.AddressInfo).port}/`, timeoutMs: 200 });
    const startedAt = Date.now();
    const answer = await ask(proxy.port, { path: '/legacy/slow' });
    const elapsedMs = Date.now() - startedAt;
    assert.equal(answer.status, 504);
    assert.equal(answer.body.toString(), 'gateway timeout\n');
    assert.ok(elapsedMs >= 190 && elapsedMs < 2000, `504 after ${elapsedMs} ms`);
    assert.match(proxy.logs[0] ?? '', /no response within 200 ms \(504\)/);
    await waitFor(() => sockets.length === 1 && sockets[0]!.destroyed, TIMEOUT_MS, 'the backend connection to be closed');
  });

  it('does not apply timeoutMs once the response has begun: a slow upload and a slow response both finish', async (t) => {
    const defer = cleanupStack(t);
    const backend = await startBackend(defer, (req, res) => {
      // Answers at once, reads the body as it trickles in, and ends well after timeoutMs.
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.flushHeaders();
      let received = '';
      req.setEncoding('utf8').on('data', (chunk: string) => { received += chunk; });
      req.on('end', () => { setTimeout(() => res.end(`got ${received}`), 300); });
    });
    const proxy = await startProxy(defer, { target: `http://${HOST}:${backend.port}/`, timeoutMs: 150 });
    const body = await withTimeout(new Promise<string>((resolve, reject) => {
      const req = http.request({ host: HOST, port: proxy.port, method: 'POST', path: '/legacy/slow', agent: false, headers: { Connection: 'close' } }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => { text += chunk; });
        res.on('end', () => resolve(text));
        res.on('error', reject);
      });
      req.on('error', reject);
      let part = 0;
      const tick = setInterval(() => {
        if (++part <= 5) req.write(String(part));
        else { clearInterval(tick); req.end(); }
      }, 80);
    }), TIMEOUT_MS, 'the slow exchange');
    assert.equal(body, 'got 12345');
    assert.deepEqual(proxy.logs, []);
  });

  it('cuts the client\'s response short (and logs) when the backend breaks off mid-body', async (t) => {
    const defer = cleanupStack(t);
    const backend = await startBackend(defer, (_req, res) => {
      res.writeHead(200, { 'Content-Length': '100000' });
      res.write(Buffer.alloc(1000, 0x61));
      setTimeout(() => res.socket?.destroy(), 30);
    });
    const proxy = await startProxy(defer, { target: `http://${HOST}:${backend.port}/` });
    const outcome = await withTimeout(new Promise<string>((resolve) => {
      const req = http.get({ host: HOST, port: proxy.port, path: '/legacy/x', agent: false }, (res) => {
        let received = 0;
        res.on('data', (chunk: Buffer) => { received += chunk.length; });
        res.on('end', () => resolve(`complete after ${received} bytes`));
        res.on('error', () => resolve(`cut short after ${received} bytes`));
        res.on('aborted', () => resolve(`cut short after ${received} bytes`));
      });
      req.on('error', () => resolve('request error'));
    }), TIMEOUT_MS, 'the client to see the response end');
    assert.match(outcome, /^cut short after 1000 bytes$/);
    await waitFor(() => proxy.logs.length > 0, TIMEOUT_MS, 'a log line');
    assert.match(proxy.logs[0]!, /backend broke off the response/);
  });
});

describe('proxyHttpHandler: a client that leaves', () => {
  it('aborts the backend request when the client leaves while waiting for the answer', async (t) => {
    const defer = cleanupStack(t);
    let backendSawClose = false;
    const backend = await startBackend(defer, (_req, res) => {
      res.on('close', () => { backendSawClose = !res.writableFinished; });
    });
    const proxy = await startProxy(defer, { target: `http://${HOST}:${backend.port}/` });
    const req = http.get({ host: HOST, port: proxy.port, path: '/legacy/wait', agent: false });
    req.on('error', () => {});
    await waitFor(() => backend.seen.length === 1, TIMEOUT_MS, 'the backend to get the request');
    req.destroy();
    await waitFor(() => backendSawClose, TIMEOUT_MS, 'the backend to see its request aborted');
    assert.deepEqual(proxy.logs, []);
  });

  it('aborts the backend upload when the client leaves mid-body', async (t) => {
    const defer = cleanupStack(t);
    let received = 0;
    let backendSawAbort = false;
    const backend = await startBackend(defer, (req) => {
      req.on('data', (chunk: Buffer) => { received += chunk.length; });
      req.on('close', () => { backendSawAbort = !req.complete; });
    });
    const proxy = await startProxy(defer, { target: `http://${HOST}:${backend.port}/` });
    const req = http.request({ host: HOST, port: proxy.port, method: 'POST', path: '/legacy/up', agent: false, headers: { 'Content-Length': String(10 << 20) } });
    req.on('error', () => {});
    req.write(Buffer.alloc(64 * 1024, 1));
    await waitFor(() => received > 0, TIMEOUT_MS, 'the first body bytes at the backend');
    req.destroy();
    await waitFor(() => backendSawAbort, TIMEOUT_MS, 'the backend to see the upload aborted');
  });

  it('stops the backend response when the client leaves mid-download', async (t) => {
    const defer = cleanupStack(t);
    let backendClosed = false;
    let written = 0;
    const backend = await startBackend(defer, (_req, res) => {
      const chunk = Buffer.alloc(64 * 1024, 0x62);
      const pump = (): void => {
        while (!res.destroyed && written < (1 << 30) && res.write(chunk)) written += chunk.length;
      };
      res.on('drain', pump);
      res.on('close', () => { backendClosed = true; });
      pump();
    });
    const proxy = await startProxy(defer, { target: `http://${HOST}:${backend.port}/` });
    let clientReceived = 0;
    const req = http.get({ host: HOST, port: proxy.port, path: '/legacy/stream', agent: false }, (res) => {
      res.on('data', (chunk: Buffer) => {
        clientReceived += chunk.length;
        if (clientReceived > 1 << 20) req.destroy();
      });
      res.on('error', () => {});
    });
    req.on('error', () => {});
    await waitFor(() => backendClosed, TIMEOUT_MS, 'the backend response to be closed');
    const writtenAtClose = written;
    assert.ok(writtenAtClose < 256 << 20, `the backend wrote ${writtenAtClose} bytes before it was stopped`);
  });
});

describe('proxyHttpHandler: TLS and resources', () => {
  it('reaches an https backend (trusting its certificate through tls.ca) and tells it the client came over https', async (t) => {
    const certificate = await makeCertificate();
    if (!needPeer(t, certificate === undefined ? OPENSSL_MISSING : undefined) || certificate === undefined) return;
    const defer = cleanupStack(t);
    const backend = await startBackend(defer, describeRequest, certificate);
    const proxy = await startProxy(defer, { target: `https://localhost:${backend.port}/secure`, tls: { ca: certificate.cert } }, { tls: { cert: certificate.cert, key: certificate.key } });
    const answer = await withTimeout(new Promise<{ status: number; body: string }>((resolve, reject) => {
      https.get({ host: HOST, port: proxy.port, path: '/legacy/x', ca: certificate.cert, servername: 'localhost', agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk; }).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      }).on('error', reject);
    }), TIMEOUT_MS, 'the https answer');
    assert.equal(answer.status, 200);
    assert.equal((JSON.parse(answer.body) as { url: string }).url, '/secure/x');
    assert.equal(backend.seen[0]!.headers['x-forwarded-proto'], 'https');
    assert.equal(backend.seen[0]!.headers.host, `localhost:${backend.port}`);
    // Without the CA, the backend's certificate is not trusted: 502.
    const untrusted = await startProxy(defer, { target: `https://localhost:${backend.port}/` });
    assert.equal((await ask(untrusted.port, { path: '/legacy/x' })).status, 502);
    assert.match(untrusted.logs[0] ?? '', /SELF_SIGNED|self-signed|certificate/i);
  });

  it('leaves no sockets open once the servers and the pool are closed', async (t) => {
    const baseline = openFdCount();
    if (baseline === undefined) {
      t.skip('no /proc/self/fd on this system');
      return;
    }
    {
      const defers: Array<() => unknown> = [];
      const defer: Defer = (cleanup) => { defers.push(cleanup); };
      const backend = await startBackend(defer, (req, res) => {
        if (req.url === '/hang') return;
        describeRequest(req, res);
      });
      const proxy = await startProxy(defer, { target: `http://${HOST}:${backend.port}/`, timeoutMs: 100 });
      const dead = await startProxy(defer, { target: `http://${HOST}:${await freePort()}/` });
      for (let i = 0; i < 20; i++) assert.equal((await ask(proxy.port, { method: 'POST', path: `/legacy/${i}`, body: 'x' })).status, 200);
      await Promise.all(Array.from({ length: 10 }, (_, i) => ask(proxy.port, { path: `/legacy/parallel/${i}` })));
      assert.equal((await ask(proxy.port, { path: '/hang'.replace('/', '/legacy/') })).status, 504);
      assert.equal((await ask(dead.port, { path: '/legacy/x' })).status, 502);
      const aborted = http.get({ host: HOST, port: proxy.port, path: '/legacy/hang', agent: false });
      aborted.on('error', () => {});
      await sleep(30);
      aborted.destroy();
      await sleep(30);
      for (const cleanup of defers.reverse()) await cleanup();
    }
    await waitFor(() => openFdCount() <= baseline, TIMEOUT_MS, `open file descriptors to return to ${baseline} (now ${openFdCount()})`);
  });
});
