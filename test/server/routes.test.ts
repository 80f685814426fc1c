// Routes on one server (issue 3, item 2): HTTP routes for every method with `:params` and a trailing `*`, 405
// with the right Allow, HEAD through a GET route, handler failures that become a 500 and leave the server
// serving; WebSocket routes with params, query, headers, address, URL, subprotocol and latency, and 426 for a
// plain GET on one. Peers are node's HTTP client and raw `net` WebSocket clients, never the server's own code.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { createServer } from '../../src/server/server.js';
import type { WebSocket } from '../../src/transport/websocket.js';
import type { Params } from '../../src/http/router.js';
import { Opcode, pong, text } from '../_support/frames.js';
import { cleanupStack, withTimeout, waitFor } from '../_support/cleanup.js';
import { LOOPBACK_HOST, listen, rawWebSocket, type Defer } from '../_support/embedded-server.js';

const TIMEOUT_MS = 3000;

interface HttpResult { status: number; headers: http.IncomingHttpHeaders; body: string }

function request(port: number, method: string, urlPath: string, body?: string): Promise<HttpResult> {
  return withTimeout(new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = { Connection: 'close' };
    // Node's client frames a DELETE or OPTIONS body only when told its length.
    if (body !== undefined) headers['Content-Length'] = Buffer.byteLength(body);
    const req = http.request({ host: LOOPBACK_HOST, port, method, path: urlPath, agent: false, headers }, (response) => {
      let text = '';
      response.setEncoding('utf8').on('data', (chunk: string) => { text += chunk; });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: text }));
      response.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  }), TIMEOUT_MS, `${method} ${urlPath}`);
}

/** A handler that answers with what it was given: the method, the params and the request body. */
function reflect(tag: string) {
  return (req: http.IncomingMessage, res: http.ServerResponse, params: Params): void => {
    let body = '';
    req.setEncoding('utf8').on('data', (chunk: string) => { body += chunk; });
    req.on('end', () => {
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ tag, method: req.method, params, body }));
    });
  };
}

/** Collects SwitchyardWarnings emitted while a test runs. */
function captureWarnings(defer: Defer): string[] {
  const warnings: string[] = [];
  const onWarning = (warning: Error): void => { if (warning.name === 'SwitchyardWarning') warnings.push(warning.message); };
  process.on('warning', onWarning);
  defer(() => process.off('warning', onWarning));
  return warnings;
}

describe('HTTP routes: methods, parameters and wildcards', () => {
  it('sends each method to its own handler with the :params of the matched pattern', async (t) => {
    const defer = cleanupStack(t);
    const app = createServer({ pingIntervalMs: 0 })
      .get('/items/:id', reflect('get'))
      .post('/items/:id', reflect('post'))
      .put('/items/:id', reflect('put'))
      .patch('/items/:id', reflect('patch'))
      .delete('/items/:id', reflect('delete'))
      .get('/users/:user/posts/:post', reflect('nested'));
    const port = await listen(defer, app);

    for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']) {
      const result = await request(port, method, '/items/42?verbose=1', method === 'GET' ? undefined : `body of ${method}`);
      assert.equal(result.status, 200, `${method} /items/42`);
      assert.deepEqual(JSON.parse(result.body), {
        tag: method.toLowerCase(), method, params: { id: '42' }, body: method === 'GET' ? '' : `body of ${method}`,
      });
    }
    const nested = await request(port, 'GET', '/users/ann%20lee/posts/caf%C3%A9');
    assert.deepEqual(JSON.parse(nested.body).params, { user: 'ann lee', post: 'café' }, 'parameters arrive percent-decoded');
  });

  it('gives a trailing * the rest of the path under params["*"], and all() takes any method', async (t) => {
    const defer = cleanupStack(t);
    const app = createServer({ pingIntervalMs: 0 })
      .get('/files/*', reflect('files'))
      .all('/any/:thing', reflect('any'));
    const port = await listen(defer, app);

    assert.deepEqual(JSON.parse((await request(port, 'GET', '/files/a/b/c.txt')).body).params, { '*': 'a/b/c.txt' });
    assert.deepEqual(JSON.parse((await request(port, 'GET', '/files/')).body).params, { '*': '' });
    assert.deepEqual(JSON.parse((await request(port, 'GET', '/files')).body).params, { '*': '' });
    for (const method of ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      const result = await request(port, method, '/any/thing-1');
      assert.equal(result.status, 200, `${method} /any/thing-1`);
      assert.deepEqual(JSON.parse(result.body), { tag: 'any', method, params: { thing: 'thing-1' }, body: '' });
    }
  });

  it('route(method, ...) registers any method token, case-insensitively', async (t) => {
    const defer = cleanupStack(t);
    const app = createServer({ pingIntervalMs: 0 })
      .route('options', '/opt/:a/:b', reflect('options'))
      .route('OPTIONS', '/opt2', reflect('options2'));
    const port = await listen(defer, app);
    const result = await request(port, 'OPTIONS', '/opt/x/y');
    assert.equal(result.status, 200);
    assert.deepEqual(JSON.parse(result.body), { tag: 'options', method: 'OPTIONS', params: { a: 'x', b: 'y' }, body: '' });
    assert.equal(JSON.parse((await request(port, 'OPTIONS', '/opt2')).body).tag, 'options2');
  });

  it('answers a method the path has no route for with 405 and an Allow header listing the methods it has', async (t) => {
    const defer = cleanupStack(t);
    const app = createServer({ pingIntervalMs: 0 })
      .get('/only-get', reflect('g'))
      .post('/write/:id', reflect('p'))
      .put('/write/:id', reflect('u'))
      .all('/everything', reflect('a'));
    const port = await listen(defer, app);

    const onlyGet = await request(port, 'POST', '/only-get');
    assert.equal(onlyGet.status, 405);
    assert.equal(onlyGet.headers['allow'], 'GET, HEAD', 'a GET route also serves HEAD, so Allow lists it');
    const write = await request(port, 'GET', '/write/7');
    assert.equal(write.status, 405);
    assert.equal(write.headers['allow'], 'POST, PUT');
    const deleteWrite = await request(port, 'DELETE', '/write/7');
    assert.equal(deleteWrite.status, 405);
    assert.equal(deleteWrite.headers['allow'], 'POST, PUT');
    assert.equal((await request(port, 'DELETE', '/everything')).status, 200, 'an all() route never answers 405');
    assert.equal((await request(port, 'GET', '/nowhere')).status, 404, 'a path with no route is 404, not 405');
  });

  it('serves HEAD through a GET route: same status and headers, no body', async (t) => {
    const defer = cleanupStack(t);
    const seen: string[] = [];
    const app = createServer({ pingIntervalMs: 0 }).get('/doc/:name', (req, res, params) => {
      seen.push(`${req.method} ${params['name']}`);
      const body = `document ${params['name']}\n`;
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body), 'X-Doc': params['name'] ?? '' });
      res.end(body);
    });
    const port = await listen(defer, app);
    const get = await request(port, 'GET', '/doc/readme');
    const head = await request(port, 'HEAD', '/doc/readme');
    assert.equal(get.status, 200);
    assert.equal(get.body, 'document readme\n');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assert.equal(head.headers['content-length'], get.headers['content-length']);
    assert.equal(head.headers['x-doc'], 'readme');
    assert.deepEqual(seen, ['GET readme', 'HEAD readme'], 'the GET handler ran for HEAD, with req.method HEAD');
  });

  it('answers 500 when a handler throws or rejects, warns, and keeps serving other requests', async (t) => {
    const defer = cleanupStack(t);
    const warnings = captureWarnings(defer);
    const app = createServer({ pingIntervalMs: 0 })
      .get('/throws', () => { throw new Error('sync failure'); })
      .get('/rejects', async () => { await new Promise((resolve) => setImmediate(resolve)); throw new Error('async failure'); })
      .get('/ok', (_req, res) => { res.end('ok'); });
    const port = await listen(defer, app);

    const thrown = await request(port, 'GET', '/throws');
    assert.equal(thrown.status, 500);
    assert.doesNotMatch(thrown.body, /sync failure/, 'the error text is not sent to the client');
    assert.equal((await request(port, 'GET', '/ok')).body, 'ok');
    const rejected = await request(port, 'GET', '/rejects');
    assert.equal(rejected.status, 500);
    assert.equal((await request(port, 'GET', '/ok')).body, 'ok');
    // Again, to show that a failure leaves nothing behind.
    assert.equal((await request(port, 'GET', '/throws')).status, 500);
    assert.equal((await request(port, 'GET', '/ok')).status, 200);
    await waitFor(() => warnings.length >= 3, TIMEOUT_MS, 'a warning per failed handler');
    assert.ok(warnings.some((w) => w.includes('sync failure')), `warnings: ${warnings.join(' | ')}`);
    assert.ok(warnings.some((w) => w.includes('async failure')), `warnings: ${warnings.join(' | ')}`);
  });
});

describe('WebSocket routes: what a connection knows about its request', () => {
  it('exposes params, query, headers, remoteAddress, url and the selected protocol', async (t) => {
    const defer = cleanupStack(t);
    const opened: Array<WebSocket<undefined>> = [];
    const app = createServer({ pingIntervalMs: 0 }).websocket('/rooms/:room', {
      protocols: ['chat.v1'],
      open(ws) { opened.push(ws); },
      message(ws) {
        ws.send(JSON.stringify({ room: ws.params['room'], user: ws.query.get('user'), test: ws.headers['x-test'] }));
      },
    });
    const port = await listen(defer, app);
    const client = await rawWebSocket(defer, port, '/rooms/caf%C3%A9%20one?user=ann&x=1', {
      headers: { 'X-Test': 'header value', 'Sec-WebSocket-Protocol': 'other, chat.v1' },
    });
    assert.equal(client.response.statusCode, 101, client.response.raw);
    assert.equal(client.response.headers.get('sec-websocket-protocol'), 'chat.v1');
    assert.equal(opened.length, 1);
    const ws = opened[0]!;
    assert.deepEqual({ ...ws.params }, { room: 'café one' });
    assert.equal(ws.query.get('user'), 'ann');
    assert.equal(ws.query.get('x'), '1');
    assert.equal(ws.query.get('missing'), null);
    assert.equal(ws.headers['x-test'], 'header value');
    assert.equal(ws.remoteAddress, '127.0.0.1');
    assert.equal(ws.url, '/rooms/caf%C3%A9%20one?user=ann&x=1');
    assert.equal(ws.protocol, 'chat.v1');
    assert.equal(ws.latencyMs, -1, 'no ping answered yet');

    // The handlers see the same values while messages flow.
    await client.send(text('who am I'));
    const reply = await client.nextMessage(TIMEOUT_MS);
    assert.equal(reply.opcode, Opcode.text);
    assert.deepEqual(JSON.parse(reply.payload.toString()), { room: 'café one', user: 'ann', test: 'header value' });
  });

  it('gives each connection its own params, and a trailing * its rest of the path', async (t) => {
    const defer = cleanupStack(t);
    const seen: Array<Record<string, string>> = [];
    const app = createServer({ pingIntervalMs: 0 })
      .websocket('/rooms/:room/:seat', { open(ws) { seen.push({ ...ws.params }); } })
      .websocket('/feeds/*', { open(ws) { seen.push({ ...ws.params }); } });
    const port = await listen(defer, app);
    for (const urlPath of ['/rooms/a/1', '/rooms/b/2', '/feeds/x/y/z', '/feeds']) {
      const client = await rawWebSocket(defer, port, urlPath);
      assert.equal(client.response.statusCode, 101, `${urlPath}: ${client.response.raw}`);
    }
    assert.deepEqual(seen, [{ room: 'a', seat: '1' }, { room: 'b', seat: '2' }, { '*': 'x/y/z' }, { '*': '' }]);
    assert.equal(app.routeConnectionCount('/rooms/:room/:seat'), 2);
    assert.equal(app.routeConnectionCount('/feeds/*'), 2);
    assert.equal(app.connectionCount, 4);
  });

  it('measures latencyMs once the peer answers a keep-alive ping', async (t) => {
    const defer = cleanupStack(t);
    let ws: WebSocket<undefined> | undefined;
    const app = createServer({ pingIntervalMs: 0 }).websocket('/live', { pingIntervalMs: 40, open(socket) { ws = socket; } });
    const port = await listen(defer, app);
    const client = await rawWebSocket(defer, port, '/live');
    assert.equal(client.response.statusCode, 101);
    assert.equal(ws?.latencyMs, -1);
    const ping = await client.nextFrame(TIMEOUT_MS);
    assert.equal(ping.opcode, Opcode.ping, 'the route-level pingIntervalMs sends a ping');
    await client.send(pong(ping.payload));
    await waitFor(() => (ws?.latencyMs ?? -1) >= 0, TIMEOUT_MS, 'latencyMs to be measured from the pong');
    assert.ok(Number.isFinite(ws!.latencyMs) && ws!.latencyMs < TIMEOUT_MS, `latencyMs ${ws!.latencyMs}`);
  });

  it('answers a plain GET on a WebSocket route (with parameters) with 426 and Upgrade: websocket', async (t) => {
    const defer = cleanupStack(t);
    let opened = 0;
    const app = createServer({ pingIntervalMs: 0 }).websocket('/rooms/:room', { open() { opened++; } });
    const port = await listen(defer, app);
    const result = await request(port, 'GET', '/rooms/lobby?x=1');
    assert.equal(result.status, 426);
    assert.equal(String(result.headers['upgrade']).toLowerCase(), 'websocket');
    assert.equal(result.headers['sec-websocket-version'], '13');
    assert.equal(opened, 0);
    assert.equal((await request(port, 'GET', '/rooms')).status, 404, 'a path the pattern does not match is not a WebSocket path');
  });
});
