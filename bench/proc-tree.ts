// A process and everything below it, from /proc (Linux only): the bridge servers start a program or a worker
// process per connection (cat under switchyard and websocketd, a forked worker under websockify), so their CPU
// time and their leftover children are only seen by walking the tree.
import { readdirSync, readFileSync } from 'node:fs';
import { clockTicksPerSecond } from './proc-stats.js';

interface StatLine {
  ppid: number;
  /** utime + stime + cutime + cstime in clock ticks: its own CPU and that of the children it has reaped. */
  ticks: number;
  state: string;
}

function readStat(pid: number): StatLine | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined; // gone between the listing and the read
  }
  // The command name (field 2) may contain spaces and parentheses; the fields after it start after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return {
    state: fields[0] ?? '?',
    ppid: Number(fields[1]),
    ticks: Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]),
  };
}

function allStats(): Map<number, StatLine> {
  const stats = new Map<number, StatLine>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    const stat = readStat(pid);
    if (stat !== undefined) stats.set(pid, stat);
  }
  return stats;
}

function descendantsIn(stats: Map<number, StatLine>, rootPid: number): number[] {
  const childrenOf = new Map<number, number[]>();
  for (const [pid, stat] of stats) {
    const list = childrenOf.get(stat.ppid);
    if (list === undefined) childrenOf.set(stat.ppid, [pid]);
    else list.push(pid);
  }
  const found: number[] = [];
  const queue = [rootPid];
  while (queue.length > 0) {
    for (const child of childrenOf.get(queue.pop()!) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

/** PIDs of every live descendant of `rootPid` (zombies included: a zombie is a child not reaped yet). */
export function descendantPids(rootPid: number): number[] {
  return descendantsIn(allStats(), rootPid);
}

/**
 * CPU seconds used so far by `rootPid` and every descendant, live or reaped: each process's own time plus the
 * time of the children it has waited for. A child that exited between two readings moves from its own line into
 * its parent's, so the difference of two readings counts it once (a child not reaped by then is still listed).
 */
export function readTreeCpuSeconds(rootPid: number): number {
  const stats = allStats();
  let ticks = stats.get(rootPid)?.ticks ?? 0;
  for (const pid of descendantsIn(stats, rootPid)) ticks += stats.get(pid)?.ticks ?? 0;
  return ticks / clockTicksPerSecond();
}
