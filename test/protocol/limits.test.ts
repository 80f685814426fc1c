// Size limits (RFC 6455 §10.4: implementations SHOULD limit frame and message size; close code 1009, §7.4.1):
// decided from frame headers, so an oversized frame or message is refused before its payload is buffered.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  assertFailed, encodeFrame, feedWays, forEachWay, open, Op, peerFrame, peerStream, ROLES, summarize, takeFrames,
} from '../_support/recorder.js';

describe('Connection limits', () => {
  for (const role of ROLES) {
    describe(`${role} role`, () => {
      it('fails with 1009 on a header announcing more than maxFrameBytes, before any payload arrives (RFC 6455 §10.4)', () => {
        const maxFrameBytes = 1000;
        for (const declaredLength of [1001, 65535, 65536, 2 ** 31, 2 ** 40]) {
          // Only the header is fed: the failure cannot wait for (or buffer) the payload.
          const header = encodeFrame({ opcode: Op.binary, declaredLength, mask: role === 'server' });
          forEachWay(role, header, (run, label) => {
            assertFailed(run, 'ERR_FRAME_TOO_BIG', 1009, `${declaredLength}, ${label}`);
          }, { maxFrameBytes });
        }
      });

      it('accepts a frame of exactly maxFrameBytes', () => {
        forEachWay(role, peerFrame(role, { opcode: Op.text, payload: 'a'.repeat(1000) }), (run, label) => {
          assert.equal(run.events.length, 1, label);
          assert.equal(run.events[0]!.type, 'message');
        }, { maxFrameBytes: 1000 });
      });

      it('applies maxFrameBytes to control frames too', () => {
        forEachWay(role, peerFrame(role, { opcode: Op.ping, payload: 'x'.repeat(20) }), (run, label) => {
          assertFailed(run, 'ERR_FRAME_TOO_BIG', 1009, label);
        }, { maxFrameBytes: 10 });
      });

      it('fails with 1009 on a single frame over maxMessageBytes, from its header', () => {
        const header = encodeFrame({ opcode: Op.text, declaredLength: 101, mask: role === 'server' });
        forEachWay(role, header, (run, label) => assertFailed(run, 'ERR_MESSAGE_TOO_BIG', 1009, label), { maxMessageBytes: 100 });
        forEachWay(role, peerFrame(role, { opcode: Op.text, payload: 'm'.repeat(100) }), (run, label) => {
          assert.deepEqual(run.events.map((e) => e.type), ['message'], label);
        }, { maxMessageBytes: 100 });
      });

      it('fails with 1009 at the header of the fragment that takes the message past maxMessageBytes (RFC 6455 §10.4)', () => {
        const maxMessageBytes = 100;
        const before = peerStream(role, [
          { opcode: Op.binary, payload: Buffer.alloc(40, 1), fin: false },
          { opcode: Op.ping, payload: 'x'.repeat(50) }, // control frames do not count towards the message
          { opcode: Op.continuation, payload: Buffer.alloc(40, 2), fin: false },
        ]);
        // 80 bytes so far; the next fragment announces 21 more: 101 > 100. Feed only its header.
        const passingHeader = encodeFrame({ opcode: Op.continuation, declaredLength: 21, fin: false, mask: role === 'server' });
        const stream = Buffer.concat([before, passingHeader]);
        for (const way of feedWays(stream)) {
          const { connection, recorder } = open(role, { maxMessageBytes });
          let fed = 0;
          let failedAt = -1;
          for (const chunk of way.chunks) {
            connection.receiveData(chunk);
            fed += chunk.length;
            if (failedAt === -1 && recorder.pending > 0 && recorder.takeEvents().some((e) => e.type === 'error')) failedAt = fed;
          }
          assert.equal(failedAt, stream.length, `${way.name}: failed exactly when the passing header was complete`);
          const frames = takeFrames(connection);
          assert.deepEqual(frames.map((f) => f.opcode), [Op.pong, Op.close]);
          assert.equal(frames[1]!.payload.readUInt16BE(0), 1009);
        }
        // With the whole stream, the shape of the failure is the usual one.
        forEachWay(role, stream, (run, label) => {
          assert.deepEqual(run.events.map((e) => e.type), ['ping', 'error'], label);
          assertFailed(run, 'ERR_MESSAGE_TOO_BIG', 1009, label);
        }, { maxMessageBytes });
      });

      it('accepts fragments summing to exactly maxMessageBytes', () => {
        const stream = peerStream(role, [
          { opcode: Op.text, payload: 'a'.repeat(60), fin: false },
          { opcode: Op.continuation, payload: 'b'.repeat(40) },
        ]);
        forEachWay(role, stream, (run, label) => {
          assert.deepEqual(summarize(run.events), [{ type: 'message', isBinary: false, hex: Buffer.from('a'.repeat(60) + 'b'.repeat(40)).toString('hex') }], label);
        }, { maxMessageBytes: 100 });
      });

      it('counts each message from zero: many messages each under the limit are all accepted', () => {
        const stream = peerStream(role, Array.from({ length: 5 }, () => [
          { opcode: Op.text, payload: 'a'.repeat(60), fin: false },
          { opcode: Op.continuation, payload: 'b'.repeat(40) },
        ]).flat());
        forEachWay(role, stream, (run, label) => {
          assert.equal(run.events.length, 5, label);
        }, { maxMessageBytes: 100 });
      });
    });
  }
});
