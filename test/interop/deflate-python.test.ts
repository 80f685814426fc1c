// Interop, permessage-deflate with python-websockets (Debian python3-websockets), a peer nobody here wrote, in
// both roles and through a frame tap that records what each side put on the wire: python as a CLIENT (its
// default offers compression) against `switchyard serve --echo /echo --deflate ...`, and our client
// (`connect(url, { perMessageDeflate: true })`) against a python SERVER with compression on. Each test checks
// the echoes AND that the tap saw compressed (RSV1) messages both ways, with RSV1 nowhere else.
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { connect } from '../../src/client/connect.js';
import { needPeer, pythonWebsocketsMissing } from '../_support/peers.js';
import { startCliServer, type RunningServer } from '../_support/cli-server.js';
import { describeTap, startFrameTap, summarize, type FrameTap, type TappedConnection } from '../_support/frame-tap.js';
import { runPythonScript, startPythonServer, type JsonObject, type PythonServer } from './_python.js';
import { AsyncQueue, withTimeout } from './_wait.js';

const testOptions = { timeout: 45_000 } as const;
const stepMs = 10_000;

/** Runs deflate_client.py against `url` (optionally with an offer) and returns the JSON it printed. */
function runDeflateClient(t: TestContext, url: string, offer?: Record<string, unknown>): Promise<JsonObject> {
  return runPythonScript(t, 'deflate_client.py', [url, ...(offer === undefined ? [] : [JSON.stringify(offer)])], 35_000);
}

/** Starts deflate_server.py (optionally with ServerPerMessageDeflateFactory arguments) and waits for its port. */
function startPythonDeflateServer(options?: Record<string, unknown>): Promise<PythonServer> {
  return startPythonServer({ script: 'deflate_server.py', args: options === undefined ? [] : [JSON.stringify(options)], timeoutMs: stepMs });
}

/** The tapped WebSocket connection(s) to /echo, once their close frames have passed both ways. */
async function tappedEcho(tap: FrameTap, count = 1): Promise<TappedConnection[]> {
  return tap.waitFor(() => {
    const found = tap.websockets('/echo');
    const done = found.filter((c) => c.frames.some((f) => f.from === 'client' && f.opcode === 8) && c.frames.some((f) => f.from === 'server' && f.opcode === 8));
    return done.length >= count ? done : undefined;
  }, stepMs, `${count} closed WebSocket connection(s) to /echo`);
}

/** RSV1 exactly where RFC 7692 §6.1 allows it, masking as RFC 6455 §5.1 requires, on both sides. */
function assertWellFormed(connection: TappedConnection, tapText: string): void {
  assert.deepEqual(connection.problems, [], `the tap saw malformed frames:\n${tapText}`);
  assert.deepEqual(summarize(connection, 'client').misplacedRsv, [], `client RSV bits out of place:\n${tapText}`);
  assert.deepEqual(summarize(connection, 'server').misplacedRsv, [], `server RSV bits out of place:\n${tapText}`);
}

/** One line for the test log: what the tap saw each way. */
function tapSummary(connection: TappedConnection): string {
  const side = (from: 'client' | 'server'): string => {
    const s = summarize(connection, from);
    return `${from}: ${s.compressedMessages}/${s.messages} messages with RSV1, ${s.dataFrames} data frames, ${s.dataBytes} payload bytes`;
  };
  return `answer ${JSON.stringify(connection.responseHeaders.get('sec-websocket-extensions') ?? '')}; ${side('client')}; ${side('server')}`;
}

interface PythonResult {
  label: string;
  sent: { type: string; bytes: number; sha256: string };
  received: { type: string; bytes: number; sha256: string };
  equal: boolean;
}

describe('python-websockets client (compression on) against switchyard serve --deflate, through a frame tap', () => {
  let defaults: RunningServer | undefined;
  let limited: RunningServer | undefined;
  before(async () => {
    if (pythonWebsocketsMissing() !== undefined) return;
    [defaults, limited] = await Promise.all([
      startCliServer(['--echo', '/echo', '--ping-interval-ms', '0', '--deflate']),
      startCliServer(['--echo', '/echo', '--ping-interval-ms', '0', '--deflate', '--deflate-threshold-bytes', '0',
        '--deflate-server-no-context-takeover', '--deflate-server-max-window-bits', '10', '--deflate-client-max-window-bits', '11']),
    ]);
  });
  after(async () => {
    await Promise.all([defaults?.stop(), limited?.stop()]);
  });

  async function runThroughTap(t: TestContext, target: RunningServer | undefined, offer?: Record<string, unknown>) {
    assert.ok(target, 'switchyard serve did not start');
    const tap = await startFrameTap(target);
    t.after(() => tap.close());
    const result = await runDeflateClient(t, `${tap.wsUrl}/echo`, offer);
    const results = result['results'] as unknown as PythonResult[];
    for (const r of results) {
      assert.ok(r.equal, `${r.label}: echo differs: sent ${JSON.stringify(r.sent)}, received ${JSON.stringify(r.received)}`);
      assert.equal(r.received.type, r.sent.type, `${r.label}: echo has another type`);
    }
    assert.equal(results.length, 10);
    const [connection] = await tappedEcho(tap);
    const tapText = describeTap([connection!]);
    assertWellFormed(connection!, tapText);
    t.diagnostic(tapSummary(connection!));
    return { result, results, connection: connection!, tapText };
  }

  it('negotiates with websockets\' default offer; every python message arrives compressed, every echo of 1 KiB+ leaves compressed', testOptions, async (t) => {
    if (!needPeer(t, pythonWebsocketsMissing())) return;
    const { result, results, connection, tapText } = await runThroughTap(t, defaults);
    assert.match(connection.requestHeaders.get('sec-websocket-extensions') ?? '', /permessage-deflate/, 'python did not offer permessage-deflate');
    assert.equal(result['responseExtensions'], connection.responseHeaders.get('sec-websocket-extensions'));
    const state = (result['extensions'] as JsonObject[])[0];
    assert.equal(state?.['name'], 'permessage-deflate', `python did not enable permessage-deflate: ${JSON.stringify(result['extensions'])}`);
    const client = summarize(connection, 'client');
    const server = summarize(connection, 'server');
    // python compresses every message (its fragmented ones: RSV1 on the first frame only).
    assert.equal(client.messages, results.length, tapText);
    assert.equal(client.compressedMessages, results.length, `python sent uncompressed messages:\n${tapText}`);
    assert.ok(client.dataFrames > client.messages, `python's fragmented messages were not fragmented on the wire:\n${tapText}`);
    // Our server compresses from its 1024-byte threshold up: all but "hi".
    assert.equal(server.messages, results.length, tapText);
    assert.equal(server.compressedMessages, results.filter((r) => r.sent.bytes >= 1024).length, `server RSV1 count:\n${tapText}`);
    assert.ok(server.dataBytes < client.dataBytes * 2 && server.dataBytes < 200_000, `server sent ${server.dataBytes} payload bytes: compression did not shrink the echoes`);
  });

  it('honours python\'s offer of no context takeover and 10-bit windows both ways', testOptions, async (t) => {
    if (!needPeer(t, pythonWebsocketsMissing())) return;
    const offer = { server_no_context_takeover: true, client_no_context_takeover: true, server_max_window_bits: 10, client_max_window_bits: 10 };
    const { result, results, connection, tapText } = await runThroughTap(t, defaults, offer);
    const state = (result['extensions'] as JsonObject[])[0];
    // websockets checked our answer against its offer; these are what it agreed to.
    assert.deepEqual(state, {
      name: 'permessage-deflate', remote_no_context_takeover: true, local_no_context_takeover: true, remote_max_window_bits: 10, local_max_window_bits: 10,
    });
    assert.equal(summarize(connection, 'client').compressedMessages, results.length, tapText);
    assert.equal(summarize(connection, 'server').compressedMessages, results.filter((r) => r.sent.bytes >= 1024).length, tapText);
  });

  it('python accepts a server that resets its context, limits its window to 10 and the client\'s to 11, and compresses everything', testOptions, async (t) => {
    if (!needPeer(t, pythonWebsocketsMissing())) return;
    const { result, results, connection, tapText } = await runThroughTap(t, limited);
    const state = (result['extensions'] as JsonObject[])[0];
    assert.equal(state?.['remote_no_context_takeover'], true, `python's view: ${JSON.stringify(state)}`);
    assert.equal(state?.['remote_max_window_bits'], 10);
    assert.equal(state?.['local_max_window_bits'], 11);
    assert.equal(summarize(connection, 'client').compressedMessages, results.length, tapText);
    // Threshold 0: every echo compressed, "hi" included.
    assert.equal(summarize(connection, 'server').compressedMessages, results.length, tapText);
  });
});

interface Echo {
  readonly data: Buffer;
  readonly isBinary: boolean;
}

const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

/** Messages our client sends: repeated JSON (context takeover pays off), compressible binary, tiny, large, empty. */
function ourMessages(): Array<{ data: Buffer; isBinary: boolean; label: string }> {
  const json = (variant: number, size: number): Buffer => {
    const rows: string[] = [];
    let length = 0;
    while (length < size) {
      const row = JSON.stringify({ id: rows.length, variant, name: `gr\u00fc\u00dfe \u20ac${rows.length % 5}`, tags: ['a', 'b'] });
      rows.push(row);
      length += Buffer.byteLength(row) + 1;
    }
    return Buffer.from(`[${rows.join(',')}]`);
  };
  const binary = Buffer.alloc(16_384);
  for (let i = 0; i < binary.length; i++) binary[i] = (i * 7) % 251;
  return [
    { label: 'json-4k-0', data: json(0, 4096), isBinary: false },
    { label: 'json-4k-1', data: json(1, 4096), isBinary: false },
    { label: 'json-4k-2', data: json(2, 4096), isBinary: false },
    { label: 'binary-16k', data: binary, isBinary: true },
    { label: 'binary-16k-again', data: binary, isBinary: true },
    { label: 'tiny', data: Buffer.from('hi'), isBinary: false },
    { label: 'json-256k', data: json(3, 262_144), isBinary: false },
    { label: 'empty', data: Buffer.alloc(0), isBinary: true },
  ];
}

describe('our client (connect, perMessageDeflate: true) against a python-websockets server with compression, through a frame tap', () => {
  const servers = new Map<string, PythonServer>();
  const variants: ReadonlyArray<{ name: string; options: Record<string, unknown> | undefined; expected: RegExp }> = [
    // websockets' default server: server_max_window_bits=12, client_max_window_bits=12.
    { name: 'websockets\' default (compression="deflate")', options: undefined, expected: /server_max_window_bits=12.*client_max_window_bits=12/ },
    {
      name: 'no context takeover both ways, server window 10, client window 9',
      options: { server_no_context_takeover: true, client_no_context_takeover: true, server_max_window_bits: 10, client_max_window_bits: 9 },
      expected: /server_no_context_takeover.*client_no_context_takeover.*server_max_window_bits=10.*client_max_window_bits=9/,
    },
  ];
  before(async () => {
    if (pythonWebsocketsMissing() !== undefined) return;
    for (const variant of variants) servers.set(variant.name, await startPythonDeflateServer(variant.options));
  });
  after(async () => {
    await Promise.all([...servers.values()].map((server) => server.stop()));
  });

  for (const variant of variants) {
    it(`exchanges compressed messages both ways with ${variant.name}`, testOptions, async (t) => {
      if (!needPeer(t, pythonWebsocketsMissing())) return;
      const python = servers.get(variant.name);
      assert.ok(python, 'deflate_server.py did not start');
      const tap = await startFrameTap({ host: '127.0.0.1', port: python.port });
      t.after(() => tap.close());
      const echoes = new AsyncQueue<Echo>();
      const closed = new AsyncQueue<{ code: number; wasClean: boolean }>();
      const ws = await withTimeout(connect(`${tap.wsUrl}/echo`, {
        perMessageDeflate: true,
        deflateThresholdBytes: 0,
        handlers: {
          message(_ws, data, isBinary) { echoes.push({ data: Buffer.from(data), isBinary }); },
          close(_ws, code, _reason, wasClean) { closed.push({ code, wasClean }); },
        },
      }), stepMs, 'connect() through the tap');
      t.after(() => ws.terminate());
      assert.equal(ws.extensions, 'permessage-deflate', 'our client did not agree to permessage-deflate');
      const messages = ourMessages();
      for (const message of messages) {
        ws.send(message.data, message.isBinary);
        const echo = await echoes.next(stepMs, `the echo of ${message.label}`);
        assert.equal(echo.isBinary, message.isBinary, `${message.label}: echo has another type`);
        assert.equal(echo.data.length, message.data.length, `${message.label}: echo is ${echo.data.length} bytes, sent ${message.data.length}`);
        assert.equal(sha256(echo.data), sha256(message.data), `${message.label}: echo differs`);
      }
      ws.close(1000, 'done');
      assert.deepEqual(await closed.next(stepMs, 'our close handler'), { code: 1000, wasClean: true });

      const [connection] = await tappedEcho(tap);
      const tapText = describeTap([connection!]);
      assertWellFormed(connection!, tapText);
      t.diagnostic(tapSummary(connection!));
      assert.match(connection!.responseHeaders.get('sec-websocket-extensions') ?? '', variant.expected, `python's answer:\n${tapText}`);
      // The python server saw each message intact too (it reports a digest of what it inflated).
      for (const message of messages) {
        await python.waitForEvent((e) => e.event === 'message' && (e['message'] as JsonObject)['sha256'] === sha256(message.data), stepMs, `${message.label} intact`);
      }
      // Threshold 0: every message we send is compressed; python compresses every message it sends.
      const ours = summarize(connection!, 'client');
      const theirs = summarize(connection!, 'server');
      assert.equal(ours.messages, messages.length, tapText);
      assert.equal(ours.compressedMessages, messages.length, `our client sent uncompressed messages:\n${tapText}`);
      assert.equal(theirs.compressedMessages, messages.length, `python sent uncompressed messages:\n${tapText}`);
      const plainBytes = messages.reduce((sum, m) => sum + m.data.length, 0);
      assert.ok(ours.dataBytes < plainBytes / 3, `our client put ${ours.dataBytes} payload bytes on the wire for ${plainBytes} bytes of messages`);
    });
  }
});
