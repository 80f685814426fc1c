// The closing handshake (RFC 6455 §5.5.1, §7) through a Connection of each role: echoing the peer's close,
// completing ours, the codes and reasons that may be received and sent, silence after our close frame, and
// how the connection ended (closeInfo).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertSendableClose, encodeClosePayload, isValidWireCloseCode, truncateCloseReason } from '../../src/protocol/close.js';
import { ReadyState } from '../../src/protocol/constants.js';
import {
  assertFailsAllWays, closeBody, closeOf, forEachWay, isLegalWireCloseCode, moreInput, open, Op, peerFrame, peerStream, ROLES,
  summarize, takeFrames,
} from '../_support/recorder.js';

const INVALID_RECEIVED_CODES = [0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535];
const VALID_RECEIVED_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999];

describe('Connection: the peer closes first', () => {
  for (const role of ROLES) {
    describe(`${role} role`, () => {
      it('echoes the peer\'s close code and reason and reports it (RFC 6455 §5.5.1: "send a Close frame in response")', () => {
        forEachWay(role, peerFrame(role, { opcode: Op.close, payload: closeBody(1001, 'going away') }), (run, label) => {
          assert.deepEqual(summarize(run.events), [{ type: 'close', code: 1001, reason: 'going away' }], label);
          assert.equal(run.frames.length, 1);
          assert.deepEqual(closeOf(run.frames[0]!), { code: 1001, reason: 'going away' });
          assert.equal(run.connection.readyState, ReadyState.Closed);
          assert.deepEqual(run.connection.closeInfo(), { code: 1001, reason: 'going away', wasClean: true });
        });
      });

      if (role === 'server') {
        it('asks to close the transport once both close frames are out, as the server (RFC 6455 §7.1.1: the server closes TCP first)', () => {
          forEachWay('server', peerFrame('server', { opcode: Op.close, payload: closeBody(1000) }), (run, label) => {
            assert.equal(run.connection.shouldCloseTransport(), true, label);
          });
        });
      } else {
        it('keeps the transport open and expects the server to close it, as the client (RFC 6455 §7.1.1)', () => {
          forEachWay('client', peerFrame('client', { opcode: Op.close, payload: closeBody(1000) }), (run, label) => {
            assert.equal(run.connection.shouldCloseTransport(), false, label);
            assert.equal(run.connection.closeExpected(), true, 'the close timer is armed while waiting for the server');
            run.connection.receiveEof();
            assert.deepEqual(run.connection.closeInfo(), { code: 1000, reason: '', wasClean: true });
          });
        });
      }

      it('answers an empty close with an empty close and reports 1005 (RFC 6455 §7.1.5, §7.4.1)', () => {
        forEachWay(role, peerFrame(role, { opcode: Op.close, payload: '' }), (run, label) => {
          assert.deepEqual(summarize(run.events), [{ type: 'close', code: 1005, reason: '' }], label);
          assert.equal(run.frames.length, 1);
          assert.equal(run.frames[0]!.opcode, Op.close);
          assert.equal(run.frames[0]!.payload.length, 0, 'no code: 1005 is never put on the wire');
          assert.deepEqual(run.connection.closeInfo(), { code: 1005, reason: '', wasClean: true });
        });
      });

      it('fails with 1002 on a close payload of 1 byte (RFC 6455 §5.5.1: a body starts with a 2-byte code)', () => {
        assertFailsAllWays(role, peerFrame(role, { opcode: Op.close, payload: Buffer.from([0x03]) }), 'ERR_CLOSE_PAYLOAD_TOO_SHORT', 1002);
      });

      it('fails with 1002 on codes 0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000 and other unassigned ones (RFC 6455 §7.4.1, §7.4.2)', () => {
        for (const code of INVALID_RECEIVED_CODES) {
          assertFailsAllWays(role, peerFrame(role, { opcode: Op.close, payload: closeBody(code, 'r') }), 'ERR_INVALID_CLOSE_CODE', 1002, { randomSplits: 1 });
        }
      });

      it('accepts and echoes codes 1000-1003, 1007-1014 and 3000-4999 (RFC 6455 §7.4.1, §7.4.2, IANA registry)', () => {
        for (const code of VALID_RECEIVED_CODES) {
          forEachWay(role, peerFrame(role, { opcode: Op.close, payload: closeBody(code, 'why') }), (run, label) => {
            assert.deepEqual(summarize(run.events), [{ type: 'close', code, reason: 'why' }], `${code}, ${label}`);
            assert.deepEqual(closeOf(run.frames[0]!), { code, reason: 'why' });
          }, { randomSplits: 1 });
        }
      });

      it('fails with 1007 on a close reason that is not UTF-8 (RFC 6455 §5.5.1, §8.1)', () => {
        for (const reason of [Buffer.from([0xc0, 0x80]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0x61, 0xe2, 0x82]), Buffer.from([0xff])]) {
          assertFailsAllWays(role, peerFrame(role, { opcode: Op.close, payload: closeBody(1000, reason) }), 'ERR_INVALID_UTF8', 1007);
        }
      });

      it('accepts a 123-byte UTF-8 reason, the most a close frame holds (RFC 6455 §5.5)', () => {
        const reason = '\u00e9'.repeat(61) + 'x'; // 123 bytes
        assert.equal(Buffer.byteLength(reason), 123);
        forEachWay(role, peerFrame(role, { opcode: Op.close, payload: closeBody(4000, reason) }), (run, label) => {
          assert.deepEqual(summarize(run.events), [{ type: 'close', code: 4000, reason }], label);
          assert.deepEqual(closeOf(run.frames[0]!), { code: 4000, reason });
        });
      });

      it('ignores everything after the peer\'s close frame, in the same chunk or later (RFC 6455 §5.5.1: the endpoint sends no more data)', () => {
        const stream = peerStream(role, [{ opcode: Op.close, payload: closeBody(1000) }, { opcode: Op.text, payload: 'late' }, { opcode: Op.ping, payload: 'late' }]);
        forEachWay(role, stream, (run, label) => {
          assert.deepEqual(summarize(run.events), [{ type: 'close', code: 1000, reason: '' }], label);
          assert.equal(run.frames.length, 1);
          run.connection.receiveData(moreInput(role));
          run.connection.receiveData(Buffer.from([0xff, 0xff, 0xff]));
          assert.deepEqual(run.recorder.takeEvents(), []);
          assert.deepEqual(run.connection.takeOutgoing(), []);
        });
      });

      it('drops a fragmented message in progress when the peer closes', () => {
        const stream = peerStream(role, [{ opcode: Op.text, payload: 'never finished', fin: false }, { opcode: Op.close, payload: closeBody(1000) }]);
        forEachWay(role, stream, (run, label) => {
          assert.deepEqual(summarize(run.events), [{ type: 'close', code: 1000, reason: '' }], label);
        });
      });

      it('sends nothing after its echo: send, sendText, ping and pong return false; close() is a no-op (RFC 6455 §5.5.1)', () => {
        const { connection } = open(role);
        connection.receiveData(peerFrame(role, { opcode: Op.close, payload: closeBody(1000) }));
        assert.equal(takeFrames(connection).length, 1);
        assert.equal(connection.send(Buffer.from('x'), false), false);
        assert.equal(connection.sendText('x'), false);
        assert.equal(connection.ping(), false);
        assert.equal(connection.pong(), false);
        connection.close(1000);
        assert.deepEqual(connection.takeOutgoing(), []);
      });
    });
  }
});

describe('Connection: we close first', () => {
  for (const role of ROLES) {
    describe(`${role} role`, () => {
      it('sends our close frame, waits, and completes cleanly when the peer answers (RFC 6455 §7.1.2, §7.1.4)', () => {
        const { connection, recorder } = open(role);
        connection.close(4001, 'bye');
        const frames = takeFrames(connection);
        assert.equal(frames.length, 1);
        assert.deepEqual(closeOf(frames[0]!), { code: 4001, reason: 'bye' });
        assert.equal(connection.readyState, ReadyState.Closing);
        assert.equal(connection.closeExpected(), true, 'arm the close timer');
        assert.equal(connection.shouldCloseTransport(), false, 'wait for the peer\'s close');
        connection.receiveData(peerFrame(role, { opcode: Op.close, payload: closeBody(4001, 'bye') }));
        assert.deepEqual(summarize(recorder.takeEvents()), [{ type: 'close', code: 4001, reason: 'bye' }]);
        assert.deepEqual(takeFrames(connection), [], 'the close is not answered twice');
        assert.equal(connection.readyState, ReadyState.Closed);
        assert.equal(connection.shouldCloseTransport(), role === 'server');
        assert.equal(connection.closeExpected(), true);
        connection.receiveEof();
        assert.deepEqual(connection.closeInfo(), { code: 4001, reason: 'bye', wasClean: true });
      });

      it('reports the peer\'s code when its answer differs from ours (RFC 6455 §7.1.5: the code received)', () => {
        const { connection } = open(role);
        connection.close(1000, 'ours');
        connection.receiveData(peerFrame(role, { opcode: Op.close, payload: closeBody(1001, 'theirs') }));
        assert.deepEqual(connection.closeInfo(), { code: 1001, reason: 'theirs', wasClean: true });
      });

      it('defaults to code 1000 with an empty reason', () => {
        const { connection } = open(role);
        connection.close();
        assert.deepEqual(closeOf(takeFrames(connection)[0]!), { code: 1000, reason: '' });
      });

      it('sends no data, ping or pong after its close frame, and a second close() sends nothing (RFC 6455 §5.5.1)', () => {
        const { connection } = open(role);
        connection.close(1000);
        assert.equal(connection.send(Buffer.from('x'), true), false);
        assert.equal(connection.sendText('x'), false);
        assert.equal(connection.ping(Buffer.from('p')), false);
        assert.equal(connection.pong(Buffer.from('p')), false);
        connection.close(1001, 'again');
        const frames = takeFrames(connection);
        assert.deepEqual(frames.map((f) => f.opcode), [Op.close]);
      });

      it('does not answer a ping received after its close frame, but still reports it (RFC 6455 §5.5.1)', () => {
        const { connection, recorder } = open(role);
        connection.close(1000);
        takeFrames(connection);
        connection.receiveData(peerFrame(role, { opcode: Op.ping, payload: 'late ping' }));
        assert.deepEqual(summarize(recorder.takeEvents()), [{ type: 'ping', hex: Buffer.from('late ping').toString('hex') }]);
        assert.deepEqual(connection.takeOutgoing(), []);
      });

      it('still delivers data the peer sent before it saw our close (RFC 6455 §7.1.2: the peer may still be sending)', () => {
        const { connection, recorder } = open(role);
        connection.close(1000);
        takeFrames(connection);
        connection.receiveData(peerStream(role, [{ opcode: Op.text, payload: 'in flight' }, { opcode: Op.close, payload: closeBody(1000) }]));
        assert.deepEqual(summarize(recorder.takeEvents()), [
          { type: 'message', isBinary: false, hex: Buffer.from('in flight').toString('hex') },
          { type: 'close', code: 1000, reason: '' },
        ]);
      });

      it('rejects codes 999, 1004, 1005, 1006, 1015, 0, 5000 and non-integers with RangeError, sending nothing (RFC 6455 §7.4.1)', () => {
        const { connection } = open(role);
        for (const code of [999, 1004, 1005, 1006, 1015, 1016, 0, 2999, 5000, 1000.5, Number.NaN]) {
          assert.throws(() => connection.close(code, ''), RangeError, `close(${code})`);
        }
        assert.deepEqual(connection.takeOutgoing(), []);
        assert.equal(connection.readyState, ReadyState.Open);
      });

      it('rejects a 124-byte reason with RangeError and sends a 123-byte one (RFC 6455 §5.5: 125-byte control payloads)', () => {
        const { connection } = open(role);
        assert.throws(() => connection.close(1000, 'x'.repeat(124)), RangeError);
        assert.throws(() => connection.close(1000, '\u00e9'.repeat(62)), RangeError, '62 two-byte characters are 124 bytes');
        assert.deepEqual(connection.takeOutgoing(), []);
        connection.close(1000, 'y'.repeat(123));
        const [frame] = takeFrames(connection);
        assert.equal(frame!.payload.length, 125);
        assert.deepEqual(closeOf(frame!), { code: 1000, reason: 'y'.repeat(123) });
      });

      it('reports 1006 and wasClean false when the transport ends with no close frame (RFC 6455 §7.1.5)', () => {
        const { connection, recorder } = open(role);
        connection.receiveData(peerFrame(role, { opcode: Op.text, payload: 'hi' }));
        connection.receiveEof();
        assert.deepEqual(connection.closeInfo(), { code: 1006, reason: '', wasClean: false });
        assert.equal(connection.readyState, ReadyState.Closed);
        recorder.takeEvents();
        connection.receiveData(peerFrame(role, { opcode: Op.text, payload: 'after eof' }));
        assert.deepEqual(recorder.takeEvents(), []);
      });

      it('sends nothing and stays Closed after the transport ended: send, sendText, ping, pong and close', () => {
        const { connection } = open(role);
        connection.receiveEof();
        assert.equal(connection.send(Buffer.from('x'), true), false);
        assert.equal(connection.sendText('x'), false);
        assert.equal(connection.ping(), false);
        assert.equal(connection.pong(), false);
        if (role === 'server') assert.equal(connection.sendEncoded([Buffer.from([0x81, 0x00])]), false);
        connection.close(1000, 'too late');
        assert.equal(connection.readyState, ReadyState.Closed);
        assert.deepEqual(connection.takeOutgoing(), []);
        assert.deepEqual(connection.closeInfo(), { code: 1006, reason: '', wasClean: false });
      });

      it('reports 1006 and wasClean false when the transport ends after our close but before the peer\'s (RFC 6455 §7.1.5: no close frame received)', () => {
        const { connection } = open(role);
        connection.close(1000, 'bye');
        connection.receiveEof();
        assert.deepEqual(connection.closeInfo(), { code: 1006, reason: '', wasClean: false });
      });
    });
  }
});

describe('Connection.fail', () => {
  for (const role of ROLES) {
    it(`sends a close frame with the code, stops reading and asks to close the transport [${role}] (RFC 6455 §7.1.7)`, () => {
      const { connection, recorder } = open(role);
      connection.fail(1011, 'internal error');
      const [frame] = takeFrames(connection);
      assert.deepEqual(closeOf(frame!), { code: 1011, reason: 'internal error' });
      assert.equal(connection.shouldCloseTransport(), true);
      assert.deepEqual(connection.closeInfo(), { code: 1011, reason: 'internal error', wasClean: false });
      connection.receiveData(moreInput(role));
      assert.deepEqual(recorder.takeEvents(), []);
      assert.deepEqual(connection.takeOutgoing(), []);
    });

    it(`replaces a code that may not be sent with 1002 and truncates a long reason on a UTF-8 boundary [${role}]`, () => {
      const { connection } = open(role);
      connection.fail(1006, '\u00e9'.repeat(100));
      const [frame] = takeFrames(connection);
      const { code, reason } = closeOf(frame!);
      assert.equal(code, 1002);
      assert.equal(reason, '\u00e9'.repeat(61));
      assert.ok(frame!.payload.length <= 125);
    });

    it(`after our close frame, fails without sending a second one [${role}]`, () => {
      const { connection } = open(role);
      connection.close(1000);
      connection.fail(1011, 'close timeout');
      assert.deepEqual(takeFrames(connection).map((f) => f.opcode), [Op.close]);
      assert.equal(connection.shouldCloseTransport(), true);
      assert.equal(connection.closeInfo().wasClean, false);
    });
  }
});

describe('close helpers', () => {
  it('agree with RFC 6455 §7.4 on every code 0-65535', () => {
    for (let code = 0; code <= 65535; code++) assert.equal(isValidWireCloseCode(code), isLegalWireCloseCode(code), `code ${code}`);
  });

  it('encode a close payload as a 2-byte code and the reason, and 1005 as nothing (RFC 6455 §5.5.1)', () => {
    assert.deepEqual(encodeClosePayload(1000, 'ok'), Buffer.from([0x03, 0xe8, 0x6f, 0x6b]));
    assert.deepEqual(encodeClosePayload(4999, ''), Buffer.from([0x13, 0x87]));
    assert.deepEqual(encodeClosePayload(1005, ''), Buffer.alloc(0));
  });

  it('truncate a reason to 123 bytes without splitting a character', () => {
    assert.equal(truncateCloseReason('short'), 'short');
    assert.equal(truncateCloseReason('x'.repeat(200)), 'x'.repeat(123));
    const cut = truncateCloseReason('ab' + '\u{1F600}'.repeat(40));
    assert.ok(Buffer.byteLength(cut) <= 123);
    assert.equal(cut, 'ab' + '\u{1F600}'.repeat(30));
  });

  it('assertSendableClose returns the reason length in bytes and throws RangeError otherwise', () => {
    assert.equal(assertSendableClose(1000, '\u00e9'), 2);
    assert.throws(() => assertSendableClose(1005, ''), RangeError);
  });
});
