// UTF-8 in text messages (RFC 6455 §5.6, §8.1; RFC 3629; Unicode Table 3-7): the incremental validator on
// its own, checked against node's isUtf8 on random input, and a Connection of each role failing with 1007 as
// early as the invalid byte allows.
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { describe, it } from 'node:test';
import { Utf8Validator } from '../../src/protocol/utf8.js';
import {
  assertFailed, assertFailsAllWays, feedWays, forEachWay, open, Op, ownChunk, peerFrame, peerStream, ROLES, Rng, splitAt, summarize,
  takeFrames,
} from '../_support/recorder.js';

const b = (...bytes: number[]): Buffer => Buffer.from(bytes);

/** Code points at every encoding-length boundary, and their UTF-8. */
const BOUNDARY_CODE_POINTS: Array<[codePoint: number, bytes: Buffer]> = [
  [0x00, b(0x00)],
  [0x7f, b(0x7f)],
  [0x80, b(0xc2, 0x80)],
  [0x7ff, b(0xdf, 0xbf)],
  [0x800, b(0xe0, 0xa0, 0x80)],
  [0xd7ff, b(0xed, 0x9f, 0xbf)],
  [0xe000, b(0xee, 0x80, 0x80)],
  [0xfffd, b(0xef, 0xbf, 0xbd)],
  [0xffff, b(0xef, 0xbf, 0xbf)],
  [0x10000, b(0xf0, 0x90, 0x80, 0x80)],
  [0x10ffff, b(0xf4, 0x8f, 0xbf, 0xbf)],
];

/** Ill-formed sequences (Unicode Table 3-7) and the index of the first byte that makes them invalid. */
const INVALID: Array<[name: string, bytes: Buffer, failsAt: number]> = [
  ['overlong NUL C0 80', b(0xc0, 0x80), 0],
  ['overlong C1 BF', b(0xc1, 0xbf), 0],
  ['overlong 3-byte E0 80 80', b(0xe0, 0x80, 0x80), 1],
  ['overlong 3-byte E0 9F BF', b(0xe0, 0x9f, 0xbf), 1],
  ['overlong 4-byte F0 80 80 80', b(0xf0, 0x80, 0x80, 0x80), 1],
  ['overlong 4-byte F0 8F BF BF', b(0xf0, 0x8f, 0xbf, 0xbf), 1],
  ['surrogate U+D800 ED A0 80', b(0xed, 0xa0, 0x80), 1],
  ['surrogate U+DFFF ED BF BF', b(0xed, 0xbf, 0xbf), 1],
  ['above U+10FFFF F4 90 80 80', b(0xf4, 0x90, 0x80, 0x80), 1],
  ['F5', b(0xf5, 0x80, 0x80, 0x80), 0],
  ['F8', b(0xf8, 0x88, 0x80, 0x80, 0x80), 0],
  ['FE', b(0xfe), 0],
  ['FF', b(0xff), 0],
  ['lone continuation 80', b(0x80), 0],
  ['lone continuation BF', b(0xbf), 0],
  ['lead byte then ASCII', b(0xc3, 0x41), 1],
  ['3-byte lead cut by ASCII', b(0xe2, 0x82, 0x41), 2],
  ['4-byte lead cut by a new lead', b(0xf0, 0x9f, 0x98, 0xf0), 3],
  ['too many continuations', b(0xc3, 0xa9, 0x80), 2],
];

/** Valid-looking-prefix oracle: can `bytes` be extended into valid UTF-8? (Tries the lower bound of every range.) */
function isCompletablePrefix(bytes: Buffer): boolean {
  if (isUtf8(bytes)) return true;
  // Every second-byte range of Table 3-7 starts at one of these; later bytes accept any of 80..BF.
  const candidates = [0x80, 0x90, 0xa0];
  for (const first of candidates) {
    if (isUtf8(Buffer.concat([bytes, b(first)]))) return true;
    for (const second of candidates) {
      if (isUtf8(Buffer.concat([bytes, b(first, second)]))) return true;
      for (const third of candidates) if (isUtf8(Buffer.concat([bytes, b(first, second, third)]))) return true;
    }
  }
  return false;
}

/** Random byte strings that are often valid UTF-8 and, when not, fail in every kind of way. */
function randomUtf8ish(rng: Rng): Buffer {
  const parts: Buffer[] = [];
  const count = rng.int(0, 12);
  for (let i = 0; i < count; i++) {
    const kind = rng.int(0, 9);
    if (kind <= 5) {
      // A valid code point from a random encoding-length class.
      const ranges: Array<[number, number]> = [[0, 0x7f], [0x80, 0x7ff], [0x800, 0xd7ff], [0xe000, 0xffff], [0x10000, 0x10ffff]];
      const [lo, hi] = rng.pick(ranges);
      parts.push(Buffer.from(String.fromCodePoint(rng.int(lo, hi))));
    } else if (kind === 6) {
      parts.push(b(rng.int(0x80, 0xff)));
    } else if (kind === 7) {
      parts.push(rng.pick(INVALID)[1]);
    } else if (kind === 8) {
      // A truncated valid sequence.
      const full = Buffer.from(String.fromCodePoint(rng.int(0x80, 0x10ffff) & ~0x800 | 0x80));
      parts.push(full.subarray(0, rng.int(0, full.length)));
    } else {
      parts.push(rng.bytes(rng.int(1, 4)));
    }
  }
  return Buffer.concat(parts);
}

describe('Utf8Validator', () => {
  it('accepts valid 1- to 4-byte sequences and every boundary code point, whole and byte by byte (RFC 3629 §4)', () => {
    for (const [codePoint, bytes] of BOUNDARY_CODE_POINTS) {
      assert.deepEqual(Buffer.from(String.fromCodePoint(codePoint)), bytes, `U+${codePoint.toString(16)}`);
      const whole = new Utf8Validator();
      assert.equal(whole.write(bytes), true);
      assert.equal(whole.atBoundary, true);
      const bytewise = new Utf8Validator();
      for (let i = 0; i < bytes.length; i++) {
        assert.equal(bytewise.atBoundary, i === 0);
        assert.equal(bytewise.write(bytes.subarray(i, i + 1)), true);
      }
      assert.equal(bytewise.atBoundary, true);
    }
  });

  it('rejects overlongs, surrogates, code points above U+10FFFF, F5..FF and lone continuations at the first impossible byte (Unicode Table 3-7)', () => {
    for (const [name, bytes, failsAt] of INVALID) {
      assert.equal(isUtf8(bytes), false, `${name} is invalid for node too`);
      assert.equal(new Utf8Validator().write(bytes), false, name);
      const bytewise = new Utf8Validator();
      for (let i = 0; i < bytes.length; i++) {
        const ok = bytewise.write(bytes, i, i + 1);
        assert.equal(ok, i < failsAt, `${name}: byte ${i} ${i < failsAt ? 'accepted' : 'rejected'}`);
        if (!ok) break;
      }
    }
  });

  it('honours start and end offsets', () => {
    const bytes = b(0xff, 0x41, 0xc3, 0xa9, 0xff);
    const validator = new Utf8Validator();
    assert.equal(validator.write(bytes, 1, 4), true);
    assert.equal(validator.atBoundary, true);
  });

  it('reports a sequence left open at the end (atBoundary false) and starts clean after reset()', () => {
    const validator = new Utf8Validator();
    assert.equal(validator.write(b(0x41, 0xe2, 0x82)), true);
    assert.equal(validator.atBoundary, false);
    validator.reset();
    assert.equal(validator.atBoundary, true);
    assert.equal(validator.write(b(0x41)), true);
  });

  it('agrees with buffer.isUtf8 on 20,000 random byte strings fed in random pieces (property, seed 0xC0FFEE)', () => {
    const rng = new Rng(0xc0ffee);
    let valid = 0;
    for (let n = 0; n < 20000; n++) {
      const bytes = randomUtf8ish(rng);
      const expected = isUtf8(bytes);
      if (expected) valid++;
      const validator = new Utf8Validator();
      let ok = true;
      let failedAt = -1;
      const cuts = Array.from({ length: rng.int(0, 4) }, () => rng.int(0, bytes.length));
      const points = [...new Set([0, ...cuts, bytes.length])].sort((x, y) => x - y);
      for (let p = 0; p + 1 < points.length && ok; p++) {
        ok = validator.write(bytes, points[p]!, points[p + 1]!);
        if (!ok) failedAt = points[p + 1]!;
      }
      const actual = ok && validator.atBoundary;
      assert.equal(actual, expected, `<${bytes.toString('hex')}> split at ${points.join(',')}`);
      // Fail fast: a rejection means the bytes up to the piece's end cannot be completed into valid UTF-8.
      if (!ok) assert.equal(isCompletablePrefix(bytes.subarray(0, failedAt)), false, `<${bytes.toString('hex')}> rejected too early`);
    }
    // The generator must exercise both outcomes in earnest.
    assert.ok(valid > 4000 && valid < 16000, `${valid} valid of 20000`);
  });

  it('rejects at exactly the first byte after which no valid completion exists (property, byte by byte)', () => {
    const rng = new Rng(0xbadc0de);
    for (let n = 0; n < 3000; n++) {
      const bytes = randomUtf8ish(rng);
      const validator = new Utf8Validator();
      let rejectedAt = -1;
      for (let i = 0; i < bytes.length; i++) {
        if (!validator.write(bytes, i, i + 1)) { rejectedAt = i; break; }
      }
      if (rejectedAt === -1) {
        assert.equal(isCompletablePrefix(bytes), true, `<${bytes.toString('hex')}> accepted but not completable`);
      } else {
        assert.equal(isCompletablePrefix(bytes.subarray(0, rejectedAt)), true, `<${bytes.toString('hex')}> rejected too early at ${rejectedAt}`);
        assert.equal(isCompletablePrefix(bytes.subarray(0, rejectedAt + 1)), false, `<${bytes.toString('hex')}> rejected at ${rejectedAt} without cause`);
      }
    }
  });
});

describe('Connection: UTF-8 in text messages', () => {
  for (const role of ROLES) {
    describe(`${role} role`, () => {
      it('accepts the boundary code points U+007F, U+0080, U+07FF, U+0800, U+FFFF, U+10000, U+10FFFF (RFC 6455 §5.6)', () => {
        for (const [codePoint, bytes] of BOUNDARY_CODE_POINTS) {
          const payload = Buffer.concat([Buffer.from('<'), bytes, Buffer.from('>')]);
          forEachWay(role, peerFrame(role, { opcode: Op.text, payload }), (run, label) => {
            assert.deepEqual(summarize(run.events), [{ type: 'message', isBinary: false, hex: payload.toString('hex') }], `U+${codePoint.toString(16)}, ${label}`);
          });
        }
      });

      it('fails with 1007 on each ill-formed sequence in a text message (RFC 6455 §8.1)', () => {
        for (const [name, bytes] of INVALID) {
          const payload = Buffer.concat([Buffer.from('ok '), bytes, Buffer.from(' tail')]);
          assertFailsAllWays(role, peerFrame(role, { opcode: Op.text, payload }), 'ERR_INVALID_UTF8', 1007, { randomSplits: 2, seed: name.length });
        }
      });

      it('does not check binary messages for UTF-8 (RFC 6455 §5.6)', () => {
        forEachWay(role, peerFrame(role, { opcode: Op.binary, payload: b(0xc0, 0x80, 0xff) }), (run, label) => {
          assert.deepEqual(summarize(run.events), [{ type: 'message', isBinary: true, hex: 'c080ff' }], label);
        });
      });

      it('accepts a code point split across fragments, at every split point (RFC 6455 §5.6: validity of the whole message)', () => {
        const euro = Buffer.from('x\u{1F600}y'); // 78 f0 9f 98 80 79
        for (let cut = 1; cut < euro.length; cut++) {
          for (let cut2 = cut; cut2 < euro.length; cut2++) {
            const stream = peerStream(role, [
              { opcode: Op.text, payload: euro.subarray(0, cut), fin: false },
              { opcode: Op.continuation, payload: euro.subarray(cut, cut2), fin: false },
              { opcode: Op.continuation, payload: euro.subarray(cut2) },
            ]);
            forEachWay(role, stream, (run, label) => {
              assert.deepEqual(summarize(run.events), [{ type: 'message', isBinary: false, hex: euro.toString('hex') }], `cut ${cut}/${cut2}, ${label}`);
            }, { randomSplits: 1 });
          }
        }
      });

      it('fails with 1007 when a text message ends inside a sequence, single-frame or fragmented (RFC 6455 §8.1)', () => {
        assertFailsAllWays(role, peerFrame(role, { opcode: Op.text, payload: b(0x41, 0xe2, 0x82) }), 'ERR_INVALID_UTF8', 1007);
        assertFailsAllWays(role, peerFrame(role, { opcode: Op.text, payload: b(0xf0, 0x9f, 0x98) }), 'ERR_INVALID_UTF8', 1007);
        const fragmented = peerStream(role, [
          { opcode: Op.text, payload: b(0x41, 0xe2), fin: false },
          { opcode: Op.continuation, payload: b(0x82), fin: false },
          { opcode: Op.continuation, payload: '' },
        ]);
        assertFailsAllWays(role, fragmented, 'ERR_INVALID_UTF8', 1007);
      });

      it('fails the invalid first fragment before the next fragment arrives (fail fast, Autobahn 6.4.1)', () => {
        const first = peerFrame(role, { opcode: Op.text, payload: Buffer.concat([Buffer.from('valid '), b(0xed, 0xa0, 0x80)]), fin: false });
        const rest = peerFrame(role, { opcode: Op.continuation, payload: 'more' });
        for (const way of feedWays(first)) {
          const { connection, recorder } = open(role);
          for (const chunk of way.chunks) connection.receiveData(chunk);
          const run = { connection, recorder, events: recorder.takeEvents(), frames: takeFrames(connection) };
          assert.equal(run.events.length, 1, `${way.name}: failed on the first fragment alone`);
          connection.receiveData(ownChunk(rest));
          assertFailed(run, 'ERR_INVALID_UTF8', 1007, way.name);
        }
      });

      it('fails a single text frame fed in pieces at the piece holding the invalid byte, before the rest arrives (fail fast, Autobahn 6.4.2-6.4.4)', () => {
        const cases: Array<[Buffer, number]> = [
          [b(0xc0, 0x80), 0],
          [b(0xe0, 0x80, 0x80), 1],
          [b(0xf4, 0x90, 0x80, 0x80), 1],
          [b(0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xf4, 0x90, 0x80, 0x80), 12],
        ];
        for (const [bad, failsAt] of cases) {
          const payload = Buffer.concat([Buffer.from('ascii prefix: '), bad, Buffer.from(' and a long tail that must never be needed'.repeat(3))]);
          const frame = peerFrame(role, { opcode: Op.text, payload });
          const headerBytes = frame.length - payload.length;
          const badIndex = headerBytes + 'ascii prefix: '.length + failsAt;
          // Pieces: [0, badIndex), [badIndex, badIndex + 1), then the rest one byte at a time.
          for (const pieces of [
            splitAt(frame, [badIndex, badIndex + 1, ...Array.from({ length: frame.length - badIndex - 1 }, (_, i) => badIndex + 2 + i)]),
            splitAt(frame, [headerBytes + 3, badIndex, badIndex + 1]),
          ]) {
            const { connection, recorder } = open(role);
            let fed = 0;
            let failedAfter = -1;
            for (const piece of pieces) {
              connection.receiveData(piece);
              fed += piece.length;
              if (failedAfter === -1 && recorder.pending > 0) failedAfter = fed;
            }
            assert.equal(failedAfter, badIndex + 1, `<${bad.toString('hex')}>: failed with the piece holding the invalid byte`);
            assertFailed({ connection, recorder, events: recorder.takeEvents(), frames: takeFrames(connection) }, 'ERR_INVALID_UTF8', 1007);
          }
        }
      });

      it('fails with 1007 on an invalid continuation fragment after a valid start', () => {
        const stream = peerStream(role, [
          { opcode: Op.text, payload: 'caf\u00e9 ', fin: false },
          { opcode: Op.continuation, payload: b(0x80), fin: false },
          { opcode: Op.continuation, payload: 'end' },
        ]);
        assertFailsAllWays(role, stream, 'ERR_INVALID_UTF8', 1007);
      });

      it('starts each message with fresh UTF-8 state (an open sequence never leaks into the next message)', () => {
        // Message 1 is valid; message 2 begins with a continuation byte, which is invalid on its own.
        const stream = peerStream(role, [
          { opcode: Op.text, payload: 'a', fin: false },
          { opcode: Op.continuation, payload: '\u00e9' },
          { opcode: Op.text, payload: Buffer.concat([b(0xa9), Buffer.from('x')]) },
        ]);
        forEachWay(role, stream, (run, label) => {
          assert.equal(run.events[0]?.type, 'message', label);
          assertFailed(run, 'ERR_INVALID_UTF8', 1007, label);
        });
      });

      it('keeps UTF-8 state across an interleaved ping in the middle of a split code point (RFC 6455 §5.4)', () => {
        const snowman = Buffer.from('\u2603'); // e2 98 83
        const stream = peerStream(role, [
          { opcode: Op.text, payload: snowman.subarray(0, 1), fin: false },
          { opcode: Op.ping, payload: b(0x83, 0x98) }, // control payloads are not text: never validated
          { opcode: Op.continuation, payload: snowman.subarray(1) },
        ]);
        forEachWay(role, stream, (run, label) => {
          assert.deepEqual(summarize(run.events), [{ type: 'ping', hex: '8398' }, { type: 'message', isBinary: false, hex: snowman.toString('hex') }], label);
        });
      });
    });
  }
});
