// Starts `switchyard demo` (what `npm start` runs) as a child process and stops it again. The shared
// startCliServer always runs `serve`, so the demo tests have this small spawner of their own.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

/** dist/src/cli/main.js, seen from dist/test/demo/. */
export const cliPath = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface DemoProcess {
  readonly child: ChildProcess;
  readonly port: number;
  /** e.g. http://127.0.0.1:41234 */
  readonly httpUrl: string;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /**
   * Sends `signal` (default SIGTERM) to this process only, SIGKILL after `graceMs`; resolves with how it
   * exited. Does nothing but report if it has already exited.
   */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const listeningLine = /^switchyard listening on http:\/\/127\.0\.0\.1:(\d+)$/m;

/** Spawns `switchyard demo --port PORT --host 127.0.0.1` and waits (at most `timeoutMs`) for its listening line. */
export async function startDemo(port: number, timeoutMs = 10_000): Promise<DemoProcess> {
  const child = spawn(process.execPath, [cliPath, 'demo', '--port', String(port), '--host', '127.0.0.1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => { output += text; });
  child.stderr.setEncoding('utf8').on('data', (text: string) => { output += text; });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;

  const stop: DemoProcess['stop'] = async (signal = 'SIGTERM', graceMs = 5_000) => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(signal);
      const killer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(killer);
    }
    return { code: child.exitCode, signal: child.signalCode };
  };

  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = listeningLine.exec(output);
    if (match !== null) {
      const listeningPort = Number(match[1]);
      return { child, port: listeningPort, httpUrl: `http://127.0.0.1:${listeningPort}`, output: () => output, stop };
    }
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`switchyard demo exited (${child.exitCode ?? child.signalCode}) before listening:\n${output}`);
    }
    if (Date.now() > deadline) {
      await stop('SIGKILL');
      throw new Error(`switchyard demo did not print its listening line within ${timeoutMs} ms:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
