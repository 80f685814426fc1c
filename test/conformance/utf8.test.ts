// Conformance: UTF-8 handling of text messages (Autobahn TestSuite section 6), RFC 6455 §5.6 and §8.1, including
// fail-fast detection while a message is still arriving. Through the CLI echo route.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { RunningServer } from '../_support/cli-server.js';
import { useEchoServer } from './_echo-server.js';
import { Opcode, binary, continuation, text } from '../_support/frames.js';
import { connectWebSocket, expectFailure, type RawClient } from '../_support/raw-client.js';

let server!: RunningServer;

useEchoServer((started) => { server = started; });

const hex = (value: string): Buffer => Buffer.from(value.replace(/\s+/g, ''), 'hex');
/** "κόσμε" — the Autobahn 6.x base string. */
const kosme = hex('ce ba e1 bd b9 cf 83 ce bc ce b5');

async function expectTextEcho(client: RawClient, payload: Buffer): Promise<void> {
  const message = await client.nextMessage();
  assert.equal(message.opcode, Opcode.text);
  assert.ok(message.payload.equals(payload), `echo <${message.payload.toString('hex')}> differs from <${payload.toString('hex')}>`);
}

const validCases: ReadonlyArray<readonly [string, Buffer]> = [
  ['ASCII with Latin-1 letters (2-byte)', Buffer.from('Hello-µ@ßöäüàá-UTF-8!!')],
  ['"κόσμε" (2- and 3-byte)', kosme],
  ['U+0080, the first 2-byte code point', hex('c2 80')],
  ['U+07FF, the last 2-byte code point', hex('df bf')],
  ['U+0800, the first 3-byte code point', hex('e0 a0 80')],
  ['U+D7FF, just below the surrogates', hex('ed 9f bf')],
  ['U+E000, just above the surrogates', hex('ee 80 80')],
  ['U+FFFD, the replacement character', hex('ef bf bd')],
  ['U+FFFE and U+FFFF (noncharacters are valid UTF-8)', hex('ef bf be ef bf bf')],
  ['U+10000, the first 4-byte code point', hex('f0 90 80 80')],
  ['U+1F600 (emoji, 4-byte)', Buffer.from('😀')],
  ['U+10FFFF, the largest code point', hex('f4 8f bf bf')],
  ['U+0000 (NUL is valid UTF-8)', hex('00 41 00')],
];

describe('conformance §6 UTF-8: valid text is echoed', () => {
  for (const [name, payload] of validCases) {
    it(`§8.1: echoes valid text: ${name}`, async () => {
      const client = await connectWebSocket(server);
      await client.send(text(payload));
      await expectTextEcho(client, payload);
    });
  }

  it('§8.1: echoes every valid case in one message that arrives one byte per read', async () => {
    const client = await connectWebSocket(server);
    const payload = Buffer.concat(validCases.map(([, bytes]) => bytes));
    await client.sendInPieces(text(payload), 1, 1);
    await expectTextEcho(client, payload);
  });

  it('§5.6: echoes valid text fragmented one byte per fragment (code points split across fragments)', async () => {
    const client = await connectWebSocket(server);
    const payload = Buffer.concat([kosme, hex('f4 8f bf bf'), Buffer.from('😀')]);
    const frames = [...payload].map((byte, index) => (index === 0 ? text(Uint8Array.of(byte), false) : continuation(Uint8Array.of(byte), index === payload.length - 1)));
    await client.send(Buffer.concat(frames));
    await expectTextEcho(client, payload);
  });

  it('§5.6: echoes a 3-byte code point split 1+2 across two fragments sent apart', async () => {
    const client = await connectWebSocket(server);
    await client.send(text(hex('41 e2'), false));
    await new Promise((resolve) => setTimeout(resolve, 10));
    await client.send(continuation(hex('82 ac 42')));
    await expectTextEcho(client, hex('41 e2 82 ac 42'));
  });

  it('§5.6: binary messages are not checked for UTF-8', async () => {
    const client = await connectWebSocket(server);
    const payload = hex('ff fe ed a0 80 c0 80');
    await client.send(binary(payload));
    const message = await client.nextMessage();
    assert.equal(message.opcode, Opcode.binary);
    assert.ok(message.payload.equals(payload));
  });
});

const invalidCases: ReadonlyArray<readonly [string, Buffer]> = [
  ['"κόσμε" + U+D800 surrogate (ED A0 80) + "edited" (Autobahn 6.3.1)', Buffer.concat([kosme, hex('ed a0 80'), Buffer.from('edited')])],
  ['an overlong 2-byte NUL (C0 80)', hex('c0 80')],
  ['an overlong 2-byte "/" (C1 BF)', hex('c1 bf')],
  ['an overlong 3-byte NUL (E0 80 80)', hex('e0 80 80')],
  ['an overlong 3-byte U+07FF (E0 9F BF)', hex('e0 9f bf')],
  ['an overlong 4-byte U+FFFF (F0 8F BF BF)', hex('f0 8f bf bf')],
  ['a 5-byte sequence (F8 88 80 80 80)', hex('f8 88 80 80 80')],
  ['a 6-byte sequence (FC 84 80 80 80 80)', hex('fc 84 80 80 80 80')],
  ['the surrogate U+D800 (ED A0 80)', hex('ed a0 80')],
  ['the surrogate U+DFFF (ED BF BF)', hex('ed bf bf')],
  ['a surrogate pair encoded as two 3-byte sequences (ED A0 80 ED B0 80)', hex('ed a0 80 ed b0 80')],
  ['U+110000, above U+10FFFF (F4 90 80 80)', hex('f4 90 80 80')],
  ['the lead byte F5', hex('f5 80 80 80')],
  ['the byte FE', hex('41 fe 42')],
  ['the byte FF', hex('ff')],
  ['a stray continuation byte 80', hex('80')],
  ['a stray continuation byte BF between ASCII', hex('61 bf 62')],
  ['a 2-byte lead followed by ASCII (C2 41)', hex('c2 41')],
  ['a 3-byte lead with one continuation then ASCII (E2 82 41)', hex('e2 82 41')],
  ['a truncated 2-byte sequence at the end (C2)', Buffer.concat([Buffer.from('Hello'), hex('c2')])],
  ['a truncated 3-byte sequence at the end (E2 82)', Buffer.concat([Buffer.from('Hello'), hex('e2 82')])],
  ['a truncated 4-byte sequence at the end (F0 9F 98)', Buffer.concat([Buffer.from('Hello'), hex('f0 9f 98')])],
];

describe('conformance §6 UTF-8: invalid text fails with 1007', () => {
  for (const [name, payload] of invalidCases) {
    it(`§8.1: fails with 1007 on a text message containing ${name}`, async () => {
      const client = await connectWebSocket(server);
      // RFC 6455 §8.1: "When an endpoint is to interpret a byte stream as UTF-8 but finds that the byte stream is
      // not, in fact, a valid UTF-8 stream, that endpoint MUST _Fail the WebSocket Connection_." Code 1007 (§7.4.1).
      await client.send(text(payload));
      await expectFailure(client, server, 1007);
    });
  }

  it('§5.6: fails with 1007 when an invalid sequence is split across two fragments (F4 | 90 80 80)', async () => {
    const client = await connectWebSocket(server);
    await client.send(Buffer.concat([text(hex('61 f4'), false), continuation(hex('90 80 80 62'))]));
    await expectFailure(client, server, 1007);
  });

  it('§5.6: fails with 1007 when a fragmented message ends inside a code point (E2 82 | final)', async () => {
    const client = await connectWebSocket(server);
    await client.send(Buffer.concat([text(hex('61 e2'), false), continuation(hex('82'))]));
    await expectFailure(client, server, 1007);
  });

  it('§5.6: fails with 1007 when a truncated sequence is followed by a new code point in the next fragment', async () => {
    const client = await connectWebSocket(server);
    await client.send(Buffer.concat([text(hex('61 e2 82'), false), continuation(hex('c2 a9'))]));
    await expectFailure(client, server, 1007);
  });
});

describe('conformance §6 UTF-8: fail fast, before the rest of the message is sent', () => {
  // Autobahn 6.4.x: a strict server fails as soon as the bytes received cannot start valid UTF-8; the rest of the
  // message is never sent here, so a server that validates only complete messages times out.
  it('§8.1: fails with 1007 on a first fragment that is already invalid, before the later fragments are sent', async () => {
    const client = await connectWebSocket(server);
    await client.send(text(Buffer.concat([kosme, hex('f4 90 80 80'), Buffer.from('edited')]), false));
    await expectFailure(client, server, 1007);
  });

  it('§8.1: fails with 1007 on an invalid second fragment, before the third is sent (Autobahn 6.4.1)', async () => {
    const client = await connectWebSocket(server);
    await client.send(text(kosme, false));
    await new Promise((resolve) => setTimeout(resolve, 5));
    await client.send(continuation(hex('f4 90 80 80'), false));
    await expectFailure(client, server, 1007);
  });

  it('§8.1: fails with 1007 once F4 90 has arrived even though the sequence is unfinished (Autobahn 6.4.2)', async () => {
    const client = await connectWebSocket(server);
    await client.send(text(Buffer.concat([kosme, hex('f4')]), false));
    await new Promise((resolve) => setTimeout(resolve, 5));
    await client.send(continuation(hex('90'), false));
    await expectFailure(client, server, 1007);
  });

  it('§8.1: fails with 1007 on a single text frame after its invalid piece arrives, without the rest being sent (Autobahn 6.4.3)', async () => {
    const client = await connectWebSocket(server);
    const frame = text(Buffer.concat([kosme, hex('f4 90 80 80'), Buffer.from('edited')]));
    const headerLength = 6; // 2 + masking key; payload is under 126 bytes
    await client.send(frame.subarray(0, headerLength + kosme.length));
    await new Promise((resolve) => setTimeout(resolve, 5));
    await client.send(frame.subarray(headerLength + kosme.length, headerLength + kosme.length + 4)); // F4 90 80 80
    await expectFailure(client, server, 1007);
  });

  it('§8.1: fails with 1007 on a single text frame once F4 90 has arrived, without the rest being sent (Autobahn 6.4.4)', async () => {
    const client = await connectWebSocket(server);
    const frame = text(Buffer.concat([kosme, hex('f4 90 80 80'), Buffer.from('edited')]));
    const invalidAt = 6 + kosme.length;
    await client.send(frame.subarray(0, invalidAt + 1)); // ... F4
    await new Promise((resolve) => setTimeout(resolve, 5));
    await client.send(frame.subarray(invalidAt + 1, invalidAt + 2)); // 90
    await expectFailure(client, server, 1007);
  });

  it('§8.1: fails with 1007 on an invalid start of a large single text frame, with most of its payload never sent', async () => {
    const client = await connectWebSocket(server);
    const payload = Buffer.alloc(100_000, 0x61);
    payload[10] = 0xff;
    const frame = text(payload);
    await client.send(frame.subarray(0, 14 + 1000)); // 64-bit header + mask, then the first 1000 payload bytes
    await expectFailure(client, server, 1007);
  });
});
