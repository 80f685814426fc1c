// One CGI script run: spawned without a shell in its own process group (so a kill reaches what the script
// started), its stdio piped, a no-progress timer, and the stop sequence (SIGTERM to the group, SIGKILL after a
// grace period). Tracked process-wide until it is reaped and its pipes are closed.
import { spawn, type ChildProcess } from 'node:child_process';

export interface CgiProcessEvents {
  stdout(chunk: Buffer): void;
  /** stdout reached EOF: every byte the script wrote has been delivered. */
  stdoutEnd(): void;
  /** The no-progress timer fired; the group has been sent SIGTERM. */
  timedOut(): void;
  /** Reaped with every pipe closed (the last event). */
  closed(outcome: CgiOutcome): void;
}

export type CgiOutcome =
  | { readonly kind: 'exited'; readonly code: number }
  | { readonly kind: 'signaled'; readonly signal: NodeJS.Signals }
  | { readonly kind: 'not-started'; readonly message: string };

export interface CgiSpawnOptions {
  readonly file: string;
  readonly args: readonly string[];
  readonly cwd: string;
  readonly env: Record<string, string>;
  readonly timeoutMs: number;
  /** How long SIGTERM has before SIGKILL. */
  readonly killGraceMs: number;
  /** Called with each complete stderr line (control characters escaped, long lines cut). */
  readonly stderrLine: (line: string) => void;
}

/** Longest stderr line passed on whole; longer ones are cut into pieces of this size. */
const STDERR_LINE_MAX_BYTES = 4096;
/** How much of the end of stderr is kept for the log line of a failed run. */
const STDERR_TAIL_MAX_CHARS = 1024;

const liveProcesses = new Set<CgiProcess>();
let exitHookInstalled = false;

/** How many CGI scripts are running or not yet reaped, process-wide. */
export function activeCgiProcessCount(): number {
  return liveProcesses.size;
}

/** If the Node process exits while scripts run, their process groups are killed rather than left behind. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const run of liveProcesses) run.kill('SIGKILL');
  });
}

export class CgiProcess {
  readonly #child: ChildProcess;
  readonly #events: CgiProcessEvents;
  readonly #options: CgiSpawnOptions;
  #exited = false;
  #closed = false;
  #stopping = false;
  #spawnError: Error | undefined;
  #lastProgressMs = performance.now();
  #progressTimer: NodeJS.Timeout | undefined;
  #killTimer: NodeJS.Timeout | undefined;
  #stderrPartial: Buffer = Buffer.alloc(0);
  #stderrTail = '';
  #stdinDone = false;

  constructor(options: CgiSpawnOptions, events: CgiProcessEvents) {
    this.#options = options;
    this.#events = events;
    // Its own process group (detached): SIGTERM on timeout or disconnect also reaches `sleep` or whatever
    // else a shell script started and left holding stdout. No shell: the file is executed directly.
    const child = spawn(options.file, options.args, {
      cwd: options.cwd, env: options.env, stdio: ['pipe', 'pipe', 'pipe'], detached: true, windowsHide: true,
    });
    this.#child = child;
    liveProcesses.add(this);
    installExitHook();
    child.on('error', (error) => {
      // Only spawn failures reach here in practice (ENOENT for a missing interpreter, EACCES on a noexec mount).
      if (child.pid === undefined) this.#spawnError ??= error;
    });
    child.on('exit', () => { this.#exited = true; });
    child.on('close', (code, signal) => this.#onClose(code, signal));
    const stdin = child.stdin!;
    // EPIPE: the script exited (or closed stdin) without reading the whole body, which it may do.
    stdin.on('error', () => { this.#stdinDone = true; });
    stdin.on('close', () => { this.#stdinDone = true; });
    child.stdout!.on('data', (chunk: Buffer) => {
      this.touch();
      this.#events.stdout(chunk);
    });
    child.stdout!.on('end', () => this.#events.stdoutEnd());
    child.stderr!.on('data', (chunk: Buffer) => this.#onStderr(chunk));
    this.#armTimer(options.timeoutMs);
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** stdin can take no more: the script closed it or exited. */
  get stdinDone(): boolean {
    return this.#stdinDone;
  }

  /** The last STDERR_TAIL_MAX_CHARS of stderr, lines joined with ` | `. */
  get stderrTail(): string {
    const partial = this.#stderrPartial.length === 0 ? '' : printable(this.#stderrPartial.toString('utf8'));
    return joinTail(this.#stderrTail, partial);
  }

  /** Something moved (a body byte into the script, output out of it, the client drained): restart the timeout. */
  touch(): void {
    this.#lastProgressMs = performance.now();
  }

  /** Writes request body bytes to stdin; false when stdin's buffer is full (wait for onStdinDrain). */
  writeInput(chunk: Buffer): boolean {
    const stdin = this.#child.stdin!;
    if (this.#stdinDone || stdin.destroyed || stdin.writableEnded) return true;
    this.touch();
    return stdin.write(chunk);
  }

  /** Calls `listener` once stdin can take more, or once it is closed (when nothing more will be taken). */
  onStdinDrain(listener: () => void): void {
    const stdin = this.#child.stdin!;
    const done = (): void => {
      stdin.off('drain', done);
      stdin.off('close', done);
      listener();
    };
    stdin.on('drain', done);
    stdin.on('close', done);
  }

  endInput(chunk?: Buffer): void {
    const stdin = this.#child.stdin!;
    if (this.#stdinDone || stdin.destroyed || stdin.writableEnded) return;
    if (chunk !== undefined && chunk.length > 0) stdin.end(chunk);
    else stdin.end();
  }

  pauseOutput(): void {
    this.#child.stdout!.pause();
  }

  resumeOutput(): void {
    this.#child.stdout!.resume();
  }

  /** The stop sequence: SIGTERM to the group now, SIGKILL after the grace period; output keeps draining meanwhile. */
  stop(): void {
    if (this.#closed || this.#stopping) return;
    this.#stopping = true;
    // Whoever stopped us will not read: let the pipe drain so a script blocked on a full pipe can see the signal.
    this.#child.stdout!.resume();
    this.kill('SIGTERM');
    this.#killTimer = setTimeout(() => {
      this.kill('SIGKILL');
      // Pipes that even SIGKILL did not close (a program that left the group with our stdout) are dropped, so
      // the run ends and its descriptors are freed.
      this.#killTimer = setTimeout(() => this.#destroyPipes(), this.#options.killGraceMs);
    }, this.#options.killGraceMs);
  }

  /** Sends `signal` to the process group, and to the script itself should it have left the group. */
  kill(signal: NodeJS.Signals): void {
    const pid = this.#child.pid;
    if (this.#closed || pid === undefined) return;
    // Until 'close' some member of the group may still hold a pipe; the kernel keeps a group's id from being
    // reused while any member lives, so the group id stays ours.
    try { process.kill(-pid, signal); } catch { /* ESRCH: the group is gone */ }
    if (!this.#exited) {
      try { this.#child.kill(signal); } catch { /* already gone */ }
    }
  }

  #armTimer(delayMs: number): void {
    this.#progressTimer = setTimeout(() => {
      const idleMs = performance.now() - this.#lastProgressMs;
      const timeoutMs = this.#options.timeoutMs;
      if (idleMs + 1 < timeoutMs) {
        this.#armTimer(timeoutMs - idleMs);
        return;
      }
      this.#progressTimer = undefined;
      this.stop();
      this.#events.timedOut();
    }, Math.max(1, Math.ceil(delayMs)));
  }

  #onStderr(chunk: Buffer): void {
    let data = this.#stderrPartial.length === 0 ? chunk : Buffer.concat([this.#stderrPartial, chunk]);
    let start = 0;
    for (;;) {
      const newline = data.indexOf(0x0a, start);
      if (newline === -1) break;
      this.#emitStderr(data.subarray(start, newline));
      start = newline + 1;
    }
    data = data.subarray(start);
    while (data.length >= STDERR_LINE_MAX_BYTES) {
      this.#emitStderr(data.subarray(0, STDERR_LINE_MAX_BYTES));
      data = data.subarray(STDERR_LINE_MAX_BYTES);
    }
    this.#stderrPartial = Buffer.from(data);
  }

  #emitStderr(bytes: Buffer): void {
    const end = bytes.length > 0 && bytes[bytes.length - 1] === 0x0d ? bytes.length - 1 : bytes.length;
    const line = printable(bytes.toString('utf8', 0, end));
    this.#stderrTail = joinTail(this.#stderrTail, line);
    this.#options.stderrLine(line);
  }

  #destroyPipes(): void {
    if (this.#closed) return;
    this.#child.stdin!.destroy();
    this.#child.stdout!.destroy();
    this.#child.stderr!.destroy();
  }

  #onClose(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#progressTimer);
    clearTimeout(this.#killTimer);
    liveProcesses.delete(this);
    if (this.#stderrPartial.length > 0) {
      this.#emitStderr(this.#stderrPartial);
      this.#stderrPartial = Buffer.alloc(0);
    }
    const outcome: CgiOutcome = this.#spawnError !== undefined ? { kind: 'not-started', message: this.#spawnError.message }
      : signal !== null ? { kind: 'signaled', signal }
      : { kind: 'exited', code: code ?? 0 };
    this.#events.closed(outcome);
  }
}

export function describeOutcome(outcome: CgiOutcome): string {
  switch (outcome.kind) {
    case 'exited': return `exit status ${outcome.code}`;
    case 'signaled': return `killed by ${outcome.signal}`;
    case 'not-started': return `could not start: ${outcome.message}`;
  }
}

/** One line of text: C0 controls, DEL and C1 controls (and U+2028/9) escaped, so a log line stays one line. */
export function printable(text: string): string {
  return text.replace(/[\x00-\x1f\x7f-\x9f\u2028\u2029]/g, (char) => `\\x${char.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function joinTail(tail: string, line: string): string {
  if (line === '') return tail;
  const joined = tail === '' ? line : `${tail} | ${line}`;
  return joined.length > STDERR_TAIL_MAX_CHARS ? '...' + joined.slice(joined.length - STDERR_TAIL_MAX_CHARS) : joined;
}
