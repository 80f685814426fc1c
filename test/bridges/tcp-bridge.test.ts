// The WebSocket <-> TCP bridge (issue 5, item 2): bytes both ways over `binary`, no subprotocol and `base64`;
// every way a connection ends (target FIN 1000, reset 1011, unreachable 1011 with the cause, client close ->
// half-close then a grace); Unix socket targets; writes held until the target accepts; server shutdown; no
// socket or fd left behind. Targets are in-process TCP and Unix servers; clients are our connect() and raw sockets.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Switchyard } from '../../src/server/server.js';
import { connect } from '../../src/client/connect.js';
import type { WebSocket } from '../../src/transport/websocket.js';
import { parseTcpTarget, parseTokenFile, tcpBridge, type TcpBridgeOptions, type TcpBridgeRoute, type TcpTarget } from '../../src/bridges/tcp-bridge.js';
import { openRawClient } from '../_support/raw-client.js';
import { cleanupStack, sleep, withTimeout, waitFor } from '../_support/cleanup.js';

const HOST = '127.0.0.1';
const TIMEOUT_MS = 5000;
type Defer = (cleanup: () => unknown) => void;

// ---- helpers ----

const openFds = (): number => readdirSync('/proc/self/fd').length;

/** A target server: records each connection's bytes and whether it saw end/close; `onConnection` scripts it. */
interface TargetServer {
  readonly target: TcpTarget;
  readonly sockets: Set<net.Socket>;
  readonly accepted: number;
  /** Bytes each accepted connection received, in accept order. */
  readonly received: Buffer[][];
  readonly ended: boolean[];
  readonly closed: boolean[];
  close(): Promise<void>;
}

type Script = (socket: net.Socket, index: number) => void;

async function startTarget(defer: Defer, script: Script, where: 'tcp' | 'unix' = 'tcp', allowHalfOpen = false): Promise<TargetServer> {
  const sockets = new Set<net.Socket>();
  const received: Buffer[][] = [];
  const ended: boolean[] = [];
  const closed: boolean[] = [];
  const server = net.createServer({ allowHalfOpen }, (socket) => {
    const index = received.length;
    received.push([]);
    ended.push(false);
    closed.push(false);
    sockets.add(socket);
    socket.on('data', (chunk: Buffer) => received[index]!.push(chunk));
    socket.on('end', () => { ended[index] = true; });
    socket.on('error', () => {});
    socket.on('close', () => { closed[index] = true; sockets.delete(socket); });
    script(socket, index);
  });
  let target: TcpTarget;
  if (where === 'unix') {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-tcp-'));
    defer(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'target.sock');
    await new Promise<void>((resolve) => server.listen(path, resolve));
    target = { path };
  } else {
    await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
    target = { host: HOST, port: (server.address() as net.AddressInfo).port };
  }
  const handle: TargetServer = {
    target, sockets, received, ended, closed,
    get accepted() { return received.length; },
    close: () => new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }),
  };
  defer(() => handle.close());
  return handle;
}

const echo: Script = (socket) => socket.pipe(socket);

interface Bridge {
  readonly app: Switchyard;
  readonly route: TcpBridgeRoute;
  readonly port: number;
  readonly logs: string[];
  url(path?: string): string;
}

async function startBridge(defer: Defer, options: TcpBridgeOptions, path = '/tcp'): Promise<Bridge> {
  const logs: string[] = [];
  const route = tcpBridge({ log: (line) => logs.push(line), ...options });
  const app = createServer({ pingIntervalMs: 0, closeTimeoutMs: 1000 }).websocket(path, route);
  const { port } = await app.listen({ port: 0, host: HOST });
  defer(() => app.close());
  return { app, route: route as TcpBridgeRoute, port, logs, url: (suffix = path) => `ws://${HOST}:${port}${suffix}` };
}

interface ClientClose { code: number; reason: string; wasClean: boolean }

/** Our client, with everything it receives collected. */
interface Client {
  readonly ws: WebSocket<undefined>;
  readonly chunks: Buffer[];
  readonly texts: string[];
  readonly binary: boolean[];
  readonly received: number;
  readonly closed: Promise<ClientClose>;
  bytes(): Buffer;
  waitForBytes(count: number, ms?: number): Promise<void>;
}

async function openClient(defer: Defer, url: string, protocols?: readonly string[]): Promise<Client> {
  const chunks: Buffer[] = [];
  const texts: string[] = [];
  const binary: boolean[] = [];
  let received = 0;
  let onClose: (close: ClientClose) => void = () => {};
  const closed = new Promise<ClientClose>((resolve) => { onClose = resolve; });
  const ws = await connect(url, {
    ...(protocols !== undefined && { protocols }),
    handlers: {
      message(_ws, data, isBinary) {
        binary.push(isBinary);
        if (isBinary) {
          chunks.push(Buffer.from(data));
          received += data.length;
        } else {
          texts.push(data.toString('utf8'));
        }
      },
      close(_ws, code, reason, wasClean) { onClose({ code, reason, wasClean }); },
    },
  });
  defer(() => ws.terminate());
  return {
    ws, chunks, texts, binary, closed,
    get received() { return received; },
    bytes: () => Buffer.concat(chunks),
    waitForBytes: (count, ms = TIMEOUT_MS) => waitFor(() => received >= count, ms, `${count} bytes at the client (have ${received})`),
  };
}

function targetBytes(target: TargetServer, index = 0): Buffer {
  return Buffer.concat(target.received[index] ?? []);
}

function randomish(size: number, seed = 7): Buffer {
  const bytes = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

// ---- options and target specs ----

describe('tcpBridge: options', () => {
  it('needs exactly one of target and tokenFile', () => {
    assert.throws(() => tcpBridge({}), TypeError);
    assert.throws(() => tcpBridge({ target: { host: HOST, port: 1 }, tokenFile: '/tmp/x' }), TypeError);
  });

  it('checks the target, the numbers and the allow-list at construction', () => {
    assert.throws(() => tcpBridge({ target: { host: HOST, port: 0 } }), RangeError);
    assert.throws(() => tcpBridge({ target: { host: HOST, port: 70_000 } }), RangeError);
    assert.throws(() => tcpBridge({ target: { host: '', port: 80 } }), TypeError);
    assert.throws(() => tcpBridge({ target: { path: '' } }), TypeError);
    assert.throws(() => tcpBridge({ target: { host: HOST, port: 80 }, connectTimeoutMs: 0 }), /connectTimeoutMs/);
    assert.throws(() => tcpBridge({ target: { host: HOST, port: 80 }, maxBufferedBytes: 1.5 }), /maxBufferedBytes/);
    assert.throws(() => tcpBridge({ target: { host: HOST, port: 80 }, allow: ['bad spec'] }), /allow\[0\]/);
    assert.throws(() => tcpBridge({ target: { host: HOST, port: 80 }, allow: ['127.0.0.1:81'] }), /not in the allow-list/);
    const route = tcpBridge({ target: { host: 'LOCALHOST', port: 80 }, allow: ['localhost:80'] });
    assert.deepEqual(route.protocols, ['binary', 'base64']);
    assert.equal(route.upgrade, undefined, 'a fixed target needs no upgrade hook');
  });
});

describe('parseTcpTarget and parseTokenFile', () => {
  it('reads host:port, [v6]:port and unix:/path, and refuses anything else', () => {
    assert.deepEqual(parseTcpTarget('127.0.0.1:5900'), { host: '127.0.0.1', port: 5900 });
    assert.deepEqual(parseTcpTarget('vnc.example:5901'), { host: 'vnc.example', port: 5901 });
    assert.deepEqual(parseTcpTarget('[::1]:22'), { host: '::1', port: 22 });
    assert.deepEqual(parseTcpTarget('unix:/run/vnc.sock'), { path: '/run/vnc.sock' });
    for (const bad of ['host', 'host:', ':80', 'host:0', 'host:65536', 'host:8o', 'unix:', 'a b:80']) {
      assert.throws(() => parseTcpTarget(bad, '--tcp'), (error: Error) => error instanceof RangeError && error.message.startsWith('--tcp: '), bad);
    }
  });

  it('reads websockify\'s token file format, reporting bad lines by number', () => {
    const { targets, problems } = parseTokenFile([
      '# comment', '', 'vnc1: 10.0.0.5:5900', '  vnc2:\t[fd00::2]:5901  ', 'sock: unix_socket:/run/vnc.sock',
      'nospace:10.0.0.1:1', 'bad: 10.0.0.1', 'vnc1: 10.0.0.6:5900', 'empty: unix_socket:',
    ].join('\n'), 'targets.cfg');
    assert.deepEqual(Object.fromEntries(targets), {
      vnc1: { host: '10.0.0.6', port: 5900 }, // a later line for the same token wins
      vnc2: { host: 'fd00::2', port: 5901 },
      sock: { path: '/run/vnc.sock' },
    });
    assert.equal(problems.length, 3);
    assert.match(problems[0]!, /^targets\.cfg line 6: /);
    assert.match(problems[1]!, /^targets\.cfg line 7: /);
    assert.match(problems[2]!, /^targets\.cfg line 9: /);
  });
});

// ---- fixed target ----

describe('tcpBridge: bytes both ways', () => {
  for (const protocols of [['binary'], undefined] as const) {
    it(`carries client messages to the target and target bytes back as binary messages (${protocols === undefined ? 'no subprotocol' : 'binary'})`, async (t) => {
      const defer = cleanupStack(t);
      const target = await startTarget(defer, echo);
      const bridge = await startBridge(defer, { target: target.target });
      const client = await openClient(defer, bridge.url(), protocols);
      assert.equal(client.ws.protocol, protocols === undefined ? '' : 'binary');
      const parts = [Buffer.from([0, 1, 2, 255]), randomish(70_000, 3), Buffer.alloc(0), randomish(1, 4), randomish(200_000, 5)];
      for (const part of parts) client.ws.send(part, true);
      // A text message is written as its UTF-8 bytes (a byte stream has no message types).
      client.ws.send('héllo ✓');
      const expected = Buffer.concat([...parts, Buffer.from('héllo ✓')]);
      await client.waitForBytes(expected.length);
      assert.ok(client.bytes().equals(expected), 'the echo came back byte for byte');
      assert.ok(client.binary.every(Boolean), 'target bytes always arrive as binary messages');
      assert.ok(targetBytes(target).equals(expected));
      assert.deepEqual(bridge.route.connections().map((c) => [c.target, c.mode, c.connected, c.bytesToTarget, c.bytesFromTarget]),
        [[`127.0.0.1:${(target.target as { port: number }).port}`, 'binary', true, expected.length, expected.length]]);
      client.ws.close(1000, 'done');
      assert.deepEqual(await withTimeout(client.closed, TIMEOUT_MS, 'close'), { code: 1000, reason: 'done', wasClean: true });
      await waitFor(() => target.ended[0] === true && bridge.route.connections().length === 0, TIMEOUT_MS, 'the target to see FIN');
      assert.ok(bridge.logs.some((line) => /connected$/.test(line)), bridge.logs.join('\n'));
      const summary = `closed 1000 "done", ${expected.length} bytes to target, ${expected.length} from it`;
      assert.ok(bridge.logs.some((line) => line.endsWith(summary)), bridge.logs.join('\n'));
    });
  }

  it('holds what the client sends before the target accepts, and delivers it in order', async (t) => {
    const defer = cleanupStack(t);
    const target = await startTarget(defer, echo);
    const bridge = await startBridge(defer, {
      target: target.target,
      // Name resolution takes 150 ms: the socket is connecting, and what the client sends meanwhile waits in it.
      createConnection: (to) => net.connect({
        host: 'slow-dns.test', port: (to as { port: number }).port,
        lookup: (_hostname, options, callback) => setTimeout(() => {
          if ((options as { all?: boolean }).all === true) callback(null, [{ address: HOST, family: 4 }]);
          else callback(null, HOST, 4);
        }, 150),
      }),
    });
    const client = await openClient(defer, bridge.url(), ['binary']);
    const early = [randomish(10, 1), randomish(100_000, 2), randomish(3, 3)];
    for (const part of early) client.ws.send(part, true);
    await sleep(50);
    assert.equal(target.accepted, 0, 'the target has not accepted yet');
    const expected = Buffer.concat(early);
    await client.waitForBytes(expected.length);
    assert.ok(client.bytes().equals(expected));
  });

  it('speaks websockify\'s legacy base64 subprotocol: base64 text both ways', async (t) => {
    const defer = cleanupStack(t);
    const target = await startTarget(defer, (socket) => {
      socket.write(Buffer.from('RFB 003.008\n'));
      socket.pipe(socket);
    });
    const bridge = await startBridge(defer, { target: target.target });
    const texts: string[] = [];
    const ws = await connect(bridge.url(), { protocols: ['base64'], handlers: { message(_ws, data, isBinary) { assert.equal(isBinary, false); texts.push(data.toString()); } } });
    defer(() => ws.terminate());
    assert.equal(ws.protocol, 'base64');
    // 200,001 bytes: one message spanning several 64 KiB pieces whose base64 does not split on a piece edge.
    const parts = [Buffer.from('hello'), randomish(200_001, 9), randomish(2, 8)];
    for (const part of parts) ws.send(part.toString('base64'));
    const expected = Buffer.concat([Buffer.from('RFB 003.008\n'), ...parts]);
    const decoded = (): Buffer => Buffer.concat(texts.map((text) => Buffer.from(text, 'base64')));
    await waitFor(() => decoded().length >= expected.length, TIMEOUT_MS, 'the base64 echo');
    assert.ok(decoded().equals(expected));
    assert.ok(texts.every((text) => /^[A-Za-z0-9+/]*={0,2}$/.test(text) && text.length % 4 === 0), 'every message is whole base64');
    assert.ok(targetBytes(target).equals(Buffer.concat(parts)), 'the target got the decoded bytes');
    assert.equal(bridge.route.connections()[0]?.mode, 'base64');
  });

  for (const [what, send, code] of [
    ['invalid base64', (ws: WebSocket<undefined>) => ws.send('not base64!'), 1007],
    ['a base64 message of the wrong length', (ws: WebSocket<undefined>) => ws.send('QUJD' + 'RA'), 1007],
    ['a binary message', (ws: WebSocket<undefined>) => ws.send(Buffer.from('x'), true), 1003],
  ] as const) {
    it(`closes a base64 connection that sends ${what} with ${code}, writing none of it`, async (t) => {
      const defer = cleanupStack(t);
      const target = await startTarget(defer, () => {});
      const bridge = await startBridge(defer, { target: target.target });
      const client = await openClient(defer, bridge.url(), ['base64']);
      await waitFor(() => target.accepted === 1, TIMEOUT_MS, 'the target connection');
      send(client.ws);
      const close = await withTimeout(client.closed, TIMEOUT_MS, 'close');
      assert.equal(close.code, code);
      await waitFor(() => target.closed[0] === true, TIMEOUT_MS, 'the target connection to end');
      assert.equal(targetBytes(target).length, 0);
    });
  }

  it('reaches a Unix socket target', async (t) => {
    const defer = cleanupStack(t);
    const target = await startTarget(defer, (socket) => { socket.write('unix hello\n'); socket.pipe(socket); }, 'unix');
    const bridge = await startBridge(defer, { target: target.target });
    const client = await openClient(defer, bridge.url(), ['binary']);
    const payload = randomish(300_000, 11);
    client.ws.send(payload, true);
    const expected = Buffer.concat([Buffer.from('unix hello\n'), payload]);
    await client.waitForBytes(expected.length);
    assert.ok(client.bytes().equals(expected));
    assert.equal(bridge.route.connections()[0]?.target, `unix:${(target.target as { path: string }).path}`);
    client.ws.close();
    await withTimeout(client.closed, TIMEOUT_MS, 'close');
    await waitFor(() => target.ended[0] === true, TIMEOUT_MS, 'FIN at the Unix target');
  });
});

describe('tcpBridge: how connections end', () => {
  it('closes with 1000 once the target closes, after everything it sent', async (t) => {
    const defer = cleanupStack(t);
    const payload = randomish(3 * 1024 * 1024, 21);
    const target = await startTarget(defer, (socket) => socket.end(payload));
    const bridge = await startBridge(defer, { target: target.target });
    const client = await openClient(defer, bridge.url(), ['binary']);
    const close = await withTimeout(client.closed, TIMEOUT_MS, 'close');
    assert.deepEqual(close, { code: 1000, reason: 'target closed', wasClean: true });
    assert.equal(client.received, payload.length);
    assert.ok(client.bytes().equals(payload));
    await waitFor(() => bridge.route.connections().length === 0, TIMEOUT_MS, 'the link to go');
  });

  it('closes with 1011 naming the error when the target resets the connection', async (t) => {
    const defer = cleanupStack(t);
    const target = await startTarget(defer, (socket) => {
      socket.write('before the reset');
      socket.once('data', () => socket.resetAndDestroy());
    });
    const bridge = await startBridge(defer, { target: target.target });
    const client = await openClient(defer, bridge.url(), ['binary']);
    await client.waitForBytes(16);
    client.ws.send(Buffer.from('go'), true);
    const close = await withTimeout(client.closed, TIMEOUT_MS, 'close');
    assert.equal(close.code, 1011);
    assert.match(close.reason, /^127\.0\.0\.1:\d+: ECONNRESET$/);
    assert.equal(client.bytes().toString(), 'before the reset');
    assert.ok(bridge.logs.some((line) => /ECONNRESET/.test(line)), bridge.logs.join('\n'));
  });

  it('accepts, then closes with 1011 "connection refused" when nothing listens at the target', async (t) => {
    const defer = cleanupStack(t);
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, HOST, resolve));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const bridge = await startBridge(defer, { target: { host: HOST, port } });
    const client = await openClient(defer, bridge.url(), ['binary']);
    const close = await withTimeout(client.closed, TIMEOUT_MS, 'close');
    assert.deepEqual(close, { code: 1011, reason: `127.0.0.1:${port}: connection refused (ECONNREFUSED)`, wasClean: true });
    assert.ok(bridge.logs.some((line) => line.includes('ECONNREFUSED')), bridge.logs.join('\n'));
    await waitFor(() => bridge.route.connections().length === 0, TIMEOUT_MS, 'the link to go');
  });

  it('closes with 1011 "cannot resolve host" for a name that does not resolve', async (t) => {
    const defer = cleanupStack(t);
    const bridge = await startBridge(defer, { target: { host: 'no-such-host.invalid', port: 5900 } });
    const client = await openClient(defer, bridge.url(), ['binary']);
    const close = await withTimeout(client.closed, 15_000, 'close');
    assert.equal(close.code, 1011);
    assert.match(close.reason, /^no-such-host\.invalid:5900: cannot resolve host \((ENOTFOUND|EAI_AGAIN|EAI_FAIL|EAI_NONAME)\)$/);
  });

  it('closes with 1011 "no such socket" for a Unix socket path that does not exist', async (t) => {
    const defer = cleanupStack(t);
    const bridge = await startBridge(defer, { target: { path: join(tmpdir(), 'switchyard-no-such.sock') } });
    const client = await openClient(defer, bridge.url(), ['binary']);
    const close = await withTimeout(client.closed, TIMEOUT_MS, 'close');
    assert.equal(close.code, 1011);
    assert.match(close.reason, /no such socket \(ENOENT\)$/);
  });

  it('closes with 1011 "connect timed out" when the target does not answer within connectTimeoutMs', async (t) => {
    const defer = cleanupStack(t);
    let pending: net.Socket | undefined;
    // A socket whose connect never completes (a black hole, without depending on the network).
    const bridge = await startBridge(defer, {
      target: { host: '192.0.2.1', port: 5900 }, connectTimeoutMs: 200,
      createConnection: () => (pending = new net.Socket()),
    });
    const started = Date.now();
    const client = await openClient(defer, bridge.url(), ['binary']);
    const close = await withTimeout(client.closed, TIMEOUT_MS, 'close');
    assert.deepEqual(close, { code: 1011, reason: '192.0.2.1:5900: connect timed out after 200 ms', wasClean: true });
    assert.ok(Date.now() - started >= 190);
    assert.equal(pending?.destroyed, true, 'the pending socket was destroyed');
  });

  it('half-closes the target when the client closes: every byte, then FIN; the target\'s last words are read', async (t) => {
    const defer = cleanupStack(t);
    let farewellSent = false;
    const target = await startTarget(defer, (socket) => {
      socket.on('end', () => { farewellSent = socket.write('late reply'); socket.end(); });
    }, 'tcp', true);
    // A long grace: the target must see FIN from end(), not from a drop when the grace runs out.
    const bridge = await startBridge(defer, { target: target.target, closeGraceMs: 30_000 });
    const client = await openClient(defer, bridge.url(), ['binary']);
    const payload = randomish(2 * 1024 * 1024, 31);
    client.ws.send(payload, true);
    client.ws.close(1000, 'bye');
    await withTimeout(client.closed, TIMEOUT_MS, 'close');
    await waitFor(() => target.closed[0] === true, 2000, 'the target connection to close');
    assert.equal(target.ended[0], true, 'the target saw FIN');
    assert.ok(targetBytes(target).equals(payload), 'everything sent before the close reached the target');
    assert.ok(farewellSent);
    await waitFor(() => bridge.route.connections().length === 0, TIMEOUT_MS, 'the link to go');
  });

  it('drops a target that stays open after the client left, once closeGraceMs has passed', async (t) => {
    const defer = cleanupStack(t);
    // allowHalfOpen: the target keeps its side open (and keeps talking) after our FIN.
    const target = await startTarget(defer, (socket) => {
      const timer = setInterval(() => socket.write('still here'), 10);
      socket.on('close', () => clearInterval(timer));
    }, 'tcp', true);
    const bridge = await startBridge(defer, { target: target.target, closeGraceMs: 300 });
    const client = await openClient(defer, bridge.url(), ['binary']);
    await client.waitForBytes(10);
    const closedAt = Date.now();
    client.ws.close();
    await withTimeout(client.closed, TIMEOUT_MS, 'close');
    await waitFor(() => target.ended[0] === true, TIMEOUT_MS, 'FIN at the target');
    await waitFor(() => target.closed[0] === true, TIMEOUT_MS, 'the bridge to drop the target');
    const tookMs = Date.now() - closedAt;
    assert.ok(tookMs >= 250 && tookMs < 2000, `dropped after ${tookMs} ms`);
    assert.equal(bridge.route.connections().length, 0);
  });

  it('on server shutdown closes the client with 1001 and ends the target connection', async (t) => {
    const defer = cleanupStack(t);
    const target = await startTarget(defer, echo);
    const bridge = await startBridge(defer, { target: target.target });
    const client = await openClient(defer, bridge.url(), ['binary']);
    await waitFor(() => target.accepted === 1, TIMEOUT_MS, 'the target connection');
    await withTimeout(bridge.app.close(), TIMEOUT_MS, 'app.close()');
    assert.equal((await client.closed).code, 1001);
    await waitFor(() => target.closed[0] === true, TIMEOUT_MS, 'the target connection to close');
    assert.equal(target.ended[0], true);
  });
});

describe('tcpBridge: resources', () => {
  it('leaves no socket, fd or link behind, whatever way connections end', async (t) => {
    const defer = cleanupStack(t);
    const dead = net.createServer();
    await new Promise<void>((resolve) => dead.listen(0, HOST, resolve));
    const deadPort = (dead.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => dead.close(() => resolve()));
    // Scripts by accept order: echo, close at once, reset, and silence.
    const target = await startTarget(defer, (socket, index) => {
      if (index % 4 === 0) socket.pipe(socket);
      else if (index % 4 === 1) socket.end('bye');
      else if (index % 4 === 2) socket.once('data', () => socket.resetAndDestroy());
    });
    const bridge = await startBridge(defer, { target: target.target, closeGraceMs: 200 });
    const refused = await startBridge(defer, { target: { host: HOST, port: deadPort } }, '/dead');
    // Warm up once (lazy allocations such as the timer sweep's), then count.
    const warm = await openClient(defer, refused.url('/dead'));
    await withTimeout(warm.closed, TIMEOUT_MS, 'warm-up close');
    await sleep(50);
    const before = openFds();
    const rounds = 5;
    for (let round = 0; round < rounds; round++) {
      const clients = await Promise.all([0, 1, 2, 3].map(() => openClient(() => {}, bridge.url(), ['binary'])));
      const failing = await openClient(() => {}, refused.url('/dead'));
      for (const client of clients) client.ws.send(Buffer.from('ping'), true);
      await withTimeout(failing.closed, TIMEOUT_MS, 'the refused connection to close');
      await sleep(20);
      for (const client of clients) {
        try { client.ws.close(); } catch { /* already closed */ }
      }
      await Promise.all(clients.map((client) => withTimeout(client.closed, TIMEOUT_MS, 'a client close')));
    }
    assert.equal(target.accepted, rounds * 4);
    await waitFor(() => bridge.route.connections().length === 0 && refused.route.connections().length === 0 && target.sockets.size === 0,
      TIMEOUT_MS, 'every link and target socket to go');
    await waitFor(() => openFds() <= before, TIMEOUT_MS, `fds back to ${before} (now ${openFds()})`);
    assert.equal(bridge.app.connectionCount, 0);
  });
});

// ---- token mode ----

/** A temporary directory for token files, removed after the test. */
function tokenDir(defer: Defer): string {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-tokens-'));
  defer(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A target as a token file writes it. */
function tokenSpec(target: TcpTarget): string {
  return 'path' in target ? `unix_socket:${target.path}` : `${target.host}:${target.port}`;
}

async function refusedStatus(bridge: Bridge, urlPath: string): Promise<number> {
  const client = await openRawClient(bridge.port, HOST, { path: urlPath });
  try {
    assert.doesNotMatch(client.response.raw, /Sec-WebSocket-Accept/i);
    return client.response.statusCode;
  } finally {
    client.socket.destroy();
  }
}

async function firstBytes(defer: Defer, url: string, count: number): Promise<string> {
  const client = await openClient(defer, url, ['binary']);
  await client.waitForBytes(count);
  client.ws.close();
  return client.bytes().toString();
}

describe('tcpBridge: token mode', () => {
  const named = (name: string): Script => (socket) => { socket.write(name); socket.pipe(socket); };

  it('connects ?token=NAME to the target the token file names (TCP or Unix); a missing or unknown token gets 404 before the upgrade', async (t) => {
    const defer = cleanupStack(t);
    const alpha = await startTarget(defer, named('A'));
    const beta = await startTarget(defer, named('B'), 'unix');
    const dir = tokenDir(defer);
    const tokenFile = join(dir, 'targets.cfg');
    writeFileSync(tokenFile, `# VNC hosts\nalpha: ${tokenSpec(alpha.target)}\nbeta: ${tokenSpec(beta.target)}\nthis line is broken\n`);
    const bridge = await startBridge(defer, { tokenFile });
    assert.equal(await firstBytes(defer, bridge.url('/tcp?token=alpha'), 1), 'A');
    assert.equal(await firstBytes(defer, bridge.url('/tcp?token=beta'), 1), 'B');
    assert.equal(await refusedStatus(bridge, '/tcp'), 404);
    assert.equal(await refusedStatus(bridge, '/tcp?token='), 404);
    assert.equal(await refusedStatus(bridge, '/tcp?token=gamma'), 404);
    await assert.rejects(connect(bridge.url('/tcp?token=gamma'), { protocols: ['binary'] }), { status: 404 });
    assert.equal(alpha.accepted, 1, 'a refused upgrade never reaches a target');
    assert.equal(beta.accepted, 1);
    const logs = bridge.logs.join('\n');
    assert.match(logs, /targets\.cfg line 4: expected "token: host:port"/);
    assert.match(logs, /refused 127\.0\.0\.1 \/tcp: no \?token= in the URL \(404\)/);
    assert.match(logs, /refused 127\.0\.0\.1 \/tcp: unknown token "gamma" \(404\)/);
  });

  it('refuses with 403 a token whose target is outside the allow-list', async (t) => {
    const defer = cleanupStack(t);
    const alpha = await startTarget(defer, named('A'));
    const beta = await startTarget(defer, named('B'));
    const dir = tokenDir(defer);
    const tokenFile = join(dir, 'targets.cfg');
    writeFileSync(tokenFile, `alpha: ${tokenSpec(alpha.target)}\nbeta: ${tokenSpec(beta.target)}\n`);
    const bridge = await startBridge(defer, { tokenFile, allow: [tokenSpec(alpha.target)] });
    assert.equal(await firstBytes(defer, bridge.url('/tcp?token=alpha'), 1), 'A');
    assert.equal(await refusedStatus(bridge, '/tcp?token=beta'), 403);
    assert.equal(beta.accepted, 0);
    assert.match(bridge.logs.join('\n'), new RegExp(`token "beta" names ${tokenSpec(beta.target)}, which is not in the allow-list \\(403\\)`));
  });

  it('re-reads the token file when it changes, even to the same size', async (t) => {
    const defer = cleanupStack(t);
    const alpha = await startTarget(defer, named('A'));
    const beta = await startTarget(defer, named('B'));
    const dir = tokenDir(defer);
    const tokenFile = join(dir, 'targets.cfg');
    writeFileSync(tokenFile, `one: ${tokenSpec(alpha.target)}\n`);
    const bridge = await startBridge(defer, { tokenFile });
    assert.equal(await firstBytes(defer, bridge.url('/tcp?token=one'), 1), 'A');
    // Most likely the same size (ephemeral ports have five digits): only the mtime tells the change.
    writeFileSync(tokenFile, `one: ${tokenSpec(beta.target)}\n`);
    assert.equal(await firstBytes(defer, bridge.url('/tcp?token=one'), 1), 'B');
    writeFileSync(tokenFile, `two: ${tokenSpec(alpha.target)}\n`);
    assert.equal(await firstBytes(defer, bridge.url('/tcp?token=two'), 1), 'A');
    assert.equal(await refusedStatus(bridge, '/tcp?token=one'), 404, 'a token removed from the file is refused');
  });

  it('refuses with 500 while the token file cannot be read, and recovers when it is back', async (t) => {
    const defer = cleanupStack(t);
    const alpha = await startTarget(defer, named('A'));
    const dir = tokenDir(defer);
    const tokenFile = join(dir, 'targets.cfg');
    const bridge = await startBridge(defer, { tokenFile });
    assert.equal(await refusedStatus(bridge, '/tcp?token=one'), 500);
    assert.match(bridge.logs.join('\n'), /cannot read .*targets\.cfg: ENOENT/);
    writeFileSync(tokenFile, `one: ${tokenSpec(alpha.target)}\n`);
    assert.equal(await firstBytes(defer, bridge.url('/tcp?token=one'), 1), 'A');
  });

  it('reads a directory of token files, skipping dot-files', async (t) => {
    const defer = cleanupStack(t);
    const alpha = await startTarget(defer, named('A'));
    const beta = await startTarget(defer, named('B'));
    const dir = tokenDir(defer);
    writeFileSync(join(dir, 'a.cfg'), `one: ${tokenSpec(alpha.target)}\n`);
    writeFileSync(join(dir, 'b.cfg'), `two: ${tokenSpec(beta.target)}\n`);
    writeFileSync(join(dir, '.a.cfg.swp'), `one: ${tokenSpec(beta.target)}\n`);
    mkdirSync(join(dir, 'sub'));
    const bridge = await startBridge(defer, { tokenFile: dir });
    assert.equal(await firstBytes(defer, bridge.url('/tcp?token=one'), 1), 'A');
    assert.equal(await firstBytes(defer, bridge.url('/tcp?token=two'), 1), 'B');
    writeFileSync(join(dir, 'c.cfg'), `three: ${tokenSpec(alpha.target)}\n`);
    assert.equal(await firstBytes(defer, bridge.url('/tcp?token=three'), 1), 'A', 'a file added to the directory is read');
  });
});
