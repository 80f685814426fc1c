// Bad input (issue 3): requests node's parser refuses, oversized heads, upgrade floods past maxConnections,
// missing files, NUL bytes in paths and half-sent requests. Each is answered with its status, logged exactly
// once by the access log, and leaves the server serving: one good echo connection stays open across the whole
// test and must still echo at the end.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { createServer } from '../../src/server/server.js';
import { Opcode, close, text } from '../_support/frames.js';
import { openRawClient, type RawClient } from '../_support/raw-client.js';
import { cleanupStack, sleep, waitFor } from '../_support/cleanup.js';

const HOST = '127.0.0.1';
const TIMEOUT_MS = 3000;
type LogLine = Record<string, unknown> & { event: string };

interface Exchange { received: string; closed: boolean; elapsedMs: number }

/**
 * Writes raw bytes on a fresh TCP connection (maybe a request that never ends) and collects what comes back
 * until the server closes the connection or `limitMs` passes.
 */
async function rawExchange(port: number, bytes: string | Buffer, limitMs = TIMEOUT_MS): Promise<Exchange> {
  const socket = net.connect({ port, host: HOST });
  try {
    socket.on('error', () => { /* a reset after the answer is a way of closing too */ });
    await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject); });
    const startedAt = Date.now();
    let received = '';
    socket.setEncoding('latin1').on('data', (chunk: string) => { received += chunk; });
    socket.write(bytes);
    let timer: NodeJS.Timeout | undefined;
    const closed = await new Promise<boolean>((resolve) => {
      socket.once('close', () => resolve(true));
      timer = setTimeout(() => resolve(false), limitMs);
    });
    clearTimeout(timer);
    return { received, closed, elapsedMs: Date.now() - startedAt };
  } finally {
    socket.destroy();
  }
}

function statusOf(exchange: Exchange): number {
  return Number(/^HTTP\/1\.1 (\d{3}) /.exec(exchange.received)?.[1] ?? 0);
}

describe('bad input: answered, logged once, and the server keeps serving', () => {
  it('survives a sequence of bad requests with one good connection echoing throughout', async (t) => {
    const defer = cleanupStack(t);
    const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'switchyard-bad-input-'));
    defer(() => fsp.rm(root, { recursive: true, force: true }));
    await fsp.writeFile(path.join(root, 'index.html'), '<p>ok</p>\n');
    const lines: LogLine[] = [];
    const handshakeTimeoutMs = 400;
    const maxConnections = 5;
    const app = createServer({
      root, pingIntervalMs: 0, maxConnections, handshakeTimeoutMs, shutdownTimeoutMs: 500,
      accessLog: { format: 'json', write(line) { lines.push(JSON.parse(line) as LogLine); } },
    }).websocket('/echo', { message(ws, data, isBinary) { ws.send(data, isBinary); } });
    defer(() => app.close());
    const { port } = await app.listen({ port: 0, host: HOST });

    const good = await openRawClient(port, HOST, { path: '/echo' });
    defer(() => good.destroy());
    assert.equal(good.response.statusCode, 101);
    await waitFor(() => lines.length === 1, TIMEOUT_MS, 'the good connection\'s open line');
    assert.equal(lines[0]!.event, 'ws-open');

    /** Runs a step and returns the log lines it produced, after they have settled. */
    async function logged(step: () => Promise<void>, expectedLines: number): Promise<LogLine[]> {
      const before = lines.length;
      await step();
      await waitFor(() => lines.length >= before + expectedLines, TIMEOUT_MS, `${expectedLines} new log line(s)`);
      await sleep(50); // a second line for the same request would have come by now
      return lines.slice(before);
    }

    await t.test('a malformed request line gets 400', async () => {
      let exchange: Exchange | undefined;
      const added = await logged(async () => { exchange = await rawExchange(port, 'GARBAGE\r\n\r\n'); }, 1);
      assert.equal(statusOf(exchange!), 400, JSON.stringify(exchange!.received));
      assert.equal(exchange!.closed, true);
      assert.equal(added.length, 1);
      assert.deepEqual([added[0]!.event, added[0]!['status']], ['http', 400]);
    });

    await t.test('headers larger than node\'s limit (about 20 KB) get 431', async () => {
      let head = 'GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\n';
      for (let i = 0; i < 20; i++) head += `X-Pad-${i}: ${'a'.repeat(1000)}\r\n`;
      let exchange: Exchange | undefined;
      const added = await logged(async () => { exchange = await rawExchange(port, `${head}\r\n`); }, 1);
      assert.equal(statusOf(exchange!), 431, JSON.stringify(exchange!.received.slice(0, 200)));
      assert.equal(added.length, 1);
      assert.deepEqual([added[0]!.event, added[0]!['status']], ['http', 431]);
    });

    await t.test('a flood of upgrades past maxConnections gets 503 for each extra; the admitted ones work', async () => {
      const flood = 14;
      const room = maxConnections - 1; // the good connection holds one slot
      let clients: RawClient[] = [];
      const added = await logged(async () => {
        clients = await Promise.all(Array.from({ length: flood }, () => openRawClient(port, HOST, { path: '/echo' })));
        for (const client of clients) defer(() => client.destroy());
      }, flood);
      const admitted = clients.filter((client) => client.response.statusCode === 101);
      const refused = clients.filter((client) => client.response.statusCode !== 101);
      assert.equal(admitted.length, room);
      assert.ok(refused.every((client) => client.response.statusCode === 503), refused.map((client) => client.response.statusCode).join(','));
      assert.equal(refused.length, flood - room);
      assert.equal(app.connectionCount, maxConnections);
      assert.equal(added.filter((line) => line.event === 'ws-reject' && line['reason'] === 'server-limit' && line['status'] === 503).length, flood - room);
      assert.equal(added.filter((line) => line.event === 'ws-open').length, room);
      assert.equal(added.length, flood, 'one line per upgrade attempt');
      for (const [index, client] of admitted.entries()) {
        await client.send(text(`admitted ${index}`));
        assert.equal((await client.nextMessage(TIMEOUT_MS)).payload.toString(), `admitted ${index}`);
      }
      const closes = await logged(async () => {
        for (const client of admitted) {
          await client.send(close(1000));
          await client.expectClose(TIMEOUT_MS);
        }
      }, room);
      assert.equal(closes.filter((line) => line.event === 'ws-close' && line['code'] === 1000).length, room);
      await waitFor(() => app.connectionCount === 1, TIMEOUT_MS, 'only the good connection to remain');
    });

    await t.test('a missing file gets 404', async () => {
      let exchange: Exchange | undefined;
      const added = await logged(async () => {
        exchange = await rawExchange(port, 'GET /no-such-file.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
      }, 1);
      assert.equal(statusOf(exchange!), 404);
      assert.equal(added.length, 1);
      assert.deepEqual([added[0]!.event, added[0]!['url'], added[0]!['status']], ['http', '/no-such-file.txt', 404]);
    });

    await t.test('a NUL in the path gets 400, raw or percent-encoded', async () => {
      let raw: Exchange | undefined;
      const rawAdded = await logged(async () => {
        raw = await rawExchange(port, Buffer.from('GET /index\0.html HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n', 'latin1'));
      }, 1);
      assert.equal(statusOf(raw!), 400, JSON.stringify(raw!.received));
      assert.equal(rawAdded.length, 1);
      assert.equal(rawAdded[0]!['status'], 400);

      let encoded: Exchange | undefined;
      const encodedAdded = await logged(async () => {
        encoded = await rawExchange(port, 'GET /index%00.html HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
      }, 1);
      assert.equal(statusOf(encoded!), 400, JSON.stringify(encoded!.received));
      assert.equal(encodedAdded.length, 1);
      assert.deepEqual([encodedAdded[0]!['url'], encodedAdded[0]!['status']], ['/index%00.html', 400]);
    });

    await t.test('a half-sent request is dropped after handshakeTimeoutMs', async () => {
      let exchange: Exchange | undefined;
      const added = await logged(async () => {
        exchange = await rawExchange(port, 'GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: ', handshakeTimeoutMs + TIMEOUT_MS);
      }, 1);
      assert.equal(exchange!.closed, true, `still open after ${handshakeTimeoutMs + TIMEOUT_MS} ms`);
      assert.ok(exchange!.received === '' || statusOf(exchange!) === 408, JSON.stringify(exchange!.received));
      assert.ok(exchange!.elapsedMs >= handshakeTimeoutMs / 2, `dropped after ${exchange!.elapsedMs} ms, before handshakeTimeoutMs ${handshakeTimeoutMs}`);
      assert.equal(added.length, 1);
      assert.deepEqual([added[0]!.event, added[0]!['status']], ['http', 408]);
    });

    // The good connection, open since the start, still echoes; and a page is still served.
    await good.send(text('still here'));
    const echoed = await good.nextMessage(TIMEOUT_MS);
    assert.equal(echoed.opcode, Opcode.text);
    assert.equal(echoed.payload.toString(), 'still here');
    const page = await rawExchange(port, 'GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    assert.equal(statusOf(page), 200);
    assert.match(page.received, /<p>ok<\/p>/);
  });
});
