// A process-wide cap on concurrent zlib jobs. zlib work runs on libuv's thread pool (4 threads by default);
// thousands of connections each starting a job at once would queue there anyway, each holding its buffers, so
// jobs wait here instead, in order, holding nothing (the remedy ws adopted for its memory fragmentation issue).

export type Job = (done: () => void) => void;

export class ConcurrencyLimiter {
  readonly #maxConcurrent: number;
  #running = 0;
  readonly #waiting: Job[] = [];
  #head = 0;

  constructor(maxConcurrent: number) {
    if (!Number.isInteger(maxConcurrent) || maxConcurrent < 1) throw new RangeError('maxConcurrent must be an integer >= 1');
    this.#maxConcurrent = maxConcurrent;
  }

  get running(): number {
    return this.#running;
  }

  get waiting(): number {
    return this.#waiting.length - this.#head;
  }

  /** Runs `job` now if a slot is free, else when one frees; `job` must call `done` exactly once. */
  run(job: Job): void {
    if (this.#running < this.#maxConcurrent) this.#start(job);
    else this.#waiting.push(job);
  }

  #start(job: Job): void {
    this.#running++;
    let finished = false;
    job(() => {
      if (finished) return;
      finished = true;
      this.#running--;
      this.#next();
    });
  }

  #next(): void {
    if (this.#head >= this.#waiting.length) return;
    const job = this.#waiting[this.#head]!;
    this.#waiting[this.#head++] = undefined as unknown as Job;
    if (this.#head > 1024 && this.#head * 2 > this.#waiting.length) {
      this.#waiting.splice(0, this.#head);
      this.#head = 0;
    }
    this.#start(job);
  }
}

/** Shared by every compressed connection in the process. */
export const zlibLimiter = new ConcurrencyLimiter(10);
