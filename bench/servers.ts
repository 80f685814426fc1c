// The servers under test: how each is started in each mode (echo, deflate, broadcast), starting one as a tracked
// child process and reading the port it prints, and the paths of the scripts the bench runs.
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exited, stopChild, track } from './child-processes.js';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const SWITCHYARD_CLI = resolve(BENCH_DIR, '../src/cli/main.js');
/** The load generator (load.ts), started once per echo or idle run and several times per broadcast run. */
export const LOAD_SCRIPT = join(BENCH_DIR, 'load.js');

/** 'switchyard-l6' is switchyard with --deflate-level 6 (ws's zlib level): the deflate-echo fairness row. */
export type ServerName = 'switchyard' | 'switchyard-l6' | 'ws' | 'tcp';
/**
 * What the servers do: echo every message (echo and idle scenarios), echo with permessage-deflate accepted
 * (deflate scenarios), or broadcast every message to every connection.
 */
export type ServerMode = 'echo' | 'deflate' | 'broadcast';

/** Messages at least this long are compressed: switchyard's default, passed explicitly to both servers. */
const DEFLATE_THRESHOLD_BYTES = 1024;

export interface ServerSpec {
  name: ServerName;
  label: string;
  script: string;
  args: string[];
}

const SWITCHYARD_ARGS: Record<ServerMode, string[]> = {
  // No access log and no keep-alive pings: ws has neither, so the comparison is like for like.
  echo: ['serve', '--port', '0', '--host', '127.0.0.1', '--echo', '/echo', '--ping-interval-ms', '0', '--access-log', 'off'],
  // switchyard's deflate defaults otherwise: zlib level 1, memLevel 8, 15-bit windows, context takeover.
  deflate: [
    'serve', '--port', '0', '--host', '127.0.0.1', '--echo', '/echo', '--ping-interval-ms', '0', '--access-log', 'off',
    '--deflate', '--deflate-threshold-bytes', String(DEFLATE_THRESHOLD_BYTES),
  ],
  broadcast: ['serve', '--broadcast', '/chat', '--ping-interval-ms', '0', '--port', '0', '--host', '127.0.0.1', '--access-log', 'off'],
};

export function serverSpecs(candidate: 'switchyard' | 'ws', mode: ServerMode): Record<ServerName, ServerSpec> {
  const wsSpec = {
    script: join(BENCH_DIR, mode === 'broadcast' ? 'ws-broadcast-server.js' : 'ws-echo-server.js'),
    // ws's defaults otherwise: zlib level 6 (Z_DEFAULT_COMPRESSION), memLevel 8, 15-bit windows, context takeover.
    args: mode === 'deflate' ? ['--deflate-threshold-bytes', String(DEFLATE_THRESHOLD_BYTES)] : [],
  };
  return {
    switchyard:
      candidate === 'switchyard'
        ? { name: 'switchyard', label: 'switchyard', script: SWITCHYARD_CLI, args: SWITCHYARD_ARGS[mode] }
        : { name: 'switchyard', label: 'ws-as-cand', ...wsSpec },
    'switchyard-l6':
      candidate === 'switchyard'
        ? { name: 'switchyard-l6', label: 'switchyard L6', script: SWITCHYARD_CLI, args: [...SWITCHYARD_ARGS[mode], '--deflate-level', '6'] }
        : { name: 'switchyard-l6', label: 'ws-as-cand2', ...wsSpec },
    ws: { name: 'ws', label: 'ws', ...wsSpec },
    // No broadcast reference: a raw TCP server that fans out would still have to parse and re-frame.
    tcp: { name: 'tcp', label: 'tcp (ref)', script: join(BENCH_DIR, 'tcp-echo-server.js'), args: [] },
  };
}

export const CHILD_ENV = { ...process.env, WS_NO_BUFFER_UTIL: '1', WS_NO_UTF_8_VALIDATE: '1' };

export interface RunningServer {
  child: ChildProcess;
  pid: number;
  port: number;
  stderrTail: () => string;
}

export function startServer(spec: ServerSpec, nodeArgs: string[]): Promise<RunningServer> {
  const child = track(
    spawn(process.execPath, [...nodeArgs, spec.script, ...spec.args], { stdio: ['ignore', 'pipe', 'pipe'], env: CHILD_ENV }),
  );
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (text: string) => {
    stderr = (stderr + text).slice(-4000);
  });
  const stderrTail = (): string => stderr.trim();
  return new Promise((resolveStart, rejectStart) => {
    let stdout = '';
    let started = false;
    const timer = setTimeout(() => fail(new Error(`${spec.label} did not print its port within 15 s`)), 15_000);
    function fail(error: Error): void {
      clearTimeout(timer);
      void stopChild(child, 1000);
      rejectStart(error);
    }
    child.once('error', (error) => fail(new Error(`${spec.label} failed to start: ${error.message}`)));
    child.once('exit', (code, signal) => {
      if (!started) fail(new Error(`${spec.label} exited (${signal ?? code}) before listening: ${stderrTail()}`));
    });
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (text: string) => {
      if (started) return; // keep draining the pipe, ignore the rest
      stdout += text;
      const match = /listening on http:\/\/(?:\[[^\]]*\]|[^:/\s]+):(\d+)/.exec(stdout);
      if (match === null || child.pid === undefined) return;
      started = true;
      clearTimeout(timer);
      resolveStart({ child, pid: child.pid, port: Number(match[1]), stderrTail });
    });
  });
}

/** What to add when a load process failed: its stderr, and the server's if the server has exited meanwhile. */
export function failureDetail(stderr: string, server: RunningServer): string {
  return [stderr.trim(), exited(server.child) ? `server exited (${server.child.signalCode ?? server.child.exitCode}): ${server.stderrTail()}` : '']
    .filter((part) => part !== '')
    .join('; ');
}
