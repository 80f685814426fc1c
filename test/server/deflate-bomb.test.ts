// Decompression bombs against `switchyard serve --deflate --max-message-bytes 1048576`: a ~1 MB compressed
// message that would inflate to 1 GiB must be stopped at the limit (close 1009) while it inflates, quickly,
// without the server process growing by anything like the inflated size, and without disturbing the other
// connections. The bomb is built with node:zlib from zero-filled chunks and never held inflated.
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { readFileSync, writeFileSync } from 'node:fs';
import { constants, createDeflateRaw, createInflateRaw } from 'node:zlib';
import { startCliServer, type RunningServer } from '../_support/cli-server.js';
import { Opcode, describeFrame, maskedFrame } from '../_support/frames.js';
import { assertServerStillEchoes, closeAllClients, echoServerArgs } from '../_support/raw-client.js';
import {
  TRAILER, closeAllDeflateClients, compressedMessageFrames, offerHeader, openDeflateClient, sampleMessage, type DeflateClient,
} from '../_support/deflate-frames.js';

const limitBytes = 1_048_576;
const bombInflatedBytes = 2 ** 30;
const maxGrowthBytes = 64 * 1024 * 1024;
const closeWithinMs = 3_000;
const testOptions = { timeout: 60_000 } as const;

/**
 * Compressed payload (trailer removed) of `totalBytes` zero bytes, built from 16 MiB zero chunks each ended by a
 * sync flush. After the first chunk the window holds only zeros, so every later chunk compresses to the same
 * bytes: three chunks are compressed, the third is checked equal to the second, and the second is repeated.
 */
async function zeroBomb(totalBytes: number): Promise<Buffer> {
  const chunkBytes = 16 * 1024 * 1024;
  assert.equal(totalBytes % chunkBytes, 0);
  const deflater = createDeflateRaw({ level: 9, memLevel: 9, windowBits: 15 });
  const zeros = Buffer.alloc(1024 * 1024);
  const compressChunk = async (): Promise<Buffer> => {
    const out: Buffer[] = [];
    const onData = (chunk: Buffer): void => { out.push(chunk); };
    deflater.on('data', onData);
    for (let written = 0; written < chunkBytes; written += zeros.length) {
      if (!deflater.write(zeros)) await new Promise((resolve) => deflater.once('drain', resolve));
    }
    await new Promise<void>((resolve) => deflater.flush(constants.Z_SYNC_FLUSH, () => resolve()));
    deflater.off('data', onData);
    return Buffer.concat(out);
  };
  const first = await compressChunk();
  const steady = await compressChunk();
  const check = await compressChunk();
  deflater.close();
  assert.ok(steady.equals(check), 'zlib did not reach a steady state on zero chunks: cannot repeat a chunk');
  const parts = [first];
  for (let n = chunkBytes; n < totalBytes; n += chunkBytes) parts.push(steady);
  const bomb = Buffer.concat(parts);
  assert.ok(bomb.subarray(-4).equals(TRAILER));
  return bomb.subarray(0, bomb.length - 4);
}

/** Counts what `payload` inflates to (trailer restored), streaming: never holds the output. */
async function inflatedLength(payload: Buffer): Promise<number> {
  const inflater = createInflateRaw({ windowBits: 15 });
  let length = 0;
  inflater.on('data', (chunk: Buffer) => { length += chunk.length; });
  const failed = new Promise<never>((_resolve, reject) => inflater.once('error', reject));
  inflater.write(payload);
  inflater.write(TRAILER);
  await Promise.race([new Promise<void>((resolve) => inflater.flush(constants.Z_SYNC_FLUSH, () => resolve())), failed]);
  inflater.close();
  return length;
}

interface Memory {
  rssBytes: number;
  peakBytes: number;
}

function readMemory(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rssBytes: field('VmRSS'), peakBytes: field('VmHWM') };
}

/**
 * Runs `action` and returns how far the server's RSS rose above where it was before: the larger of the RSS
 * sampled every 5 ms and the kernel's high-water mark (VmHWM, reset first through clear_refs when allowed, so a
 * peak between samples is not missed).
 */
async function rssGrowthDuring<T>(pid: number, action: () => Promise<T>): Promise<{ result: T; growthBytes: number; baselineBytes: number }> {
  const baseline = readMemory(pid).rssBytes;
  let peakResettable = false;
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    peakResettable = true;
  } catch { /* not allowed here: rely on sampling */ }
  let sampled = baseline;
  const sampler = setInterval(() => {
    try { sampled = Math.max(sampled, readMemory(pid).rssBytes); } catch { /* process gone: the test fails elsewhere */ }
  }, 5);
  try {
    const result = await action();
    const after = readMemory(pid);
    const peak = Math.max(sampled, after.rssBytes, peakResettable ? after.peakBytes : 0);
    return { result, growthBytes: peak - baseline, baselineBytes: baseline };
  } finally {
    clearInterval(sampler);
  }
}

const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

let server!: RunningServer;
let bomb!: Buffer;

before(async () => {
  [server, bomb] = await Promise.all([
    startCliServer([...echoServerArgs, '--deflate', '--max-message-bytes', String(limitBytes)]),
    zeroBomb(bombInflatedBytes),
  ]);
});
afterEach(() => {
  closeAllDeflateClients();
  closeAllClients();
});
after(async () => {
  closeAllDeflateClients();
  closeAllClients();
  await server?.stop();
});

async function openCompressed(): Promise<DeflateClient> {
  const client = await openDeflateClient(server, { extensions: offerHeader({}), offer: {} });
  assert.equal(client.statusCode, 101);
  assert.ok(client.agreement, `server declined permessage-deflate:\n${client.responseHead}`);
  return client;
}

/** One compressed echo on `client`, checked byte for byte. */
async function echoes(client: DeflateClient, size: number, variant: number): Promise<void> {
  const data = sampleMessage(size, false, variant);
  await client.sendCompressed(data, false);
  const echo = await client.nextMessage();
  assert.ok(echo.data.equals(data), `bystander echo ${variant} differs`);
}

/** Sends the bomb and returns the close code and how long the server took to send it. */
async function detonate(client: DeflateClient, frames: Buffer): Promise<{ code: number | undefined; reason: string; elapsedMs: number; tcpClosed: boolean }> {
  const started = Date.now();
  await client.send(frames);
  const result = await client.expectClose(closeWithinMs * 2);
  assert.deepEqual(result.framesAfterClose.map(describeFrame), [], 'frames after the close frame');
  return { code: result.code, reason: result.reason, elapsedMs: Date.now() - started, tcpClosed: result.tcpClosed };
}

describe('permessage-deflate decompression bombs (--max-message-bytes 1048576)', () => {
  it('the bomb is real: ~1 MB compressed, below the limit, inflating to exactly 1 GiB', testOptions, async () => {
    assert.ok(bomb.length < limitBytes, `the bomb is ${bomb.length} bytes compressed: over the limit, so it would be refused before inflating`);
    assert.ok(bomb.length > 900_000, `the bomb is only ${bomb.length} bytes`);
    assert.equal(await inflatedLength(bomb), bombInflatedBytes);
  });

  it('closes with 1009 on one bomb, quickly, growing by far less than it inflates to; other connections keep echoing', testOptions, async (t) => {
    const pid = server.child.pid!;
    const bystander = await openCompressed();
    await echoes(bystander, 8192, 0);
    const attacker = await openCompressed();
    const frames = compressedMessageFrames(bomb, Opcode.binary);
    const { result, growthBytes, baselineBytes } = await rssGrowthDuring(pid, () => detonate(attacker, frames));
    t.diagnostic(`bomb ${bomb.length} B: close ${result.code ?? 'none'} after ${result.elapsedMs} ms, RSS +${mib(growthBytes)} from ${mib(baselineBytes)}`);
    assert.equal(result.code, 1009, `expected close 1009, got ${result.code ?? 'none'} ${JSON.stringify(result.reason)}`);
    assert.ok(result.elapsedMs < closeWithinMs, `the server took ${result.elapsedMs} ms to close`);
    assert.equal(result.tcpClosed, true, 'server did not close TCP after 1009');
    assert.ok(growthBytes < maxGrowthBytes, `server RSS grew by ${mib(growthBytes)} (from ${mib(baselineBytes)}) for a 1 GiB bomb`);
    // The connection that was open all along, and a new one, still work.
    await echoes(bystander, 20_000, 1);
    await bystander.send(maskedFrame({ opcode: Opcode.text, payload: 'plain after the bomb' }));
    assert.equal((await bystander.nextMessage()).data.toString(), 'plain after the bomb');
    await bystander.closeCleanly();
    await assertServerStillEchoes(server);
  });

  it('closes with 1009 on a bomb sent in 64 fragments (RSV1 on the first)', testOptions, async (t) => {
    const pid = server.child.pid!;
    const attacker = await openCompressed();
    const { result, growthBytes } = await rssGrowthDuring(pid, () => detonate(attacker, compressedMessageFrames(bomb, Opcode.text, { pieces: 64 })));
    t.diagnostic(`fragmented bomb: close ${result.code ?? 'none'} after ${result.elapsedMs} ms, RSS +${mib(growthBytes)}`);
    assert.equal(result.code, 1009, `expected close 1009, got ${result.code ?? 'none'} ${JSON.stringify(result.reason)}`);
    assert.ok(result.elapsedMs < closeWithinMs, `the server took ${result.elapsedMs} ms to close`);
    assert.ok(growthBytes < maxGrowthBytes, `server RSS grew by ${mib(growthBytes)}`);
    await assertServerStillEchoes(server);
  });

  it('closes 5 connections with 1009 on 5 concurrent bombs, within the same bounds, while a bystander keeps echoing', testOptions, async (t) => {
    const pid = server.child.pid!;
    const bystander = await openCompressed();
    await echoes(bystander, 4096, 0);
    const attackers = await Promise.all(Array.from({ length: 5 }, () => openCompressed()));
    const frames = compressedMessageFrames(bomb, Opcode.binary);
    let bystanderEchoes = 0;
    const { result, growthBytes, baselineBytes } = await rssGrowthDuring(pid, async () => {
      const bombs = Promise.all(attackers.map((attacker) => detonate(attacker, frames)));
      // The bystander goes on echoing while the bombs are being dealt with.
      let done = false;
      const chatter = (async () => {
        while (!done) {
          await echoes(bystander, 3000, ++bystanderEchoes);
        }
      })();
      try {
        return await bombs;
      } finally {
        done = true;
        await chatter;
      }
    });
    t.diagnostic(`5 bombs: closes ${result.map((r) => `${r.code ?? 'none'}@${r.elapsedMs}ms`).join(', ')}; RSS +${mib(growthBytes)} from ${mib(baselineBytes)}; ${bystanderEchoes} bystander echoes meanwhile`);
    for (const [index, outcome] of result.entries()) {
      assert.equal(outcome.code, 1009, `attacker ${index}: expected close 1009, got ${outcome.code ?? 'none'} ${JSON.stringify(outcome.reason)}`);
      assert.ok(outcome.elapsedMs < closeWithinMs, `attacker ${index}: the server took ${outcome.elapsedMs} ms to close`);
      assert.equal(outcome.tcpClosed, true, `attacker ${index}: TCP not closed`);
    }
    assert.ok(growthBytes < maxGrowthBytes, `server RSS grew by ${mib(growthBytes)} (from ${mib(baselineBytes)}) for 5 concurrent 1 GiB bombs`);
    assert.ok(bystanderEchoes >= 1, 'the bystander got no echo while the bombs were handled');
    await echoes(bystander, 50_000, 99);
    await bystander.closeCleanly();
    await assertServerStillEchoes(server);
  });

  it('echoes a compressed message that inflates to exactly the limit and closes 1009 on one byte more', testOptions, async () => {
    const client = await openCompressed();
    const exact = Buffer.alloc(limitBytes, 0x61);
    await client.sendCompressed(exact, true);
    const echo = await client.nextMessage(10_000);
    assert.equal(echo.data.length, limitBytes, `a ${limitBytes}-byte message (the limit) echoed as ${echo.data.length} bytes`);
    assert.ok(echo.data.equals(exact));
    const over = await openCompressed();
    await over.sendCompressed(Buffer.alloc(limitBytes + 1, 0x61), true);
    const result = await over.expectClose();
    assert.equal(result.code, 1009, `a ${limitBytes + 1}-byte message: expected 1009, got ${result.code ?? 'none'} ${JSON.stringify(result.reason)}`);
    await client.closeCleanly();
  });
});
