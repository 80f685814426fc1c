// The reconnect delay schedule: capped exponential backoff with jitter (AWS Architecture Blog, "Exponential
// Backoff And Jitter", 2015). Pure: the random source is an argument, so tests pass a seeded one.

export interface BackoffOptions {
  /** Upper bound of the delay before the first retry. Default 250 ms. */
  initialDelayMs?: number;
  /** No delay is longer than this. Default 30 s (or initialDelayMs, if that is longer). */
  maxDelayMs?: number;
  /** Each retry's upper bound is this many times the previous one. Default 2. */
  multiplier?: number;
  /**
   * How much of each delay is random: `'full'` (the default; the same as 1) draws the delay uniformly from
   * [0, bound]; a fraction j in [0, 1] draws it from [bound·(1−j), bound]; `'none'` (0) waits exactly the bound.
   */
  jitter?: 'full' | 'none' | number;
}

export interface Backoff {
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly multiplier: number;
  /** The random fraction, 0 to 1. */
  readonly jitter: number;
}

export const DEFAULT_BACKOFF: Backoff = Object.freeze({ initialDelayMs: 250, maxDelayMs: 30_000, multiplier: 2, jitter: 1 });

/** Checks and completes the options; throws RangeError or TypeError naming the option at fault. */
export function resolveBackoff(options: BackoffOptions = {}): Backoff {
  const initialDelayMs = options.initialDelayMs ?? DEFAULT_BACKOFF.initialDelayMs;
  const maxDelayMs = options.maxDelayMs ?? Math.max(DEFAULT_BACKOFF.maxDelayMs, initialDelayMs);
  const multiplier = options.multiplier ?? DEFAULT_BACKOFF.multiplier;
  const jitterOption = options.jitter ?? 'full';
  if (!Number.isFinite(initialDelayMs) || initialDelayMs < 0) throw new RangeError(`initialDelayMs must be a finite number ≥ 0 (got ${initialDelayMs})`);
  if (!(maxDelayMs >= initialDelayMs) || !Number.isFinite(maxDelayMs)) {
    throw new RangeError(`maxDelayMs must be finite and ≥ initialDelayMs (got ${maxDelayMs})`);
  }
  if (!Number.isFinite(multiplier) || multiplier < 1) throw new RangeError(`multiplier must be a finite number ≥ 1 (got ${multiplier})`);
  let jitter: number;
  if (jitterOption === 'full') jitter = 1;
  else if (jitterOption === 'none') jitter = 0;
  else if (typeof jitterOption === 'number' && jitterOption >= 0 && jitterOption <= 1) jitter = jitterOption;
  else throw new RangeError(`jitter must be 'full', 'none' or a number from 0 to 1 (got ${String(jitterOption)})`);
  return { initialDelayMs, maxDelayMs, multiplier, jitter };
}

/** The bound before jitter for retry number `retry` (1 = the first retry): min(cap, initial · multiplier^(retry−1)). */
export function backoffBoundMs(backoff: Backoff, retry: number): number {
  if (!Number.isInteger(retry) || retry < 1) throw new RangeError(`retry must be an integer ≥ 1 (got ${retry})`);
  if (backoff.initialDelayMs === 0) return 0;
  const grown = backoff.initialDelayMs * backoff.multiplier ** (retry - 1);
  // Past the cap (or past Infinity after many retries) the bound stays at the cap.
  return grown >= backoff.maxDelayMs ? backoff.maxDelayMs : grown;
}

/** The delay before retry number `retry`, in whole milliseconds; `random()` returns a number in [0, 1). */
export function backoffDelayMs(backoff: Backoff, retry: number, random: () => number = Math.random): number {
  const bound = backoffBoundMs(backoff, retry);
  const draw = backoff.jitter === 0 ? 0 : Math.min(1, Math.max(0, random()));
  return Math.round(bound * (1 - backoff.jitter * draw));
}
