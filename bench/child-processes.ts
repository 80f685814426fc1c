// The bench's child processes (servers, load generators): each one tracked by PID and killed on every exit path
// of the bench, and stopped politely (SIGTERM, then SIGKILL) at the end of a measurement.
import type { ChildProcess } from 'node:child_process';

const children = new Set<ChildProcess>();

export const exited = (child: ChildProcess): boolean => child.exitCode !== null || child.signalCode !== null;

/** Tracks `child` until it exits, so killAllChildren() and the exit hook reach it. */
export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export function killAllChildren(): void {
  for (const child of children) {
    if (!exited(child) && child.pid !== undefined) {
      try { process.kill(child.pid, 'SIGKILL'); } catch { /* already gone */ }
    }
  }
  children.clear();
}

// process.exit (run.ts's signal and uncaught-error paths) runs this listener too.
process.on('exit', killAllChildren);

/** Resolves true once `child` has exited, false after `timeoutMs`. */
export function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolveExit) => {
    const timer = setTimeout(() => { child.off('exit', onExit); resolveExit(false); }, timeoutMs);
    const onExit = (): void => { clearTimeout(timer); resolveExit(true); };
    child.once('exit', onExit);
  });
}

/** SIGTERM, then SIGKILL when it has not exited after `graceMs`. */
export async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (exited(child)) return;
  child.kill('SIGTERM');
  if (!(await waitForExit(child, graceMs))) {
    child.kill('SIGKILL');
    await waitForExit(child, 2000);
  }
}
