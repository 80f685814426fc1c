#!/usr/bin/env node
// The switchyard command line: `serve` (files and WebSocket routes on one port) and `demo`. The only module
// that reads process.argv, prints, or exits; usage and config errors exit 2 with a message naming the flag.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { fileURLToPath } from 'node:url';
import { stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { createServer, type Switchyard } from '../server/server.js';
import type { ServerOptions } from '../server/options.js';

const USAGE = `Usage:
  switchyard serve [ROOT] [options]   serve files from ROOT and WebSocket routes on one port
  switchyard demo [--port N] [--host H]   the built-in demo (chat, echo, live readings)

Options for serve:
  --port N                 TCP port (default 8080; 0 picks a free one)
  --host H                 address to listen on (default 127.0.0.1)
  --echo PATH              WebSocket route that sends every message back unchanged (repeatable)
  --broadcast PATH         WebSocket route that sends every message to every connection on PATH (repeatable)
  --max-message-bytes N    largest message accepted, after reassembly (default 16777216)
  --max-frame-bytes N      largest single frame accepted (default 16777216)
  --ping-interval-ms N     keep-alive ping interval (default 30000; 0 = off)
  --idle-timeout-ms N      close after N ms without messages (default 0 = off)
  --handshake-timeout-ms N drop clients that do not finish their request (default 10000)
  --close-timeout-ms N     drop peers that do not answer our close (default 5000)
  -h, --help               show this help
`;

class UsageError extends Error {}

const serveOptions = {
  port: { type: 'string' },
  host: { type: 'string' },
  echo: { type: 'string', multiple: true },
  broadcast: { type: 'string', multiple: true },
  'max-message-bytes': { type: 'string' },
  'max-frame-bytes': { type: 'string' },
  'ping-interval-ms': { type: 'string' },
  'idle-timeout-ms': { type: 'string' },
  'handshake-timeout-ms': { type: 'string' },
  'close-timeout-ms': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

function integerFlag(flag: string, value: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new UsageError(`--${flag} must be a whole number from ${min} to ${max} (got "${value}")`);
  }
  return Number(value);
}

function routePath(flag: string, value: string): string {
  if (!value.startsWith('/')) throw new UsageError(`--${flag} takes a path starting with "/" (got "${value}")`);
  return value;
}

function parse(args: string[]): ReturnType<typeof parseArgs<{ options: typeof serveOptions; allowPositionals: true; strict: true; args: string[] }>> {
  try {
    return parseArgs({ args, options: serveOptions, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

interface ServeSetup {
  options: ServerOptions;
  port: number;
  host: string;
  echo: string[];
  broadcast: string[];
}

async function readServeSetup(args: string[]): Promise<ServeSetup | 'help'> {
  const { values, positionals } = parse(args);
  if (values.help) return 'help';
  if (positionals.length > 1) throw new UsageError(`serve takes one ROOT directory (got ${positionals.length}: ${positionals.join(' ')})`);
  const options: ServerOptions = {};
  const root = positionals[0];
  if (root !== undefined) {
    const info = await stat(root).catch(() => undefined);
    if (info === undefined) throw new UsageError(`ROOT "${root}" does not exist`);
    if (!info.isDirectory()) throw new UsageError(`ROOT "${root}" is not a directory`);
    options.root = root;
  }
  const numeric: Array<[keyof typeof serveOptions, keyof ServerOptions, number]> = [
    ['max-message-bytes', 'maxMessageBytes', 1], ['max-frame-bytes', 'maxFrameBytes', 1],
    ['ping-interval-ms', 'pingIntervalMs', 0], ['idle-timeout-ms', 'idleTimeoutMs', 0],
    ['handshake-timeout-ms', 'handshakeTimeoutMs', 1], ['close-timeout-ms', 'closeTimeoutMs', 1],
  ];
  for (const [flag, key, min] of numeric) {
    const value = integerFlag(flag, values[flag] as string | undefined, min);
    if (value !== undefined) (options as Record<string, unknown>)[key] = value;
  }
  const echo = (values.echo ?? []).map((path) => routePath('echo', path));
  const broadcast = (values.broadcast ?? []).map((path) => routePath('broadcast', path));
  const duplicate = [...echo, ...broadcast].find((path, index, all) => all.indexOf(path) !== index);
  if (duplicate !== undefined) throw new UsageError(`route ${duplicate} is given more than once`);
  return {
    options,
    port: integerFlag('port', values.port, 0, 65535) ?? 8080,
    host: values.host ?? '127.0.0.1',
    echo,
    broadcast,
  };
}

function buildServer(setup: ServeSetup): Switchyard {
  const app = createServer(setup.options);
  for (const path of setup.echo) {
    app.websocket(path, { message(ws, data, isBinary) { ws.send(data, isBinary); } });
  }
  for (const path of setup.broadcast) {
    app.websocket(path, {
      open(ws) { ws.subscribe(path); },
      message(_ws, data, isBinary) { app.publish(path, data, isBinary); },
    });
  }
  return app;
}

function formatUrl(address: AddressInfo): string {
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}

async function listenOrExplain(app: Switchyard, port: number, host: string): Promise<AddressInfo> {
  try {
    return await app.listen({ port, host });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new RuntimeFailure(`port ${port} on ${host} is already in use`);
    if (code === 'EACCES') throw new RuntimeFailure(`no permission to listen on port ${port} on ${host}`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new RuntimeFailure(`cannot listen on host "${host}": no such local address`);
    throw new RuntimeFailure(`cannot listen on ${host}:${port}: ${(error as Error).message}`);
  }
}

class RuntimeFailure extends Error {}

function stopOnSignals(app: Switchyard): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      process.stderr.write(`switchyard: ${signal} again, exiting now\n`);
      process.exit(1);
    }
    stopping = true;
    app.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

async function serve(args: string[]): Promise<void> {
  const setup = await readServeSetup(args);
  if (setup === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  const app = buildServer(setup);
  const address = await listenOrExplain(app, setup.port, setup.host);
  stopOnSignals(app);
  process.stdout.write(`switchyard listening on ${formatUrl(address)}\n`);
}

async function demo(args: string[]): Promise<void> {
  const { values, positionals } = parse(args);
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (positionals.length > 0) throw new UsageError(`demo takes no arguments (got ${positionals.join(' ')})`);
  const root = fileURLToPath(new URL('../../../demo/public', import.meta.url));
  const app = buildServer({ options: { root }, port: 8080, host: '127.0.0.1', echo: ['/echo'], broadcast: ['/chat'] });
  // Simulated sensor readings, published once a second to every subscriber of /sensors.
  app.websocket('/sensors', { open(ws) { ws.subscribe('readings'); } });
  let reading = 20;
  setInterval(() => {
    reading += (Math.random() - 0.5) * 0.4;
    app.publish('readings', JSON.stringify({ sensor: 'temperature', celsius: Number(reading.toFixed(2)), at: new Date().toISOString() }));
  }, 1000).unref();
  const address = await listenOrExplain(app, integerFlag('port', values.port, 0, 65535) ?? 8080, values.host ?? '127.0.0.1');
  stopOnSignals(app);
  process.stdout.write(`switchyard listening on ${formatUrl(address)}\nswitchyard demo: open ${formatUrl(address).replace('127.0.0.1', 'localhost')}/ in a browser\n`);
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve': return serve(rest);
    case 'demo': return demo(rest);
    case undefined: case '-h': case '--help': case 'help':
      process.stdout.write(USAGE);
      return;
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof UsageError) {
    process.stderr.write(`switchyard: ${error.message}\nRun "switchyard --help" for usage.\n`);
    process.exit(2);
  }
  if (error instanceof RangeError || error instanceof TypeError) {
    process.stderr.write(`switchyard: ${error.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`switchyard: ${error instanceof RuntimeFailure ? error.message : (error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
