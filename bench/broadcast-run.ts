// One broadcast measurement: several long-running load processes (subscribers, then one publisher) driven through
// stdin commands, one measured window per publisher in-flight count K, then a drain that checks every delivery.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import type { WorkerEvent } from './load.js';
import { readCpuSplit, readRssKiB } from './proc-stats.js';
import { exited, stopChild, track, waitForExit } from './child-processes.js';
import { CHILD_ENV, LOAD_SCRIPT, failureDetail, type RunningServer } from './servers.js';
import { PHASE_SETTLE_MS, type BroadcastPlan, type Scenario } from './scenarios.js';

/** CLOCK_MONOTONIC in microseconds, as in load-echo.ts (the clock V8 stamps CPU profile samples with). */
const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

/** One measured window of a broadcast run, at one publisher in-flight count K. */
export interface BroadcastPhase {
  inflight: number;
  /** Messages received by all subscribers per second over the window (the publisher's own copies not counted). */
  deliveredPerSecond: number;
  /** Messages the publisher sent per second over the window. */
  publishedPerSecond: number;
  /** deliveredPerSecond / (publishedPerSecond x subscribers): ~100% when the subscribers keep up. */
  deliveryCompleteness: number;
  serverCpuPercent: number;
  /** The kernel part of serverCpuPercent: syscalls and, on loopback, most of the TCP stack for what it sends. */
  serverSystemCpuPercent: number;
  /** Every load process together (subscribers and publisher), in % of one core. */
  loadCpuPercent: number;
  /** The busiest single load process: >= 90% means that process may have set the pace. */
  loadCpuMaxPercent: number;
  hitMessageCap: boolean;
  /** The window on CLOCK_MONOTONIC in microseconds (what `--profile` keeps samples from). */
  windowStartUs: number;
  windowEndUs: number;
}

export interface BroadcastResult {
  kind: 'broadcast';
  subscribers: number;
  loadProcesses: number;
  phases: BroadcastPhase[];
  /** After the publisher stopped: time until every subscriber had every message. */
  drainMs: number;
  /** Messages published over the whole run; every subscriber received exactly this many. */
  published: number;
  openMs: number;
  connectRetries: number;
  rssIdleKiB: number;
  /** Server RSS at the end of the last measured window. */
  rssBusyKiB: number;
}

type EventOf<E extends WorkerEvent['event']> = Extract<WorkerEvent, { event: E }>;

/** One load.js process in subscribe or publish mode: commands go in on stdin, JSON events come back on stdout. */
class LoadWorker {
  readonly child: ChildProcess;
  readonly label: string;
  readonly #events: WorkerEvent[] = [];
  #wake: (() => void) | undefined;
  #failure: Error | undefined;
  #exitExpected = false;
  #stderr = '';

  constructor(label: string, args: string[], server: RunningServer) {
    this.label = label;
    this.child = track(spawn(process.execPath, [LOAD_SCRIPT, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: CHILD_ENV }));
    this.child.stdin?.on('error', () => {}); // EPIPE once it has exited; the exit handler reports that
    this.child.stderr?.setEncoding('utf8').on('data', (text: string) => (this.#stderr = (this.#stderr + text).slice(-4000)));
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      let event: WorkerEvent;
      try {
        event = JSON.parse(line) as WorkerEvent;
      } catch {
        return this.#fail(new Error(`${label} printed something that is not JSON: ${line.slice(0, 200)}`));
      }
      if (event.event === 'error') return this.#fail(new Error(`${label}: ${event.message}`));
      this.#events.push(event);
      this.#wake?.();
    });
    this.child.once('error', (error) => this.#fail(new Error(`${label} failed to start: ${error.message}`)));
    this.child.once('exit', (code, signal) => {
      if (this.#exitExpected) return;
      const detail = failureDetail(this.#stderr, server);
      this.#fail(new Error(`${label} exited (${signal ?? code})${detail === '' ? '' : `: ${detail}`}`));
    });
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    this.#wake?.();
  }

  send(command: `go ${number}` | 'mark' | 'stop' | 'exit'): void {
    if (command === 'exit') this.#exitExpected = true;
    this.child.stdin?.write(`${command}\n`);
  }

  /** The next event, which must be `want`; rejects on a worker error, an unexpected exit or after `timeoutMs`. */
  async next<E extends WorkerEvent['event']>(want: E, timeoutMs: number): Promise<EventOf<E>> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      if (this.#failure !== undefined) throw this.#failure;
      const event = this.#events.shift();
      if (event !== undefined) {
        if (event.event !== want) throw new Error(`${this.label}: expected "${want}", got "${event.event}"`);
        return event as EventOf<E>;
      }
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`${this.label}: no "${want}" within ${Math.round(timeoutMs / 1000)} s`);
      await new Promise<void>((wake) => {
        const timer = setTimeout(wake, left);
        this.#wake = () => {
          clearTimeout(timer);
          wake();
        };
      });
      this.#wake = undefined;
    }
  }

  async exit(): Promise<void> {
    if (exited(this.child)) return;
    this.send('exit');
    if (!(await waitForExit(this.child, 5000))) await stopChild(this.child, 1000);
  }
}

interface BroadcastMark {
  serverCpu: { user: number; system: number };
  at: number;
  atUs: number;
  subscribers: EventOf<'mark'>[];
  publisher: EventOf<'published'>;
}

const MARK_TIMEOUT_MS = 15_000;

async function markAll(server: RunningServer, subscribers: LoadWorker[], publisher: LoadWorker): Promise<BroadcastMark> {
  const serverCpu = readCpuSplit(server.pid);
  const at = performance.now();
  const atUs = monotonicUs();
  for (const worker of [...subscribers, publisher]) worker.send('mark');
  const [subscriberMarks, publisherMark] = await Promise.all([
    Promise.all(subscribers.map((worker) => worker.next('mark', MARK_TIMEOUT_MS))),
    publisher.next('published', MARK_TIMEOUT_MS),
  ]);
  return { serverCpu, at, atUs, subscribers: subscriberMarks, publisher: publisherMark };
}

/** Splits `total` into `parts` near-equal shares. */
function shares(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0));
}

/** Rates from two marks. Each process's rate uses its own clock, so processes that answered late do not skew it. */
function phaseResult(inflight: number, start: BroadcastMark, end: BroadcastMark, subscribers: number): BroadcastPhase {
  let delivered = 0;
  let loadCpuPercent = 0;
  let loadCpuMaxPercent = 0;
  for (const [i, first] of start.subscribers.entries()) {
    const last = end.subscribers[i]!;
    const seconds = (last.wallMs - first.wallMs) / 1000;
    delivered += (last.received - first.received) / seconds;
    const cpu = (last.cpuMicros - first.cpuMicros) / 1e4 / seconds;
    loadCpuPercent += cpu;
    loadCpuMaxPercent = Math.max(loadCpuMaxPercent, cpu);
  }
  const publisherSeconds = (end.publisher.wallMs - start.publisher.wallMs) / 1000;
  const publisherCpu = (end.publisher.cpuMicros - start.publisher.cpuMicros) / 1e4 / publisherSeconds;
  loadCpuPercent += publisherCpu;
  loadCpuMaxPercent = Math.max(loadCpuMaxPercent, publisherCpu);
  const publishedPerSecond = (end.publisher.published - start.publisher.published) / publisherSeconds;
  const windowSeconds = (end.at - start.at) / 1000;
  const serverTotal = (mark: BroadcastMark): number => mark.serverCpu.user + mark.serverCpu.system;
  return {
    inflight,
    deliveredPerSecond: delivered,
    publishedPerSecond,
    deliveryCompleteness: publishedPerSecond > 0 ? delivered / (publishedPerSecond * subscribers) : 0,
    serverCpuPercent: ((serverTotal(end) - serverTotal(start)) * 100) / windowSeconds,
    serverSystemCpuPercent: ((end.serverCpu.system - start.serverCpu.system) * 100) / windowSeconds,
    loadCpuPercent,
    loadCpuMaxPercent,
    hitMessageCap: end.publisher.hitMessageCap,
    windowStartUs: start.atUs,
    windowEndUs: end.atUs,
  };
}

/** Runs one broadcast measurement; every worker it starts is added to `workers` (so a deadline can kill them). */
async function runBroadcast(server: RunningServer, plan: BroadcastPlan, settleMs: number, workers: LoadWorker[]): Promise<BroadcastResult> {
  const common = ['--port', String(server.port), '--host', '127.0.0.1', '--path', '/chat', '--payload-bytes', String(plan.payloadBytes)];
  try {
    // Subscribers first, one process at a time (in batches of 200 inside each), then the publisher: it is the
    // last connection in both servers' sets, so its own copy comes back after every subscriber's was written.
    const subscriberShares = shares(plan.subscribers, plan.loadProcesses);
    const subscribers: LoadWorker[] = [];
    const openStart = performance.now();
    let connectRetries = 0;
    for (const [index, share] of subscriberShares.entries()) {
      const worker = new LoadWorker(`subscriber process ${index + 1}`, [...common, '--scenario', 'subscribe', '--connections', String(share), '--batch-size', '200'], server);
      workers.push(worker);
      subscribers.push(worker);
      connectRetries += (await worker.next('ready', 60_000)).connectRetries;
    }
    const maxInflight = Math.max(...plan.inflight);
    const publisher = new LoadWorker(
      'publisher',
      [...common, '--scenario', 'publish', '--inflight', String(maxInflight), '--max-messages', String(plan.maxMessages), '--publishers', String(plan.publishers)],
      server,
    );
    workers.push(publisher);
    connectRetries += (await publisher.next('ready', 30_000)).connectRetries;
    const openMs = performance.now() - openStart;
    await sleep(settleMs);
    const rssIdleKiB = readRssKiB(server.pid);

    // One measured window per K, on the same connections: the first after the full warm-up, the others after a
    // short settling time at the new K.
    const phases: BroadcastPhase[] = [];
    for (const [index, inflight] of plan.inflight.entries()) {
      publisher.send(`go ${inflight}`);
      await sleep(index === 0 ? plan.warmupMs : PHASE_SETTLE_MS);
      const start = await markAll(server, subscribers, publisher);
      await sleep(plan.durationMs);
      const end = await markAll(server, subscribers, publisher);
      phases.push(phaseResult(inflight, start, end, plan.subscribers));
    }
    const rssBusyKiB = readRssKiB(server.pid);

    // Stop, then wait until every subscriber has every message: nothing lost, nothing left queued.
    publisher.send('stop');
    const stopped = await publisher.next('stopped', 30_000);
    const drainStart = performance.now();
    let drainMs: number;
    for (;;) {
      for (const worker of subscribers) worker.send('mark');
      const marks = await Promise.all(subscribers.map((worker) => worker.next('mark', MARK_TIMEOUT_MS)));
      const received = marks.reduce((sum, mark) => sum + mark.received, 0);
      const expected = stopped.published * plan.subscribers;
      const unexpected = marks.reduce((sum, mark) => sum + mark.unexpectedFrames, 0);
      if (unexpected > 0) throw new Error(`subscribers got ${unexpected} unexpected frames (last: ${marks.map((m) => m.lastUnexpected).find((u) => u !== '')})`);
      if (received > expected) throw new Error(`subscribers received ${received - expected} more messages than were published`);
      if (received === expected) {
        const unverified = plan.subscribers - marks.reduce((sum, mark) => sum + mark.verified, 0);
        if (unverified > 0) throw new Error(`${unverified} subscribers never had their first message checked`);
        drainMs = performance.now() - drainStart;
        break;
      }
      if (performance.now() - drainStart > 20_000) {
        throw new Error(`after 20 s, subscribers still miss ${expected - received} of ${expected} messages (lost or stuck in the server)`);
      }
      await sleep(10);
    }
    return {
      kind: 'broadcast',
      subscribers: plan.subscribers,
      loadProcesses: plan.loadProcesses,
      phases,
      drainMs,
      published: stopped.published,
      openMs,
      connectRetries,
      rssIdleKiB,
      rssBusyKiB,
    };
  } finally {
    await Promise.all(workers.map((worker) => worker.exit()));
  }
}

/** runBroadcast with a deadline: on timeout every worker it started is killed (they are tracked children). */
export async function runBroadcastBounded(server: RunningServer, scenario: Scenario, settleMs: number): Promise<BroadcastResult> {
  const workers: LoadWorker[] = [];
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      for (const worker of workers) if (!exited(worker.child)) worker.child.kill('SIGKILL');
      reject(new Error(`broadcast run timed out after ${Math.round(scenario.timeoutMs / 1000)} s`));
    }, scenario.timeoutMs);
  });
  const run = runBroadcast(server, scenario.broadcast!, settleMs, workers);
  run.catch(() => {}); // after a timeout its rejection (the killed workers) is expected and already reported
  try {
    return await Promise.race([run, timeout]);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (!exited(server.child)) throw error;
    const { exitCode, signalCode } = server.child;
    const tail = server.stderrTail();
    throw new Error(`the server exited (${signalCode ?? exitCode}) during the run${tail === '' ? '' : `: ${tail}`} (then: ${message})`);
  } finally {
    clearTimeout(timer);
  }
}
