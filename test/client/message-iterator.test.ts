// ws.messages(): messages as an async iterator, on connect()'s connections (kept from the first message when
// there is no `message` handler) and on server connections; nothing lost before the loop starts, reading
// paused while the inbox is over its high-water mark, the loop ending after the last message once the
// connection closes, and `break` leaving the connection open.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { connect } from '../../src/client/connect.js';
import type { WebSocket } from '../../src/transport/websocket.js';
import { ReadyState } from '../../src/protocol/constants.js';
import { cleanupStack, sleep, waitFor, withTimeout } from '../_support/cleanup.js';
import { HOST, TIMEOUT_MS, echo, startServer, type Defer } from './_servers.js';

async function open(defer: Defer, url: string, options: Parameters<typeof connect<undefined>>[1] = {}): Promise<WebSocket<undefined>> {
  const ws = await withTimeout(connect<undefined>(url, options), TIMEOUT_MS, `connect(${url})`);
  defer(() => ws.terminate());
  return ws;
}

/** Every message until the loop ends, as text. */
async function collect(ws: WebSocket<undefined>, what: string): Promise<string[]> {
  return withTimeout((async () => {
    const texts: string[] = [];
    for await (const { data } of ws.messages()) texts.push(data.toString());
    return texts;
  })(), TIMEOUT_MS * 2, what);
}

/** A 10 kB payload that says which message it is. */
function numbered(index: number): Buffer {
  const payload = Buffer.alloc(10_000, index % 251);
  payload.writeUInt32BE(index, 0);
  return payload;
}

describe('ws.messages() on a client connection', () => {
  it('yields messages that arrived before the loop started, including one that came with the 101', async (t) => {
    const defer = cleanupStack(t);
    const { port } = await startServer(defer, { '/early': { open(ws) { for (const text of ['welcome', 'two', 'three']) ws.send(text); } } });
    const ws = await open(defer, `ws://${HOST}:${port}/early`);
    await sleep(100); // the server's messages are all here before anyone iterates
    const seen: string[] = [];
    for await (const { data, isBinary } of ws.messages()) {
      assert.equal(isBinary, false);
      seen.push(data.toString());
      if (seen.length === 3) break;
    }
    assert.deepEqual(seen, ['welcome', 'two', 'three']);
  });

  it('ends the loop after the last message once the server closes, with the close details on ws', async (t) => {
    const defer = cleanupStack(t);
    const { port } = await startServer(defer, {
      '/bye': { open(ws) { ws.send('a'); ws.send(Buffer.from('b')); ws.send('c'); ws.close(4000, 'done sending'); } },
    });
    const ws = await open(defer, `ws://${HOST}:${port}/bye`);
    assert.deepEqual(await collect(ws, 'the loop to end'), ['a', 'b', 'c']);
    assert.equal(ws.readyState, ReadyState.Closed);
    assert.deepEqual([ws.closeCode, ws.closeReason, ws.closeWasClean], [4000, 'done sending', true]);
    assert.deepEqual(await collect(ws, 'a loop started after the close'), [], 'a later loop ends at once');
  });

  it('ends the loop normally on an abrupt disconnect too (close 1006), after the messages that made it', async (t) => {
    const defer = cleanupStack(t);
    const { port } = await startServer(defer, { '/drop': { open(ws) { ws.send('last words'); setTimeout(() => ws.terminate(), 50); } } });
    const ws = await open(defer, `ws://${HOST}:${port}/drop`);
    assert.deepEqual(await collect(ws, 'the loop to end'), ['last words']);
    assert.deepEqual([ws.closeCode, ws.closeWasClean], [1006, false]);
  });

  it('break leaves the connection open, and the next loop goes on with the next message', async (t) => {
    const defer = cleanupStack(t);
    const { port } = await startServer(defer, { '/five': { open(ws) { for (let i = 1; i <= 5; i++) ws.send(String(i)); } }, '/echo': echo });
    const ws = await open(defer, `ws://${HOST}:${port}/five`);
    const first: string[] = [];
    for await (const { data } of ws.messages()) {
      first.push(data.toString());
      if (first.length === 2) break;
    }
    assert.deepEqual(first, ['1', '2']);
    await sleep(50);
    assert.equal(ws.readyState, ReadyState.Open, 'break did not close the connection');
    const rest: string[] = [];
    for await (const { data } of ws.messages()) {
      rest.push(data.toString());
      if (rest.length === 3) break;
    }
    assert.deepEqual(rest, ['3', '4', '5']);
  });

  it('pauses reading while more than inboxHighWaterBytes wait, and delivers all of them in order as the loop drains', async (t) => {
    const defer = cleanupStack(t);
    const COUNT = 200;
    const { port } = await startServer(defer, {
      '/flood': { maxBackpressureBytes: 64 << 20, message(ws) { for (let i = 0; i < COUNT; i++) ws.send(numbered(i)); } },
    });
    const ws = await open(defer, `ws://${HOST}:${port}/flood`, { inboxHighWaterBytes: 64 * 1024 });
    ws.send('go');
    await waitFor(() => ws.isPaused, TIMEOUT_MS, 'the client to pause reading');
    await sleep(200);
    const received = ws.messagesIn;
    assert.ok(received < 40, `${received} of ${COUNT} messages (10 kB each) taken in against a 64 kB high-water mark`);
    let next = 0;
    for await (const { data, isBinary } of ws.messages()) {
      assert.equal(isBinary, true);
      assert.equal(data.readUInt32BE(0), next, 'in order');
      assert.ok(data.equals(numbered(next)));
      if (++next === COUNT) break;
    }
    assert.equal(ws.isPaused, false, 'reading resumed once the loop drained the inbox');
    assert.equal(ws.messagesIn, COUNT);
  });

  it('delivers compressed messages (permessage-deflate) through the iterator too', async (t) => {
    const defer = cleanupStack(t);
    const { port } = await startServer(defer, { '/echo': { ...echo, perMessageDeflate: true } });
    const ws = await open(defer, `ws://${HOST}:${port}/echo`, { perMessageDeflate: true, deflateThresholdBytes: 0 });
    assert.equal(ws.extensions, 'permessage-deflate');
    const big = 'z'.repeat(50_000);
    ws.send('small');
    ws.send(big);
    const iterator = ws.messages();
    assert.equal((await withTimeout(iterator.next(), TIMEOUT_MS, 'first echo')).value?.data.toString(), 'small');
    assert.equal((await withTimeout(iterator.next(), TIMEOUT_MS, 'second echo')).value?.data.toString(), big);
  });

  it('with a message handler, keeps nothing until messages() is called; then handler and loop both see each message', async (t) => {
    const defer = cleanupStack(t);
    const { port } = await startServer(defer, { '/echo': echo });
    const handled: string[] = [];
    const ws = await open(defer, `ws://${HOST}:${port}/echo`, { handlers: { message(_ws, data) { handled.push(data.toString()); } } });
    ws.send('before');
    await waitFor(() => handled.length === 1, TIMEOUT_MS, 'the first echo');
    const iterator = ws.messages();
    ws.send('after');
    assert.equal((await withTimeout(iterator.next(), TIMEOUT_MS, 'the loop')).value?.data.toString(), 'after', 'the loop starts at messages()');
    assert.deepEqual(handled, ['before', 'after']);
  });

  it('throws TypeError when the connection delivers messages in pieces (messagePieceBytes)', async (t) => {
    const defer = cleanupStack(t);
    const { port } = await startServer(defer, { '/echo': echo });
    const ws = await open(defer, `ws://${HOST}:${port}/echo`, { messagePieceBytes: 1024, handlers: { messagePiece() {} } });
    assert.throws(() => ws.messages(), TypeError);
  });
});

describe('ws.messages() on a server connection', () => {
  it('lets a route iterate its messages from open(), missing none', async (t) => {
    const defer = cleanupStack(t);
    const { port } = await startServer(defer, {
      '/loop': {
        open(ws) {
          void (async () => {
            for await (const { data, isBinary } of ws.messages()) ws.send(data, isBinary);
            // The loop ended: the connection has closed.
          })();
        },
      },
    });
    const ws = await open(defer, `ws://${HOST}:${port}/loop`);
    ws.send('one');
    ws.send(Buffer.from([0, 1, 2]));
    const iterator = ws.messages();
    const first = (await withTimeout(iterator.next(), TIMEOUT_MS, 'first echo')).value!;
    const second = (await withTimeout(iterator.next(), TIMEOUT_MS, 'second echo')).value!;
    assert.deepEqual([first.isBinary, first.data.toString()], [false, 'one']);
    assert.deepEqual([second.isBinary, [...second.data]], [true, [0, 1, 2]]);
  });

  it('pauses reading from a client that floods a slow loop, so the server holds a bounded inbox', async (t) => {
    const defer = cleanupStack(t);
    let serverWs: WebSocket<undefined> | undefined;
    let consumed = 0;
    let release: (() => void) | undefined;
    const gate = new Promise<void>((resolve) => { release = resolve; });
    const { port } = await startServer(defer, {
      '/slow': {
        open(ws) {
          serverWs = ws;
          void (async () => {
            for await (const _message of ws.messages({ inboxHighWaterBytes: 64 * 1024 })) {
              if (consumed++ === 0) await gate; // stuck on the first message until released
            }
          })();
        },
      },
    });
    const ws = await open(defer, `ws://${HOST}:${port}/slow`);
    for (let i = 0; i < 200; i++) ws.send(numbered(i));
    await waitFor(() => serverWs?.isPaused === true, TIMEOUT_MS, 'the server connection to pause reading');
    await sleep(200);
    assert.ok(serverWs!.messagesIn < 40, `the server took in ${serverWs!.messagesIn} of 200 messages while its loop was stuck`);
    release!();
    await waitFor(() => consumed === 200, TIMEOUT_MS, 'the loop to get every message');
    assert.equal(serverWs!.isPaused, false);
  });
});
