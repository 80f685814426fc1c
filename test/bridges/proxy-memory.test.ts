// The reverse proxy streams: 50 MB bodies both ways and a 50 MB WebSocket stream go through a proxy running in
// its own process (so that its memory is measured alone), with the slow side in this process. The proxy's peak
// RSS stays far below the bytes that passed through it, and everything arrives intact and in order.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { WebSocketServer, type WebSocket as WsSocket } from 'ws';
import { connect } from '../../src/client/connect.js';
import { sleep } from '../_support/cleanup.js';
import { withTimeout } from '../interop/_wait.js';

const HOST = '127.0.0.1';
const TOTAL_BYTES = 50 * 1024 * 1024;
const CHUNK_BYTES = 64 * 1024;
/**
 * What the proxy's RSS may grow by while 50 MB pass through it. The proxy process collects young garbage every
 * 10 ms, so RSS follows what it holds rather than read buffers V8 has yet to free (measured: 0-10 MiB); a
 * proxy that held a body would need the whole 50 MB.
 */
const MAX_RSS_GROWTH_BYTES = 24 * 1024 * 1024;
const testOptions = { timeout: 60_000 } as const;

/** Chunk i of the test stream: a pattern that makes a lost, repeated or reordered chunk change the hash. */
function chunkAt(index: number): Buffer {
  const chunk = Buffer.alloc(CHUNK_BYTES, index % 251);
  chunk.writeUInt32BE(index, 0);
  return chunk;
}

const CHUNK_COUNT = TOTAL_BYTES / CHUNK_BYTES;
const expectedHash = ((): string => {
  const hash = createHash('sha256');
  for (let i = 0; i < CHUNK_COUNT; i++) hash.update(chunkAt(i));
  return hash.digest('hex');
})();

/** The proxy in a child process: prints its port, answers "reset" (baseline RSS after a GC) and "peak". */
const CHILD_SOURCE = `
import { createServer } from ${JSON.stringify(fileURLToPath(new URL('../../src/server/server.js', import.meta.url)))};
import { proxyHttpHandler, proxyWebSocketRoute } from ${JSON.stringify(fileURLToPath(new URL('../../src/bridges/proxy.js', import.meta.url)))};
const options = { target: process.env.PROXY_TARGET, prefix: '/legacy' };
const handler = proxyHttpHandler(options);
const app = createServer({ pingIntervalMs: 0 }).websocket('/legacy/*', proxyWebSocketRoute(options)).all('/legacy/*', handler);
const { port } = await app.listen({ port: 0, host: '127.0.0.1' });
let peak = 0;
const sample = () => { const rss = process.memoryUsage.rss(); if (rss > peak) peak = rss; };
// Collect garbage as it goes, so that RSS measures what the proxy holds, not what V8 has yet to free.
setInterval(() => { globalThis.gc({ type: 'minor' }); sample(); }, 10);
const lines = (await import('node:readline')).createInterface({ input: process.stdin });
lines.on('line', (command) => {
  if (command === 'reset') { globalThis.gc(); peak = 0; sample(); process.stdout.write(JSON.stringify({ rss: peak }) + '\\n'); }
  else if (command === 'peak') { sample(); process.stdout.write(JSON.stringify({ rss: peak }) + '\\n'); }
});
lines.on('close', () => { handler.close(); void app.close().then(() => process.exit(0)); });
process.stdout.write('port ' + port + '\\n');
`;

class ProxyProcess {
  readonly child: ChildProcessWithoutNullStreams;
  readonly #lines: AsyncIterableIterator<string>;
  port = 0;

  constructor(target: string) {
    this.child = spawn(process.execPath, ['--expose-gc', '--input-type=module', '-e', CHILD_SOURCE], {
      env: { ...process.env, PROXY_TARGET: target }, stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stderr.on('data', (chunk: Buffer) => process.stderr.write(`[proxy child] ${chunk.toString()}`));
    this.#lines = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }

  async #line(what: string): Promise<string> {
    const result = await withTimeout(this.#lines.next(), 10_000, what);
    if (result.done === true) throw new Error(`the proxy process ended before ${what}`);
    return result.value;
  }

  async start(): Promise<void> {
    const line = await this.#line('the proxy process to listen');
    this.port = Number(/^port (\d+)$/.exec(line)?.[1] ?? 'NaN');
  }

  async rss(command: 'reset' | 'peak'): Promise<number> {
    this.child.stdin.write(`${command}\n`);
    return (JSON.parse(await this.#line(`the proxy's ${command} RSS`)) as { rss: number }).rss;
  }

  async stop(): Promise<void> {
    this.child.stdin.end();
    if (this.child.exitCode === null) await withTimeout(once(this.child, 'exit'), 10_000, 'the proxy process to exit');
  }
}

const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

describe('reverse proxy memory (proxy in its own process)', () => {
  let backend: http.Server;
  let wsBackend: WebSocketServer;
  let proxy: ProxyProcess;
  /** Set by each test: what the backend does with /legacy/... requests. */
  let onRequest: (req: http.IncomingMessage, res: http.ServerResponse) => void = (_req, res) => res.end();
  let onWebSocket: (socket: WsSocket) => void = () => {};

  before(async () => {
    backend = http.createServer((req, res) => onRequest(req, res));
    wsBackend = new WebSocketServer({ server: backend, perMessageDeflate: false });
    wsBackend.on('connection', (socket) => onWebSocket(socket));
    backend.listen(0, HOST);
    await once(backend, 'listening');
    proxy = new ProxyProcess(`http://${HOST}:${(backend.address() as AddressInfo).port}/`);
    await proxy.start();
  });

  after(async () => {
    await proxy?.stop();
    for (const client of wsBackend?.clients ?? []) client.terminate();
    wsBackend?.close();
    backend?.closeAllConnections();
    await new Promise<void>((resolve) => (backend?.listening ? backend.close(() => resolve()) : resolve()));
  });

  it('streams a 50 MB upload to a slow backend without holding it', testOptions, async () => {
    let backendBytes = 0;
    let clientSent = 0;
    let sentDuringStall = 0;
    const done = new Promise<string>((resolve, reject) => {
      onRequest = (req, res) => {
        const hash = createHash('sha256');
        // A slow reader: it stops for 500 ms after the first MiB, then pauses briefly after every MiB.
        let sincePause = 0;
        let stalled = false;
        req.on('data', (chunk: Buffer) => {
          hash.update(chunk);
          backendBytes += chunk.length;
          sincePause += chunk.length;
          if (sincePause >= 1 << 20) {
            sincePause = 0;
            req.pause();
            const pauseMs = stalled ? 10 : 500;
            setTimeout(() => {
              if (!stalled) sentDuringStall = clientSent;
              stalled = true;
              req.resume();
            }, pauseMs);
          }
        });
        req.on('end', () => { res.end('ok'); resolve(hash.digest('hex')); });
        req.on('error', reject);
      };
    });
    const baseline = await proxy.rss('reset');
    const answer = await withTimeout(new Promise<number>((resolve, reject) => {
      const req = http.request({ host: HOST, port: proxy.port, method: 'PUT', path: '/legacy/upload', agent: false, headers: { 'Content-Length': String(TOTAL_BYTES) } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      Readable.from((function* () { for (let i = 0; i < CHUNK_COUNT; i++) { clientSent += CHUNK_BYTES; yield chunkAt(i); } })()).pipe(req);
    }), 50_000, 'the upload');
    assert.equal(answer, 200);
    assert.equal(await done, expectedHash, 'the backend got different bytes');
    assert.equal(backendBytes, TOTAL_BYTES);
    assert.ok(sentDuringStall < TOTAL_BYTES / 2, `the client got ${mib(sentDuringStall)} accepted while the backend had read 1 MiB`);
    const growth = (await proxy.rss('peak')) - baseline;
    assert.ok(growth < MAX_RSS_GROWTH_BYTES, `the proxy's RSS grew by ${mib(growth)} while 50 MB passed (limit ${mib(MAX_RSS_GROWTH_BYTES)})`);
  });

  it('streams a 50 MB download to a slow client; the backend waits for it', testOptions, async () => {
    let written = 0;
    onRequest = (_req, res) => {
      res.writeHead(200, { 'Content-Length': String(TOTAL_BYTES) });
      let index = 0;
      const pump = (): void => {
        while (index < CHUNK_COUNT) {
          const more = res.write(chunkAt(index++));
          written += CHUNK_BYTES;
          if (!more) return;
        }
        res.end();
      };
      res.on('drain', pump);
      pump();
    };
    const baseline = await proxy.rss('reset');
    let stalledAt = 0;
    const hash = await withTimeout(new Promise<string>((resolve, reject) => {
      http.get({ host: HOST, port: proxy.port, path: '/legacy/download', agent: false }, (res) => {
        const digest = createHash('sha256');
        let received = 0;
        let stalled = false;
        res.on('data', (chunk: Buffer) => {
          digest.update(chunk);
          received += chunk.length;
          if (!stalled && received >= 1 << 20) {
            // Stop reading for a while: the backend must stop writing, not the proxy start buffering.
            stalled = true;
            res.pause();
            void sleep(500).then(() => { stalledAt = written; res.resume(); });
          }
        });
        res.on('end', () => resolve(digest.digest('hex')));
        res.on('error', reject);
      }).on('error', reject);
    }), 50_000, 'the download');
    assert.equal(hash, expectedHash, 'the client got different bytes');
    assert.ok(stalledAt < TOTAL_BYTES / 2, `the backend wrote ${mib(stalledAt)} to a client that had read 1 MiB`);
    const growth = (await proxy.rss('peak')) - baseline;
    assert.ok(growth < MAX_RSS_GROWTH_BYTES, `the proxy's RSS grew by ${mib(growth)} while 50 MB passed (limit ${mib(MAX_RSS_GROWTH_BYTES)})`);
  });

  it('relays a 50 MB WebSocket stream to a client that stops reading without growing', testOptions, async () => {
    let sent = 0;
    onWebSocket = (socket) => {
      const pump = (): void => {
        while (sent < CHUNK_COUNT && socket.readyState === socket.OPEN && socket.bufferedAmount < 1 << 20) socket.send(chunkAt(sent++));
        if (sent < CHUNK_COUNT && socket.readyState === socket.OPEN) setTimeout(pump, 2);
      };
      pump();
    };
    const baseline = await proxy.rss('reset');
    const digest = createHash('sha256');
    let received = 0;
    let inOrder = true;
    let finish: () => void = () => {};
    const finished = new Promise<void>((resolve) => { finish = resolve; });
    const client = await connect(`ws://${HOST}:${proxy.port}/legacy/stream`, {
      handlers: {
        message: (_ws, data) => {
          if (data.readUInt32BE(0) !== received) inOrder = false;
          digest.update(data);
          if (++received === CHUNK_COUNT) finish();
        },
      },
    });
    client.pause();
    await sleep(500);
    const sentWhilePaused = sent;
    client.resume();
    await withTimeout(finished, 50_000, `all ${CHUNK_COUNT} messages (got ${received})`);
    client.close();
    assert.ok(inOrder, 'messages arrived out of order');
    assert.equal(digest.digest('hex'), expectedHash);
    assert.ok(sentWhilePaused < CHUNK_COUNT / 2, `the backend sent ${sentWhilePaused} of ${CHUNK_COUNT} messages to a client that read none`);
    const growth = (await proxy.rss('peak')) - baseline;
    assert.ok(growth < MAX_RSS_GROWTH_BYTES, `the proxy's RSS grew by ${mib(growth)} while 50 MB passed (limit ${mib(MAX_RSS_GROWTH_BYTES)})`);
  });
});
