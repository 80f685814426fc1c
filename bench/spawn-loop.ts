// The ceiling of exec-connections for any Node program (bench/bridges.ts): a bare Node process that does only
// what starting one program per connection costs with node:child_process — spawn `cat` (stdio piped, its own
// process group, as the process bridge does), one line through it checked byte for byte, stdin EOF, wait until it
// is reaped — C at a time, and no WebSocket, HTTP or logging at all. Its rate bounds what a Node server that
// starts a program per connection can reach on the machine; it prints the same JSON line as bridge-load.ts.
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { BridgeLoadOutput, BridgeLoadResult } from './bridge-load.js';
import { linePayload } from './bridge-client.js';
import { readTreeCpuSeconds } from './proc-tree.js';

/** A program that neither answers nor ends within this long fails the run. */
const STEP_TIMEOUT_MS = 10_000;

interface Options {
  program: string;
  concurrency: number;
  messageBytes: number;
  warmupMs: number;
  durationMs: number;
  maxCount: number;
}

function readOptions(): Options {
  const { values } = parseArgs({
    options: {
      program: { type: 'string' }, concurrency: { type: 'string', default: '8' }, 'message-bytes': { type: 'string', default: '64' },
      'warmup-ms': { type: 'string', default: '1000' }, 'duration-ms': { type: 'string', default: '5000' }, 'max-count': { type: 'string' },
    },
  });
  if (values.program === undefined) throw new RangeError('--program PATH is required (the program to start per connection, e.g. /usr/bin/cat)');
  const integer = (text: string | undefined, name: string): number => {
    const value = Number(text);
    if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`--${name} must be a positive integer (got ${String(text)})`);
    return value;
  };
  return {
    program: values.program, concurrency: integer(values.concurrency, 'concurrency'), messageBytes: integer(values['message-bytes'], 'message-bytes'),
    warmupMs: integer(values['warmup-ms'], 'warmup-ms'), durationMs: integer(values['duration-ms'], 'duration-ms'),
    maxCount: integer(values['max-count'], 'max-count'),
  };
}

/** One program: started, one line echoed and compared, stdin closed, reaped with its pipes closed. */
function oneProgram(options: Options, index: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const expected = linePayload(options.messageBytes, index);
    const child = spawn(options.program, [], { stdio: ['pipe', 'pipe', 'pipe'], detached: true, env: { PATH: '/usr/bin:/bin' } });
    const timer = setTimeout(() => {
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ }
      reject(new Error(`program ${index} did not echo and exit within ${STEP_TIMEOUT_MS} ms`));
    }, STEP_TIMEOUT_MS);
    const received: Buffer[] = [];
    let receivedBytes = 0;
    child.on('error', (error) => { clearTimeout(timer); reject(error); });
    child.stdout!.on('data', (chunk: Buffer) => {
      received.push(chunk);
      receivedBytes += chunk.length;
      if (receivedBytes >= expected.length + 1) child.stdin!.end();
    });
    child.stderr!.resume();
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const echoed = Buffer.concat(received);
      if (code !== 0) reject(new Error(`program ${index} ended with ${signal ?? `exit status ${code}`}`));
      else if (!echoed.equals(Buffer.concat([expected, Buffer.from('\n')]))) reject(new Error(`program ${index}: echo differs (${echoed.length} B)`));
      else resolve();
    });
    child.stdin!.on('error', () => {}); // a program that died surfaces in 'close'
    child.stdin!.write(Buffer.concat([expected, Buffer.from('\n')]));
  });
}

async function run(options: Options): Promise<BridgeLoadResult> {
  let started = 0;
  let completed = 0;
  let stopping = false;
  let failure: Error | undefined;
  const worker = async (): Promise<void> => {
    while (!stopping && started < options.maxCount) {
      await oneProgram(options, started++);
      completed++;
    }
  };
  const workers = Promise.all(Array.from({ length: options.concurrency }, () => worker())).then(
    () => undefined,
    (error: unknown) => { stopping = true; failure = error instanceof Error ? error : new Error(String(error)); },
  );
  const capped = (): boolean => started >= options.maxCount || failure !== undefined;
  const cpu = (): number => readTreeCpuSeconds(process.pid);
  const warmupEnd = performance.now() + options.warmupMs;
  while (performance.now() < warmupEnd && !capped()) await sleep(Math.min(50, warmupEnd - performance.now()));
  const start = { atMs: performance.now(), count: completed, cpu: cpu() };
  const windowEnd = start.atMs + options.durationMs;
  while (performance.now() < windowEnd && !capped()) await sleep(Math.min(20, Math.max(1, windowEnd - performance.now())));
  const end = { atMs: performance.now(), count: completed, cpu: cpu() };
  stopping = true;
  await workers;
  if (failure !== undefined) throw failure;
  const seconds = (end.atMs - start.atMs) / 1000;
  return {
    scenario: 'exec-connections', count: end.count - start.count, elapsedMs: end.atMs - start.atMs,
    ratePerSecond: (end.count - start.count) / seconds,
    // The spawning process and its programs: the same share of the work a bridge server's tree does.
    serverCpuPercent: ((end.cpu - start.cpu) / seconds) * 100,
    loadCpuPercent: 0,
    hitCap: started >= options.maxCount, protocol: '',
  };
}

function emit(output: BridgeLoadOutput): void {
  process.stdout.write(`${JSON.stringify(output)}\n`, () => process.exit(output.ok ? 0 : 1));
}

async function main(): Promise<void> {
  const options = readOptions();
  setTimeout(() => emit({ ok: false, error: 'spawn loop timed out' }), options.warmupMs + options.durationMs + 60_000).unref();
  emit({ ok: true, result: await run(options) });
}

main().catch((error: unknown) => emit({ ok: false, error: error instanceof Error ? error.message : String(error) }));
