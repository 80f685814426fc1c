// The upgrade hook and Origin checks (issue 3, item 3): a route's `upgrade(request)` runs before any 101, sync or
// async; it accepts (with data the connection carries as ws.data, and optionally a subprotocol the client
// offered) or refuses with an HTTP status; a hook that fails or answers nonsense becomes a 500; a client that
// leaves while the hook runs never becomes a connection. allowedOrigins refuses foreign pages with 403.
import { describe, it } from 'node:test';
import * as net from 'node:net';
import assert from 'node:assert/strict';
import { createServer, type UpgradeRequest, type WebSocketRoute } from '../../src/server/server.js';
import { Opcode, parseServerFrames, text } from '../_support/frames.js';
import { buildRequest, type RawClient } from '../_support/raw-client.js';
import { cleanupStack, sleep, withTimeout, waitFor } from '../_support/cleanup.js';
import { LOOPBACK_HOST, listen, rawWebSocket, type Defer } from '../_support/embedded-server.js';

const TIMEOUT_MS = 3000;

function captureWarnings(defer: Defer): string[] {
  const warnings: string[] = [];
  const onWarning = (warning: Error): void => { if (warning.name === 'SwitchyardWarning') warnings.push(warning.message); };
  process.on('warning', onWarning);
  defer(() => process.off('warning', onWarning));
  return warnings;
}

/** Asserts an upgrade was refused with `status` before any 101, reads the body, and waits for the server to close. */
async function expectRefused(client: RawClient, status: number): Promise<string> {
  assert.equal(client.response.statusCode, status, `expected ${status}, got:\n${client.response.raw}`);
  assert.doesNotMatch(client.response.raw, /Sec-WebSocket-Accept/i);
  await withTimeout(client.closed, TIMEOUT_MS, 'the server to close a refused upgrade');
  assert.equal(client.receivedFrames.length, 0, 'no frame after a refusal');
  return client.body.toString('utf8');
}

interface Session { user: string; room: string }

describe('upgrade hook: accepting', () => {
  for (const mode of ['sync', 'async'] as const) {
    it(`accepts (${mode}) with data that open and message see as ws.data, after seeing the request`, async (t) => {
      const defer = cleanupStack(t);
      const requests: UpgradeRequest[] = [];
      const openData: Array<Session | undefined> = [];
      const decide = (request: UpgradeRequest): { data: Session } => {
        requests.push(request);
        return { data: { user: request.query.get('user') ?? '?', room: request.params['room'] ?? '?' } };
      };
      const route: WebSocketRoute<Session> = {
        upgrade: mode === 'sync' ? decide : async (request) => { await sleep(20); return decide(request); },
        open(ws) { openData.push(ws.data); },
        message(ws) { ws.send(JSON.stringify(ws.data)); },
      };
      const app = createServer({ pingIntervalMs: 0 }).websocket<Session>('/rooms/:room', route);
      const port = await listen(defer, app);
      const client = await rawWebSocket(defer, port, '/rooms/blue?user=alice', {
        headers: { Cookie: 'session=1', 'Sec-WebSocket-Protocol': 'x.v1, y.v2' },
      });
      assert.equal(client.response.statusCode, 101, client.response.raw);
      assert.deepEqual(openData, [{ user: 'alice', room: 'blue' }], 'open ran once with the hook\'s data');

      assert.equal(requests.length, 1);
      const seen = requests[0]!;
      assert.equal(seen.url, '/rooms/blue?user=alice');
      assert.equal(seen.path, '/rooms/blue');
      assert.deepEqual({ ...seen.params }, { room: 'blue' });
      assert.equal(seen.headers.cookie, 'session=1');
      assert.equal(seen.remoteAddress, '127.0.0.1');
      assert.deepEqual(seen.protocols, ['x.v1', 'y.v2']);

      await client.send(text('whoami'));
      const reply = await client.nextMessage(TIMEOUT_MS);
      assert.equal(reply.opcode, Opcode.text);
      assert.deepEqual(JSON.parse(reply.payload.toString()), { user: 'alice', room: 'blue' });
    });
  }

  it('accepts with no data when the hook returns undefined (sync or async)', async (t) => {
    const defer = cleanupStack(t);
    const data: unknown[] = [];
    const app = createServer({ pingIntervalMs: 0 })
      .websocket('/sync', { upgrade() { return undefined; }, open(ws) { data.push(ws.data); } })
      .websocket('/async', { async upgrade() { await sleep(5); }, open(ws) { data.push(ws.data); } });
    const port = await listen(defer, app);
    assert.equal((await rawWebSocket(defer, port, '/sync')).response.statusCode, 101);
    assert.equal((await rawWebSocket(defer, port, '/async')).response.statusCode, 101);
    assert.deepEqual(data, [undefined, undefined]);
    assert.equal(app.connectionCount, 2);
  });
});

describe('upgrade hook: refusing', () => {
  for (const mode of ['sync', 'async'] as const) {
    it(`refuses (${mode}) with the hook's status, message and headers before any 101; open never runs`, async (t) => {
      const defer = cleanupStack(t);
      let opened = 0;
      const decide = (request: UpgradeRequest) => {
        const status = Number(request.query.get('status'));
        if (status === 429) return { status, message: 'slow down', headers: { 'Retry-After': '7' } };
        return { status, message: status === 401 ? 'log in first' : 'not for you' };
      };
      const app = createServer({ pingIntervalMs: 0 }).websocket('/guarded', {
        upgrade: mode === 'sync' ? decide : async (request) => { await sleep(10); return decide(request); },
        open() { opened++; },
      });
      const port = await listen(defer, app);

      const unauthorized = await rawWebSocket(defer, port, '/guarded?status=401');
      assert.equal(await expectRefused(unauthorized, 401), 'log in first\n');
      const forbidden = await rawWebSocket(defer, port, '/guarded?status=403');
      assert.equal(await expectRefused(forbidden, 403), 'not for you\n');
      const limited = await rawWebSocket(defer, port, '/guarded?status=429');
      assert.equal(await expectRefused(limited, 429), 'slow down\n');
      assert.equal(limited.response.headers.get('retry-after'), '7');
      assert.equal(opened, 0);
      assert.equal(app.connectionCount, 0);
      assert.equal(app.routeConnectionCount('/guarded'), 0);
    });
  }

  it('answers 500 when the hook throws or its promise rejects, and the route keeps working', async (t) => {
    const defer = cleanupStack(t);
    const warnings = captureWarnings(defer);
    let opened = 0;
    const app = createServer({ pingIntervalMs: 0 }).websocket('/fragile', {
      upgrade(request) {
        const how = request.query.get('fail');
        if (how === 'throw') throw new Error('hook threw');
        if (how === 'reject') return Promise.reject(new Error('hook rejected'));
        return undefined;
      },
      open() { opened++; },
    });
    const port = await listen(defer, app);
    await expectRefused(await rawWebSocket(defer, port, '/fragile?fail=throw'), 500);
    await expectRefused(await rawWebSocket(defer, port, '/fragile?fail=reject'), 500);
    assert.equal(opened, 0);
    assert.equal(app.routeConnectionCount('/fragile'), 0);
    const fine = await rawWebSocket(defer, port, '/fragile');
    assert.equal(fine.response.statusCode, 101);
    assert.equal(opened, 1);
    assert.ok(warnings.some((w) => w.includes('hook threw')), `warnings: ${warnings.join(' | ')}`);
    assert.ok(warnings.some((w) => w.includes('hook rejected')), `warnings: ${warnings.join(' | ')}`);
  });

  it('answers 500 when the hook refuses with a status that is not a 4xx or 5xx integer', async (t) => {
    const defer = cleanupStack(t);
    let opened = 0;
    const statuses: unknown[] = [200, 101, 302, 399, 600, 401.5, '401', Number.NaN];
    const app = createServer({ pingIntervalMs: 0 }).websocket('/odd', {
      upgrade(request) { return { status: statuses[Number(request.query.get('i'))] as number, message: 'odd' }; },
      open() { opened++; },
    });
    const port = await listen(defer, app);
    for (let i = 0; i < statuses.length; i++) {
      const client = await rawWebSocket(defer, port, `/odd?i=${i}`);
      await expectRefused(client, 500);
    }
    assert.equal(opened, 0);
  });
});

describe('upgrade hook: choosing the subprotocol', () => {
  it('selects the protocol the hook names when the client offered it, over the route\'s own choice', async (t) => {
    const defer = cleanupStack(t);
    const protocols: string[] = [];
    const app = createServer({ pingIntervalMs: 0 }).websocket('/chat', {
      protocols: ['chat.v2'],
      upgrade(request) { return { protocol: request.query.get('pick') ?? undefined } as { protocol: string }; },
      open(ws) { protocols.push(ws.protocol); },
    });
    const port = await listen(defer, app);
    const picked = await rawWebSocket(defer, port, '/chat?pick=chat.v1', { headers: { 'Sec-WebSocket-Protocol': 'chat.v1, chat.v2' } });
    assert.equal(picked.response.statusCode, 101, picked.response.raw);
    assert.equal(picked.response.headers.get('sec-websocket-protocol'), 'chat.v1');
    // Without a pick, the route's own list decides.
    const routeChoice = await rawWebSocket(defer, port, '/chat', { headers: { 'Sec-WebSocket-Protocol': 'chat.v1, chat.v2' } });
    assert.equal(routeChoice.response.headers.get('sec-websocket-protocol'), 'chat.v2');
    assert.deepEqual(protocols, ['chat.v1', 'chat.v2']);
  });

  it('answers 500 (never a 101 naming it) when the hook selects a protocol the client did not offer', async (t) => {
    const defer = cleanupStack(t);
    const warnings = captureWarnings(defer);
    let opened = 0;
    const app = createServer({ pingIntervalMs: 0 }).websocket('/chat', {
      protocols: ['chat.v2'],
      upgrade() { return { protocol: 'chat.v3' }; },
      open() { opened++; },
    });
    const port = await listen(defer, app);
    const offered = await rawWebSocket(defer, port, '/chat', { headers: { 'Sec-WebSocket-Protocol': 'chat.v1, chat.v2' } });
    await expectRefused(offered, 500);
    const none = await rawWebSocket(defer, port, '/chat');
    await expectRefused(none, 500);
    assert.equal(opened, 0);
    assert.ok(warnings.some((w) => w.includes('chat.v3')), `warnings: ${warnings.join(' | ')}`);
  });
});

describe('upgrade hook: a client that leaves while the hook runs', () => {
  for (const leave of ['destroy', 'end'] as const) {
    it(`never opens a connection for it (client socket ${leave}()), and the counts return to 0`, async (t) => {
      const defer = cleanupStack(t);
      let hookStarted = 0;
      let releaseHook: () => void = () => {};
      const hookGate = new Promise<void>((resolve) => { releaseHook = resolve; });
      defer(() => releaseHook());
      let hookFinished = false;
      let opened = 0;
      let closed = 0;
      const app = createServer({ pingIntervalMs: 0 }).websocket('/slow', {
        async upgrade() { hookStarted++; await hookGate; hookFinished = true; return { data: 'late' }; },
        open() { opened++; },
        close() { closed++; },
      });
      const port = await listen(defer, app);

      const socket = net.connect({ port, host: LOOPBACK_HOST });
      defer(() => socket.destroy());
      socket.on('error', () => { /* a reset after leaving is fine */ });
      let received = '';
      socket.setEncoding('latin1').on('data', (chunk: string) => { received += chunk; });
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      socket.write(buildRequest(LOOPBACK_HOST, port, { path: '/slow' }));
      await waitFor(() => hookStarted === 1, TIMEOUT_MS, 'the hook to start');
      assert.equal(app.routeConnectionCount('/slow'), 1, 'an upgrade in its hook counts against the route');
      assert.equal(app.connectionCount, 0, 'an upgrade in its hook is not yet a connection');

      // The client gives up before the hook decides.
      if (leave === 'destroy') socket.destroy();
      else socket.end();
      await sleep(50);
      releaseHook();
      await waitFor(() => hookFinished, TIMEOUT_MS, 'the hook to finish');
      // Give a wrongly opened connection every chance to show itself.
      await sleep(100);
      assert.equal(opened, 0, 'open ran for a client that had already left');
      assert.equal(closed, 0);
      assert.equal(app.connectionCount, 0);
      assert.equal(app.routeConnectionCount('/slow'), 0);
      assert.doesNotMatch(received, / 101 /);
    });
  }

  it('keeps the bytes a client sent while the hook ran and delivers them once the connection opens', async (t) => {
    const defer = cleanupStack(t);
    let hookStarted = 0;
    let releaseHook: () => void = () => {};
    const hookGate = new Promise<void>((resolve) => { releaseHook = resolve; });
    defer(() => releaseHook());
    const app = createServer({ pingIntervalMs: 0 }).websocket('/slow', {
      async upgrade() { hookStarted++; await hookGate; },
      message(ws, data, isBinary) { ws.send(data, isBinary); },
    });
    const port = await listen(defer, app);
    const socket = net.connect({ port, host: LOOPBACK_HOST });
    defer(() => socket.destroy());
    socket.on('error', () => {});
    let received = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => { received = Buffer.concat([received, chunk]); });
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(buildRequest(LOOPBACK_HOST, port, { path: '/slow' }));
    await waitFor(() => hookStarted === 1, TIMEOUT_MS, 'the hook to start');
    // A client that does not wait for the 101 (RFC 6455 says it should): its frame must not be lost.
    socket.write(text('sent early'));
    await sleep(30);
    releaseHook();
    await waitFor(() => received.includes('\r\n\r\n') && parseServerFrames(received.subarray(received.indexOf('\r\n\r\n') + 4)).frames.length > 0,
      TIMEOUT_MS, 'the 101 and the echo');
    const headEnd = received.indexOf('\r\n\r\n') + 4;
    assert.match(received.subarray(0, headEnd).toString('latin1'), /^HTTP\/1\.1 101 /);
    const frames = parseServerFrames(received.subarray(headEnd)).frames;
    assert.equal(frames[0]?.opcode, Opcode.text);
    assert.equal(frames[0]?.payload.toString(), 'sent early');
  });
});

describe('upgrade hook: a client that streams data while the hook runs', () => {
  it('is dropped rather than buffered without bound, and never opens', async (t) => {
    const defer = cleanupStack(t);
    let hookStarted = 0;
    let releaseHook: () => void = () => {};
    const hookGate = new Promise<void>((resolve) => { releaseHook = resolve; });
    defer(() => releaseHook());
    let hookFinished = false;
    let opened = 0;
    const app = createServer({ pingIntervalMs: 0 }).websocket('/slow', {
      async upgrade() { hookStarted++; await hookGate; hookFinished = true; },
      open() { opened++; },
    });
    const port = await listen(defer, app);
    const socket = net.connect({ port, host: LOOPBACK_HOST });
    defer(() => socket.destroy());
    socket.on('error', () => { /* the server drops us: a reset is expected */ });
    let closed = false;
    socket.once('close', () => { closed = true; });
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(buildRequest(LOOPBACK_HOST, port, { path: '/slow' }));
    await waitFor(() => hookStarted === 1, TIMEOUT_MS, 'the hook to start');
    // 4 MiB of frames before any 101: far more than a client may send early.
    const frame = text('x'.repeat(60_000));
    for (let i = 0; i < 70 && !closed; i++) socket.write(frame);
    await waitFor(() => closed, TIMEOUT_MS, 'the server to drop the streaming client');
    releaseHook();
    await waitFor(() => hookFinished, TIMEOUT_MS, 'the hook to finish');
    await sleep(50);
    assert.equal(opened, 0);
    assert.equal(app.connectionCount, 0);
    assert.equal(app.routeConnectionCount('/slow'), 0);
  });
});

describe('allowedOrigins', () => {
  it('admits a listed Origin, refuses any other with 403 before any 101, and admits a request with no Origin', async (t) => {
    const defer = cleanupStack(t);
    let opened = 0;
    const app = createServer({ pingIntervalMs: 0 }).websocket('/app', {
      allowedOrigins: ['https://good.example', 'http://localhost:3000'],
      open() { opened++; },
    });
    const port = await listen(defer, app);
    assert.equal((await rawWebSocket(defer, port, '/app', { headers: { Origin: 'https://good.example' } })).response.statusCode, 101);
    assert.equal((await rawWebSocket(defer, port, '/app', { headers: { Origin: 'http://localhost:3000' } })).response.statusCode, 101);
    for (const origin of ['https://evil.example', 'https://good.example.evil', 'http://good.example', 'null', 'HTTPS://GOOD.EXAMPLE']) {
      const refused = await rawWebSocket(defer, port, '/app', { headers: { Origin: origin } });
      await expectRefused(refused, 403);
    }
    // Not from a page: Origin checks do not apply (curl, server-to-server clients).
    assert.equal((await rawWebSocket(defer, port, '/app')).response.statusCode, 101);
    assert.equal(opened, 3);
    assert.equal(app.routeConnectionCount('/app'), 3);
  });

  it('admits any Origin when the list holds "*"', async (t) => {
    const defer = cleanupStack(t);
    const app = createServer({ pingIntervalMs: 0 }).websocket('/open', { allowedOrigins: ['*'] });
    const port = await listen(defer, app);
    for (const origin of ['https://anything.example', 'null', 'http://127.0.0.1:1']) {
      assert.equal((await rawWebSocket(defer, port, '/open', { headers: { Origin: origin } })).response.statusCode, 101, origin);
    }
    assert.equal((await rawWebSocket(defer, port, '/open')).response.statusCode, 101);
  });

  it('checks the Origin before the upgrade hook runs', async (t) => {
    const defer = cleanupStack(t);
    let hookRuns = 0;
    const app = createServer({ pingIntervalMs: 0 }).websocket('/app', {
      allowedOrigins: ['https://good.example'],
      upgrade() { hookRuns++; },
    });
    const port = await listen(defer, app);
    await expectRefused(await rawWebSocket(defer, port, '/app', { headers: { Origin: 'https://evil.example' } }), 403);
    assert.equal(hookRuns, 0);
    assert.equal((await rawWebSocket(defer, port, '/app', { headers: { Origin: 'https://good.example' } })).response.statusCode, 101);
    assert.equal(hookRuns, 1);
  });
});
