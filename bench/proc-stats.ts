// Reads another process's CPU time and resident memory from /proc (Linux only), so each server child is measured
// on its own and the load generator is not charged for it.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let cachedClockTicks: number | undefined;

/** USER_HZ, the unit of utime/stime in /proc/PID/stat (almost always 100). */
export function clockTicksPerSecond(): number {
  if (cachedClockTicks === undefined) {
    try {
      const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
      cachedClockTicks = Number.isFinite(ticks) && ticks > 0 ? ticks : 100;
    } catch {
      cachedClockTicks = 100;
    }
  }
  return cachedClockTicks;
}

/** User + system CPU seconds used so far by every thread of `pid` (fields 14 and 15 of /proc/PID/stat). */
export function readCpuSeconds(pid: number): number {
  const { user, system } = readCpuSplit(pid);
  return user + system;
}

/** User and system (kernel: syscalls, and for loopback TCP most of the network stack) CPU seconds of `pid`. */
export function readCpuSplit(pid: number): { user: number; system: number } {
  return parseStat(readFileSync(`/proc/${pid}/stat`, 'latin1'));
}

/**
 * User + system CPU seconds of `pid`'s main thread only (/proc/PID/task/PID/stat): the JavaScript thread. The rest
 * of a Node process's CPU is its other threads: libuv's pool (zlib, fs), the GC helpers and the compiler.
 */
export function readMainThreadCpuSeconds(pid: number): number {
  const { user, system } = parseStat(readFileSync(`/proc/${pid}/task/${pid}/stat`, 'latin1'));
  return user + system;
}

function parseStat(stat: string): { user: number; system: number } {
  // The command name (field 2) may contain spaces; fields after it start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = clockTicksPerSecond();
  return { user: Number(fields[11]) / ticks, system: Number(fields[12]) / ticks };
}

/** Resident set size of `pid` in KiB (VmRSS in /proc/PID/status). */
export function readRssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'latin1');
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (match === null) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]);
}
