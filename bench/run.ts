// `npm run bench`: starts each server under test as its own child process, drives it with the load generator
// (another child), and prints per-scenario tables with switchyard/ws ratios against the targets. Servers run
// one at a time, in a mirrored order across rounds (ABBA) because the machine is shared and noisy.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { EchoResult, IdleResult, LoadResult } from './load.js';
import { summariseProfile } from './profile-summary.js';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const SWITCHYARD_CLI = resolve(BENCH_DIR, '../src/cli/main.js');
const LOAD_SCRIPT = join(BENCH_DIR, 'load.js');

// ---------------------------------------------------------------------------------------------------------------
// Child processes: every one we start is tracked and killed on any exit path.

const children = new Set<ChildProcess>();

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function killAllChildren(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  children.clear();
}

process.on('exit', killAllChildren);
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

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolveExit) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolveExit(false);
    }, timeoutMs);
    const onExit = (): void => {
      clearTimeout(timer);
      resolveExit(true);
    };
    child.once('exit', onExit);
  });
}

async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  if (!(await waitForExit(child, graceMs))) {
    child.kill('SIGKILL');
    await waitForExit(child, 2000);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Servers under test.

type ServerName = 'switchyard' | 'ws' | 'tcp';

interface ServerSpec {
  name: ServerName;
  label: string;
  script: string;
  args: string[];
}

function serverSpecs(candidate: 'switchyard' | 'ws'): Record<ServerName, ServerSpec> {
  const wsSpec = { script: join(BENCH_DIR, 'ws-echo-server.js'), args: [] };
  return {
    switchyard:
      candidate === 'switchyard'
        ? {
            name: 'switchyard',
            label: 'switchyard',
            script: SWITCHYARD_CLI,
            args: ['serve', '--port', '0', '--host', '127.0.0.1', '--echo', '/echo', '--ping-interval-ms', '0'],
          }
        : { name: 'switchyard', label: 'ws-as-cand', ...wsSpec },
    ws: { name: 'ws', label: 'ws', ...wsSpec },
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

type ScenarioId = 'echo64' | 'echo1m' | 'idle';

interface Scenario {
  id: ScenarioId;
  title: string;
  loadArgs: string[];
  timeoutMs: number;
}

interface Settings {
  warmupMs: number;
  durationMs: number;
  idleConnections: number;
  settleMs: number;
}

function scenarios(settings: Settings): Record<ScenarioId, Scenario> {
  const timing = ['--warmup-ms', String(settings.warmupMs), '--duration-ms', String(settings.durationMs)];
  const echoTimeoutMs = settings.warmupMs + settings.durationMs + 30_000;
  return {
    echo64: {
      id: 'echo64',
      title: '64 B text echo, 100 connections x 16 in flight',
      loadArgs: ['--scenario', 'echo', '--connections', '100', '--inflight', '16', '--payload-bytes', '64', '--max-messages', '50000000', ...timing],
      timeoutMs: echoTimeoutMs,
    },
    echo1m: {
      id: 'echo1m',
      title: '1 MiB binary echo, 4 connections x 2 in flight',
      loadArgs: ['--scenario', 'echo', '--connections', '4', '--inflight', '2', '--payload-bytes', String(1 << 20), '--binary', '--max-messages', '100000', ...timing],
      timeoutMs: echoTimeoutMs,
    },
    idle: {
      id: 'idle',
      title: `${settings.idleConnections.toLocaleString('en-US')} idle connections (opened in batches of 200)`,
      loadArgs: ['--scenario', 'idle', '--connections', String(settings.idleConnections), '--batch-size', '200', '--warmup-connections', '50', '--settle-ms', String(settings.settleMs)],
      timeoutMs: 90_000,
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
  result?: LoadResult;
  error?: string;
}

interface Verdict {
  description: string;
  value: string;
  met: boolean | undefined;
}

const USAGE = `usage: npm run bench -- [options]
  --check                 exit 1 when a target is missed (default: print it, exit 0)
  --quick                 shorter runs (0.5 s warm-up, 2 s measured, 1,000 idle connections), for smoke tests
  --rounds N              rounds, each server once per round, order mirrored every round (default 2)
  --warmup-ms N           warm-up before each measurement (default 1000)
  --duration-ms N         measured time per echo run (default 5000)
  --idle-connections N    connections in the idle-memory scenario (default 5000)
  --scenarios LIST        comma list of echo64,echo1m,idle (default all)
  --no-reference          skip the raw TCP echo reference line
  --candidate ws          put ws in switchyard's slot (harness self-check: ratios should be near 1.00x)
  --profile LIST          run these servers (switchyard,ws,tcp) under node --cpu-prof and print the top functions;
                          profiling slows the server, so treat those numbers as diagnostics only
  --json FILE             also write every run's raw result to FILE`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      check: { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      'warmup-ms': { type: 'string' },
      'duration-ms': { type: 'string' },
      'idle-connections': { type: 'string' },
      scenarios: { type: 'string', default: 'echo64,echo1m,idle' },
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
  };
  const rounds = positiveInteger(values.rounds, 2, '--rounds');
  if (values.candidate !== 'switchyard' && values.candidate !== 'ws') throw new RangeError('--candidate must be switchyard or ws');
  const specs = serverSpecs(values.candidate);
  const allScenarios = scenarios(settings);
  const selected = values.scenarios.split(',').map((id) => id.trim()).filter((id) => id !== '');
  for (const id of selected) if (!(id in allScenarios)) throw new RangeError(`--scenarios: unknown scenario "${id}"`);
  const scenarioList = selected.map((id) => allScenarios[id as ScenarioId]);
  const profiled = new Set(values.profile.split(',').map((name) => name.trim()).filter((name) => name !== ''));
  for (const name of profiled) if (!(name in specs)) throw new RangeError(`--profile: unknown server "${name}"`);

  if (values.candidate === 'switchyard' && !existsSync(SWITCHYARD_CLI)) {
    process.stderr.write(`bench: ${SWITCHYARD_CLI} not found; build the server first (npm run build)\n`);
    return 1;
  }
  if (scenarioList.some((scenario) => scenario.id === 'idle')) {
    const limit = Number(/^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? Infinity);
    if (limit < settings.idleConnections + 500) {
      process.stderr.write(`bench: ulimit -n is ${limit}; the idle scenario needs more than ${settings.idleConnections + 500}\n`);
      return 1;
    }
  }

  const withReference = !values['no-reference'];
  const orderFor = (round: number): ServerName[] => {
    const pair: ServerName[] = round % 2 === 0 ? ['switchyard', 'ws'] : ['ws', 'switchyard'];
    if (!withReference) return pair;
    return round % 2 === 0 ? ['tcp', ...pair] : [...pair, 'tcp'];
  };

  const cpuInfo = cpus();
  process.stdout.write(
    `switchyard bench: node ${process.version}, ${cpuInfo.length} CPUs (${cpuInfo[0]?.model.trim() ?? 'unknown'}), ` +
      `load average ${loadavg().map((value) => value.toFixed(2)).join(' ')}\n` +
      `${rounds} rounds, order ${Array.from({ length: rounds }, (_, round) => orderFor(round).map((name) => specs[name].label).join(', ')).join(' | ')}; ` +
      `echo runs: ${settings.warmupMs} ms warm-up + ${settings.durationMs} ms measured\n`,
  );
  if (values.candidate === 'ws') process.stdout.write('self-check: the candidate slot runs ws, so every ratio should be near 1.00x\n');
  if (profiled.size > 0) process.stdout.write(`profiling ${[...profiled].join(', ')}: their numbers are slowed by the profiler\n`);
  process.stdout.write('\n');

  const records: RunRecord[] = [];
  for (const scenario of scenarioList) {
    process.stdout.write(`running ${scenario.id}: ${scenario.title}\n`);
    for (let round = 0; round < rounds; round++) {
      for (const name of orderFor(round)) {
        const spec = specs[name];
        const record: RunRecord = { scenario: scenario.id, server: name, round };
        const profileDir = join(values['profile-dir'], `${scenario.id}-${name}-r${round + 1}`);
        const nodeArgs = profiled.has(name) ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
        if (profiled.has(name)) mkdirSync(profileDir, { recursive: true });
        let server: RunningServer | undefined;
        try {
          server = await startServer(spec, nodeArgs);
          record.result = await runLoad(server, scenario);
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
          for (const file of profiles) process.stdout.write(`${summariseProfile(join(profileDir, file)).map((line) => `    ${line}`).join('\n')}\n`);
        }
      }
    }
  }

  if (values.json !== undefined) writeFileSync(values.json, `${JSON.stringify({ settings, rounds, records }, null, 2)}\n`);

  const verdicts = printReport(records, scenarioList, specs, orderFor(0), rounds);
  const broken = records.filter((record) => record.error !== undefined);
  if (broken.length > 0) {
    process.stdout.write(`\n${broken.length} run(s) failed:\n`);
    for (const record of broken) process.stdout.write(`  ${record.scenario} round ${record.round + 1} ${specs[record.server].label}: ${record.error}\n`);
    return 1;
  }
  const missed = verdicts.filter((verdict) => verdict.met === false);
  if (values.check && missed.length > 0) return 1;
  return 0;
}

function messagesPerServerCpuSecond(result: EchoResult): number {
  return result.serverCpuPercent > 0 ? (result.messagesPerSecond * 100) / result.serverCpuPercent : 0;
}

function describeRun(record: RunRecord): string {
  const result = record.result;
  if (result === undefined) return `FAILED: ${record.error ?? 'unknown error'}`;
  if (result.kind === 'echo') {
    return (
      `${formatInteger(result.messagesPerSecond).padStart(10)} msg/s ${formatFixed(result.payloadMBps, 1).padStart(7)} MB/s  ` +
      `server CPU ${formatInteger(result.serverCpuPercent)}%  load CPU ${formatInteger(result.loadCpuPercent)}%` +
      (result.unexpectedFrames > 0 ? `  (${result.unexpectedFrames} unexpected frames)` : '') +
      (result.hitMessageCap ? '  (hit message cap)' : '')
    );
  }
  return (
    `${formatFixed(result.kibPerConnection, 2)} KiB/conn  RSS ${formatInteger(result.rssBeforeKiB)} -> ${formatInteger(result.rssAfterKiB)} KiB  ` +
    `opened in ${formatInteger(result.openMs)} ms`
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
  const displayOrder = (['switchyard', 'ws', 'tcp'] as const).filter((name) => serverOrder.includes(name));
  const resultsOf = <K extends LoadResult['kind']>(scenario: ScenarioId, server: ServerName, kind: K) =>
    records
      .filter((record) => record.scenario === scenario && record.server === server && record.result?.kind === kind)
      .map((record) => record.result as Extract<LoadResult, { kind: K }>);
  const perRound = (values: number[], format: (value: number) => string): string =>
    values.length === rounds ? values.map(format).join(' / ') : `${values.map(format).join(' / ')} (${rounds - values.length} failed)`;
  const candidate = specs.switchyard.label;

  process.stdout.write(`\n${'='.repeat(100)}\nresults (median over ${rounds} rounds${rounds === 2 ? ', which is the mean of the two' : ''})\n`);

  for (const scenario of scenarioList) {
    process.stdout.write(`\n${scenario.title}\n`);
    if (scenario.id === 'idle') {
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
      const description = `KiB per idle connection ${candidate} <= ws`;
      if (mine.length === 0 || theirs.length === 0) {
        verdicts.push({ description, value: 'n/a (runs failed)', met: undefined });
      } else {
        const ratio = median(mine) / median(theirs);
        const met = median(mine) <= median(theirs);
        const value = `${formatFixed(median(mine), 2)} vs ${formatFixed(median(theirs), 2)} KiB (${formatFixed(ratio, 2)}x)`;
        verdicts.push({ description, value, met });
        process.stdout.write(`-> ${candidate} / ws = ${formatFixed(ratio, 2)}x memory per connection (target <= 1.00x): ${met ? 'PASS' : 'MISS'}\n`);
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
    const target = scenario.id === 'echo64' ? 2.0 : 1.5;
    const description = `${scenario.id === 'echo64' ? '64 B' : '1 MiB'} echo msg/s ${candidate} >= ${formatFixed(target, 1)}x ws`;
    const mine = resultsOf(scenario.id, 'switchyard', 'echo');
    const theirs = resultsOf(scenario.id, 'ws', 'echo');
    if (mine.length === 0 || theirs.length === 0) {
      verdicts.push({ description, value: 'n/a (runs failed)', met: undefined });
      continue;
    }
    const ratio = median(mine.map((r) => r.messagesPerSecond)) / median(theirs.map((r) => r.messagesPerSecond));
    // Paired ratios (same round) show how much of the ratio is noise.
    const paired: string[] = [];
    for (let round = 0; round < rounds; round++) {
      const a = records.find((r) => r.scenario === scenario.id && r.server === 'switchyard' && r.round === round)?.result;
      const b = records.find((r) => r.scenario === scenario.id && r.server === 'ws' && r.round === round)?.result;
      if (a?.kind === 'echo' && b?.kind === 'echo') paired.push(`${formatFixed(a.messagesPerSecond / b.messagesPerSecond, 2)}x`);
    }
    const met = ratio >= target;
    const efficiencyRatio = median(mine.map(messagesPerServerCpuSecond)) / median(theirs.map(messagesPerServerCpuSecond));
    verdicts.push({ description, value: `${formatFixed(ratio, 2)}x`, met });
    process.stdout.write(
      `-> ${candidate} / ws = ${formatFixed(ratio, 2)}x msg/s (per round ${paired.join(', ')}; target >= ${formatFixed(target, 1)}x): ${met ? 'PASS' : 'MISS'}\n` +
        `   ${candidate} / ws = ${formatFixed(efficiencyRatio, 2)}x messages per server CPU-second (less sensitive to CPU stolen by other work)\n`,
    );
  }

  process.stdout.write('\ntargets\n');
  for (const verdict of verdicts) {
    const status = verdict.met === undefined ? 'N/A ' : verdict.met ? 'PASS' : 'MISS';
    process.stdout.write(`  ${status}  ${verdict.description}: ${verdict.value}\n`);
  }
  return verdicts;
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
