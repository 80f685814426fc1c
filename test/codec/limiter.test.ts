// ConcurrencyLimiter: the process-wide cap on zlib jobs. Never more than N jobs running, waiting jobs start in
// the order they were given (FIFO), a job's `done` called twice frees one slot only, and bad sizes are refused.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConcurrencyLimiter, zlibLimiter, type Job } from '../../src/codec/limiter.js';

/** Jobs that record when they start and keep their `done` for the test to call. */
function tracker(limiter: ConcurrencyLimiter): { started: number[]; dones: Map<number, () => void>; maxRunning: number; job(id: number): Job } {
  const state = {
    started: [] as number[],
    dones: new Map<number, () => void>(),
    maxRunning: 0,
    job(id: number): Job {
      return (done) => {
        state.started.push(id);
        state.maxRunning = Math.max(state.maxRunning, limiter.running);
        state.dones.set(id, done);
      };
    },
  };
  return state;
}

describe('ConcurrencyLimiter', () => {
  it('runs at most N jobs at once and starts the rest in FIFO order as slots free', () => {
    const limiter = new ConcurrencyLimiter(3);
    const t = tracker(limiter);
    for (let id = 0; id < 10; id++) limiter.run(t.job(id));
    assert.deepEqual(t.started, [0, 1, 2], 'the first three start at once, synchronously');
    assert.equal(limiter.running, 3);
    assert.equal(limiter.waiting, 7);
    t.dones.get(1)!();
    assert.deepEqual(t.started, [0, 1, 2, 3], 'a freed slot starts the oldest waiting job');
    t.dones.get(0)!();
    t.dones.get(3)!();
    assert.deepEqual(t.started, [0, 1, 2, 3, 4, 5]);
    for (let id = 2; id < 10; id++) t.dones.get(id)?.();
    // Jobs 6..9 started as earlier ones finished; finish whatever is still running.
    for (let id = 0; id < 10; id++) t.dones.get(id)?.();
    assert.deepEqual(t.started, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(t.maxRunning, 3);
    assert.equal(limiter.running, 0);
    assert.equal(limiter.waiting, 0);
  });

  it('keeps FIFO order and the bound over thousands of jobs finishing out of order (the queue compacts itself)', async () => {
    const limiter = new ConcurrencyLimiter(4);
    const order: number[] = [];
    let running = 0;
    let maxRunning = 0;
    const total = 5000;
    await new Promise<void>((resolve) => {
      let finished = 0;
      for (let id = 0; id < total; id++) {
        limiter.run((done) => {
          order.push(id);
          running++;
          maxRunning = Math.max(maxRunning, running);
          // Finish on a later turn, some sooner than others.
          const finish = (): void => {
            running--;
            done();
            if (++finished === total) resolve();
          };
          if (id % 3 === 0) setImmediate(finish);
          else queueMicrotask(finish);
        });
      }
    });
    assert.equal(maxRunning, 4);
    assert.deepEqual(order, Array.from({ length: total }, (_, i) => i));
    assert.equal(limiter.running, 0);
    assert.equal(limiter.waiting, 0);
  });

  it('treats a second call of the same done as a no-op: one job frees one slot, once', () => {
    const limiter = new ConcurrencyLimiter(1);
    const t = tracker(limiter);
    limiter.run(t.job(0));
    limiter.run(t.job(1));
    limiter.run(t.job(2));
    const done0 = t.dones.get(0)!;
    done0();
    done0();
    done0();
    assert.deepEqual(t.started, [0, 1], 'calling done again did not start job 2');
    assert.equal(limiter.running, 1);
    assert.equal(limiter.waiting, 1);
    t.dones.get(1)!();
    assert.deepEqual(t.started, [0, 1, 2]);
    t.dones.get(2)!();
    t.dones.get(2)!();
    assert.equal(limiter.running, 0, 'running never goes below zero');
  });

  it('runs a job that finishes synchronously, and then the next, without growing the count', () => {
    const limiter = new ConcurrencyLimiter(1);
    const ran: number[] = [];
    for (let id = 0; id < 5; id++) limiter.run((done) => { ran.push(id); done(); });
    assert.deepEqual(ran, [0, 1, 2, 3, 4]);
    assert.equal(limiter.running, 0);
  });

  it('refuses a size that is not an integer >= 1', () => {
    for (const size of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => new ConcurrencyLimiter(size), RangeError, String(size));
    }
    assert.doesNotThrow(() => new ConcurrencyLimiter(1));
  });

  it('the shared zlibLimiter is a ConcurrencyLimiter that is idle when nothing compresses', () => {
    assert.ok(zlibLimiter instanceof ConcurrencyLimiter);
    assert.equal(zlibLimiter.running, 0);
    assert.equal(zlibLimiter.waiting, 0);
  });
});
