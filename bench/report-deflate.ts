// The permessage-deflate tables of the report: deflate-echo (one row per zlib level, the target on the defaults)
// and deflate-idle (memory per connection before and after one compressed message each way).
import type { EchoResult, IdleResult } from './load.js';
import type { Scenario } from './scenarios.js';
import { SWITCHYARD_CLI, serverSpecs, type ServerName, type ServerSpec } from './servers.js';
import type { Verdict } from './suite.js';
import { formatFixed, formatInteger, formatTable, median, messagesPerServerCpuSecond, type ReportTools } from './report-tools.js';

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
export function printDeflateEcho(scenario: Scenario, displayOrder: readonly ServerName[], verdicts: Verdict[], tools: ReportTools): void {
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
export function printDeflateIdle(scenario: Scenario, displayOrder: readonly ServerName[], verdicts: Verdict[], tools: ReportTools): void {
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
