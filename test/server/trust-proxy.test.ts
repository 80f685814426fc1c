// The server's trustProxy option end to end, over real sockets on 127.0.0.1: behind a trusted peer the client
// named in X-Forwarded-For is what the access log (HTTP, ws-open, ws-close, ws-reject), ws.remoteAddress, the
// upgrade hook and requestClient(req) report, with the proxy kept as the peer; from an untrusted peer (or with
// no trustProxy) the same headers change nothing; a bad entry is refused when the server is created.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { connect } from '../../src/client/connect.js';
import { requestClient, type RequestClient } from '../../src/http/client-address.js';
import { createServer, type UpgradeRequest } from '../../src/server/server.js';
import type { ServerOptions } from '../../src/server/options.js';
import { cleanupStack, waitFor, withTimeout } from '../_support/cleanup.js';
import { LOOPBACK_HOST, listen, rawWebSocket, type Defer } from '../_support/embedded-server.js';

const TIMEOUT_MS = 3000;
const FORWARDED = { 'X-Forwarded-For': '6.6.6.6, 203.0.113.7', 'X-Forwarded-Proto': 'https' };

interface Seen {
  readonly lines: Array<Record<string, unknown>>;
  readonly hooks: UpgradeRequest[];
  readonly sockets: Array<{ remoteAddress: string; peerAddress: string; client: RequestClient | undefined }>;
  readonly handlerClients: RequestClient[];
}

/** A server with an HTTP route, a WebSocket route with a hook, and a JSON access log, all recorded. */
async function start(defer: Defer, options: ServerOptions): Promise<{ port: number; seen: Seen }> {
  const seen: Seen = { lines: [], hooks: [], sockets: [], handlerClients: [] };
  const app = createServer({
    pingIntervalMs: 0, shutdownTimeoutMs: 500, ...options,
    accessLog: { format: 'json', write: (line) => seen.lines.push(JSON.parse(line) as Record<string, unknown>) },
  });
  app.get('/who', (req, res) => {
    const client = requestClient(req);
    seen.handlerClients.push(client);
    res.end(client.address);
  });
  app.websocket('/ws', {
    upgrade(request) { seen.hooks.push(request); },
    open(ws) {
      seen.sockets.push({ remoteAddress: ws.remoteAddress, peerAddress: ws.peerAddress, client: ws.requestClient });
      ws.close(1000, 'bye');
    },
  });
  return { port: await listen(defer, app), seen };
}

function get(port: number, path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return withTimeout(new Promise((resolve, reject) => {
    const request = http.request({ host: LOOPBACK_HOST, port, path, headers, agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => { body += chunk; });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on('error', reject);
    request.end();
  }), TIMEOUT_MS, `GET ${path}`);
}

/** Opens /ws with `headers`, waits for the server's close, and for its ws-close line. */
async function openAndClose(defer: Defer, port: number, seen: Seen, headers: Record<string, string>): Promise<void> {
  const ws = await connect(`ws://${LOOPBACK_HOST}:${port}/ws`, { headers });
  defer(() => ws.terminate());
  await withTimeout(ws.closed, TIMEOUT_MS, 'the server to close the WebSocket');
  await waitFor(() => seen.lines.some((line) => line['event'] === 'ws-close'), TIMEOUT_MS, 'the ws-close line');
}

const addressesOf = (seen: Seen, event: string): unknown[] => seen.lines.filter((line) => line['event'] === event).map((line) => line['remoteAddress']);

describe('trustProxy: behind a trusted proxy', () => {
  it('logs the forwarded client for HTTP requests and gives handlers the same answer through requestClient(req)', async (t) => {
    const defer = cleanupStack(t);
    const { port, seen } = await start(defer, { trustProxy: ['loopback'] });
    const response = await get(port, '/who', FORWARDED);
    assert.equal(response.body, '203.0.113.7');
    await waitFor(() => seen.lines.length === 1, TIMEOUT_MS, 'the access-log line');
    assert.deepEqual(addressesOf(seen, 'http'), ['203.0.113.7']);
    assert.deepEqual(seen.handlerClients.map((client) => [client.peerAddress, client.forwarded, client.protocol, client.port]),
      [['127.0.0.1', true, 'https', undefined]]);
  });

  it('makes the forwarded client ws.remoteAddress, the hook\'s remoteAddress and the ws-open/ws-close address, keeping the proxy as peer', async (t) => {
    const defer = cleanupStack(t);
    const { port, seen } = await start(defer, { trustProxy: ['127.0.0.1'] });
    await openAndClose(defer, port, seen, FORWARDED);
    assert.deepEqual(seen.hooks.map((hook) => [hook.remoteAddress, hook.peerAddress]), [['203.0.113.7', '127.0.0.1']]);
    assert.deepEqual(seen.sockets.map((socket) => [socket.remoteAddress, socket.peerAddress, socket.client?.forwarded]), [['203.0.113.7', '127.0.0.1', true]]);
    assert.deepEqual(addressesOf(seen, 'ws-open'), ['203.0.113.7']);
    assert.deepEqual(addressesOf(seen, 'ws-close'), ['203.0.113.7']);
  });

  it('logs the forwarded client for a refused upgrade too', async (t) => {
    const defer = cleanupStack(t);
    const { port, seen } = await start(defer, { trustProxy: ['loopback'] });
    const client = await rawWebSocket(defer, port, '/nowhere', { headers: { 'X-Forwarded-For': '203.0.113.7' } });
    assert.equal(client.response.statusCode, 404);
    await waitFor(() => seen.lines.length === 1, TIMEOUT_MS, 'the ws-reject line');
    assert.deepEqual(addressesOf(seen, 'ws-reject'), ['203.0.113.7']);
  });

  it('keeps the peer when the trusted proxy sent no usable X-Forwarded-For', async (t) => {
    const defer = cleanupStack(t);
    const { port, seen } = await start(defer, { trustProxy: ['loopback'] });
    assert.equal((await get(port, '/who', { 'X-Forwarded-For': 'unknown' })).body, '127.0.0.1');
    assert.equal((await get(port, '/who', {})).body, '127.0.0.1');
    assert.deepEqual(seen.handlerClients.map((client) => [client.forwarded, client.peerTrusted, client.port !== undefined]), [[false, true, true], [false, true, true]]);
  });
});

describe('trustProxy: from an untrusted peer, and by default', () => {
  for (const [label, options] of [['no trustProxy', {}], ['a trustProxy that does not list the peer', { trustProxy: ['10.0.0.0/8', 'fd00::/8'] }]] as const) {
    it(`with ${label}, X-Forwarded-For and -Proto change nothing: the peer is the client everywhere`, async (t) => {
      const defer = cleanupStack(t);
      const { port, seen } = await start(defer, options);
      assert.equal((await get(port, '/who', FORWARDED)).body, '127.0.0.1');
      await openAndClose(defer, port, seen, FORWARDED);
      assert.deepEqual(addressesOf(seen, 'http'), ['127.0.0.1']);
      assert.deepEqual(addressesOf(seen, 'ws-open'), ['127.0.0.1']);
      assert.deepEqual(addressesOf(seen, 'ws-close'), ['127.0.0.1']);
      assert.deepEqual(seen.hooks.map((hook) => [hook.remoteAddress, hook.peerAddress]), [['127.0.0.1', '127.0.0.1']]);
      assert.deepEqual(seen.sockets.map((socket) => [socket.remoteAddress, socket.peerAddress]), [['127.0.0.1', '127.0.0.1']]);
      assert.deepEqual(seen.handlerClients.map((client) => [client.forwarded, client.peerTrusted, client.protocol]), [[false, false, 'http']]);
    });
  }
});

describe('trustProxy: checking', () => {
  it('refuses a bad entry when the server is created, naming it', () => {
    assert.throws(() => createServer({ trustProxy: ['loopback', '10.0.0.0/40'] }), { name: 'TypeError', message: /trustProxy entry "10\.0\.0\.0\/40"/ });
    assert.throws(() => createServer({ trustProxy: ['nginx.local'] }), { name: 'TypeError', message: /"nginx\.local" is not an IP address/ });
  });
});
