// Test support for the CGI bridge: a temp cgi-bin written from script texts (chmod 755), a real server on
// 127.0.0.1:0 with the handler mounted at /cgi-bin/*, raw HTTP exchanges over node:net (fetch and http.request
// normalise `..` and encoded dots away), and the process-level probes the lifecycle tests need: our child
// processes (`ps --ppid`), open descriptors (/proc/self/fd) and a wait-until helper.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { execFileSync } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import * as net from 'node:net';

export { openFdCount } from '../../_support/resources.js';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestContext } from 'node:test';
import { cgiHandler, type CgiOptions } from '../../../src/bridges/cgi.js';
import { createServer, type Switchyard } from '../../../src/server/server.js';

export const PYTHON = '/usr/bin/python3';
export const hasPython = existsSync(PYTHON);

/** A file to put in the temp cgi-bin: text, and a mode (default 0o755). */
export type ScriptFile = string | { readonly text: string; readonly mode: number };

/** Writes `files` (paths relative to the directory; parents created) into a fresh temp dir removed after the test. */
export async function makeCgiBin(t: TestContext, files: Readonly<Record<string, ScriptFile>>): Promise<string> {
  const base = await fsp.mkdtemp(path.join(os.tmpdir(), 'switchyard-cgi-'));
  t.after(() => fsp.rm(base, { recursive: true, force: true }));
  const directory = path.join(base, 'cgi-bin');
  await fsp.mkdir(directory);
  for (const [name, file] of Object.entries(files)) {
    const target = path.join(directory, name);
    await fsp.mkdir(path.dirname(target), { recursive: true });
    const { text, mode } = typeof file === 'string' ? { text: file, mode: 0o755 } : file;
    await fsp.writeFile(target, text);
    await fsp.chmod(target, mode);
  }
  return directory;
}

export interface CgiServer {
  readonly app: Switchyard;
  readonly port: number;
  readonly directory: string;
  /** Every line the handler logged, in order. */
  readonly logs: string[];
}

/** A server with `cgiHandler({ directory, ...options })` at /cgi-bin/*; closed after the test. */
export async function startCgiServer(t: TestContext, directory: string, options: Partial<CgiOptions> = {}, mount = '/cgi-bin/*'): Promise<CgiServer> {
  const logs: string[] = [];
  const app = createServer({ shutdownTimeoutMs: 500 });
  app.all(mount, cgiHandler({ directory, log: (line) => logs.push(line), ...options }));
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  t.after(() => app.close());
  return { app, port: address.port, directory, logs };
}

export interface RawResponse {
  readonly status: number;
  readonly statusText: string;
  /** Lower-case names; every value of a repeated field, in order. */
  readonly headers: ReadonlyMap<string, readonly string[]>;
  /** The head as received, up to the blank line. */
  readonly rawHead: string;
  /** The body, de-chunked when it was chunked. */
  readonly body: Buffer;
  /** Whether a chunked body ended with its last chunk (false: the connection was cut mid-body). */
  readonly complete: boolean;
}

export function header(response: RawResponse, name: string): string | undefined {
  return response.headers.get(name.toLowerCase())?.join(', ');
}

/** Sends `request` (bytes as given) and reads until the server closes; pass `Connection: close` in it. */
export function rawExchange(port: number, request: string | Buffer, timeoutMs = 10_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close from the server within ${timeoutMs} ms; got ${JSON.stringify(Buffer.concat(chunks).toString('latin1').slice(0, 500))}`));
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (error) => { clearTimeout(timer); reject(error); });
    socket.on('close', () => { clearTimeout(timer); resolve(Buffer.concat(chunks)); });
    socket.write(request); // not end(): a half-closed client may be dropped before the async answer is written
  });
}

/** `METHOD target` with Host and Connection: close plus `headers`, and `body` with a Content-Length. */
export async function request(port: number, method: string, target: string,
  options: { headers?: Readonly<Record<string, string>>; body?: string | Buffer } = {}): Promise<RawResponse> {
  const headers: Record<string, string> = { Host: `127.0.0.1:${port}`, Connection: 'close', ...options.headers };
  if (options.body !== undefined && headers['Transfer-Encoding'] === undefined) headers['Content-Length'] = String(Buffer.byteLength(options.body));
  const head = `${method} ${target} HTTP/1.1\r\n${Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('')}\r\n`;
  const bytes = options.body === undefined ? Buffer.from(head, 'latin1') : Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(options.body)]);
  return parseResponse(await rawExchange(port, bytes), method === 'HEAD');
}

export function parseResponse(raw: Buffer, isHead = false): RawResponse {
  const headEnd = raw.indexOf('\r\n\r\n');
  assert.notEqual(headEnd, -1, `no complete response head in ${JSON.stringify(raw.toString('latin1').slice(0, 500))}`);
  const rawHead = raw.subarray(0, headEnd).toString('latin1');
  const [statusLine = '', ...lines] = rawHead.split('\r\n');
  const match = /^HTTP\/1\.1 (\d{3}) ?(.*)$/.exec(statusLine);
  assert.ok(match !== null, `bad status line ${JSON.stringify(statusLine)}`);
  const headers = new Map<string, string[]>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).toLowerCase();
    headers.set(name, [...(headers.get(name) ?? []), line.slice(colon + 1).trim()]);
  }
  let body = raw.subarray(headEnd + 4);
  let complete = true;
  if (!isHead && headers.get('transfer-encoding')?.join(',').toLowerCase() === 'chunked') ({ body, complete } = dechunk(body));
  return { status: Number(match[1]), statusText: match[2] ?? '', headers, rawHead, body, complete };
}

function dechunk(data: Buffer): { body: Buffer; complete: boolean } {
  const pieces: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at);
    if (lineEnd === -1) return { body: Buffer.concat(pieces), complete: false };
    const size = parseInt(data.subarray(at, lineEnd).toString('latin1'), 16);
    if (size === 0) return { body: Buffer.concat(pieces), complete: true };
    if (lineEnd + 2 + size > data.length) {
      pieces.push(data.subarray(lineEnd + 2));
      return { body: Buffer.concat(pieces), complete: false };
    }
    pieces.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
}

/** Process ids of this process's direct children, zombies included (`ps --ppid`). */
export function childPids(): number[] {
  const out = execFileSync('ps', ['--ppid', String(process.pid), '-o', 'pid=,comm='], { encoding: 'utf8' }).trim();
  // `ps` is our child too while it runs: leave it out.
  return out === '' ? [] : out.split('\n').map((line) => line.trim().split(/\s+/))
    .filter(([, command]) => command !== 'ps').map(([pid]) => Number(pid));
}

/** Whether a process with this id exists (a zombie counts). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Polls `condition` every 20 ms until it holds; fails with `what` after `timeoutMs`. */
export async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
