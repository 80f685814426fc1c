// A program that floods stdout never grows the server's memory without bound (issue 5, item 1): 200 MB
// written as fast as the pipe takes it, to a reader that stalls and then reads slowly, arrives whole while
// the resident set stays within a few tens of MB, because send() backpressure pauses the child's stdout.
// (A file of its own: RSS is per process, and node --test runs each file in its own.)
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { processBridge } from '../../src/bridges/process-bridge.js';
import { activeProcessCount } from '../../src/bridges/process-child.js';
import { connect } from '../../src/client/connect.js';
import { sleep } from '../_support/cleanup.js';
import { serve, waitFor } from './fixtures/harness.js';

const FLOOD_BYTES = 200_000_000;
/** Growth allowed over the baseline: the 1 MiB send limit, pipe and socket buffers, GC slack. */
const MAX_RSS_GROWTH_BYTES = 96 * 1024 * 1024;

describe('processBridge flood', () => {
  it(`keeps RSS bounded while a program writes ${FLOOD_BYTES / 1e6} MB to a slow reader, and delivers every byte`, { timeout: 120_000 }, async (t) => {
    const { url } = await serve(t, '/flood', processBridge({ command: ['head', '-c', String(FLOOD_BYTES), '/dev/zero'], framing: 'binary' }));
    globalThis.gc?.();
    const baselineRss = process.memoryUsage().rss;
    let peakRss = baselineRss;
    const sampler = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage().rss); }, 10);
    t.after(() => clearInterval(sampler));

    let received = 0;
    let nonZero = 0;
    let nextStallAt = 16 * 1024 * 1024;
    let closeCode = 0;
    let resolveClosed!: () => void;
    const closed = new Promise<void>((resolve) => { resolveClosed = resolve; });
    const ws = await connect(url('/flood'), {
      handlers: {
        message(socket, data) {
          received += data.length;
          for (let i = 0; i < data.length; i += 4096) if (data[i] !== 0) nonZero++;
          // A slow reader: every 16 MB it stops reading for 100 ms.
          if (received >= nextStallAt) {
            nextStallAt += 16 * 1024 * 1024;
            socket.pause();
            setTimeout(() => socket.resume(), 100);
          }
        },
        close(_socket, code) {
          closeCode = code;
          resolveClosed();
        },
      },
    });
    // The reader stalls for a full second first: without backpressure the whole flood would pile up meanwhile.
    ws.pause();
    await sleep(1000);
    const rssWhileStalled = process.memoryUsage().rss;
    ws.resume();
    await closed;
    clearInterval(sampler);
    assert.equal(closeCode, 1000, 'the program exited 0');
    assert.equal(received, FLOOD_BYTES, 'every byte arrived');
    assert.equal(nonZero, 0);
    const growth = peakRss - baselineRss;
    t.diagnostic(`baseline RSS ${(baselineRss / 1048576).toFixed(1)} MiB, while stalled +${((rssWhileStalled - baselineRss) / 1048576).toFixed(1)} MiB, peak +${(growth / 1048576).toFixed(1)} MiB`);
    assert.ok(growth < MAX_RSS_GROWTH_BYTES, `RSS grew by ${(growth / 1048576).toFixed(1)} MiB (limit ${MAX_RSS_GROWTH_BYTES / 1048576} MiB)`);
    await waitFor(() => activeProcessCount() === 0, 5000, 'the program to be reaped');
  });
});
