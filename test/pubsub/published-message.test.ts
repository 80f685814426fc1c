// PublishedMessage: one published message and its encodings, made once and shared by every subscriber. The plain
// frame is encoded on first use and the same object is handed to every caller; a compressed frame (RFC 7692 §6:
// RSV1 on the frame) is made by the first caller's compress function once per compressor key, however many
// subscribers ask while it runs, and a failed compression is not cached. Frames are parsed with the independent
// parser in test/_support/frames.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PublishedMessage } from '../../src/pubsub/published-message.js';
import { Opcode, parseServerFrames, patternBytes, type ServerFrame } from '../_support/frames.js';

type CompressCallback = (error: Error | null, payload: Buffer) => void;
type Frames = readonly Buffer[] | undefined;

/** The one frame `frames` carries, as a client would parse it. */
function onlyFrame(frames: readonly Buffer[]): ServerFrame {
  const { frames: parsed, rest } = parseServerFrames(Buffer.concat(frames));
  assert.equal(parsed.length, 1, 'exactly one frame');
  assert.equal(rest.length, 0, 'nothing after the frame');
  return parsed[0]!;
}

/** A compress function whose calls the test counts and finishes by hand. */
function manualCompressor(): { calls: CompressCallback[]; compress: (callback: CompressCallback) => void } {
  const calls: CompressCallback[] = [];
  return { calls, compress: (callback) => { calls.push(callback); } };
}

describe('PublishedMessage.plainFrames', () => {
  it('encodes the frame once and returns the identical object to every caller', () => {
    const message = new PublishedMessage('hello subscribers');
    const first = message.plainFrames();
    for (let i = 0; i < 100; i++) assert.equal(message.plainFrames(), first, `call ${i} returns the same array`);
    const frame = onlyFrame(first);
    assert.deepEqual({ fin: frame.fin, rsv: frame.rsv, opcode: frame.opcode, masked: frame.masked }, { fin: true, rsv: 0, opcode: Opcode.text, masked: false });
    assert.equal(frame.payload.toString(), 'hello subscribers');
  });

  it('sends a string as text and bytes as binary unless isBinary says otherwise; large payloads keep a minimal length', () => {
    const bytes = patternBytes(70_000);
    const cases: Array<[PublishedMessage, number, Buffer]> = [
      [new PublishedMessage('caf\u00e9'), Opcode.text, Buffer.from('caf\u00e9')],
      [new PublishedMessage(Buffer.from([1, 2, 3])), Opcode.binary, Buffer.from([1, 2, 3])],
      [new PublishedMessage(new Uint8Array([4, 5])), Opcode.binary, Buffer.from([4, 5])],
      [new PublishedMessage('as bytes', true), Opcode.binary, Buffer.from('as bytes')],
      [new PublishedMessage(Buffer.from('as text'), false), Opcode.text, Buffer.from('as text')],
      [new PublishedMessage(bytes), Opcode.binary, bytes],
      [new PublishedMessage(''), Opcode.text, Buffer.alloc(0)],
    ];
    for (const [message, opcode, payload] of cases) {
      const frame = onlyFrame(message.plainFrames());
      assert.equal(frame.opcode, opcode);
      assert.equal(frame.rsv, 0, 'a plain frame has no RSV bits');
      assert.ok(frame.minimalLength);
      assert.deepEqual(frame.payload, payload);
      assert.deepEqual(message.data, payload, 'data holds the payload bytes');
    }
  });

  it('exposes data and isBinary as given (a Uint8Array view is kept without copying)', () => {
    const backing = new Uint8Array([9, 8, 7, 6, 5]);
    const view = backing.subarray(1, 4);
    const message = new PublishedMessage(view);
    assert.equal(message.isBinary, true);
    assert.deepEqual([...message.data], [8, 7, 6]);
    assert.equal(message.data.buffer, backing.buffer, 'same memory');
    assert.equal(new PublishedMessage('x').isBinary, false);
  });
});

describe('PublishedMessage.compressedFrames (shared compression for stateless subscribers)', () => {
  it('runs compress once for many concurrent callers of one key, and every caller gets the identical frames', () => {
    const message = new PublishedMessage('x'.repeat(5000));
    const compressor = manualCompressor();
    const received: Frames[] = [];
    const others: Array<() => void> = [];
    for (let i = 0; i < 50; i++) {
      // Each subscriber offers its own compress function; only the first one's may run.
      let ownCalls = 0;
      others.push(() => assert.equal(ownCalls, 0, `subscriber ${i}'s own compress never ran`));
      message.compressedFrames('15:1:8', i === 0 ? compressor.compress : () => { ownCalls++; }, (frames) => received.push(frames));
    }
    assert.equal(compressor.calls.length, 1, 'one compression for 50 callers');
    assert.equal(received.length, 0, 'nobody is called back before the compression finishes');
    const payload = Buffer.from([0x2a, 0xa9, 0x18, 0x05, 0xa3, 0x60, 0x14, 0x0c, 0x77, 0x00, 0x00]);
    compressor.calls[0]!(null, payload);
    assert.equal(received.length, 50);
    const frames = received[0];
    assert.ok(frames !== undefined);
    for (const got of received) assert.equal(got, frames, 'the same frames object for everyone');
    for (const check of others) check();
    const frame = onlyFrame(frames);
    assert.deepEqual({ fin: frame.fin, rsv: frame.rsv, opcode: frame.opcode, masked: frame.masked }, { fin: true, rsv: 4, opcode: Opcode.text, masked: false },
      'RFC 7692 §6: a compressed message has RSV1 on its (only) frame');
    assert.deepEqual(frame.payload, payload);
  });

  it('answers later callers of a finished key at once, with the cached frames and no new compression', () => {
    const message = new PublishedMessage(patternBytes(3000));
    const compressor = manualCompressor();
    let first: Frames;
    message.compressedFrames('k', compressor.compress, (frames) => { first = frames; });
    compressor.calls[0]!(null, Buffer.from([1, 2, 3]));
    let later: Frames;
    message.compressedFrames('k', () => assert.fail('a cached key must not compress again'), (frames) => { later = frames; });
    assert.ok(later !== undefined, 'called back synchronously');
    assert.equal(later, first);
    assert.equal(onlyFrame(later).opcode, Opcode.binary);
    assert.equal(onlyFrame(later).rsv, 4);
  });

  it('compresses once per key: different compressor settings get their own frames', () => {
    const message = new PublishedMessage('y'.repeat(2000));
    const a = manualCompressor();
    const b = manualCompressor();
    const got = new Map<string, Frames[]>();
    const record = (key: string) => (frames: Frames): void => { got.set(key, [...(got.get(key) ?? []), frames]); };
    message.compressedFrames('15:1:8', a.compress, record('15:1:8'));
    message.compressedFrames('10:1:8', b.compress, record('10:1:8'));
    message.compressedFrames('15:1:8', b.compress, record('15:1:8'));
    message.compressedFrames('10:1:8', a.compress, record('10:1:8'));
    assert.equal(a.calls.length, 1);
    assert.equal(b.calls.length, 1);
    b.calls[0]!(null, Buffer.from([0xbb]));
    a.calls[0]!(null, Buffer.from([0xaa]));
    assert.deepEqual(got.get('15:1:8')!.map((f) => onlyFrame(f!).payload.toString('hex')), ['aa', 'aa']);
    assert.deepEqual(got.get('10:1:8')!.map((f) => onlyFrame(f!).payload.toString('hex')), ['bb', 'bb']);
  });

  it('gives undefined to every waiter when the compression fails, and compresses again on a later call', () => {
    const message = new PublishedMessage('z'.repeat(4000));
    const first = manualCompressor();
    const results: Frames[] = [];
    for (let i = 0; i < 5; i++) message.compressedFrames('k', first.compress, (frames) => results.push(frames));
    first.calls[0]!(new Error('codec closed'), Buffer.alloc(0));
    assert.deepEqual(results, [undefined, undefined, undefined, undefined, undefined]);
    // The failure is not cached: the next caller compresses (with its own function) and others share that.
    const second = manualCompressor();
    const later: Frames[] = [];
    message.compressedFrames('k', second.compress, (frames) => later.push(frames));
    message.compressedFrames('k', first.compress, (frames) => later.push(frames));
    assert.equal(first.calls.length, 1, 'the failed compressor is not called again');
    assert.equal(second.calls.length, 1);
    second.calls[0]!(null, Buffer.from([7]));
    assert.equal(later.length, 2);
    assert.ok(later[0] !== undefined);
    assert.equal(later[0], later[1]);
  });

  it('handles a compress function that calls back synchronously (success and failure)', () => {
    const message = new PublishedMessage('sync');
    let failed: Frames | 'not called' = 'not called';
    message.compressedFrames('k', (callback) => callback(new Error('no'), Buffer.alloc(0)), (frames) => { failed = frames; });
    assert.equal(failed, undefined);
    let ok: Frames;
    message.compressedFrames('k', (callback) => callback(null, Buffer.from([0])), (frames) => { ok = frames; });
    assert.ok(ok !== undefined);
    let cached: Frames;
    message.compressedFrames('k', () => assert.fail('cached'), (frames) => { cached = frames; });
    assert.equal(cached, ok);
  });

  it('keeps plain and compressed frames apart', () => {
    const message = new PublishedMessage('both kinds');
    let compressed: Frames;
    message.compressedFrames('k', (callback) => callback(null, Buffer.from([0x01, 0x02])), (frames) => { compressed = frames; });
    assert.notEqual(message.plainFrames(), compressed);
    assert.equal(onlyFrame(message.plainFrames()).rsv, 0);
    assert.equal(onlyFrame(message.plainFrames()).payload.toString(), 'both kinds');
    assert.equal(onlyFrame(compressed!).rsv, 4);
  });
});
