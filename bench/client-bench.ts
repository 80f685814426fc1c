// The client comparison (issue 6 item 5): our `connect()` against the `ws` package's client, both driving the same
// echo server (`switchyard serve`, a fresh process per measurement) from a client-load.js child, one client at a
// time in mirrored order (ABBA). Judged on echoes per client CPU-second; raw msg/s is shown beside it.
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClientLoadResult, ClientName } from './client-load.js';
import type { BenchSuite, SuiteReport, SuiteSettings, Verdict } from './suite.js';
import { stopChild, track } from './child-processes.js';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const SWITCHYARD_CLI = resolve(BENCH_DIR, '../src/cli/main.js');
const CLIENT_LOAD_SCRIPT = join(BENCH_DIR, 'client-load.js');
/** Pure-JavaScript ws in every process, as in the rest of the bench (the client-load child sets them as well). */
const CHILD_ENV = { ...process.env, WS_NO_BUFFER_UTIL: '1', WS_NO_UTF_8_VALIDATE: '1' };
/**
 * The one echo server both clients talk to: switchyard's, with no access log and no keep-alive pings. It is the
 * cheaper of the two echo servers per message (see `echo64`), which leaves more of the 2 cores to the client.
 */
const SERVER_ARGS = ['serve', '--port', '0', '--host', '127.0.0.1', '--echo', '/echo', '--ping-interval-ms', '0', '--access-log', 'off'];
const SERVER_START_TIMEOUT_MS = 15_000;
const SERVER_STOP_GRACE_MS = 3000;
/** Below this much of a core the client was not what limited its msg/s (the server, wake-ups or other work was). */
const CLIENT_BUSY_CPU_PERCENT = 80;
const TARGET_RATIO = 1.0;

const CLIENTS: readonly ClientName[] = ['switchyard', 'ws'];
const LABELS: Readonly<Record<ClientName, string>> = { switchyard: 'switchyard client', ws: 'ws client' };

interface ClientScenario {
  id: 'client-echo64' | 'client-echo1m';
  title: string;
  /** What the targets block calls it. */
  description: string;
  connections: number;
  inflight: number;
  payloadBytes: number;
  binary: boolean;
  maxMessages: number;
}

// Enough connections that both clients are the busy process (~90-100% of a core; see bench/README.md): with one
// connection the echoes come back in lock-step batches and both processes wait on each other's wake-ups.
const SCENARIOS: readonly ClientScenario[] = [
  {
    id: 'client-echo64',
    title: 'client: 64 B text echo, 4 connections x 16 in flight, against one switchyard echo server',
    description: '64 B echo, messages per client CPU-second',
    connections: 4,
    inflight: 16,
    payloadBytes: 64,
    binary: false,
    maxMessages: 50_000_000,
  },
  {
    id: 'client-echo1m',
    title: 'client: 1 MiB binary echo, 4 connections x 2 in flight, against one switchyard echo server',
    description: '1 MiB echo, messages per client CPU-second',
    connections: 4,
    inflight: 2,
    payloadBytes: 1 << 20,
    binary: true,
    maxMessages: 100_000,
  },
];


interface EchoServer {
  child: ChildProcess;
  pid: number;
  url: string;
}

function startEchoServer(): Promise<EchoServer> {
  const child = track(spawn(process.execPath, [SWITCHYARD_CLI, ...SERVER_ARGS], { stdio: ['ignore', 'pipe', 'pipe'], env: CHILD_ENV }));
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (text: string) => { stderr = (stderr + text).slice(-4000); });
  return new Promise((resolveStart, rejectStart) => {
    let stdout = '';
    let started = false;
    const fail = (why: string): void => {
      if (started) return;
      started = true;
      clearTimeout(timer);
      void stopChild(child, 1000);
      rejectStart(new Error(`switchyard serve ${why}${stderr.trim() === '' ? '' : `: ${stderr.trim()}`}`));
    };
    const timer = setTimeout(() => fail(`did not print its port within ${SERVER_START_TIMEOUT_MS} ms`), SERVER_START_TIMEOUT_MS);
    child.once('error', (error) => fail(`failed to start (${error.message})`));
    child.once('exit', (code, signal) => fail(`exited (${signal ?? code}) before listening`));
    child.stdout?.setEncoding('utf8').on('data', (text: string) => {
      if (started) return; // keep draining the pipe
      stdout += text;
      const match = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stdout);
      if (match === null || child.pid === undefined) return;
      started = true;
      clearTimeout(timer);
      resolveStart({ child, pid: child.pid, url: `ws://127.0.0.1:${match[1]}/echo` });
    });
  });
}

/** Runs one client-load.js measurement and returns its JSON line; kills it if it overruns. */
function runClientLoad(client: ClientName, server: EchoServer, scenario: ClientScenario, settings: SuiteSettings): Promise<ClientLoadResult> {
  const args = [
    CLIENT_LOAD_SCRIPT, '--client', client, '--url', server.url, '--server-pid', String(server.pid),
    '--connections', String(scenario.connections), '--inflight', String(scenario.inflight), '--payload-bytes', String(scenario.payloadBytes),
    ...(scenario.binary ? ['--binary'] : []),
    '--warmup-ms', String(settings.warmupMs), '--duration-ms', String(settings.durationMs), '--max-messages', String(scenario.maxMessages),
  ];
  const child = track(spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: CHILD_ENV }));
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (text: string) => { stdout += text; });
  child.stderr?.setEncoding('utf8').on('data', (text: string) => { stderr = (stderr + text).slice(-4000); });
  const timeoutMs = settings.warmupMs + settings.durationMs + 60_000;
  return new Promise((resolveRun, rejectRun) => {
    const timer = setTimeout(() => {
      void stopChild(child, 1000);
      rejectRun(new Error(`client-load did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      rejectRun(new Error(`client-load failed to start: ${error.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const line = stdout.trim().split('\n').at(-1) ?? '';
      if (code !== 0) return rejectRun(new Error(stderr.trim() || `client-load exited (${signal ?? code})`));
      try {
        resolveRun(JSON.parse(line) as ClientLoadResult);
      } catch {
        rejectRun(new Error(`client-load printed no result: ${JSON.stringify(stdout.slice(-200))}`));
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Report.

interface RunRecord {
  scenario: ClientScenario['id'];
  client: ClientName;
  round: number;
  result?: ClientLoadResult;
  error?: string;
}

const integerFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const formatInteger = (value: number): string => integerFormat.format(value);
const formatFixed = (value: number, digits: number): string => value.toFixed(digits);

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function formatTable(headers: string[], rows: string[][]): string[] {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: string[]): string =>
    cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ').trimEnd();
  return [line(headers), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)];
}

function describeRun(record: RunRecord): string {
  const result = record.result;
  if (result === undefined) return `FAILED: ${record.error ?? 'unknown error'}`;
  return (
    `${formatInteger(result.messagesPerSecond).padStart(9)} msg/s ${formatFixed(result.payloadMBps, 1).padStart(6)} MB/s  ` +
    `client CPU ${formatInteger(result.clientCpuPercent)}% (sys ${formatInteger(result.clientSystemCpuPercent)}%)  ` +
    `server CPU ${formatInteger(result.serverCpuPercent)}%  ${formatInteger(result.messagesPerClientCpuSecond)} msg per client CPU-s` +
    (result.hitMessageCap ? '  (hit message cap)' : '')
  );
}

function report(scenario: ClientScenario, records: readonly RunRecord[], rounds: number, write: (text: string) => void): Verdict[] {
  const resultsOf = (client: ClientName): ClientLoadResult[] =>
    records.filter((r) => r.scenario === scenario.id && r.client === client && r.result !== undefined).map((r) => r.result!);
  const perRound = (values: number[]): string =>
    `${values.map(formatInteger).join(' / ')}${values.length === rounds ? '' : ` (${rounds - values.length} failed)`}`;
  let idleClient = false;
  let machineFull = false;
  const rows = CLIENTS.map((client) => {
    const results = resultsOf(client);
    if (results.length === 0) return [LABELS[client], 'failed', '', '', '', '', '', ''];
    const clientCpu = median(results.map((r) => r.clientCpuPercent));
    const serverCpu = median(results.map((r) => r.serverCpuPercent));
    const mark = clientCpu < CLIENT_BUSY_CPU_PERCENT ? ' !' : '';
    if (mark !== '') idleClient = true;
    if (clientCpu + serverCpu >= 180) machineFull = true;
    return [
      LABELS[client],
      formatInteger(median(results.map((r) => r.messagesPerSecond))),
      formatFixed(median(results.map((r) => r.payloadMBps)), 1),
      `${formatInteger(clientCpu)}% (${formatInteger(median(results.map((r) => r.clientSystemCpuPercent)))}%)${mark}`,
      `${formatInteger(serverCpu)}%`,
      formatInteger(median(results.map((r) => r.messagesPerClientCpuSecond))),
      perRound(results.map((r) => r.messagesPerSecond)),
      perRound(results.map((r) => r.messagesPerClientCpuSecond)),
    ];
  });
  write(`\n${scenario.title}`);
  const headers = ['client', 'msg/s', 'MB/s', 'client CPU (sys)', 'server CPU', 'msg per client CPU-s', 'msg/s per round', 'msg per client CPU-s per round'];
  write(formatTable(headers, rows).join('\n'));
  if (idleClient) write(`   ! a client used < ${CLIENT_BUSY_CPU_PERCENT}% of a core: its msg/s was limited by something else (the server, wake-ups, other work on the machine); msg per client CPU-s still counts only its own work`);
  if (machineFull) write('   (client + server CPU >= 180% of the 2 cores: they compete for CPU, so msg/s depends on both; msg per client CPU-s does not)');

  const description = `${scenario.description}, ${LABELS.switchyard} >= ${formatFixed(TARGET_RATIO, 1)}x ${LABELS.ws}`;
  const rawDescription = `${scenario.description.replace('messages per client CPU-second', 'msg/s (raw, shared cores)')}, ${LABELS.switchyard} vs ${LABELS.ws}`;
  const mine = resultsOf('switchyard');
  const theirs = resultsOf('ws');
  if (mine.length === 0 || theirs.length === 0) {
    return [{ description, value: 'n/a (runs failed)', met: undefined }, { description: rawDescription, value: 'n/a (runs failed)', met: undefined, info: true }];
  }
  const paired = (metric: (result: ClientLoadResult) => number): string[] => {
    const ratios: string[] = [];
    for (let round = 0; round < rounds; round++) {
      const a = records.find((r) => r.scenario === scenario.id && r.client === 'switchyard' && r.round === round)?.result;
      const b = records.find((r) => r.scenario === scenario.id && r.client === 'ws' && r.round === round)?.result;
      if (a !== undefined && b !== undefined) ratios.push(`${formatFixed(metric(a) / metric(b), 2)}x`);
    }
    return ratios;
  };
  const efficiency = median(mine.map((r) => r.messagesPerClientCpuSecond)) / median(theirs.map((r) => r.messagesPerClientCpuSecond));
  const raw = median(mine.map((r) => r.messagesPerSecond)) / median(theirs.map((r) => r.messagesPerSecond));
  const met = efficiency >= TARGET_RATIO;
  write(
    `-> ${LABELS.switchyard} / ${LABELS.ws} = ${formatFixed(efficiency, 2)}x messages per client CPU-second ` +
      `(per round ${paired((r) => r.messagesPerClientCpuSecond).join(', ')}; target >= ${formatFixed(TARGET_RATIO, 1)}x): ${met ? 'PASS' : 'MISS'}\n` +
      `   ${LABELS.switchyard} / ${LABELS.ws} = ${formatFixed(raw, 2)}x msg/s (per round ${paired((r) => r.messagesPerSecond).join(', ')}; ` +
      'for information: the server shares the 2 cores, so this depends on it too)',
  );
  return [
    { description, value: `${formatFixed(efficiency, 2)}x`, met },
    { description: rawDescription, value: `${formatFixed(raw, 2)}x`, met: raw >= TARGET_RATIO, info: true },
  ];
}

// ---------------------------------------------------------------------------------------------------------------
// The suite.

export const clientSuite: BenchSuite = {
  scenarios: SCENARIOS.map((scenario) => scenario.id),
  help: {
    'client-echo64': 'our client vs the ws client, 64 B text echo, 4 connections x 16 in flight, one switchyard echo server',
    'client-echo1m': 'our client vs the ws client, 1 MiB binary echo, 4 connections x 2 in flight, one switchyard echo server',
  },

  async run(selected, settings): Promise<SuiteReport> {
    const verdicts: Verdict[] = [];
    const failures: string[] = [];
    const records: RunRecord[] = [];
    for (const scenario of SCENARIOS.filter((s) => selected.includes(s.id))) {
      const startedAt = performance.now();
      settings.write(
        `\nrunning ${scenario.id}: ${scenario.title}\n` +
          `  a fresh server per measurement; ${settings.warmupMs} ms warm-up + ${settings.durationMs} ms measured; ` +
          `order ${Array.from({ length: settings.rounds }, (_, round) => orderFor(round).map((client) => LABELS[client]).join(', ')).join(' | ')}`,
      );
      for (let round = 0; round < settings.rounds; round++) {
        for (const client of orderFor(round)) {
          const record: RunRecord = { scenario: scenario.id, client, round };
          let server: EchoServer | undefined;
          try {
            server = await startEchoServer();
            record.result = await runClientLoad(client, server, scenario, settings);
          } catch (error) {
            record.error = error instanceof Error ? error.message : String(error);
            failures.push(`${scenario.id} round ${round + 1} ${LABELS[client]}: ${record.error}`);
          } finally {
            if (server !== undefined) await stopChild(server.child, SERVER_STOP_GRACE_MS);
          }
          records.push(record);
          settings.write(`  round ${round + 1} ${LABELS[client].padEnd(17)} ${describeRun(record)}`);
        }
      }
      settings.write(`  (${scenario.id} took ${formatFixed((performance.now() - startedAt) / 1000, 0)} s)`);
      verdicts.push(...report(scenario, records, settings.rounds, settings.write));
    }
    return { verdicts, failures };
  },
};

/** Round 1 runs our client first, round 2 the ws client first, and so on (ABBA). */
function orderFor(round: number): ClientName[] {
  return round % 2 === 0 ? [...CLIENTS] : [...CLIENTS].reverse();
}
