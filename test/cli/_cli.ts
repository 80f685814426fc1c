// Helpers the CLI tests share: run the CLI to completion, start a server through it, open raw WebSockets,
// plain and TLS HTTP GETs, and the assertions for a usage or config error (exit 2, one line, no stack trace).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as http from 'node:http';
import * as https from 'node:https';
import type { TestContext } from 'node:test';
import { cliPath, startCliServer, type RunningServer } from '../_support/cli-server.js';
import { openRawClient, type HandshakeOptions, type RawClient } from '../_support/raw-client.js';

export const HOST = '127.0.0.1';

export type Defer = (cleanup: () => unknown) => void;

export interface CliResult { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Runs the CLI to completion (killed after `timeoutMs`, which fails the test). */
export async function runCli(t: TestContext, args: readonly string[], options: { timeoutMs?: number; cwd?: string } = {}): Promise<CliResult> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const child = spawn(process.execPath, [cliPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: options.cwd ?? process.cwd() });
  t.after(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk; });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
  let timer: NodeJS.Timeout | undefined;
  const result = await new Promise<CliResult | undefined>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    timer = setTimeout(() => resolve(undefined), timeoutMs);
  });
  clearTimeout(timer);
  if (result === undefined) {
    child.kill('SIGKILL');
    assert.fail(`switchyard ${args.join(' ')} did not exit within ${timeoutMs} ms; stdout ${JSON.stringify(stdout)}, stderr ${JSON.stringify(stderr)}`);
  }
  return result;
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
