// Interop with the `ws` package, a second peer nobody here wrote: ws as a CLIENT against
// `switchyard serve --echo /echo --broadcast /chat` (our client against a ws server: ws-server.test.ts).
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import WebSocket from 'ws';
import { serveDuringSuite } from './_serve.js';
import { AsyncQueue, firstDifference, patternBytes, withTimeout } from './_wait.js';

const stepMs = 5_000;
const testOptions = { timeout: 30_000 } as const;

interface WsReceived {
  readonly data: Buffer;
  readonly isBinary: boolean;
}

/** Opens a ws client (deflate off, as our server does not negotiate it yet) that queues what arrives. */
async function openWsClient(t: TestContext, url: string) {
  const socket = new WebSocket(url, { perMessageDeflate: false, maxPayload: 1 << 24 });
  t.after(() => { socket.terminate(); });
  const messages = new AsyncQueue<WsReceived>();
  const pongs = new AsyncQueue<Buffer>();
  const closes = new AsyncQueue<{ code: number; reason: string }>();
  socket.on('message', (data, isBinary) => {
    // ws hands out a Buffer by default (binaryType 'nodebuffer'); the other shapes are for completeness.
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    messages.push({ data: bytes, isBinary });
  });
  socket.on('pong', (data) => pongs.push(data));
  socket.on('close', (code, reason) => closes.push({ code, reason: reason.toString('utf8') }));
  socket.on('error', () => {}); // surfaced as a close or a timeout below, with what was expected
  await withTimeout(once(socket, 'open'), stepMs, `ws client to open ${url}`);
  return {
    socket,
    nextMessage: (what: string) => messages.next(stepMs, `${what} on ${url}`),
    nextPong: () => pongs.next(stepMs, `a pong on ${url}`),
    closed: () => closes.next(stepMs, `the close event on ${url}`),
    pendingMessages: () => messages.pending,
  };
}

describe('ws client against switchyard serve --echo /echo --broadcast /chat', () => {
  const url = serveDuringSuite(['--echo', '/echo', '--broadcast', '/chat']);

  it('echoes a text message as text, unchanged', testOptions, async (t) => {
    const client = await openWsClient(t, url('/echo'));
    const sent = 'hello from ws \u2713 \u{1F600}';
    client.socket.send(sent);
    const echoed = await client.nextMessage('the echoed text');
    assert.equal(echoed.isBinary, false, 'echo of a text message arrived as binary');
    assert.equal(echoed.data.toString('utf8'), sent);
  });

  it('echoes a binary message with every byte value as binary', testOptions, async (t) => {
    const client = await openWsClient(t, url('/echo'));
    const sent = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    client.socket.send(sent);
    const echoed = await client.nextMessage('the echoed binary message');
    assert.equal(echoed.isBinary, true, 'echo of a binary message arrived as text');
    assert.deepEqual(echoed.data, sent);
  });

  it('echoes a 1 MiB binary message byte for byte', testOptions, async (t) => {
    const client = await openWsClient(t, url('/echo'));
    const sent = patternBytes(1 << 20);
    client.socket.send(sent);
    const echoed = await client.nextMessage('the echoed 1 MiB message');
    assert.equal(echoed.isBinary, true);
    assert.equal(echoed.data.length, sent.length, 'echoed length differs');
    assert.equal(firstDifference(echoed.data, sent), -1, 'echoed bytes differ');
  });

  it('echoes a message ws sends fragmented (fin: false, then fin: true) as one message', testOptions, async (t) => {
    const client = await openWsClient(t, url('/echo'));
    client.socket.send('frag-1 ', { fin: false });
    client.socket.send('frag-2 \u00e9 ', { fin: false });
    client.socket.send('frag-3', { fin: true });
    const echoed = await client.nextMessage('the echoed fragmented message');
    assert.equal(echoed.isBinary, false);
    assert.equal(echoed.data.toString('utf8'), 'frag-1 frag-2 \u00e9 frag-3');
  });

  it('answers a ping with a pong carrying the same application data', testOptions, async (t) => {
    const client = await openWsClient(t, url('/echo'));
    client.socket.ping(Buffer.from('ws-ping'));
    assert.equal((await client.nextPong()).toString('utf8'), 'ws-ping');
    client.socket.send('after ping');
    assert.equal((await client.nextMessage('the echo after the ping')).data.toString(), 'after ping');
  });

  it('answers a close with 4001 "bye" by echoing the code; ws sees a clean close', testOptions, async (t) => {
    const client = await openWsClient(t, url('/echo'));
    client.socket.close(4001, 'bye');
    const closed = await client.closed();
    // RFC 6455 §5.5.1: the endpoint answering a close typically echoes the status code it received.
    assert.equal(closed.code, 4001, `server answered the close with ${closed.code} "${closed.reason}"`);
  });

  it('broadcasts each message on /chat to all 3 connected clients, sender included', testOptions, async (t) => {
    const clients = [];
    for (let i = 0; i < 3; i++) clients.push(await openWsClient(t, url('/chat')));
    for (const [sender, client] of clients.entries()) {
      const sent = `from client ${sender}`;
      client.socket.send(sent);
      for (const [receiver, other] of clients.entries()) {
        const got = await other.nextMessage(`client ${receiver} to receive "${sent}"`);
        assert.equal(got.data.toString('utf8'), sent, `client ${receiver} got the wrong message`);
        assert.equal(got.isBinary, false);
      }
    }
    const binary = Buffer.from([0, 1, 254, 255]);
    clients[1]?.socket.send(binary);
    for (const [receiver, other] of clients.entries()) {
      const got = await other.nextMessage(`client ${receiver} to receive the binary broadcast`);
      assert.deepEqual([got.isBinary, got.data], [true, binary]);
    }
    for (const [receiver, client] of clients.entries()) {
      assert.equal(client.pendingMessages().length, 0, `client ${receiver} received extra messages`);
    }
  });
});
