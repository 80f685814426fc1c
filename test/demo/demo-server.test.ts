// The demo server without a browser (src/cli/demo.ts): what /sensors sends (history, then live readings and
// the viewer count), that every viewer gets the same readings, that the count follows opens and closes, that
// /chat and /echo behave as the page expects, and that the simulated sensor stays believable.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { connect } from '../../src/client/connect.js';
import { createDemoServer, simulatedThermometer } from '../../src/cli/demo.js';
import type { Switchyard } from '../../src/server/server.js';
import type { WebSocket } from '../../src/transport/websocket.js';
import { cleanupStack } from '../_support/cleanup.js';

const waitMs = 5_000;

/** Messages a client received, taken one at a time in order, each wait bounded. */
class Inbox {
  readonly #items: Array<{ text: string; isBinary: boolean; data: Buffer }> = [];
  readonly #waiters: Array<() => void> = [];

  push(data: Buffer, isBinary: boolean): void {
    this.#items.push({ text: isBinary ? '' : data.toString('utf8'), isBinary, data: Buffer.from(data) });
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /** The next message, or a failure naming `what` after waitMs. */
  async next(what: string): Promise<{ text: string; isBinary: boolean; data: Buffer }> {
    const deadline = Date.now() + waitMs;
    while (this.#items.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) assert.fail(`timed out after ${waitMs} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => { clearTimeout(timer); resolve(); });
      });
    }
    return this.#items.shift()!;
  }

  /** The next JSON message of `type`, skipping others (readings keep coming while we wait for a count). */
  async nextOfType(type: string, what: string): Promise<Record<string, unknown>> {
    for (;;) {
      const message = JSON.parse((await this.next(what)).text) as Record<string, unknown>;
      if (message['type'] === type) return message;
    }
  }
}

async function startDemoServer(defer: (cleanup: () => unknown) => void): Promise<{ app: Switchyard; wsUrl: string; httpUrl: string }> {
  const app = createDemoServer({ readingIntervalMs: 50, historyLength: 5 });
  defer(() => app.close());
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, wsUrl: `ws://127.0.0.1:${address.port}`, httpUrl: `http://127.0.0.1:${address.port}` };
}

async function open(defer: (cleanup: () => unknown) => void, url: string): Promise<{ ws: WebSocket<undefined>; inbox: Inbox }> {
  const inbox = new Inbox();
  const ws = await connect(url, { handlers: { message(_ws, data, isBinary) { inbox.push(data, isBinary); } } });
  defer(() => ws.terminate());
  return { ws, inbox };
}

describe('the demo server', () => {
  it('sends a new viewer the recent history, then its viewer count and live readings', async (t) => {
    const defer = cleanupStack(t);
    const { wsUrl } = await startDemoServer(defer);
    const { inbox } = await open(defer, `${wsUrl}/sensors`);

    const history = JSON.parse((await inbox.next('the history')).text) as { type: string; intervalMs: number; readings: Array<Record<string, unknown>> };
    assert.equal(history.type, 'history');
    assert.equal(history.intervalMs, 50);
    assert.equal(history.readings.length, 5, 'a full history from the start (the device hands over its buffer)');
    const times = history.readings.map((reading) => Date.parse(String(reading['at'])));
    assert.ok(times.every((time, i) => i === 0 || time > times[i - 1]!), `history is oldest first: ${JSON.stringify(history.readings)}`);
    for (const reading of history.readings) {
      assert.equal(reading['type'], 'reading');
      assert.equal(reading['sensor'], 'temperature');
      assert.equal(reading['unit'], '°C');
      assert.equal(typeof reading['celsius'], 'number');
      assert.equal(Math.round((reading['celsius'] as number) * 100) / 100, reading['celsius'], 'two decimals');
    }

    assert.deepEqual(await inbox.nextOfType('viewers', 'the viewer count'), { type: 'viewers', count: 1 });
    const live = await inbox.nextOfType('reading', 'a live reading');
    assert.ok(Date.parse(String(live['at'])) > times[times.length - 1]!, 'live readings are newer than the history');
    const next = await inbox.nextOfType('reading', 'another live reading');
    assert.equal(next['seq'], (live['seq'] as number) + 1, 'readings are numbered without gaps');
  });

  it('gives every viewer the same readings and a count that follows opens and closes', async (t) => {
    const defer = cleanupStack(t);
    const { wsUrl } = await startDemoServer(defer);
    const first = await open(defer, `${wsUrl}/sensors`);
    assert.deepEqual(await first.inbox.nextOfType('viewers', 'count 1 on the first'), { type: 'viewers', count: 1 });
    const second = await open(defer, `${wsUrl}/sensors`);
    assert.deepEqual(await first.inbox.nextOfType('viewers', 'count 2 on the first'), { type: 'viewers', count: 2 });
    assert.deepEqual(await second.inbox.nextOfType('viewers', 'count 2 on the second'), { type: 'viewers', count: 2 });

    // From here on both are subscribed: the same readings, byte for byte, in the same order.
    const fromFirst = [await first.inbox.nextOfType('reading', 'a reading on the first'), await first.inbox.nextOfType('reading', 'a second reading on the first')];
    let fromSecond = await second.inbox.nextOfType('reading', 'a reading on the second');
    while ((fromSecond['seq'] as number) < (fromFirst[0]!['seq'] as number)) fromSecond = await second.inbox.nextOfType('reading', 'a reading on the second');
    assert.deepEqual(fromSecond, fromFirst[0]);
    assert.deepEqual(await second.inbox.nextOfType('reading', 'the next reading on the second'), fromFirst[1]);

    second.ws.close(1000, 'bye');
    assert.deepEqual(await first.inbox.nextOfType('viewers', 'count 1 after the second left'), { type: 'viewers', count: 1 });
    const third = await open(defer, `${wsUrl}/sensors`);
    assert.deepEqual(await first.inbox.nextOfType('viewers', 'count 2 after a third came'), { type: 'viewers', count: 2 });
    third.ws.terminate();
    assert.deepEqual(await first.inbox.nextOfType('viewers', 'count 1 after the third dropped without a close frame'), { type: 'viewers', count: 1 });
  });

  it('broadcasts /chat to every connection, sender included, and echoes /echo unchanged', async (t) => {
    const defer = cleanupStack(t);
    const { wsUrl } = await startDemoServer(defer);
    const alice = await open(defer, `${wsUrl}/chat`);
    const bob = await open(defer, `${wsUrl}/chat`);
    const message = JSON.stringify({ from: 'tab1', name: 'alice', text: 'hello ✓' });
    alice.ws.send(message);
    assert.equal((await bob.inbox.next('the chat message on bob')).text, message);
    assert.equal((await alice.inbox.next('the chat message back on alice')).text, message);

    const echo = await open(defer, `${wsUrl}/echo`);
    echo.ws.send('text ✓');
    assert.deepEqual(await echo.inbox.next('the echoed text'), { text: 'text ✓', isBinary: false, data: Buffer.from('text ✓') });
    const bytes = Buffer.from([0, 1, 2, 127, 128, 254, 255]);
    echo.ws.send(bytes);
    assert.deepEqual(await echo.inbox.next('the echoed bytes'), { text: '', isBinary: true, data: bytes });
  });

  it('serves the dashboard page', async (t) => {
    const defer = cleanupStack(t);
    const { httpUrl } = await startDemoServer(defer);
    for (const [path, type, marker] of [['/', 'text/html', 'id="sensors-chart"'], ['/app.js', 'javascript', "'/sensors'"], ['/style.css', 'text/css', '.chart']] as const) {
      const { status, contentType, body } = await new Promise<{ status: number | undefined; contentType: string; body: string }>((resolve, reject) => {
        get(`${httpUrl}${path}`, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk; }).on('end', () => resolve({ status: res.statusCode, contentType: String(res.headers['content-type']), body }));
        }).on('error', reject).setTimeout(waitMs, () => reject(new Error(`GET ${path} timed out`)));
      });
      assert.equal(status, 200, path);
      assert.ok(contentType.includes(type), `${path}: ${contentType}`);
      assert.ok(body.includes(marker), `${path} contains ${marker}`);
    }
  });
});

describe('the simulated thermometer', () => {
  it('wanders around 21.5 °C in small steps, with two decimals', () => {
    let seed = 42;
    const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const sensor = simulatedThermometer(random);
    const start = Date.UTC(2026, 0, 1);
    let previous: number | undefined;
    for (let second = 0; second < 24 * 3600; second++) {
      const value = sensor(start + second * 1000);
      assert.ok(value > 19.5 && value < 23.5, `reading ${value} at second ${second}`);
      assert.equal(Math.round(value * 100) / 100, value);
      if (previous !== undefined) assert.ok(Math.abs(value - previous) < 0.4, `a jump from ${previous} to ${value} at second ${second}`);
      previous = value;
    }
  });
});
