// One bridged child process: spawned without a shell in its own process group, its stdio piped, tracked
// process-wide until it is reaped and its pipes are closed, and stopped by one sequence (stdin EOF, SIGTERM
// after a grace period, SIGKILL after another) that reaches the programs it started too.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import * as path from 'node:path';

export interface ChildEvents {
  stdout(chunk: Buffer): void;
  stderr(chunk: Buffer): void;
  /** stdin accepted everything written so far (after a write() that returned false). */
  stdinDrain(): void;
  /** The child was reaped and its pipes are closed: every byte it wrote has been delivered. */
  closed(outcome: ChildOutcome): void;
}

export type ChildOutcome =
  | { kind: 'exited'; code: number }
  | { kind: 'signaled'; signal: NodeJS.Signals }
  | { kind: 'not-started'; code: string; message: string };

export interface ChildSpawnOptions {
  argv: readonly string[];
  env: Record<string, string>;
  cwd?: string;
  /** Run through `stdbuf -oL -eL` when it is installed, so C stdio flushes per line. */
  lineBuffered: boolean;
  /** Stop sequence: SIGTERM this long after stdin EOF (or after the child exited with its pipes still open), SIGKILL after as long again. */
  graceMs: number;
  /** Whoever the log lines are about ("#12", "shared /ticker"). */
  label: string;
  log: ((line: string) => void) | undefined;
}

/** Children spawned and not yet closed (reaped with pipes closed), across every bridge in this process. */
const liveChildren = new Set<BridgedChild>();
let waiters: Array<() => void> = [];
let exitHookInstalled = false;

/** How many bridged child processes are running or not yet reaped, across all routes. */
export function activeProcessCount(): number {
  return liveChildren.size;
}

/** Resolves once no bridged child is left (each was reaped and its pipes closed). */
export function allProcessesExited(): Promise<void> {
  if (liveChildren.size === 0) return Promise.resolve();
  return new Promise((resolve) => waiters.push(resolve));
}

/**
 * If the Node process exits while children still run (a host that calls process.exit() without waiting for
 * allProcessesExited()), they are killed with their process groups rather than left behind as orphans.
 */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of liveChildren) child.signal('SIGKILL');
  });
}

export class BridgedChild {
  readonly label: string;
  readonly pid: number | undefined;
  /** Undefined when the program could not be started at all. */
  readonly #child: ChildProcess | undefined;
  readonly #events: ChildEvents;
  readonly #log: ((line: string) => void) | undefined;
  readonly #graceMs: number;
  #exited = false;
  #closed = false;
  #inputEnded = false;
  #signalsScheduled = false;
  #timers: NodeJS.Timeout[] = [];
  #spawnError: NodeJS.ErrnoException | undefined;

  constructor(options: ChildSpawnOptions, events: ChildEvents) {
    this.label = options.label;
    this.#events = events;
    this.#log = options.log;
    this.#graceMs = options.graceMs;
    liveChildren.add(this);
    installExitHook();
    let argv = [...options.argv];
    if (options.lineBuffered) {
      const stdbuf = findExecutable('stdbuf', DEFAULT_SEARCH_PATH);
      if (stdbuf !== undefined) {
        // stdbuf reports a missing program as its own exit status 127: find the program first, so that a
        // command that does not exist fails the same way with and without line buffering.
        const program = findExecutable(argv[0]!, options.env['PATH'] ?? '', options.cwd);
        if (program === undefined) {
          this.#child = undefined;
          this.pid = undefined;
          this.#notStarted(Object.assign(new Error(`spawn ${argv[0]} ENOENT`), { code: 'ENOENT' }));
          return;
        }
        argv = [stdbuf, '-oL', '-eL', program, ...argv.slice(1)];
      }
    }
    let child: ChildProcess;
    try {
      // Its own process group (detached), so the stop sequence also reaches what it started; no shell.
      child = spawn(argv[0]!, argv.slice(1), {
        stdio: ['pipe', 'pipe', 'pipe'], detached: true, env: options.env, windowsHide: true,
        ...(options.cwd !== undefined && { cwd: options.cwd }),
      });
    } catch (error) {
      this.#child = undefined;
      this.pid = undefined;
      this.#notStarted(error as NodeJS.ErrnoException);
      return;
    }
    this.#child = child;
    this.pid = child.pid;
    child.on('error', (error: NodeJS.ErrnoException) => {
      // Without a pid the program never ran ('close' follows); otherwise a failed kill() or similar.
      if (this.pid === undefined) this.#spawnError ??= error;
      else this.#logLine(`process error: ${error.message}`);
    });
    child.on('exit', (code, signal) => {
      this.#exited = true;
      this.#logLine(`exited (${describeExit(code, signal)})`);
      // A program it started may still hold stdout open: give it the grace period, then stop the group.
      this.#scheduleSignals('its own exit');
    });
    child.on('close', (code, signal) => this.#onClose(code, signal));
    child.stdin!.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE' && error.code !== 'ERR_STREAM_DESTROYED') this.#logLine(`stdin: ${error.message}`);
    });
    child.stdin!.on('drain', () => { if (!this.#closed) this.#events.stdinDrain(); });
    child.stdout!.on('data', (chunk: Buffer) => this.#events.stdout(chunk));
    child.stderr!.on('data', (chunk: Buffer) => this.#events.stderr(chunk));
    if (this.pid !== undefined) this.#logLine(`started: ${options.argv.join(' ')}`);
  }

  get exited(): boolean {
    return this.#exited;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Writes to stdin; false when its buffer is full (wait for stdinDrain). Ignored once stdin is closed. */
  write(chunk: Uint8Array | string): boolean {
    const stdin = this.#child?.stdin;
    if (stdin == null || stdin.destroyed || stdin.writableEnded) return true;
    return stdin.write(chunk);
  }

  /** Writes several pieces as one (a message and its newline) without an intermediate flush. */
  writeAll(chunks: ReadonlyArray<Uint8Array | string>): boolean {
    const stdin = this.#child?.stdin;
    if (stdin == null || stdin.destroyed || stdin.writableEnded) return true;
    stdin.cork();
    let ok = true;
    for (const chunk of chunks) ok = stdin.write(chunk);
    stdin.uncork();
    return ok;
  }

  pauseOutput(): void {
    this.#child?.stdout?.pause();
    this.#child?.stderr?.pause();
  }

  resumeOutput(): void {
    this.#child?.stdout?.resume();
    this.#child?.stderr?.resume();
  }

  /**
   * The stop sequence: stdin EOF now (many programs end there), SIGTERM to the process group after the
   * grace period, SIGKILL after as long again. Output keeps being read (the caller drops it), so a child
   * blocked on a full stdout pipe can notice and exit.
   */
  stop(): void {
    if (this.#closed || this.#child === undefined) return;
    if (!this.#inputEnded) {
      this.#inputEnded = true;
      this.#child.stdin!.end();
    }
    this.resumeOutput();
    this.#scheduleSignals('stdin EOF');
  }

  #scheduleSignals(since: string): void {
    if (this.#signalsScheduled || this.#closed) return;
    this.#signalsScheduled = true;
    const graceMs = this.#graceMs;
    this.#timers.push(setTimeout(() => {
      this.#logLine(`still running ${graceMs} ms after ${since}: SIGTERM`);
      this.signal('SIGTERM');
      this.#timers.push(setTimeout(() => {
        this.#logLine(`still running ${2 * graceMs} ms after ${since}: SIGKILL`);
        this.signal('SIGKILL');
        // Pipes that a killed group still holds open (a program that left the group) are ours to drop.
        this.#timers.push(setTimeout(() => this.#destroyPipes(), graceMs + 1000));
      }, graceMs));
    }, graceMs));
  }

  /** Sends `signal` to the child's process group (and to the child itself, should it have left the group). */
  signal(signal: NodeJS.Signals): void {
    if (this.#closed || this.pid === undefined) return;
    try {
      process.kill(-this.pid, signal);
    } catch {
      // ESRCH: the whole group is gone already.
    }
    if (!this.#exited) {
      try { this.#child?.kill(signal); } catch { /* already gone */ }
    }
  }

  #destroyPipes(): void {
    if (this.#closed) return;
    this.#logLine('pipes still open after SIGKILL: closing them');
    this.#child?.stdin?.destroy();
    this.#child?.stdout?.destroy();
    this.#child?.stderr?.destroy();
  }

  #notStarted(error: NodeJS.ErrnoException): void {
    this.#spawnError = error;
    // Asynchronous like a failed spawn, so callers see one order of events whatever went wrong.
    setImmediate(() => this.#onClose(null, null));
  }

  #onClose(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers = [];
    liveChildren.delete(this);
    let outcome: ChildOutcome;
    const spawnError = this.#spawnError;
    if (spawnError !== undefined) {
      outcome = { kind: 'not-started', code: spawnError.code ?? 'ERROR', message: spawnError.message };
      this.#logLine(`cannot start: ${spawnError.message}`);
    } else if (signal !== null) {
      outcome = { kind: 'signaled', signal };
    } else {
      outcome = { kind: 'exited', code: code ?? 0 };
    }
    if (liveChildren.size === 0 && waiters.length > 0) {
      const done = waiters;
      waiters = [];
      for (const resolve of done) resolve();
    }
    this.#events.closed(outcome);
  }

  #logLine(text: string): void {
    const log = this.#log;
    if (log === undefined) return;
    try {
      log(`${this.label}${this.pid === undefined ? '' : ` pid ${this.pid}`}: ${text}`);
    } catch {
      // A failing logger must not take the bridge down.
    }
  }
}

const DEFAULT_SEARCH_PATH = '/usr/local/bin:/usr/bin:/bin';

export function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal !== null ? `signal ${signal}` : `exit status ${code ?? 0}`;
}

/** execvp's lookup: a name with a slash is taken as is (relative to cwd), else searched in PATH. */
function findExecutable(name: string, searchPath: string, cwd?: string): string | undefined {
  const candidates = name.includes('/')
    ? [path.resolve(cwd ?? process.cwd(), name)]
    : searchPath.split(':').filter((dir) => dir !== '').map((dir) => path.join(path.resolve(cwd ?? process.cwd(), dir), name));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, fsConstants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}
