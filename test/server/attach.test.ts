// attach() (issue 3, item 7): a plain node:http server, with its own request handler, gets switchyard's
// WebSocket routes. Its own HTTP keeps working; an upgrade for a path switchyard has no route for is left to the
// server's other 'upgrade' listeners, or refused with 404 when there are none.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { Socket } from 'node:net';
import { createServer } from '../../src/server/server.js';
import type { WebSocket } from '../../src/transport/websocket.js';
import { Opcode, close, text } from '../_support/frames.js';
import { cleanupStack, withTimeout, waitFor } from '../_support/cleanup.js';
import { LOOPBACK_HOST, rawWebSocket, type Defer } from '../_support/embedded-server.js';

const TIMEOUT_MS = 3000;

/** A plain node:http server that answers /hello itself and 404 otherwise; closed (all connections) on cleanup. */
async function plainServer(defer: Defer): Promise<{ server: http.Server; port: number; requests: string[] }> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    if (req.url === '/hello') {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('hello from node:http\n');
    } else {
      res.writeHead(404).end();
    }
  });
  defer(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  await new Promise<void>((resolve) => server.listen(0, LOOPBACK_HOST, () => resolve()));
  return { server, port: (server.address() as { port: number }).port, requests };
}

function httpGet(port: number, urlPath: string): Promise<{ status: number; body: string }> {
  return withTimeout(new Promise((resolve, reject) => {
    http.get({ host: LOOPBACK_HOST, port, path: urlPath, agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => { body += chunk; });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    }).on('error', reject);
  }), TIMEOUT_MS, `GET ${urlPath}`);
}

describe('attach(): WebSocket routes on someone else\'s http.Server', () => {
  it('upgrades on the route while the server\'s own handler still answers HTTP', async (t) => {
    const defer = cleanupStack(t);
    const { server, port, requests } = await plainServer(defer);
    const opened: Array<WebSocket<undefined>> = [];
    const app = createServer({ pingIntervalMs: 0 }).websocket('/ws/:room', {
      open(ws) { opened.push(ws); },
      message(ws, data, isBinary) { ws.send(data, isBinary); },
    });
    app.attach(server);
    defer(() => app.close());

    const hello = await httpGet(port, '/hello');
    assert.equal(hello.status, 200);
    assert.equal(hello.body, 'hello from node:http\n');

    const client = await rawWebSocket(defer, port, '/ws/lobby');
    assert.equal(client.response.statusCode, 101, client.response.raw);
    assert.equal(opened[0]?.params['room'], 'lobby');
    await client.send(text('through attach'));
    const echoed = await client.nextMessage(TIMEOUT_MS);
    assert.equal(echoed.opcode, Opcode.text);
    assert.equal(echoed.payload.toString(), 'through attach');
    assert.equal(app.connectionCount, 1);
    assert.equal(app.routeConnectionCount('/ws/:room'), 1);

    // HTTP on the same port while the WebSocket is open: still the server's own handler.
    assert.equal((await httpGet(port, '/hello')).body, 'hello from node:http\n');
    assert.deepEqual(requests, ['GET /hello', 'GET /hello'], 'switchyard never saw (or answered) the plain requests');

    await client.send(close(1000));
    assert.equal((await client.expectClose(TIMEOUT_MS)).code, 1000);
    await waitFor(() => app.connectionCount === 0, TIMEOUT_MS, 'the count to return to 0');
  });

  it('leaves an upgrade for a path it has no route for to the server\'s other upgrade listener', async (t) => {
    const defer = cleanupStack(t);
    const { server, port } = await plainServer(defer);
    const othersSaw: string[] = [];
    const otherListener = (req: http.IncomingMessage, socket: Socket): void => {
      othersSaw.push(req.url ?? '');
      if (req.url?.startsWith('/ws') === true) return; // switchyard's path: not this listener's business
      socket.end('HTTP/1.1 418 I\'m a teapot\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    };
    server.on('upgrade', otherListener);
    const app = createServer({ pingIntervalMs: 0 }).websocket('/ws', {});
    app.attach(server);
    defer(() => app.close());

    const other = await rawWebSocket(defer, port, '/other-protocol');
    assert.equal(other.response.statusCode, 418, `the other listener answers, not switchyard:\n${other.response.raw}`);
    await withTimeout(other.closed, TIMEOUT_MS, 'the other listener to close');
    const ours = await rawWebSocket(defer, port, '/ws');
    assert.equal(ours.response.statusCode, 101, 'switchyard still takes its own route');
    assert.deepEqual(othersSaw, ['/other-protocol', '/ws']);
    assert.equal(app.connectionCount, 1);
  });

  it('answers 404 for an upgrade to a path it has no route for when no other listener exists', async (t) => {
    const defer = cleanupStack(t);
    const { server, port } = await plainServer(defer);
    const app = createServer({ pingIntervalMs: 0 }).websocket('/ws', {});
    app.attach(server);
    defer(() => app.close());
    const refused = await rawWebSocket(defer, port, '/nope');
    assert.equal(refused.response.statusCode, 404, refused.response.raw);
    assert.doesNotMatch(refused.response.raw, /Sec-WebSocket-Accept/i);
    await withTimeout(refused.closed, TIMEOUT_MS, 'the refused socket to close');
    assert.equal((await rawWebSocket(defer, port, '/ws')).response.statusCode, 101);
  });

  it('closes the attached connections with 1001 on app.close() and leaves the host server listening', async (t) => {
    const defer = cleanupStack(t);
    const { server, port } = await plainServer(defer);
    const app = createServer({ pingIntervalMs: 0, shutdownTimeoutMs: 1000 }).websocket('/ws', {});
    app.attach(server);
    const client = await rawWebSocket(defer, port, '/ws');
    assert.equal(client.response.statusCode, 101);
    const closing = app.close();
    const frame = await client.nextFrame(TIMEOUT_MS);
    assert.equal(frame.opcode, Opcode.close);
    assert.equal(frame.payload.readUInt16BE(0), 1001);
    await client.send(close(1001));
    await withTimeout(closing, TIMEOUT_MS, 'app.close()');
    assert.equal(server.listening, true, 'the host server is not switchyard\'s to close');
    assert.equal((await httpGet(port, '/hello')).status, 200);
  });
});
