// Outgoing flow of the server-side WebSocket: send() reports backpressure and `drain` follows once the peer
// reads again; sends made in one tick leave in one socket write (write batching).
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import * as net from 'node:net';
import { createServer, type WebSocketRoute } from '../../src/server/server.js';
import type { ServerOptions } from '../../src/server/options.js';
import type { WebSocket } from '../../src/transport/websocket.js';
import { Opcode, close as closeFrame, patternBytes, text } from '../_support/frames.js';
import { openRawClient, type RawClient } from '../_support/raw-client.js';
import { cleanupStack, sleep, waitFor } from '../_support/cleanup.js';

const HOST = '127.0.0.1';



interface Started { port: number; client: RawClient; ws: WebSocket<undefined>; drains: () => number }

async function startWithClient(t: TestContext, defer: (cleanup: () => unknown) => void, options: ServerOptions, route: WebSocketRoute<undefined> = {}): Promise<Started> {
  let ws: WebSocket<undefined> | undefined;
  let drainCount = 0;
  const app = createServer({ pingIntervalMs: 0, closeTimeoutMs: 500, ...options }).websocket<undefined>('/ws', {
    ...route,
    open(socket) { ws = socket; },
    drain() { drainCount++; },
  });
  defer(() => app.close());
  const { port } = await app.listen({ port: 0, host: HOST });
  const client = await openRawClient(port, HOST, { path: '/ws' });
  defer(() => client.destroy());
  assert.equal(client.response.statusCode, 101);
  assert.ok(ws !== undefined, 'open ran');
  return { port, client, ws, drains: () => drainCount };
}

describe('WebSocket backpressure', () => {
  it('send() returns false once bufferedAmount is over the limit, and drain follows when the peer reads again', async (t) => {
    const defer = cleanupStack(t);
    const backpressureBytes = 256 * 1024;
    const { client, ws, drains } = await startWithClient(t, defer, { backpressureBytes });
    const message = patternBytes(64 * 1024);
    // The peer stops reading. The kernel's socket buffers absorb a few MB first, so keep sending (after each
    // drain) until a drain no longer comes: then bytes are really stuck in user space.
    client.socket.pause();
    let sent = 0;
    let stalledBufferedAmount = 0;
    const maxBytes = 256 * 1024 * 1024;
    while (stalledBufferedAmount === 0) {
      assert.ok(sent * message.length < maxBytes, `sent ${sent * message.length} bytes to a peer that does not read without ever stalling`);
      let accepted = true;
      while (accepted) {
        accepted = ws.send(message);
        sent++;
      }
      assert.ok(ws.bufferedAmount > backpressureBytes, `send() returned false with bufferedAmount ${ws.bufferedAmount} <= ${backpressureBytes}`);
      const drainsBefore = drains();
      const deadline = Date.now() + 300;
      while (drains() === drainsBefore && Date.now() < deadline) await sleep(5);
      if (drains() === drainsBefore) stalledBufferedAmount = ws.bufferedAmount;
    }
    assert.ok(stalledBufferedAmount > backpressureBytes, `bufferedAmount ${stalledBufferedAmount} did not grow over the limit`);
    const drainsBeforeResume = drains();

    client.socket.resume();
    await waitFor(() => drains() > drainsBeforeResume, 10_000, 'drain after the peer resumed reading');
    assert.ok(ws.bufferedAmount < stalledBufferedAmount, `bufferedAmount ${ws.bufferedAmount} did not fall below ${stalledBufferedAmount}`);
    await waitFor(() => ws.bufferedAmount === 0, 10_000, 'the buffer to empty');
    assert.equal(ws.send('after drain'), true, 'send() accepts without backpressure once drained');

    // Nothing was lost: every message sent reaches the peer, in order, whole.
    await waitFor(() => client.receivedFrames.length >= sent + 1, 10_000, `all ${sent + 1} messages to arrive`);
    const frames = client.receivedFrames.slice(0, sent);
    assert.ok(frames.every((frame) => frame.opcode === Opcode.binary && frame.payload.equals(message)), 'a message arrived changed');
    assert.equal(client.receivedFrames[sent]?.payload.toString(), 'after drain');
  });

  it('calls drain after send() reported backpressure even when the socket itself never filled', {
  }, async (t) => {
    const defer = cleanupStack(t);
    const { client, ws, drains } = await startWithClient(t, defer, { backpressureBytes: 100 });
    assert.equal(ws.send(Buffer.alloc(1000)), false, 'a 1000-byte message is over a 100-byte limit');
    const message = await client.nextMessage(3000);
    assert.equal(message.payload.length, 1000);
    await waitFor(() => drains() > 0, 2000, 'drain once the buffered message was written');
  });
});

/** Counts writes made on server-side sockets (local port = the server's), by patching net.Socket's prototype. */
function spyOnServerSocketWrites(t: TestContext, port: number): { writes: number; handleWrites: number; reset(): void } {
  const proto = net.Socket.prototype as unknown as Record<'write' | '_write' | '_writev', (...args: unknown[]) => unknown>;
  const owned = {
    write: Object.prototype.hasOwnProperty.call(proto, 'write'),
    _write: Object.prototype.hasOwnProperty.call(proto, '_write'),
    _writev: Object.prototype.hasOwnProperty.call(proto, '_writev'),
  };
  const originals = { write: proto.write, _write: proto._write, _writev: proto._writev };
  const counts = { writes: 0, handleWrites: 0, reset(): void { counts.writes = 0; counts.handleWrites = 0; } };
  const isServerSide = (socket: net.Socket): boolean => socket.localPort === port;
  proto.write = function (this: net.Socket, ...args: unknown[]) {
    if (isServerSide(this)) counts.writes++;
    return originals.write.apply(this, args);
  };
  proto._write = function (this: net.Socket, ...args: unknown[]) {
    if (isServerSide(this)) counts.handleWrites++;
    return originals._write.apply(this, args);
  };
  proto._writev = function (this: net.Socket, ...args: unknown[]) {
    if (isServerSide(this)) counts.handleWrites++;
    return originals._writev.apply(this, args);
  };
  t.after(() => {
    for (const key of ['write', '_write', '_writev'] as const) {
      if (owned[key]) proto[key] = originals[key];
      else delete proto[key];
    }
  });
  return counts;
}

describe('WebSocket write batching', () => {
  async function burst(t: TestContext, messageBytes: number, fromHandler: boolean): Promise<{ writes: number; handleWrites: number }> {
    const defer = cleanupStack(t);
    const count = 100;
    const payloads = Array.from({ length: count }, (_, i) => `${String(i).padStart(3, '0')}:${'x'.repeat(messageBytes - 4)}`);
    const { port, client, ws } = await startWithClient(t, defer, {}, {
      message(socket, data) {
        if (data.toString() === 'burst') for (const payload of payloads) socket.send(payload);
      },
    });
    const spy = spyOnServerSocketWrites(t, port);
    if (fromHandler) {
      await client.send(text('burst'));
    } else {
      spy.reset();
      for (const payload of payloads) ws.send(payload); // one synchronous loop outside any handler
    }
    for (const payload of payloads) {
      const message = await client.nextMessage(5000);
      assert.equal(message.opcode, Opcode.text);
      assert.equal(message.payload.toString(), payload, 'messages arrive whole and in order');
    }
    // The spy itself works: the burst did go through it.
    assert.ok(spy.writes >= 1 && spy.handleWrites >= 1, `the write spy saw nothing (writes ${spy.writes}, handle writes ${spy.handleWrites})`);
    return { writes: spy.writes, handleWrites: spy.handleWrites };
  }

  it('writes 100 small sends made in one synchronous loop with at most a few socket writes', async (t) => {
    const { writes, handleWrites } = await burst(t, 32, false);
    assert.ok(writes <= 3, `100 sends caused ${writes} socket.write calls`);
    assert.ok(handleWrites <= 3, `100 sends caused ${handleWrites} writes to the TCP handle`);
  });

  it('writes 100 small sends made inside a message handler with at most a few socket writes', async (t) => {
    const { writes, handleWrites } = await burst(t, 32, true);
    assert.ok(writes <= 3, `100 sends caused ${writes} socket.write calls`);
    assert.ok(handleWrites <= 3, `100 sends caused ${handleWrites} writes to the TCP handle`);
  });

  it('hands 100 larger sends (100 KiB in all) to the TCP handle in at most a few writes', async (t) => {
    const { handleWrites } = await burst(t, 1024, false);
    assert.ok(handleWrites <= 3, `100 sends of 1 KiB caused ${handleWrites} writes to the TCP handle`);
  });
});

describe('WebSocket send() after the connection ended', () => {
  async function closedServerSocket(t: TestContext, end: (client: RawClient) => Promise<void>): Promise<WebSocket<undefined>> {
    const defer = cleanupStack(t);
    let closed = false;
    const { client, ws } = await startWithClient(t, defer, {}, { close() { closed = true; } });
    await end(client);
    await waitFor(() => closed, 3000, 'the server-side close handler');
    return ws;
  }

  it('returns false after a clean closing handshake', async (t) => {
    const ws = await closedServerSocket(t, async (client) => {
      await client.send(closeFrame(1000));
      await client.expectClose(3000);
    });
    assert.equal(ws.send('too late'), false);
    assert.equal(ws.ping(), false);
  });

  it('returns false after the peer dropped the TCP connection without a close frame', {
  }, async (t) => {
    const ws = await closedServerSocket(t, async (client) => { client.destroy(); });
    assert.equal(ws.readyState, 3);
    assert.equal(ws.send('too late'), false);
    assert.equal(ws.ping(), false);
  });
});
