// Frame encoding (RFC 6455 §5.2) and masking (§5.3), checked with the independent decoder in recorder.ts,
// plus what a Connection of each role puts on the wire when the application sends.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyMask, encodeClientFrame, encodeServerFrame, encodeServerTextFrame, headerLength } from '../../src/protocol/frame.js';
import { decodeFrames, open, Op, Rng, takeFrames } from '../_support/recorder.js';

const BOUNDARY_LENGTHS = [0, 1, 125, 126, 127, 4096, 4097, 65535, 65536, 70000];
const expectedBits = (length: number): 7 | 16 | 64 => (length <= 125 ? 7 : length <= 65535 ? 16 : 64);

function naiveMask(data: Uint8Array, key: Uint8Array, phase: number): Buffer {
  const out = Buffer.from(data);
  for (let i = 0; i < out.length; i++) out[i] = out[i]! ^ key[(phase + i) & 3]!;
  return out;
}

describe('encodeServerFrame', () => {
  it('writes unmasked frames with the minimal 7/16/64-bit length at every boundary (RFC 6455 §5.2)', () => {
    const rng = new Rng(1);
    for (const length of BOUNDARY_LENGTHS) {
      const payload = rng.bytes(length);
      const frames = decodeFrames(encodeServerFrame(Op.binary, payload));
      assert.equal(frames.length, 1);
      const frame = frames[0]!;
      assert.equal(frame.masked, false, 'RFC 6455 §5.1: a server MUST NOT mask');
      assert.equal(frame.lengthBits, expectedBits(length), `length ${length}`);
      assert.equal(frame.fin, true);
      assert.equal(frame.rsv1 || frame.rsv2 || frame.rsv3, false);
      assert.equal(frame.opcode, Op.binary);
      assert.deepEqual(frame.payload, payload);
      assert.equal(headerLength(length, false), { 7: 2, 16: 4, 64: 10 }[frame.lengthBits]);
      assert.equal(headerLength(length, true), { 7: 6, 16: 8, 64: 14 }[frame.lengthBits]);
    }
  });

  it('keeps a large payload apart from its header instead of copying it (zero-copy framing)', () => {
    const payload = Buffer.alloc(70000, 7);
    const parts = encodeServerFrame(Op.binary, payload);
    assert.equal(parts.length, 2);
    assert.equal(parts[1], payload, 'the same Buffer, not a copy');
    assert.equal(parts[0]!.length, 10);
    const small = encodeServerFrame(Op.binary, Buffer.alloc(100, 1));
    assert.equal(small.length, 1, 'a small frame is one buffer');
  });

  it('honours fin=false and rsv1 (for fragmentation and extensions)', () => {
    const [frame] = decodeFrames(encodeServerFrame(Op.text, Buffer.from('a'), { fin: false, rsv1: true }));
    assert.equal(frame!.fin, false);
    assert.equal(frame!.rsv1, true);
  });

  it('encodes a text frame from a string with the same bytes as from its UTF-8 payload', () => {
    for (const text of ['', 'hello', 'h\u00e9llo \u{1F600}', 'x'.repeat(126), '\u00e9'.repeat(3000)]) {
      assert.deepEqual(Buffer.concat(encodeServerTextFrame(text)), Buffer.concat(encodeServerFrame(Op.text, Buffer.from(text))));
    }
  });
});

describe('encodeClientFrame', () => {
  it('masks every frame and writes the minimal length at every boundary (RFC 6455 §5.2, §5.3)', () => {
    const rng = new Rng(2);
    for (const length of BOUNDARY_LENGTHS) {
      const payload = rng.bytes(length);
      const frames = decodeFrames([encodeClientFrame(Op.binary, payload)]);
      assert.equal(frames.length, 1);
      assert.equal(frames[0]!.masked, true, 'RFC 6455 §5.3: a client MUST mask every frame');
      assert.equal(frames[0]!.lengthBits, expectedBits(length));
      assert.deepEqual(frames[0]!.payload, payload);
    }
  });

  it('uses a fresh mask key for each frame (RFC 6455 §5.3: unpredictable, from a strong source)', () => {
    const keys = new Set<string>();
    for (let i = 0; i < 2000; i++) keys.add(decodeFrames([encodeClientFrame(Op.text, Buffer.from('same'))])[0]!.maskKey!.toString('hex'));
    // 2000 draws from 2^32 keys: a collision is possible in theory, but over 1% of repeats means no randomness.
    assert.ok(keys.size > 1980, `${keys.size} distinct keys out of 2000`);
  });

  it('does not modify the caller\'s payload', () => {
    const payload = Buffer.from('do not touch me, I am shared');
    const copy = Buffer.from(payload);
    encodeClientFrame(Op.text, payload);
    assert.deepEqual(payload, copy);
  });
});

describe('applyMask', () => {
  it('matches a byte-by-byte XOR for every length, alignment and key phase (RFC 6455 §5.3)', () => {
    const rng = new Rng(3);
    const key = Uint8Array.from([0x01, 0x80, 0xfe, 0x5a]);
    const keyNumber = Buffer.from(key).readUInt32BE(0);
    // Past 64 bytes the word-at-a-time path runs, with an unrolled loop of four words and a tail.
    for (let length = 0; length < 150; length++) {
      for (let misalign = 0; misalign < 4; misalign++) {
        for (let phase = 0; phase < 4; phase++) {
          const backing = Buffer.alloc(length + 8);
          const data = backing.subarray(misalign, misalign + length);
          data.set(rng.bytes(length));
          const expected = naiveMask(data, key, phase);
          applyMask(data, keyNumber, phase);
          assert.deepEqual(Buffer.from(data), expected, `length ${length}, misalign ${misalign}, phase ${phase}`);
          // Only the view was touched.
          assert.ok(backing.subarray(0, misalign).every((b) => b === 0));
          assert.ok(backing.subarray(misalign + length).every((b) => b === 0));
        }
      }
    }
  });

  it('handles keys with the top bit set and undoes itself when applied twice', () => {
    const rng = new Rng(4);
    for (const keyBytes of [[0xaa, 0xbb, 0xcc, 0xdd], [0xff, 0xff, 0xff, 0xff], [0x80, 0, 0, 1], [0, 0, 0, 0]]) {
      const key = Uint8Array.from(keyBytes);
      const original = rng.bytes(1000);
      const data = Buffer.from(original);
      applyMask(data, Buffer.from(key).readUInt32BE(0), 0);
      assert.deepEqual(data, naiveMask(original, key, 0));
      applyMask(data, Buffer.from(key).readUInt32BE(0), 0);
      assert.deepEqual(data, original);
    }
  });
});

describe('Connection output', () => {
  it('never masks what the server sends: data, ping, pong and close (RFC 6455 §5.1)', () => {
    const { connection } = open('server');
    connection.send(Buffer.from([1, 2, 3]), true);
    connection.send(Buffer.alloc(70000, 1), true);
    connection.sendText('h\u00e9');
    connection.ping(Buffer.from('p'));
    connection.pong(Buffer.from('q'));
    connection.close(1000, 'done');
    const frames = takeFrames(connection);
    assert.deepEqual(frames.map((f) => f.opcode), [Op.binary, Op.binary, Op.text, Op.ping, Op.pong, Op.close]);
    assert.ok(frames.every((f) => !f.masked && f.fin && !f.rsv1 && !f.rsv2 && !f.rsv3));
    assert.deepEqual(frames[2]!.payload, Buffer.from('h\u00e9'));
    assert.equal(frames[1]!.payload.length, 70000);
  });

  it('masks every frame the client sends, each with a different key (RFC 6455 §5.3)', () => {
    const { connection } = open('client');
    for (let i = 0; i < 8; i++) connection.send(Buffer.from(`message ${i}`), i % 2 === 0);
    connection.sendText('text');
    connection.ping(Buffer.from('p'));
    connection.pong(Buffer.from('q'));
    connection.close(1000, 'done');
    const frames = takeFrames(connection);
    assert.equal(frames.length, 12);
    assert.ok(frames.every((f) => f.masked));
    const keys = frames.map((f) => f.maskKey!.toString('hex'));
    assert.equal(new Set(keys).size, keys.length, `keys: ${keys.join(' ')}`);
    assert.deepEqual(frames[0]!.payload, Buffer.from('message 0'));
    assert.equal(frames[0]!.opcode, Op.binary);
    assert.equal(frames[1]!.opcode, Op.text);
  });

  it('tracks the bytes queued and empties the queue on takeOutgoing()', () => {
    for (const role of ['server', 'client'] as const) {
      const { connection } = open(role);
      assert.equal(connection.outgoingBytes, 0);
      connection.send(Buffer.alloc(10), true);
      connection.send(Buffer.alloc(5000), true);
      const expected = role === 'server' ? 2 + 10 + 4 + 5000 : 6 + 10 + 8 + 5000;
      assert.equal(connection.outgoingBytes, expected);
      const taken = connection.takeOutgoing();
      assert.equal(taken.reduce((sum, b) => sum + b.length, 0), expected);
      assert.equal(connection.outgoingBytes, 0);
      assert.deepEqual(connection.takeOutgoing(), []);
    }
  });

  it('sends pre-encoded frames on the server and refuses them on the client (client frames must be masked)', () => {
    const server = open('server').connection;
    const encoded = encodeServerFrame(Op.text, Buffer.from('hi'));
    assert.equal(server.sendEncoded(encoded), true);
    assert.deepEqual(takeFrames(server).map((f) => f.payload.toString()), ['hi']);
    const client = open('client').connection;
    assert.throws(() => client.sendEncoded(encoded), TypeError);
  });

  it('throws RangeError for a ping or pong payload over 125 bytes (RFC 6455 §5.5)', () => {
    for (const role of ['server', 'client'] as const) {
      const { connection } = open(role);
      assert.throws(() => connection.ping(Buffer.alloc(126)), RangeError);
      assert.throws(() => connection.pong(Buffer.alloc(126)), RangeError);
      assert.equal(connection.ping(Buffer.alloc(125)), true);
      assert.equal(takeFrames(connection)[0]!.payload.length, 125);
    }
  });
});
