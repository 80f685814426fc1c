// The checks every proxy in docs/deploy.md gets: switchyard serve (static ROOT, --echo /echo, --broadcast /chat) behind
// the real proxy, configured from the doc; static GET, echo, broadcast to 3 clients, the doc's X-Forwarded-*
// headers, and idle tunnels: kept open by switchyard's pings, cut by the proxy's idle timeout without them.
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { promises as fsp } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import WebSocket, { type ClientOptions } from 'ws';
import { startCliServer, type RunningServer } from '../_support/cli-server.js';
import { needPeer } from '../_support/peers.js';
import { AsyncQueue, firstDifference, patternBytes, withTimeout } from '../interop/_wait.js';
import type { RunningProxy } from './_proxies.js';

export const stepMs = 5_000;
/** How long the idle tests stay quiet: more than twice the proxies' shortened 3 s idle timeouts. */
export const idleMs = 8_000;
/** The proxies' idle timeouts in these tests (the doc's 60 s and 360 s, shortened). */
export const shortIdleSeconds = 3;
/** switchyard's ping interval in the keep-alive case: well inside shortIdleSeconds, as the doc's rule asks. */
export const pingIntervalMs = 1_000;

export const indexHtml = '<!doctype html><title>switchyard behind a proxy</title><p>static page \u2713</p>\n';

export interface ControlCase {
  /** What is shortened, for the test name: e.g. "proxy_read_timeout 3s". */
  readonly label: string;
  /** Starts the proxy in front of a switchyard whose pings are off. */
  start(upstreamPort: number): Promise<RunningProxy>;
  /** A line the proxy logs when its own timer cut the tunnel (proves it was the proxy, not something else). */
  readonly logLine?: RegExp;
  /** When the client sees the close, counted from the last message (ms): [earliest, latest]. */
  readonly cutWindowMs: readonly [number, number];
}

export interface ProxyKind {
  readonly name: string;
  missing(): string | undefined;
  /** The doc's configuration as written (ports substituted): for the header check. */
  startAsDocumented(upstreamPort: number): Promise<RunningProxy>;
  /** The doc's configuration with every idle timeout shortened to shortIdleSeconds. */
  startShortTimeouts(upstreamPort: number): Promise<RunningProxy>;
  readonly controls: readonly ControlCase[];
}

export interface Deployment {
  /** switchyard serve ROOT --echo /echo --broadcast /chat --ping-interval-ms 1000 */
  readonly server: RunningServer;
  /** The proxy, short timeouts, in front of `server`. */
  readonly proxy: RunningProxy;
  /** The same switchyard with --ping-interval-ms 0. */
  readonly quietServer: RunningServer;
  /** One proxy per control case, in front of `quietServer`. */
  readonly controlProxies: readonly RunningProxy[];
  readonly root: string;
}

/**
 * Registers before/after hooks in the current describe that start both switchyards and the proxies in front
 * of them (in parallel), and stop every one of them by pid afterwards, whatever happened in between.
 */
export function deployment(kind: ProxyKind): () => Deployment {
  let started: Deployment | undefined;
  const stops: Array<() => Promise<void>> = [];
  before(async () => {
    if (kind.missing() !== undefined) return; // each test says so through needPeer
    const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'switchyard-deploy-root-'));
    stops.push(() => fsp.rm(root, { recursive: true, force: true }));
    await fsp.writeFile(path.join(root, 'index.html'), indexHtml);
    const serve = (ping: number) => startCliServer([root, '--echo', '/echo', '--broadcast', '/chat', '--ping-interval-ms', String(ping)]);
    const [server, quietServer] = await startAll([serve(pingIntervalMs), serve(0)], (running) => stops.push(() => running.stop()));
    const [proxy, ...controlProxies] = await startAll(
      [kind.startShortTimeouts(server!.port), ...kind.controls.map((control) => control.start(quietServer!.port))],
      (running) => stops.push(() => running.stop()),
    );
    started = { server: server!, quietServer: quietServer!, proxy: proxy!, controlProxies, root };
  });
  after(async () => {
    for (const stop of stops.reverse()) {
      try { await stop(); } catch { /* keep stopping the rest */ }
    }
  });
  return () => {
    assert.ok(started, 'the proxies and switchyard did not start (see the before hook)');
    return started;
  };
}

/**
 * Waits for every start, registering a stop for each one that started before reporting the first failure, so a
 * failed start never leaves another process running behind the test's back.
 */
export async function startAll<T>(starts: ReadonlyArray<Promise<T>>, onStarted: (started: T) => unknown): Promise<T[]> {
  const results = await Promise.allSettled(starts);
  for (const result of results) if (result.status === 'fulfilled') onStarted(result.value);
  const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((result) => (result as PromiseFulfilledResult<T>).value);
}

// ---- clients ----

export interface Received {
  readonly data: Buffer;
  readonly isBinary: boolean;
}

export interface Client {
  readonly socket: WebSocket;
  nextMessage(what: string, timeoutMs?: number): Promise<Received>;
  /** The close event, or undefined when none came within timeoutMs. */
  closedWithin(timeoutMs: number): Promise<{ code: number; reason: string; atMs: number } | undefined>;
  /** Pings received from the server so far (ws answers each with a pong by itself). */
  readonly pings: number;
  readonly pendingMessages: readonly Received[];
}

/** A `ws` client (deflate off) that queues what arrives; terminated when the test ends, whatever happened. */
export async function openClient(t: TestContext, url: string, options: ClientOptions = {}): Promise<Client> {
  const socket = new WebSocket(url, { perMessageDeflate: false, maxPayload: 1 << 24, ...options });
  t.after(() => { socket.terminate(); });
  const messages = new AsyncQueue<Received>();
  const closes = new AsyncQueue<{ code: number; reason: string; atMs: number }>();
  let pings = 0;
  socket.on('message', (data, isBinary) => {
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    messages.push({ data: bytes, isBinary });
  });
  socket.on('ping', () => { pings++; });
  socket.on('close', (code, reason) => closes.push({ code, reason: reason.toString('utf8'), atMs: Date.now() }));
  let failure: Error | undefined;
  socket.on('error', (error) => { failure = error; });
  await withTimeout(
    Promise.race([once(socket, 'open'), once(socket, 'close').then(() => { throw failure ?? new Error('closed before open'); })]),
    stepMs, `ws client to open ${url}`,
  );
  return {
    socket,
    nextMessage: (what, timeoutMs = stepMs) => messages.next(timeoutMs, `${what} on ${url}`),
    closedWithin: (timeoutMs) => closes.next(timeoutMs, 'close').catch(() => undefined),
    get pings() { return pings; },
    get pendingMessages() { return messages.pending; },
  };
}

/** Sends one message and expects it back unchanged with its type. */
export async function expectEcho(client: Client, sent: string | Buffer, what: string): Promise<void> {
  client.socket.send(sent);
  const echoed = await client.nextMessage(what);
  const isBinary = typeof sent !== 'string';
  const bytes = typeof sent === 'string' ? Buffer.from(sent) : sent;
  assert.equal(echoed.isBinary, isBinary, `${what}: arrived as ${echoed.isBinary ? 'binary' : 'text'}`);
  assert.equal(echoed.data.length, bytes.length, `${what}: length differs`);
  assert.equal(firstDifference(echoed.data, bytes), -1, `${what}: bytes differ`);
}

/** A refused WebSocket handshake: the status and body the client got instead of 101. */
export async function expectRefusal(url: string): Promise<{ status: number; body: string }> {
  const socket = new WebSocket(url, { perMessageDeflate: false });
  socket.on('error', () => {});
  try {
    return await withTimeout(new Promise<{ status: number; body: string }>((resolve, reject) => {
      socket.on('unexpected-response', (request, response) => {
        let body = '';
        response.setEncoding('utf8').on('data', (text: string) => { body += text; });
        response.on('end', () => { resolve({ status: response.statusCode ?? 0, body }); request.destroy(); });
      });
      socket.on('open', () => reject(new Error(`${url}: the handshake succeeded`)));
    }), stepMs, `the refused handshake on ${url}`);
  } finally {
    socket.terminate();
  }
}

/** GET on a fresh connection (no keep-alive pool left behind), bounded. */
export function httpGet(url: string, options: https.RequestOptions = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return withTimeout(new Promise((resolve, reject) => {
    const send = url.startsWith('https:') ? https.request : http.request;
    const request = send(url, { agent: false, ...options }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (text: string) => { body += text; });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end();
  }), stepMs, `GET ${url}`);
}

// ---- the shared tests ----

/** The checks every proxy gets, through the short-timeout proxy in front of the pinging switchyard. */
export function describeCommonChecks(kind: ProxyKind, env: () => Deployment): void {
  const testOptions = { timeout: 20_000 } as const;

  it('serves the static page from switchyard\'s ROOT, and switchyard\'s 404 and 426', testOptions, async (t) => {
    if (!needPeer(t, kind.missing())) return;
    const { proxy } = env();
    const page = await httpGet(`${proxy.httpUrl}/`);
    assert.equal(page.status, 200, `GET / through ${kind.name}: ${page.status} ${page.body}`);
    assert.equal(page.body, indexHtml);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    const missing = await httpGet(`${proxy.httpUrl}/no-such-file.html`);
    assert.equal(missing.status, 404);
    // A plain GET on a WebSocket route reaches switchyard as one: its 426 comes back through the proxy.
    const plain = await httpGet(`${proxy.httpUrl}/echo`);
    assert.equal(plain.status, 426, `plain GET /echo through ${kind.name}: ${plain.status} ${plain.body}`);
  });

  it('echoes text and binary messages (every byte value, and 1 MiB) unchanged', testOptions, async (t) => {
    if (!needPeer(t, kind.missing())) return;
    const client = await openClient(t, `${env().proxy.wsUrl}/echo`);
    await expectEcho(client, 'hello through the proxy \u2713 \u{1F600}', 'the echoed text');
    await expectEcho(client, Buffer.from(Array.from({ length: 256 }, (_, i) => i)), 'the echoed 256 byte values');
    await expectEcho(client, patternBytes(1 << 20), 'the echoed 1 MiB binary message');
    await expectEcho(client, '', 'the echoed empty text message');
    assert.equal(client.pendingMessages.length, 0, 'extra messages arrived');
  });

  it('broadcasts every message on /chat to all 3 clients, sender included', testOptions, async (t) => {
    if (!needPeer(t, kind.missing())) return;
    const url = `${env().proxy.wsUrl}/chat`;
    const clients: Client[] = [];
    for (let i = 0; i < 3; i++) clients.push(await openClient(t, url));
    for (const [sender, client] of clients.entries()) {
      const sent = `from client ${sender}`;
      client.socket.send(sent);
      for (const [receiver, other] of clients.entries()) {
        const got = await other.nextMessage(`client ${receiver} to receive "${sent}"`);
        assert.deepEqual([got.isBinary, got.data.toString('utf8')], [false, sent], `client ${receiver}`);
      }
    }
    const binary = Buffer.from([0, 1, 127, 128, 254, 255]);
    clients[2]!.socket.send(binary);
    for (const [receiver, other] of clients.entries()) {
      const got = await other.nextMessage(`client ${receiver} to receive the binary broadcast`);
      assert.deepEqual([got.isBinary, got.data], [true, binary], `client ${receiver}`);
    }
    for (const [receiver, client] of clients.entries()) {
      assert.equal(client.pendingMessages.length, 0, `client ${receiver} received extra messages`);
    }
  });

  it('passes the upgrade to the upstream as HTTP/1.1 with Upgrade, Connection and X-Forwarded-* (doc config as written)', testOptions, async (t) => {
    if (!needPeer(t, kind.missing())) return;
    // An upstream that records what reaches it: the headers switchyard (or an embedding app) would see.
    const seen = new AsyncQueue<{ kind: 'plain' | 'upgrade'; httpVersion: string; headers: http.IncomingHttpHeaders }>();
    const recorder = http.createServer((req, res) => {
      seen.push({ kind: 'plain', httpVersion: req.httpVersion, headers: req.headers });
      res.end('recorded');
    });
    recorder.on('upgrade', (req, socket) => {
      seen.push({ kind: 'upgrade', httpVersion: req.httpVersion, headers: req.headers });
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    });
    recorder.listen(0, '127.0.0.1');
    t.after(() => new Promise<void>((resolve) => { recorder.closeAllConnections(); recorder.close(() => resolve()); }));
    await withTimeout(once(recorder, 'listening'), stepMs, 'the recording upstream to listen');
    const proxy = await kind.startAsDocumented((recorder.address() as AddressInfo).port);
    t.after(() => proxy.stop());

    await expectRefusal(`${proxy.wsUrl}/chat`).catch(() => undefined); // the recorder refuses; only its record matters
    const upgrade = await seen.next(stepMs, `the upgrade request to reach the upstream through ${kind.name}`);
    assert.equal(upgrade.kind, 'upgrade', 'the upstream saw a plain request, not an upgrade');
    assert.equal(upgrade.httpVersion, '1.1');
    assert.equal(upgrade.headers.upgrade?.toLowerCase(), 'websocket');
    assert.match(String(upgrade.headers.connection), /(^|,)\s*upgrade\s*($|,)/i);
    assert.ok(upgrade.headers['sec-websocket-key'], 'Sec-WebSocket-Key was not forwarded');
    assert.equal(upgrade.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(upgrade.headers['x-forwarded-proto'], 'http');
    assert.match(String(upgrade.headers['x-forwarded-host']), /^127\.0\.0\.1(:\d+)?$/);

    await httpGet(`${proxy.httpUrl}/page`);
    const plain = await seen.next(stepMs, `the plain request to reach the upstream through ${kind.name}`);
    assert.equal(plain.kind, 'plain');
    assert.equal(plain.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(plain.headers.upgrade, undefined, 'a plain request must not be sent as an upgrade');
  });

  describe(`idle WebSockets through ${kind.name} (idle timeouts shortened to ${shortIdleSeconds} s)`, { concurrency: true }, () => {
    it(`stay open for ${idleMs / 1000} s when switchyard pings every ${pingIntervalMs} ms, and still echo`, { timeout: 30_000 }, async (t) => {
      if (!needPeer(t, kind.missing())) return;
      const { proxy, server } = env();
      const client = await openClient(t, `${proxy.wsUrl}/echo`);
      await expectEcho(client, 'before the quiet period', 'the echo before the quiet period');
      const pingsBefore = client.pings;
      const quietSince = Date.now();
      const closed = await client.closedWithin(idleMs);
      assert.equal(closed, undefined,
        `the idle tunnel closed with ${closed?.code} after ${(closed?.atMs ?? 0) - quietSince} ms:\n${proxy.output()}\n${server.output()}`);
      const pings = client.pings - pingsBefore;
      assert.ok(pings >= idleMs / pingIntervalMs - 3, `only ${pings} pings reached the client through ${kind.name} in ${idleMs} ms`);
      await expectEcho(client, 'after the quiet period', 'the echo after the quiet period');
      t.diagnostic(`open after ${idleMs} ms of application silence; ${pings} pings (and pongs) crossed ${kind.name}`);
    });

    for (const [index, control] of kind.controls.entries()) {
      it(`control: with pings off (--ping-interval-ms 0), ${control.label} cuts the idle tunnel (1006)`, { timeout: 30_000 }, async (t) => {
        if (!needPeer(t, kind.missing())) return;
        const proxy = env().controlProxies[index]!;
        const client = await openClient(t, `${proxy.wsUrl}/echo`);
        await expectEcho(client, 'before the quiet period', 'the echo before the quiet period');
        const quietSince = Date.now();
        const closed = await client.closedWithin(idleMs + 2_000);
        assert.ok(closed, `${control.label} did not cut a tunnel idle for ${idleMs + 2_000} ms: the control case cannot fail the way it should`);
        const afterMs = closed.atMs - quietSince;
        assert.equal(closed.code, 1006, `expected an abnormal close (no close frame), got ${closed.code} "${closed.reason}"`);
        const [earliest, latest] = control.cutWindowMs;
        t.diagnostic(`${kind.name} cut the idle tunnel after ${afterMs} ms with ${closed.code}`);
        assert.ok(afterMs >= earliest && afterMs <= latest, `cut after ${afterMs} ms, expected ${earliest}-${latest} ms`);
        assert.equal(client.pings, 0, 'pings arrived although switchyard had them off');
        if (control.logLine) assert.match(proxy.output(), control.logLine, `${kind.name} did not log its timeout`);
      });
    }
  });
}
