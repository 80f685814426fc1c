// Conformance: the closing handshake (Autobahn TestSuite section 7), RFC 6455 §5.5.1, §7.1 and §7.4, through the
// CLI echo route.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { RunningServer } from '../_support/cli-server.js';
import { useEchoServer } from './_echo-server.js';
import {
  Opcode, close, closePayload, continuation, describeFrame, maskedFrame, patternBytes, ping, text,
} from '../_support/frames.js';
import { connectWebSocket, expectFailure, type CloseResult, type RawClient } from '../_support/raw-client.js';

let server!: RunningServer;

useEchoServer((started) => { server = started; });

/**
 * Asserts the server answered our close (RFC 6455 §5.5.1: "If an endpoint receives a Close frame and did not
 * previously send a Close frame, the endpoint MUST send a Close frame in response") with one of `codes`
 * (undefined = empty payload), sent nothing after it, and closed TCP itself (§7.1.1: the server closes first).
 */
async function expectCloseAnswer(client: RawClient, codes: ReadonlyArray<number | undefined>): Promise<CloseResult> {
  const result = await client.expectClose();
  assert.ok(codes.includes(result.code), `server answered close with code ${result.code ?? 'none'}; expected ${codes.map((code) => code ?? 'none').join(' or ')}`);
  assert.ok(Buffer.from(result.reasonBytes.toString('utf8')).equals(result.reasonBytes), 'close reason is not valid UTF-8 (§5.5.1)');
  assert.deepEqual(result.framesAfterClose.map(describeFrame), [], 'server sent frames after its close frame (§5.5.1)');
  assert.equal(result.tcpClosed, true, 'server did not close the TCP connection after the closing handshake (§7.1.1)');
  return result;
}

describe('conformance §7 close: basic closing handshake', () => {
  it('§5.5.1: answers a close without payload with an empty close or 1000, then closes TCP', async () => {
    const client = await connectWebSocket(server);
    await client.send(close());
    // §7.1.5: an empty close means "no status code" (1005); answering with no code or with 1000 both conform.
    await expectCloseAnswer(client, [undefined, 1000]);
  });

  it('§5.5.1: answers close 1000 with a reason with close 1000, then closes TCP', async () => {
    const client = await connectWebSocket(server);
    await client.send(close(1000, 'Goodbye, and thanks for all the fish'));
    await expectCloseAnswer(client, [1000]);
  });

  it('§5.5.1: echoes a message, then answers a close', async () => {
    const client = await connectWebSocket(server);
    await client.send(Buffer.concat([text('Hello'), close(1000)]));
    assert.equal((await client.nextMessage()).payload.toString('utf8'), 'Hello');
    await expectCloseAnswer(client, [1000]);
  });

  it('§5.5.1: answers a close that arrives one byte per read', async () => {
    const client = await connectWebSocket(server);
    await client.sendInPieces(close(1000, 'slowly'), 1, 2);
    await expectCloseAnswer(client, [1000]);
  });

  it('§5.5.1: answers only the first of two close frames (Autobahn 7.1.2)', async () => {
    const client = await connectWebSocket(server);
    await client.send(Buffer.concat([close(1000), close(1000)]));
    await expectCloseAnswer(client, [1000]);
  });

  it('§5.5.1: does not answer a ping sent after the close (Autobahn 7.1.3)', async () => {
    const client = await connectWebSocket(server);
    await client.send(Buffer.concat([close(1000), ping('after close')]));
    await expectCloseAnswer(client, [1000]);
  });

  it('§5.5.1: ignores data sent after the close — no echo (Autobahn 7.1.4)', async () => {
    const client = await connectWebSocket(server);
    // RFC 6455 §1.4: after sending a Close frame the peer sends no more data; a server receiving it anyway drops it.
    await client.send(Buffer.concat([close(1000), text('after close'), maskedFrame({ opcode: Opcode.binary, payload: patternBytes(10) })]));
    await expectCloseAnswer(client, [1000]);
  });

  it('§5.5.1: ignores data sent in a later write after the close', async () => {
    const client = await connectWebSocket(server);
    await client.send(close(1000));
    await client.send(text('after close, separately'));
    await expectCloseAnswer(client, [1000]);
  });

  it('§5.4: answers a close between fragments and never echoes the unfinished message (Autobahn 7.1.5)', async () => {
    const client = await connectWebSocket(server);
    await client.send(Buffer.concat([text('fragment1', false), close(1000), continuation('fragment2')]));
    await expectCloseAnswer(client, [1000]);
  });

  it('§5.5.1: delivers the echo of a 256 KiB message received before the close, then answers the close (Autobahn 7.1.6)', async () => {
    const client = await connectWebSocket(server);
    const payload = patternBytes(256 * 1024, 7);
    await client.send(Buffer.concat([maskedFrame({ opcode: Opcode.binary, payload }), close(1000), ping('after close')]));
    const message = await client.nextMessage(5000);
    assert.ok(message.payload.equals(payload), 'echo of the large message differs');
    await expectCloseAnswer(client, [1000]);
  });
});

describe('conformance §7 close: payload sizes', () => {
  it('§5.5.1: fails with 1002 on a close with a 1-byte payload', async () => {
    const client = await connectWebSocket(server);
    // RFC 6455 §5.5.1: "If there is a body, the first two bytes of the body MUST be a 2-byte unsigned integer".
    await client.send(maskedFrame({ opcode: Opcode.close, payload: Uint8Array.of(0x03) }));
    await expectFailure(client, server, 1002);
  });

  it('§5.5: accepts a close with a 123-byte reason (125-byte payload, the control frame maximum)', async () => {
    const client = await connectWebSocket(server);
    await client.send(close(1000, '*'.repeat(123)));
    await expectCloseAnswer(client, [1000]);
  });

  it('§5.5: fails with 1002 on a close with a 124-byte reason (126-byte payload)', async () => {
    const client = await connectWebSocket(server);
    await client.send(close(1000, '*'.repeat(124)));
    await expectFailure(client, server, 1002);
  });

  it('§5.5.1: fails with 1007 on a close reason that is not valid UTF-8', async () => {
    const client = await connectWebSocket(server);
    // RFC 6455 §5.5.1: the reason "is not guaranteed to be human readable" but is UTF-8 encoded; §8.1: fail on invalid UTF-8.
    await client.send(close(1000, Buffer.concat([Buffer.from('κόσμε'), Buffer.from('eda080', 'hex'), Buffer.from('edited')])));
    await expectFailure(client, server, 1007);
  });

  it('§5.5.1: fails with 1007 on a close reason that ends inside a code point', async () => {
    const client = await connectWebSocket(server);
    await client.send(close(1000, Buffer.from('41e282', 'hex')));
    await expectFailure(client, server, 1007);
  });
});

// §7.4.1 defined codes, §7.4.2 ranges (3000-3999 registered, 4000-4999 private) and the IANA registry, which
// added 1012 (Service Restart), 1013 (Try Again Later) and 1014 (Bad Gateway); Autobahn 7.7.x accepts them.
const validCodes = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999] as const;
// 1004 reserved; 1005, 1006 and 1015 "MUST NOT be set as a status code in a Close control frame" (§7.4.1);
// 0-999 unused (§7.4.2); 1016-2999 reserved for future RFCs; 5000+ undefined.
const invalidCodes = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535] as const;

describe('conformance §7 close: status codes', () => {
  for (const code of validCodes) {
    it(`§7.4: accepts close code ${code} and answers with ${code} or 1000`, async () => {
      const client = await connectWebSocket(server);
      await client.send(close(code, 'reason'));
      // §5.5.1: "the endpoint typically echos the status code it received"; Autobahn accepts the echo or 1000.
      await expectCloseAnswer(client, [code, 1000]);
    });
  }

  for (const code of invalidCodes) {
    it(`§7.4: fails with 1002 on invalid close code ${code}`, async () => {
      const client = await connectWebSocket(server);
      await client.send(maskedFrame({ opcode: Opcode.close, payload: closePayload(code, 'reason') }));
      await expectFailure(client, server, 1002);
    });
  }
});
