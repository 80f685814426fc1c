// Timeouts for interop tests: every wait on a peer is bounded, and a timeout says what was being waited for.

/** Resolves or rejects like `promise`, or rejects after `timeoutMs` naming `what` was not seen. */
export async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A FIFO that handler callbacks push into and a test awaits items from, one at a time, with a timeout. */
export class AsyncQueue<T> {
  readonly #items: T[] = [];
  readonly #waiters: Array<(item: T) => void> = [];

  push(item: T): void {
    const waiter = this.#waiters.shift();
    if (waiter) waiter(item);
    else this.#items.push(item);
  }

  next(timeoutMs: number, what: string): Promise<T> {
    if (this.#items.length > 0) return Promise.resolve(this.#items.shift() as T);
    let deliver: ((item: T) => void) | undefined;
    const arrival = new Promise<T>((resolve) => {
      deliver = resolve;
      this.#waiters.push(resolve);
    });
    return withTimeout(arrival, timeoutMs, what).catch((error: unknown) => {
      // A waiter that timed out must not swallow a later item.
      const index = deliver ? this.#waiters.indexOf(deliver) : -1;
      if (index >= 0) this.#waiters.splice(index, 1);
      throw error;
    });
  }

  /** Items received and not yet taken. */
  get pending(): readonly T[] {
    return this.#items;
  }
}

/** A deterministic byte pattern (i mod 251) so a corrupted or reordered byte shows up at a findable offset. */
export function patternBytes(size: number): Buffer {
  const bytes = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) bytes[i] = i % 251;
  return bytes;
}

/** The first offset where two buffers differ, or -1 when they are equal. */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : length;
}
