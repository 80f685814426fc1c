// Summarises a V8 .cpuprofile (from `node --cpu-prof`): the functions and files with the most self time.
// Used by `run.ts --profile`; also runnable on its own: node dist/bench/profile-summary.js FILE.cpuprofile [TOP]
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime?: number;
  samples?: number[];
  timeDeltas?: number[];
}

/**
 * A stretch of time in CLOCK_MONOTONIC microseconds, the clock V8 stamps profile samples with and the one
 * `process.hrtime` reads, so a window measured in another process (the bench or the load generator) applies.
 */
export interface ProfileWindow {
  label: string;
  startUs: number;
  endUs: number;
}

/** Self-time hit counts per node id, from the samples inside `window` (or every sample's node hitCount). */
function hitsPerNode(profile: CpuProfile, window: ProfileWindow | undefined): Map<number, number> {
  const hits = new Map<number, number>();
  if (window === undefined || profile.samples === undefined || profile.timeDeltas === undefined || profile.startTime === undefined) {
    for (const node of profile.nodes) if ((node.hitCount ?? 0) > 0) hits.set(node.id, node.hitCount!);
    return hits;
  }
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i]!;
    if (at < window.startUs || at > window.endUs) continue;
    const id = profile.samples[i]!;
    hits.set(id, (hits.get(id) ?? 0) + 1);
  }
  return hits;
}

interface Row {
  name: string;
  samples: number;
}

function shortUrl(url: string): string {
  if (url === '') return '';
  if (url.startsWith('file://')) {
    const path = relative(process.cwd(), fileURLToPath(url));
    return path.replace(/^node_modules\//, '');
  }
  return url;
}

function top(map: Map<string, number>, count: number): Row[] {
  return [...map.entries()]
    .map(([name, samples]) => ({ name, samples }))
    .sort((a, b) => b.samples - a.samples)
    .slice(0, count);
}

/**
 * Returns printable lines: top functions by self time, then self time per file, as % of busy (non-idle) samples.
 * With `windows`, one summary per window from the samples taken inside it (the measured part of a run, without
 * start-up and handshakes); without, one summary of the whole profile.
 */
export function summariseProfile(file: string, topCount = 15, windows: ProfileWindow[] = []): string[] {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  if (windows.length === 0) return summarise(profile, file, topCount, undefined);
  return windows.flatMap((window) => summarise(profile, file, topCount, window));
}

function summarise(profile: CpuProfile, file: string, topCount: number, window: ProfileWindow | undefined): string[] {
  const hitsById = hitsPerNode(profile, window);
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  let busySamples = 0;
  let idleSamples = 0;
  for (const node of profile.nodes) {
    const hits = hitsById.get(node.id) ?? 0;
    if (hits === 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') {
      idleSamples += hits;
      continue;
    }
    busySamples += hits;
    const where = shortUrl(url);
    const name = `${functionName || '(anonymous)'}${where ? ` ${where}:${lineNumber + 1}` : ''}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + hits);
    const fileKey = where || functionName;
    byFile.set(fileKey, (byFile.get(fileKey) ?? 0) + hits);
  }
  const percent = (samples: number): string => `${((samples * 100) / Math.max(1, busySamples)).toFixed(1).padStart(5)}%`;
  const lines = [
    `profile ${file}${window === undefined ? '' : ` [${window.label}: ${((window.endUs - window.startUs) / 1e6).toFixed(1)} s window only]`}: ` +
      `${busySamples} busy samples, ${idleSamples} idle`,
    `  top ${topCount} functions by self time (% of busy samples):`,
    ...top(byFunction, topCount).map((row) => `    ${percent(row.samples)}  ${row.name}`),
    `  self time by file:`,
    ...top(byFile, 10).map((row) => `    ${percent(row.samples)}  ${row.name}`),
  ];
  return lines;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2];
  if (file === undefined) {
    process.stderr.write('usage: node dist/bench/profile-summary.js FILE.cpuprofile [TOP]\n');
    process.exit(2);
  }
  const topCount = Number(process.argv[3] ?? 15);
  process.stdout.write(`${summariseProfile(file, topCount).join('\n')}\n`);
}
