// Data messages (RFC 6455 §5.6), fragmentation (§5.4) and ping/pong (§5.5.2, §5.5.3) through a Connection
// of each role, fed whole, byte by byte and in seeded random splits.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  assertFailsAllWays, feedWays, forEachWay, messagesOf, open, Op, peerFrame, peerStream, ROLES, Rng, summarize, takeFrames,
  type RecordedEvent, type TestRole,
} from '../_support/recorder.js';

const hex = (text: string | Buffer): string => Buffer.from(text).toString('hex');

describe('Connection: data messages', () => {
  for (const role of ROLES) {
    describe(`${role} role`, () => {
      it('delivers a text message as text and a binary message as binary (RFC 6455 §5.6)', () => {
        const binary = Buffer.from([0x00, 0xff, 0xc0, 0x80, 0x7f]);
        const stream = peerStream(role, [{ opcode: Op.text, payload: 'h\u00e9llo \u{1F600}' }, { opcode: Op.binary, payload: binary }]);
        forEachWay(role, stream, (run, label) => {
          assert.deepEqual(summarize(run.events), [
            { type: 'message', isBinary: false, hex: hex('h\u00e9llo \u{1F600}') },
            { type: 'message', isBinary: true, hex: binary.toString('hex') },
          ], label);
          assert.deepEqual(run.frames, []);
          assert.equal(run.connection.closeExpected(), false);
          assert.equal(run.connection.shouldCloseTransport(), false);
        });
      });

      it('delivers empty text and binary messages (RFC 6455 §5.2: a zero payload length is allowed)', () => {
        const stream = peerStream(role, [{ opcode: Op.text, payload: '' }, { opcode: Op.binary, payload: '' }]);
        forEachWay(role, stream, (run, label) => {
          assert.deepEqual(summarize(run.events), [
            { type: 'message', isBinary: false, hex: '' },
            { type: 'message', isBinary: true, hex: '' },
          ], label);
        });
      });

      it('delivers many messages from one chunk in order', () => {
        const rng = new Rng(20);
        const specs = Array.from({ length: 50 }, (_, i) => ({ opcode: i % 3 === 0 ? Op.binary : Op.text, payload: i % 3 === 0 ? rng.bytes(rng.int(0, 300)) : `message ${i}`.repeat(rng.int(0, 20)) }));
        forEachWay(role, peerStream(role, specs), (run, label) => {
          const messages = messagesOf(run.events);
          assert.equal(messages.length, 50, label);
          messages.forEach((m, i) => {
            assert.deepEqual(m.data, Buffer.from(specs[i]!.payload));
            assert.equal(m.isBinary, specs[i]!.opcode === Op.binary);
          });
        });
      });

      it('reassembles a fragmented text message and delivers it once, whole (RFC 6455 §5.4)', () => {
        const stream = peerStream(role, [
          { opcode: Op.text, payload: 'Hel', fin: false },
          { opcode: Op.continuation, payload: 'lo, ', fin: false },
          { opcode: Op.continuation, payload: '', fin: false },
          { opcode: Op.continuation, payload: 'world' },
        ]);
        forEachWay(role, stream, (run, label) => {
          assert.deepEqual(summarize(run.events), [{ type: 'message', isBinary: false, hex: hex('Hello, world') }], label);
        });
      });

      it('reassembles a fragmented binary message, including an empty final fragment (RFC 6455 §5.4)', () => {
        const rng = new Rng(21);
        const parts = [rng.bytes(200), rng.bytes(1), rng.bytes(70)];
        const stream = peerStream(role, [
          { opcode: Op.binary, payload: parts[0]!, fin: false },
          { opcode: Op.continuation, payload: parts[1]!, fin: false },
          { opcode: Op.continuation, payload: parts[2]!, fin: false },
          { opcode: Op.continuation, payload: '' },
        ]);
        forEachWay(role, stream, (run, label) => {
          assert.deepEqual(summarize(run.events), [{ type: 'message', isBinary: true, hex: Buffer.concat(parts).toString('hex') }], label);
        });
      });

      it('delivers a message made of empty fragments as an empty message', () => {
        const stream = peerStream(role, [{ opcode: Op.text, payload: '', fin: false }, { opcode: Op.continuation, payload: '' }]);
        forEachWay(role, stream, (run, label) => {
          assert.deepEqual(summarize(run.events), [{ type: 'message', isBinary: false, hex: '' }], label);
        });
      });

      it('answers pings between fragments at once and still delivers the message whole at the end (RFC 6455 §5.4, §5.5)', () => {
        const stream = peerStream(role, [
          { opcode: Op.text, payload: 'frag-1 ', fin: false },
          { opcode: Op.ping, payload: 'ping-1' },
          { opcode: Op.continuation, payload: 'frag-2 ', fin: false },
          { opcode: Op.pong, payload: 'pong-1' },
          { opcode: Op.ping, payload: 'ping-2' },
          { opcode: Op.continuation, payload: 'frag-3' },
        ]);
        const lastFrameStart = stream.length - peerFrame(role, { opcode: Op.continuation, payload: 'frag-3' }).length;
        for (const way of feedWays(stream)) {
          const { connection, recorder } = open(role);
          // Timeline: after each chunk, what came out.
          const timeline: Array<{ end: number; events: RecordedEvent[]; pongs: string[] }> = [];
          let end = 0;
          for (const chunk of way.chunks) {
            connection.receiveData(chunk);
            end += chunk.length;
            timeline.push({ end, events: recorder.takeEvents(), pongs: takeFrames(connection).map((f) => { assert.equal(f.opcode, Op.pong); return f.payload.toString(); }) });
          }
          const all = timeline.flatMap((t) => t.events);
          assert.deepEqual(summarize(all), [
            { type: 'ping', hex: hex('ping-1') },
            { type: 'pong', hex: hex('pong-1') },
            { type: 'ping', hex: hex('ping-2') },
            { type: 'message', isBinary: false, hex: hex('frag-1 frag-2 frag-3') },
          ], way.name);
          // Each pong is queued in the same step as its ping event, before the message's last fragment was read.
          for (const step of timeline) {
            const pings = step.events.filter((e) => e.type === 'ping').map((e) => (e.type === 'ping' ? e.data.toString() : ''));
            assert.deepEqual(step.pongs, pings, `${way.name}: pong queued with its ping`);
          }
          const messageStep = timeline.find((t) => t.events.some((e) => e.type === 'message'))!;
          assert.equal(messageStep.end, stream.length, `${way.name}: the message comes with its last byte`);
          if (way.name === 'byte by byte') {
            const pingSteps = timeline.filter((t) => t.events.some((e) => e.type === 'ping'));
            assert.ok(pingSteps.every((t) => t.end <= lastFrameStart), 'pings answered before the last fragment arrives');
          }
        }
      });

      it('fails with 1002 on a continuation frame with no message to continue (RFC 6455 §5.4)', () => {
        for (const fin of [true, false]) {
          assertFailsAllWays(role, peerFrame(role, { opcode: Op.continuation, payload: 'orphan', fin }), 'ERR_UNEXPECTED_CONTINUATION', 1002);
        }
        // Also right after a complete fragmented message.
        const stream = peerStream(role, [
          { opcode: Op.text, payload: 'a', fin: false },
          { opcode: Op.continuation, payload: 'b' },
          { opcode: Op.continuation, payload: 'c' },
        ]);
        forEachWay(role, stream, (run, label) => {
          assert.equal(run.events[0]?.type, 'message', label);
        });
        assertFailsAllWays(role, stream, 'ERR_UNEXPECTED_CONTINUATION', 1002);
      });

      it('fails with 1002 on a new data frame inside a fragmented message (RFC 6455 §5.4: no interleaving)', () => {
        for (const [first, intruder] of [[Op.text, Op.text], [Op.text, Op.binary], [Op.binary, Op.text], [Op.binary, Op.binary]] as const) {
          for (const fin of [true, false]) {
            const stream = peerStream(role, [
              { opcode: first, payload: 'start', fin: false },
              { opcode: intruder, payload: 'intruder', fin },
              { opcode: Op.continuation, payload: 'end' },
            ]);
            assertFailsAllWays(role, stream, 'ERR_INCOMPLETE_MESSAGE', 1002);
          }
        }
      });

      it('delivers no partial message when the transport ends mid-message', () => {
        const { connection, recorder } = open(role);
        connection.receiveData(peerFrame(role, { opcode: Op.text, payload: 'partial', fin: false }));
        connection.receiveEof();
        assert.deepEqual(recorder.takeEvents(), []);
      });
    });
  }
});

describe('Connection: ping and pong', () => {
  for (const role of ROLES) {
    it(`answers a ping with a pong carrying the identical payload [${role}] (RFC 6455 §5.5.2)`, () => {
      const rng = new Rng(22);
      for (const payload of [Buffer.alloc(0), Buffer.from('hi'), rng.bytes(125), Buffer.from([0xff, 0x00, 0xc0])]) {
        forEachWay(role, peerFrame(role, { opcode: Op.ping, payload }), (run, label) => {
          assert.deepEqual(summarize(run.events), [{ type: 'ping', hex: payload.toString('hex') }], label);
          assert.equal(run.frames.length, 1);
          assert.equal(run.frames[0]!.opcode, Op.pong);
          assert.equal(run.frames[0]!.fin, true);
          assert.deepEqual(run.frames[0]!.payload, payload);
        });
      }
    });

    it(`answers every ping of a burst, in order [${role}] (RFC 6455 §5.5.3)`, () => {
      const stream = peerStream(role, Array.from({ length: 10 }, (_, i) => ({ opcode: Op.ping, payload: `p${i}` })));
      forEachWay(role, stream, (run, label) => {
        assert.deepEqual(run.frames.map((f) => f.payload.toString()), Array.from({ length: 10 }, (_, i) => `p${i}`), label);
      });
    });

    it(`accepts an unsolicited pong and sends nothing [${role}] (RFC 6455 §5.5.3)`, () => {
      for (const payload of ['', 'unsolicited', 'x'.repeat(125)]) {
        forEachWay(role, peerFrame(role, { opcode: Op.pong, payload }), (run, label) => {
          assert.deepEqual(summarize(run.events), [{ type: 'pong', hex: hex(payload) }], label);
          assert.deepEqual(run.frames, []);
          assert.equal(run.connection.closeExpected(), false);
        });
      }
    });

    it(`sends a ping with the given payload and reports the pong [${role}]`, () => {
      const { connection, recorder } = open(role);
      assert.equal(connection.ping(Buffer.from('are you there')), true);
      const [ping] = takeFrames(connection);
      assert.equal(ping!.opcode, Op.ping);
      assert.deepEqual(ping!.payload, Buffer.from('are you there'));
      connection.receiveData(peerFrame(role as TestRole, { opcode: Op.pong, payload: 'are you there' }));
      assert.deepEqual(summarize(recorder.takeEvents()), [{ type: 'pong', hex: hex('are you there') }]);
      assert.deepEqual(takeFrames(connection), []);
    });
  }
});
