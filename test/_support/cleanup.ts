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

/**
 * Polls `condition` every 5 ms; throws "timed out after N ms waiting for what" at the deadline (`what` may be a
 * function, to describe the state as it is then).
 */
export async function waitFor(condition: () => boolean, ms: number, what: string | (() => string)): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await sleep(5);
  }
}

/**
 * Resolves with `value()` once it has not changed for `quietMs` (polled every 25 ms): a sender stuck on
 * backpressure. Throws after `ms` if it never stops changing.
 */
export async function waitForSteady(value: () => number, quietMs: number, ms: number, what: string): Promise<number> {
  const deadline = Date.now() + ms;
  let last = value();
  let since = Date.now();
  for (;;) {
    await sleep(25);
    const now = value();
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) {
      return now;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what} to stop changing (at ${now})`);
  }
}
