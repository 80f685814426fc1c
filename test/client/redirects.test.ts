// connect() and 3xx answers: off by default (a HandshakeError with the status and the Location), followed up
// to `followRedirects` hops when asked, never from wss:// to ws:// or from the network to a Unix socket,
// credentials kept from other servers, and one handshake timeout for the whole chain.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect } from '../../src/client/connect.js';
import { createServer } from '../../src/server/server.js';
import { cleanupStack, withTimeout } from '../_support/cleanup.js';
import { makeCertificate, OPENSSL_MISSING, type TestCertificate } from '../config/_certificates.js';
import { HOST, TIMEOUT_MS, echo, expectHandshakeError, type Defer } from './_servers.js';

interface SeenRequest {
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
}

/** What the redirecting server answers to an upgrade for `url`; undefined leaves it to the WebSocket routes. */
type Answer = (url: string) => { status: number; location?: string; delayMs?: number } | undefined;

interface RedirectServer {
  readonly port: number;
  readonly base: string;
  /** Every upgrade request that reached the server, redirected or not. */
  readonly seen: SeenRequest[];
}

/**
 * An http(s) server that answers some upgrades with a redirect and hands the rest to a switchyard app whose
 * routes echo and record the request headers they got.
 */
async function redirectServer(defer: Defer, answer: Answer, tls?: TestCertificate): Promise<RedirectServer> {
  const seen: SeenRequest[] = [];
  const app = createServer({ pingIntervalMs: 0, shutdownTimeoutMs: 200 }).websocket<undefined>('/echo', echo);
  const server = tls === undefined ? http.createServer() : https.createServer({ cert: tls.cert, key: tls.key });
  const sockets = new Set<Duplex>();
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    const answered = answer(req.url ?? '');
    if (answered === undefined) return;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    const reply = (): void => {
      const location = answered.location === undefined ? '' : `Location: ${answered.location}\r\n`;
      socket.end(`HTTP/1.1 ${answered.status} Redirect\r\n${location}Content-Length: 0\r\nConnection: close\r\n\r\n`);
    };
    if (answered.delayMs === undefined) reply();
    else setTimeout(reply, answered.delayMs);
  });
  app.attach(server);
  defer(async () => {
    for (const socket of sockets) socket.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await app.close();
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const port = (server.address() as AddressInfo).port;
  return { port, base: `${tls === undefined ? 'ws' : 'wss'}://${HOST}:${port}`, seen };
}

const onlyRoutes = (path: string): boolean => path === '/echo';

let certificate: TestCertificate | undefined;
before(async () => { certificate = await makeCertificate(); });
after(async () => { if (certificate !== undefined) await fsp.rm(certificate.dir, { recursive: true, force: true }); });

describe('connect() without followRedirects', () => {
  it('rejects a 302 with ERR_HANDSHAKE_STATUS, the status and the Location resolved against the URL', async (t) => {
    const defer = cleanupStack(t);
    const server = await redirectServer(defer, (url) => (onlyRoutes(url) ? undefined : { status: 302, location: '/echo' }));
    const error = await expectHandshakeError(connect(`${server.base}/old`), 'ERR_HANDSHAKE_STATUS', 302);
    assert.equal(error.location, `${server.base}/echo`);
    assert.match(error.message, /followRedirects/);
    assert.deepEqual(server.seen.map((request) => request.url), ['/old'], 'the redirect was not followed');
  });
});

describe('connect() with followRedirects', () => {
  it('follows 301, 302, 303, 307 and 308, and ws.url is the final URL', async (t) => {
    const defer = cleanupStack(t);
    const server = await redirectServer(defer, (url) => (onlyRoutes(url) ? undefined : { status: Number(url.slice(1)), location: '/echo' }));
    for (const status of [301, 302, 303, 307, 308]) {
      const ws = await withTimeout(connect(`${server.base}/${status}`, { followRedirects: 1 }), TIMEOUT_MS, `connect through a ${status}`);
      defer(() => ws.terminate());
      assert.equal(ws.url, `${server.base}/echo`, `after a ${status}`);
    }
    const last = await withTimeout(connect(`${server.base}/307`, { followRedirects: 1 }), TIMEOUT_MS, 'connect through a 307');
    defer(() => last.terminate());
    last.send('through');
    const reply = await withTimeout(last.messages().next(), TIMEOUT_MS, 'the echo');
    assert.equal(reply.value?.data.toString(), 'through', 'the connection at the end of the chain works');
  });

  it('follows a chain across servers, taking an http:// Location as ws://', async (t) => {
    const defer = cleanupStack(t);
    const final = await redirectServer(defer, () => undefined);
    const middle = await redirectServer(defer, () => ({ status: 307, location: `http://${HOST}:${final.port}/echo` }));
    const first = await redirectServer(defer, () => ({ status: 301, location: `${middle.base}/next` }));
    const ws = await withTimeout(connect(`${first.base}/start`, { followRedirects: 2 }), TIMEOUT_MS, 'connect through two redirects');
    defer(() => ws.terminate());
    assert.equal(ws.url, `ws://${HOST}:${final.port}/echo`);
    assert.deepEqual([first.seen.length, middle.seen.length, final.seen.length], [1, 1, 1]);
  });

  it('rejects with ERR_TOO_MANY_REDIRECTS once followRedirects hops are used up', async (t) => {
    const defer = cleanupStack(t);
    const server = await redirectServer(defer, () => ({ status: 302, location: '/loop' }));
    const error = await expectHandshakeError(connect(`${server.base}/loop`, { followRedirects: 3 }), 'ERR_TOO_MANY_REDIRECTS', 302);
    assert.equal(error.location, `${server.base}/loop`);
    assert.equal(server.seen.length, 4, 'the first request and three redirects');
  });

  it('does not follow 300 or 304 (not redirects a handshake can follow)', async (t) => {
    const defer = cleanupStack(t);
    const server = await redirectServer(defer, (url) => (onlyRoutes(url) ? undefined : { status: Number(url.slice(1)), location: '/echo' }));
    await expectHandshakeError(connect(`${server.base}/300`, { followRedirects: 5 }), 'ERR_HANDSHAKE_STATUS', 300);
    await expectHandshakeError(connect(`${server.base}/304`, { followRedirects: 5 }), 'ERR_HANDSHAKE_STATUS', 304);
  });

  it('keeps Authorization and Cookie for the same server and drops them (with URL credentials) for another', async (t) => {
    const defer = cleanupStack(t);
    const other = await redirectServer(defer, () => undefined);
    const server = await redirectServer(defer, (url) => {
      if (url === '/same') return { status: 302, location: '/echo' };
      if (url === '/away') return { status: 302, location: `${other.base}/echo` };
      return undefined;
    });
    const headers = { Authorization: 'Bearer secret', cookie: 'session=1', 'X-Trace': 't1' };
    const same = await withTimeout(connect(`${server.base}/same`, { followRedirects: 1, headers }), TIMEOUT_MS, 'same-server redirect');
    defer(() => same.terminate());
    const sameFinal = server.seen.at(-1)!.headers;
    assert.deepEqual([sameFinal['authorization'], sameFinal['cookie'], sameFinal['x-trace']], ['Bearer secret', 'session=1', 't1']);

    const away = await withTimeout(connect(`${server.base}/away`, { followRedirects: 1, headers }), TIMEOUT_MS, 'cross-server redirect');
    defer(() => away.terminate());
    const awayFinal = other.seen.at(-1)!.headers;
    assert.deepEqual([awayFinal['authorization'], awayFinal['cookie'], awayFinal['x-trace']], [undefined, undefined, 't1']);

    const userinfo = server.base.replace('://', '://user:pw@');
    const credentials = await withTimeout(connect(`${userinfo}/away`, { followRedirects: 1 }), TIMEOUT_MS, 'cross-server redirect with URL credentials');
    defer(() => credentials.terminate());
    assert.ok(server.seen.at(-1)!.headers['authorization']?.startsWith('Basic '), 'the first server got the URL credentials');
    assert.equal(other.seen.at(-1)!.headers['authorization'], undefined, 'the other server did not');
  });

  it('rejects with ERR_REDIRECT_LOCATION for a redirect without a Location or to a scheme it cannot dial', async (t) => {
    const defer = cleanupStack(t);
    const server = await redirectServer(defer, (url) => (url === '/none' ? { status: 302 } : { status: 302, location: 'ftp://files.example/x' }));
    await expectHandshakeError(connect(`${server.base}/none`, { followRedirects: 1 }), 'ERR_REDIRECT_LOCATION', 302);
    await expectHandshakeError(connect(`${server.base}/ftp`, { followRedirects: 1 }), 'ERR_REDIRECT_LOCATION', 302);
  });

  it('refuses a redirect from a network server to a ws+unix:// socket with ERR_REDIRECT_UNIX', async (t) => {
    const defer = cleanupStack(t);
    const server = await redirectServer(defer, () => ({ status: 302, location: 'ws+unix:///run/docker.sock:/containers' }));
    await expectHandshakeError(connect(`${server.base}/x`, { followRedirects: 1 }), 'ERR_REDIRECT_UNIX', 302);
  });

  it('refuses a redirect from wss:// to ws:// with ERR_REDIRECT_DOWNGRADE', async (t) => {
    if (certificate === undefined) return t.skip(OPENSSL_MISSING);
    const defer = cleanupStack(t);
    const plain = await redirectServer(defer, () => undefined);
    const secure = await redirectServer(defer, () => ({ status: 302, location: `${plain.base}/echo` }), certificate);
    const error = await expectHandshakeError(connect(`${secure.base}/x`, { followRedirects: 1, ca: certificate.cert }), 'ERR_REDIRECT_DOWNGRADE', 302);
    assert.equal(error.location, `${plain.base}/echo`);
    assert.equal(plain.seen.length, 0, 'nothing was sent without TLS');
  });

  it('counts every hop against one handshakeTimeoutMs: hops each well within it still time out together', async (t) => {
    const defer = cleanupStack(t);
    const server = await redirectServer(defer, () => ({ status: 302, location: '/slow', delayMs: 100 }));
    const startedAt = Date.now();
    await expectHandshakeError(connect(`${server.base}/slow`, { followRedirects: 1000, handshakeTimeoutMs: 600 }), 'ERR_HANDSHAKE_TIMEOUT', 0);
    const elapsedMs = Date.now() - startedAt;
    assert.ok(elapsedMs >= 550 && elapsedMs < 3000, `gave up after ${elapsedMs} ms`);
    assert.ok(server.seen.length >= 2, `${server.seen.length} requests in ${elapsedMs} ms of 100 ms hops`);
  });
});
