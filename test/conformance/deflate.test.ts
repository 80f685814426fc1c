// Conformance: permessage-deflate (RFC 7692) in the style of Autobahn TestSuite sections 12 and 13, over raw
// sockets against `switchyard serve --echo /echo --deflate ...` with different settings. The client side is the
// oracle in test/_support/deflate-frames.ts (node:zlib, independent of src/): it compresses as agreed (keeping
// or resetting its context), inflates every echo with exactly the agreed window and context, and checks the
// answer to each offer against RFC 7692 §7.1.
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { deflateRawSync, constants } from 'node:zlib';
import { startCliServer, type RunningServer } from '../_support/cli-server.js';
import { Opcode, describeFrame, maskedFrame, patternBytes, ping } from '../_support/frames.js';
import { assertServerStillEchoes, closeAllClients, echoServerArgs } from '../_support/raw-client.js';
import {
  MessageDeflater, MessageInflater, checkDeflateAnswer, closeAllDeflateClients, compressedMessageFrames, offerHeader, openDeflateClient, sampleMessage,
  type DeflateClient, type DeflateOffer, type Split,
} from '../_support/deflate-frames.js';

/** The server settings a CLI server runs with, as the test expects them to show in the negotiation. */
interface ServerSetup {
  readonly name: string;
  readonly args: readonly string[];
  readonly thresholdBytes: number;
  readonly serverNoContextTakeover: boolean;
  readonly clientNoContextTakeover: boolean;
  readonly serverMaxWindowBits: number;
  readonly clientMaxWindowBits: number;
}

const setups: readonly ServerSetup[] = [
  {
    name: '--deflate (defaults: threshold 1024, context takeover, 15-bit windows)',
    args: ['--deflate'],
    thresholdBytes: 1024, serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15,
  },
  {
    name: '--deflate-server-no-context-takeover --deflate-client-no-context-takeover',
    args: ['--deflate', '--deflate-threshold-bytes', '0', '--deflate-server-no-context-takeover', '--deflate-client-no-context-takeover'],
    thresholdBytes: 0, serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 15, clientMaxWindowBits: 15,
  },
  {
    name: '--deflate-server-max-window-bits 10 --deflate-client-max-window-bits 9',
    args: ['--deflate', '--deflate-threshold-bytes', '0', '--deflate-server-max-window-bits', '10', '--deflate-client-max-window-bits', '9'],
    thresholdBytes: 0, serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 10, clientMaxWindowBits: 9,
  },
  {
    name: '--deflate-server-max-window-bits 9 --deflate-client-max-window-bits 9 --deflate-server-no-context-takeover --deflate-level 9',
    args: ['--deflate', '--deflate-threshold-bytes', '0', '--deflate-server-max-window-bits', '9', '--deflate-client-max-window-bits', '9',
      '--deflate-server-no-context-takeover', '--deflate-level', '9'],
    thresholdBytes: 0, serverNoContextTakeover: true, clientNoContextTakeover: false, serverMaxWindowBits: 9, clientMaxWindowBits: 9,
  },
];

const offers: ReadonlyArray<{ readonly label: string; readonly offer: DeflateOffer }> = [
  { label: 'no parameters', offer: {} },
  { label: 'client_no_context_takeover', offer: { clientNoContextTakeover: true } },
  { label: 'server_no_context_takeover', offer: { serverNoContextTakeover: true } },
  { label: 'server_max_window_bits=9', offer: { serverMaxWindowBits: 9 } },
  { label: 'server_max_window_bits=12', offer: { serverMaxWindowBits: 12 } },
  { label: 'server_max_window_bits=15', offer: { serverMaxWindowBits: 15 } },
  { label: 'client_max_window_bits (no value)', offer: { clientMaxWindowBits: true } },
  { label: 'client_max_window_bits=10', offer: { clientMaxWindowBits: 10 } },
];

const sizes = [16, 64, 256, 1024, 4096, 16_384, 65_536, 131_072] as const;
const rounds = 3;

const servers = new Map<ServerSetup, RunningServer>();
/** `--deflate`, defaults: the server most edge cases run against. */
let server!: RunningServer;
/** No --deflate at all. */
let noDeflateServer!: RunningServer;

before(async () => {
  const attempts = await Promise.allSettled([
    ...setups.map((setup) => startCliServer([...echoServerArgs, '--broadcast', '/chat', ...setup.args])),
    startCliServer(echoServerArgs),
  ]);
  const failed = attempts.find((attempt) => attempt.status === 'rejected');
  if (failed !== undefined) {
    // One server could not start: stop the ones that did, so the file ends instead of hanging on them.
    await Promise.all(attempts.map((attempt) => (attempt.status === 'fulfilled' ? attempt.value.stop() : undefined)));
    throw failed.reason;
  }
  const started = attempts.map((attempt) => (attempt as PromiseFulfilledResult<RunningServer>).value);
  setups.forEach((setup, index) => servers.set(setup, started[index]!));
  noDeflateServer = started[setups.length]!;
  server = started[0]!;
});
afterEach(() => {
  closeAllDeflateClients();
  closeAllClients();
});
after(async () => {
  closeAllDeflateClients();
  closeAllClients();
  await Promise.all([...servers.values(), noDeflateServer].map((s) => s?.stop()));
});

/** Opens a client that offers `offer` and asserts the server accepted it (101 and a valid answer). */
async function openAccepted(target: RunningServer, offer: DeflateOffer): Promise<DeflateClient> {
  const client = await openDeflateClient(target, { extensions: offerHeader(offer), offer });
  assert.equal(client.statusCode, 101, `expected 101, got:\n${client.responseHead}`);
  assert.ok(client.agreement, `server declined ${JSON.stringify(offerHeader(offer))}:\n${client.responseHead}`);
  return client;
}

/** Sends `data` compressed, reads the echo, and checks it inflates to `data` with the same type. */
async function roundTrip(client: DeflateClient, data: Buffer, isBinary: boolean, split: Split = []): Promise<{ compressed: boolean; wireBytes: number }> {
  await client.sendCompressed(data, isBinary, split);
  const echo = await client.nextMessage();
  assert.equal(echo.opcode, isBinary ? Opcode.binary : Opcode.text, `echo of a ${isBinary ? 'binary' : 'text'} message has opcode ${echo.opcode}`);
  assert.equal(echo.data.length, data.length, `echo inflates to ${echo.data.length} bytes, ${data.length} sent`);
  assert.ok(echo.data.equals(data), `echo of ${data.length} bytes differs from what was sent`);
  return { compressed: echo.compressed, wireBytes: echo.wireBytes };
}

/**
 * RFC 6455 §7.1.7 after a failure: a close frame with one of `codes`, nothing after it, TCP closed by the server;
 * then a new connection still echoes (plain and compressed).
 */
async function expectFailure(client: DeflateClient, target: RunningServer, codes: readonly number[]): Promise<void> {
  const result = await client.expectClose();
  assert.ok(result.code !== undefined && codes.includes(result.code), `expected close ${codes.join(' or ')}, got ${result.code ?? 'none'} ${JSON.stringify(result.reason)}`);
  assert.deepEqual(result.framesAfterClose.map(describeFrame), [], 'frames after the close frame');
  assert.equal(result.tcpClosed, true, `server sent close ${result.code} but did not close TCP`);
  client.destroy();
  await assertServerStillEchoes(target);
  if (target === noDeflateServer) return;
  const again = await openAccepted(target, {});
  await roundTrip(again, sampleMessage(2048, false), false);
  await again.closeCleanly();
}

describe('conformance §12/§13 permessage-deflate: echo matrix (sizes x offers x server settings)', () => {
  for (const setup of setups) {
    for (const { label, offer } of offers) {
      for (const isBinary of [false, true]) {
        const kind = isBinary ? 'binary' : 'text';
        it(`${setup.name}; offer ${label}: ${rounds} x ${sizes.length} ${kind} messages 16 B-128 KiB echo intact, RSV1 on compressed replies`, async () => {
          const target = servers.get(setup)!;
          const client = await openAccepted(target, offer);
          const agreed = client.agreement!;
          const answer = client.responseHeaders.get('sec-websocket-extensions');
          // What the server's settings promise on top of RFC validity (checked in openAccepted).
          if (setup.serverNoContextTakeover) assert.ok(agreed.serverNoContextTakeover, `server runs with server_no_context_takeover but answered ${answer}`);
          if (setup.clientNoContextTakeover) assert.ok(answer?.includes('client_no_context_takeover'), `server asks for client_no_context_takeover but answered ${answer}`);
          assert.ok(agreed.serverMaxWindowBits <= setup.serverMaxWindowBits, `server compresses with at most ${setup.serverMaxWindowBits} bits but answered ${answer}`);
          if (offer.clientMaxWindowBits !== undefined) {
            assert.ok(agreed.clientMaxWindowBits <= setup.clientMaxWindowBits, `server limits the client to ${setup.clientMaxWindowBits} bits but answered ${answer}`);
          }
          for (let round = 0; round < rounds; round++) {
            for (const size of sizes) {
              const data = sampleMessage(size, isBinary, round);
              const echo = await roundTrip(client, data, isBinary);
              // The server compresses messages from its threshold up, and no others.
              assert.equal(echo.compressed, size >= setup.thresholdBytes,
                `${size}-byte echo ${echo.compressed ? 'was' : 'was not'} compressed (RSV1) with a ${setup.thresholdBytes}-byte threshold`);
              // Compressible text really is compressed (level 1 at least halves this JSON).
              if (echo.compressed && !isBinary && size >= 1024) assert.ok(echo.wireBytes < size / 2, `${size}-byte text compressed only to ${echo.wireBytes} bytes`);
            }
          }
          await client.closeCleanly();
        });
      }
    }
  }
});

describe('conformance §12/§13 permessage-deflate: fragmented compressed messages', () => {
  it('echoes a 64 KiB compressed text sent in 7 frames (RSV1 on the first only), twice with context takeover', async () => {
    const client = await openAccepted(server, {});
    for (let round = 0; round < 2; round++) await roundTrip(client, sampleMessage(65_536, false, round), false, { pieces: 7 });
    await client.closeCleanly();
  });

  it('echoes compressed fragments in 1-byte frames and with empty continuation frames', async () => {
    const client = await openAccepted(server, { clientNoContextTakeover: true });
    const data = sampleMessage(1024, false, 1);
    const payload = deflateRawSync(data, { windowBits: 15, finishFlush: constants.Z_SYNC_FLUSH }).subarray(0, -4);
    await client.send(compressedMessageFrames(payload, Opcode.text, new Array<number>(payload.length - 1).fill(1)));
    let echo = await client.nextMessage();
    assert.ok(echo.data.equals(data), 'echo of the message sent in 1-byte frames differs');
    // An empty first frame (RSV1, no payload), empty continuations in the middle, an empty final frame.
    await client.send(compressedMessageFrames(payload, Opcode.binary, [0, 10, 0, 0, payload.length - 10]));
    echo = await client.nextMessage();
    assert.equal(echo.opcode, Opcode.binary);
    assert.ok(echo.data.equals(data), 'echo of the message with empty fragments differs');
    await client.closeCleanly();
  });

  it('answers a ping sent between the fragments of a compressed message, then echoes the message', async () => {
    const client = await openAccepted(server, {});
    const data = sampleMessage(16_384, true, 2);
    const frames = await client.compressedFrames(data, true, [100]);
    // Split the two frames' bytes: the first frame is the RSV1 one; insert a ping after it.
    const firstLength = frameByteLength(frames);
    await client.send(Buffer.concat([frames.subarray(0, firstLength), ping('between'), frames.subarray(firstLength)]));
    const pong = await client.nextFrame();
    assert.equal(pong.opcode, Opcode.pong, `expected the pong first, got ${describeFrame(pong)}`);
    assert.equal(pong.rsv, 0, 'pong with RSV bits');
    assert.equal(pong.payload.toString(), 'between');
    const echo = await client.nextMessage();
    assert.ok(echo.data.equals(data), 'echo differs');
    await client.closeCleanly();
  });

  it('keeps order when compressed and uncompressed messages arrive in one write (RFC 7692 §6: per-message choice)', async () => {
    const client = await openAccepted(server, {});
    const messages = [
      { data: sampleMessage(65_536, false, 1), isBinary: false, compress: true },
      { data: Buffer.from('plain one'), isBinary: false, compress: false },
      { data: sampleMessage(4096, true, 2), isBinary: true, compress: true },
      { data: patternBytes(300), isBinary: true, compress: false },
      { data: sampleMessage(100, false, 3), isBinary: false, compress: true },
      { data: sampleMessage(2000, false, 4), isBinary: false, compress: false },
    ];
    const bytes: Buffer[] = [];
    for (const message of messages) {
      bytes.push(message.compress
        ? await client.compressedFrames(message.data, message.isBinary)
        : maskedFrame({ opcode: message.isBinary ? Opcode.binary : Opcode.text, payload: message.data }));
    }
    await client.send(Buffer.concat(bytes));
    for (const [index, message] of messages.entries()) {
      const echo = await client.nextMessage();
      assert.equal(echo.opcode, message.isBinary ? Opcode.binary : Opcode.text, `message ${index}: wrong type`);
      assert.ok(echo.data.equals(message.data), `message ${index} (${message.data.length} bytes): echo differs or arrived out of order`);
    }
    await client.closeCleanly();
  });

  it('echoes each of 20 compressed messages of one connection in order when all are written at once', async () => {
    const client = await openAccepted(server, {});
    const data = Array.from({ length: 20 }, (_, i) => sampleMessage(1000 + i * 997, i % 2 === 1, i));
    const frames: Buffer[] = [];
    for (const [i, message] of data.entries()) frames.push(await client.compressedFrames(message, i % 2 === 1));
    await client.send(Buffer.concat(frames));
    for (const [i, message] of data.entries()) {
      const echo = await client.nextMessage();
      assert.ok(echo.data.equals(message), `message ${i}: echo differs or out of order`);
    }
    await client.closeCleanly();
  });
});

/** Byte length of the first frame in `bytes` (a masked client frame). */
function frameByteLength(bytes: Buffer): number {
  return headerLength(bytes) + payloadLength(bytes);
}

function headerLength(bytes: Buffer): number {
  const len7 = bytes[1]! & 0x7f;
  return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + ((bytes[1]! & 0x80) !== 0 ? 4 : 0);
}

function payloadLength(bytes: Buffer): number {
  const len7 = bytes[1]! & 0x7f;
  return len7 === 126 ? bytes.readUInt16BE(2) : len7 === 127 ? Number(bytes.readBigUInt64BE(2)) : len7;
}

describe('conformance permessage-deflate: RFC 7692 §7.2.3 example payloads', () => {
  const hello = (bytes: number[]): Buffer => Buffer.from(bytes);
  const helloSync = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];

  async function expectText(client: DeflateClient, expected: string): Promise<void> {
    const echo = await client.nextMessage();
    assert.equal(echo.opcode, Opcode.text);
    assert.equal(echo.data.toString('utf8'), expected, `echo is ${JSON.stringify(echo.data.toString('utf8'))}`);
  }

  it('§7.2.3.1: "Hello" in one compressed frame, and the same split over two frames', async () => {
    const client = await openAccepted(server, { clientNoContextTakeover: true });
    await client.send(compressedMessageFrames(hello(helloSync), Opcode.text));
    await expectText(client, 'Hello');
    // The RFC's fragmented form: 0x41 0x03 f2 48 cd, then 0x80 0x04 c9 c9 07 00.
    await client.send(compressedMessageFrames(hello(helloSync), Opcode.text, [3]));
    await expectText(client, 'Hello');
    await client.closeCleanly();
  });

  it('§7.2.3.2: a second "Hello" that refers back into the first message (shared LZ77 window)', async () => {
    const client = await openAccepted(server, {});
    assert.equal(client.agreement!.clientNoContextTakeover, false);
    await client.send(compressedMessageFrames(hello(helloSync), Opcode.text));
    await expectText(client, 'Hello');
    await client.send(compressedMessageFrames(hello([0xf2, 0x00, 0x11, 0x00, 0x00]), Opcode.text));
    await expectText(client, 'Hello');
    await client.closeCleanly();
  });

  it('§7.2.3.3: a DEFLATE block with no compression', async () => {
    const client = await openAccepted(server, {});
    await client.send(compressedMessageFrames(hello([0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00]), Opcode.text));
    await expectText(client, 'Hello');
    await client.closeCleanly();
  });

  // Known server bug (reported, src/codec/permessage-deflate.ts): once a message ends in a BFINAL block the zlib
  // stream has ended; with context takeover every later message on the connection is delivered EMPTY, and with
  // client_no_context_takeover the next one fails 1007. Drop the todo once fixed.

  it('§7.2.3.4: a DEFLATE block with BFINAL set, then further messages on the same connection', async () => {
    // RFC 7692 §7.2.3.4 lets a sender flush with a final block instead of an empty stored one. The receiver still
    // appends 00 00 ff ff and must go on decoding the messages that follow (here encoded without back-references).
    const client = await openAccepted(server, {});
    await client.send(compressedMessageFrames(hello([0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00]), Opcode.text));
    await expectText(client, 'Hello');
    await client.send(compressedMessageFrames(hello(helloSync), Opcode.text));
    await expectText(client, 'Hello');
    const data = sampleMessage(3000, false, 7);
    await client.send(compressedMessageFrames(deflateRawSync(data, { finishFlush: constants.Z_SYNC_FLUSH }).subarray(0, -4), Opcode.text));
    const echo = await client.nextMessage();
    assert.ok(echo.data.equals(data), `third message echoed as ${echo.data.length} bytes instead of ${data.length}`);
    await client.closeCleanly();
  });

  it('§7.2.3.4: a BFINAL block with client_no_context_takeover agreed, then further messages', async () => {
    const client = await openAccepted(server, { clientNoContextTakeover: true });
    await client.send(compressedMessageFrames(hello([0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00]), Opcode.text));
    await expectText(client, 'Hello');
    await client.send(compressedMessageFrames(hello(helloSync), Opcode.text));
    await expectText(client, 'Hello');
    await client.closeCleanly();
  });

  it('§7.2.3.5: two DEFLATE blocks in one message', async () => {
    const client = await openAccepted(server, {});
    await client.send(compressedMessageFrames(hello([0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00]), Opcode.text));
    await expectText(client, 'Hello');
    await client.closeCleanly();
  });

  it('§7.2.3.6: an empty message compressed to 0x00, then a message that refers back across it', async () => {
    const client = await openAccepted(servers.get(setups[1]!)!, {});
    await client.send(compressedMessageFrames(hello([0x00]), Opcode.text));
    const echo = await client.nextMessage();
    assert.equal(echo.data.length, 0, 'the empty message echoed with content');
    // With a 0-byte threshold the server compresses the empty echo too; our inflater already checked it.
    assert.equal(echo.compressed, true);
    await roundTrip(client, sampleMessage(3000, true), true);
    await client.closeCleanly();
    // With context takeover: "Hello", the empty message, then §7.2.3.2's "Hello" that refers back past it.
    const keeping = await openAccepted(server, {});
    await keeping.send(Buffer.concat([
      compressedMessageFrames(hello(helloSync), Opcode.text),
      compressedMessageFrames(hello([0x00]), Opcode.text),
      compressedMessageFrames(hello([0xf2, 0x00, 0x11, 0x00, 0x00]), Opcode.text),
    ]));
    await expectText(keeping, 'Hello');
    await expectText(keeping, '');
    await expectText(keeping, 'Hello');
    await keeping.closeCleanly();
  });

  it('a zero-length compressed payload is an empty message or a failure, never a broken inflater for the next message', async () => {
    // Not DEFLATE output (00 00 ff ff alone is a stored-block header announcing 65280 bytes; an empty message
    // compresses to 0x00, §7.2.3.6), but some peers send it. Either answer is defensible; corrupting or losing
    // the messages after it is not.
    const client = await openAccepted(server, {});
    const data = sampleMessage(5000, false, 3);
    await client.send(Buffer.concat([compressedMessageFrames(Buffer.alloc(0), Opcode.binary), await client.compressedFrames(data, false)]));
    const first = await client.nextFrame();
    if (first.opcode === Opcode.close) {
      const code = first.payload.length >= 2 ? first.payload.readUInt16BE(0) : undefined;
      assert.ok(code === 1007 || code === 1002, `closed with ${code ?? 'no code'} on a zero-length compressed payload`);
      return;
    }
    assert.equal(first.opcode, Opcode.binary, `expected the empty binary echo, got ${describeFrame(first)}`);
    assert.ok(first.fin);
    assert.equal(first.payload.length, 0, 'the zero-length compressed payload echoed with content');
    const echo = await client.nextMessage();
    assert.ok(echo.data.equals(data), `the message after the zero-length payload echoed as ${echo.data.length} bytes instead of ${data.length}`);
    await client.closeCleanly();
  });
});

describe('conformance permessage-deflate: protocol violations', () => {
  it('RFC 7692 §6.1: fails with 1002 on RSV1 on a continuation frame of a compressed message', async () => {
    const client = await openAccepted(server, {});
    const payload = deflateRawSync(sampleMessage(2000, false), { finishFlush: constants.Z_SYNC_FLUSH }).subarray(0, -4);
    await client.send(Buffer.concat([
      maskedFrame({ opcode: Opcode.text, rsv1: true, fin: false, payload: payload.subarray(0, 100) }),
      maskedFrame({ opcode: Opcode.continuation, rsv1: true, fin: true, payload: payload.subarray(100) }),
    ]));
    await expectFailure(client, server, [1002]);
  });

  it('RFC 7692 §6.1: fails with 1002 on RSV1 on a continuation frame of an uncompressed message', async () => {
    const client = await openAccepted(server, {});
    await client.send(Buffer.concat([
      maskedFrame({ opcode: Opcode.text, fin: false, payload: 'plain ' }),
      maskedFrame({ opcode: Opcode.continuation, rsv1: true, fin: true, payload: deflateRawSync(Buffer.from('x'), { finishFlush: constants.Z_SYNC_FLUSH }).subarray(0, -4) }),
    ]));
    await expectFailure(client, server, [1002]);
  });

  for (const [name, opcode, payload] of [
    ['ping', Opcode.ping, Buffer.from('p')],
    ['pong', Opcode.pong, Buffer.from('p')],
    ['close', Opcode.close, Buffer.from([0x03, 0xe8])],
  ] as const) {
    it(`RFC 7692 §6.1: fails with 1002 on RSV1 on a ${name} frame`, async () => {
      const client = await openAccepted(server, {});
      await client.send(maskedFrame({ opcode, rsv1: true, payload }));
      await expectFailure(client, server, [1002]);
    });
  }

  it('RFC 6455 §5.2: fails with 1002 on RSV2 on a compressed message (permessage-deflate defines only RSV1)', async () => {
    const client = await openAccepted(server, {});
    await client.send(maskedFrame({ opcode: Opcode.text, rsv1: true, rsv2: true, payload: Buffer.from([0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]) }));
    await expectFailure(client, server, [1002]);
  });

  it('RFC 6455 §5.2: fails with 1002 on RSV1 when the client offered nothing (server has --deflate)', async () => {
    const client = await openDeflateClient(server, {});
    assert.equal(client.statusCode, 101);
    assert.equal(client.responseHeaders.get('sec-websocket-extensions'), undefined, 'extension answered without an offer');
    await client.send(maskedFrame({ opcode: Opcode.text, rsv1: true, payload: Buffer.from([0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]) }));
    await expectFailure(client, server, [1002]);
  });

  it('fails with 1007 (or 1002) on compressed data that does not inflate (invalid block type)', async () => {
    const client = await openAccepted(server, {});
    await client.send(maskedFrame({ opcode: Opcode.binary, rsv1: true, payload: Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]) }));
    await expectFailure(client, server, [1007, 1002]);
  });

  it('fails with 1007 (or 1002) on a back-reference before the start of the stream', async () => {
    const client = await openAccepted(server, {});
    // §7.2.3.2's second message, sent first: its distance points before any history.
    await client.send(maskedFrame({ opcode: Opcode.text, rsv1: true, payload: Buffer.from([0xf2, 0x00, 0x11, 0x00, 0x00]) }));
    await expectFailure(client, server, [1007, 1002]);
  });

  it('fails with 1007 (or 1002) on garbage after a valid message inflated fine', async () => {
    const client = await openAccepted(server, {});
    await roundTrip(client, sampleMessage(5000, false), false);
    await client.send(maskedFrame({ opcode: Opcode.text, rsv1: true, payload: patternBytes(500, 9) }));
    // patternBytes may happen to start a valid stored/huffman block; it cannot inflate to valid UTF-8 JSON by luck,
    // but it may inflate to bytes: 1007 either way (not UTF-8) or 1002.
    await expectFailure(client, server, [1007, 1002]);
  });

  it('RFC 6455 §8.1: fails with 1007 on a compressed text message that inflates to invalid UTF-8', async () => {
    const client = await openAccepted(server, {});
    // Autobahn 6.x: "κόσμε" followed by an encoded surrogate (ED A0 80) and "edited".
    const invalid = Buffer.from('cebae1bdb9cf83cebcceb5eda080656469746564', 'hex');
    await client.sendCompressed(invalid, false);
    await expectFailure(client, server, [1007]);
  });

  it('RFC 6455 §8.1: fails with 1007 on a fragmented compressed text message that inflates to a truncated UTF-8 sequence', async () => {
    const client = await openAccepted(server, {});
    const invalid = Buffer.concat([Buffer.from('valid text then half an emoji '), Buffer.from([0xf0, 0x9f, 0x98])]);
    await client.sendCompressed(invalid, false, [5, 5]);
    await expectFailure(client, server, [1007]);
  });

  it('echoes a compressed binary message carrying invalid UTF-8 (binary is not checked)', async () => {
    const client = await openAccepted(server, {});
    await roundTrip(client, Buffer.from('cebae1bdb9cf83cebcceb5eda080656469746564', 'hex'), true);
    await client.closeCleanly();
  });

  it('echoes compressed text whose multi-byte characters straddle frame boundaries (UTF-8 is checked after inflation)', async () => {
    const client = await openAccepted(server, {});
    const data = Buffer.from('\u{1F600}\u00e9\u20ac'.repeat(2000));
    await roundTrip(client, data, false, { pieces: 13 });
    await client.closeCleanly();
  });
});

describe('permessage-deflate on a broadcast route: one message, every subscriber\'s own agreement', () => {
  // The server compresses a published message once per compressor setting and shares it between subscribers
  // whose compressors are stateless (server_no_context_takeover) and equal: each subscriber must still get a
  // payload that inflates with ITS agreed window and context.
  const subscribers: ReadonlyArray<{ label: string; offer: DeflateOffer | undefined }> = [
    { label: 'no parameters', offer: {} },
    { label: 'server_max_window_bits=9', offer: { serverMaxWindowBits: 9 } },
    { label: 'server_no_context_takeover', offer: { serverNoContextTakeover: true } },
    { label: 'server_no_context_takeover; server_max_window_bits=9', offer: { serverNoContextTakeover: true, serverMaxWindowBits: 9 } },
    { label: 'server_max_window_bits=12; client_no_context_takeover', offer: { serverMaxWindowBits: 12, clientNoContextTakeover: true } },
    { label: 'no offer (plain)', offer: undefined },
  ];
  for (const setup of [setups[0]!, setups[1]!]) {
    it(`${setup.name}: 6 subscribers with different agreements each get every message intact`, async () => {
      const target = servers.get(setup)!;
      const clients: DeflateClient[] = [];
      for (const subscriber of subscribers) {
        clients.push(subscriber.offer === undefined
          ? await openDeflateClient(target, { path: '/chat' })
          : await openDeflateClient(target, { path: '/chat', extensions: offerHeader(subscriber.offer), offer: subscriber.offer }));
        assert.equal(clients.at(-1)!.statusCode, 101);
      }
      const sender = clients[0]!;
      const sent = [sampleMessage(20_000, false, 1), sampleMessage(20_000, false, 2), sampleMessage(6000, true, 3), sampleMessage(500, false, 4)];
      for (const [index, data] of sent.entries()) await sender.sendCompressed(data, index === 2);
      for (const [which, client] of clients.entries()) {
        for (const [index, data] of sent.entries()) {
          const message = await client.nextMessage();
          assert.ok(message.data.equals(data), `subscriber "${subscribers[which]!.label}", message ${index}: differs (${message.data.length} bytes)`);
          assert.equal(message.compressed, client.agreement !== undefined && data.length >= setup.thresholdBytes,
            `subscriber "${subscribers[which]!.label}", message ${index}: RSV1 ${message.compressed}`);
        }
      }
      for (const client of clients) await client.closeCleanly();
    });
  }
});

describe('conformance permessage-deflate: negotiation', () => {
  it('answers no extension to server_max_window_bits=8 (zlib cannot compress with it); plain echo works, RSV1 then fails 1002', async () => {
    const offer: DeflateOffer = { serverMaxWindowBits: 8 };
    const client = await openDeflateClient(server, { extensions: offerHeader(offer), offer });
    assert.equal(client.statusCode, 101);
    assert.equal(client.responseHeaders.get('sec-websocket-extensions'), undefined, `server accepted an offer it cannot honour:\n${client.responseHead}`);
    assert.equal(client.agreement, undefined);
    await client.send(maskedFrame({ opcode: Opcode.text, payload: 'plain after a declined offer' }));
    const echo = await client.nextMessage();
    assert.equal(echo.compressed, false);
    assert.equal(echo.data.toString(), 'plain after a declined offer');
    const big = sampleMessage(8192, false);
    await client.send(maskedFrame({ opcode: Opcode.text, payload: big }));
    const bigEcho = await client.nextMessage();
    assert.equal(bigEcho.compressed, false, 'server compressed without an agreement');
    assert.ok(bigEcho.data.equals(big));
    await client.send(maskedFrame({ opcode: Opcode.text, rsv1: true, payload: Buffer.from([0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]) }));
    await expectFailure(client, server, [1002]);
  });

  it('answers the first acceptable of several offers (RFC 7692 §5)', async () => {
    const answered: DeflateOffer = { serverMaxWindowBits: 11, clientNoContextTakeover: true };
    const header = `${offerHeader({ serverMaxWindowBits: 8 })}, ${offerHeader(answered)}, ${offerHeader({})}`;
    const client = await openDeflateClient(server, { extensions: header, offer: answered });
    assert.ok(client.agreement, `declined all of ${header}:\n${client.responseHead}`);
    assert.ok(client.agreement.serverMaxWindowBits <= 11);
    for (let round = 0; round < 3; round++) await roundTrip(client, sampleMessage(20_000, false, round), false);
    await client.closeCleanly();
  });

  it('skips an unknown extension and invalid permessage-deflate offers, and answers the first valid one', async () => {
    const answered: DeflateOffer = { serverMaxWindowBits: 12 };
    const header = [
      'x-webkit-deflate-frame',
      'permessage-deflate; server_max_window_bits=16',
      'permessage-deflate; client_max_window_bits=7',
      'permessage-deflate; server_max_window_bits',
      'permessage-deflate; server_max_window_bits=010',
      'permessage-deflate; server_no_context_takeover; server_no_context_takeover',
      'permessage-deflate; server_no_context_takeover=1',
      'permessage-deflate; unknown_parameter',
      offerHeader(answered),
      'permessage-deflate',
    ].join(', ');
    const client = await openDeflateClient(server, { extensions: header, offer: answered });
    assert.ok(client.agreement, `declined all of ${header}:\n${client.responseHead}`);
    await roundTrip(client, sampleMessage(30_000, true), true);
    await client.closeCleanly();
  });

  const invalidOffers = [
    'permessage-deflate; server_max_window_bits=16',
    'permessage-deflate; server_max_window_bits=7',
    'permessage-deflate; client_max_window_bits=16',
    'permessage-deflate; client_max_window_bits=0',
    'permessage-deflate; server_max_window_bits',
    'permessage-deflate; server_max_window_bits=1e1',
    'permessage-deflate; client_no_context_takeover; client_no_context_takeover',
    'permessage-deflate; client_no_context_takeover=true',
    'permessage-deflate; mystery',
    'permessage-deflate;',
    'x-webkit-deflate-frame',
  ];
  for (const header of invalidOffers) {
    it(`RFC 7692 §7.1: declines ${JSON.stringify(header)} (no extension in the 101) and echoes uncompressed`, async () => {
      const client = await openDeflateClient(server, { extensions: header });
      assert.equal(client.statusCode, 101, `expected the upgrade to go on without the extension:\n${client.responseHead}`);
      assert.equal(client.responseHeaders.get('sec-websocket-extensions'), undefined, `server accepted ${header}:\n${client.responseHead}`);
      const data = sampleMessage(4096, false);
      await client.send(maskedFrame({ opcode: Opcode.text, payload: data }));
      const echo = await client.nextMessage();
      assert.equal(echo.compressed, false);
      assert.ok(echo.data.equals(data));
      await client.closeCleanly();
    });
  }

  it('accepts a quoted parameter value (RFC 6455 §9.1: server_max_window_bits="10")', async () => {
    const client = await openDeflateClient(server, { extensions: 'permessage-deflate; server_max_window_bits="10"', offer: { serverMaxWindowBits: 10 } });
    assert.ok(client.agreement, `declined the quoted offer:\n${client.responseHead}`);
    await roundTrip(client, sampleMessage(40_000, false), false);
    await client.closeCleanly();
  });

  it('answers no extension when started without --deflate, and a compressed frame then fails with 1002', async () => {
    const client = await openDeflateClient(noDeflateServer, { extensions: offerHeader({ clientMaxWindowBits: true }) });
    assert.equal(client.statusCode, 101);
    assert.equal(client.responseHeaders.get('sec-websocket-extensions'), undefined, `server without --deflate accepted:\n${client.responseHead}`);
    await client.send(maskedFrame({ opcode: Opcode.text, rsv1: true, payload: Buffer.from([0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]) }));
    await expectFailure(client, noDeflateServer, [1002]);
  });

  it('the oracle rejects what it must: bad answers, a larger window than agreed, a context that should have been reset', async () => {
    // Pure checks of test/_support/deflate-frames.ts, so a lenient oracle cannot make the matrix above pass.
    const offer: DeflateOffer = { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 12 };
    assert.deepEqual(checkDeflateAnswer(offer, 'permessage-deflate; server_no_context_takeover; server_max_window_bits=9; client_max_window_bits=11'),
      { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 9, clientMaxWindowBits: 11 });
    assert.throws(() => checkDeflateAnswer(offer, 'permessage-deflate; server_max_window_bits=9'), /server_no_context_takeover/);
    assert.throws(() => checkDeflateAnswer(offer, 'permessage-deflate; server_no_context_takeover; server_max_window_bits=11'), /above the offered/);
    assert.throws(() => checkDeflateAnswer({}, 'permessage-deflate; client_max_window_bits=10'), /offer did not/);
    assert.throws(() => checkDeflateAnswer({}, 'permessage-deflate; client_max_window_bits'), /must have a value/);
    assert.throws(() => checkDeflateAnswer({}, 'permessage-deflate, permessage-deflate'), /2 times/);
    assert.equal(checkDeflateAnswer({}, undefined), undefined);
    // Every sample size the matrix uses from 4 KiB up refers back further than 2^9 bytes with a 15-bit window.
    for (const size of sizes.filter((n) => n >= 4096)) {
      for (const isBinary of size > 5003 ? [false, true] : [false]) {
        const data = sampleMessage(size, isBinary);
        const wide = await new MessageDeflater({ windowBits: 15, noContextTakeover: true }).compress(data);
        await assert.rejects(new MessageInflater({ windowBits: 9, noContextTakeover: true }).decompress(wide), /distance too far back/,
          `a ${size}-byte ${isBinary ? 'binary' : 'text'} sample compressed with 15 bits inflated with 9`);
        assert.ok((await new MessageInflater({ windowBits: 15, noContextTakeover: true }).decompress(wide)).equals(data));
      }
    }
    // A second message that relies on the first fails in an inflater that resets between messages.
    const deflater = new MessageDeflater({ windowBits: 15, noContextTakeover: false });
    const first = await deflater.compress(sampleMessage(4096, false, 0));
    const second = await deflater.compress(sampleMessage(4096, false, 1));
    deflater.close();
    const resetting = new MessageInflater({ windowBits: 15, noContextTakeover: true });
    await resetting.decompress(first);
    await assert.rejects(resetting.decompress(second), /distance too far back/);
    const keeping = new MessageInflater({ windowBits: 15, noContextTakeover: false });
    await keeping.decompress(first);
    assert.ok((await keeping.decompress(second)).equals(sampleMessage(4096, false, 1)));
    keeping.close();
  });
});
