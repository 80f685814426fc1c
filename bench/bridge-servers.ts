// Starting and stopping the programs of the bridge benchmarks (switchyard, websocketd, websockify, the TCP target
// and the load generator): each in its own process group, tracked by PID, and killed with its group on every exit
// path of the bench (normal end, error, signal), so no server, worker or bridged `cat` outlives it.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { createServer as createNetServer, connect as netConnect, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { descendantPids } from './proc-tree.js';
import { exited, waitForExit } from './child-processes.js';

const HOST = '127.0.0.1';

export interface RunningProcess {
  label: string;
  pid: number;
  /** The port it listens on (0 for the load generator). */
  port: number;
  child: ChildProcess;
  /** The last 4,000 characters it wrote on stdout and stderr. */
  outputTail(): string;
}

const running = new Set<RunningProcess>();

/**
 * Signals the process group `started` leads (detached: the group id is its PID), and the process itself while it
 * runs (should it have left its group). Once it has exited and been reaped its PID may be reused, so only the
 * group is signalled then: the kernel does not hand out a PID while a group of that id still has members.
 */
function signalGroup(started: RunningProcess, signal: NodeJS.Signals): void {
  try { process.kill(-started.pid, signal); } catch { /* the group is gone */ }
  if (!exited(started.child)) {
    try { process.kill(started.pid, signal); } catch { /* gone */ }
  }
}

process.on('exit', () => {
  for (const started of running) signalGroup(started, 'SIGKILL');
});

/** SIGTERM to its group, SIGKILL after `graceMs`; then SIGKILL to the group anyway, for workers it left behind. */
export async function stopProcess(started: RunningProcess, graceMs = 3000): Promise<void> {
  if (!exited(started.child)) {
    signalGroup(started, 'SIGTERM');
    if (!(await waitForExit(started.child, graceMs))) {
      signalGroup(started, 'SIGKILL');
      await waitForExit(started.child, 2000);
    }
  }
  signalGroup(started, 'SIGKILL');
  running.delete(started);
}

/** Spawns `command` in its own process group with stdout and stderr piped (and always drained). */
export function startProcess(label: string, command: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): RunningProcess {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env });
  let output = '';
  const keep = (chunk: Buffer): void => { output = (output + chunk.toString('utf8')).slice(-4000); };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  child.on('error', (error) => keep(Buffer.from(`\n${label}: ${error.message}\n`)));
  if (child.pid === undefined) throw new Error(`${label}: could not start ${command}`);
  const started: RunningProcess = { label, pid: child.pid, port: 0, child, outputTail: () => output.trim() };
  // Kept until stopProcess(), even after it exits: its group may still hold workers it started.
  running.add(started);
  return started;
}

/** Where `name` is on PATH (or /usr/bin), or undefined. */
export function findProgram(name: string): string | undefined {
  for (const dir of [...(process.env['PATH'] ?? '').split(':'), '/usr/bin', '/usr/local/bin']) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Starts a process that prints its port on stdout (`pattern` captures it), as switchyard and the TCP target do. */
export async function startPrintingPort(label: string, command: string, args: readonly string[], pattern: RegExp): Promise<RunningProcess> {
  const started = startProcess(label, command, args);
  const deadline = performance.now() + 15_000;
  try {
    for (;;) {
      const match = pattern.exec(started.outputTail());
      if (match !== null) {
        started.port = Number(match[1]);
        return started;
      }
      if (exited(started.child)) throw new Error(`${label} exited (${started.child.signalCode ?? started.child.exitCode}) before listening: ${started.outputTail()}`);
      if (performance.now() > deadline) throw new Error(`${label} did not print its port within 15 s: ${started.outputTail()}`);
      await sleep(20);
    }
  } catch (error) {
    await stopProcess(started);
    throw error;
  }
}

/** A port that was free a moment ago (websocketd and websockify need one on their command line). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createNetServer();
    probe.once('error', reject);
    probe.listen(0, HOST, () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

function acceptsConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect(port, HOST);
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Starts a server that takes its port on the command line (`argsFor(port)`) on a port that was free, and waits
 * until it accepts connections; if it exits first (another process took the port meanwhile), tries another.
 */
export async function startOnFreePort(label: string, command: string, argsFor: (port: number) => string[]): Promise<RunningProcess> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const started = startProcess(label, command, argsFor(port));
    started.port = port;
    const deadline = performance.now() + 15_000;
    while (!exited(started.child) && performance.now() < deadline) {
      if (await acceptsConnections(port)) return started;
      await sleep(30);
    }
    const why = exited(started.child) ? `exited (${started.child.signalCode ?? started.child.exitCode})` : 'did not listen within 15 s';
    await stopProcess(started);
    if (attempt === 3) throw new Error(`${label} ${why} on port ${port}: ${started.outputTail()}`);
  }
}

/** Waits (bounded) until `pid` has no child processes left, reaped ones gone; returns how many are left and how long it took. */
export async function waitForNoDescendants(pid: number, timeoutMs: number): Promise<{ left: number; waitedMs: number }> {
  const startedAt = performance.now();
  for (;;) {
    const left = descendantPids(pid).length;
    const waitedMs = performance.now() - startedAt;
    if (left === 0 || waitedMs >= timeoutMs) return { left, waitedMs };
    await sleep(20);
  }
}

/** Runs a process to its end and returns its stdout's last line; killed (with its group) after `timeoutMs`. */
export async function runToEnd(label: string, command: string, args: readonly string[], timeoutMs: number): Promise<string> {
  const started = startProcess(label, command, args);
  let stdout = '';
  started.child.stdout!.on('data', (chunk: Buffer) => { stdout += chunk.toString('utf8'); });
  // 'close', not 'exit': stdout is read to its end by then.
  const finished = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    started.child.once('close', () => { clearTimeout(timer); resolve(true); });
  });
  await stopProcess(started, 1000);
  if (!finished) throw new Error(`${label} did not finish within ${Math.round(timeoutMs / 1000)} s: ${started.outputTail()}`);
  const lines = stdout.trim().split('\n');
  return lines[lines.length - 1] ?? '';
}
