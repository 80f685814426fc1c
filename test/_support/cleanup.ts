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
