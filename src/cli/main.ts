#!/usr/bin/env node
// The switchyard command line: `serve` (files and WebSocket routes on one port), `exec` (one program on every
// path, websocketd's way), `demo` and `connect` (the client, in connect-command.ts). The only module that reads process.argv, prints, or exits; parsing and
// checking live in src/config/ (pure, unit-tested).
// Usage and config errors exit 2 with one line naming the flag or config field.
import { Server as TlsServer } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { ConfigError } from '../errors.js';
import type { Switchyard } from '../server/server.js';
import { buildServer, releaseBridges, type BuildHooks } from '../config/build.js';
import { parseDemoArgs, parseExecArgs, parseServeArgs } from '../config/flags.js';
import { renderUsage } from '../config/help.js';
import { loadResources, loadServeConfig, type LoadedServeConfig } from '../config/load.js';
import { formatConfig, mergeConfig } from '../config/merge.js';
import { allProcessesExited } from '../bridges/process-bridge.js';
import { createDemoServer } from './demo.js';
import { runConnect } from './connect-command.js';

class UsageError extends Error {}
class RuntimeFailure extends Error {}

const hooks: BuildHooks = {
  writeAccessLogLine(line) { process.stdout.write(`${line}\n`); },
  // Bridge lines (programs' stderr, failed CGI runs, refused targets) go to stderr: stdout keeps the listening
  // line and the access log.
  log(line) { process.stderr.write(`switchyard: ${line}\n`); },
};

function formatUrl(address: AddressInfo, secure: boolean): string {
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `${secure ? 'https' : 'http'}://${host}:${address.port}`;
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

/** Resolves after `ms`, or when `promise` settles, whichever is first; true if it settled. */
function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), ms); });
  return Promise.race([promise.then(() => true, () => true), timeout]).finally(() => clearTimeout(timer));
}

/**
 * On SIGINT/SIGTERM: close the server (WebSockets get 1001, bridged programs stdin EOF, then their signals),
 * then wait for the programs to exit, for at most `shutdownTimeoutMs` more; exit 0. Any left are killed by
 * the process bridge's exit hook.
 */
function stopOnSignals(app: Switchyard, shutdownTimeoutMs: number): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      process.stderr.write(`switchyard: ${signal} again, exiting now\n`);
      process.exit(1);
    }
    stopping = true;
    app.close().then(async () => {
      releaseBridges(app);
      if (!await within(allProcessesExited(), shutdownTimeoutMs)) {
        process.stderr.write(`switchyard: bridged programs still running after ${shutdownTimeoutMs} ms; killing them\n`);
      }
      process.exit(0);
    }, () => process.exit(1));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

/** The config file named in the current `serve` invocation, to say where a config-path error is. */
let configFileInUse: string | undefined;

async function serve(args: string[]): Promise<void> {
  const invocation = parseServeArgs(args, process.cwd());
  if (invocation.help) {
    process.stdout.write(renderUsage());
    return;
  }
  configFileInUse = invocation.configFile;
  const loaded = await loadServeConfig(invocation);
  const app = buildServer(loaded, loaded.resources, hooks);
  if (invocation.printConfig) {
    // Built but not started, so that everything the server itself checks is checked too.
    await app.close();
    releaseBridges(app);
    process.stdout.write(formatConfig(loaded.config));
    return;
  }
  await start(app, loaded);
}

async function start(app: Switchyard, loaded: LoadedServeConfig): Promise<void> {
  const secure = loaded.config.tls !== undefined;
  // Never print https:// for a server that would answer in plain text.
  if (secure && !(app.httpServer instanceof TlsServer)) throw new RuntimeFailure('this server build does not support the tls option yet');
  const address = await listenOrExplain(app, loaded.config.port, loaded.config.host);
  stopOnSignals(app, loaded.config.shutdownTimeoutMs);
  process.stdout.write(`switchyard listening on ${formatUrl(address, secure)}\n`);
}

/** `switchyard exec [options] -- PROGRAM ARGS...`: one exec route on every path (websocketd's command line). */
async function exec(args: string[]): Promise<void> {
  const invocation = parseExecArgs(args, process.cwd());
  if (invocation.help) {
    process.stdout.write(renderUsage());
    return;
  }
  const effective = mergeConfig(undefined, invocation.flags);
  const loaded: LoadedServeConfig = { ...effective, resources: await loadResources(effective) };
  await start(buildServer(loaded, loaded.resources, hooks), loaded);
}

async function demo(args: string[]): Promise<void> {
  const invocation = parseDemoArgs(args);
  if (invocation.help) {
    process.stdout.write(renderUsage());
    return;
  }
  // The dashboard lives in demo.ts; it logs as `serve` does by default (text access log on stdout).
  const app = createDemoServer({ accessLog: { format: 'text', write: (line) => hooks.writeAccessLogLine(line) } });
  const address = await listenOrExplain(app, invocation.port, invocation.host);
  stopOnSignals(app, 10_000);
  const url = formatUrl(address, false);
  process.stdout.write(`switchyard listening on ${url}\nswitchyard demo: open ${url.replace('127.0.0.1', 'localhost')}/ in a browser\n`);
}

/** Where a usage error points: the general help, or a subcommand's own. */
let helpCommand = 'switchyard --help';

/** Exits once stdout and stderr have handed over what was written (connect's output may still be queued on a pipe). */
async function exitWhenFlushed(code: number): Promise<never> {
  for (const stream of [process.stdout, process.stderr]) {
    if (stream.writableLength > 0 && !stream.destroyed) await new Promise<void>((resolve) => stream.write('', () => resolve()));
  }
  process.exit(code);
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve': return serve(rest);
    case 'exec': return exec(rest);
    case 'demo': return demo(rest);
    case 'connect':
      helpCommand = 'switchyard connect --help';
      return exitWhenFlushed(await runConnect(rest));
    case undefined: case '-h': case '--help': case 'help':
      process.stdout.write(renderUsage());
      return;
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

/** A flag or argument error (the pointer to --help helps); otherwise the field is a path in the config file. */
function isCommandLineField(field: string): boolean {
  return field.startsWith('-') || field === 'ROOT' || field === 'URL' || field === 'demo' || field === 'exec' || field === 'PROGRAM';
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof ConfigError) {
    if (isCommandLineField(error.field) || configFileInUse === undefined) {
      process.stderr.write(`switchyard: ${error.message}\nRun "${helpCommand}" for usage.\n`);
    } else {
      process.stderr.write(`switchyard: ${configFileInUse}: ${error.message}\n`);
    }
    process.exit(2);
  }
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
