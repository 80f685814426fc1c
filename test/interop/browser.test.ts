// Interop: headless Chromium (Debian chromium, driven by playwright-core), a peer nobody here wrote. The page is
// served by our static files and opens WebSockets to the same origin, first on `switchyard serve ROOT --echo
// /echo --broadcast /chat`, then on an embedded app for a selected subprotocol and a server-initiated close.
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { chromiumMissing, needPeer } from '../_support/peers.js';
import { startCliServer, type RunningServer } from '../_support/cli-server.js';
import { startEmbeddedApp, type EmbeddedApp } from './_embedded.js';
import { launchChromium } from './_chromium.js';
import { withTimeout } from './_wait.js';

const testOptions = { timeout: 60_000 } as const;
const stepMs = 10_000;

/**
 * The page: helpers the test calls with page.evaluate. Every wait in the page has its own timeout, so a
 * missing message rejects with what was awaited instead of hanging. Messages are reported as
 * {type: 'text', text} or {type: 'binary', hex}; large ones as {type, bytes, checksum}.
 */
const indexHtml = `<!doctype html>
<html><head><meta charset="utf-8"><title>switchyard interop</title></head>
<body><p id="ready">switchyard interop page</p>
<script>
const STEP_MS = ${stepMs / 2};
function hex(bytes) { return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(''); }
function checksum(bytes) { let sum = 0; for (let i = 0; i < bytes.length; i++) sum = (sum * 31 + bytes[i]) >>> 0; return sum; }
function describe(data) {
  if (typeof data === 'string') return data.length > 1024 ? { type: 'text', chars: data.length } : { type: 'text', text: data };
  const bytes = new Uint8Array(data);
  return bytes.length > 1024 ? { type: 'binary', bytes: bytes.length, checksum: checksum(bytes) } : { type: 'binary', hex: hex(bytes) };
}
function pattern(size) { const bytes = new Uint8Array(size); for (let i = 0; i < size; i++) bytes[i] = i % 251; return bytes; }
function timeout(promise, what) {
  return Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error('page timed out waiting for ' + what)), STEP_MS))]);
}
/** Opens a WebSocket to the page's own host and queues its messages and its close event. */
function openSocket(path, protocols) {
  const ws = new WebSocket('ws://' + location.host + path, protocols);
  ws.binaryType = 'arraybuffer';
  const messages = [], waiters = [];
  let closeEvent = null, closeWaiter = null;
  ws.onmessage = (event) => { const waiter = waiters.shift(); if (waiter) waiter(event.data); else messages.push(event.data); };
  ws.onclose = (event) => { closeEvent = { code: event.code, reason: event.reason, wasClean: event.wasClean }; if (closeWaiter) closeWaiter(closeEvent); };
  const socket = {
    ws,
    next(what) { return timeout(messages.length > 0 ? Promise.resolve(messages.shift()) : new Promise((resolve) => waiters.push(resolve)), what + ' on ' + path); },
    closed() { return timeout(closeEvent ? Promise.resolve(closeEvent) : new Promise((resolve) => { closeWaiter = resolve; }), 'the close event on ' + path); },
    pending() { return messages.length; },
  };
  return timeout(new Promise((resolve, reject) => {
    ws.onopen = () => resolve(socket);
    ws.onerror = () => { if (ws.readyState !== WebSocket.OPEN) reject(new Error('WebSocket to ' + path + ' failed to open')); };
  }), 'the WebSocket on ' + path + ' to open');
}
window.echoScenario = async (path, protocols) => {
  const socket = await openSocket(path, protocols);
  const result = { protocol: socket.ws.protocol, extensions: socket.ws.extensions };
  socket.ws.send('hello from chromium \\u2713 \\u{1F600}');
  result.text = describe(await socket.next('the echoed text'));
  socket.ws.send(new Uint8Array([0, 1, 2, 127, 128, 254, 255]));
  result.binary = describe(await socket.next('the echoed binary message'));
  const large = pattern(1 << 20);
  socket.ws.send(large.buffer);
  result.large = { sent: { type: 'binary', bytes: large.length, checksum: checksum(large) }, received: describe(await socket.next('the echoed 1 MiB message')) };
  socket.ws.close(1000, 'page done');
  result.close = await socket.closed();
  return result;
};
window.openFailureScenario = (path, protocols) => timeout(new Promise((resolve) => {
  const ws = new WebSocket('ws://' + location.host + path, protocols);
  let opened = false;
  ws.onopen = () => { opened = true; ws.close(); };
  ws.onclose = (event) => resolve({ opened, code: event.code, wasClean: event.wasClean });
}), 'the WebSocket on ' + path + ' to open or fail');
window.closeScenario = async (path, code, reason) => {
  const socket = await openSocket(path);
  socket.ws.close(code, reason);
  return await socket.closed();
};
window.serverCloseScenario = async (path) => {
  const socket = await openSocket(path);
  socket.ws.send('bye');
  const close = await socket.closed();
  return { close, messagesBeforeClose: socket.pending() };
};
window.broadcastScenario = async (path) => {
  const a = await openSocket(path), b = await openSocket(path);
  a.ws.send('from-a');
  const received = { a: [describe(await a.next('a to get its own message'))], b: [describe(await b.next('b to get a\\'s message'))] };
  b.ws.send(new Uint8Array([98, 0, 255]));
  received.a.push(describe(await a.next('a to get b\\'s message')));
  received.b.push(describe(await b.next('b to get its own message')));
  a.ws.close(); b.ws.close();
  return received;
};
</script></body></html>
`;

const largeExpected = (() => {
  let sum = 0;
  for (let i = 0; i < 1 << 20; i++) sum = (sum * 31 + (i % 251)) >>> 0;
  return { type: 'binary', bytes: 1 << 20, checksum: sum };
})();

describe('headless Chromium against switchyard', () => {
  let root: string | undefined;
  let browser: Browser | undefined;
  let cli: RunningServer | undefined;
  let app: EmbeddedApp | undefined;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'switchyard-browser-'));
    await writeFile(join(root, 'index.html'), indexHtml);
    if (chromiumMissing() !== undefined) return;
    cli = await startCliServer([root, '--echo', '/echo', '--broadcast', '/chat']);
    app = await startEmbeddedApp(root);
    browser = await launchChromium();
  });

  after(async () => {
    // Each step runs whatever failed before it.
    await browser?.close().catch(() => {});
    await cli?.stop();
    await app?.close().catch(() => {});
    if (root) await rm(root, { recursive: true, force: true });
  });

  /** The page's console output, so a failed handshake shows Chromium's reason in the assertion message. */
  const consoleOf = new WeakMap<Page, string[]>();

  /** A fresh page loaded from `baseUrl`/index.html; closed after the test. Fails if the page was not served. */
  async function openPage(t: TestContext, baseUrl: string): Promise<Page> {
    assert.ok(browser, 'Chromium did not launch');
    const page = await browser.newPage();
    t.after(() => page.close().catch(() => {}));
    const errors: string[] = [];
    const consoleLines: string[] = [];
    consoleOf.set(page, consoleLines);
    page.on('console', (message) => consoleLines.push(message.text()));
    page.on('pageerror', (error) => errors.push(error.message));
    const response = await page.goto(`${baseUrl}/index.html`, { timeout: stepMs });
    assert.ok(response, `no response for ${baseUrl}/index.html`);
    assert.equal(response.status(), 200, `GET /index.html answered ${response.status()}`);
    assert.match(response.headers()['content-type'] ?? '', /^text\/html/);
    assert.deepEqual(errors, [], 'the page script threw');
    return page;
  }

  const run = async (page: Page, expression: string): Promise<unknown> => {
    try {
      return await withTimeout(page.evaluate(expression), stepMs * 2, `the page to finish ${expression}`);
    } catch (error) {
      throw new Error(`${(error as Error).message}\nChromium console:\n${(consoleOf.get(page) ?? []).join('\n')}`, { cause: error });
    }
  };

  it('serves the page from ROOT and echoes text, binary and 1 MiB over a same-origin WebSocket', testOptions, async (t) => {
    if (!needPeer(t, chromiumMissing())) return;
    assert.ok(cli, 'switchyard serve did not start');
    const page = await openPage(t, cli.httpUrl);
    const result = await run(page, `echoScenario('/echo', [])`);
    assert.deepEqual(result, {
      protocol: '',
      extensions: '', // no permessage-deflate negotiated
      text: { type: 'text', text: 'hello from chromium \u2713 \u{1F600}' },
      binary: { type: 'binary', hex: '0001027f80feff' },
      large: { sent: largeExpected, received: largeExpected },
      close: { code: 1000, reason: 'page done', wasClean: true },
    });
  });

  it('selects none of the offered subprotocols on a CLI route (none configured), so Chromium refuses the handshake', testOptions, async (t) => {
    if (!needPeer(t, chromiumMissing())) return;
    assert.ok(cli, 'switchyard serve did not start');
    const page = await openPage(t, cli.httpUrl);
    // Chromium, unlike RFC 6455 §4.1 (which lets the server select none), fails a handshake whose response has no
    // Sec-WebSocket-Protocol when it offered some: "Sent non-empty 'Sec-WebSocket-Protocol' header but no
    // response was received". Proves the route did not invent a selection; a page must offer none to connect.
    const result = await run(page, `openFailureScenario('/echo', ['chat.v1', 'other'])`);
    assert.deepEqual(result, { opened: false, code: 1006, wasClean: false });
    assert.ok((consoleOf.get(page) ?? []).some((line) => line.includes('Sec-WebSocket-Protocol')),
      `Chromium failed the handshake for another reason:\n${(consoleOf.get(page) ?? []).join('\n')}`);
  });

  it('sees the server echo its close code 4001 and the close is clean', testOptions, async (t) => {
    if (!needPeer(t, chromiumMissing())) return;
    assert.ok(cli, 'switchyard serve did not start');
    const page = await openPage(t, cli.httpUrl);
    const close = await run(page, `closeScenario('/echo', 4001, 'bye from page')`) as { code: number; wasClean: boolean };
    assert.equal(close.code, 4001);
    assert.equal(close.wasClean, true);
  });

  it('broadcasts on /chat to two sockets in the page, sender included', testOptions, async (t) => {
    if (!needPeer(t, chromiumMissing())) return;
    assert.ok(cli, 'switchyard serve did not start');
    const page = await openPage(t, cli.httpUrl);
    const fromA = { type: 'text', text: 'from-a' };
    const fromB = { type: 'binary', hex: '6200ff' };
    assert.deepEqual(await run(page, `broadcastScenario('/chat')`), { a: [fromA, fromB], b: [fromA, fromB] });
  });

  it('selects the configured subprotocol "chat.v1" from the page\'s offer [chat.v1, other]', testOptions, async (t) => {
    if (!needPeer(t, chromiumMissing())) return;
    assert.ok(app, 'the embedded app did not start');
    const page = await openPage(t, app.httpUrl);
    const result = await run(page, `echoScenario('/echo', ['chat.v1', 'other'])`) as Record<string, unknown>;
    assert.equal(result['protocol'], 'chat.v1');
    assert.deepEqual(result['text'], { type: 'text', text: 'hello from chromium \u2713 \u{1F600}' });
    assert.deepEqual(result['binary'], { type: 'binary', hex: '0001027f80feff' });
    assert.deepEqual(result['large'], { sent: largeExpected, received: largeExpected });
    assert.deepEqual(await app.nextServerClose('/echo', stepMs), { code: 1000, reason: 'page done', wasClean: true });
  });

  it('delivers the server\'s close 4000 "done by server" to the page\'s close event', testOptions, async (t) => {
    if (!needPeer(t, chromiumMissing())) return;
    assert.ok(app, 'the embedded app did not start');
    const page = await openPage(t, app.httpUrl);
    const result = await run(page, `serverCloseScenario('/closer')`);
    assert.deepEqual(result, { close: { code: 4000, reason: 'done by server', wasClean: true }, messagesBeforeClose: 0 });
    const serverSide = await app.nextServerClose('/closer', stepMs);
    assert.equal(serverSide.code, 4000);
  });

  it('reports the page\'s close 4001 "bye from page" to the server\'s close handler', testOptions, async (t) => {
    if (!needPeer(t, chromiumMissing())) return;
    assert.ok(app, 'the embedded app did not start');
    const page = await openPage(t, app.httpUrl);
    const close = await run(page, `closeScenario('/chat', 4001, 'bye from page')`) as { code: number; wasClean: boolean };
    assert.equal(close.code, 4001);
    assert.deepEqual(await app.nextServerClose('/chat', stepMs), { code: 4001, reason: 'bye from page', wasClean: true });
  });
});
