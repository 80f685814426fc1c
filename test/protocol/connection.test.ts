// Properties of the whole receive path of a Connection in both roles: every kind of failure has the same
// shape (RFC 6455 §7.1.7: one close frame with the right code, then silence), and seeded random streams —
// well-formed, mutated and pure noise — never make receiveData throw and always end in valid events or in
// exactly one close frame with a legal code, whatever the chunking.
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { describe, it } from 'node:test';
import {
  assertFailed, closeBody, closeOf, encodeFrame, feedWays, forEachWay, isLegalWireCloseCode, open, Op, peerFrame, peerStream, ROLES, Rng,
  splitAt, summarize, takeFrames, type DecodedFrame, type FrameSpec, type RecordedEvent, type TestRole,
} from '../_support/recorder.js';

/** One violation of each kind the receive path detects, with its stable code and close code. */
function violations(role: TestRole): Array<{ name: string; bytes: Buffer; code: string; closeCode: number; options?: { maxFrameBytes?: number; maxMessageBytes?: number } }> {
  const f = (spec: Omit<FrameSpec, 'mask'>): Buffer => peerFrame(role, spec);
  return [
    { name: 'RSV2 set (RFC 6455 §5.2)', bytes: f({ opcode: Op.text, payload: 'x', rsv2: true }), code: 'ERR_RESERVED_BITS', closeCode: 1002 },
    { name: 'RSV1 without extension (RFC 6455 §5.2)', bytes: f({ opcode: Op.binary, payload: 'x', rsv1: true }), code: 'ERR_RESERVED_BITS', closeCode: 1002 },
    { name: 'reserved opcode 0xB (RFC 6455 §5.2)', bytes: f({ opcode: 0xb, payload: 'x' }), code: 'ERR_RESERVED_OPCODE', closeCode: 1002 },
    { name: 'fragmented ping (RFC 6455 §5.5)', bytes: f({ opcode: Op.ping, payload: 'x', fin: false }), code: 'ERR_FRAGMENTED_CONTROL', closeCode: 1002 },
    { name: '126-byte pong (RFC 6455 §5.5)', bytes: f({ opcode: Op.pong, payload: Buffer.alloc(126) }), code: 'ERR_CONTROL_TOO_LONG', closeCode: 1002 },
    {
      name: 'wrong masking for the role (RFC 6455 §5.1)', bytes: encodeFrame({ opcode: Op.text, payload: 'x', mask: role === 'client' }),
      code: role === 'server' ? 'ERR_UNMASKED_FRAME' : 'ERR_MASKED_FRAME', closeCode: 1002,
    },
    { name: 'non-minimal length (RFC 6455 §5.2)', bytes: f({ opcode: Op.text, payload: 'x', lengthBits: 16 }), code: 'ERR_NON_MINIMAL_LENGTH', closeCode: 1002 },
    { name: '64-bit length MSB (RFC 6455 §5.2)', bytes: encodeFrame({ opcode: Op.binary, declaredLength: 2n ** 63n, mask: role === 'server' }), code: 'ERR_LENGTH_OVERFLOW', closeCode: 1002 },
    { name: 'frame over maxFrameBytes (RFC 6455 §10.4)', bytes: f({ opcode: Op.binary, payload: Buffer.alloc(11) }), code: 'ERR_FRAME_TOO_BIG', closeCode: 1009, options: { maxFrameBytes: 10 } },
    { name: 'message over maxMessageBytes (RFC 6455 §10.4)', bytes: peerStream(role, [{ opcode: Op.binary, payload: Buffer.alloc(6), fin: false }, { opcode: Op.continuation, payload: Buffer.alloc(5) }]), code: 'ERR_MESSAGE_TOO_BIG', closeCode: 1009, options: { maxMessageBytes: 10 } },
    { name: 'continuation without start (RFC 6455 §5.4)', bytes: f({ opcode: Op.continuation, payload: 'x' }), code: 'ERR_UNEXPECTED_CONTINUATION', closeCode: 1002 },
    { name: 'interleaved message (RFC 6455 §5.4)', bytes: peerStream(role, [{ opcode: Op.text, payload: 'a', fin: false }, { opcode: Op.text, payload: 'b' }]), code: 'ERR_INCOMPLETE_MESSAGE', closeCode: 1002 },
    { name: 'invalid UTF-8 (RFC 6455 §8.1)', bytes: f({ opcode: Op.text, payload: Buffer.from([0xff]) }), code: 'ERR_INVALID_UTF8', closeCode: 1007 },
    { name: '1-byte close payload (RFC 6455 §5.5.1)', bytes: f({ opcode: Op.close, payload: Buffer.from([3]) }), code: 'ERR_CLOSE_PAYLOAD_TOO_SHORT', closeCode: 1002 },
    { name: 'close code 1005 on the wire (RFC 6455 §7.4.1)', bytes: f({ opcode: Op.close, payload: closeBody(1005) }), code: 'ERR_INVALID_CLOSE_CODE', closeCode: 1002 },
    { name: 'close reason not UTF-8 (RFC 6455 §5.5.1)', bytes: f({ opcode: Op.close, payload: closeBody(1000, Buffer.from([0xc0, 0xaf])) }), code: 'ERR_INVALID_UTF8', closeCode: 1007 },
  ];
}

describe('Connection failures', () => {
  for (const role of ROLES) {
    it(`give every violation the same shape: stable code and closeCode, one close frame, then silence [${role}] (RFC 6455 §7.1.7)`, () => {
      const seenCodes = new Set<string>();
      for (const violation of violations(role)) {
        // Valid traffic first, so the failure comes mid-stream.
        const stream = Buffer.concat([peerFrame(role, { opcode: Op.text, payload: 'fine' }), violation.bytes]);
        forEachWay(role, stream, (run, label) => {
          assert.deepEqual(run.events[0], { type: 'message', data: Buffer.from('fine'), isBinary: false }, `${violation.name}, ${label}`);
          assertFailed(run, violation.code, violation.closeCode, `${violation.name}, ${label}`);
          const second = run.events[1];
          const error = second?.type === 'error' ? second.error : undefined;
          assert.equal(error?.name, 'ProtocolError');
          assert.equal(run.connection.readyState, 3);
        }, violation.options ?? {});
        seenCodes.add(violation.code);
      }
      assert.deepEqual([...seenCodes].sort(), [
        'ERR_CLOSE_PAYLOAD_TOO_SHORT', 'ERR_CONTROL_TOO_LONG', 'ERR_FRAGMENTED_CONTROL', 'ERR_FRAME_TOO_BIG', 'ERR_INCOMPLETE_MESSAGE',
        'ERR_INVALID_CLOSE_CODE', 'ERR_INVALID_UTF8', 'ERR_LENGTH_OVERFLOW', role === 'server' ? 'ERR_UNMASKED_FRAME' : 'ERR_MASKED_FRAME',
        'ERR_MESSAGE_TOO_BIG', 'ERR_NON_MINIMAL_LENGTH', 'ERR_RESERVED_BITS', 'ERR_RESERVED_OPCODE', 'ERR_UNEXPECTED_CONTINUATION',
      ].sort(), 'every error code the receive path has');
    });

    it(`send a close frame even when the violation comes while our own close is pending, without a second close [${role}]`, () => {
      const { connection, recorder } = open(role);
      connection.close(1000, 'ours');
      connection.receiveData(peerFrame(role, { opcode: 5, payload: '' }));
      const events = recorder.takeEvents();
      assert.equal(events.length, 1);
      assert.equal(events[0]!.type, 'error');
      const frames = takeFrames(connection);
      assert.deepEqual(frames.map((f) => closeOf(f).code), [1000], 'our close frame is the only one');
      assert.equal(connection.shouldCloseTransport(), true);
      assert.equal(connection.closeInfo().wasClean, false);
    });
  }
});

// ---- random streams ----

interface Outcome {
  events: unknown[];
  /** Outgoing frames without mask keys (which are random), for comparing runs. */
  frames: unknown[];
}

/** Checks the invariants of any run, valid or not; returns a comparable outcome. */
function checkRun(role: TestRole, events: RecordedEvent[], frames: DecodedFrame[], connection: { shouldCloseTransport(): boolean; closeExpected(): boolean }, label: string): Outcome {
  const terminal = events.findIndex((e) => e.type === 'error' || e.type === 'close');
  if (terminal !== -1) assert.equal(terminal, events.length - 1, `${label}: nothing after a close or an error`);
  for (const event of events) {
    if (event.type === 'message' && !event.isBinary) assert.ok(isUtf8(event.data), `${label}: text messages are UTF-8`);
    if (event.type === 'ping' || event.type === 'pong') assert.ok(event.data.length <= 125, `${label}: control payloads within 125 bytes`);
  }
  for (const frame of frames) {
    assert.ok(frame.fin && !frame.rsv1 && !frame.rsv2 && !frame.rsv3, `${label}: our frames are final with no RSV bits`);
    assert.ok(frame.opcode === Op.pong || frame.opcode === Op.close, `${label}: only pongs and a close are sent in answer`);
    assert.equal(frame.masked, role === 'client');
  }
  // Pongs answer the pings, in order, with the same payloads.
  const pings = events.filter((e) => e.type === 'ping').map((e) => (e.type === 'ping' ? e.data.toString('hex') : ''));
  const pongs = frames.filter((f) => f.opcode === Op.pong).map((f) => f.payload.toString('hex'));
  assert.deepEqual(pongs, pings, `${label}: one identical pong per ping`);
  const closes = frames.filter((f) => f.opcode === Op.close);
  const last = events[events.length - 1];
  if (last?.type === 'error') {
    assert.ok([1002, 1007, 1009].includes(last.error.closeCode), `${label}: close code ${last.error.closeCode} for ${last.error.code}`);
    assert.equal(closes.length, 1, `${label}: one close frame after an error`);
    assert.equal(frames[frames.length - 1]!.opcode, Op.close, `${label}: the close frame is last`);
    assert.equal(closeOf(closes[0]!).code, last.error.closeCode);
    assert.equal(connection.shouldCloseTransport(), true);
  } else if (last?.type === 'close') {
    assert.equal(closes.length, 1, `${label}: the peer's close is answered once`);
    assert.equal(frames[frames.length - 1]!.opcode, Op.close);
    const echoed = closeOf(closes[0]!);
    assert.equal(echoed.code, last.code, `${label}: the code is echoed`);
    assert.equal(connection.shouldCloseTransport(), role === 'server');
  } else {
    assert.equal(closes.length, 0, `${label}: no close frame without a reason`);
    assert.equal(connection.closeExpected(), false);
  }
  for (const close of closes) {
    const { code } = closeOf(close);
    assert.ok(close.payload.length === 0 || isLegalWireCloseCode(code), `${label}: legal close code ${code}`);
    assert.ok(close.payload.length <= 125 && isUtf8(close.payload.subarray(2)), `${label}: close payload well-formed`);
  }
  // A close frame is compared by its code: the reason text of a failure is for humans and may name the same
  // violation differently depending on where it was detected (e.g. "ends inside a UTF-8 sequence").
  return { events: summarize(events), frames: frames.map((f) => (f.opcode === Op.close ? [f.opcode, closeOf(f).code] : [f.opcode, f.payload.toString('hex')])) };
}

/** Feeds `bytes` in several ways; checks invariants for each and that every way gives the same outcome. */
function fuzzOne(role: TestRole, bytes: Buffer, seed: number, options: { maxFrameBytes?: number; maxMessageBytes?: number }): Outcome {
  let reference: Outcome | undefined;
  for (const way of feedWays(bytes, { seed, randomSplits: 2, byteByByte: bytes.length <= 600 })) {
    const { connection, recorder } = open(role, options);
    for (const chunk of way.chunks) assert.doesNotThrow(() => connection.receiveData(chunk), `${role}, ${way.name}, seed ${seed}`);
    const label = `${role}, ${way.name}, seed ${seed}, <${bytes.subarray(0, 64).toString('hex')}…>`;
    const outcome = checkRun(role, recorder.takeEvents(), takeFrames(connection), connection, label);
    if (reference === undefined) reference = outcome;
    else assert.deepEqual(outcome, reference, `${label}: the outcome does not depend on how input is split`);
  }
  return reference!;
}

interface Generated { bytes: Buffer; messages: Array<{ hex: string; isBinary: boolean }>; pings: string[] }

/** A well-formed stream: random messages, randomly fragmented, with pings and pongs between fragments. */
function generateValid(role: TestRole, rng: Rng): Generated {
  const parts: Buffer[] = [];
  const messages: Array<{ hex: string; isBinary: boolean }> = [];
  const pings: string[] = [];
  const control = (): void => {
    const payload = rng.bytes(rng.int(0, rng.bool(0.1) ? 125 : 10));
    const opcode = rng.bool() ? Op.ping : Op.pong;
    if (opcode === Op.ping) pings.push(payload.toString('hex'));
    parts.push(encodeFrame({ opcode, payload, mask: role === 'server' ? rng.bytes(4) : false }));
  };
  const count = rng.int(0, 6);
  for (let m = 0; m < count; m++) {
    const isBinary = rng.bool();
    const payload = isBinary
      ? rng.bytes(rng.int(0, rng.bool(0.05) ? 70000 : 200))
      : Buffer.from(Array.from({ length: rng.int(0, 30) }, () => String.fromCodePoint(rng.pick([rng.int(0x20, 0x7e), rng.int(0xa0, 0x7ff), rng.int(0x800, 0xd7ff), rng.int(0x10000, 0x10ffff)]))).join(''));
    messages.push({ hex: payload.toString('hex'), isBinary });
    const fragments = rng.int(1, 4);
    const cuts = Array.from({ length: fragments - 1 }, () => rng.int(0, payload.length)).sort((a, b) => a - b);
    let start = 0;
    for (let i = 0; i < fragments; i++) {
      const end = i === fragments - 1 ? payload.length : cuts[i]!;
      const opcode = i === 0 ? (isBinary ? Op.binary : Op.text) : Op.continuation;
      parts.push(encodeFrame({ opcode, payload: payload.subarray(start, end), fin: i === fragments - 1, mask: role === 'server' ? rng.bytes(4) : false }));
      start = end;
      if (rng.bool(0.3)) control();
    }
  }
  return { bytes: Buffer.concat(parts), messages, pings };
}

/** Flips, inserts, deletes or overwrites a few bytes. */
function mutate(bytes: Buffer, rng: Rng): Buffer {
  let out = Buffer.from(bytes);
  const edits = rng.int(1, 4);
  for (let e = 0; e < edits; e++) {
    const at = rng.int(0, Math.max(0, out.length - 1));
    switch (rng.int(0, 3)) {
      case 0: if (out.length > 0) out[at] = out[at]! ^ (1 << rng.int(0, 7)); break;
      case 1: out = Buffer.concat([out.subarray(0, at), rng.bytes(rng.int(1, 3)), out.subarray(at)]); break;
      case 2: out = Buffer.concat([out.subarray(0, at), out.subarray(at + rng.int(1, 3))]); break;
      default: if (out.length > 0) out[at] = rng.int(0, 255);
    }
  }
  return out;
}

describe('Connection property tests (fixed seeds)', () => {
  for (const role of ROLES) {
    it(`delivers exactly the messages and pongs of 400 random well-formed streams, however they are split [${role}]`, () => {
      const rng = new Rng(role === 'server' ? 0x5e4e4 : 0xc11e47);
      for (let n = 0; n < 400; n++) {
        const generated = generateValid(role, rng);
        const outcome = fuzzOne(role, generated.bytes, n, {});
        const events = outcome.events as Array<{ type: string; hex?: string; isBinary?: boolean }>;
        assert.deepEqual(events.filter((e) => e.type === 'message').map((e) => ({ hex: e.hex, isBinary: e.isBinary })), generated.messages, `stream ${n}`);
        assert.deepEqual(events.filter((e) => e.type === 'ping').map((e) => e.hex), generated.pings);
        assert.ok(events.every((e) => e.type !== 'error' && e.type !== 'close'));
      }
    });

    it(`never throws and ends in valid events or one legal close frame on 1,500 mutated streams [${role}]`, () => {
      const rng = new Rng(role === 'server' ? 0xf022 : 0xf023);
      const endings = { clean: 0, error: 0, close: 0 };
      for (let n = 0; n < 1500; n++) {
        let bytes = mutate(generateValid(role, rng).bytes, rng);
        if (rng.bool(0.2)) bytes = Buffer.concat([bytes, peerFrame(role, { opcode: Op.close, payload: rng.bool() ? closeBody(rng.pick([1000, 1001, 1005, 3000, 999]), 'r') : '' })]);
        const options = rng.bool(0.3) ? { maxFrameBytes: rng.int(0, 300), maxMessageBytes: rng.int(0, 500) } : {};
        const outcome = fuzzOne(role, bytes, n, options);
        const last = (outcome.events as Array<{ type: string }>).at(-1)?.type;
        if (last === 'error') endings.error++;
        else if (last === 'close') endings.close++;
        else endings.clean++;
      }
      // The generator must reach all three endings.
      assert.ok(endings.error > 100 && endings.clean > 50 && endings.close > 20, JSON.stringify(endings));
    });

    it(`never throws and ends in valid events or one legal close frame on 1,000 pure random byte streams [${role}]`, () => {
      const rng = new Rng(role === 'server' ? 0xabc : 0xdef);
      for (let n = 0; n < 1000; n++) {
        const bytes = rng.bytes(rng.int(0, 300));
        // Make a valid-looking first header more likely, so parsing gets past byte 0 sometimes.
        if (bytes.length > 2 && rng.bool(0.5)) {
          bytes[0] = rng.pick([0x81, 0x82, 0x01, 0x89, 0x8a, 0x88, 0x80]);
          bytes[1] = (role === 'server' ? 0x80 : 0) | rng.int(0, 127);
        }
        fuzzOne(role, bytes, n, rng.bool(0.3) ? { maxFrameBytes: 100 } : {});
      }
    });
  }

  it('gives the same outcome for a long stream split at every single offset (server, then client)', () => {
    for (const role of ROLES) {
      const stream = peerStream(role, [
        { opcode: Op.text, payload: 'h\u00e9', fin: false },
        { opcode: Op.ping, payload: 'p' },
        { opcode: Op.continuation, payload: '\u{1F600}' },
        { opcode: Op.binary, payload: Buffer.alloc(130, 9) },
        { opcode: Op.close, payload: closeBody(1000, 'end') },
      ]);
      let reference: Outcome | undefined;
      for (let cut = 0; cut <= stream.length; cut++) {
        const { connection, recorder } = open(role);
        for (const chunk of splitAt(stream, [cut])) connection.receiveData(chunk);
        const outcome = checkRun(role, recorder.takeEvents(), takeFrames(connection), connection, `${role}, cut at ${cut}`);
        reference ??= outcome;
        assert.deepEqual(outcome, reference, `${role}, cut at ${cut}`);
      }
      assert.deepEqual((reference!.events as Array<{ type: string }>).map((e) => e.type), ['ping', 'message', 'message', 'close']);
    }
  });
});

// A connection stays correct across chunks of any size over a long run of small frames (the fast path and
// the split path alternate).
describe('Connection chunk boundaries', () => {
  for (const role of ROLES) {
    it(`parses 1,000 small frames fed in chunks of every size from 1 to 40 bytes [${role}] (RFC 6455 §5.2)`, () => {
      const specs = Array.from({ length: 1000 }, (_, i) => ({ opcode: Op.binary, payload: Buffer.alloc(i % 9, i & 0xff) }));
      const stream = peerStream(role, specs);
      for (let size = 1; size <= 40; size++) {
        const { connection, recorder } = open(role);
        for (let at = 0; at < stream.length; at += size) {
          const chunk = Buffer.alloc(Math.min(size, stream.length - at));
          stream.copy(chunk, 0, at, at + chunk.length);
          connection.receiveData(chunk);
        }
        const events = recorder.takeEvents();
        assert.equal(events.length, 1000, `chunk size ${size}`);
        events.forEach((event, i) => assert.deepEqual(event, { type: 'message', data: Buffer.alloc(i % 9, i & 0xff), isBinary: true }));
      }
    });
  }
});
