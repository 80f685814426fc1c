// Starts `switchyard serve ...` as a child process on an ephemeral port and stops it again.
// Tests that prove behaviour through the CLI contract (docs/architecture.md §CLI) use this.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';

export const cliPath = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface RunningServer {
  /** e.g. http://127.0.0.1:41234 */
  readonly httpUrl: string;
  /** e.g. ws://127.0.0.1:41234 */
  readonly wsUrl: string;
  readonly host: string;
  readonly port: number;
  readonly child: ChildProcess;
  /** Everything the server wrote to stdout and stderr so far. */
  output(): string;
  /** SIGTERM, then SIGKILL after 2 s; resolves when the process has exited. */
  stop(): Promise<void>;
}

const listeningLine = /listening on (https?):\/\/(\[[^\]]+\]|[^:\s]+):(\d+)/;

/** Spawns the CLI with `serve --port 0 --host 127.0.0.1 ...args` and waits for its listening line. */
export async function startCliServer(args: readonly string[], options: { cwd?: string; timeoutMs?: number } = {}): Promise<RunningServer> {
  const child = spawn(process.execPath, [cliPath, 'serve', '--port', '0', '--host', '127.0.0.1', ...args], {
    cwd: options.cwd ?? process.cwd(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => { output += text; });
  child.stderr.setEncoding('utf8').on('data', (text: string) => { output += text; });
  const exited = once(child, 'exit');

  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(killer);
  };

  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  while (true) {
    const match = listeningLine.exec(output);
    if (match) {
      const host = match[2]!;
      const port = Number(match[3]);
      return {
        httpUrl: `http://${host}:${port}`, wsUrl: `ws://${host}:${port}`, host: host.replace(/^\[|\]$/g, ''), port, child,
        output: () => output, stop,
      };
    }
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`switchyard serve exited (${child.exitCode ?? child.signalCode}) before listening:\n${output}`);
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`switchyard serve did not print its listening line in time:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
