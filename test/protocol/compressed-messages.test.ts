// Compressed messages in the sans-I/O core (RFC 7692 §6): with perMessageDeflate on, RSV1 on a message's first
// frame marks the whole message compressed, and the core hands it out still compressed (onCompressedMessage),
// whole, without a UTF-8 check; RSV1 anywhere else, or without the extension, fails the connection with 1002.
// On the sending side, send(payload, isBinary, true) sets RSV1. Fed whole, byte by byte and at random splits.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { constants, deflateRawSync } from 'node:zlib';
import { Connection, type ConnectionOptions } from '../../src/protocol/connection.js';
import {
  assertFailsAllWays, decodeFrames, feedWays, Op, peerFrame, peerStream, Recorder, ROLES, Rng, takeFrames,
  type DecodedFrame, type FrameSpec, type RecordedEvent, type TestRole,
} from '../_support/recorder.js';

type Logged = RecordedEvent | { type: 'compressed'; data: Buffer; isBinary: boolean };

/** A Recorder that also takes onCompressedMessage, keeping every event in one ordered log. */
class DeflateRecorder extends Recorder {
  log: Logged[] = [];
  override onMessage(data: Buffer, isBinary: boolean): void { this.log.push({ type: 'message', data, isBinary }); super.onMessage(data, isBinary); }
  override onPing(data: Buffer): void { this.log.push({ type: 'ping', data }); super.onPing(data); }
  override onPong(data: Buffer): void { this.log.push({ type: 'pong', data }); super.onPong(data); }
  override onCloseFrame(code: number, reason: string): void { this.log.push({ type: 'close', code, reason }); super.onCloseFrame(code, reason); }
  override onProtocolError(error: import('../../src/errors.js').ProtocolError): void { this.log.push({ type: 'error', error }); super.onProtocolError(error); }
  onCompressedMessage(data: Buffer, isBinary: boolean): void { this.log.push({ type: 'compressed', data, isBinary }); }
  take(): Logged[] {
    this.takeEvents();
    const log = this.log;
    this.log = [];
    return log;
  }
}

interface DeflateRun {
  connection: Connection;
  log: Logged[];
  frames: DecodedFrame[];
  label: string;
}

/** Feeds `bytes` to a fresh perMessageDeflate connection of `role` in every way and returns what came out of each. */
function runAllWays(role: TestRole, bytes: Uint8Array, options: ConnectionOptions = {}): DeflateRun[] {
  const runs: DeflateRun[] = [];
  for (const way of feedWays(bytes, { randomSplits: 4 })) {
    const recorder = new DeflateRecorder();
    const connection = new Connection(role, recorder, { perMessageDeflate: true, ...options });
    for (const chunk of way.chunks) connection.receiveData(chunk);
    runs.push({ connection, log: recorder.take(), frames: takeFrames(connection), label: `${role}, fed ${way.name}` });
  }
  return runs;
}

/** A compact view of the log for deepEqual. */
function view(log: readonly Logged[]): unknown[] {
  return log.map((event) => {
    switch (event.type) {
      case 'compressed':
      case 'message':
        return { type: event.type, isBinary: event.isBinary, hex: event.data.toString('hex') };
      case 'ping':
      case 'pong':
        return { type: event.type, hex: event.data.toString('hex') };
      case 'close':
        return { type: 'close', code: event.code };
      case 'error':
        return { type: 'error', code: event.error.code, closeCode: event.error.closeCode };
    }
  });
}

/** What a peer puts in a compressed frame (RFC 7692 §7.2.1): raw DEFLATE, sync-flushed, trailer removed. */
function deflatePayload(data: string | Uint8Array): Buffer {
  const out = deflateRawSync(Buffer.from(data), { finishFlush: constants.Z_SYNC_FLUSH });
  assert.deepEqual([...out.subarray(-4)], [0x00, 0x00, 0xff, 0xff]);
  return out.subarray(0, out.length - 4);
}

const hex = (bytes: Uint8Array | string): string => Buffer.from(bytes).toString('hex');
const compressedFrame = (role: TestRole, spec: Omit<FrameSpec, 'mask' | 'rsv1'>): Buffer => peerFrame(role, { ...spec, rsv1: true });

describe('Connection with perMessageDeflate: receiving compressed messages (RFC 7692 §6)', () => {
  for (const role of ROLES) {
    describe(`${role} role`, () => {
      it('hands a message whose frame has RSV1 to onCompressedMessage with the raw, still compressed bytes', () => {
        const text = deflatePayload('Hello, permessage-deflate! '.repeat(20));
        const binary = deflatePayload(new Rng(3).bytes(300));
        const stream = peerStream(role, [compressedFrame(role, { opcode: Op.text, payload: text }), compressedFrame(role, { opcode: Op.binary, payload: binary })]);
        for (const run of runAllWays(role, stream)) {
          assert.deepEqual(view(run.log), [
            { type: 'compressed', isBinary: false, hex: hex(text) },
            { type: 'compressed', isBinary: true, hex: hex(binary) },
          ], run.label);
          assert.deepEqual(run.frames, [], `${run.label}: nothing to send back`);
          assert.equal(run.connection.shouldCloseTransport(), false);
        }
      });

      it('reassembles a fragmented compressed message (RSV1 on the first frame only) and hands it out once, whole (§6.1)', () => {
        const payload = deflatePayload('fragmented and compressed '.repeat(30));
        const cuts = [0, 7, 8, 40, payload.length];
        const specs = cuts.slice(0, -1).map((start, i) => ({
          opcode: i === 0 ? Op.text : Op.continuation, payload: payload.subarray(start, cuts[i + 1]), fin: i === cuts.length - 2, rsv1: i === 0,
        }));
        for (const run of runAllWays(role, peerStream(role, specs))) {
          assert.deepEqual(view(run.log), [{ type: 'compressed', isBinary: false, hex: hex(payload) }], run.label);
        }
      });

      it('takes control frames between the fragments of a compressed message, and an empty continuation', () => {
        const payload = deflatePayload(new Rng(9).bytes(200));
        const stream = peerStream(role, [
          { opcode: Op.binary, payload: payload.subarray(0, 50), fin: false, rsv1: true },
          { opcode: Op.ping, payload: 'p' },
          { opcode: Op.continuation, payload: '', fin: false },
          { opcode: Op.pong, payload: 'q' },
          { opcode: Op.continuation, payload: payload.subarray(50) },
        ]);
        for (const run of runAllWays(role, stream)) {
          assert.deepEqual(view(run.log), [
            { type: 'ping', hex: hex('p') },
            { type: 'pong', hex: hex('q') },
            { type: 'compressed', isBinary: true, hex: hex(payload) },
          ], run.label);
          assert.deepEqual(run.frames.map((f) => [f.opcode, f.rsv1, f.payload.toString()]), [[Op.pong, false, 'p']], `${run.label}: the ping is answered, without RSV1`);
        }
      });

      it('hands out an empty compressed message (RSV1 with no payload)', () => {
        for (const run of runAllWays(role, compressedFrame(role, { opcode: Op.text, payload: '' }))) {
          assert.deepEqual(view(run.log), [{ type: 'compressed', isBinary: false, hex: '' }], run.label);
        }
      });

      it('does not check compressed text for UTF-8: the bytes are not the text yet (the I/O layer checks after inflating)', () => {
        const notUtf8 = Buffer.from([0xff, 0xfe, 0xc0, 0x80, 0xed, 0xa0, 0x80]);
        const stream = peerStream(role, [
          { opcode: Op.text, payload: notUtf8, rsv1: true },
          { opcode: Op.text, payload: notUtf8.subarray(0, 3), rsv1: true, fin: false },
          { opcode: Op.continuation, payload: Buffer.from([0xe2]) },
        ]);
        for (const run of runAllWays(role, stream)) {
          assert.deepEqual(view(run.log), [
            { type: 'compressed', isBinary: false, hex: hex(notUtf8) },
            { type: 'compressed', isBinary: false, hex: 'fffec0e2' },
          ], run.label);
          assert.equal(run.connection.shouldCloseTransport(), false, run.label);
        }
      });

      it('still delivers uncompressed messages through onMessage, UTF-8-checked, in order with compressed ones', () => {
        const a = deflatePayload('first');
        const b = deflatePayload('third');
        const stream = peerStream(role, [
          { opcode: Op.text, payload: a, rsv1: true },
          { opcode: Op.text, payload: 'second' },
          { opcode: Op.binary, payload: b, rsv1: true, fin: false },
          { opcode: Op.continuation, payload: '' },
          { opcode: Op.text, payload: 'fou', fin: false },
          { opcode: Op.continuation, payload: 'rth' },
        ]);
        for (const run of runAllWays(role, stream)) {
          assert.deepEqual(view(run.log), [
            { type: 'compressed', isBinary: false, hex: hex(a) },
            { type: 'message', isBinary: false, hex: hex('second') },
            { type: 'compressed', isBinary: true, hex: hex(b) },
            { type: 'message', isBinary: false, hex: hex('fourth') },
          ], run.label);
        }
        assertFailsAllWays(role, peerStream(role, [
          { opcode: Op.text, payload: a, rsv1: true },
          { opcode: Op.text, payload: Buffer.from([0xff]) },
        ]), 'ERR_INVALID_UTF8', 1007, { perMessageDeflate: true });
      });

      it('never streams a compressed message in pieces (it must be whole to inflate), while plain messages still are', () => {
        const compressed = deflatePayload('abcdefghijklmnopqrstuvwxyz'.repeat(4));
        const stream = peerStream(role, [{ opcode: Op.binary, payload: compressed, rsv1: true }, { opcode: Op.binary, payload: 'plain bytes!' }]);
        const pieces: Array<[string, boolean]> = [];
        const compressedSeen: string[] = [];
        const sink = Object.assign(new DeflateRecorder(), {
          onMessagePiece(piece: Buffer, _isBinary: boolean, isLast: boolean) { pieces.push([piece.toString(), isLast]); },
          onCompressedMessage(data: Buffer) { compressedSeen.push(hex(data)); },
        });
        const connection = new Connection(role, sink, { perMessageDeflate: true, messagePieceBytes: 4 });
        connection.receiveData(stream);
        assert.deepEqual(compressedSeen, [hex(compressed)]);
        assert.deepEqual(pieces, [['plai', false], ['n by', false], ['tes!', true]]);
      });

      it('checks maxMessageBytes against the compressed size on the wire (the inflated size is the I/O layer\'s check)', () => {
        const payload = deflatePayload(Buffer.alloc(10_000));
        assert.ok(payload.length < 100);
        for (const run of runAllWays(role, compressedFrame(role, { opcode: Op.binary, payload }), { maxMessageBytes: 100 })) {
          assert.deepEqual(view(run.log), [{ type: 'compressed', isBinary: true, hex: hex(payload) }], run.label);
        }
        assertFailsAllWays(role, peerStream(role, [
          { opcode: Op.binary, payload: new Rng(1).bytes(60), rsv1: true, fin: false },
          { opcode: Op.continuation, payload: new Rng(2).bytes(60) },
        ]), 'ERR_MESSAGE_TOO_BIG', 1009, { perMessageDeflate: true, maxMessageBytes: 100 });
      });
    });
  }
});

describe('Connection: RSV1 where permessage-deflate does not allow it fails with 1002 (RFC 7692 §6.1, RFC 6455 §5.2)', () => {
  for (const role of ROLES) {
    describe(`${role} role`, () => {
      it('RSV1 on a continuation frame', () => {
        const payload = deflatePayload('continued');
        assertFailsAllWays(role, peerStream(role, [
          { opcode: Op.text, payload: payload.subarray(0, 3), fin: false, rsv1: true },
          { opcode: Op.continuation, payload: payload.subarray(3), rsv1: true },
        ]), 'ERR_RESERVED_BITS', 1002, { perMessageDeflate: true });
        assertFailsAllWays(role, peerStream(role, [
          { opcode: Op.binary, payload: 'ab', fin: false },
          { opcode: Op.continuation, payload: 'cd', rsv1: true },
        ]), 'ERR_RESERVED_BITS', 1002, { perMessageDeflate: true });
      });

      for (const [name, opcode, payload] of [['ping', Op.ping, 'p'], ['pong', Op.pong, 'p'], ['close', Op.close, Buffer.from([0x03, 0xe8])]] as const) {
        it(`RSV1 on a ${name} frame (control frames are never compressed)`, () => {
          assertFailsAllWays(role, peerFrame(role, { opcode, payload, rsv1: true }), 'ERR_RESERVED_BITS', 1002, { perMessageDeflate: true });
        });
      }

      it('RSV1 on a data frame when permessage-deflate was not negotiated', () => {
        const payload = deflatePayload('no extension');
        assertFailsAllWays(role, compressedFrame(role, { opcode: Op.text, payload }), 'ERR_RESERVED_BITS', 1002);
        assertFailsAllWays(role, compressedFrame(role, { opcode: Op.binary, payload }), 'ERR_RESERVED_BITS', 1002, { perMessageDeflate: false });
      });

      it('RSV2 and RSV3 stay forbidden with permessage-deflate on', () => {
        assertFailsAllWays(role, peerFrame(role, { opcode: Op.text, payload: 'x', rsv1: true, rsv2: true }), 'ERR_RESERVED_BITS', 1002, { perMessageDeflate: true });
        assertFailsAllWays(role, peerFrame(role, { opcode: Op.binary, payload: 'x', rsv3: true }), 'ERR_RESERVED_BITS', 1002, { perMessageDeflate: true });
      });
    });
  }
});

describe('Connection: sending compressed messages (RFC 7692 §6)', () => {
  for (const role of ROLES) {
    it(`${role}: send(payload, isBinary, true) sets RSV1 on the frame; plain sends, sendText and control frames never do`, () => {
      const connection = new Connection(role, new DeflateRecorder(), { perMessageDeflate: true });
      const compressed = deflatePayload('x'.repeat(500));
      assert.equal(connection.send(compressed, false, true), true);
      assert.equal(connection.send(compressed, true, true), true);
      assert.equal(connection.send(Buffer.from('plain'), true), true);
      assert.equal(connection.send(Buffer.from('plain'), false, false), true);
      assert.equal(connection.sendText('text'), true);
      connection.ping(Buffer.from('p'));
      const big = deflatePayload(new Rng(5).bytes(70_000));
      connection.send(big, true, true);
      const frames = takeFrames(connection);
      assert.deepEqual(frames.map((f) => [f.opcode, f.rsv1, f.fin, f.rsv2 || f.rsv3]), [
        [Op.text, true, true, false], [Op.binary, true, true, false], [Op.binary, false, true, false], [Op.text, false, true, false],
        [Op.text, false, true, false], [Op.ping, false, true, false], [Op.binary, true, true, false],
      ]);
      assert.deepEqual(frames[0]!.payload, compressed);
      assert.deepEqual(frames[6]!.payload, big, 'a 64-bit length frame keeps RSV1 and its payload');
      assert.equal(frames[6]!.lengthBits, 64);
      for (const frame of frames) assert.equal(frame.masked, role === 'client', 'RFC 6455 §5.3: a client masks, a server does not');
    });

    it(`${role}: a compressed send is refused after our close frame, like any data frame`, () => {
      const connection = new Connection(role, new DeflateRecorder(), { perMessageDeflate: true });
      connection.close(1000);
      assert.equal(connection.send(Buffer.from([0]), true, true), false);
      assert.deepEqual(decodeFrames(connection.takeOutgoing()).map((f) => f.opcode), [Op.close]);
    });
  }

  it('a peer connection with perMessageDeflate receives our compressed frames as compressed messages (round trip through the core)', () => {
    const client = new Connection('client', new DeflateRecorder(), { perMessageDeflate: true });
    const serverRecorder = new DeflateRecorder();
    const server = new Connection('server', serverRecorder, { perMessageDeflate: true });
    const payload = deflatePayload('round trip');
    client.send(payload, false, true);
    client.send(Buffer.from('plain'), false);
    for (const chunk of client.takeOutgoing()) server.receiveData(chunk);
    assert.deepEqual(view(serverRecorder.take()), [
      { type: 'compressed', isBinary: false, hex: hex(payload) },
      { type: 'message', isBinary: false, hex: hex('plain') },
    ]);
  });
});
