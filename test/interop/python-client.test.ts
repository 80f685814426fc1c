// Interop: python-websockets (Debian python3-websockets) as a CLIENT, a peer nobody here wrote, against
// `switchyard serve --echo /echo --broadcast /chat` and against an embedded app where the server's side of a
// close is observable. Each scenario is one run of python/client.py printing what it sent and got back.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { needPeer, pythonWebsocketsMissing } from '../_support/peers.js';
import { runPythonClient } from './_python.js';
import { startEmbeddedApp, type EmbeddedApp } from './_embedded.js';
import { serveDuringSuite } from './_serve.js';

const testOptions = { timeout: 40_000 } as const;

describe('python-websockets client against switchyard serve --echo /echo --broadcast /chat', () => {
  const url = serveDuringSuite(['--echo', '/echo', '--broadcast', '/chat']);

  it('echoes a text message with multi-byte characters as text, unchanged', testOptions, async (t) => {
    if (!needPeer(t, pythonWebsocketsMissing())) return;
    const result = await runPythonClient(t, 'text', url('/echo'));
    assert.deepEqual(result['received'], { type: 'text', text: result['sent'] });
  });

  it('echoes a binary message with every byte value as binary', testOptions, async (t) => {
    if (!needPeer(t, pythonWebsocketsMissing())) return;
    const result = await runPythonClient(t, 'binary', url('/echo'));
    assert.deepEqual(result['received'], { type: 'binary', hex: result['sentHex'] });
  });

  it('echoes empty text and empty binary messages with their types', testOptions, async (t) => {
    if (!needPeer(t, pythonWebsocketsMissing())) return;
    const result = await runPythonClient(t, 'empty', url('/echo'));
    assert.deepEqual(result['text'], { type: 'text', text: '' });
    assert.deepEqual(result['binary'], { type: 'binary', hex: '' });
  });

  it('echoes a 1 MiB binary message and a 640 KiB multi-byte text message byte for byte', testOptions, async (t) => {
    if (!needPeer(t, pythonWebsocketsMissing())) return;
    const result = await runPythonClient(t, 'large', url('/echo'));
    const binary = result['binary'] as Record<string, unknown>;
    assert.equal(binary['receivedType'], 'binary');
    assert.equal(binary['receivedBytes'], 1 << 20);
    assert.equal(binary['sha256Received'], binary['sha256Sent']);
    assert.deepEqual(result['text'], { sentUtf8Bytes: 655_360, receivedType: 'text', equal: true });
  });

  it('reassembles a fragmented text and a fragmented binary message (empty fragment included) into one echo each', testOptions, async (t) => {
    if (!needPeer(t, pythonWebsocketsMissing())) return;
    const result = await runPythonClient(t, 'fragmented', url('/echo'));
    assert.deepEqual(result['textReceived'], { type: 'text', text: result['textSent'] });
    assert.deepEqual(result['binaryReceived'], { type: 'binary', hex: result['binarySentHex'] });
  });

  it('answers a ping with a pong (python\'s pong waiter resolves) and keeps echoing', testOptions, async (t) => {
    if (!needPeer(t, pythonWebsocketsMissing())) return;
    const result = await runPythonClient(t, 'ping', url('/echo'));
    assert.equal(result['pongReceived'], true);
    assert.deepEqual(result['after'], { type: 'text', text: 'after-ping' });
  });

  it('answers a close with 4001 "bye" by echoing code 4001 (RFC 6455 §5.5.1)', testOptions, async (t) => {
    if (!needPeer(t, pythonWebsocketsMissing())) return;
    const result = await runPythonClient(t, 'client-close', url('/echo'));
    assert.deepEqual(result['before'], { type: 'text', text: 'before-close' });
    assert.deepEqual(result['closeSent'], { code: 4001, reason: 'bye' });
    const received = result['closeReceived'] as { code: number; reason: string } | null;
    assert.ok(received, 'python received no close frame from the server');
    assert.equal(received.code, 4001, `server answered the close with ${received.code} "${received.reason}"`);
    assert.equal(result['closeCode'], 4001);
  });

  it('selects no subprotocol on a CLI route when the client offers some (none is configured)', testOptions, async (t) => {
    if (!needPeer(t, pythonWebsocketsMissing())) return;
    const result = await runPythonClient(t, 'subprotocol', url('/echo'));
    assert.equal(result['subprotocol'], null);
    assert.deepEqual(result['received'], { type: 'text', text: 'proto?' });
  });

  it('broadcasts on /chat: each of two python clients receives the other\'s message and its own', testOptions, async (t) => {
    if (!needPeer(t, pythonWebsocketsMissing())) return;
    const result = await runPythonClient(t, 'broadcast', url('/chat'));
    const fromA = { type: 'text', text: 'from-a' };
    const fromB = { type: 'binary', hex: Buffer.from('from-b').toString('hex') };
    assert.deepEqual(result['a'], [fromA, fromB]);
    assert.deepEqual(result['b'], [fromA, fromB]);
  });
});

describe('python-websockets client against an embedded createServer() app', () => {
  let app: EmbeddedApp | undefined;
  before(async () => {
    app = await startEmbeddedApp();
  });
  after(async () => {
    await app?.close();
  });
  const embedded = (): EmbeddedApp => {
    assert.ok(app, 'the embedded app did not start');
    return app;
  };

  it('selects the configured subprotocol "chat.v1" from python\'s offer', testOptions, async (t) => {
    if (!needPeer(t, pythonWebsocketsMissing())) return;
    const result = await runPythonClient(t, 'subprotocol', `${embedded().wsUrl}/echo`);
    assert.equal(result['subprotocol'], 'chat.v1');
    assert.deepEqual(result['received'], { type: 'text', text: 'proto?' });
  });

  it('sees python\'s close 4001 "bye" in the close handler, and python gets 4001 echoed', testOptions, async (t) => {
    if (!needPeer(t, pythonWebsocketsMissing())) return;
    const result = await runPythonClient(t, 'client-close', `${embedded().wsUrl}/chat`);
    assert.deepEqual(await embedded().nextServerClose('/chat', 5_000), { code: 4001, reason: 'bye', wasClean: true });
    const received = result['closeReceived'] as { code: number; reason: string } | null;
    assert.ok(received, 'python received no close frame from the server');
    assert.equal(received.code, 4001);
  });

  it('closes with 4000 "done by server" when told "bye": python receives that code and reason', testOptions, async (t) => {
    if (!needPeer(t, pythonWebsocketsMissing())) return;
    const result = await runPythonClient(t, 'server-close', `${embedded().wsUrl}/closer`);
    assert.deepEqual(result['received'], [], 'the server sent messages before closing');
    assert.deepEqual(result['closeReceived'], { code: 4000, reason: 'done by server' });
    // python echoes the code back; the server's close handler reports the close as clean.
    const serverSide = await embedded().nextServerClose('/closer', 5_000);
    assert.equal(serverSide.code, 4000);
    assert.equal(serverSide.wasClean, true);
  });
});

describe('python-websockets client against switchyard serve --echo /echo --max-message-bytes 1024 --ping-interval-ms 200', () => {
  const url = serveDuringSuite(['--echo', '/echo', '--max-message-bytes', '1024', '--ping-interval-ms', '200']);

  it('closes with 1009 (message too big) on a 2048-byte frame and on 4 fragments adding up to 1600 bytes', testOptions, async (t) => {
    if (!needPeer(t, pythonWebsocketsMissing())) return;
    const result = await runPythonClient(t, 'oversize', url('/echo'));
    for (const key of ['oneFrame', 'fragments']) {
      const outcome = result[key] as { received: unknown[]; closeReceived: { code: number; reason: string } | null };
      assert.deepEqual(outcome.received, [], `${key}: the oversized message was echoed`);
      assert.ok(outcome.closeReceived, `${key}: python received no close frame`);
      // RFC 6455 §7.4.1: 1009 = a message too big to process.
      assert.equal(outcome.closeReceived.code, 1009, `${key}: closed with ${outcome.closeReceived.code} "${outcome.closeReceived.reason}"`);
    }
  });

  it('keeps an idle python client open through keep-alive pings, which python answers', testOptions, async (t) => {
    if (!needPeer(t, pythonWebsocketsMissing())) return;
    const result = await runPythonClient(t, 'keepalive', url('/echo'));
    assert.deepEqual(result['after'], { type: 'text', text: 'still here' });
    // null only on a websockets version whose pong answering this script cannot observe.
    const answered = result['pingsAnswered'];
    if (answered !== null) assert.ok(Number(answered) >= 2, `python answered ${String(answered)} pings in 1.5 s at a 200 ms interval`);
  });
});
