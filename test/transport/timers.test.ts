// TimerSweep: one coarse interval timer for many connections, and the resolution chosen for a set of timeouts.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TimerSweep, sweepResolutionFor, type Sweepable } from '../../src/transport/timers.js';
import { sleep } from '../_support/cleanup.js';


describe('sweepResolutionFor', () => {
  it('is a quarter of the shortest active timeout, between 10 ms and 1 s', () => {
    assert.equal(sweepResolutionFor([400, 30_000]), 100);
    assert.equal(sweepResolutionFor([30_000, 0, 5_000]), 1000);
    assert.equal(sweepResolutionFor([20]), 10);
    assert.equal(sweepResolutionFor([1]), 10);
  });

  it('is 1 s when every timeout is off', () => {
    assert.equal(sweepResolutionFor([]), 1000);
    assert.equal(sweepResolutionFor([0, 0]), 1000);
  });
});

describe('TimerSweep', () => {
  it('rejects a resolution that is not positive', () => {
    assert.throws(() => new TimerSweep(0), RangeError);
    assert.throws(() => new TimerSweep(-5), RangeError);
    assert.throws(() => new TimerSweep(Number.NaN), RangeError);
  });

  it('sweeps every member with the tick time while it has members, and stops when the last leaves', async (t) => {
    const sweep = new TimerSweep(10);
    const seen: Array<{ member: string; nowMs: number }> = [];
    const a: Sweepable = { sweep(nowMs) { seen.push({ member: 'a', nowMs }); } };
    const b: Sweepable = { sweep(nowMs) { seen.push({ member: 'b', nowMs }); } };
    t.after(() => { sweep.delete(a); sweep.delete(b); });
    sweep.add(a);
    sweep.add(b);
    assert.equal(sweep.size, 2);
    const deadline = Date.now() + 3000;
    while (seen.filter((entry) => entry.member === 'b').length < 3 && Date.now() < deadline) await sleep(5);
    assert.ok(seen.filter((entry) => entry.member === 'a').length >= 3, 'member a was swept repeatedly');
    assert.ok(seen.filter((entry) => entry.member === 'b').length >= 3, 'member b was swept repeatedly');
    for (const entry of seen) assert.ok(entry.nowMs <= Date.now() && entry.nowMs >= Date.now() - 10_000);
    assert.ok(sweep.nowMs >= seen[0]!.nowMs, 'nowMs follows the ticks');

    sweep.delete(a);
    const afterDeleteA = seen.length;
    while (seen.length === afterDeleteA && Date.now() < deadline) await sleep(5);
    assert.ok(seen.slice(afterDeleteA).every((entry) => entry.member === 'b'), 'a deleted member is not swept again');

    sweep.delete(b);
    assert.equal(sweep.size, 0);
    const afterDeleteAll = seen.length;
    await sleep(60);
    assert.equal(seen.length, afterDeleteAll, 'no sweeps after the last member left');
  });

  it('lets a member delete itself during a sweep', async (t) => {
    const sweep = new TimerSweep(10);
    let calls = 0;
    const member: Sweepable = { sweep() { calls++; sweep.delete(member); } };
    t.after(() => sweep.delete(member));
    sweep.add(member);
    const deadline = Date.now() + 3000;
    while (calls === 0 && Date.now() < deadline) await sleep(5);
    await sleep(50);
    assert.equal(calls, 1);
    assert.equal(sweep.size, 0);
  });
});
