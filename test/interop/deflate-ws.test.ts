// Interop, permessage-deflate with the `ws` package (a peer nobody here wrote), through a frame tap that records
// what each side put on the wire: ws as a CLIENT (perMessageDeflate, threshold 0) against `switchyard serve
// --echo /echo --deflate ...`, and our client (`connect(url, { perMessageDeflate: true })`) against a ws
// WebSocketServer with compression. Checks the echoes AND that compressed (RSV1) messages went both ways.
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer, type PerMessageDeflateOptions } from 'ws';
import { connect } from '../../src/client/connect.js';
import { startCliServer, type RunningServer } from '../_support/cli-server.js';
import { describeTap, startFrameTap, summarize, type FrameTap, type TappedConnection } from '../_support/frame-tap.js';
import { AsyncQueue, firstDifference, withTimeout } from './_wait.js';

const stepMs = 5_000;
const testOptions = { timeout: 30_000 } as const;

interface Received {
  readonly data: Buffer;
  readonly isBinary: boolean;
}

/** Messages both directions carry: repeated JSON (context takeover pays off), compressible binary, tiny, 1 MiB, empty. */
function messages(): Array<{ label: string; data: Buffer; isBinary: boolean }> {
  const json = (variant: number, size: number): Buffer => {
    const rows: string[] = [];
    let length = 0;
    while (length < size) {
      const row = JSON.stringify({ id: rows.length, variant, city: `Z\u00fcrich \u{1F682} ${rows.length % 9}`, on: rows.length % 2 === 0 });
      rows.push(row);
      length += Buffer.byteLength(row) + 1;
    }
    return Buffer.from(`[${rows.join(',')}]`);
  };
  const binary = Buffer.alloc(20_000);
  for (let i = 0; i < binary.length; i++) binary[i] = (i * 13) % 241;
  const large = Buffer.alloc(1 << 20);
  for (let i = 0; i < large.length; i++) large[i] = (i >> 4) % 200;
  return [
    { label: 'json-4k-0', data: json(0, 4096), isBinary: false },
    { label: 'json-4k-1', data: json(1, 4096), isBinary: false },
    { label: 'json-4k-0-again', data: json(0, 4096), isBinary: false },
    { label: 'binary-20k', data: binary, isBinary: true },
    { label: 'tiny', data: Buffer.from('ok'), isBinary: false },
    { label: 'binary-1m', data: large, isBinary: true },
    { label: 'empty-text', data: Buffer.alloc(0), isBinary: false },
  ];
}

/** The tapped WebSocket connection to /echo once close frames passed both ways. */
function closedConnection(tap: FrameTap): Promise<TappedConnection> {
  return tap.waitFor(() => tap.websockets('/echo').find((c) => c.frames.some((f) => f.from === 'client' && f.opcode === 8)
    && c.frames.some((f) => f.from === 'server' && f.opcode === 8)), stepMs, 'the closed WebSocket connection to /echo');
}

function checkWire(t: TestContext, connection: TappedConnection, expected: { client: number; server: number; total: number }): void {
  const tapText = describeTap([connection]);
  assert.deepEqual(connection.problems, [], `malformed frames:\n${tapText}`);
  const client = summarize(connection, 'client');
  const server = summarize(connection, 'server');
  t.diagnostic(`answer ${JSON.stringify(connection.responseHeaders.get('sec-websocket-extensions') ?? '')}; client ${client.compressedMessages}/${client.messages} RSV1, ${client.dataBytes} B; server ${server.compressedMessages}/${server.messages} RSV1, ${server.dataBytes} B`);
  // RFC 7692 §6.1: RSV1 only on the first frame of a data message.
  assert.deepEqual(client.misplacedRsv, [], tapText);
  assert.deepEqual(server.misplacedRsv, [], tapText);
  assert.equal(client.messages, expected.total, tapText);
  assert.equal(server.messages, expected.total, tapText);
  assert.equal(client.compressedMessages, expected.client, `client compressed messages:\n${tapText}`);
  assert.equal(server.compressedMessages, expected.server, `server compressed messages:\n${tapText}`);
}

/** Asserts the Sec-WebSocket-Extensions answer is permessage-deflate with exactly these parameters, in any order. */
function assertAnswer(header: string | undefined, params: readonly string[], context: string): void {
  const parts = (header ?? '').split(';').map((part) => part.trim());
  assert.equal(parts[0], 'permessage-deflate', `answer ${JSON.stringify(header)} (${context})`);
  assert.deepEqual(parts.slice(1).sort(), [...params].sort(), `answer ${JSON.stringify(header)} (${context})`);
}

function assertEcho(label: string, sent: { data: Buffer; isBinary: boolean }, echo: Received): void {
  assert.equal(echo.isBinary, sent.isBinary, `${label}: echo has another type`);
  assert.equal(echo.data.length, sent.data.length, `${label}: echo is ${echo.data.length} bytes, sent ${sent.data.length}`);
  assert.equal(firstDifference(echo.data, sent.data), -1, `${label}: echo differs`);
}

describe('ws client (perMessageDeflate, threshold 0) against switchyard serve --deflate, through a frame tap', () => {
  let defaults: RunningServer | undefined;
  let limited: RunningServer | undefined;
  before(async () => {
    [defaults, limited] = await Promise.all([
      startCliServer(['--echo', '/echo', '--ping-interval-ms', '0', '--deflate']),
      startCliServer(['--echo', '/echo', '--ping-interval-ms', '0', '--deflate', '--deflate-threshold-bytes', '0', '--deflate-server-no-context-takeover',
        '--deflate-client-no-context-takeover', '--deflate-server-max-window-bits', '9', '--deflate-client-max-window-bits', '10']),
    ]);
  });
  after(async () => {
    await Promise.all([defaults?.stop(), limited?.stop()]);
  });

  const cases: ReadonlyArray<{ name: string; server: () => RunningServer | undefined; options: PerMessageDeflateOptions; threshold: number; answer: readonly string[] }> = [
    { name: 'ws\'s default offer, server defaults', server: () => defaults, options: { threshold: 0 }, threshold: 1024, answer: [] },
    {
      name: 'ws offering no context takeover and 11-bit windows, server defaults',
      server: () => defaults,
      options: { threshold: 0, serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 11, clientMaxWindowBits: 11 },
      threshold: 1024,
      answer: ['server_no_context_takeover', 'client_no_context_takeover', 'server_max_window_bits=11', 'client_max_window_bits=11'],
    },
    {
      name: 'ws\'s default offer, a server with no context takeover and 9/10-bit windows',
      server: () => limited,
      options: { threshold: 0 },
      threshold: 0,
      answer: ['server_no_context_takeover', 'client_no_context_takeover', 'server_max_window_bits=9', 'client_max_window_bits=10'],
    },
  ];

  for (const testCase of cases) {
    it(`echoes every message intact with RSV1 both ways: ${testCase.name}`, testOptions, async (t) => {
      const target = testCase.server();
      assert.ok(target, 'switchyard serve did not start');
      const tap = await startFrameTap(target);
      t.after(() => tap.close());
      const socket = new WebSocket(`${tap.wsUrl}/echo`, { perMessageDeflate: testCase.options, maxPayload: 1 << 24 });
      t.after(() => socket.terminate());
      const received = new AsyncQueue<Received>();
      socket.on('message', (data, isBinary) => {
        received.push({ data: Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data), isBinary });
      });
      socket.on('error', () => {});
      const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
      await withTimeout(once(socket, 'open'), stepMs, 'the ws client to open');
      // ws exposes only the extension's name; the tap has the full answer (checked below).
      assert.equal(socket.extensions, 'permessage-deflate', `ws negotiated ${JSON.stringify(socket.extensions)}`);
      const sent = messages();
      for (const message of sent) {
        socket.send(message.data, { binary: message.isBinary });
        assertEcho(message.label, message, await received.next(stepMs, `the echo of ${message.label}`));
      }
      // A message ws sends in fragments (fin: false, then fin: true): compressed, RSV1 on the first frame only.
      socket.send('frag-1 \u00e9 '.repeat(200), { fin: false });
      socket.send('frag-2 \u20ac'.repeat(300), { fin: true });
      assertEcho('fragmented', { data: Buffer.from('frag-1 \u00e9 '.repeat(200) + 'frag-2 \u20ac'.repeat(300)), isBinary: false }, await received.next(stepMs, 'the fragmented echo'));
      socket.close(1000);
      assert.equal(await withTimeout(closed, stepMs, 'the ws close event'), 1000);
      const connection = await closedConnection(tap);
      assertAnswer(connection.responseHeaders.get('sec-websocket-extensions'), testCase.answer, `to ws's offer ${connection.requestHeaders.get('sec-websocket-extensions') ?? 'none'}`);
      const total = sent.length + 1;
      // ws with threshold 0 compresses everything; the server from its threshold up (the fragmented one is 6 KiB).
      const serverCompressed = sent.filter((m) => m.data.length >= testCase.threshold).length + 1;
      checkWire(t, connection, { client: total, server: serverCompressed, total });
      assert.ok(summarize(connection, 'client').dataFrames > total, 'the fragmented message was not fragmented on the wire');
    });
  }
});

describe('our client (connect, perMessageDeflate: true) against a ws WebSocketServer with perMessageDeflate, through a frame tap', () => {
  const variants: ReadonlyArray<{ name: string; options: PerMessageDeflateOptions; answer: readonly string[] }> = [
    { name: 'threshold 0, defaults', options: { threshold: 0 }, answer: [] },
    {
      name: 'threshold 0, no context takeover, server window 10, client window 9',
      options: { threshold: 0, serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 9 },
      answer: ['server_no_context_takeover', 'client_no_context_takeover', 'server_max_window_bits=10', 'client_max_window_bits=9'],
    },
  ];
  const servers = new Map<string, { wss: WebSocketServer; port: number; seen: AsyncQueue<Received> }>();
  before(async () => {
    for (const variant of variants) {
      const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: variant.options, maxPayload: 1 << 24 });
      await withTimeout(once(wss, 'listening'), stepMs, 'the ws server to listen');
      const seen = new AsyncQueue<Received>();
      wss.on('connection', (socket) => {
        socket.on('error', () => {});
        socket.on('message', (data, isBinary) => {
          const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
          seen.push({ data: bytes, isBinary });
          socket.send(bytes, { binary: isBinary });
        });
      });
      servers.set(variant.name, { wss, port: (wss.address() as AddressInfo).port, seen });
    }
  });
  after(async () => {
    for (const { wss } of servers.values()) {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    }
  });

  for (const variant of variants) {
    it(`exchanges compressed messages both ways: ${variant.name}`, testOptions, async (t) => {
      const server = servers.get(variant.name);
      assert.ok(server, 'the ws server did not start');
      const tap = await startFrameTap({ host: '127.0.0.1', port: server.port });
      t.after(() => tap.close());
      const echoes = new AsyncQueue<Received>();
      const closes = new AsyncQueue<{ code: number; wasClean: boolean }>();
      const ws = await withTimeout(connect(`${tap.wsUrl}/echo`, {
        perMessageDeflate: true,
        deflateThresholdBytes: 0,
        handlers: {
          message(_ws, data, isBinary) { echoes.push({ data: Buffer.from(data), isBinary }); },
          close(_ws, code, _reason, wasClean) { closes.push({ code, wasClean }); },
        },
      }), stepMs, 'connect() through the tap');
      t.after(() => ws.terminate());
      assert.equal(ws.extensions, 'permessage-deflate');
      const sent = messages();
      for (const message of sent) {
        ws.send(message.data, message.isBinary);
        // What ws inflated on its side, then what our client inflated of ws's compressed echo.
        assertEcho(`${message.label} at the ws server`, message, await server.seen.next(stepMs, `ws to receive ${message.label}`));
        assertEcho(message.label, message, await echoes.next(stepMs, `the echo of ${message.label}`));
      }
      ws.close(1000, 'done');
      assert.deepEqual(await closes.next(stepMs, 'our close handler'), { code: 1000, wasClean: true });
      const connection = await closedConnection(tap);
      assertAnswer(connection.responseHeaders.get('sec-websocket-extensions'), variant.answer, `to our offer ${connection.requestHeaders.get('sec-websocket-extensions') ?? 'none'}`);
      // Both sides compress every message (threshold 0), the empty one included.
      checkWire(t, connection, { client: sent.length, server: sent.length, total: sent.length });
    });
  }
});
