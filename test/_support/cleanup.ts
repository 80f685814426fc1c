// Small helpers every I/O test uses: a per-test cleanup stack that runs even when the test fails, and sleep.
import type { TestContext } from 'node:test';

/** Cleanups run last-registered-first (clients before their server) in one t.after, even when the test fails. */
export function cleanupStack(t: TestContext): (cleanup: () => unknown) => void {
  const cleanups: Array<() => unknown> = [];
  t.after(async () => {
    for (const cleanup of cleanups.reverse()) {
      try { await cleanup(); } catch { /* keep cleaning */ }
    }
  });
  return (cleanup) => { cleanups.push(cleanup); };
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Rejects with "timed out after N ms: what" unless `promise` settles first. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Polls `condition` every 5 ms; throws "timed out after N ms waiting for what" at the deadline. */
export async function waitFor(condition: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(5);
  }
}
