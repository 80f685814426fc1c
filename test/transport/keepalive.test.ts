// Keep-alive and idle timers of the server-side WebSocket (src/transport/websocket.ts driven by the shared sweep
// in src/transport/timers.ts), observed from raw `net` peers with short configured intervals. Bounds on elapsed
// time are generous: they prove a timer fired, not how fast the machine is.
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Switchyard, type WebSocketRoute } from '../../src/server/server.js';
import type { ServerOptions } from '../../src/server/options.js';
import type { WebSocket } from '../../src/transport/websocket.js';
import { ReadyState } from '../../src/protocol/constants.js';
import { Opcode, close, describeFrame, pong, text } from '../_support/frames.js';
import type { ServerFrame } from '../_support/frames.js';
import { openRawClient, type RawClient } from '../_support/raw-client.js';
import { cleanupStack, sleep, waitFor } from '../_support/cleanup.js';

const HOST = '127.0.0.1';


interface Started {
  app: Switchyard;
  port: number;
  defer: (cleanup: () => unknown) => void;
  /** Server-side WebSockets in the order they opened. */
  opened: Array<WebSocket<undefined>>;
  closes: Array<{ code: number; reason: string; wasClean: boolean }>;
}

async function start(t: TestContext, options: ServerOptions, route: WebSocketRoute<undefined> = {}): Promise<Started> {
  const defer = cleanupStack(t);
  const opened: Array<WebSocket<undefined>> = [];
  const closes: Started['closes'] = [];
  const app = createServer(options).websocket<undefined>('/ws', {
    message(ws, data, isBinary) { ws.send(data, isBinary); },
    ...route,
    open(ws) { opened.push(ws); },
    close(_ws, code, reason, wasClean) { closes.push({ code, reason, wasClean }); },
  });
  defer(() => app.close());
  const { port } = await app.listen({ port: 0, host: HOST });
  return { app, port, defer, opened, closes };
}

async function rawWebSocket(started: Started): Promise<RawClient> {
  const client = await openRawClient(started.port, HOST, { path: '/ws' });
  started.defer(() => client.destroy());
  assert.equal(client.response.statusCode, 101, client.response.raw);
  return client;
}


/**
 * Reads frames for `durationMs`, answering every ping with a matching pong when `answerPings` is set, and
 * returns what arrived. Fails if the server closes the TCP connection meanwhile.
 */
async function readFor(client: RawClient, durationMs: number, answerPings: boolean): Promise<ServerFrame[]> {
  const frames: ServerFrame[] = [];
  const deadline = Date.now() + durationMs;
  while (Date.now() < deadline) {
    let frame: ServerFrame;
    try {
      frame = await client.nextFrame(Math.max(1, deadline - Date.now()));
    } catch (error) {
      if (client.tcpClosed) throw error;
      break; // no frame before the deadline
    }
    frames.push(frame);
    if (answerPings && frame.opcode === Opcode.ping) await client.send(pong(frame.payload));
  }
  return frames;
}

describe('WebSocket keep-alive (pingIntervalMs)', () => {
  it('pings a silent peer, then fails it with 1011 and closes TCP within a few intervals', async (t) => {
    const intervalMs = 150;
    const started = await start(t, { pingIntervalMs: intervalMs, closeTimeoutMs: 1000 });
    const client = await rawWebSocket(started);
    const startedAt = Date.now();

    const first = await client.nextFrame(intervalMs * 20);
    assert.equal(first.opcode, Opcode.ping, `expected a keep-alive ping, got ${describeFrame(first)}`);
    // The peer never answers (and never sends anything): the next interval in silence fails it.
    const result = await client.expectClose(intervalMs * 20);
    const elapsedMs = Date.now() - startedAt;
    assert.equal(result.code, 1011);
    assert.equal(result.tcpClosed, true, 'the server closed the TCP connection after failing the peer');
    assert.deepEqual(result.framesAfterClose, []);
    assert.ok(elapsedMs >= intervalMs, `failed after ${elapsedMs} ms, before one interval had passed`);
    assert.ok(elapsedMs < intervalMs * 20, `failed only after ${elapsedMs} ms`);
    await waitFor(() => started.closes.length === 1, 3000, 'the close handler');
    assert.deepEqual(started.closes[0], { code: 1011, reason: 'keepalive ping timeout', wasClean: false });
  });

  it('keeps a peer that answers every ping open for several intervals and measures latencyMs', async (t) => {
    const intervalMs = 100;
    const started = await start(t, { pingIntervalMs: intervalMs });
    const client = await rawWebSocket(started);
    const ws = started.opened[0]!;
    assert.equal(ws.latencyMs, -1, 'latencyMs is -1 before the first answered ping');

    const frames = await readFor(client, intervalMs * 8, true);
    const pings = frames.filter((frame) => frame.opcode === Opcode.ping);
    assert.ok(pings.length >= 3, `expected several pings in ${intervalMs * 8} ms, got ${pings.length}`);
    assert.deepEqual(frames.filter((frame) => frame.opcode !== Opcode.ping).map(describeFrame), [], 'only pings arrive');
    assert.equal(client.tcpClosed, false);
    assert.equal(ws.readyState, ReadyState.Open);
    assert.ok(ws.latencyMs >= 0, `latencyMs should be measured, got ${ws.latencyMs}`);
    // The connection still carries data (keep-alive pings may still arrive first: answer them).
    await client.send(text('alive'));
    let frame = await client.nextFrame(3000);
    while (frame.opcode === Opcode.ping) {
      await client.send(pong(frame.payload));
      frame = await client.nextFrame(3000);
    }
    assert.equal(frame.opcode, Opcode.text, `expected the echo, got ${describeFrame(frame)}`);
    assert.equal(frame.payload.toString(), 'alive');
    assert.equal(started.closes.length, 0);
  });

  it('counts any traffic from the peer as a sign of life (a chatty peer that never pongs stays open)', async (t) => {
    const intervalMs = 100;
    const started = await start(t, { pingIntervalMs: intervalMs });
    const client = await rawWebSocket(started);
    const until = Date.now() + intervalMs * 6;
    while (Date.now() < until) {
      await client.send(text('tick'));
      await sleep(intervalMs / 3);
    }
    assert.equal(client.tcpClosed, false);
    assert.ok(!client.receivedFrames.some((frame) => frame.opcode === Opcode.close), 'the server must not close a peer that keeps talking');
  });

  it('sends no pings when pingIntervalMs is 0', async (t) => {
    const started = await start(t, { pingIntervalMs: 0, idleTimeoutMs: 0 });
    const client = await rawWebSocket(started);
    await client.expectSilence(400);
  });

  it('honours a route-level pingIntervalMs at that interval\'s resolution', {
  }, async (t) => {
    const defer = cleanupStack(t);
    const app = createServer({}).websocket('/ws', { pingIntervalMs: 50 });
    defer(() => app.close());
    const { port } = await app.listen({ port: 0, host: HOST });
    const client = await openRawClient(port, HOST, { path: '/ws' });
    defer(() => client.destroy());
    const startedAt = Date.now();
    const frame = await client.nextFrame(3000);
    assert.equal(frame.opcode, Opcode.ping);
    const elapsedMs = Date.now() - startedAt;
    assert.ok(elapsedMs < 600, `a 50 ms route ping interval produced its first ping only after ${elapsedMs} ms`);
  });
});

describe('WebSocket idle timeout (idleTimeoutMs)', () => {
  it('closes with 1001 once no message has passed for idleTimeoutMs, and not while messages flow', async (t) => {
    const idleMs = 200;
    const started = await start(t, { pingIntervalMs: 0, idleTimeoutMs: idleMs });
    const client = await rawWebSocket(started);

    // Messages every third of the timeout keep the connection alive well past the timeout.
    const activeUntil = Date.now() + idleMs * 3;
    let count = 0;
    while (Date.now() < activeUntil) {
      await client.send(text(`message ${count}`));
      const echo = await client.nextMessage(3000);
      assert.equal(echo.payload.toString(), `message ${count}`, 'the connection was closed while messages flowed');
      count++;
      await sleep(idleMs / 3);
    }

    const quietSince = Date.now();
    const frame = await client.nextFrame(idleMs * 15);
    const elapsedMs = Date.now() - quietSince;
    assert.equal(frame.opcode, Opcode.close, `expected the idle close, got ${describeFrame(frame)}`);
    assert.equal(frame.payload.readUInt16BE(0), 1001);
    assert.ok(elapsedMs < idleMs * 15, `idle close after ${elapsedMs} ms`);
    // Finish the closing handshake; the server then closes TCP (RFC 6455 §7.1.1).
    await client.send(close(1001));
    await Promise.race([client.closed, sleep(3000).then(() => { throw new Error('no TCP close after the closing handshake'); })]);
    await waitFor(() => started.closes.length === 1, 3000, 'the close handler');
    assert.equal(started.closes[0]?.code, 1001);
    assert.equal(started.closes[0]?.wasClean, true);
    assert.equal(started.app.connectionCount, 0);
  });

  it('does not count pings and pongs as messages', async (t) => {
    const idleMs = 300;
    // Pings every 60 ms, answered: the peer is alive but silent at the message level, so idle still fires.
    const started = await start(t, { pingIntervalMs: 60, idleTimeoutMs: idleMs });
    const client = await rawWebSocket(started);
    const deadline = Date.now() + idleMs * 15;
    let closeFrame: ServerFrame | undefined;
    while (closeFrame === undefined && Date.now() < deadline) {
      const frame = await client.nextFrame(Math.max(1, deadline - Date.now()));
      if (frame.opcode === Opcode.ping) await client.send(pong(frame.payload));
      else closeFrame = frame;
    }
    assert.ok(closeFrame !== undefined, 'no idle close arrived');
    assert.equal(closeFrame.opcode, Opcode.close);
    assert.equal(closeFrame.payload.readUInt16BE(0), 1001);
  });
});
