// Conformance: pings and pongs (Autobahn TestSuite section 2), RFC 6455 §5.5.2 and §5.5.3, through the CLI echo route.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { RunningServer } from '../_support/cli-server.js';
import { useEchoServer } from './_echo-server.js';
import { Opcode, describeFrame, maskedFrame, patternBytes, patternText, ping, pong, text } from '../_support/frames.js';
import { connectWebSocket, expectFailure, type RawClient } from '../_support/raw-client.js';

let server!: RunningServer;

useEchoServer((started) => { server = started; });

async function expectPong(client: RawClient, payload: Uint8Array | string): Promise<void> {
  const frame = await client.nextFrame();
  assert.equal(frame.opcode, Opcode.pong, `expected a pong, got ${describeFrame(frame)}`);
  assert.equal(frame.fin, true, 'a pong MUST NOT be fragmented (§5.5)');
  // RFC 6455 §5.5.3: "A Pong frame sent in response to a Ping frame must have identical Application data".
  assert.ok(frame.payload.equals(Buffer.from(payload)), `pong payload <${frame.payload.toString('hex')}> differs from ping payload`);
}

async function expectTextEcho(client: RawClient, payload: string): Promise<void> {
  const message = await client.nextMessage();
  assert.equal(message.opcode, Opcode.text);
  assert.equal(message.payload.toString('utf8'), payload);
}

describe('conformance §2 pings and pongs', () => {
  it('§5.5.2: answers a ping without payload with a pong without payload', async () => {
    const client = await connectWebSocket(server);
    await client.send(ping());
    await expectPong(client, '');
  });

  it('§5.5.3: answers a ping with a small text payload with an identical pong', async () => {
    const client = await connectWebSocket(server);
    await client.send(ping('Hello, world!'));
    await expectPong(client, 'Hello, world!');
  });

  it('§5.5.3: answers a ping with a binary payload (every byte value) with an identical pong', async () => {
    const client = await connectWebSocket(server);
    const payload = Uint8Array.from([0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff, 0x80, 0x7f]);
    await client.send(ping(payload));
    await expectPong(client, payload);
  });

  it('§5.5: answers a ping with the largest allowed payload (125 bytes) with an identical pong', async () => {
    const client = await connectWebSocket(server);
    const payload = patternBytes(125, 4);
    await client.send(ping(payload));
    await expectPong(client, payload);
  });

  it('§5.5: fails with 1002 on a ping with a 126-byte payload (control frames carry at most 125)', async () => {
    const client = await connectWebSocket(server);
    // RFC 6455 §5.5: "All control frames MUST have a payload length of 125 bytes or less".
    await client.send(ping(patternBytes(126, 5)));
    await expectFailure(client, server, 1002);
  });

  it('§5.5: fails with 1002 on a ping whose 16-bit length announces 126 bytes, before the payload is sent', async () => {
    const client = await connectWebSocket(server);
    const frame = ping(patternBytes(126, 5));
    await client.send(frame.subarray(0, 8)); // header (2 + 2) and masking key (4) only
    await expectFailure(client, server, 1002);
  });

  it('§5.5.3: answers a 125-byte ping that arrives one byte per read', async () => {
    const client = await connectWebSocket(server);
    const payload = patternText(125);
    await client.sendInPieces(ping(payload), 1, 1);
    await expectPong(client, payload);
  });

  it('§5.5.3: ignores an unsolicited pong with payload, and the next echo still works', async () => {
    const client = await connectWebSocket(server);
    // RFC 6455 §5.5.3: "A Pong frame MAY be sent unsolicited... A response to an unsolicited Pong frame is not expected."
    await client.send(pong('unsolicited'));
    await client.expectSilence(100);
    await client.send(text('after pong'));
    await expectTextEcho(client, 'after pong');
  });

  it('§5.5.3: ignores an unsolicited empty pong, then answers a ping with its own payload', async () => {
    const client = await connectWebSocket(server);
    await client.send(Buffer.concat([pong(), ping('the ping')]));
    await expectPong(client, 'the ping');
    await client.expectSilence(50);
  });

  it('§5.5.2: answers 10 pings sent in one write with 10 pongs in order', async () => {
    const client = await connectWebSocket(server);
    const payloads = Array.from({ length: 10 }, (_, index) => `ping ${index}`);
    await client.send(Buffer.concat(payloads.map((payload) => ping(payload))));
    for (const payload of payloads) await expectPong(client, payload);
  });

  it('§5.5.2: answers 10 pings sent 5 ms apart with 10 pongs in order', async () => {
    const client = await connectWebSocket(server);
    const payloads = Array.from({ length: 10 }, (_, index) => patternBytes(10 + index, index + 1));
    for (const payload of payloads) {
      await client.send(ping(payload));
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    for (const payload of payloads) await expectPong(client, payload);
  });

  it('§5.5.2: answers a ping between two messages, and each message is echoed', async () => {
    const client = await connectWebSocket(server);
    await client.send(Buffer.concat([text('before'), ping('middle'), text('after')]));
    // The RFC does not order a pong against data frames ("as soon as is practical"), so only the data order is checked.
    const frames = [await client.nextFrame(), await client.nextFrame(), await client.nextFrame()];
    assert.deepEqual(
      frames.filter((frame) => frame.opcode !== Opcode.pong).map((frame) => [frame.opcode, frame.payload.toString('utf8')]),
      [[Opcode.text, 'before'], [Opcode.text, 'after']],
    );
    assert.deepEqual(
      frames.filter((frame) => frame.opcode === Opcode.pong).map((frame) => frame.payload.toString('utf8')),
      ['middle'],
    );
  });

  it('§5.5: fails with 1002 on a pong with a 126-byte payload', async () => {
    const client = await connectWebSocket(server);
    await client.send(maskedFrame({ opcode: Opcode.pong, payload: patternBytes(126) }));
    await expectFailure(client, server, 1002);
  });
});
