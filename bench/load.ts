// The load generator, a child process of the bench: parses its options and runs one scenario against one server,
// echo (load-echo.ts) or idle (load-idle.ts), printing one JSON line with the result, or runs as a long-lived
// broadcast worker (`--scenario subscribe` or `publish`, load-broadcast.ts) driven by run.ts through stdin commands.
import { parseArgs } from 'node:util';
import { runEcho, type EchoResult } from './load-echo.js';
import { runIdle, type IdleResult } from './load-idle.js';
import { emit, runPublisher, runSubscribers } from './load-broadcast.js';

// The result types, for run.ts and the report (type-only imports: this module runs main() when loaded).
export type { EchoResult } from './load-echo.js';
export type { IdleResult } from './load-idle.js';
export type { WorkerEvent } from './load-broadcast.js';

export type LoadResult = EchoResult | IdleResult;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scenario: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string' },
      path: { type: 'string', default: '/echo' },
      'server-pid': { type: 'string' },
      connections: { type: 'string' },
      inflight: { type: 'string', default: '1' },
      'payload-bytes': { type: 'string', default: '64' },
      binary: { type: 'boolean', default: false },
      'warmup-ms': { type: 'string', default: '1000' },
      'duration-ms': { type: 'string', default: '5000' },
      'max-messages': { type: 'string', default: '100000000' },
      'batch-size': { type: 'string', default: '200' },
      'warmup-connections': { type: 'string', default: '50' },
      'settle-ms': { type: 'string', default: '1000' },
      publishers: { type: 'string', default: '1' },
      deflate: { type: 'boolean', default: false },
      'deflate-variants': { type: 'string', default: '64' },
      'idle-message': { type: 'boolean', default: false },
    },
  });
  const integer = (name: keyof typeof values): number => {
    const raw = values[name];
    const parsed = Number(raw);
    if (typeof raw !== 'string' || !Number.isInteger(parsed) || parsed < 0) throw new RangeError(`--${name} must be a non-negative integer`);
    return parsed;
  };
  const common = (): { host: string; port: number; path: string; serverPid: number } =>
    ({ host: values.host, port: integer('port'), path: values.path, serverPid: integer('server-pid') });
  let result: LoadResult;
  if (values.scenario === 'echo') {
    result = await runEcho({
      ...common(),
      connections: integer('connections'),
      inflight: Math.max(1, integer('inflight')),
      payloadBytes: integer('payload-bytes'),
      binary: values.binary,
      deflate: values.deflate,
      variants: Math.max(1, integer('deflate-variants')),
      warmupMs: integer('warmup-ms'),
      durationMs: integer('duration-ms'),
      maxMessages: integer('max-messages'),
    });
  } else if (values.scenario === 'idle') {
    result = await runIdle({
      ...common(),
      connections: integer('connections'),
      batchSize: Math.max(1, integer('batch-size')),
      warmupConnections: integer('warmup-connections'),
      settleMs: integer('settle-ms'),
      deflate: values.deflate,
      variants: Math.max(1, integer('deflate-variants')),
      payloadBytes: integer('payload-bytes'),
      idleMessage: values['idle-message'],
    });
  } else if (values.scenario === 'subscribe') {
    // Long-running: answers commands on stdin until `exit` (see runSubscribers); no result line.
    return runSubscribers({
      host: values.host,
      port: integer('port'),
      path: values.path,
      connections: integer('connections'),
      batchSize: Math.max(1, integer('batch-size')),
      payloadBytes: integer('payload-bytes'),
    });
  } else if (values.scenario === 'publish') {
    return runPublisher({
      host: values.host,
      port: integer('port'),
      path: values.path,
      payloadBytes: integer('payload-bytes'),
      inflight: Math.max(1, integer('inflight')),
      maxMessages: integer('max-messages'),
      publishers: Math.max(1, integer('publishers')),
    });
  } else {
    throw new RangeError('--scenario must be echo, idle, subscribe or publish');
  }
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
}

main().catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  // Broadcast workers talk JSON lines to run.ts; the echo and idle runs are read from stderr.
  if (process.argv.includes('subscribe') || process.argv.includes('publish')) emit({ event: 'error', message });
  process.stderr.write(`load: ${message}\n`);
  process.exit(1);
});
