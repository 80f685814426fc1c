// Interop, permessage-deflate with headless Chromium (Debian chromium, driven by playwright-core), which offers
// "permessage-deflate; client_max_window_bits" on every WebSocket. The page is served by `switchyard serve ROOT
// --echo /echo --deflate ...` through a frame tap, and opens its WebSocket to the same origin (the tap), so the
// test sees what went over the wire: compressed (RSV1) messages both ways, RSV1 nowhere else, and the echoes
// the page compared byte for byte.
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { chromiumMissing, needPeer } from '../_support/peers.js';
import { startCliServer, type RunningServer } from '../_support/cli-server.js';
import { describeTap, startFrameTap, summarize, tappedMessages, type FrameTap, type TappedConnection } from '../_support/frame-tap.js';
import { launchChromium } from './_chromium.js';
import { withTimeout } from './_wait.js';

const testOptions = { timeout: 60_000 } as const;
const stepMs = 10_000;

/**
 * The page: deflateScenario() opens a WebSocket to its own origin, sends each message, waits for its echo and
 * compares it in the page; it returns the negotiated extensions, one {label, type, sent, received, equal} per
 * message, and the close event.
 */
const indexHtml = `<!doctype html>
<html><head><meta charset="utf-8"><title>switchyard deflate interop</title></head>
<body><p>switchyard deflate interop page</p>
<script>
const STEP_MS = ${stepMs / 2};
function timeout(promise, what) {
  return Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error('page timed out waiting for ' + what)), STEP_MS))]);
}
function json(variant, size) {
  const rows = [];
  let length = 0;
  while (length < size) {
    const row = JSON.stringify({ id: rows.length, variant, city: 'M\\u00fcnchen \\u{1F68B} ' + (rows.length % 11), on: rows.length % 3 === 0 });
    rows.push(row);
    length += new TextEncoder().encode(row).length + 1;
  }
  return '[' + rows.join(',') + ']';
}
function bytes(size, step) { const b = new Uint8Array(size); for (let i = 0; i < size; i++) b[i] = (Math.floor(i / step) * 7) % 233; return b; }
function equal(sent, received) {
  if (typeof sent === 'string') return typeof received === 'string' && sent === received;
  if (!(received instanceof ArrayBuffer)) return false;
  const a = new Uint8Array(sent), b = new Uint8Array(received);
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
const size = (data) => typeof data === 'string' ? new TextEncoder().encode(data).length : data.byteLength;
window.deflateScenario = async (path) => {
  const ws = new WebSocket('ws://' + location.host + path);
  ws.binaryType = 'arraybuffer';
  const queue = [], waiters = [];
  let closeEvent = null, closeWaiter = null;
  ws.onmessage = (event) => { const waiter = waiters.shift(); if (waiter) waiter(event.data); else queue.push(event.data); };
  ws.onclose = (event) => { closeEvent = { code: event.code, wasClean: event.wasClean }; if (closeWaiter) closeWaiter(closeEvent); };
  await timeout(new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = () => reject(new Error('WebSocket failed to open')); }), 'open');
  const next = (what) => timeout(queue.length > 0 ? Promise.resolve(queue.shift()) : new Promise((resolve) => waiters.push(resolve)), what);
  const messages = [
    ['json-4k-0', json(0, 4096)], ['json-4k-1', json(1, 4096)], ['json-4k-0-again', json(0, 4096)],
    ['binary-16k', bytes(16384, 1).buffer], ['binary-16k-again', bytes(16384, 1).buffer],
    ['tiny', 'hi'], ['binary-1m', bytes(1 << 20, 16).buffer], ['json-300k', json(2, 300000)], ['empty', ''],
  ];
  const results = [];
  for (const [label, data] of messages) {
    ws.send(data);
    const echo = await next('the echo of ' + label);
    results.push({ label, type: typeof data === 'string' ? 'text' : 'binary', sent: size(data), received: typeof echo === 'string' ? size(echo) : echo.byteLength, equal: equal(data, echo) });
  }
  ws.close(1000, 'page done');
  const close = await timeout(closeEvent ? Promise.resolve(closeEvent) : new Promise((resolve) => { closeWaiter = resolve; }), 'the close event');
  return { extensions: ws.extensions, results, close };
};
</script></body></html>
`;

interface PageResult {
  extensions: string;
  results: Array<{ label: string; type: string; sent: number; received: number; equal: boolean }>;
  close: { code: number; wasClean: boolean };
}

describe('headless Chromium against switchyard serve --deflate, through a frame tap', () => {
  let root: string | undefined;
  let browser: Browser | undefined;
  let defaults: RunningServer | undefined;
  let limited: RunningServer | undefined;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'switchyard-deflate-browser-'));
    await writeFile(join(root, 'index.html'), indexHtml);
    if (chromiumMissing() !== undefined) return;
    [defaults, limited] = await Promise.all([
      startCliServer([root, '--echo', '/echo', '--ping-interval-ms', '0', '--deflate']),
      startCliServer([root, '--echo', '/echo', '--ping-interval-ms', '0', '--deflate', '--deflate-threshold-bytes', '0',
        '--deflate-server-no-context-takeover', '--deflate-client-no-context-takeover', '--deflate-server-max-window-bits', '10',
        '--deflate-client-max-window-bits', '10']),
    ]);
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await Promise.all([defaults?.stop(), limited?.stop()]);
    if (root) await rm(root, { recursive: true, force: true });
  });

  /** Loads the page through a new tap in front of `server` and runs the scenario; returns the page's result and the tapped connection. */
  async function runScenario(t: TestContext, server: RunningServer | undefined): Promise<{ result: PageResult; connection: TappedConnection; tap: FrameTap }> {
    assert.ok(browser, 'Chromium did not launch');
    assert.ok(server, 'switchyard serve did not start');
    const tap = await startFrameTap(server);
    t.after(() => tap.close());
    const page: Page = await browser.newPage();
    t.after(() => page.close().catch(() => {}));
    const consoleLines: string[] = [];
    page.on('console', (message) => consoleLines.push(message.text()));
    const response = await page.goto(`${tap.httpUrl}/index.html`, { timeout: stepMs });
    assert.equal(response?.status(), 200, 'the page was not served through the tap');
    let result: PageResult;
    try {
      result = await withTimeout(page.evaluate(`deflateScenario('/echo')`), stepMs * 3, 'the page to finish deflateScenario') as PageResult;
    } catch (error) {
      throw new Error(`${(error as Error).message}\nChromium console:\n${consoleLines.join('\n')}\ntap:\n${describeTap(tap.connections)}`, { cause: error });
    }
    const connection = await tap.waitFor(() => tap.websockets('/echo').find((c) => c.frames.some((f) => f.from === 'server' && f.opcode === 8)
      && c.frames.some((f) => f.from === 'client' && f.opcode === 8)), stepMs, 'the closed WebSocket to /echo');
    const client = summarize(connection, 'client');
    const serverSide = summarize(connection, 'server');
    t.diagnostic(`offer ${JSON.stringify(connection.requestHeaders.get('sec-websocket-extensions') ?? '')}, answer ${JSON.stringify(connection.responseHeaders.get('sec-websocket-extensions') ?? '')}; `
      + `chromium ${client.compressedMessages}/${client.messages} RSV1 in ${client.dataFrames} frames, ${client.dataBytes} B; server ${serverSide.compressedMessages}/${serverSide.messages} RSV1, ${serverSide.dataBytes} B`);
    return { result, connection, tap };
  }

  function checkCommon(result: PageResult, connection: TappedConnection): string {
    const tapText = describeTap([connection]);
    for (const r of result.results) {
      assert.ok(r.equal, `${r.label}: the page got a different echo (${r.received} bytes for ${r.sent})`);
    }
    assert.equal(result.results.length, 9);
    assert.deepEqual(result.close, { code: 1000, wasClean: true });
    assert.match(connection.requestHeaders.get('sec-websocket-extensions') ?? '', /permessage-deflate/, 'Chromium did not offer permessage-deflate');
    // The page sees exactly the server's answer.
    assert.equal(result.extensions, connection.responseHeaders.get('sec-websocket-extensions'), 'ws.extensions differs from the answer on the wire');
    assert.deepEqual(connection.problems, [], `malformed frames:\n${tapText}`);
    assert.deepEqual(summarize(connection, 'client').misplacedRsv, [], `Chromium's RSV bits out of place:\n${tapText}`);
    assert.deepEqual(summarize(connection, 'server').misplacedRsv, [], `server RSV bits out of place:\n${tapText}`);
    // Message by message: Chromium compresses what it sends once the extension is on (at least every message of
    // 1 KiB or more, which always shrinks here), and the server echoes with the same type.
    const fromChromium = tappedMessages(connection, 'client');
    const fromServer = tappedMessages(connection, 'server');
    assert.equal(fromChromium.length, result.results.length, tapText);
    assert.equal(fromServer.length, result.results.length, tapText);
    result.results.forEach((r, index) => {
      if (r.sent >= 1024) assert.ok(fromChromium[index]!.compressed, `${r.label}: Chromium sent it without RSV1:\n${tapText}`);
      if (r.sent >= 1024) assert.ok(fromChromium[index]!.wireBytes < r.sent, `${r.label}: ${fromChromium[index]!.wireBytes} bytes on the wire for ${r.sent}`);
      assert.equal(fromServer[index]!.opcode, r.type === 'text' ? 1 : 2, `${r.label}: echo opcode`);
    });
    return tapText;
  }

  it('negotiates with Chromium\'s offer and echoes text and binary compressed both ways (server defaults)', testOptions, async (t) => {
    if (!needPeer(t, chromiumMissing())) return;
    const { result, connection } = await runScenario(t, defaults);
    const tapText = checkCommon(result, connection);
    assert.equal(result.extensions, 'permessage-deflate');
    // The server compresses from its 1024-byte threshold up: all but "hi" and "".
    const fromServer = tappedMessages(connection, 'server');
    result.results.forEach((r, index) => {
      assert.equal(fromServer[index]!.compressed, r.sent >= 1024, `${r.label} (${r.sent} bytes): server RSV1 ${fromServer[index]!.compressed}:\n${tapText}`);
    });
    const plainBytes = result.results.reduce((sum, r) => sum + r.sent, 0);
    assert.ok(summarize(connection, 'server').dataBytes < plainBytes / 4, 'the echoes were not compressed much');
  });

  it('Chromium accepts no context takeover both ways and 10-bit windows, and every echo is compressed (threshold 0)', testOptions, async (t) => {
    if (!needPeer(t, chromiumMissing())) return;
    const { result, connection } = await runScenario(t, limited);
    const tapText = checkCommon(result, connection);
    const params = result.extensions.split(';').map((p) => p.trim()).sort();
    assert.deepEqual(params, ['client_max_window_bits=10', 'client_no_context_takeover', 'permessage-deflate', 'server_max_window_bits=10', 'server_no_context_takeover']);
    assert.equal(summarize(connection, 'server').compressedMessages, result.results.length, `server RSV1 count:\n${tapText}`);
  });
});
