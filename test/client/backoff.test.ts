// The reconnect delay schedule and the default retry rule: pure functions, a seeded random source.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { backoffBoundMs, backoffDelayMs, resolveBackoff, DEFAULT_BACKOFF } from '../../src/client/backoff.js';
import { defaultShouldReconnect, isRetryableHandshakeStatus, retryAfterMs } from '../../src/client/reconnect-policy.js';
import { HandshakeError } from '../../src/errors.js';
import { seededRandom } from '../_support/recorder.js';


describe('backoff', () => {
  it('grows by the multiplier from the initial delay and stops at the cap', () => {
    const backoff = resolveBackoff({ initialDelayMs: 100, maxDelayMs: 1000, multiplier: 2, jitter: 'none' });
    const schedule = [1, 2, 3, 4, 5, 6, 7].map((retry) => backoffDelayMs(backoff, retry));
    assert.deepEqual(schedule, [100, 200, 400, 800, 1000, 1000, 1000]);
  });

  it('defaults to 250 ms doubling up to 30 s with full jitter', () => {
    assert.deepEqual(resolveBackoff(), DEFAULT_BACKOFF);
    assert.deepEqual([1, 2, 8, 9, 50].map((retry) => backoffBoundMs(DEFAULT_BACKOFF, retry)), [250, 500, 30_000, 30_000, 30_000]);
  });

  it('stays at the cap however many retries (no overflow to Infinity or NaN)', () => {
    const backoff = resolveBackoff({ initialDelayMs: 1, maxDelayMs: 60_000, multiplier: 10, jitter: 'full' });
    for (const retry of [400, 5000, Number.MAX_SAFE_INTEGER]) {
      assert.equal(backoffBoundMs(backoff, retry), 60_000);
      const delay = backoffDelayMs(backoff, retry, () => 0.5);
      assert.equal(delay, 30_000);
    }
    assert.equal(backoffDelayMs(resolveBackoff({ initialDelayMs: 0, jitter: 'none' }), 10_000), 0);
  });

  it('full jitter draws each delay from [0, bound], the same schedule for the same seed', () => {
    const backoff = resolveBackoff({ initialDelayMs: 250, maxDelayMs: 30_000 });
    const schedule = (seed: number): number[] => {
      const random = seededRandom(seed);
      return Array.from({ length: 12 }, (_, i) => backoffDelayMs(backoff, i + 1, random));
    };
    const first = schedule(42);
    assert.deepEqual(schedule(42), first);
    assert.notDeepEqual(schedule(43), first);
    first.forEach((delay, i) => {
      assert.ok(delay >= 0 && delay <= backoffBoundMs(backoff, i + 1), `retry ${i + 1}: ${delay} ms`);
      assert.ok(Number.isInteger(delay));
    });
    // Spread: over many draws at the cap the mean is near half the cap (full jitter's point: no lockstep).
    const random = seededRandom(7);
    let sum = 0;
    for (let i = 0; i < 2000; i++) sum += backoffDelayMs(backoff, 20, random);
    const mean = sum / 2000;
    assert.ok(mean > 13_500 && mean < 16_500, `mean ${mean}`);
  });

  it('a jitter fraction keeps each delay within [bound·(1−j), bound]', () => {
    const backoff = resolveBackoff({ initialDelayMs: 1000, maxDelayMs: 8000, jitter: 0.25 });
    const random = seededRandom(1);
    for (let retry = 1; retry <= 6; retry++) {
      const bound = backoffBoundMs(backoff, retry);
      for (let i = 0; i < 50; i++) {
        const delay = backoffDelayMs(backoff, retry, random);
        assert.ok(delay >= bound * 0.75 && delay <= bound, `retry ${retry}: ${delay} not in [${bound * 0.75}, ${bound}]`);
      }
    }
    assert.equal(backoffDelayMs(backoff, 1, () => 0), 1000);
    assert.equal(backoffDelayMs(backoff, 1, () => 0.999999), 750);
  });

  it('refuses options that make no schedule, naming the option', () => {
    assert.throws(() => resolveBackoff({ initialDelayMs: -1 }), /initialDelayMs/);
    assert.throws(() => resolveBackoff({ initialDelayMs: 500, maxDelayMs: 100 }), /maxDelayMs/);
    assert.throws(() => resolveBackoff({ maxDelayMs: Infinity }), /maxDelayMs/);
    assert.throws(() => resolveBackoff({ multiplier: 0.5 }), /multiplier/);
    assert.throws(() => resolveBackoff({ jitter: 1.5 }), /jitter/);
    assert.throws(() => resolveBackoff({ jitter: 'half' as never }), /jitter/);
    assert.throws(() => backoffDelayMs(DEFAULT_BACKOFF, 0), /retry/);
    // A long initial delay alone raises the default cap instead of failing.
    assert.equal(resolveBackoff({ initialDelayMs: 60_000 }).maxDelayMs, 60_000);
  });
});

describe('defaultShouldReconnect', () => {
  const close = (code: number) => defaultShouldReconnect({ kind: 'close', code, reason: '', wasClean: code !== 1006 });
  const error = (e: Error) => defaultShouldReconnect({ kind: 'error', error: e });

  it('retries going away, restarts, overload, internal errors and abnormal closes', () => {
    for (const code of [1001, 1005, 1006, 1011, 1012, 1013, 1014]) assert.equal(close(code), true, `close ${code}`);
  });

  it('does not retry a normal close, protocol or data disagreements, policy refusals or application codes', () => {
    for (const code of [1000, 1002, 1003, 1007, 1008, 1009, 1010, 3000, 4000, 4999]) assert.equal(close(code), false, `close ${code}`);
  });

  it('retries network errors, handshake timeouts, 408, 429 and most 5xx; not other refusals', () => {
    const errno = (code: string) => Object.assign(new Error(code), { code });
    assert.equal(error(errno('ECONNREFUSED')), true);
    assert.equal(error(errno('ECONNRESET')), true);
    assert.equal(error(errno('ENOTFOUND')), true);
    assert.equal(error(new HandshakeError('ERR_HANDSHAKE_TIMEOUT', 0, 'timeout')), true);
    for (const status of [408, 429, 500, 502, 503, 504]) {
      assert.equal(isRetryableHandshakeStatus(status), true, `${status}`);
      assert.equal(error(new HandshakeError('ERR_HANDSHAKE_STATUS', status, `${status}`)), true);
    }
    for (const status of [301, 400, 401, 403, 404, 426, 501, 505]) {
      assert.equal(error(new HandshakeError('ERR_HANDSHAKE_STATUS', status, `${status}`)), false, `${status}`);
    }
    assert.equal(error(new HandshakeError('ERR_HANDSHAKE_ACCEPT', 101, 'bad accept')), false);
    assert.equal(error(errno('DEPTH_ZERO_SELF_SIGNED_CERT')), false);
    assert.equal(error(errno('ERR_TLS_CERT_ALTNAME_INVALID')), false);
    assert.equal(error(new TypeError('bad url')), false);
  });
});

describe('retryAfterMs', () => {
  const refused = (status: number, retryAfter: string | undefined) => ({
    kind: 'error' as const,
    error: new HandshakeError('ERR_HANDSHAKE_STATUS', status, `${status}`, { headers: retryAfter === undefined ? {} : { 'retry-after': retryAfter } }),
  });

  it('reads seconds and HTTP dates from a 429 or 503 answer', () => {
    assert.equal(retryAfterMs(refused(503, '120')), 120_000);
    assert.equal(retryAfterMs(refused(429, ' 2 ')), 2000);
    const now = Date.parse('Sun, 06 Nov 1994 08:49:37 GMT');
    assert.equal(retryAfterMs(refused(503, 'Sun, 06 Nov 1994 08:49:47 GMT'), now), 10_000);
    assert.equal(retryAfterMs(refused(503, 'Sun, 06 Nov 1994 08:49:00 GMT'), now), 0);
  });

  it('is undefined without the header, for other statuses, unreadable values and other failures', () => {
    assert.equal(retryAfterMs(refused(503, undefined)), undefined);
    assert.equal(retryAfterMs(refused(500, '5')), undefined);
    assert.equal(retryAfterMs(refused(503, 'soon')), undefined);
    assert.equal(retryAfterMs(refused(503, '-1')), undefined);
    assert.equal(retryAfterMs({ kind: 'close', code: 1013, reason: '', wasClean: true }), undefined);
  });
});
