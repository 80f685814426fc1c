// Observability wired into a running server (issue 3): the JSON access log gets exactly one line per HTTP
// request, per WebSocket open, per WebSocket close (route pattern, traffic each way, close code) and per refused
// upgrade (reason); metricsPath serves Prometheus text whose series match a scripted sequence of requests,
// connections, messages, refusals, drops and closes.
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { createServer, type Switchyard } from '../../src/server/server.js';
import { Opcode, close, text } from '../_support/frames.js';
import { openRawClient, type HandshakeOptions, type RawClient } from '../_support/raw-client.js';
import { cleanupStack, sleep, withTimeout, waitFor } from '../_support/cleanup.js';

const HOST = '127.0.0.1';
const TIMEOUT_MS = 3000;
type Defer = (cleanup: () => unknown) => void;
type LogLine = Record<string, unknown> & { event: string };

function request(port: number, method: string, urlPath: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return withTimeout(new Promise((resolve, reject) => {
    const req = http.request({ host: HOST, port, method, path: urlPath, agent: false, headers: { 'User-Agent': 'observability-test' } }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => { body += chunk; });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
    });
    req.on('error', reject);
    req.end();
  }), TIMEOUT_MS, `${method} ${urlPath}`);
}

interface Observed { app: Switchyard; port: number; defer: Defer; lines: LogLine[]; rawLines: string[] }

/** The server every test here scripts against: an HTTP route, four WebSocket routes, JSON log, metrics. */
async function observedServer(t: TestContext): Promise<Observed> {
  const defer = cleanupStack(t);
  const rawLines: string[] = [];
  const lines: LogLine[] = [];
  const app = createServer({
    pingIntervalMs: 0,
    shutdownTimeoutMs: 500,
    metricsPath: '/metrics',
    accessLog: { format: 'json', write(line) { rawLines.push(line); lines.push(JSON.parse(line) as LogLine); } },
  })
    .get('/hello', (_req, res) => { res.end('hi'); })
    .websocket('/chat/:room', {
      protocols: ['chat.v1'],
      allowedOrigins: ['https://good.example'],
      message(ws, data, isBinary) { ws.send(data, isBinary); },
    })
    .websocket('/limited', { maxConnections: 1 })
    .websocket('/guarded', { upgrade() { return { status: 401, message: 'log in first' }; } })
    // Every message sent here is over the tiny limit: dropped at once by drop-newest.
    .websocket('/tiny', { maxBackpressureBytes: 16, slowConsumerPolicy: 'drop-newest', open(ws) { ws.send('x'.repeat(100)); } });
  defer(() => app.close());
  const { port } = await app.listen({ port: 0, host: HOST });
  return { app, port, defer, lines, rawLines };
}

async function rawWebSocket(observed: Observed, urlPath: string, options: HandshakeOptions = {}): Promise<RawClient> {
  const client = await openRawClient(observed.port, HOST, { ...options, path: urlPath });
  observed.defer(() => client.destroy());
  return client;
}

/** The chat session of the script: open, two messages each way (11 payload bytes each way), close 1000 "bye". */
async function chatSession(observed: Observed, beforeClose?: () => Promise<void>): Promise<void> {
  const chat = await rawWebSocket(observed, '/chat/one?x=1', { headers: { Origin: 'https://good.example', 'Sec-WebSocket-Protocol': 'chat.v1' } });
  assert.equal(chat.response.statusCode, 101, chat.response.raw);
  for (const message of ['hello', 'world!']) {
    await chat.send(text(message));
    const echoed = await chat.nextMessage(TIMEOUT_MS);
    assert.equal(echoed.opcode, Opcode.text);
    assert.equal(echoed.payload.toString(), message);
  }
  await beforeClose?.();
  await chat.send(close(1000, 'bye'));
  assert.equal((await chat.expectClose(TIMEOUT_MS)).code, 1000);
}

/** The refusals of the script: no route, foreign origin, route limit, hook. Leaves one /limited connection open. */
async function refusals(observed: Observed): Promise<void> {
  assert.equal((await rawWebSocket(observed, '/nope')).response.statusCode, 404);
  assert.equal((await rawWebSocket(observed, '/chat/two', { headers: { Origin: 'https://evil.example' } })).response.statusCode, 403);
  assert.equal((await rawWebSocket(observed, '/limited')).response.statusCode, 101);
  assert.equal((await rawWebSocket(observed, '/limited')).response.statusCode, 503);
  assert.equal((await rawWebSocket(observed, '/guarded')).response.statusCode, 401);
}

/** One session on /tiny: its only message is dropped; the client then closes 1000. */
async function droppedSession(observed: Observed): Promise<void> {
  const tiny = await rawWebSocket(observed, '/tiny');
  assert.equal(tiny.response.statusCode, 101);
  await tiny.send(close(1000));
  const result = await tiny.expectClose(TIMEOUT_MS);
  assert.equal(result.code, 1000);
  assert.deepEqual(result.framesAfterClose, []);
}

function byEvent(lines: readonly LogLine[], event: string): LogLine[] {
  return lines.filter((line) => line.event === event);
}

/** Parses Prometheus text into "name{labels}" -> value. */
function parseMetrics(body: string): Map<string, number> {
  const series = new Map<string, number>();
  for (const line of body.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    series.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return series;
}

async function scrape(port: number): Promise<Map<string, number>> {
  const response = await request(port, 'GET', '/metrics');
  assert.equal(response.status, 200);
  assert.match(String(response.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  return parseMetrics(response.body);
}

function assertSeries(series: Map<string, number>, expected: Record<string, number>): void {
  for (const [name, value] of Object.entries(expected)) {
    assert.equal(series.get(name), value, `${name}: expected ${value}, got ${series.get(name)}\n${[...series.keys()].filter((key) => key.startsWith(name.split('{')[0]!)).join('\n')}`);
  }
}

describe('access log (json) on a running server', () => {
  it('writes exactly one line per HTTP request, WebSocket open, WebSocket close and refused upgrade', async (t) => {
    const observed = await observedServer(t);
    const { port, lines } = observed;

    assert.equal((await request(port, 'GET', '/hello')).status, 200);
    assert.equal((await request(port, 'GET', '/missing')).status, 404);
    assert.equal((await request(port, 'POST', '/hello')).status, 405);
    await waitFor(() => byEvent(lines, 'http').length >= 3, TIMEOUT_MS, 'three http lines');

    await chatSession(observed);
    await refusals(observed);
    await droppedSession(observed);
    await waitFor(() => byEvent(lines, 'ws-close').length >= 2, TIMEOUT_MS, 'the close lines');
    await sleep(100); // anything extra would have arrived by now

    assert.ok(observed.rawLines.every((line) => !line.includes('\n')), 'one line each, no newline inside');
    assert.deepEqual(byEvent(lines, 'http').map((line) => [line['method'], line['url'], line['status'], line['userAgent']]), [
      ['GET', '/hello', 200, 'observability-test'],
      ['GET', '/missing', 404, 'observability-test'],
      ['POST', '/hello', 405, 'observability-test'],
    ], 'one http line per request, none for upgrades');

    const opens = byEvent(lines, 'ws-open');
    assert.deepEqual(opens.map((line) => [line['route'], line['url'], line['protocol'], line['remoteAddress']]), [
      ['/chat/:room', '/chat/one?x=1', 'chat.v1', '127.0.0.1'],
      ['/limited', '/limited', '', '127.0.0.1'],
      ['/tiny', '/tiny', '', '127.0.0.1'],
    ]);
    const closes = byEvent(lines, 'ws-close');
    assert.equal(closes.length, 2, 'the /limited connection is still open: no close line for it yet');
    const chatClose = closes.find((line) => line['route'] === '/chat/:room')!;
    assert.equal(chatClose['id'], opens[0]!['id'], 'the close pairs with its open by id');
    assert.deepEqual(
      { code: chatClose['code'], reason: chatClose['reason'], wasClean: chatClose['wasClean'], messagesIn: chatClose['messagesIn'], messagesOut: chatClose['messagesOut'], droppedMessages: chatClose['droppedMessages'] },
      { code: 1000, reason: 'bye', wasClean: true, messagesIn: 2, messagesOut: 2, droppedMessages: 0 },
    );
    assert.deepEqual({ bytesIn: chatClose['bytesIn'], bytesOut: chatClose['bytesOut'] }, { bytesIn: 11, bytesOut: 11 },
      'payload bytes of the data messages each way ("hello" + "world!"), as documented');
    const tinyClose = closes.find((line) => line['route'] === '/tiny')!;
    assert.deepEqual({ code: tinyClose['code'], messagesOut: tinyClose['messagesOut'], droppedMessages: tinyClose['droppedMessages'] },
      { code: 1000, messagesOut: 0, droppedMessages: 1 });

    assert.deepEqual(byEvent(lines, 'ws-reject').map((line) => [line['url'], line['route'], line['status'], line['reason']]), [
      ['/nope', '', 404, 'no-route'],
      ['/chat/two', '/chat/:room', 403, 'origin'],
      ['/limited', '/limited', 503, 'route-limit'],
      ['/guarded', '/guarded', 401, 'upgrade-hook'],
    ]);
    assert.equal(byEvent(lines, 'ws-reject')[3]!['detail'], 'log in first');
    assert.equal(lines.length, 3 + 3 + 2 + 4, `every line accounted for:\n${observed.rawLines.join('\n')}`);
  });
});

describe('metrics (metricsPath) on a running server', () => {
  it('serves Prometheus text whose series follow a scripted sequence', async (t) => {
    const observed = await observedServer(t);
    const { port } = observed;

    assert.equal((await request(port, 'GET', '/hello')).status, 200);
    assert.equal((await request(port, 'GET', '/missing')).status, 404);
    assert.equal((await request(port, 'POST', '/hello')).status, 405);

    // Scrape while the chat connection is open: the gauge counts it and its traffic so far shows already.
    let whileOpen: Map<string, number> | undefined;
    await chatSession(observed, async () => { whileOpen = await scrape(port); });
    assertSeries(whileOpen!, {
      'switchyard_websocket_open_connections{route="/chat/:room"}': 1,
      'switchyard_websocket_connections_total{route="/chat/:room"}': 1,
      'switchyard_websocket_messages_received_total{route="/chat/:room"}': 2,
      'switchyard_websocket_messages_sent_total{route="/chat/:room"}': 2,
      'switchyard_http_requests_total{method="GET",status="200"}': 1,
      'switchyard_http_requests_total{method="GET",status="404"}': 1,
      'switchyard_http_requests_total{method="POST",status="405"}': 1,
    });
    await refusals(observed);
    await droppedSession(observed);
    await waitFor(() => observed.app.routeConnectionCount('/tiny') === 0 && observed.app.routeConnectionCount('/chat/:room') === 0,
      TIMEOUT_MS, 'the sessions to end');

    const after = await scrape(port);
    assertSeries(after, {
      'switchyard_websocket_open_connections{route="/chat/:room"}': 0,
      'switchyard_websocket_open_connections{route="/limited"}': 1,
      'switchyard_websocket_open_connections{route="/tiny"}': 0,
      'switchyard_websocket_connections_total{route="/chat/:room"}': 1,
      'switchyard_websocket_connections_total{route="/limited"}': 1,
      'switchyard_websocket_connections_total{route="/tiny"}': 1,
      // Counted live at the first scrape and again from the close record: never twice.
      'switchyard_websocket_messages_received_total{route="/chat/:room"}': 2,
      'switchyard_websocket_messages_sent_total{route="/chat/:room"}': 2,
      'switchyard_websocket_closes_total{route="/chat/:room",code="1000"}': 1,
      'switchyard_websocket_closes_total{route="/tiny",code="1000"}': 1,
      'switchyard_websocket_messages_dropped_total{route="/tiny"}': 1,
      'switchyard_websocket_messages_sent_total{route="/tiny"}': 0,
      'switchyard_handshakes_rejected_total{reason="no-route"}': 1,
      'switchyard_handshakes_rejected_total{reason="origin"}': 1,
      'switchyard_handshakes_rejected_total{reason="route-limit"}': 1,
      'switchyard_handshakes_rejected_total{reason="upgrade-hook"}': 1,
      // /hello and the first scrape (a request is counted once it has finished).
      'switchyard_http_requests_total{method="GET",status="200"}': 2,
      'switchyard_http_requests_total{method="GET",status="404"}': 1,
      'switchyard_http_requests_total{method="POST",status="405"}': 1,
      'switchyard_http_request_duration_seconds_count': 4,
    });
    assert.equal(after.get('switchyard_handshakes_rejected_total{reason="server-limit"}'), undefined, 'no series for a reason that never happened');
    assert.equal([...after.keys()].some((key) => key.includes('/chat/one')), false, 'labels carry route patterns, never URLs');
  });

  it('counts message payload bytes each way, once, across a live scrape and the close', async (t) => {
    const observed = await observedServer(t);
    let whileOpen: Map<string, number> | undefined;
    await chatSession(observed, async () => { whileOpen = await scrape(observed.port); });
    await waitFor(() => observed.app.connectionCount === 0, TIMEOUT_MS, 'the chat session to end');
    const after = await scrape(observed.port);
    for (const series of [whileOpen!, after]) {
      assertSeries(series, {
        'switchyard_websocket_received_bytes_total{route="/chat/:room"}': 11,
        'switchyard_websocket_sent_bytes_total{route="/chat/:room"}': 11,
      });
    }
  });
});
