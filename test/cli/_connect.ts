// Helpers the `switchyard connect` tests share: the CLI as a child process with stdin and stdout pipes, and
// an embedded server (createServer) on 127.0.0.1 whose routes a test writes and whose connections it inspects.
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import type { TestContext } from 'node:test';
import { cliPath } from '../_support/cli-server.js';
import { createServer, type Switchyard } from '../../src/server/server.js';
import { childClosed, describeStuckProcess, whenClosed, type Defer } from './_cli.js';

export interface ConnectProcess {
  readonly child: ChildProcessWithoutNullStreams;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit status (failing the test after `timeoutMs`, saying what the process was doing). */
  exit(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

export interface SpawnOptions {
  /** Extra environment variables (added to this process's). */
  readonly env?: Readonly<Record<string, string>>;
}

/** Spawns `switchyard connect ...args` with piped stdio; killed in t.after if still running. */
export function spawnConnect(t: TestContext, args: readonly string[], options: SpawnOptions = {}): ConnectProcess {
  const env = options.env === undefined ? process.env : { ...process.env, ...options.env };
  const child = spawn(process.execPath, [cliPath, 'connect', ...args], { stdio: ['pipe', 'pipe', 'pipe'], env });
  t.after(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk; });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
  child.stdin.on('error', () => {}); // the CLI may exit before reading all of it
  const closed = whenClosed(child);
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    async exit(timeoutMs = 10_000) {
      const result = await childClosed(closed, timeoutMs);
      if (result === undefined) {
        const state = describeStuckProcess(child);
        child.kill('SIGKILL');
        assert.fail(`switchyard connect ${args.join(' ')} did not exit within ${timeoutMs} ms (${state}); stdout ${JSON.stringify(stdout.slice(-500))}, stderr ${JSON.stringify(stderr)}`);
      }
      return { ...result, stdout, stderr };
    },
  };
}

/** Runs `switchyard connect ...args`, writing `input` to its stdin and then ending it (or leaving it open). */
export async function runConnect(t: TestContext, args: readonly string[], input: string | Buffer | 'keep-open' = '', options: SpawnOptions = {}): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const run = spawnConnect(t, args, options);
  if (input !== 'keep-open') run.child.stdin.end(input);
  return run.exit();
}

/** An embedded server on 127.0.0.1:0; `setup` adds its routes. Closed by `defer`. */
export async function startEmbedded(defer: Defer, setup: (app: Switchyard) => void): Promise<{ app: Switchyard; wsUrl: string }> {
  const app = createServer({ pingIntervalMs: 0, shutdownTimeoutMs: 500 });
  setup(app);
  const { port } = await app.listen({ port: 0, host: '127.0.0.1' });
  defer(() => app.close());
  return { app, wsUrl: `ws://127.0.0.1:${port}` };
}
