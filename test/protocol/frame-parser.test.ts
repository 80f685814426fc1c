// The frame parser (RFC 6455 §5.2), through a Connection of each role and directly with a recording sink:
// length encodings and their limits, masking per role, zero-copy views, reserved bits and opcodes, control
// frame rules. Every case is fed whole, byte by byte and in seeded random splits.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProtocolError } from '../../src/errors.js';
import { FrameParser, type FrameSink } from '../../src/protocol/frame-parser.js';
import {
  assertFailed, assertFailsAllWays, closeBody, encodeFrame, forEachWay, messagesOf, open, Op, ownChunk, peerFrame, ROLES, Rng,
  splitAt, summarize, wronglyMaskedFrame, type TestRole,
} from '../_support/recorder.js';

/** The header bytes of a frame the peer of `role` would send with this declared length. */
function peerHeader(role: TestRole, spec: Parameters<typeof encodeFrame>[0]): Buffer {
  return encodeFrame({ ...spec, mask: role === 'server', payload: Buffer.alloc(0) });
}

/** Feeds only `bytes` (no payload follows) in every split and asserts the failure happened anyway. */
function assertFailsOnHeaderAlone(role: TestRole, header: Buffer, code: string, closeCode: number, options: { maxFrameBytes?: number; maxMessageBytes?: number } = {}): void {
  // assertFailed() afterwards proves nothing else is read or answered.
  assertFailsAllWays(role, header, code, closeCode, options);
}

describe('FrameParser (through Connection)', () => {
  for (const role of ROLES) {
    describe(`${role} role`, () => {
      it('reads 7-, 16- and 64-bit lengths at 0, 125, 126, 65535 and 65536 (RFC 6455 §5.2)', () => {
        const rng = new Rng(10);
        for (const length of [0, 1, 125, 126, 65535, 65536]) {
          const payload = rng.bytes(length);
          const stream = peerFrame(role, { opcode: Op.binary, payload });
          forEachWay(role, stream, (run, label) => {
            assert.deepEqual(summarize(run.events), [{ type: 'message', isBinary: true, hex: payload.toString('hex') }], `${length} bytes, ${label}`);
            assert.deepEqual(run.frames, [], 'nothing to answer');
          }, { randomSplits: length > 1000 ? 2 : 3 });
        }
      });

      it('accepts a frame of exactly maxFrameBytes and rejects one byte more with 1009 (RFC 6455 §7.4.1)', () => {
        forEachWay(role, peerFrame(role, { opcode: Op.binary, payload: Buffer.alloc(300, 1) }), (run, label) => {
          assert.equal(messagesOf(run.events).length, 1, label);
        }, { maxFrameBytes: 300 });
        assertFailsOnHeaderAlone(role, peerHeader(role, { opcode: Op.binary, declaredLength: 301 }), 'ERR_FRAME_TOO_BIG', 1009, { maxFrameBytes: 300 });
      });

      it('fails with 1009 from the header of a huge 64-bit length when maxFrameBytes is small, buffering nothing (RFC 6455 §5.2, §10.4)', () => {
        for (const declaredLength of [65536, 2 ** 32, 2 ** 40, Number.MAX_SAFE_INTEGER]) {
          assertFailsOnHeaderAlone(role, peerHeader(role, { opcode: Op.binary, declaredLength }), 'ERR_FRAME_TOO_BIG', 1009, { maxFrameBytes: 1024 });
        }
      });

      it('fails with 1002 on a non-minimal 16-bit length (RFC 6455 §5.2: "the minimal number of bytes MUST be used")', () => {
        for (const length of [0, 1, 125]) {
          assertFailsAllWays(role, peerFrame(role, { opcode: Op.binary, payload: Buffer.alloc(length, 2), lengthBits: 16 }), 'ERR_NON_MINIMAL_LENGTH', 1002);
          assertFailsOnHeaderAlone(role, peerHeader(role, { opcode: Op.binary, declaredLength: length, lengthBits: 16 }), 'ERR_NON_MINIMAL_LENGTH', 1002);
        }
      });

      it('fails with 1002 on a non-minimal 64-bit length (RFC 6455 §5.2)', () => {
        for (const length of [0, 125, 126, 65535]) {
          assertFailsAllWays(role, peerFrame(role, { opcode: Op.binary, payload: Buffer.alloc(length, 3), lengthBits: 64 }), 'ERR_NON_MINIMAL_LENGTH', 1002, { randomSplits: 1 });
        }
      });

      it('fails with 1002 when the most significant bit of a 64-bit length is set (RFC 6455 §5.2)', () => {
        for (const declaredLength of [2n ** 63n, 2n ** 63n + 5n, 2n ** 64n - 1n]) {
          assertFailsOnHeaderAlone(role, peerHeader(role, { opcode: Op.binary, declaredLength }), 'ERR_LENGTH_OVERFLOW', 1002);
        }
      });

      it('fails with 1002 on a 64-bit length above 2^53 - 1, which cannot be held exactly', () => {
        for (const declaredLength of [2n ** 53n, 2n ** 53n + 1n, 2n ** 62n]) {
          assertFailsOnHeaderAlone(role, peerHeader(role, { opcode: Op.binary, declaredLength }), 'ERR_LENGTH_OVERFLOW', 1002, { maxFrameBytes: Number.MAX_SAFE_INTEGER });
        }
        // 2^53 - 1 itself is a legal length: it is refused for its size (1009), not as malformed.
        assertFailsOnHeaderAlone(role, peerHeader(role, { opcode: Op.binary, declaredLength: 2n ** 53n - 1n }), 'ERR_FRAME_TOO_BIG', 1009);
      });

      it('hands out payload views of the chunk when a frame arrives whole in one chunk (zero-copy)', () => {
        const payloads = [Buffer.from('first'), Buffer.alloc(300, 0x61), Buffer.from([0, 1, 2, 3, 4])];
        const stream = Buffer.concat(payloads.map((payload) => peerFrame(role, { opcode: Op.binary, payload })));
        const { connection, recorder } = open(role);
        const chunk = ownChunk(stream);
        connection.receiveData(chunk);
        const messages = messagesOf(recorder.takeEvents());
        assert.equal(messages.length, 3);
        messages.forEach((message, i) => {
          assert.deepEqual(message.data, payloads[i]);
          assert.equal(message.data.buffer, chunk.buffer, `message ${i} is a view of the chunk`);
          assert.ok(message.data.byteOffset >= chunk.byteOffset && message.data.byteOffset + message.data.length <= chunk.byteOffset + chunk.length);
        });
      });

      it('copies a frame that spans chunks into its own buffer, once', () => {
        const payload = Buffer.alloc(300, 0x62);
        const stream = peerFrame(role, { opcode: Op.binary, payload });
        const chunks = splitAt(stream, [100, 200]);
        const { connection, recorder } = open(role);
        for (const chunk of chunks) connection.receiveData(chunk);
        const [message] = messagesOf(recorder.takeEvents());
        assert.deepEqual(message!.data, payload);
        assert.ok(chunks.every((chunk) => chunk.buffer !== message!.data.buffer));
      });

      it(role === 'server'
        ? 'fails with 1002 on an unmasked frame from the client (RFC 6455 §5.1: "a server MUST close")'
        : 'fails with 1002 on a masked frame from the server (RFC 6455 §5.1: "a client MUST close")', () => {
        const code = role === 'server' ? 'ERR_UNMASKED_FRAME' : 'ERR_MASKED_FRAME';
        for (const spec of [
          { opcode: Op.text, payload: 'hello' },
          { opcode: Op.binary, payload: Buffer.alloc(200, 1) },
          { opcode: Op.ping, payload: 'p' },
          { opcode: Op.pong, payload: '' },
          { opcode: Op.close, payload: closeBody(1000) },
        ]) {
          assertFailsAllWays(role, wronglyMaskedFrame(role, spec), code, 1002);
        }
        // Decided from the header: the payload need not arrive.
        assertFailsOnHeaderAlone(role, encodeFrame({ opcode: Op.binary, declaredLength: 1000, mask: role === 'client' }), code, 1002);
      });

      if (role === 'server') {
        it('accepts a masked frame whose key is all zeros (the MASK bit is what counts, RFC 6455 §5.3)', () => {
          forEachWay('server', encodeFrame({ opcode: Op.text, payload: 'zero key', mask: Uint8Array.from([0, 0, 0, 0]) }), (run, label) => {
            assert.deepEqual(summarize(run.events), [{ type: 'message', isBinary: false, hex: Buffer.from('zero key').toString('hex') }], label);
          });
        });
      }

      it('fails with 1002 when RSV1, RSV2 or RSV3 is set without a negotiated extension (RFC 6455 §5.2)', () => {
        for (const bits of [{ rsv1: true }, { rsv2: true }, { rsv3: true }, { rsv1: true, rsv2: true, rsv3: true }]) {
          for (const opcode of [Op.text, Op.binary, Op.ping, Op.close]) {
            const payload = opcode === Op.close ? closeBody(1000) : 'x';
            assertFailsAllWays(role, peerFrame(role, { opcode, payload, ...bits }), 'ERR_RESERVED_BITS', 1002, { randomSplits: 1 });
          }
        }
        // On a continuation frame too.
        const stream = Buffer.concat([peerFrame(role, { opcode: Op.text, payload: 'a', fin: false }), peerFrame(role, { opcode: Op.continuation, payload: 'b', rsv2: true })]);
        assertFailsAllWays(role, stream, 'ERR_RESERVED_BITS', 1002);
      });

      it('fails with 1002 on reserved opcodes 3-7 and 11-15 (RFC 6455 §5.2)', () => {
        for (const opcode of [3, 4, 5, 6, 7, 11, 12, 13, 14, 15]) {
          assertFailsAllWays(role, peerFrame(role, { opcode, payload: 'reserved' }), 'ERR_RESERVED_OPCODE', 1002, { randomSplits: 1 });
          assertFailsAllWays(role, peerFrame(role, { opcode, payload: '', fin: false }), 'ERR_RESERVED_OPCODE', 1002, { randomSplits: 1 });
        }
      });

      it('fails with 1002 on a control frame over 125 bytes, decided from the header (RFC 6455 §5.5)', () => {
        for (const opcode of [Op.ping, Op.pong, Op.close]) {
          const payload = opcode === Op.close ? closeBody(1000, 'r'.repeat(124)) : Buffer.alloc(126, 1);
          assert.equal(payload.length, 126);
          assertFailsAllWays(role, peerFrame(role, { opcode, payload }), 'ERR_CONTROL_TOO_LONG', 1002, { randomSplits: 1 });
          assertFailsOnHeaderAlone(role, peerHeader(role, { opcode, declaredLength: 70000 }), 'ERR_CONTROL_TOO_LONG', 1002);
        }
      });

      it('accepts control frames of exactly 125 bytes (RFC 6455 §5.5)', () => {
        const payload = Buffer.alloc(125, 0x70);
        forEachWay(role, peerFrame(role, { opcode: Op.ping, payload }), (run, label) => {
          assert.deepEqual(summarize(run.events), [{ type: 'ping', hex: payload.toString('hex') }], label);
          assert.deepEqual(run.frames.map((f) => [f.opcode, f.payload.length]), [[Op.pong, 125]]);
        });
      });

      it('fails with 1002 on a fragmented control frame (RFC 6455 §5.5: "MUST NOT be fragmented")', () => {
        for (const opcode of [Op.ping, Op.pong, Op.close]) {
          assertFailsAllWays(role, peerFrame(role, { opcode, payload: opcode === Op.close ? closeBody(1000) : 'p', fin: false }), 'ERR_FRAGMENTED_CONTROL', 1002, { randomSplits: 1 });
          assertFailsOnHeaderAlone(role, peerHeader(role, { opcode, declaredLength: 5, fin: false }), 'ERR_FRAGMENTED_CONTROL', 1002);
        }
      });

      it('stops at the violating frame: frames before it are delivered, bytes after it are not read', () => {
        const stream = Buffer.concat([
          peerFrame(role, { opcode: Op.text, payload: 'before' }),
          peerFrame(role, { opcode: 5, payload: 'bad' }),
          peerFrame(role, { opcode: Op.text, payload: 'after' }),
        ]);
        forEachWay(role, stream, (run, label) => {
          assert.equal(run.events.length, 2, label);
          assert.deepEqual(run.events[0], { type: 'message', data: Buffer.from('before'), isBinary: false });
          assertFailed(run, 'ERR_RESERVED_OPCODE', 1002, label);
        });
      });
    });
  }
});

describe('FrameParser (direct)', () => {
  type Seen = { kind: 'header'; fin: boolean; rsv1: boolean; opcode: number; length: number } | { kind: 'piece'; bytes: Buffer } | { kind: 'frame'; bytes: Buffer } | { kind: 'error'; error: ProtocolError };

  function recordingParser(role: TestRole, maxFrameBytes = 1 << 20): { parser: FrameParser; seen: Seen[] } {
    const seen: Seen[] = [];
    const sink: FrameSink = {
      onFrameHeader(p) { seen.push({ kind: 'header', fin: p.fin, rsv1: p.rsv1, opcode: p.opcode, length: p.payloadLength }); return true; },
      onPayloadPiece(piece) { seen.push({ kind: 'piece', bytes: Buffer.from(piece) }); return true; },
      onFrame(payload) { seen.push({ kind: 'frame', bytes: Buffer.from(payload) }); return true; },
      onFrameError(error) { seen.push({ kind: 'error', error }); },
    };
    return { parser: new FrameParser(role, sink, { maxFrameBytes }), seen };
  }

  for (const role of ROLES) {
    it(`reports each header before its payload and unmasks pieces at any key phase [${role}] (RFC 6455 §5.3)`, () => {
      const rng = new Rng(11);
      const payload = rng.bytes(1000);
      const stream = peerFrame(role, { opcode: Op.binary, payload, fin: false });
      for (let trial = 0; trial < 20; trial++) {
        const offsets = Array.from({ length: rng.int(1, 12) }, () => rng.int(1, stream.length - 1));
        const { parser, seen } = recordingParser(role);
        for (const chunk of splitAt(stream, offsets)) parser.push(chunk);
        assert.deepEqual(seen[0], { kind: 'header', fin: false, rsv1: false, opcode: Op.binary, length: 1000 });
        const pieces = seen.filter((s): s is Extract<Seen, { kind: 'piece' }> => s.kind === 'piece').map((s) => s.bytes);
        assert.deepEqual(Buffer.concat(pieces), payload, 'pieces concatenate to the unmasked payload');
        const last = seen[seen.length - 1]!;
        assert.equal(last.kind, 'frame');
        assert.deepEqual(last.kind === 'frame' ? last.bytes : undefined, payload);
      }
    });

    it(`allows RSV1 on a data frame only when rsv1Allowed is set, never on control or continuation frames [${role}] (RFC 7692 §6)`, () => {
      const { parser, seen } = recordingParser(role);
      parser.rsv1Allowed = true;
      parser.push(peerFrame(role, { opcode: Op.text, payload: 'c', rsv1: true }));
      const first = seen[0];
      assert.equal(first?.kind === 'header' && first.rsv1, true);
      for (const spec of [{ opcode: Op.ping, payload: 'p', rsv1: true }, { opcode: Op.continuation, payload: 'c', rsv1: true }]) {
        const fresh = recordingParser(role);
        fresh.parser.rsv1Allowed = true;
        fresh.parser.push(peerFrame(role, spec));
        const error = fresh.seen.find((s) => s.kind === 'error');
        assert.ok(error?.kind === 'error' && error.error.code === 'ERR_RESERVED_BITS' && error.error.closeCode === 1002);
        assert.equal(fresh.parser.stopped, true);
      }
    });

    it(`ignores all input once stopped [${role}]`, () => {
      const { parser, seen } = recordingParser(role);
      parser.stop();
      parser.push(peerFrame(role, { opcode: Op.text, payload: 'x' }));
      assert.deepEqual(seen, []);
    });
  }
});
