// End to end: the demo `npm start` serves, in headless Chromium (Debian chromium, driven by playwright-core).
// Starts `switchyard demo --port 0`, opens the page twice and checks what a person would see: both pages
// show the same live readings (same timestamps, same values), the viewer count is 2 on both, a chat message
// typed in one appears in the other, the echo console round-trips text and binary, closing a page drops the
// count to 1, and after the server is stopped and started again on the same port the remaining page
// reconnects by itself and the readings resume. Leaves a screenshot at dist/test-output/demo.png.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { cleanupStack } from '../_support/cleanup.js';
import { chromiumMissing, chromiumPath, needPeer } from '../_support/peers.js';
import { startDemo, type DemoProcess } from './_demo-process.js';

/** The longest any single wait may take; readings come once a second, reconnect backoff starts at 0.5 s. */
const stepMs = 15_000;
/** dist/test-output/demo.png (dist/ is ignored by git), seen from dist/test/demo/. */
const screenshotPath = fileURLToPath(new URL('../../test-output/demo.png', import.meta.url));

interface Row { at: string; value: string }

/** The "Latest readings" table, newest first. */
function rowsOf(page: Page): Promise<Row[]> {
  return page.$$eval('#readings-table tbody tr', (rows) =>
    rows.map((row) => ({ at: row.getAttribute('data-at') ?? '', value: row.getAttribute('data-value') ?? '' })));
}

const textOf = (page: Page, selector: string): Promise<string> =>
  page.$eval(selector, (element) => element.textContent ?? '').catch(() => '(missing)');

/** Polls `check` until it returns a value other than undefined; fails after `timeoutMs` with `describe()`. */
async function eventually<T>(what: string, check: () => Promise<T | undefined>, describe: () => Promise<string>, timeoutMs = stepMs): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await check();
    if (result !== undefined) return result;
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}; ${await describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Waits until `selector`'s text is exactly `expected`. */
async function waitForText(page: Page, name: string, selector: string, expected: string): Promise<void> {
  await eventually(`${name}: ${selector} to read "${expected}"`,
    async () => ((await textOf(page, selector)) === expected ? true : undefined),
    async () => `it reads "${await textOf(page, selector)}"`);
}

/** Waits until the pill `selector` says `state` ('open', 'closed', 'connecting'), or one of several. */
async function waitForState(page: Page, name: string, selector: string, states: readonly string[]): Promise<void> {
  const stateOf = (): Promise<string> => page.$eval(selector, (element) => `${element.getAttribute('data-state')} "${element.textContent}" (${element.getAttribute('title')})`);
  await eventually(`${name}: ${selector} to be ${states.join(' or ')}`,
    async () => (states.includes((await stateOf()).split(' ')[0]!) ? true : undefined),
    async () => `it is ${await stateOf()}`);
}

/** Waits for a log entry in `list` whose text contains every one of `parts`; returns its text. */
async function waitForLogEntry(page: Page, name: string, list: string, parts: readonly string[], entry = 'li'): Promise<string> {
  const entries = (): Promise<string[]> => page.$$eval(`${list} ${entry}`, (items) => items.map((item) => item.textContent ?? ''));
  return eventually(`${name}: an entry in ${list} with ${JSON.stringify(parts)}`,
    async () => (await entries()).find((text) => parts.every((part) => text.includes(part))),
    async () => `the log holds ${JSON.stringify(await entries())}`);
}

/** Waits until the page shows a reading newer than `after` (ISO); returns the newest row. */
async function waitForReadingAfter(page: Page, name: string, after: string): Promise<Row> {
  return eventually(`${name}: a reading newer than ${after}`,
    async () => { const [newest] = await rowsOf(page); return newest !== undefined && newest.at > after ? newest : undefined; },
    async () => `its newest rows are ${JSON.stringify((await rowsOf(page)).slice(0, 3))}`);
}

it('the demo dashboard in headless Chromium: shared live readings, viewer count, chat, echo, reconnect after a restart', { timeout: 120_000 }, async (t) => {
  if (!needPeer(t, chromiumMissing())) return;
  const defer = cleanupStack(t);

  // Only this test's own server process is ever signalled (DemoProcess.stop kills its child's PID).
  let server: DemoProcess = await startDemo(0);
  defer(() => server.stop('SIGKILL'));
  const url = `${server.httpUrl}/`;
  t.diagnostic(`demo listening on ${url}`);

  const browser: Browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    timeout: 30_000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--no-first-run', '--disable-quic', '--disable-sync'],
  });
  defer(() => browser.close());
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 }, colorScheme: 'light' });
  context.setDefaultTimeout(stepMs);

  const pageErrors: string[] = [];
  async function openPage(name: string): Promise<Page> {
    const page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(`${name}: ${error.message}`));
    const response = await page.goto(url, { timeout: stepMs });
    assert.equal(response?.status(), 200, `${name}: GET ${url}`);
    return page;
  }
  const a = await openPage('page A');
  const b = await openPage('page B');

  // ---- both pages see the same live readings ----
  for (const [page, name] of [[a, 'page A'], [b, 'page B']] as const) {
    await waitForState(page, name, '#sensors-status', ['open']);
    await eventually(`${name}: a first reading`, async () => ((await rowsOf(page)).length > 0 ? true : undefined), async () => 'the table is empty');
  }
  // Readings published after both pages were connected, so the history sent on connect is not all we compare.
  const [latestBefore] = await rowsOf(b);
  assert.ok(latestBefore !== undefined);
  await waitForReadingAfter(a, 'page A', latestBefore.at);
  await waitForReadingAfter(b, 'page B', latestBefore.at);
  // The same instant on both: poll until both newest rows agree (a reading can land between two reads).
  const [rowsA, rowsB] = await eventually('both pages to show the same newest reading',
    async () => {
      const [rowsA, rowsB] = await Promise.all([rowsOf(a), rowsOf(b)]);
      return rowsA[0]?.at === rowsB[0]?.at ? [rowsA, rowsB] as const : undefined;
    },
    async () => `A ${JSON.stringify((await rowsOf(a)).slice(0, 2))}, B ${JSON.stringify((await rowsOf(b)).slice(0, 2))}`);
  assert.ok(rowsA.length >= 3, `page A shows ${rowsA.length} readings`);
  assert.deepEqual(rowsB, rowsA, 'both pages show the same readings: the same timestamps with the same values');
  assert.ok(rowsA.every((row) => /^\d+\.\d\d$/.test(row.value)), `readings are numbers with 2 decimals: ${JSON.stringify(rowsA)}`);
  assert.equal(await textOf(a, '#sensors-value'), rowsA[0]!.value, 'the big figure is the newest reading');
  assert.equal(await a.locator('#sensors-chart path.line').count() > 0, true, 'the chart draws a line');

  // ---- the viewer count ----
  await waitForText(a, 'page A', '#viewers-count', '2');
  await waitForText(b, 'page B', '#viewers-count', '2');

  // ---- chat: typed in one page, shown in the other (and back to the sender) ----
  const fromA = `hello from A ${Math.random().toString(36).slice(2, 8)}`;
  await a.fill('#chat-text', fromA);
  await a.click('#chat-form button[type="submit"]');
  await waitForLogEntry(b, 'page B', '#chat-log', [fromA]);
  await waitForLogEntry(a, 'page A', '#chat-log', [fromA], 'li.mine');
  const fromB = `and hi from B ${Math.random().toString(36).slice(2, 8)}`;
  await b.fill('#chat-text', fromB);
  await b.click('#chat-form button[type="submit"]');
  await waitForLogEntry(a, 'page A', '#chat-log', [fromB]);

  // ---- echo: text and binary come back unchanged ----
  const echoText = 'ping ✓ 😀 from the test';
  await a.fill('#echo-text', echoText);
  await a.click('#echo-form button[type="submit"]');
  await waitForLogEntry(a, 'page A', '#echo-log', ['← text', echoText, '✓ same'], 'li.in');
  await a.click('#echo-binary');
  const binaryBack = await waitForLogEntry(a, 'page A', '#echo-log', ['← binary 16 B', '✓ same'], 'li.in');
  const sentHex = await a.$$eval('#echo-log li.out', (items) => items.map((item) => item.querySelector('.mono')?.textContent ?? '').filter((hex) => hex !== ''));
  assert.equal(sentHex.length, 1, 'one binary message was sent');
  assert.ok(binaryBack.includes(sentHex[0]!), `the echoed bytes are the sent ones: sent ${sentHex[0]}, got "${binaryBack}"`);

  // ---- the picture, taken while everything is on screen ----
  await a.mouse.move(0, 0);
  await a.evaluate('window.scrollTo(0, 0)');
  await mkdir(dirname(screenshotPath), { recursive: true });
  await a.screenshot({ path: screenshotPath, fullPage: true });
  t.diagnostic(`screenshot: ${screenshotPath}`);

  // ---- closing a page drops the count on the other ----
  await b.close();
  await waitForText(a, 'page A', '#viewers-count', '1');

  // ---- the server restarts on the same port; the page comes back by itself ----
  const port = server.port;
  const exit = await server.stop('SIGTERM');
  assert.deepEqual(exit, { code: 0, signal: null }, `the demo stops cleanly on SIGTERM; it wrote:\n${server.output()}`);
  await waitForState(a, 'page A', '#sensors-status', ['closed', 'connecting']);
  await waitForText(a, 'page A', '#viewers-count', '–');

  server = await startDemo(port);
  assert.equal(server.port, port, 'restarted on the same port');
  await waitForState(a, 'page A', '#sensors-status', ['open']);
  // What the new server sent on connect (its history) is older than this; live readings come after it.
  const reconnectedAt = new Date().toISOString();
  await waitForText(a, 'page A', '#viewers-count', '1');
  const firstLive = await waitForReadingAfter(a, 'page A after the restart', reconnectedAt);
  await waitForReadingAfter(a, 'page A after the restart', firstLive.at);
  await waitForState(a, 'page A', '#chat-status', ['open']);
  await waitForState(a, 'page A', '#echo-status', ['open']);
  await a.fill('#echo-text', 'back again');
  await a.click('#echo-form button[type="submit"]');
  await waitForLogEntry(a, 'page A', '#echo-log', ['← text', 'back again', '✓ same'], 'li.in');

  assert.deepEqual(pageErrors, [], 'no script errors on the page');
  // The demo logs as serve does: the listening lines, then the access log (requests, WebSocket opens and closes).
  assert.match(server.output(), /^switchyard listening on http:\/\/127\.0\.0\.1:\d+\nswitchyard demo: open http:\/\/localhost:\d+\/ in a browser\n/);
  assert.match(server.output(), /ws-open 127\.0\.0\.1 .*"\/sensors" route=\/sensors/);
});
