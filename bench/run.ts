// `npm run bench`: parses the options, then for each scenario (scenarios.ts) starts each server under test
// (servers.ts), drives it with the load generator, and prints the tables and targets (report.ts). Servers run
// one at a time, in a mirrored order across rounds (ABBA) because the machine is shared and noisy.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { LoadResult } from './load.js';
import type { ProfileWindow } from './profile-summary.js';
import { summariseProfile } from './profile-summary.js';
import { bridgeSuite } from './bridges.js';
import { clientSuite } from './client-bench.js';
import type { BenchSuite, Verdict } from './suite.js';
import { killAllChildren, stopChild, track } from './child-processes.js';
import { CHILD_ENV, LOAD_SCRIPT, SWITCHYARD_CLI, failureDetail, serverSpecs, startServer, type RunningServer, type ServerName, type ServerSpec } from './servers.js';
import { SCENARIO_IDS, SUBSCRIBERS_PER_LOAD_PROCESS, scenarios, type Scenario, type ScenarioId, type Settings } from './scenarios.js';
import { runBroadcastBounded } from './broadcast-run.js';
import { describeRun, printReport } from './report.js';
import { formatFixed, type RunRecord, type RunResult } from './report-tools.js';

/** Suites comparing against other peers (websocketd, websockify, the ws client); each owns its processes. */
const SUITES: readonly BenchSuite[] = [clientSuite, bridgeSuite];

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
// Echo and idle: one load.js process per run, which prints one JSON line with the result.

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
      const detail = failureDetail(stderr, server);
      rejectLoad(new Error(`load generator failed (${signal ?? code}): ${detail || 'no output'}`));
    });
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Main.

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
