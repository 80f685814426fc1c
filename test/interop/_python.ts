// Runs the Python peers in test/interop/python/ under Debian's /usr/bin/python3 (python3-websockets): the
// clients (client.py, deflate_client.py) one run at a time, printing one JSON result; the servers (server.py,
// deflate_server.py) as long-lived echo servers whose JSON event lines tests read.
import { spawn, type ChildProcess, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { debianPython } from '../_support/peers.js';
import { withTimeout } from './_wait.js';

/** Tests run from dist/test/interop, the scripts stay in test/interop/python: find them from the package root. */
function findPythonDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (true) {
    const candidate = join(dir, 'test', 'interop', 'python');
    if (existsSync(join(dir, 'package.json')) && existsSync(join(candidate, 'client.py'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`test/interop/python/client.py not found above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

export const pythonDir = findPythonDir();

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** SIGTERM, then SIGKILL after 2 s; resolves once the child has exited. */
export function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const killer = setTimeout(() => child.kill('SIGKILL'), 2000);
    child.once('exit', () => {
      clearTimeout(killer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Spawns `script` (in test/interop/python) with `args`. -B: importing _common.py leaves no __pycache__ in the tree. */
function spawnScript(script: string, args: readonly string[]): ChildProcessWithoutNullStreams {
  const child = spawn(debianPython, ['-B', join(pythonDir, script), ...args], { stdio: 'pipe' });
  child.stdin.on('error', () => {}); // EPIPE when it has already exited: nothing to clean up
  return child;
}

/**
 * Runs a one-shot script (client.py, deflate_client.py) and resolves with the JSON object it printed last.
 * Rejects, quoting its output, when it reports an error, exits non-zero, prints no JSON, or runs past
 * `timeoutMs` (it is then killed).
 */
export async function runPythonScript(t: TestContext, script: string, args: readonly string[], timeoutMs: number): Promise<JsonObject> {
  const command = [script, ...args].join(' ');
  const child = spawnScript(script, args);
  child.stdin.end();
  t.after(() => stopChild(child));
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => { stdout += text; });
  child.stderr.setEncoding('utf8').on('data', (text: string) => { stderr += text; });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  });
  let exitCode: number | null;
  try {
    exitCode = await withTimeout(exited, timeoutMs, `python ${command} to finish`);
  } catch (error) {
    await stopChild(child);
    throw new Error(`${(error as Error).message}\nstdout: ${stdout}\nstderr: ${stderr}`, { cause: error });
  }
  const lastLine = stdout.trim().split('\n').at(-1) ?? '';
  let result: JsonObject;
  try {
    result = JSON.parse(lastLine) as JsonObject;
  } catch (error) {
    throw new Error(`python ${command} printed no JSON (exit ${exitCode})\nstdout: ${stdout}\nstderr: ${stderr}`, { cause: error });
  }
  if (exitCode !== 0 || 'error' in result) {
    throw new Error(`python ${command} failed (exit ${exitCode}): ${String(result['error'])}\nstderr: ${stderr}`);
  }
  return result;
}

/** Runs `client.py SCENARIO URL` (see runPythonScript). */
export function runPythonClient(t: TestContext, scenario: string, url: string, timeoutMs = 25_000): Promise<JsonObject> {
  return runPythonScript(t, 'client.py', [scenario, url], timeoutMs);
}

export interface PythonServerEvent {
  readonly event: string;
  readonly path?: string;
  readonly [key: string]: Json | undefined;
}

export interface PythonServer {
  readonly port: number;
  /** e.g. ws://127.0.0.1:41234 */
  readonly wsUrl: string;
  readonly events: readonly PythonServerEvent[];
  /** Resolves with the first event (already seen or still to come) that `matches`. */
  waitForEvent(matches: (event: PythonServerEvent) => boolean, timeoutMs: number, what: string): Promise<PythonServerEvent>;
  output(): string;
  stop(): Promise<void>;
}

export interface PythonServerOptions {
  /** Default 'server.py'; also 'deflate_server.py'. */
  readonly script?: string;
  readonly args?: readonly string[];
  /** How long to wait for its port. Default 10 s. */
  readonly timeoutMs?: number;
}

/** Starts a server script on 127.0.0.1 port 0 and resolves once it printed its port. */
export async function startPythonServer(options: PythonServerOptions = {}): Promise<PythonServer> {
  const script = options.script ?? 'server.py';
  // stdin stays a pipe we never write to: the script exits when it closes, so it cannot outlive this process.
  const child = spawnScript(script, options.args ?? []);
  const events: PythonServerEvent[] = [];
  const listeners = new Set<() => void>();
  let output = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => { output += text; });
  createInterface({ input: child.stdout }).on('line', (line) => {
    output += `${line}\n`;
    try {
      events.push(JSON.parse(line) as PythonServerEvent);
    } catch {
      return;
    }
    for (const listener of [...listeners]) listener();
  });
  const stop = async (): Promise<void> => {
    child.stdin.end();
    await stopChild(child);
  };

  const waitForEvent = (matches: (event: PythonServerEvent) => boolean, waitMs: number, what: string): Promise<PythonServerEvent> => {
    let listener: (() => void) | undefined;
    const found = new Promise<PythonServerEvent>((resolve, reject) => {
      listener = () => {
        const event = events.find(matches);
        if (event) resolve(event);
        else if (child.exitCode !== null || child.signalCode !== null) reject(new Error(`python ${script} exited:\n${output}`));
      };
      listeners.add(listener);
      listener();
    });
    return withTimeout(found, waitMs, `python ${script} to report ${what}; it printed:\n${output}`)
      .finally(() => { if (listener) listeners.delete(listener); });
  };

  child.once('exit', () => { for (const listener of [...listeners]) listener(); });
  try {
    const listening = await waitForEvent((event) => event.event === 'listening', options.timeoutMs ?? 10_000, 'its listening port');
    const port = Number(listening['port']);
    return { port, wsUrl: `ws://127.0.0.1:${port}`, events, waitForEvent, output: () => output, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
