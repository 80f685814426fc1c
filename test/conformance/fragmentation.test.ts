// Conformance: fragmentation (Autobahn TestSuite section 5), RFC 6455 §5.4 and §5.5, through the CLI echo route.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { RunningServer } from '../_support/cli-server.js';
import { useEchoServer } from './_echo-server.js';
import {
  Opcode, binary, continuation, describeFrame, maskedFrame, patternBytes, patternText, ping, text,
} from '../_support/frames.js';
import { connectWebSocket, expectFailure, type RawClient } from '../_support/raw-client.js';
import { sleep } from '../_support/cleanup.js';

let server!: RunningServer;

useEchoServer((started) => { server = started; });


/** Splits `payload` into `count` fragments of a data message (the first carries `opcode`, the rest are continuations). */
function fragments(opcode: number, payload: Buffer, count: number): Buffer[] {
  const size = Math.ceil(payload.length / count);
  return Array.from({ length: count }, (_, index) => {
    const part = payload.subarray(index * size, (index + 1) * size);
    return maskedFrame({ opcode: index === 0 ? opcode : Opcode.continuation, fin: index === count - 1, payload: part });
  });
}

async function expectMessage(client: RawClient, opcode: number, payload: Uint8Array | string): Promise<void> {
  const message = await client.nextMessage();
  assert.equal(message.opcode, opcode, `expected opcode ${opcode}, got ${message.opcode}`);
  assert.ok(message.payload.equals(Buffer.from(payload)), `echo payload differs (${message.payload.length} bytes received)`);
}

async function expectPong(client: RawClient, payload: string): Promise<void> {
  const frame = await client.nextFrame();
  assert.equal(frame.opcode, Opcode.pong, `expected a pong, got ${describeFrame(frame)}`);
  assert.equal(frame.payload.toString('utf8'), payload);
}

describe('conformance §5 fragmentation: valid fragmented messages', () => {
  it('§5.4: echoes a text message sent in 2 fragments in one write', async () => {
    const client = await connectWebSocket(server);
    await client.send(Buffer.concat([text('fragment1', false), continuation('fragment2')]));
    await expectMessage(client, Opcode.text, 'fragment1fragment2');
  });

  it('§5.4: echoes a text message sent in 2 fragments in separate writes', async () => {
    const client = await connectWebSocket(server);
    await client.send(text('fragment1', false));
    await sleep(10);
    await client.send(continuation('fragment2'));
    await expectMessage(client, Opcode.text, 'fragment1fragment2');
  });

  it('§5.4: echoes a text message sent in 100 fragments', async () => {
    const client = await connectWebSocket(server);
    const payload = Buffer.from(patternText(1000));
    await client.send(Buffer.concat(fragments(Opcode.text, payload, 100)));
    await expectMessage(client, Opcode.text, payload);
  });

  it('§5.4: echoes a binary message sent in 100 fragments', async () => {
    const client = await connectWebSocket(server);
    const payload = patternBytes(1000, 31);
    await client.send(Buffer.concat(fragments(Opcode.binary, payload, 100)));
    await expectMessage(client, Opcode.binary, payload);
  });

  it('§5.4: echoes a 64 KiB binary message sent in 16 fragments, each fragment arriving in odd pieces', async () => {
    const client = await connectWebSocket(server);
    const payload = patternBytes(65536, 32);
    for (const frame of fragments(Opcode.binary, payload, 16)) await client.sendInPieces(frame, [1, 1, 1, 1, 1, 1, 1, 1, 333, 1021], 1);
    await expectMessage(client, Opcode.binary, payload);
  });

  it('§5.4: echoes a text message of 5 fragments where each fragment arrives one byte per read', async () => {
    const client = await connectWebSocket(server);
    const payload = Buffer.from('fragments, each one byte at a time');
    for (const frame of fragments(Opcode.text, payload, 5)) await client.sendInPieces(frame, 1, 1);
    await expectMessage(client, Opcode.text, payload);
  });

  it('§5.4: echoes a message made of empty fragments as an empty message', async () => {
    const client = await connectWebSocket(server);
    await client.send(Buffer.concat([text('', false), continuation('', false), continuation('')]));
    await expectMessage(client, Opcode.text, '');
  });

  it('§5.4: echoes a binary message whose first and last fragments are empty', async () => {
    const client = await connectWebSocket(server);
    await client.send(Buffer.concat([binary('', false), continuation(Uint8Array.of(1, 2, 3), false), continuation('')]));
    await expectMessage(client, Opcode.binary, Uint8Array.of(1, 2, 3));
  });

  it('§5.4: echoes two fragmented messages back to back', async () => {
    const client = await connectWebSocket(server);
    await client.send(Buffer.concat([
      text('a', false), continuation('b'),
      binary(Uint8Array.of(1), false), continuation(Uint8Array.of(2), false), continuation(Uint8Array.of(3)),
    ]));
    await expectMessage(client, Opcode.text, 'ab');
    await expectMessage(client, Opcode.binary, Uint8Array.of(1, 2, 3));
  });
});

describe('conformance §5 fragmentation: control frames between fragments', () => {
  it('§5.4: answers a ping between two fragments before the reassembled echo (one write)', async () => {
    const client = await connectWebSocket(server);
    // RFC 6455 §5.4: "Control frames MAY be injected in the middle of a fragmented message."
    await client.send(Buffer.concat([text('fragment1', false), ping('ping payload'), continuation('fragment2')]));
    await expectPong(client, 'ping payload');
    await expectMessage(client, Opcode.text, 'fragment1fragment2');
  });

  it('§5.4: answers a ping between two fragments sent in separate writes, before the last fragment is sent', async () => {
    const client = await connectWebSocket(server);
    await client.send(text('fragment1', false));
    await sleep(5);
    await client.send(ping('ping payload'));
    await expectPong(client, 'ping payload');
    await client.send(continuation('fragment2'));
    await expectMessage(client, Opcode.text, 'fragment1fragment2');
  });

  it('§5.4: answers a ping between fragments when every frame arrives one byte per read', async () => {
    const client = await connectWebSocket(server);
    for (const frame of [text('fragment1', false), ping('ping payload'), continuation('fragment2')]) await client.sendInPieces(frame, 1, 1);
    await expectPong(client, 'ping payload');
    await expectMessage(client, Opcode.text, 'fragment1fragment2');
  });

  it('§5.4: answers two pings interleaved in a 5-fragment binary message, in order, before the echo', async () => {
    const client = await connectWebSocket(server);
    const payload = patternBytes(50, 33);
    const parts = fragments(Opcode.binary, payload, 5);
    for (const [index, frame] of [parts[0]!, parts[1]!, ping('one'), parts[2]!, parts[3]!, ping('two'), parts[4]!].entries()) {
      await client.send(frame);
      if (index % 2 === 0) await sleep(5);
    }
    await expectPong(client, 'one');
    await expectPong(client, 'two');
    await expectMessage(client, Opcode.binary, payload);
  });

  it('§5.4: ignores a pong between two fragments', async () => {
    const client = await connectWebSocket(server);
    await client.send(Buffer.concat([text('fragment1', false), maskedFrame({ opcode: Opcode.pong, payload: 'x' }), continuation('fragment2')]));
    await expectMessage(client, Opcode.text, 'fragment1fragment2');
  });
});

describe('conformance §5 fragmentation: invalid sequences', () => {
  it('§5.5: fails with 1002 on a fragmented ping (FIN=0)', async () => {
    const client = await connectWebSocket(server);
    // RFC 6455 §5.5: "Control frames themselves MUST NOT be fragmented."
    await client.send(Buffer.concat([maskedFrame({ opcode: Opcode.ping, fin: false, payload: 'fragment1' }), continuation('fragment2')]));
    await expectFailure(client, server, 1002);
  });

  it('§5.5: fails with 1002 on a fragmented pong (FIN=0)', async () => {
    const client = await connectWebSocket(server);
    await client.send(Buffer.concat([maskedFrame({ opcode: Opcode.pong, fin: false, payload: 'fragment1' }), continuation('fragment2')]));
    await expectFailure(client, server, 1002);
  });

  it('§5.5: fails with 1002 on a fragmented close (FIN=0), without answering it as a close', async () => {
    const client = await connectWebSocket(server);
    await client.send(maskedFrame({ opcode: Opcode.close, fin: false, payload: Uint8Array.of(0x03, 0xe8) }));
    await expectFailure(client, server, 1002);
  });

  it('§5.5: fails with 1002 on a FIN=0 ping inside a fragmented message', async () => {
    const client = await connectWebSocket(server);
    await client.send(Buffer.concat([text('fragment1', false), maskedFrame({ opcode: Opcode.ping, fin: false, payload: 'p' })]));
    await expectFailure(client, server, 1002);
  });

  it('§5.4: fails with 1002 on a final continuation frame with no message started', async () => {
    const client = await connectWebSocket(server);
    await client.send(Buffer.concat([continuation('fragment1'), text('after')]));
    await expectFailure(client, server, 1002);
  });

  it('§5.4: fails with 1002 on a non-final continuation frame with no message started', async () => {
    const client = await connectWebSocket(server);
    await client.send(Buffer.concat([continuation('fragment1', false), continuation('fragment2')]));
    await expectFailure(client, server, 1002);
  });

  it('§5.4: fails with 1002 on an orphan continuation sent one byte per read', async () => {
    const client = await connectWebSocket(server);
    await client.sendInPieces(continuation('fragment1'), 1, 2);
    await expectFailure(client, server, 1002);
  });

  it('§5.4: echoes a complete fragmented message, then fails with 1002 on a continuation after it', async () => {
    const client = await connectWebSocket(server);
    await client.send(Buffer.concat([text('fragment1', false), continuation('fragment2'), continuation('fragment3', false), continuation('fragment4')]));
    await expectMessage(client, Opcode.text, 'fragment1fragment2');
    await expectFailure(client, server, 1002);
  });

  it('§5.4: fails with 1002 on a new text frame inside a fragmented text message', async () => {
    const client = await connectWebSocket(server);
    // RFC 6455 §5.4: a fragmented message is a start frame, zero or more continuations and a final frame;
    // "the fragments of one message MUST NOT be interleaved between the fragments of another message".
    await client.send(Buffer.concat([text('fragment1', false), text('fragment2')]));
    await expectFailure(client, server, 1002);
  });

  it('§5.4: fails with 1002 on a new binary frame inside a fragmented text message', async () => {
    const client = await connectWebSocket(server);
    await client.send(Buffer.concat([text('fragment1', false), binary(Uint8Array.of(1, 2), false)]));
    await expectFailure(client, server, 1002);
  });

  it('§5.4: fails with 1002 on a new text frame inside a fragmented binary message (separate writes)', async () => {
    const client = await connectWebSocket(server);
    await client.send(binary(Uint8Array.of(1, 2), false));
    await sleep(5);
    await client.send(text('intruder'));
    await expectFailure(client, server, 1002);
  });
});
