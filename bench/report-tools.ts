// What the report's tables share: the record of one run, number formats, the median, the table layout, and the
// lookups over a run's records (results per server, per-round values, paired same-round ratios).
import type { EchoResult, LoadResult } from './load.js';
import type { BroadcastResult } from './broadcast-run.js';
import type { ScenarioId } from './scenarios.js';
import type { ServerName, ServerSpec } from './servers.js';

export type RunResult = LoadResult | BroadcastResult;

export interface RunRecord {
  scenario: ScenarioId;
  server: ServerName;
  round: number;
  result?: RunResult;
  error?: string;
}

const integerFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
export const formatInteger = (value: number): string => integerFormat.format(value);
export const formatFixed = (value: number, digits: number): string => value.toFixed(digits);

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export function formatTable(headers: string[], rows: string[][], leftAligned: number[] = [0]): string[] {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((cell, column) => (leftAligned.includes(column) ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)];
}

export function messagesPerServerCpuSecond(result: EchoResult): number {
  return result.serverCpuPercent > 0 ? (result.messagesPerSecond * 100) / result.serverCpuPercent : 0;
}

/** What printReport shares with the deflate tables: lookups over one bench run's records (see reportTools). */
export interface ReportTools {
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

/** The lookups printReport and the deflate tables use, over `records` from `rounds` rounds. */
export function reportTools(records: RunRecord[], specs: Record<ServerName, ServerSpec>, rounds: number): ReportTools {
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
  return { resultsOf, perRound, pairedRatios, specs, candidate };
}
