// The built-in demo that `switchyard demo` (and `npm start`) serves: a sensor dashboard. A simulated device
// publishes one temperature reading a second to every open page, each page sees how many viewers are watching,
// and the same port carries a chat room and an echo console. Creates the server; main.ts listens and prints.
//
// What goes over /sensors (JSON text messages, all with a `type`):
//   {"type":"history","intervalMs":1000,"readings":[reading...]}   to a new connection only, oldest first
//   {"type":"reading","seq":42,"sensor":"temperature","unit":"°C","celsius":21.53,"at":"2026-...Z"}   topic readings
//   {"type":"viewers","count":2}                                    topic viewers, whenever a viewer comes or goes
import { fileURLToPath } from 'node:url';
import { addConfiguredRoutes } from '../config/build.js';
import { createServer, type Switchyard } from '../server/server.js';
import type { AccessLogOptions } from '../server/options.js';

/** The demo page's files (demo/public at the package root; this module runs from dist/src/cli/). */
export const demoRoot = fileURLToPath(new URL('../../../demo/public', import.meta.url));

export const READINGS_TOPIC = 'readings';
export const VIEWERS_TOPIC = 'viewers';

export interface DemoOptions {
  /** Directory of the page. Default: the package's demo/public. */
  root?: string;
  /** How often the simulated sensor publishes. Default 1000 ms. */
  readingIntervalMs?: number;
  /** Readings kept and sent to each new viewer, so its chart starts full. Default 120 (two minutes at 1/s). */
  historyLength?: number;
  /** The access log, as `serve` writes it; none when absent. */
  accessLog?: AccessLogOptions;
  /** The sensor's randomness; tests pass a seeded one. Default Math.random. */
  random?: () => number;
}

export interface Reading {
  readonly type: 'reading';
  /** Counts up from 1 for each server start. */
  readonly seq: number;
  readonly sensor: 'temperature';
  readonly unit: '°C';
  readonly celsius: number;
  /** When it was published (ISO 8601, UTC). */
  readonly at: string;
}

/**
 * A room thermometer: a slow swing around 21.5 °C that follows the clock (so a restarted server carries on
 * where the last one was) plus sensor noise that wanders rather than jumps. Takes the time of the reading in
 * ms; values have two decimals, as a real sensor reports them.
 */
export function simulatedThermometer(random: () => number = Math.random): (timeMs: number) => number {
  let noise = 0;
  return (timeMs) => {
    const seconds = timeMs / 1000;
    const swing = 0.9 * Math.sin((2 * Math.PI * seconds) / 300) + 0.25 * Math.sin((2 * Math.PI * seconds) / 47);
    noise = noise * 0.8 + (random() - 0.5) * 0.18;
    return Math.round((21.5 + swing + noise) * 100) / 100;
  };
}

/**
 * Creates the demo server (not listening): static files from `root`, and the WebSocket routes
 * - `/sensors`: subscribes each connection to the readings and the viewer count;
 * - `/chat`: every message to every connection on it, sender included;
 * - `/echo`: every message back unchanged, text as text and binary as binary.
 * The sensor publishes while the server listens and stops when it closes.
 */
export function createDemoServer(options: DemoOptions = {}): Switchyard {
  const intervalMs = options.readingIntervalMs ?? 1000;
  const historyLength = options.historyLength ?? 120;
  const app = createServer({
    root: options.root ?? demoRoot,
    // Browsers offer permessage-deflate on every WebSocket; the demo accepts it (off by default in serve).
    perMessageDeflate: true,
    deflateThresholdBytes: 256,
    ...(options.accessLog !== undefined && { accessLog: options.accessLog }),
  });

  // The page never sends large messages; a public demo need not accept the 16 MiB default.
  const pageRoute = { protocols: [], maxConnections: 0, maxMessageBytes: 64 * 1024 };
  addConfiguredRoutes(app, [
    { kind: 'echo', path: '/echo', ...pageRoute },
    { kind: 'broadcast', path: '/chat', ...pageRoute },
  ]);

  const history: Reading[] = [];
  const publishViewers = (): void => {
    app.publish(VIEWERS_TOPIC, JSON.stringify({ type: 'viewers', count: app.subscriberCount(VIEWERS_TOPIC) }));
  };
  app.websocket('/sensors', {
    // Viewers only listen. One that cannot keep up gets the newest reading and count, not a growing backlog.
    maxMessageBytes: 4096,
    maxBackpressureBytes: 256 * 1024,
    slowConsumerPolicy: 'keep-latest',
    open(ws) {
      // History first, then the live stream: nothing can be published between these lines.
      ws.send(JSON.stringify({ type: 'history', intervalMs, readings: history }));
      ws.subscribe(READINGS_TOPIC);
      ws.subscribe(VIEWERS_TOPIC);
      publishViewers();
    },
    // Called once the connection is gone and unsubscribed, so the count no longer includes it.
    close() { publishViewers(); },
  });

  const sensor = simulatedThermometer(options.random);
  let seq = 0;
  let timer: NodeJS.Timeout | undefined;
  const record = (timeMs: number): Reading => {
    seq += 1;
    const reading: Reading = { type: 'reading', seq, sensor: 'temperature', unit: '°C', celsius: sensor(timeMs), at: new Date(timeMs).toISOString() };
    history.push(reading);
    if (history.length > historyLength) history.shift();
    return reading;
  };
  // The device keeps its recent readings and hands them over when the server starts, so the first page
  // view already has a full chart.
  const startedAt = Date.now();
  for (let i = historyLength - 1; i >= 1; i--) record(startedAt - i * intervalMs);
  const publishReading = (): void => {
    app.publish(READINGS_TOPIC, JSON.stringify(record(Date.now())));
  };
  app.httpServer.on('listening', () => {
    clearInterval(timer);
    publishReading();
    timer = setInterval(publishReading, intervalMs);
    // The readings alone never keep the process alive.
    timer.unref();
  });
  app.httpServer.on('close', () => clearInterval(timer));
  return app;
}
