// The bridge benchmarks (issue 5, item 7) as a suite of `npm run bench`: switchyard's process bridge against
// websocketd (both running `cat`, line framing) and its TCP bridge against websockify (in front of the same TCP
// target). Each server is its own process, one at a time, in mirrored order across rounds (ABBA).
import { dirname, join, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { BridgeLoadOutput, BridgeLoadResult, BridgeScenario } from './bridge-load.js';
import { findProgram, runToEnd, startOnFreePort, startPrintingPort, stopProcess, waitForNoDescendants, type RunningProcess } from './bridge-servers.js';
import type { BenchSuite, SuiteReport, SuiteSettings, Verdict } from './suite.js';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const SWITCHYARD_CLI = resolve(BENCH_DIR, '../src/cli/main.js');
const LOAD_SCRIPT = join(BENCH_DIR, 'bridge-load.js');
const TARGET_SCRIPT = join(BENCH_DIR, 'tcp-target.js');
const SPAWN_LOOP_SCRIPT = join(BENCH_DIR, 'spawn-loop.js');
const HOST = '127.0.0.1';
/** The route on switchyard; websocketd and websockify serve every path, so the load uses this one for all. */
const ROUTE = '/bridge';

/** exec-messages: line messages of this size, and how many are in flight on the one connection. */
const EXEC_MESSAGE_BYTES = 64;
const EXEC_INFLIGHT = 16;
const EXEC_MAX_MESSAGES = 50_000_000;
/** exec-connections: connections under way at once, and at most this many per run (bounds TIME_WAIT sockets). */
const CONNECT_CONCURRENCY = 8;
const MAX_CONNECTIONS_PER_RUN = 10_000;
/** tcp-*: binary message size, bytes on their way (sent and not yet echoed, counted or received), a cap per run. */
const TCP_CHUNK_BYTES = 64 * 1024;
const TCP_WINDOW_BYTES = 4 * 1024 * 1024;
const TCP_MAX_BYTES = 50 * 1024 ** 3;
/** After the load ends, how long the server gets to reap every program or worker it started. */
const REAP_TIMEOUT_MS = 10_000;

/** `node-spawn`: bench/spawn-loop.ts, node:child_process alone starting `cat` per connection (no server). */
type Program = 'switchyard' | 'websocketd' | 'websockify' | 'node-spawn';

interface ScenarioSpec {
  id: BridgeScenario;
  title: string;
  peer: 'websocketd' | 'websockify';
  unit: string;
  /** ratePerSecond / divisor is what the tables show (10^6 for MB/s). */
  divisor: number;
  /** switchyard / peer must reach this; undefined: the ratio is shown for information only. */
  targetRatio: number | undefined;
  /** `--mode` of tcp-target.ts (tcp scenarios). */
  targetMode?: 'echo' | 'sink' | 'source';
  /** Also run bench/spawn-loop.ts, the ceiling of any Node program that starts one program per connection. */
  spawnCeiling?: boolean;
  loadArgs: string[];
}

const tcpArgs = ['--chunk-bytes', String(TCP_CHUNK_BYTES), '--window-bytes', String(TCP_WINDOW_BYTES), '--max-count', String(TCP_MAX_BYTES)];

const SPECS: Record<BridgeScenario, ScenarioSpec> = {
  'exec-messages': {
    id: 'exec-messages', peer: 'websocketd', unit: 'msg/s', divisor: 1, targetRatio: 1.0,
    title: `process bridge, cat: ${EXEC_MESSAGE_BYTES} B line messages on one connection, ${EXEC_INFLIGHT} in flight`,
    loadArgs: ['--inflight', String(EXEC_INFLIGHT), '--message-bytes', String(EXEC_MESSAGE_BYTES), '--max-count', String(EXEC_MAX_MESSAGES)],
  },
  'exec-roundtrip': {
    id: 'exec-roundtrip', peer: 'websocketd', unit: 'msg/s', divisor: 1, targetRatio: undefined,
    title: `process bridge, cat: ${EXEC_MESSAGE_BYTES} B line messages on one connection, one at a time (round trips)`,
    loadArgs: ['--inflight', '1', '--message-bytes', String(EXEC_MESSAGE_BYTES), '--max-count', String(EXEC_MAX_MESSAGES)],
  },
  'exec-connections': {
    id: 'exec-connections', peer: 'websocketd', unit: 'conn/s', divisor: 1, targetRatio: 1.0, spawnCeiling: true,
    title: `process bridge, cat: new connections (upgrade, one ${EXEC_MESSAGE_BYTES} B echo, close), ${CONNECT_CONCURRENCY} at a time`,
    loadArgs: ['--concurrency', String(CONNECT_CONCURRENCY), '--message-bytes', String(EXEC_MESSAGE_BYTES), '--max-count', String(MAX_CONNECTIONS_PER_RUN)],
  },
  'tcp-bulk': {
    id: 'tcp-bulk', peer: 'websockify', unit: 'MB/s', divisor: 1e6, targetRatio: 3.0, targetMode: 'echo',
    title: `TCP bridge, both directions: ${TCP_CHUNK_BYTES / 1024} KiB binary messages echoed by the target, ${TCP_WINDOW_BYTES / 1024 ** 2} MiB in flight`,
    loadArgs: tcpArgs,
  },
  'tcp-upload': {
    id: 'tcp-upload', peer: 'websockify', unit: 'MB/s', divisor: 1e6, targetRatio: undefined, targetMode: 'sink',
    title: `TCP bridge, client to target: ${TCP_CHUNK_BYTES / 1024} KiB binary messages counted by the target, ${TCP_WINDOW_BYTES / 1024 ** 2} MiB in flight`,
    loadArgs: tcpArgs,
  },
  'tcp-download': {
    id: 'tcp-download', peer: 'websockify', unit: 'MB/s', divisor: 1e6, targetRatio: undefined, targetMode: 'source',
    title: `TCP bridge, target to client: bytes the target sends against the client's credit, ${TCP_WINDOW_BYTES / 1024 ** 2} MiB in flight`,
    loadArgs: tcpArgs,
  },
};

const HELP: Record<BridgeScenario, string> = {
  'exec-messages': `process bridge (cat) vs websocketd: msg/s on one connection, ${EXEC_INFLIGHT} in flight (target >= 1.0x)`,
  'exec-roundtrip': 'process bridge (cat) vs websocketd: msg/s on one connection, one at a time (information)',
  'exec-connections': `process bridge (cat) vs websocketd: new connections/s, ${CONNECT_CONCURRENCY} at a time (target >= 1.0x); also node's child_process alone (the ceiling, information)`,
  'tcp-bulk': 'TCP bridge vs websockify: MB/s echoed through to a TCP target, both directions at once (target >= 3.0x)',
  'tcp-upload': 'TCP bridge vs websockify: MB/s from the client into a TCP sink (information)',
  'tcp-download': 'TCP bridge vs websockify: MB/s from a TCP source to the client (information)',
};

interface RunRecord {
  scenario: BridgeScenario;
  program: Program;
  round: number;
  result?: BridgeLoadResult;
  error?: string;
  /** Child processes of the server still there after the run, and how long they took to go. */
  childrenLeft?: number;
  reapMs?: number;
}

// ---------------------------------------------------------------------------------------------------------------
// One run: the TCP target (tcp-*), the server, the load generator; every process stopped on the way out.

interface Tools {
  websocketd: string | undefined;
  websockify: string | undefined;
  cat: string | undefined;
}

const PORT_LINE = /listening on https?:\/\/[^\s]*:(\d+)/;

async function startServer(spec: ScenarioSpec, program: Program, tools: Tools, targetPort: number): Promise<RunningProcess> {
  // No access log (websocketd runs at --loglevel=error) and no keep-alive pings (neither peer sends any by default).
  const quiet = ['--access-log', 'off', '--ping-interval-ms', '0'];
  if (spec.peer === 'websocketd') {
    // The same absolute path for both, so neither searches PATH for every connection.
    const cat = tools.cat!;
    if (program === 'switchyard') {
      return startPrintingPort('switchyard', process.execPath, [SWITCHYARD_CLI, 'serve', '--port', '0', '--host', HOST, '--exec', `${ROUTE}=${cat}`, ...quiet], PORT_LINE);
    }
    return startOnFreePort('websocketd', tools.websocketd!, (port) => [`--port=${port}`, `--address=${HOST}`, '--loglevel=error', cat]);
  }
  const target = `${HOST}:${targetPort}`;
  if (program === 'switchyard') {
    return startPrintingPort('switchyard', process.execPath, [SWITCHYARD_CLI, 'serve', '--port', '0', '--host', HOST, '--tcp', `${ROUTE}=${target}`, ...quiet], PORT_LINE);
  }
  return startOnFreePort('websockify', tools.websockify!, (port) => [`${HOST}:${port}`, target]);
}

function parseLoadOutput(line: string): BridgeLoadResult {
  let output: BridgeLoadOutput;
  try {
    output = JSON.parse(line) as BridgeLoadOutput;
  } catch {
    throw new Error(`the load generator printed no result (last line: ${line.slice(0, 200)})`);
  }
  if (!output.ok) throw new Error(output.error);
  return output.result;
}

/** The spawn loop is its own load and reaps every program itself before it prints its result. */
async function runSpawnLoop(spec: ScenarioSpec, round: number, tools: Tools, settings: SuiteSettings): Promise<RunRecord> {
  const record: RunRecord = { scenario: spec.id, program: 'node-spawn', round };
  const args = [
    SPAWN_LOOP_SCRIPT, '--program', tools.cat!, '--concurrency', String(CONNECT_CONCURRENCY), '--message-bytes', String(EXEC_MESSAGE_BYTES),
    '--max-count', String(MAX_CONNECTIONS_PER_RUN), '--warmup-ms', String(settings.warmupMs), '--duration-ms', String(settings.durationMs),
  ];
  try {
    // Not counted afterwards: the loop itself waits until every `cat` it started is reaped before it reports.
    record.result = parseLoadOutput(await runToEnd('spawn-loop', process.execPath, args, settings.warmupMs + settings.durationMs + 90_000));
  } catch (error) {
    record.error = error instanceof Error ? error.message : String(error);
  }
  return record;
}

async function runOne(spec: ScenarioSpec, program: Program, round: number, tools: Tools, settings: SuiteSettings): Promise<RunRecord> {
  if (program === 'node-spawn') return runSpawnLoop(spec, round, tools, settings);
  const record: RunRecord = { scenario: spec.id, program, round };
  let target: RunningProcess | undefined;
  let server: RunningProcess | undefined;
  try {
    if (spec.targetMode !== undefined) {
      target = await startPrintingPort('tcp-target', process.execPath, [TARGET_SCRIPT, '--mode', spec.targetMode], /listening on [^\s]*:(\d+)/);
    }
    server = await startServer(spec, program, tools, target?.port ?? 0);
    const args = [
      LOAD_SCRIPT, '--scenario', spec.id, '--host', HOST, '--port', String(server.port), '--path', ROUTE, '--server-pid', String(server.pid),
      '--warmup-ms', String(settings.warmupMs), '--duration-ms', String(settings.durationMs), ...spec.loadArgs,
      ...(target === undefined ? [] : ['--target-pid', String(target.pid)]),
    ];
    record.result = parseLoadOutput(await runToEnd('load', process.execPath, args, settings.warmupMs + settings.durationMs + 90_000));
    // Every `cat` (or websockify worker) must be gone once its connection is: nothing left running or unreaped.
    const { left, waitedMs } = await waitForNoDescendants(server.pid, REAP_TIMEOUT_MS);
    record.childrenLeft = left;
    record.reapMs = waitedMs;
    if (left > 0) throw new Error(`${left} child process(es) of ${program} still there ${REAP_TIMEOUT_MS / 1000} s after the last connection closed`);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    record.error = server === undefined ? message : `${message}${server.outputTail() === '' ? '' : ` (server output: ${server.outputTail().slice(-300)})`}`;
  } finally {
    if (server !== undefined) await stopProcess(server);
    if (target !== undefined) await stopProcess(target);
  }
  return record;
}

// ---------------------------------------------------------------------------------------------------------------
// Reporting.

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

const formatInteger = (value: number): string => Math.round(value).toLocaleString('en-US');
const formatFixed = (value: number, digits: number): string => value.toFixed(digits);

function formatRate(spec: ScenarioSpec, ratePerSecond: number): string {
  const value = ratePerSecond / spec.divisor;
  return spec.divisor === 1 ? formatInteger(value) : formatFixed(value, 1);
}

function formatTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: string[]): string =>
    cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ').trimEnd();
  return [line(headers), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)].join('\n');
}

function describeRun(spec: ScenarioSpec, record: RunRecord): string {
  if (record.error !== undefined) return `FAILED: ${record.error}`;
  const result = record.result!;
  return (
    `${formatRate(spec, result.ratePerSecond)} ${spec.unit}  server CPU ${formatInteger(result.serverCpuPercent)}%  ` +
    `load CPU ${formatInteger(result.loadCpuPercent)}%` +
    (result.targetCpuPercent === undefined ? '' : `  target CPU ${formatInteger(result.targetCpuPercent)}%`) +
    (result.protocol === '' ? '' : `  subprotocol ${result.protocol}`) +
    (record.childrenLeft === undefined ? '' : `  children left ${record.childrenLeft} (after ${formatInteger(record.reapMs ?? 0)} ms)`) +
    (result.hitCap ? '  (cap reached: window cut short)' : '')
  );
}

/** Programs compared in a scenario: switchyard, its peer, and the spawn ceiling where the scenario has one. */
function programsOf(spec: ScenarioSpec): Program[] {
  return spec.spawnCeiling === true ? ['switchyard', spec.peer, 'node-spawn'] : ['switchyard', spec.peer];
}

function report(spec: ScenarioSpec, records: RunRecord[], rounds: number, write: (text: string) => void): Verdict[] {
  const resultsOf = (program: Program): BridgeLoadResult[] =>
    records.filter((record) => record.program === program && record.result !== undefined && record.error === undefined).map((record) => record.result!);
  const rows = programsOf(spec).map((program) => {
    const results = resultsOf(program);
    if (results.length === 0) return [program, 'failed', '', '', '', ''];
    const perCpuSecond = results.map((r) => r.ratePerSecond / Math.max(r.serverCpuPercent / 100, 0.01));
    return [
      program,
      formatRate(spec, median(results.map((r) => r.ratePerSecond))),
      `${formatInteger(median(results.map((r) => r.serverCpuPercent)))}%`,
      `${formatInteger(median(results.map((r) => r.loadCpuPercent)))}%`,
      formatRate(spec, median(perCpuSecond)),
      results.map((r) => formatRate(spec, r.ratePerSecond)).join(' / ') + (results.length < rounds ? ` (${rounds - results.length} failed)` : ''),
    ];
  });
  write(`\n${spec.id}: ${spec.title}\n`);
  write(`${formatTable(['server', spec.unit, 'server CPU', 'load CPU', `${spec.unit} per server CPU-s`, `${spec.unit} per round`], rows)}\n`);

  /** program / peer as a ratio of medians, with the ratio of each round (how much of it is noise). */
  const compare = (program: Program): { ratio: number; paired: string; value: string } | undefined => {
    const mine = resultsOf(program);
    const theirs = resultsOf(spec.peer);
    if (mine.length === 0 || theirs.length === 0) return undefined;
    const ratio = median(mine.map((r) => r.ratePerSecond)) / median(theirs.map((r) => r.ratePerSecond));
    const pairs: string[] = [];
    for (let round = 0; round < rounds; round++) {
      const ofRound = (of: Program): BridgeLoadResult | undefined =>
        records.find((record) => record.round === round && record.program === of && record.error === undefined)?.result;
      const a = ofRound(program);
      const b = ofRound(spec.peer);
      pairs.push(a !== undefined && b !== undefined ? `${formatFixed(a.ratePerSecond / b.ratePerSecond, 2)}x` : 'n/a');
    }
    const paired = pairs.join(', ');
    const value =
      `${formatRate(spec, median(mine.map((r) => r.ratePerSecond)))} vs ${formatRate(spec, median(theirs.map((r) => r.ratePerSecond)))} ${spec.unit} ` +
      `(${formatFixed(ratio, 2)}x; per round ${paired})`;
    return { ratio, paired, value };
  };

  const verdicts: Verdict[] = [];
  const description = describeTarget(spec);
  const main = compare('switchyard');
  const target = spec.targetRatio;
  if (main === undefined) {
    write('-> n/a (runs failed)\n');
    verdicts.push({ description, value: 'n/a (runs failed)', met: undefined, ...(target === undefined && { info: true }) });
  } else {
    const met = target === undefined ? main.ratio >= 1 : main.ratio >= target;
    write(
      `-> switchyard / ${spec.peer} = ${formatFixed(main.ratio, 2)}x ${spec.unit} (per round ${main.paired}; ` +
        (target === undefined ? 'information, no target)\n' : `target >= ${formatFixed(target, 1)}x): ${met ? 'PASS' : 'MISS'}\n`),
    );
    verdicts.push({ description, value: main.value, met, ...(target === undefined && { info: true }) });
  }
  if (main !== undefined && target !== undefined && !(main.ratio >= target)) {
    const budget = cpuBudget(spec, resultsOf('switchyard'), resultsOf(spec.peer), target);
    if (budget !== undefined) write(`-> ${budget}\n`);
  }
  if (spec.spawnCeiling === true) {
    const ceilingDescription = `${spec.id} ${spec.unit}: node-spawn (child_process.spawn alone, no server) / ${spec.peer}`;
    const ceiling = compare('node-spawn');
    if (ceiling === undefined) {
      write('-> node-spawn: n/a (runs failed)\n');
      verdicts.push({ description: ceilingDescription, value: 'n/a (runs failed)', met: undefined, info: true });
    } else {
      // Per CPU-second is the steadier figure on a shared machine: what one connection costs, whoever got the cores.
      const perCpuSecond = (program: Program): number =>
        median(resultsOf(program).map((r) => r.ratePerSecond / Math.max(r.serverCpuPercent / 100, 0.01)));
      const cpuRatio = perCpuSecond('node-spawn') / perCpuSecond(spec.peer);
      write(
        `-> node-spawn / ${spec.peer} = ${formatFixed(ceiling.ratio, 2)}x ${spec.unit}, ${formatFixed(cpuRatio, 2)}x ${spec.unit} per CPU-second ` +
          `(per round ${ceiling.paired}; information: the most a Node server that starts a program per connection with ` +
          'child_process could reach here)\n',
      );
      verdicts.push({
        description: ceilingDescription, value: `${ceiling.value}; ${formatFixed(cpuRatio, 2)}x per CPU-second`, met: ceiling.ratio >= 1, info: true,
      });
    }
  }
  return verdicts;
}

/**
 * Why a missed throughput target is out of reach on this machine, when it is: the load generator and the TCP
 * target share the cores with the bridge, and at the target rate they alone would take what their measured CPU per
 * byte says; what is left must carry the target rate. Undefined when the CPU of the others was not measured.
 */
function cpuBudget(spec: ScenarioSpec, mine: BridgeLoadResult[], theirs: BridgeLoadResult[], targetRatio: number): string | undefined {
  if (mine.length === 0 || theirs.length === 0 || mine.some((r) => r.targetCpuPercent === undefined)) return undefined;
  const rate = median(mine.map((r) => r.ratePerSecond));
  const othersPercent = median(mine.map((r) => r.loadCpuPercent + (r.targetCpuPercent ?? 0)));
  const required = targetRatio * median(theirs.map((r) => r.ratePerSecond));
  const othersNeeded = (othersPercent / rate) * required;
  const capacity = availableParallelism() * 100;
  const left = capacity - othersNeeded;
  const measuredPerCpuSecond = median(mine.map((r) => r.ratePerSecond / Math.max(r.serverCpuPercent / 100, 0.01)));
  const head =
    `budget at ${formatFixed(targetRatio, 1)}x ${spec.peer} (${formatRate(spec, required)} ${spec.unit}): the load generator and the target ` +
    `(${formatInteger(othersPercent)}% at ${formatRate(spec, rate)} ${spec.unit}) would need ${formatInteger(othersNeeded)}% of the ${capacity}%`;
  if (left <= 0) return `${head}, nothing left for the bridge`;
  const neededPerCpuSecond = required / (left / 100);
  return (
    `${head}; the ${formatInteger(left)}% left would have to carry ${formatRate(spec, neededPerCpuSecond)} ${spec.unit} per bridge CPU-second, ` +
    `switchyard measured ${formatRate(spec, measuredPerCpuSecond)} (${formatFixed(neededPerCpuSecond / measuredPerCpuSecond, 2)}x short)`
  );
}

function describeTarget(spec: ScenarioSpec): string {
  return spec.targetRatio === undefined
    ? `${spec.id} ${spec.unit}: switchyard / ${spec.peer}`
    : `${spec.id} ${spec.unit}: switchyard >= ${formatFixed(spec.targetRatio, 1)}x ${spec.peer}`;
}

// ---------------------------------------------------------------------------------------------------------------
// The suite.

/** Why a scenario cannot run on this machine, or undefined. */
function missingFor(spec: ScenarioSpec, tools: Tools): string | undefined {
  if (!existsSync(SWITCHYARD_CLI)) return `${SWITCHYARD_CLI} not found; build first (npm run build)`;
  if (spec.peer === 'websocketd') {
    if (tools.websocketd === undefined) return 'websocketd not found on PATH or in /usr/bin (install the Debian package websocketd)';
    if (tools.cat === undefined) return 'cat not found on PATH';
    return undefined;
  }
  return tools.websockify === undefined ? 'websockify not found on PATH or in /usr/bin (install the Debian package websockify)' : undefined;
}

async function run(selected: readonly string[], settings: SuiteSettings): Promise<SuiteReport> {
  const tools: Tools = { websocketd: findProgram('websocketd'), websockify: findProgram('websockify'), cat: findProgram('cat') };
  const verdicts: Verdict[] = [];
  const failures: string[] = [];
  const write = settings.write;
  write(
    `\nbridge benchmarks: ${settings.rounds} rounds, order mirrored every round (switchyard first in round 1); ` +
      `${settings.warmupMs} ms warm-up + ${settings.durationMs} ms measured per run; load generator: node ${LOAD_SCRIPT}\n`,
  );
  for (const id of selected) {
    const spec = SPECS[id as BridgeScenario];
    const missing = missingFor(spec, tools);
    if (missing !== undefined) {
      write(`bench: ${spec.id} skipped: ${missing}\n`);
      verdicts.push({ description: describeTarget(spec), value: `N/A: ${missing}`, met: undefined, ...(spec.targetRatio === undefined && { info: true }) });
      continue;
    }
    const startedAt = performance.now();
    write(`running ${spec.id}: ${spec.title}\n`);
    const records: RunRecord[] = [];
    for (let round = 0; round < settings.rounds; round++) {
      const order = round % 2 === 0 ? programsOf(spec) : programsOf(spec).reverse();
      for (const program of order) {
        const record = await runOne(spec, program, round, tools, settings);
        records.push(record);
        write(`  round ${round + 1} ${program.padEnd(10)} ${describeRun(spec, record)}\n`);
        if (record.error !== undefined) failures.push(`${spec.id} round ${round + 1} ${program}: ${record.error}`);
      }
    }
    write(`  (${spec.id} took ${formatInteger((performance.now() - startedAt) / 1000)} s)\n`);
    verdicts.push(...report(spec, records, settings.rounds, write));
  }
  return { verdicts, failures };
}

export const bridgeSuite: BenchSuite = {
  scenarios: ['exec-messages', 'exec-roundtrip', 'exec-connections', 'tcp-bulk', 'tcp-upload', 'tcp-download'],
  help: HELP,
  run,
};
