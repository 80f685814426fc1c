// Helpers the CLI tests share: run the CLI to completion, start a server through it, open raw WebSockets,
// plain and TLS HTTP GETs, and the assertions for a usage or config error (exit 2, one line, no stack trace).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { TestContext } from 'node:test';
import { cliPath, startCliServer, type RunningServer } from '../_support/cli-server.js';
import { openRawClient, type HandshakeOptions, type RawClient } from '../_support/raw-client.js';

export const HOST = '127.0.0.1';

export type Defer = (cleanup: () => unknown) => void;

export interface CliResult { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/**
 * How long past its deadline a child's end still counts. A deadline timer runs in the event loop's timers
 * phase, before the poll phase that would read the child's last output and its exit: when this process itself
 * ran late (a loaded machine), a child that finished in time would otherwise be reported as hung, with the
 * output read so far cut off mid-stream. One more turn of the loop tells the two apart.
 */
export const EXIT_GRACE_MS = 1000;

export interface ChildEnd { code: number | null; signal: NodeJS.Signals | null }

/** The child's 'close' (exited, and its stdout and stderr ended) as a promise: call it right after spawn. */
export function whenClosed(child: ChildProcess): Promise<ChildEnd> {
  return new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
}

/**
 * Resolves with `closed` (from whenClosed) once the child has closed, or undefined if it has not within
 * `timeoutMs` (plus EXIT_GRACE_MS, given only after the deadline, to I/O that was already waiting).
 */
export async function childClosed(closed: Promise<ChildEnd>, timeoutMs: number): Promise<ChildEnd | undefined> {
  const within = async (ms: number): Promise<ChildEnd | undefined> => {
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([closed, new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), ms); })]);
    clearTimeout(timer);
    return result;
  };
  return (await within(timeoutMs)) ?? within(EXIT_GRACE_MS);
}

/** What a child that did not exit was doing, for the failure message: its state and kernel wait channel (Linux). */
export function describeStuckProcess(child: ChildProcess): string {
  if (child.exitCode !== null || child.signalCode !== null) return `it had exited (${child.exitCode ?? child.signalCode}) but its output had not ended`;
  try {
    const state = /^State:\s*(.*)$/m.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? '?';
    const wchan = readFileSync(`/proc/${child.pid}/wchan`, 'utf8').trim();
    return `still running: state ${state}${wchan === '' || wchan === '0' ? '' : `, waiting in ${wchan}`}`;
  } catch {
    return 'still running';
  }
}

/** Runs the CLI to completion (killed after `timeoutMs`, which fails the test). */
export async function runCli(t: TestContext, args: readonly string[], options: { timeoutMs?: number; cwd?: string } = {}): Promise<CliResult> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const child = spawn(process.execPath, [cliPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: options.cwd ?? process.cwd() });
  t.after(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk; });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
  const result = await childClosed(whenClosed(child), timeoutMs);
  if (result === undefined) {
    const state = describeStuckProcess(child);
    child.kill('SIGKILL');
    assert.fail(`switchyard ${args.join(' ')} did not exit within ${timeoutMs} ms (${state}); stdout ${JSON.stringify(stdout)}, stderr ${JSON.stringify(stderr)}`);
  }
  return { ...result, stdout, stderr };
}

export async function startServer(defer: Defer, args: readonly string[], options: { cwd?: string } = {}): Promise<RunningServer> {
  const server = await startCliServer(args, options);
  defer(() => server.stop());
  return server;
}

export async function rawWebSocket(defer: Defer, server: RunningServer, urlPath: string, options: HandshakeOptions = {}): Promise<RawClient> {
  const client = await openRawClient(server.port, server.host, { path: urlPath, ...options });
  defer(() => client.destroy());
  assert.equal(client.response.statusCode, 101, client.response.raw);
  return client;
}

/** Asserts a usage/config failure: exit 2, nothing on stdout, the flag or field named on stderr, no stack trace. */
export function assertUsageError(result: CliResult, mentions: RegExp): void {
  assert.equal(result.code, 2, `expected exit 2, got ${result.code} (stderr ${JSON.stringify(result.stderr)})`);
  assert.equal(result.stdout, '');
  assert.match(result.stderr, mentions);
  assert.doesNotMatch(result.stderr, /^\s+at /m, 'no stack trace for a usage error');
}

/** The message lines on stderr, leaving out the standard pointer to --help. */
export function messageLines(stderr: string): string[] {
  return stderr.split('\n').filter((line) => line !== '' && !/switchyard --help/.test(line));
}

export interface GetResult { status: number; headers: http.IncomingHttpHeaders; body: string }

/** GET over http, or over https when `ca` is given (verifying the server's certificate against it). */
export function httpGet(port: number, urlPath: string, options: { ca?: Buffer; headers?: Record<string, string> } = {}): Promise<GetResult> {
  return new Promise((resolve, reject) => {
    const requestOptions = { host: HOST, port, path: urlPath, agent: false, timeout: 5000, headers: options.headers ?? {} } as const;
    const onResponse = (response: http.IncomingMessage): void => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => { body += chunk; });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
    };
    const request = options.ca === undefined
      ? http.get(requestOptions, onResponse)
      : https.get({ ...requestOptions, ca: options.ca, servername: 'localhost' }, onResponse);
    request.on('timeout', () => request.destroy(new Error(`GET ${urlPath} timed out`)));
    request.on('error', reject);
  });
}

/** Polls `check` every 20 ms until it is true or `timeoutMs` passes; returns its last value. */
export async function eventually(check: () => boolean, timeoutMs = 3000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}
