// Conformance: reserved bits and reserved opcodes (Autobahn TestSuite sections 3 and 4), RFC 6455 §5.2, through
// the CLI echo route with no extension negotiated.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { RunningServer } from '../_support/cli-server.js';
import { useEchoServer } from './_echo-server.js';
import { Opcode, maskedFrame, patternBytes, ping, text } from '../_support/frames.js';
import { connectWebSocket, expectFailure } from '../_support/raw-client.js';

let server!: RunningServer;

useEchoServer((started) => { server = started; });

interface ReservedBitsCase {
  readonly name: string;
  readonly opcode: number;
  readonly rsv1?: boolean;
  readonly rsv2?: boolean;
  readonly rsv3?: boolean;
  readonly payload: Uint8Array | string;
}

const reservedBitCases: readonly ReservedBitsCase[] = [
  { name: 'RSV1 on a text frame', opcode: Opcode.text, rsv1: true, payload: 'Hello' },
  { name: 'RSV2 on a text frame', opcode: Opcode.text, rsv2: true, payload: 'Hello' },
  { name: 'RSV3 on a text frame', opcode: Opcode.text, rsv3: true, payload: 'Hello' },
  { name: 'RSV1+RSV3 on a text frame', opcode: Opcode.text, rsv1: true, rsv3: true, payload: '' },
  { name: 'RSV1 on a binary frame', opcode: Opcode.binary, rsv1: true, payload: patternBytes(8) },
  { name: 'RSV2+RSV3 on a binary frame', opcode: Opcode.binary, rsv2: true, rsv3: true, payload: patternBytes(8) },
  { name: 'RSV1 on a ping', opcode: Opcode.ping, rsv1: true, payload: 'ping' },
  { name: 'RSV2+RSV3 on a ping', opcode: Opcode.ping, rsv2: true, rsv3: true, payload: 'ping' },
  { name: 'RSV3 on a pong', opcode: Opcode.pong, rsv3: true, payload: 'pong' },
  { name: 'RSV1 on a close', opcode: Opcode.close, rsv1: true, payload: Uint8Array.of(0x03, 0xe8) },
  { name: 'RSV1+RSV2+RSV3 on a close', opcode: Opcode.close, rsv1: true, rsv2: true, rsv3: true, payload: Uint8Array.of(0x03, 0xe8) },
];

describe('conformance §3 reserved bits', () => {
  for (const testCase of reservedBitCases) {
    it(`§5.2: fails with 1002 on ${testCase.name} without a negotiated extension`, async () => {
      const client = await connectWebSocket(server);
      // RFC 6455 §5.2: "MUST be 0 unless an extension is negotiated that defines meanings for non-zero values. If a
      // nonzero value is received and none of the negotiated extensions defines the meaning of such a nonzero value,
      // the receiving endpoint MUST _Fail the WebSocket Connection_."
      await client.send(maskedFrame(testCase));
      await expectFailure(client, server, 1002);
    });
  }

  it('§5.2: delivers the echo of a preceding valid message, then fails with 1002 on RSV2 (and does not answer a later ping)', async () => {
    const client = await connectWebSocket(server);
    await client.send(Buffer.concat([text('Hello'), maskedFrame({ opcode: Opcode.text, rsv2: true, payload: 'Hello' }), ping('after')]));
    assert.equal((await client.nextMessage()).payload.toString('utf8'), 'Hello');
    await expectFailure(client, server, 1002);
  });

  it('§5.2: delivers a preceding echo, then fails with 1002 on RSV3 when every frame arrives in 1-byte pieces', async () => {
    const client = await connectWebSocket(server);
    await client.sendInPieces(Buffer.concat([text('Hello'), maskedFrame({ opcode: Opcode.text, rsv3: true, payload: 'Hello' })]), 1, 2);
    assert.equal((await client.nextMessage()).payload.toString('utf8'), 'Hello');
    await expectFailure(client, server, 1002);
  });

  it('§5.2: fails with 1002 on RSV2 on a continuation frame of a fragmented message', async () => {
    const client = await connectWebSocket(server);
    await client.send(Buffer.concat([
      maskedFrame({ opcode: Opcode.text, fin: false, payload: 'frag1' }),
      maskedFrame({ opcode: Opcode.continuation, rsv2: true, payload: 'frag2' }),
    ]));
    await expectFailure(client, server, 1002);
  });
});

const reservedOpcodes = [3, 4, 5, 6, 7, 11, 12, 13, 14, 15] as const;

describe('conformance §4 reserved opcodes', () => {
  for (const opcode of reservedOpcodes) {
    const kind = opcode < 8 ? 'non-control' : 'control';
    it(`§5.2: fails with 1002 on reserved ${kind} opcode ${opcode}`, async () => {
      const client = await connectWebSocket(server);
      // RFC 6455 §5.2: "If an unknown opcode is received, the receiving endpoint MUST _Fail the WebSocket Connection_."
      await client.send(maskedFrame({ opcode, payload: opcode % 2 === 0 ? '' : 'reserved' }));
      await expectFailure(client, server, 1002);
    });

    it(`§5.2: delivers a preceding echo, then fails with 1002 on reserved ${kind} opcode ${opcode} (no pong for a later ping)`, async () => {
      const client = await connectWebSocket(server);
      await client.send(Buffer.concat([text('Hello'), maskedFrame({ opcode, payload: patternBytes(20, opcode) }), ping('after')]));
      assert.equal((await client.nextMessage()).payload.toString('utf8'), 'Hello');
      await expectFailure(client, server, 1002);
    });
  }

  it('§5.2: fails with 1002 on a reserved opcode inside a fragmented message', async () => {
    const client = await connectWebSocket(server);
    await client.send(Buffer.concat([
      maskedFrame({ opcode: Opcode.text, fin: false, payload: 'frag1' }),
      maskedFrame({ opcode: 3, payload: 'frag2' }),
    ]));
    await expectFailure(client, server, 1002);
  });
});
