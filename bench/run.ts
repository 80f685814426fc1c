// `npm run bench`: starts each server under test as its own child process, drives it with the load generator
// (another child), and prints per-scenario tables with switchyard/ws ratios against the targets. Servers run
// one at a time, in a mirrored order across rounds (ABBA) because the machine is shared and noisy.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { EchoResult, IdleResult, LoadResult, WorkerEvent } from './load.js';
import type { ProfileWindow } from './profile-summary.js';
import { readCpuSplit, readRssKiB } from './proc-stats.js';
import { summariseProfile } from './profile-summary.js';
import { bridgeSuite } from './bridges.js';
import { clientSuite } from './client-bench.js';
import type { BenchSuite, Verdict } from './suite.js';
import { killAllChildren, stopChild, track, waitForExit } from './child-processes.js';

/** Suites comparing against other peers (websocketd, websockify, the ws client); each owns its processes. */
const SUITES: readonly BenchSuite[] = [clientSuite, bridgeSuite];

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const SWITCHYARD_CLI = resolve(BENCH_DIR, '../src/cli/main.js');
const LOAD_SCRIPT = join(BENCH_DIR, 'load.js');

// ---------------------------------------------------------------------------------------------------------------
// Child processes: every one we start is tracked (child-processes.ts) and killed on any exit path.

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    process.stderr.write(`\nbench: ${signal}, stopping child processes\n`);
    killAllChildren();
    process.exit(130);
  });
}
process.on('uncaughtException', (error) => {
  process.stderr.write(`bench: ${error.stack ?? error.message}\n`);
  killAllChildren();
  process.exit(1);
});

// ---------------------------------------------------------------------------------------------------------------
// Servers under test.

/** 'switchyard-l6' is switchyard with --deflate-level 6 (ws's zlib level): the deflate-echo fairness row. */
type ServerName = 'switchyard' | 'switchyard-l6' | 'ws' | 'tcp';
/**
 * What the servers do: echo every message (echo and idle scenarios), echo with permessage-deflate accepted
 * (deflate scenarios), or broadcast every message to every connection.
 */
type ServerMode = 'echo' | 'deflate' | 'broadcast';

/** Messages at least this long are compressed: switchyard's default, passed explicitly to both servers. */
const DEFLATE_THRESHOLD_BYTES = 1024;
/** The deflate scenarios' message size: at the threshold, so every message is compressed both ways. */
const DEFLATE_MESSAGE_BYTES = 1024;
/** deflate-echo: connections, and messages in flight on each. */
const DEFLATE_ECHO_CONNECTIONS = 100;
const DEFLATE_ECHO_INFLIGHT = 4;

interface ServerSpec {
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

function serverSpecs(candidate: 'switchyard' | 'ws', mode: ServerMode): Record<ServerName, ServerSpec> {
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

const CHILD_ENV = { ...process.env, WS_NO_BUFFER_UTIL: '1', WS_NO_UTF_8_VALIDATE: '1' };

interface RunningServer {
  child: ChildProcess;
  pid: number;
  port: number;
  stderrTail: () => string;
}

function startServer(spec: ServerSpec, nodeArgs: string[]): Promise<RunningServer> {
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

// ---------------------------------------------------------------------------------------------------------------
// Scenarios.

const SCENARIO_IDS = ['echo64', 'echo1m', 'idle', 'idle10k', 'broadcast1k', 'broadcast10k', 'deflate-echo', 'deflate-idle'] as const;
type ScenarioId = (typeof SCENARIO_IDS)[number];

/** How a scenario's switchyard/ws ratio is judged. */
interface Target {
  /** Shown in the `targets` block. */
  description: string;
  /** 'at-least': higher is better (throughput); 'at-most': lower is better (memory). */
  direction: 'at-least' | 'at-most';
  ratio: number;
}

interface BroadcastPlan {
  subscribers: number;
  /** Subscriber connections are spread over this many load processes (plus one publisher process). */
  loadProcesses: number;
  /** Messages the publisher keeps outstanding (its own copy coming back releases the next one): one window each. */
  inflight: number[];
  payloadBytes: number;
  /** Publisher connections (1 in the default scenarios; more is a diagnostic, see load.ts runPublisher). */
  publishers: number;
  warmupMs: number;
  durationMs: number;
  /** Hard cap on published messages, so the run is bounded in count as well as in time. */
  maxMessages: number;
}

interface Scenario {
  id: ScenarioId;
  kind: 'echo' | 'idle' | 'broadcast';
  /** How the servers are started (see ServerMode). */
  mode: ServerMode;
  /** The servers compared, candidates first, ws last (the tcp reference is added where `reference` says). */
  servers: ServerName[];
  /** Whether the raw TCP echo runs as a reference line (not for broadcast or permessage-deflate). */
  reference: boolean;
  title: string;
  /** echo and idle: arguments for one load.js process. */
  loadArgs: string[];
  broadcast?: BroadcastPlan;
  /** Connections open at once, for the ulimit -n check. */
  connections: number;
  timeoutMs: number;
  target: Target;
}

interface Settings {
  warmupMs: number;
  durationMs: number;
  idleConnections: number;
  settleMs: number;
  broadcastInflight: number[];
  /** Measured time per K in a broadcast run. */
  broadcastDurationMs: number;
  broadcastPublishers: number;
  /** 0: two subscriber processes, or one per 5,000 subscribers if that is more. */
  broadcastLoadProcesses: number;
  deflateIdleConnections: number;
  /** Different JSON messages each deflate connection sends in turn (1: the same message every time). */
  deflateVariants: number;
}

const SUBSCRIBERS_PER_LOAD_PROCESS = 5000;

/** CLOCK_MONOTONIC in microseconds, as in load.ts (not imported from there: load.js runs main() when loaded). */
const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

function scenarios(settings: Settings): Record<ScenarioId, Scenario> {
  const timing = ['--warmup-ms', String(settings.warmupMs), '--duration-ms', String(settings.durationMs)];
  const echoTimeoutMs = settings.warmupMs + settings.durationMs + 30_000;
  const idle = (id: ScenarioId, connections: number): Scenario => ({
    id,
    kind: 'idle',
    mode: 'echo',
    servers: ['switchyard', 'ws'],
    reference: true,
    title: `${connections.toLocaleString('en-US')} idle connections (opened in batches of 200)`,
    loadArgs: ['--scenario', 'idle', '--connections', String(connections), '--batch-size', '200', '--warmup-connections', '50', '--settle-ms', String(settings.settleMs)],
    connections,
    timeoutMs: 90_000,
    target: { description: `KiB per idle connection at ${connections.toLocaleString('en-US')} connections`, direction: 'at-most', ratio: 1 },
  });
  const broadcast = (id: ScenarioId, subscribers: number): Scenario => {
    const plan: BroadcastPlan = {
      subscribers,
      loadProcesses: settings.broadcastLoadProcesses || Math.max(2, Math.ceil(subscribers / SUBSCRIBERS_PER_LOAD_PROCESS)),
      inflight: settings.broadcastInflight,
      payloadBytes: 64,
      publishers: settings.broadcastPublishers,
      warmupMs: settings.warmupMs,
      durationMs: settings.broadcastDurationMs,
      maxMessages: Math.ceil(100_000_000 / subscribers),
    };
    return {
      id,
      kind: 'broadcast',
      mode: 'broadcast',
      servers: ['switchyard', 'ws'],
      reference: false,
      title:
        `broadcast 64 B text to ${subscribers.toLocaleString('en-US')} subscribers, ` +
        `${plan.publishers === 1 ? '1 publisher' : `${plan.publishers} publisher connections (round robin)`} with K = ${plan.inflight.join(', then ')} in flight ` +
        `(${plan.loadProcesses} subscriber process${plan.loadProcesses === 1 ? '' : 'es'} + 1 publisher process)`,
      loadArgs: [],
      broadcast: plan,
      connections: subscribers + plan.publishers,
      // Opening (sequential processes, 60 s each at most) + warm-up + run + drain + stop, with room to spare.
      timeoutMs: plan.loadProcesses * 60_000 + plan.warmupMs + plan.inflight.length * (plan.durationMs + PHASE_SETTLE_MS) + 60_000,
      target: { description: `broadcast delivered msg/s to ${subscribers.toLocaleString('en-US')} subscribers`, direction: 'at-least', ratio: 2 },
    };
  };
  return {
    echo64: {
      id: 'echo64',
      kind: 'echo',
      mode: 'echo',
      servers: ['switchyard', 'ws'],
      reference: true,
      title: '64 B text echo, 100 connections x 16 in flight',
      loadArgs: ['--scenario', 'echo', '--connections', '100', '--inflight', '16', '--payload-bytes', '64', '--max-messages', '50000000', ...timing],
      connections: 100,
      timeoutMs: echoTimeoutMs,
      target: { description: '64 B echo msg/s', direction: 'at-least', ratio: 2 },
    },
    echo1m: {
      id: 'echo1m',
      kind: 'echo',
      mode: 'echo',
      servers: ['switchyard', 'ws'],
      reference: true,
      title: '1 MiB binary echo, 4 connections x 2 in flight',
      loadArgs: ['--scenario', 'echo', '--connections', '4', '--inflight', '2', '--payload-bytes', String(1 << 20), '--binary', '--max-messages', '100000', ...timing],
      connections: 4,
      timeoutMs: echoTimeoutMs,
      target: { description: '1 MiB echo msg/s', direction: 'at-least', ratio: 1.5 },
    },
    idle: idle('idle', settings.idleConnections),
    idle10k: idle('idle10k', 10_000),
    broadcast1k: broadcast('broadcast1k', 1000),
    broadcast10k: broadcast('broadcast10k', 10_000),
    'deflate-echo': {
      id: 'deflate-echo',
      kind: 'echo',
      mode: 'deflate',
      // Default switchyard (zlib level 1), switchyard at ws's level 6 (the fairness row), ws (level 6).
      servers: ['switchyard', 'switchyard-l6', 'ws'],
      reference: false,
      title:
        `permessage-deflate echo, ${DEFLATE_MESSAGE_BYTES} B JSON text compressed both ways, ${DEFLATE_ECHO_CONNECTIONS} connections x ` +
        `${DEFLATE_ECHO_INFLIGHT} in flight (${settings.deflateVariants === 1 ? 'the same message every time' : `${settings.deflateVariants} different messages in turn`})`,
      loadArgs: [
        '--scenario', 'echo', '--deflate', '--deflate-variants', String(settings.deflateVariants),
        '--connections', String(DEFLATE_ECHO_CONNECTIONS), '--inflight', String(DEFLATE_ECHO_INFLIGHT),
        '--payload-bytes', String(DEFLATE_MESSAGE_BYTES), '--max-messages', '20000000', ...timing,
      ],
      connections: DEFLATE_ECHO_CONNECTIONS,
      timeoutMs: echoTimeoutMs,
      target: { description: 'permessage-deflate echo msg/s', direction: 'at-least', ratio: 1 },
    },
    'deflate-idle': {
      id: 'deflate-idle',
      kind: 'idle',
      mode: 'deflate',
      servers: ['switchyard', 'ws'],
      reference: false,
      title:
        `${settings.deflateIdleConnections.toLocaleString('en-US')} idle permessage-deflate connections: negotiated and unused, ` +
        `then after one ${DEFLATE_MESSAGE_BYTES} B compressed message each way`,
      loadArgs: [
        '--scenario', 'idle', '--deflate', '--idle-message', '--deflate-variants', String(settings.deflateVariants),
        '--payload-bytes', String(DEFLATE_MESSAGE_BYTES), '--connections', String(settings.deflateIdleConnections),
        '--batch-size', '200', '--warmup-connections', '50', '--settle-ms', String(settings.settleMs),
      ],
      connections: settings.deflateIdleConnections,
      timeoutMs: 90_000,
      target: { description: 'KiB per idle permessage-deflate connection', direction: 'at-most', ratio: 1 },
    },
  };
}

function runLoad(server: RunningServer, scenario: Scenario): Promise<LoadResult> {
  const child = track(
    spawn(process.execPath, [LOAD_SCRIPT, '--port', String(server.port), '--server-pid', String(server.pid), ...scenario.loadArgs], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: CHILD_ENV,
    }),
  );
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  child.stderr?.setEncoding('utf8').on('data', (text: string) => (stderr = (stderr + text).slice(-4000)));
  return new Promise((resolveLoad, rejectLoad) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      rejectLoad(new Error(`load generator timed out after ${scenario.timeoutMs} ms`));
    }, scenario.timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      rejectLoad(error);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      const line = stdout.trim().split('\n').pop() ?? '';
      if (code === 0 && line.startsWith('{')) return resolveLoad(JSON.parse(line) as LoadResult);
      const serverDied = server.child.exitCode !== null || server.child.signalCode !== null;
      const detail = [stderr.trim(), serverDied ? `server exited (${server.child.signalCode ?? server.child.exitCode}): ${server.stderrTail()}` : '']
        .filter((part) => part !== '')
        .join('; ');
      rejectLoad(new Error(`load generator failed (${signal ?? code}): ${detail || 'no output'}`));
    });
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Broadcast: several long-running load processes (subscribers, then one publisher) driven through stdin commands.

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

type RunResult = LoadResult | BroadcastResult;

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
      const serverDied = server.child.exitCode !== null || server.child.signalCode !== null;
      const detail = [this.#stderr.trim(), serverDied ? `server exited (${server.child.signalCode ?? server.child.exitCode}): ${server.stderrTail()}` : '']
        .filter((part) => part !== '')
        .join('; ');
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
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
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

const PHASE_SETTLE_MS = 500;

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
async function runBroadcastBounded(server: RunningServer, scenario: Scenario, settleMs: number): Promise<BroadcastResult> {
  const workers: LoadWorker[] = [];
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      for (const worker of workers) if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGKILL');
      reject(new Error(`broadcast run timed out after ${Math.round(scenario.timeoutMs / 1000)} s`));
    }, scenario.timeoutMs);
  });
  const run = runBroadcast(server, scenario.broadcast!, settleMs, workers);
  run.catch(() => {}); // after a timeout its rejection (the killed workers) is expected and already reported
  try {
    return await Promise.race([run, timeout]);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const { exitCode, signalCode } = server.child;
    if (exitCode === null && signalCode === null) throw error;
    const tail = server.stderrTail();
    throw new Error(`the server exited (${signalCode ?? exitCode}) during the run${tail === '' ? '' : `: ${tail}`} (then: ${message})`);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Formatting.

const integerFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const formatInteger = (value: number): string => integerFormat.format(value);
const formatFixed = (value: number, digits: number): string => value.toFixed(digits);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function formatTable(headers: string[], rows: string[][], leftAligned: number[] = [0]): string[] {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((cell, column) => (leftAligned.includes(column) ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)];
}

// ---------------------------------------------------------------------------------------------------------------
// Main.

interface RunRecord {
  scenario: ScenarioId;
  server: ServerName;
  round: number;
  result?: RunResult;
  error?: string;
}

const DEFAULT_BROADCAST_INFLIGHT = [1, 16];

const USAGE = `usage: npm run bench -- [options]
  --check                    exit 1 when a target is missed (default: print it, exit 0)
  --quick                    shorter runs (0.5 s warm-up, 2 s echo / 1.5 s broadcast windows, 1,000 connections
                             in idle and deflate-idle), for smoke tests
  --rounds N                 rounds, each server once per round, order mirrored every round (default 2)
  --warmup-ms N              warm-up before each echo and broadcast measurement (default 1000)
  --duration-ms N            measured time per echo run (default 5000)
  --broadcast-duration-ms N  measured time per K in each broadcast run (default 3000)
  --broadcast-inflight LIST  comma list of K, the messages the broadcast publisher keeps outstanding; one measured
                             window per K on the same connections (default ${DEFAULT_BROADCAST_INFLIGHT.join(',')})
  --broadcast-publishers N   diagnostic: N publisher connections taking turns (default 1, as in the targets), so
                             messages reach the server on different sockets instead of together in one chunk
  --load-processes N         subscriber processes per broadcast run (default 2, or one per ${SUBSCRIBERS_PER_LOAD_PROCESS.toLocaleString('en-US')} subscribers if more)
  --idle-connections N       connections in the idle scenario (default 5000; idle10k always opens 10,000)
  --deflate-idle-connections N  connections in deflate-idle (default 2000)
  --deflate-variants N       different 1 KiB JSON messages each deflate-echo connection sends in turn (default 64;
                             1 sends the same message every time, which context takeover makes nearly free to compress)
  --scenarios LIST           comma list of ${SCENARIO_IDS.join(',')},
                             ${SUITES.flatMap((suite) => suite.scenarios).join(',')} (default all)
${SUITES.flatMap((suite) => suite.scenarios.map((id) => `                               ${id}: ${suite.help[id] ?? ''}`)).join('\n')}
  --no-reference             skip the raw TCP echo reference line (echo and idle; broadcast and deflate have none)
  --candidate ws             put ws in switchyard's slot (harness self-check: ratios should be near 1.00x)
  --profile LIST             run these servers (switchyard,switchyard-l6,ws,tcp) under node --cpu-prof and print the top
                             functions; profiling slows the server, so treat those numbers as diagnostics only
  --json FILE                also write every run's raw result to FILE`;


function openFilesLimit(): number {
  return Number(/^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? Infinity);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      check: { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      'warmup-ms': { type: 'string' },
      'duration-ms': { type: 'string' },
      'idle-connections': { type: 'string' },
      scenarios: { type: 'string', default: [...SCENARIO_IDS, ...SUITES.flatMap((suite) => suite.scenarios)].join(',') },
      'broadcast-inflight': { type: 'string' },
      'broadcast-duration-ms': { type: 'string' },
      'broadcast-publishers': { type: 'string' },
      'load-processes': { type: 'string' },
      'deflate-idle-connections': { type: 'string' },
      'deflate-variants': { type: 'string' },
      'no-reference': { type: 'boolean', default: false },
      candidate: { type: 'string', default: 'switchyard' },
      profile: { type: 'string', default: '' },
      'profile-dir': { type: 'string', default: join(tmpdir(), `switchyard-bench-profiles-${process.pid}`) },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const positiveInteger = (raw: string | undefined, fallback: number, flag: string): number => {
    if (raw === undefined) return fallback;
    const parsed = Number(raw);
    if (!Number.isInteger(parsed) || parsed <= 0) throw new RangeError(`${flag} must be a positive integer, got "${raw}"`);
    return parsed;
  };
  const settings: Settings = {
    warmupMs: positiveInteger(values['warmup-ms'], values.quick ? 500 : 1000, '--warmup-ms'),
    durationMs: positiveInteger(values['duration-ms'], values.quick ? 2000 : 5000, '--duration-ms'),
    idleConnections: positiveInteger(values['idle-connections'], values.quick ? 1000 : 5000, '--idle-connections'),
    settleMs: 1000,
    broadcastPublishers: positiveInteger(values['broadcast-publishers'], 1, '--broadcast-publishers'),
    broadcastDurationMs: positiveInteger(values['broadcast-duration-ms'], values.quick ? 1500 : 3000, '--broadcast-duration-ms'),
    broadcastInflight: (values['broadcast-inflight'] ?? DEFAULT_BROADCAST_INFLIGHT.join(','))
      .split(',')
      .map((raw) => positiveInteger(raw.trim(), 0, '--broadcast-inflight'))
      .filter((k, index, all) => all.indexOf(k) === index),
    broadcastLoadProcesses: values['load-processes'] === undefined ? 0 : positiveInteger(values['load-processes'], 0, '--load-processes'),
    deflateIdleConnections: positiveInteger(values['deflate-idle-connections'], values.quick ? 1000 : 2000, '--deflate-idle-connections'),
    deflateVariants: positiveInteger(values['deflate-variants'], 64, '--deflate-variants'),
  };
  const rounds = positiveInteger(values.rounds, 2, '--rounds');
  if (values.candidate !== 'switchyard' && values.candidate !== 'ws') throw new RangeError('--candidate must be switchyard or ws');
  const candidate = values.candidate;
  const specsFor = (scenario: Scenario): Record<ServerName, ServerSpec> => serverSpecs(candidate, scenario.mode);
  const specs = serverSpecs(candidate, 'echo'); // labels are the same in both modes
  const allScenarios = scenarios(settings);
  const selected = values.scenarios.split(',').map((id) => id.trim()).filter((id) => id !== '');
  const suiteIds = new Set(SUITES.flatMap((suite) => suite.scenarios));
  for (const id of selected) {
    if (!(id in allScenarios) && !suiteIds.has(id)) {
      throw new RangeError(`--scenarios: unknown scenario "${id}" (known: ${[...SCENARIO_IDS, ...suiteIds].join(', ')})`);
    }
  }
  const scenarioList = selected.filter((id) => id in allScenarios).map((id) => allScenarios[id as ScenarioId]);
  const suiteRuns = SUITES.map((suite) => ({ suite, selected: suite.scenarios.filter((id) => selected.includes(id)) })).filter((run) => run.selected.length > 0);
  const profiled = new Set(values.profile.split(',').map((name) => name.trim()).filter((name) => name !== ''));
  for (const name of profiled) if (!(name in specs)) throw new RangeError(`--profile: unknown server "${name}"`);

  if (candidate === 'switchyard' && !existsSync(SWITCHYARD_CLI)) {
    process.stderr.write(`bench: ${SWITCHYARD_CLI} not found; build the server first (npm run build)\n`);
    return 1;
  }
  // Every process (server, each load process) inherits our limit; the server holds every connection at once.
  const limit = openFilesLimit();
  for (const scenario of scenarioList) {
    if (limit < scenario.connections + 500) {
      process.stderr.write(`bench: ulimit -n is ${limit}; ${scenario.id} needs more than ${scenario.connections + 500} (raise it or leave ${scenario.id} out with --scenarios)\n`);
      return 1;
    }
  }

  const withReference = !values['no-reference'];
  // Round 1 runs the reference (if any), the candidates, then ws; every other round the mirror image.
  const orderFor = (round: number, scenario?: Scenario): ServerName[] => {
    const servers = scenario?.servers ?? ['switchyard', 'ws'];
    const order: ServerName[] = withReference && (scenario?.reference ?? true) ? ['tcp', ...servers] : [...servers];
    return round % 2 === 0 ? order : order.reverse();
  };

  const cpuInfo = cpus();
  process.stdout.write(
    `switchyard bench: node ${process.version}, ${cpuInfo.length} CPUs (${cpuInfo[0]?.model.trim() ?? 'unknown'}), ` +
      `load average ${loadavg().map((value) => value.toFixed(2)).join(' ')}, ulimit -n ${limit}\n` +
      `${rounds} rounds, order ${Array.from({ length: rounds }, (_, round) => orderFor(round).map((name) => specs[name].label).join(', ')).join(' | ')}` +
      ` (broadcast and deflate: no tcp reference; deflate-echo adds switchyard L6 next to switchyard)\n` +
      `echo runs: ${settings.warmupMs} ms warm-up + ${settings.durationMs} ms measured; broadcast runs: ${settings.warmupMs} ms warm-up + ` +
      `${settings.broadcastDurationMs} ms measured per K (K = ${settings.broadcastInflight.join(', ')})\n`,
  );
  if (candidate === 'ws') process.stdout.write('self-check: the candidate slot runs ws, so every ratio should be near 1.00x\n');
  if (profiled.size > 0) process.stdout.write(`profiling ${[...profiled].join(', ')}: their numbers are slowed by the profiler\n`);
  process.stdout.write('\n');

  const records: RunRecord[] = [];
  const startedAt = performance.now();
  for (const scenario of scenarioList) {
    const scenarioStart = performance.now();
    process.stdout.write(`running ${scenario.id}: ${scenario.title}\n`);
    const scenarioSpecs = specsFor(scenario);
    for (let round = 0; round < rounds; round++) {
      for (const name of orderFor(round, scenario)) {
        const spec = scenarioSpecs[name];
        const record: RunRecord = { scenario: scenario.id, server: name, round };
        const profileDir = join(values['profile-dir'], `${scenario.id}-${name}-r${round + 1}`);
        const nodeArgs = profiled.has(name) ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
        if (profiled.has(name)) mkdirSync(profileDir, { recursive: true });
        let server: RunningServer | undefined;
        try {
          server = await startServer(spec, nodeArgs);
          record.result = scenario.kind === 'broadcast' ? await runBroadcastBounded(server, scenario, 500) : await runLoad(server, scenario);
        } catch (error) {
          record.error = error instanceof Error ? error.message : String(error);
        } finally {
          if (server !== undefined) await stopChild(server.child, profiled.has(name) ? 15_000 : 3000);
        }
        records.push(record);
        process.stdout.write(`  round ${round + 1} ${spec.label.padEnd(10)} ${describeRun(record)}\n`);
        if (profiled.has(name)) {
          const profiles = existsSync(profileDir) ? readdirSync(profileDir).filter((file) => file.endsWith('.cpuprofile')) : [];
          if (profiles.length === 0) process.stdout.write('    (no profile written: did the server exit cleanly on SIGTERM?)\n');
          const windows = profileWindows(record.result);
          for (const file of profiles) process.stdout.write(`${summariseProfile(join(profileDir, file), 15, windows).map((line) => `    ${line}`).join('\n')}\n`);
        }
      }
    }
    process.stdout.write(`  (${scenario.id} took ${formatFixed((performance.now() - scenarioStart) / 1000, 0)} s)\n`);
  }

  if (values.json !== undefined) writeFileSync(values.json, `${JSON.stringify({ settings, rounds, records }, null, 2)}\n`);

  const suiteFailures: string[] = [];
  const suiteVerdicts: Verdict[] = [];
  for (const { suite, selected: ids } of suiteRuns) {
    const report = await suite.run(ids, {
      rounds, quick: values.quick, warmupMs: settings.warmupMs, durationMs: settings.durationMs,
      write: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
    });
    suiteVerdicts.push(...report.verdicts);
    suiteFailures.push(...report.failures);
  }

  const verdicts = [...(scenarioList.length > 0 ? printReport(records, scenarioList, specs, orderFor(0), rounds) : []), ...suiteVerdicts];
  process.stdout.write('\ntargets\n');
  for (const verdict of verdicts) {
    const status = verdict.info === true ? 'info' : verdict.met === undefined ? 'N/A ' : verdict.met ? 'PASS' : 'MISS';
    process.stdout.write(`  ${status}  ${verdict.description}: ${verdict.value}\n`);
  }
  process.stdout.write(`\ntotal time ${formatFixed((performance.now() - startedAt) / 1000, 0)} s\n`);
  const broken = records.filter((record) => record.error !== undefined);
  if (broken.length > 0) {
    process.stdout.write(`\n${broken.length} run(s) failed:\n`);
    for (const record of broken) process.stdout.write(`  ${record.scenario} round ${record.round + 1} ${specs[record.server].label}: ${record.error}\n`);
  }
  if (suiteFailures.length > 0) process.stdout.write(`\n${suiteFailures.length} suite run(s) failed:\n${suiteFailures.map((failure) => `  ${failure}\n`).join('')}`);
  if (broken.length > 0 || suiteFailures.length > 0) return 1;
  const missed = verdicts.filter((verdict) => verdict.met === false && verdict.info !== true);
  if (values.check && missed.length > 0) return 1;
  return 0;
}

/** The measured windows of a run, so a profile summary leaves out start-up, handshakes and warm-up. */
function profileWindows(result: RunResult | undefined): ProfileWindow[] {
  if (result?.kind === 'echo') return [{ label: 'measured', startUs: result.windowStartUs, endUs: result.windowEndUs }];
  if (result?.kind === 'broadcast') return result.phases.map((phase) => ({ label: `K=${phase.inflight}`, startUs: phase.windowStartUs, endUs: phase.windowEndUs }));
  return []; // idle, or a failed run: the whole profile
}

function messagesPerServerCpuSecond(result: EchoResult): number {
  return result.serverCpuPercent > 0 ? (result.messagesPerSecond * 100) / result.serverCpuPercent : 0;
}

function deliveredPerServerCpuSecond(phase: BroadcastPhase): number {
  return phase.serverCpuPercent > 0 ? (phase.deliveredPerSecond * 100) / phase.serverCpuPercent : 0;
}

function describeRun(record: RunRecord): string {
  const result = record.result;
  if (result === undefined) return `FAILED: ${record.error ?? 'unknown error'}`;
  if (result.kind === 'echo') {
    return (
      `${formatInteger(result.messagesPerSecond).padStart(10)} msg/s ${formatFixed(result.payloadMBps, 1).padStart(7)} MB/s  ` +
      `server CPU ${formatInteger(result.serverCpuPercent)}%` +
      (record.scenario === 'deflate-echo'
        ? ` (main thread ${formatInteger(result.serverMainThreadCpuPercent)}%)  load CPU ${formatInteger(result.loadCpuPercent)}%  ` +
          `compressed bytes per message: ${formatInteger(result.requestWireBytes)} in, ${formatFixed(result.replyWireBytes, 0)} out`
        : `  load CPU ${formatInteger(result.loadCpuPercent)}%`) +
      (result.unexpectedFrames > 0 ? `  (${result.unexpectedFrames} unexpected frames)` : '') +
      (result.hitMessageCap ? '  (hit message cap)' : '')
    );
  }
  if (result.kind === 'broadcast') {
    const phases = result.phases.map(
      (phase) =>
        `\n      K=${String(phase.inflight).padEnd(3)} ${formatInteger(phase.deliveredPerSecond).padStart(10)} delivered msg/s ` +
        `(${formatInteger(phase.publishedPerSecond)} published/s, ${formatFixed(phase.deliveryCompleteness * 100, 0)}% kept up)  ` +
        `server CPU ${formatInteger(phase.serverCpuPercent)}% (sys ${formatInteger(phase.serverSystemCpuPercent)}%)  ` +
        `load CPU ${formatInteger(phase.loadCpuPercent)}% (busiest process ${formatInteger(phase.loadCpuMaxPercent)}%)` +
        (phase.hitMessageCap ? '  (hit message cap)' : ''),
    );
    return (
      `opened ${formatInteger(result.subscribers)} subscribers in ${formatInteger(result.openMs)} ms` +
      (result.connectRetries > 0 ? ` (${result.connectRetries} retries)` : '') +
      `, all ${formatInteger(result.published)} messages delivered to each, drained in ${formatInteger(result.drainMs)} ms, ` +
      `server RSS ${formatInteger(result.rssIdleKiB / 1024)} -> ${formatInteger(result.rssBusyKiB / 1024)} MiB` +
      phases.join('')
    );
  }
  return (
    `${formatFixed(result.kibPerConnection, 2)} KiB/conn  RSS ${formatInteger(result.rssBeforeKiB)} -> ${formatInteger(result.rssAfterKiB)} KiB  ` +
    `opened in ${formatInteger(result.openMs)} ms` +
    (result.connectRetries > 0 ? ` (${result.connectRetries} retries)` : '') +
    (result.afterMessage === undefined
      ? ''
      : `; after 1 message each ${formatFixed(result.afterMessage.kibPerConnection, 2)} KiB/conn  RSS -> ${formatInteger(result.afterMessage.rssKiB)} KiB  ` +
        `(messages took ${formatInteger(result.afterMessage.ms)} ms)`)
  );
}

function printReport(
  records: RunRecord[],
  scenarioList: Scenario[],
  specs: Record<ServerName, ServerSpec>,
  serverOrder: ServerName[],
  rounds: number,
): Verdict[] {
  const verdicts: Verdict[] = [];
  const resultsOf = <K extends RunResult['kind']>(scenario: ScenarioId, server: ServerName, kind: K) =>
    records
      .filter((record) => record.scenario === scenario && record.server === server && record.result?.kind === kind)
      .map((record) => record.result as Extract<RunResult, { kind: K }>);
  const perRound = (values: number[], format: (value: number) => string): string =>
    values.length === rounds ? values.map(format).join(' / ') : `${values.map(format).join(' / ')} (${rounds - values.length} failed)`;
  const candidate = specs.switchyard.label;
  // Paired ratios (same round) show how much of a ratio is noise.
  const pairedRatios = <K extends RunResult['kind']>(
    scenario: ScenarioId,
    kind: K,
    metric: (result: Extract<RunResult, { kind: K }>) => number,
    server: ServerName = 'switchyard',
  ): string[] => {
    const paired: string[] = [];
    for (let round = 0; round < rounds; round++) {
      const a = records.find((r) => r.scenario === scenario && r.server === server && r.round === round)?.result;
      const b = records.find((r) => r.scenario === scenario && r.server === 'ws' && r.round === round)?.result;
      if (a?.kind === kind && b?.kind === kind) paired.push(`${formatFixed(metric(a as Extract<RunResult, { kind: K }>) / metric(b as Extract<RunResult, { kind: K }>), 2)}x`);
    }
    return paired;
  };

  process.stdout.write(`\n${'='.repeat(100)}\nresults (median over ${rounds} rounds${rounds === 2 ? ', which is the mean of the two' : ''})\n`);

  for (const scenario of scenarioList) {
    process.stdout.write(`\n${scenario.title}\n`);
    const target = scenario.target;
    const sign = target.direction === 'at-least' ? '>=' : '<=';
    const description = `${target.description} ${candidate} ${sign} ${formatFixed(target.ratio, 1)}x ws`;
    const displayOrder = (['switchyard', 'switchyard-l6', 'ws', 'tcp'] as const).filter(
      (name) => (serverOrder.includes(name) || scenario.servers.includes(name)) && records.some((record) => record.scenario === scenario.id && record.server === name),
    );

    if (scenario.id === 'deflate-idle') {
      printDeflateIdle(scenario, displayOrder, verdicts, { resultsOf, perRound, pairedRatios, specs, candidate });
      continue;
    }
    if (scenario.id === 'deflate-echo') {
      printDeflateEcho(scenario, displayOrder, verdicts, { resultsOf, perRound, pairedRatios, specs, candidate });
      continue;
    }

    if (scenario.kind === 'idle') {
      const rows = displayOrder.map((server) => {
        const results: IdleResult[] = resultsOf(scenario.id, server, 'idle');
        if (results.length === 0) return [specs[server].label, 'failed', '', '', '', '', ''];
        return [
          specs[server].label,
          formatFixed(median(results.map((r) => r.kibPerConnection)), 2),
          formatInteger(median(results.map((r) => r.rssBeforeKiB))),
          formatInteger(median(results.map((r) => r.rssAfterKiB))),
          formatInteger(median(results.map((r) => r.openMs))),
          formatInteger(median(results.map((r) => r.serverCpuMicrosPerHandshake))),
          perRound(results.map((r) => r.kibPerConnection), (value) => formatFixed(value, 2)),
        ];
      });
      const headers = ['server', 'KiB/conn', 'RSS before KiB', 'RSS after KiB', 'open ms', 'server CPU us/handshake', 'KiB/conn per round'];
      process.stdout.write(`${formatTable(headers, rows).join('\n')}\n`);
      const mine = resultsOf(scenario.id, 'switchyard', 'idle').map((r) => r.kibPerConnection);
      const theirs = resultsOf(scenario.id, 'ws', 'idle').map((r) => r.kibPerConnection);
      if (mine.length === 0 || theirs.length === 0) {
        verdicts.push({ description, value: 'n/a (runs failed)', met: undefined });
      } else {
        const ratio = median(mine) / median(theirs);
        const met = median(mine) <= median(theirs) * target.ratio;
        const value = `${formatFixed(median(mine), 2)} vs ${formatFixed(median(theirs), 2)} KiB (${formatFixed(ratio, 2)}x)`;
        verdicts.push({ description, value, met });
        const paired = pairedRatios(scenario.id, 'idle', (r) => r.kibPerConnection);
        process.stdout.write(
          `-> ${candidate} / ws = ${formatFixed(ratio, 2)}x memory per connection (per round ${paired.join(', ')}; target <= ${formatFixed(target.ratio, 2)}x): ${met ? 'PASS' : 'MISS'}\n`,
        );
      }
      continue;
    }

    if (scenario.kind === 'broadcast') {
      let clientLimited = false;
      let machineFull = false;
      const inflights = scenario.broadcast!.inflight;
      const phasesOf = (server: ServerName, inflight: number): BroadcastPhase[] =>
        resultsOf(scenario.id, server, 'broadcast').flatMap((r) => r.phases.filter((phase) => phase.inflight === inflight));
      const rows: string[][] = [];
      for (const inflight of inflights) {
        for (const server of displayOrder) {
          const phases = phasesOf(server, inflight);
          if (phases.length === 0) {
            rows.push([specs[server].label, String(inflight), 'failed', '', '', '', '', '', '', '']);
            continue;
          }
          const loadMax = median(phases.map((p) => p.loadCpuMaxPercent));
          const serverCpu = median(phases.map((p) => p.serverCpuPercent));
          const loadCpu = median(phases.map((p) => p.loadCpuPercent));
          const keptUp = median(phases.map((p) => p.deliveryCompleteness));
          const mark = loadMax >= 90 || keptUp < 0.95 ? ' !' : '';
          if (mark !== '') clientLimited = true;
          if (serverCpu + loadCpu >= 180) machineFull = true;
          rows.push([
            specs[server].label,
            String(inflight),
            formatInteger(median(phases.map((p) => p.deliveredPerSecond))),
            formatInteger(median(phases.map((p) => p.publishedPerSecond))),
            `${formatFixed(keptUp * 100, 0)}%`,
            `${formatInteger(serverCpu)}% (${formatInteger(median(phases.map((p) => p.serverSystemCpuPercent)))}%)`,
            `${formatInteger(loadCpu)}%`,
            `${formatInteger(loadMax)}%${mark}`,
            formatInteger(median(phases.map(deliveredPerServerCpuSecond))),
            perRound(phases.map((p) => p.deliveredPerSecond), formatInteger),
          ]);
        }
      }
      const headers = ['server', 'K', 'delivered msg/s', 'published/s', 'kept up', 'server CPU (sys)', 'load CPU', 'busiest load proc', 'delivered per server CPU-s', 'delivered msg/s per round'];
      process.stdout.write(`${formatTable(headers, rows).join('\n')}\n`);
      const perRun = displayOrder
        .map((server) => {
          const results = resultsOf(scenario.id, server, 'broadcast');
          if (results.length === 0) return `${specs[server].label} failed`;
          return (
            `${specs[server].label} drain ${formatInteger(median(results.map((r) => r.drainMs)))} ms, ` +
            `RSS ${formatInteger(median(results.map((r) => r.rssIdleKiB)) / 1024)} -> ${formatInteger(median(results.map((r) => r.rssBusyKiB)) / 1024)} MiB`
          );
        })
        .join('; ');
      process.stdout.write(`   per run (after the last window): ${perRun}\n`);
      if (clientLimited) {
        process.stdout.write('   ! a load process used >= 90% of a core or the subscribers fell behind (kept up < 95%): that row may be client-limited\n');
      }
      if (machineFull) process.stdout.write('   (server + load CPU >= 180% of the 2 cores: the load processes compete with the server for CPU)\n');
      for (const inflight of inflights) {
        const phaseDescription = `${target.description}, K=${inflight}, ${candidate} ${sign} ${formatFixed(target.ratio, 1)}x ws`;
        const mine = phasesOf('switchyard', inflight);
        const theirs = phasesOf('ws', inflight);
        if (mine.length === 0 || theirs.length === 0) {
          verdicts.push({ description: phaseDescription, value: 'n/a (runs failed)', met: undefined });
          continue;
        }
        const ratio = median(mine.map((p) => p.deliveredPerSecond)) / median(theirs.map((p) => p.deliveredPerSecond));
        const met = ratio >= target.ratio;
        const efficiencyRatio = median(mine.map(deliveredPerServerCpuSecond)) / median(theirs.map(deliveredPerServerCpuSecond));
        const paired = pairedRatios(scenario.id, 'broadcast', (r) => r.phases.find((p) => p.inflight === inflight)?.deliveredPerSecond ?? Number.NaN);
        // With one message in flight the publisher waits a round trip per message, so each event-loop turn has one
        // message and every delivery is one write syscall in both servers (the kernel takes ~70% of the CPU): a
        // latency-bound trickle, shown for information. The throughput target is judged with messages in flight.
        const info = inflight === 1;
        verdicts.push({ description: phaseDescription, value: `${formatFixed(ratio, 2)}x`, met, info });
        process.stdout.write(
          `-> K=${inflight}: ${candidate} / ws = ${formatFixed(ratio, 2)}x delivered msg/s (per round ${paired.join(', ')}; ` +
            `target >= ${formatFixed(target.ratio, 1)}x): ${met ? 'PASS' : 'MISS'}${info ? ' (for information: one message per event-loop turn, syscall-bound)' : ''}; ` +
            `${formatFixed(efficiencyRatio, 2)}x delivered per server CPU-second\n`,
        );
      }
      continue;
    }

    let saturated = false;
    const rows = displayOrder.map((server) => {
      const results: EchoResult[] = resultsOf(scenario.id, server, 'echo');
      if (results.length === 0) return [specs[server].label, 'failed', '', '', '', '', ''];
      const loadCpu = median(results.map((r) => r.loadCpuPercent));
      const mark = loadCpu >= 90 ? ' !' : '';
      if (mark !== '') saturated = true;
      return [
        specs[server].label,
        formatInteger(median(results.map((r) => r.messagesPerSecond))),
        formatFixed(median(results.map((r) => r.payloadMBps)), 1),
        `${formatInteger(median(results.map((r) => r.serverCpuPercent)))}%`,
        `${formatInteger(loadCpu)}%${mark}`,
        formatInteger(median(results.map(messagesPerServerCpuSecond))),
        perRound(results.map((r) => r.messagesPerSecond), formatInteger),
      ];
    });
    const headers = ['server', 'msg/s', 'MB/s', 'server CPU', 'load CPU', 'msg per server CPU-s', 'msg/s per round'];
    process.stdout.write(`${formatTable(headers, rows).join('\n')}\n`);
    if (saturated) process.stdout.write('   ! the load generator used >= 90% of a core: that row is a lower bound (client-limited)\n');
    const mine = resultsOf(scenario.id, 'switchyard', 'echo');
    const theirs = resultsOf(scenario.id, 'ws', 'echo');
    if (mine.length === 0 || theirs.length === 0) {
      verdicts.push({ description, value: 'n/a (runs failed)', met: undefined });
      continue;
    }
    const ratio = median(mine.map((r) => r.messagesPerSecond)) / median(theirs.map((r) => r.messagesPerSecond));
    const met = ratio >= target.ratio;
    const efficiencyRatio = median(mine.map(messagesPerServerCpuSecond)) / median(theirs.map(messagesPerServerCpuSecond));
    verdicts.push({ description, value: `${formatFixed(ratio, 2)}x`, met });
    process.stdout.write(
      `-> ${candidate} / ws = ${formatFixed(ratio, 2)}x msg/s (per round ${pairedRatios(scenario.id, 'echo', (r) => r.messagesPerSecond).join(', ')}; ` +
        `target >= ${formatFixed(target.ratio, 1)}x): ${met ? 'PASS' : 'MISS'}\n` +
        `   ${candidate} / ws = ${formatFixed(efficiencyRatio, 2)}x messages per server CPU-second (less sensitive to CPU stolen by other work)\n`,
    );
  }

  return verdicts;
}

/** What printReport shares with the deflate tables. */
interface ReportTools {
  resultsOf: <K extends RunResult['kind']>(scenario: ScenarioId, server: ServerName, kind: K) => Extract<RunResult, { kind: K }>[];
  perRound: (values: number[], format: (value: number) => string) => string;
  pairedRatios: <K extends RunResult['kind']>(
    scenario: ScenarioId,
    kind: K,
    metric: (result: Extract<RunResult, { kind: K }>) => number,
    server?: ServerName,
  ) => string[];
  specs: Record<ServerName, ServerSpec>;
  candidate: string;
}

/** The zlib level a deflate server compresses at, from how it was started. */
function zlibLevelOf(spec: ServerSpec): string {
  if (spec.script !== SWITCHYARD_CLI) return '6 (ws default)';
  const at = spec.args.indexOf('--deflate-level');
  return at === -1 ? '1 (default)' : spec.args[at + 1]!;
}

/**
 * deflate-echo: one row per server (switchyard at its default zlib level 1, switchyard at ws's level 6, ws), the
 * target on the defaults, and the equal-level ratio for information.
 */
function printDeflateEcho(scenario: Scenario, displayOrder: readonly ServerName[], verdicts: Verdict[], tools: ReportTools): void {
  const { resultsOf, perRound, pairedRatios, specs, candidate } = tools;
  const deflateSpecs = serverSpecs(specs.switchyard.label === 'switchyard' ? 'switchyard' : 'ws', 'deflate');
  let saturated = false;
  const rows = displayOrder.map((server) => {
    const results: EchoResult[] = resultsOf(scenario.id, server, 'echo');
    if (results.length === 0) return [specs[server].label, zlibLevelOf(deflateSpecs[server]), 'failed', '', '', '', '', '', ''];
    const loadCpu = median(results.map((r) => r.loadCpuPercent));
    const mark = loadCpu >= 90 ? ' !' : '';
    if (mark !== '') saturated = true;
    return [
      specs[server].label,
      zlibLevelOf(deflateSpecs[server]),
      formatInteger(median(results.map((r) => r.messagesPerSecond))),
      `${formatInteger(median(results.map((r) => r.serverCpuPercent)))}%`,
      `${formatInteger(median(results.map((r) => r.serverMainThreadCpuPercent)))}%`,
      `${formatInteger(loadCpu)}%${mark}`,
      formatInteger(median(results.map(messagesPerServerCpuSecond))),
      formatFixed(median(results.map((r) => r.replyWireBytes)), 0),
      perRound(results.map((r) => r.messagesPerSecond), formatInteger),
    ];
  });
  const headers = ['server', 'zlib level', 'msg/s', 'server CPU', 'main thread', 'load CPU', 'msg per server CPU-s', 'B/reply', 'msg/s per round'];
  process.stdout.write(`${formatTable(headers, rows).join('\n')}\n`);
  const requestBytes = resultsOf(scenario.id, displayOrder[0] ?? 'ws', 'echo')[0]?.requestWireBytes;
  process.stdout.write(
    `   server CPU counts every thread (zlib runs on libuv's pool); main thread is the JavaScript thread alone. B/reply: mean\n` +
      `   compressed payload per reply (context takeover: replies refer to earlier ones)` +
      (requestBytes === undefined ? '' : `; requests are ${formatInteger(requestBytes)} B compressed on average`) +
      '.\n',
  );
  if (saturated) process.stdout.write('   ! the load generator used >= 90% of a core: that row is a lower bound (client-limited)\n');
  const ws = resultsOf(scenario.id, 'ws', 'echo');
  const level = (server: ServerName): string => zlibLevelOf(deflateSpecs[server]).split(' ')[0]!;
  const comparisons: { server: ServerName; what: string; info: boolean }[] = [
    { server: 'switchyard', what: `defaults: ${candidate} zlib level ${level('switchyard')}, ws level ${level('ws')}`, info: false },
    { server: 'switchyard-l6', what: `zlib level ${level('switchyard-l6')} on both sides (fairness row)`, info: true },
  ];
  for (const { server, what, info } of comparisons) {
    const mine = resultsOf(scenario.id, server, 'echo');
    const label = specs[server].label;
    const description = `${scenario.target.description}, ${what}: ${label} >= ${formatFixed(scenario.target.ratio, 1)}x ws`;
    if (mine.length === 0 || ws.length === 0) {
      verdicts.push({ description, value: 'n/a (runs failed)', met: undefined, info });
      continue;
    }
    const ratio = median(mine.map((r) => r.messagesPerSecond)) / median(ws.map((r) => r.messagesPerSecond));
    const efficiencyRatio = median(mine.map(messagesPerServerCpuSecond)) / median(ws.map(messagesPerServerCpuSecond));
    const met = ratio >= scenario.target.ratio;
    verdicts.push({ description, value: `${formatFixed(ratio, 2)}x`, met, info });
    process.stdout.write(
      `-> ${label} / ws = ${formatFixed(ratio, 2)}x msg/s, ${what} (per round ${pairedRatios(scenario.id, 'echo', (r) => r.messagesPerSecond, server).join(', ')}; ` +
        `target >= ${formatFixed(scenario.target.ratio, 1)}x): ${met ? 'PASS' : 'MISS'}${info ? ' (for information)' : ''}\n` +
        `   ${label} / ws = ${formatFixed(efficiencyRatio, 2)}x messages per server CPU-second\n`,
    );
  }
}

/** deflate-idle: two rows per server (negotiated but unused, then after one message each), a target on each. */
function printDeflateIdle(scenario: Scenario, displayOrder: readonly ServerName[], verdicts: Verdict[], tools: ReportTools): void {
  const { resultsOf, perRound, pairedRatios, specs, candidate } = tools;
  const states = [
    {
      name: 'negotiated, unused',
      kib: (r: IdleResult): number => r.kibPerConnection,
      rss: (r: IdleResult): number => r.rssAfterKiB,
      cpu: (r: IdleResult): number => r.serverCpuMicrosPerHandshake,
    },
    {
      name: 'after 1 message each',
      kib: (r: IdleResult): number => r.afterMessage?.kibPerConnection ?? Number.NaN,
      rss: (r: IdleResult): number => r.afterMessage?.rssKiB ?? Number.NaN,
      cpu: (r: IdleResult): number => r.afterMessage?.serverCpuMicrosPerMessage ?? Number.NaN,
    },
  ];
  const rows: string[][] = [];
  for (const server of displayOrder) {
    const results: IdleResult[] = resultsOf(scenario.id, server, 'idle');
    for (const state of states) {
      if (results.length === 0) {
        rows.push([specs[server].label, state.name, 'failed', '', '', '', '']);
        continue;
      }
      rows.push([
        specs[server].label,
        state.name,
        formatFixed(median(results.map(state.kib)), 2),
        formatInteger(median(results.map((r) => r.rssBeforeKiB))),
        formatInteger(median(results.map(state.rss))),
        formatInteger(median(results.map(state.cpu))),
        perRound(results.map(state.kib), (value) => formatFixed(value, 2)),
      ]);
    }
  }
  const headers = ['server', 'connections', 'KiB/conn', 'RSS before KiB', 'RSS after KiB', 'server CPU us/conn', 'KiB/conn per round'];
  process.stdout.write(`${formatTable(headers, rows).join('\n')}\n`);
  process.stdout.write(
    '   same connections, read twice: after the handshakes (server CPU per handshake), then after one compressed message\n' +
      '   each way on every connection (server CPU per message); KiB/conn is always from the RSS before the connections.\n',
  );
  const ws = resultsOf(scenario.id, 'ws', 'idle');
  const mine = resultsOf(scenario.id, 'switchyard', 'idle');
  for (const state of [...states].reverse()) {
    const description = `${scenario.target.description}, ${state.name}: ${candidate} <= ${formatFixed(scenario.target.ratio, 1)}x ws`;
    if (mine.length === 0 || ws.length === 0) {
      verdicts.push({ description, value: 'n/a (runs failed)', met: undefined });
      continue;
    }
    const a = median(mine.map(state.kib));
    const b = median(ws.map(state.kib));
    const met = a <= b * scenario.target.ratio;
    verdicts.push({ description, value: `${formatFixed(a, 2)} vs ${formatFixed(b, 2)} KiB (${formatFixed(a / b, 2)}x)`, met });
    process.stdout.write(
      `-> ${state.name}: ${candidate} / ws = ${formatFixed(a / b, 2)}x memory per connection ` +
        `(per round ${pairedRatios(scenario.id, 'idle', state.kib).join(', ')}; target <= ${formatFixed(scenario.target.ratio, 2)}x): ${met ? 'PASS' : 'MISS'}\n`,
    );
  }
}

main().then(
  (code) => {
    killAllChildren();
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
    killAllChildren();
    process.exitCode = error instanceof RangeError ? 2 : 1;
  },
);
