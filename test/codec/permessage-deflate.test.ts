// The permessage-deflate codec (RFC 7692 §7.2) on node:zlib, checked against zlib's own one-shot functions as
// an independent oracle: what we send is raw DEFLATE with the 00 00 ff ff trailer removed (§7.2.1) and
// inflates with it restored; what a peer sends inflates back; context takeover and window bits are honoured as
// agreed (§7.1.1, §7.1.2); bad data fails with 1007 and a bomb with 1009 without ever being inflated whole;
// close() frees the contexts and every pending callback hears about it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { constants, deflateRawSync, inflateRawSync } from 'node:zlib';
import { ProtocolError } from '../../src/errors.js';
import { codecStats, PerMessageDeflate, type DeflateCodecOptions } from '../../src/codec/permessage-deflate.js';
import { zlibLimiter } from '../../src/codec/limiter.js';
import type { DeflateAgreement } from '../../src/protocol/deflate-negotiation.js';
import { Rng, ROLES, type TestRole } from '../_support/recorder.js';

const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);
const MiB = 1024 * 1024;
const WAIT_MS = 10_000;
const OPTIONS: DeflateCodecOptions = { maxMessageBytes: 4 * MiB };

const agreement = (changes: Partial<DeflateAgreement> = {}): DeflateAgreement =>
  ({ serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15, ...changes });
const peerOf = (role: TestRole): TestRole => (role === 'server' ? 'client' : 'server');

/** Settles within a bounded time, or fails saying what it waited for. */
function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no callback within ${ms} ms: ${what}`)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function compressResult(codec: PerMessageDeflate, data: Uint8Array): Promise<{ error: Error | null; payload: Buffer }> {
  return within(new Promise((resolve) => codec.compress(data, (error, payload) => resolve({ error, payload }))), 'compress');
}

function decompressResult(codec: PerMessageDeflate, payload: Buffer): Promise<{ error: ProtocolError | null; message: Buffer }> {
  return within(new Promise((resolve) => codec.decompress(payload, (error, message) => resolve({ error, message }))), 'decompress');
}

async function compress(codec: PerMessageDeflate, data: Uint8Array): Promise<Buffer> {
  const { error, payload } = await compressResult(codec, data);
  assert.equal(error, null);
  return payload;
}

async function decompress(codec: PerMessageDeflate, payload: Buffer): Promise<Buffer> {
  const { error, message } = await decompressResult(codec, payload);
  assert.equal(error, null, error?.message);
  return message;
}

/** zlib's own inflater over a stream of our payloads, each with the trailer restored (RFC 7692 §7.2.2). */
function oracleInflate(payloads: readonly Buffer[], windowBits = 15): Buffer {
  return inflateRawSync(Buffer.concat(payloads.flatMap((p) => [p, TRAILER])), { finishFlush: constants.Z_SYNC_FLUSH, windowBits });
}

/** What a peer sends: zlib's one-shot raw DEFLATE, sync-flushed, trailer removed (RFC 7692 §7.2.1). */
function oracleDeflate(data: Uint8Array, options: { windowBits?: number; level?: number; memLevel?: number } = {}): Buffer {
  const out = deflateRawSync(data, { finishFlush: constants.Z_SYNC_FLUSH, ...options });
  assert.ok(out.subarray(-4).equals(TRAILER), 'a sync flush ends with 00 00 ff ff');
  return out.subarray(0, out.length - 4);
}

/** Text-like data (compresses well) or random bytes (does not). */
function sample(size: number, kind: 'text' | 'random', seed = size): Buffer {
  if (kind === 'random') return new Rng(seed).bytes(size);
  const words = ['switchyard', 'deflate', 'window', 'frame', '{"id":', '"topic":"prices",', 'context', 'takeover', '\n', ' '];
  const rng = new Rng(seed);
  let text = '';
  while (text.length < size) text += rng.pick(words);
  return Buffer.from(text.slice(0, size));
}

/** A random block repeated: every repeat refers `block` bytes back, so the window size shows in the output. */
function longDistanceData(block = 1500, repeats = 20): Buffer {
  const unit = new Rng(block).bytes(block);
  return Buffer.concat(Array.from({ length: repeats }, () => unit));
}

const SIZES = [0, 1, 16, 64, 256, 1024, 4096, 16 * 1024, 64 * 1024, 128 * 1024];

describe('PerMessageDeflate: round trips (RFC 7692 §7.2)', () => {
  for (const role of ROLES) {
    it(`${role} compresses and its peer decompresses every size from 0 B to 128 KiB, text and random bytes, with context kept`, async () => {
      const sender = new PerMessageDeflate(agreement(), role, OPTIONS);
      const receiver = new PerMessageDeflate(agreement(), peerOf(role), OPTIONS);
      const sent: Buffer[] = [];
      const inputs: Buffer[] = [];
      for (const kind of ['text', 'random'] as const) {
        for (const size of SIZES) {
          const data = sample(size, kind);
          const payload = await compress(sender, data);
          sent.push(payload);
          inputs.push(data);
          assert.deepEqual(await decompress(receiver, payload), data, `${kind} ${size} B`);
        }
      }
      // The oracle inflates the whole stream of payloads (context kept across messages) to the inputs.
      assert.deepEqual(oracleInflate(sent), Buffer.concat(inputs));
      sender.close();
      receiver.close();
    });

    it(`${role} decompresses messages zlib compressed on its own (an independent peer), 0 B to 128 KiB`, async () => {
      const receiver = new PerMessageDeflate(agreement(), role, OPTIONS);
      for (const size of SIZES) {
        for (const kind of ['text', 'random'] as const) {
          const data = sample(size, kind, size + 7);
          assert.deepEqual(await decompress(receiver, oracleDeflate(data)), data, `${kind} ${size} B`);
        }
      }
      receiver.close();
    });
  }

  it('accepts a message that inflates to exactly maxMessageBytes', async () => {
    const codec = new PerMessageDeflate(agreement(), 'server', { maxMessageBytes: 100_000 });
    const message = await decompress(codec, oracleDeflate(sample(100_000, 'text')));
    assert.equal(message.length, 100_000);
    codec.close();
  });
});

describe('PerMessageDeflate: the trailer (RFC 7692 §7.2.1)', () => {
  it('removes the 00 00 ff ff a sync flush ends with: the payload is zlib\'s own output minus those 4 octets', async () => {
    for (const size of [1, 100, 5000, 70_000]) {
      for (const kind of ['text', 'random'] as const) {
        const codec = new PerMessageDeflate(agreement(), 'server', { ...OPTIONS, level: 6, memLevel: 8 });
        const data = sample(size, kind);
        const payload = await compress(codec, data);
        assert.ok(!payload.subarray(-4).equals(TRAILER), `${kind} ${size} B: the trailer is removed`);
        assert.deepEqual(payload, oracleDeflate(data, { level: 6, memLevel: 8, windowBits: 15 }), `${kind} ${size} B equals zlib's one-shot output`);
        assert.deepEqual(oracleInflate([payload]), data, `${kind} ${size} B inflates with the trailer restored`);
        codec.close();
      }
    }
  });

  it('compresses an empty message to a payload that inflates to nothing (§7.2.3.6)', async () => {
    const codec = new PerMessageDeflate(agreement(), 'client', OPTIONS);
    const payload = await compress(codec, Buffer.alloc(0));
    assert.ok(payload.length <= 2, `an empty message compresses to at most 2 bytes (got ${payload.toString('hex')})`);
    assert.equal(oracleInflate([payload]).length, 0);
    codec.close();
  });

  it('inflates a lone 0x00 (what a sync flush of nothing leaves once the trailer is removed) to an empty message, and keeps going', async () => {
    const codec = new PerMessageDeflate(agreement(), 'server', OPTIONS);
    assert.equal((await decompress(codec, Buffer.from([0x00]))).length, 0);
    assert.deepEqual(await decompress(codec, oracleDeflate(Buffer.from('still fine'))), Buffer.from('still fine'));
    assert.equal((await decompress(codec, Buffer.from([0x00]))).length, 0);
    codec.close();
  });

  it('an empty payload (not valid DEFLATE output: zlib always sends at least 0x00) does not corrupt the next message', {}, async () => {
    const codec = new PerMessageDeflate(agreement(), 'server', OPTIONS);
    const empty = await decompressResult(codec, Buffer.alloc(0));
    if (empty.error !== null) {
      // Refusing it is fine too, as data that does not inflate.
      assert.equal(empty.error.closeCode, 1007);
    } else {
      assert.equal(empty.message.length, 0);
      const next = await decompressResult(codec, oracleDeflate(Buffer.from('next message')));
      assert.equal(next.error, null, `the valid message after an empty one failed: ${next.error?.message}`);
      assert.deepEqual(next.message, Buffer.from('next message'));
    }
    codec.close();
  });
});

describe('PerMessageDeflate: context takeover (RFC 7692 §7.1.1)', () => {
  const message = sample(4000, 'text', 99);

  for (const role of ROLES) {
    const ours = role === 'server' ? 'serverNoContextTakeover' : 'clientNoContextTakeover';

    it(`${role}: with context kept, the second identical message compresses smaller and needs the first to inflate`, async () => {
      const codec = new PerMessageDeflate(agreement(), role, OPTIONS);
      assert.equal(codec.compressesStatelessly, false);
      const first = await compress(codec, message);
      const second = await compress(codec, message);
      assert.ok(second.length * 4 < first.length * 3, `second ${second.length} B vs first ${first.length} B`);
      assert.deepEqual(oracleInflate([first, second]), Buffer.concat([message, message]));
      assert.throws(() => oracleInflate([second]), 'the second message refers back into the first');
      codec.close();
    });

    it(`${role}: with ${ours} agreed, every message is compressed from a fresh context (identical size and bytes, each inflates alone)`, async () => {
      const codec = new PerMessageDeflate(agreement({ [ours]: true }), role, OPTIONS);
      assert.equal(codec.compressesStatelessly, true);
      const first = await compress(codec, message);
      await compress(codec, sample(3000, 'random'));
      const second = await compress(codec, message);
      assert.equal(second.length, first.length);
      assert.deepEqual(second, first);
      assert.deepEqual(oracleInflate([second]), message);
      codec.close();
    });

    it(`${role}: the agreement about the peer's context does not change how we compress`, async () => {
      const theirs = role === 'server' ? 'clientNoContextTakeover' : 'serverNoContextTakeover';
      const codec = new PerMessageDeflate(agreement({ [theirs]: true }), role, OPTIONS);
      assert.equal(codec.compressesStatelessly, false);
      const first = await compress(codec, message);
      assert.ok((await compress(codec, message)).length < first.length);
      codec.close();
    });

    it(`${role}: keeps its inflater's context when the peer keeps its own, and resets it when the peer may not rely on it`, async () => {
      const theirs = role === 'server' ? 'clientNoContextTakeover' : 'serverNoContextTakeover';
      const peer = new PerMessageDeflate(agreement(), peerOf(role), OPTIONS);
      const first = await compress(peer, message);
      const second = await compress(peer, message);
      const keeping = new PerMessageDeflate(agreement(), role, OPTIONS);
      assert.deepEqual(await decompress(keeping, first), message);
      assert.deepEqual(await decompress(keeping, second), message, 'the second message inflates from the kept context');
      // A receiver that agreed the peer resets (no context takeover) resets its inflater: a message that refers
      // back (which the peer promised not to send) no longer inflates.
      const resetting = new PerMessageDeflate(agreement({ [theirs]: true }), role, OPTIONS);
      assert.deepEqual(await decompress(resetting, first), message);
      const { error } = await decompressResult(resetting, second);
      assert.ok(error instanceof ProtocolError);
      assert.equal(error.closeCode, 1007);
      // Independent messages (what a peer without context takeover sends) all inflate.
      const resetting2 = new PerMessageDeflate(agreement({ [theirs]: true }), role, OPTIONS);
      for (let i = 0; i < 3; i++) assert.deepEqual(await decompress(resetting2, oracleDeflate(message)), message);
      for (const codec of [peer, keeping, resetting, resetting2]) codec.close();
    });
  }
});

describe('PerMessageDeflate: window bits (RFC 7692 §7.1.2)', () => {
  const data = longDistanceData();

  for (const role of ROLES) {
    const ours = role === 'server' ? 'serverMaxWindowBits' : 'clientMaxWindowBits';
    const theirs = role === 'server' ? 'clientMaxWindowBits' : 'serverMaxWindowBits';

    it(`${role}: compresses within the agreed ${ours} (9..15), so the peer inflates with that window`, async () => {
      const sizes = new Map<number, number>();
      for (let bits = 9; bits <= 15; bits++) {
        const codec = new PerMessageDeflate(agreement({ [ours]: bits }), role, OPTIONS);
        const payload = await compress(codec, data);
        assert.deepEqual(oracleInflate([payload], bits), data, `${ours}=${bits}: inflates with a 2^${bits} window`);
        sizes.set(bits, payload.length);
        codec.close();
      }
      // A 1500-byte repeat is out of reach of a 512-byte window and within reach of a 32 KiB one.
      assert.ok(sizes.get(9)! > sizes.get(15)! * 5, `window 9 gave ${sizes.get(9)} B, window 15 gave ${sizes.get(15)} B`);
    });

    it(`${role}: inflates what the peer compressed within the agreed ${theirs} (9..15)`, async () => {
      for (let bits = 9; bits <= 15; bits++) {
        const codec = new PerMessageDeflate(agreement({ [theirs]: bits }), role, OPTIONS);
        assert.deepEqual(await decompress(codec, oracleDeflate(data, { windowBits: bits })), data, `${theirs}=${bits}`);
        codec.close();
      }
    });

    it(`${role}: fails with 1007 when the peer refers further back than the agreed ${theirs}=9 allows`, async () => {
      const codec = new PerMessageDeflate(agreement({ [theirs]: 9 }), role, OPTIONS);
      const { error } = await decompressResult(codec, oracleDeflate(data, { windowBits: 15 }));
      assert.ok(error instanceof ProtocolError);
      assert.equal(error.closeCode, 1007);
      codec.close();
    });
  }

  it('client: an agreed client_max_window_bits=8 compresses with zlib\'s smallest raw window, 9', async () => {
    const codec = new PerMessageDeflate(agreement({ clientMaxWindowBits: 8 }), 'client', OPTIONS);
    const payload = await compress(codec, data);
    assert.deepEqual(oracleInflate([payload], 9), data);
    codec.close();
  });
});

describe('PerMessageDeflate: level and memLevel', () => {
  it('honours the level: 0 stores (no smaller than the input), 9 compresses at least as well as the default 1', async () => {
    const data = sample(20_000, 'text', 5);
    const sizeAt = async (options: Partial<DeflateCodecOptions>): Promise<number> => {
      const codec = new PerMessageDeflate(agreement({ serverNoContextTakeover: true }), 'server', { ...OPTIONS, ...options });
      const payload = await compress(codec, data);
      assert.deepEqual(oracleInflate([payload]), data);
      codec.close();
      return payload.length;
    };
    assert.ok((await sizeAt({ level: 0 })) >= data.length);
    assert.ok((await sizeAt({ level: 9 })) <= (await sizeAt({})));
    assert.ok((await sizeAt({ memLevel: 1 })) > 0);
  });

  it('names its compressor settings in compressionKey: equal for equal settings, different otherwise', () => {
    const key = (changes: Partial<DeflateAgreement>, options: Partial<DeflateCodecOptions> = {}, role: TestRole = 'server'): string =>
      new PerMessageDeflate(agreement(changes), role, { ...OPTIONS, ...options }).compressionKey;
    assert.equal(key({}), key({}));
    assert.equal(key({ serverNoContextTakeover: true }), key({}), 'context takeover is not part of the compressor settings');
    assert.equal(key({ clientMaxWindowBits: 10 }), key({}), 'the peer\'s window is not ours');
    assert.notEqual(key({ serverMaxWindowBits: 10 }), key({}));
    assert.notEqual(key({}, { level: 2 }), key({}));
    assert.notEqual(key({}, { memLevel: 9 }), key({}));
    assert.equal(key({ clientMaxWindowBits: 12 }, {}, 'client'), key({ serverMaxWindowBits: 12 }, {}, 'server'));
  });

  it('gives identical payloads for equal keys when stateless, whatever each codec compressed before', async () => {
    const a = new PerMessageDeflate(agreement({ serverNoContextTakeover: true }), 'server', OPTIONS);
    const b = new PerMessageDeflate(agreement({ serverNoContextTakeover: true, clientNoContextTakeover: true }), 'server', OPTIONS);
    assert.equal(a.compressionKey, b.compressionKey);
    await compress(b, sample(9000, 'random'));
    const data = sample(6000, 'text', 1);
    assert.deepEqual(await compress(a, data), await compress(b, data));
    a.close();
    b.close();
  });
});

describe('PerMessageDeflate: data that does not inflate (RFC 7692 §8: fail the connection; 1007)', () => {
  it('fails with ProtocolError 1007 for a reserved block type, a bad stored length and random garbage', async () => {
    const codec = new PerMessageDeflate(agreement(), 'server', OPTIONS);
    for (const bad of [Buffer.from([0xff]), Buffer.from([0x07, 0x00]), Buffer.from([0x00, 0x05, 0x00, 0x12, 0x34]), new Rng(77).bytes(64)]) {
      const { error, message } = await decompressResult(codec, bad);
      assert.ok(error instanceof ProtocolError, `${bad.toString('hex')}: a ProtocolError`);
      assert.equal(error.code, 'ERR_INVALID_COMPRESSED_DATA');
      assert.equal(error.closeCode, 1007);
      assert.equal(message.length, 0);
    }
    codec.close();
  });

  it('replaces a failed inflater: the same codec inflates a fresh message afterwards', async () => {
    const codec = new PerMessageDeflate(agreement(), 'client', OPTIONS);
    assert.equal((await decompressResult(codec, Buffer.from([0xff]))).error?.closeCode, 1007);
    assert.deepEqual(await decompress(codec, oracleDeflate(Buffer.from('after a failure'))), Buffer.from('after a failure'));
    codec.close();
  });

  it('never throws and always calls back for 300 random payloads (fixed seed)', async () => {
    const rng = new Rng(0xbad);
    const codec = new PerMessageDeflate(agreement({ clientNoContextTakeover: true }), 'server', { maxMessageBytes: 64 * 1024 });
    for (let i = 0; i < 300; i++) {
      const { error } = await decompressResult(codec, rng.bytes(rng.int(0, 200)));
      if (error !== null) assert.ok([1007, 1009].includes(error.closeCode), `${error.code} ${error.closeCode}`);
    }
    codec.close();
  });
});

describe('PerMessageDeflate: bounded inflation (RFC 7692 §8, 1009)', () => {
  /** zeros compressed segment by segment (each sync-flushed, so they concatenate into one valid stream). */
  function zeroBomb(mebibytes: number): Buffer {
    const segment = deflateRawSync(Buffer.alloc(MiB), { finishFlush: constants.Z_SYNC_FLUSH, level: 9 });
    const stream = Buffer.concat(Array.from({ length: mebibytes }, () => segment));
    return stream.subarray(0, stream.length - 4);
  }

  function collectGarbage(): void {
    setFlagsFromString('--expose-gc');
    (runInNewContext('gc') as () => void)();
  }

  it('the bomb construction is sound: 2 segments inflate to 2 MiB of zeros with zlib\'s own inflater', () => {
    const inflated = oracleInflate([zeroBomb(2)]);
    assert.equal(inflated.length, 2 * MiB);
    assert.ok(inflated.every((byte) => byte === 0));
  });

  it('stops a 50 MB bomb (~50 KB compressed) at maxMessageBytes 1 MiB with 1009, and RSS grows far less than 50 MB', async () => {
    const bomb = zeroBomb(50);
    assert.ok(bomb.length < 100 * 1024, `the bomb is ${bomb.length} B`);
    const codec = new PerMessageDeflate(agreement(), 'server', { maxMessageBytes: MiB });
    collectGarbage();
    const before = process.memoryUsage.rss();
    let peak = before;
    const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage.rss()); }, 1);
    try {
      const { error, message } = await decompressResult(codec, bomb);
      peak = Math.max(peak, process.memoryUsage.rss());
      assert.ok(error instanceof ProtocolError);
      assert.equal(error.code, 'ERR_MESSAGE_TOO_BIG');
      assert.equal(error.closeCode, 1009);
      assert.equal(message.length, 0);
    } finally {
      clearInterval(sampler);
    }
    const grownMb = (peak - before) / MiB;
    assert.ok(grownMb < 32, `RSS grew by ${grownMb.toFixed(1)} MB while refusing a 50 MB bomb`);
    // The codec is still usable (a new inflater replaces the abandoned one).
    assert.deepEqual(await decompress(codec, oracleDeflate(Buffer.from('small'))), Buffer.from('small'));
    codec.close();
  });

  it('fails with 1009 one byte past maxMessageBytes', async () => {
    const codec = new PerMessageDeflate(agreement(), 'client', { maxMessageBytes: 100_000 });
    const { error } = await decompressResult(codec, oracleDeflate(sample(100_001, 'text')));
    assert.equal(error?.closeCode, 1009);
    codec.close();
  });
});

describe('PerMessageDeflate: close()', () => {
  it('reports "closed" to calls made after close, in both directions', async () => {
    const codec = new PerMessageDeflate(agreement(), 'server', OPTIONS);
    await compress(codec, Buffer.from('before'));
    codec.close();
    const compressed = await compressResult(codec, Buffer.from('after'));
    assert.ok(compressed.error instanceof Error);
    assert.match(compressed.error.message, /closed/);
    const decompressed = await decompressResult(codec, oracleDeflate(Buffer.from('after')));
    assert.ok(decompressed.error instanceof ProtocolError);
    assert.equal(decompressed.error.code, 'ERR_CODEC_CLOSED');
    assert.equal(decompressed.message.length, 0);
    codec.close();
  });

  for (const reset of [false, true]) {
    it(`reports "closed" to jobs in flight when closed mid-way (${reset ? 'no context takeover' : 'context kept'}), and frees their limiter slots`, async () => {
      const codec = new PerMessageDeflate(agreement({ serverNoContextTakeover: reset, clientNoContextTakeover: reset }), 'server', OPTIONS);
      const big = sample(2 * MiB, 'text');
      const compressing = compressResult(codec, big);
      const inflating = decompressResult(codec, oracleDeflate(big));
      codec.close();
      const [compressed, inflated] = await Promise.all([compressing, inflating]);
      assert.ok(compressed.error instanceof Error, 'the compression reports an error, not a payload');
      assert.match(compressed.error.message, /closed/);
      assert.ok(inflated.error instanceof ProtocolError, 'the inflation reports an error, not a message');
      assert.equal(inflated.error.code, 'ERR_CODEC_CLOSED');
      // Closed a turn later, once zlib is really at work.
      const codec2 = new PerMessageDeflate(agreement({ serverNoContextTakeover: reset, clientNoContextTakeover: reset }), 'server', OPTIONS);
      const compressing2 = compressResult(codec2, big);
      const inflating2 = decompressResult(codec2, oracleDeflate(big));
      setImmediate(() => codec2.close());
      const [compressed2, inflated2] = await Promise.all([compressing2, inflating2]);
      assert.ok(compressed2.error !== null, 'compression after close reports an error');
      assert.ok(inflated2.error !== null && inflated2.error.code === 'ERR_CODEC_CLOSED', `inflation after close: ${String(inflated2.error?.code)}`);
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(zlibLimiter.running, 0, 'every limiter slot is free again');
    });
  }
});

describe('codecStats', () => {
  it('counts each compress and decompress call', async () => {
    const codec = new PerMessageDeflate(agreement(), 'client', OPTIONS);
    const before = { ...codecStats };
    await compress(codec, Buffer.from('one'));
    await compress(codec, Buffer.from('two'));
    await decompress(codec, oracleDeflate(Buffer.from('three')));
    await decompressResult(codec, Buffer.from([0xff]));
    assert.deepEqual({ compressions: codecStats.compressions - before.compressions, decompressions: codecStats.decompressions - before.decompressions },
      { compressions: 2, decompressions: 2 });
    codec.close();
  });
});

describe('PerMessageDeflate: several jobs in flight on one codec', () => {
  it('keeps messages apart when compress and decompress are called again before the previous call back', {}, async () => {
    const sender = new PerMessageDeflate(agreement(), 'server', OPTIONS);
    const a = sample(5000, 'text', 1);
    const b = sample(3000, 'text', 2);
    const [pa, pb] = await Promise.all([compress(sender, a), compress(sender, b)]);
    assert.deepEqual(oracleInflate([pa, pb]), Buffer.concat([a, b]));
    const receiver = new PerMessageDeflate(agreement(), 'client', OPTIONS);
    const [ma, mb] = await Promise.all([decompress(receiver, oracleDeflate(a)), decompress(receiver, oracleDeflate(b))]);
    assert.deepEqual([ma, mb], [a, b]);
    sender.close();
    receiver.close();
  });
});

describe('PerMessageDeflate: a peer that ends each message with a BFINAL block (RFC 7692 §7.2.3.4)', () => {
  const finished = (data: string, dictionary?: string): Buffer =>
    deflateRawSync(Buffer.from(data), dictionary === undefined ? {} : { dictionary: Buffer.from(dictionary) });

  it('keeps inflating after the stream ended, and resolves back-references into the previous message', async () => {
    const codec = new PerMessageDeflate(agreement(), 'server', OPTIONS);
    const first = 'the quick brown fox jumps over the lazy dog';
    assert.deepEqual(await decompress(codec, finished(first)), Buffer.from(first));
    // Compressed against the first message as its window: only inflatable if the context carried over.
    const second = `${first} again`;
    assert.deepEqual(await decompress(codec, finished(second, first)), Buffer.from(second));
    assert.deepEqual(await decompress(codec, oracleDeflate(Buffer.from('and a sync-flushed one'))), Buffer.from('and a sync-flushed one'));
    codec.close();
  });

  it('starts each message from an empty window when the peer resets its context', async () => {
    const codec = new PerMessageDeflate(agreement({ clientNoContextTakeover: true }), 'server', OPTIONS);
    for (const text of ['one', 'two', 'three']) assert.deepEqual(await decompress(codec, finished(text)), Buffer.from(text));
    codec.close();
  });
});
