// One coarse timer for many connections (the uWebSockets way): a periodic sweep drives keep-alive pings,
// idle timeouts and close deadlines, instead of a setTimeout per connection.

export interface Sweepable {
  /** Called on every tick with the tick's wall-clock time. */
  sweep(nowMs: number): void;
}

export class TimerSweep {
  readonly #members = new Set<Sweepable>();
  #resolutionMs: number;
  #timer: NodeJS.Timeout | undefined;
  /** Wall-clock time of the last tick: a cheap, coarse clock for per-message timestamps. */
  nowMs = Date.now();

  constructor(resolutionMs: number) {
    if (!(resolutionMs > 0)) throw new RangeError('resolutionMs must be positive');
    this.#resolutionMs = resolutionMs;
  }

  get resolutionMs(): number {
    return this.#resolutionMs;
  }

  get size(): number {
    return this.#members.size;
  }

  /** Makes the sweep tick at least every `resolutionMs` (it never gets coarser). */
  requireResolution(resolutionMs: number): void {
    if (!(resolutionMs > 0) || resolutionMs >= this.#resolutionMs) return;
    this.#resolutionMs = resolutionMs;
    if (this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = setInterval(() => this.#tick(), resolutionMs).unref();
    }
  }

  add(member: Sweepable): void {
    this.#members.add(member);
    if (this.#timer === undefined) {
      this.nowMs = Date.now();
      // Unref'd: pending timeouts alone must not keep a process alive (the listening socket does that).
      this.#timer = setInterval(() => this.#tick(), this.#resolutionMs).unref();
    }
  }

  delete(member: Sweepable): void {
    this.#members.delete(member);
    if (this.#members.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  #tick(): void {
    const now = (this.nowMs = Date.now());
    for (const member of this.#members) member.sweep(now);
  }
}

/** A tick fine enough for the shortest timeout in use: a quarter of it, between 10 ms and 1 s. */
export function sweepResolutionFor(timeoutsMs: readonly number[]): number {
  const active = timeoutsMs.filter((ms) => ms > 0);
  if (active.length === 0) return 1000;
  return Math.min(1000, Math.max(10, Math.floor(Math.min(...active) / 4)));
}
