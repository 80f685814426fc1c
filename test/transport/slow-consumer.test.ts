// Slow consumers (issue 3, item 6): a raw peer that stops reading, a route with a small maxBackpressureBytes, and
// each slowConsumerPolicy. `close` fails the connection with 1008 when a send would pass the limit; `drop-newest`
// refuses (and reports) each message past it; `keep-latest` parks only the newest published message per topic.
// Whatever the policy, the server's unsent bytes stay bounded. The kernel's socket buffers absorb a few MB
// before anything stays in user space, so the tests send until the limit is really reached.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { createServer, type Switchyard, type WebSocketRoute } from '../../src/server/server.js';
import type { WebSocket } from '../../src/transport/websocket.js';
import { ReadyState } from '../../src/protocol/constants.js';
import { Opcode, describeFrame } from '../_support/frames.js';
import type { ServerFrame } from '../_support/frames.js';
import { openRawClient, type RawClient } from '../_support/raw-client.js';
import { cleanupStack, waitFor } from '../_support/cleanup.js';

const HOST = '127.0.0.1';
const TIMEOUT_MS = 5000;
const LIMIT = 256 * 1024;
/** Sending more than this to a peer that does not read without reaching the limit means the limit does nothing. */
const MAX_BYTES_TO_FILL = 128 * 1024 * 1024;
/** A frame header is at most 10 bytes (server frames are unmasked). */
const MAX_HEADER_BYTES = 10;
type Defer = (cleanup: () => unknown) => void;

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

interface Drop { ws: WebSocket<undefined>; bytes: number; topic: string | undefined }

interface Started {
  app: Switchyard;
  port: number;
  defer: Defer;
  opened: Array<WebSocket<undefined>>;
  drops: Drop[];
  closes: Array<{ ws: WebSocket<undefined>; code: number; wasClean: boolean; atMs: number }>;
}

async function start(t: import('node:test').TestContext, route: WebSocketRoute<undefined>, closeTimeoutMs = 10_000): Promise<Started> {
  const defer = cleanupStack(t);
  const opened: Started['opened'] = [];
  const drops: Drop[] = [];
  const closes: Started['closes'] = [];
  const app = createServer({ pingIntervalMs: 0, closeTimeoutMs, shutdownTimeoutMs: 500 }).websocket<undefined>('/feed', {
    maxBackpressureBytes: LIMIT,
    ...route,
    open(ws) { opened.push(ws); route.open?.(ws); },
    dropped(ws, bytes, topic) { drops.push({ ws, bytes, topic }); },
    close(ws, code, _reason, wasClean) { closes.push({ ws, code, wasClean, atMs: Date.now() }); },
  });
  defer(() => app.close());
  const { port } = await app.listen({ port: 0, host: HOST });
  return { app, port, defer, opened, drops, closes };
}

async function connect(started: Started): Promise<{ client: RawClient; ws: WebSocket<undefined> }> {
  const before = started.opened.length;
  const client = await openRawClient(started.port, HOST, { path: '/feed' });
  started.defer(() => client.destroy());
  assert.equal(client.response.statusCode, 101, client.response.raw);
  assert.equal(started.opened.length, before + 1);
  return { client, ws: started.opened[before]! };
}

/** A message of `size` bytes that starts with its sequence number ("000042:"). */
function numbered(seq: number, size: number, prefix = ''): string {
  const head = `${prefix}${String(seq).padStart(6, '0')}:`;
  return head + 'x'.repeat(size - head.length);
}

function seqOf(payload: Buffer): number {
  return Number(/(\d{6}):/.exec(payload.subarray(0, 16).toString())?.[1] ?? Number.NaN);
}

/** Reads every frame until a close frame or until `count` data messages arrived. */
async function readDataFrames(client: RawClient, until: (frames: ServerFrame[]) => boolean): Promise<ServerFrame[]> {
  const frames: ServerFrame[] = [];
  while (!until(frames)) frames.push(await client.nextFrame(TIMEOUT_MS));
  return frames;
}

describe('slowConsumerPolicy "close"', () => {
  const size = 16 * 1024;

  /** Sends numbered messages to a peer that does not read until one is refused; returns what happened. */
  async function sendUntilRefused(ws: WebSocket<undefined>): Promise<{ accepted: number; bufferedBeforeRefusal: number }> {
    for (let seq = 0; ; seq++) {
      assert.ok(seq * size < MAX_BYTES_TO_FILL, `sent ${seq * size} bytes to a peer that does not read and was never refused`);
      const before = ws.bufferedAmount;
      if (!ws.send(numbered(seq, size))) return { accepted: seq, bufferedBeforeRefusal: before };
      assert.ok(before + size <= LIMIT, `a send that passes the limit was accepted (${before} + ${size} > ${LIMIT})`);
      if (seq % 8 === 7) await nextTurn(); // let the batch reach the kernel, as a real server's sends would
    }
  }

  it('fails the connection with 1008 once a send would pass maxBackpressureBytes, and reports the dropped bytes', async (t) => {
    const started = await start(t, { slowConsumerPolicy: 'close' });
    const { client, ws } = await connect(started);
    client.socket.pause();

    const { accepted, bufferedBeforeRefusal } = await sendUntilRefused(ws);
    assert.ok(bufferedBeforeRefusal + size > LIMIT, `refused at ${bufferedBeforeRefusal} unsent bytes, which left room for ${size} more`);
    assert.deepEqual(started.drops.map(({ bytes, topic }) => ({ bytes, topic })), [{ bytes: size, topic: undefined }]);
    assert.equal(started.drops[0]!.ws, ws);
    assert.equal(ws.droppedMessages, 1);
    assert.notEqual(ws.readyState, ReadyState.Open, 'the connection is closing');
    assert.equal(ws.send('after the failure'), false);
    assert.equal(started.drops.length, 1, 'sends after the failure are refused without being reported as drops');
    assert.ok(ws.bufferedAmount <= LIMIT + MAX_HEADER_BYTES + 125, `bufferedAmount ${ws.bufferedAmount} after the failure`);

    // The peer reads again: it gets every accepted message, in order, then the 1008 close, then TCP closes.
    client.socket.resume();
    const frames = await readDataFrames(client, (seen) => seen.at(-1)?.opcode === Opcode.close);
    const data = frames.slice(0, -1);
    assert.equal(data.length, accepted, `${accepted} messages were accepted`);
    data.forEach((frame, index) => assert.equal(seqOf(frame.payload), index, `message ${index} in order`));
    const closeFrame = frames.at(-1)!;
    assert.equal(closeFrame.payload.readUInt16BE(0), 1008, describeFrame(closeFrame));
    assert.match(closeFrame.payload.subarray(2).toString(), /slow consumer/);
    await waitFor(() => client.tcpClosed, TIMEOUT_MS, 'the server to close TCP after failing the connection');
    await waitFor(() => started.closes.length === 1, TIMEOUT_MS, 'the close handler');
    assert.equal(started.closes[0]!.code, 1008);
    assert.equal(started.closes[0]!.wasClean, false);
    assert.equal(started.app.connectionCount, 0);
  });

  it('drops a failed slow consumer that never reads again after closeTimeoutMs', async (t) => {
    const closeTimeoutMs = 300;
    const started = await start(t, { slowConsumerPolicy: 'close' }, closeTimeoutMs);
    const { client, ws } = await connect(started);
    client.socket.pause();
    await sendUntilRefused(ws);
    const refusedAt = Date.now();
    await waitFor(() => started.closes.length === 1, closeTimeoutMs + TIMEOUT_MS, 'the server to drop the failed peer');
    const elapsedMs = started.closes[0]!.atMs - refusedAt;
    assert.ok(elapsedMs >= closeTimeoutMs * 0.5, `dropped after ${elapsedMs} ms, before closeTimeoutMs ${closeTimeoutMs}`);
    assert.equal(started.closes[0]!.code, 1008);
    assert.equal(started.app.connectionCount, 0, 'the megabytes queued for it are released with the connection');
  });
});

describe('slowConsumerPolicy "drop-newest"', () => {
  it('refuses each send past the limit, reports each drop, and delivers exactly the accepted messages', async (t) => {
    const size = 16 * 1024;
    const started = await start(t, { slowConsumerPolicy: 'drop-newest' });
    const { client, ws } = await connect(started);
    client.socket.pause();

    const accepted: number[] = [];
    const refused: number[] = [];
    let maxBuffered = 0;
    for (let seq = 0; refused.length < 50; seq++) {
      assert.ok(seq * size < MAX_BYTES_TO_FILL, `sent ${seq * size} bytes to a peer that does not read and nothing was dropped`);
      const before = ws.bufferedAmount;
      const ok = ws.send(numbered(seq, size));
      if (ok) {
        assert.ok(before + size <= LIMIT, `accepted a send past the limit (${before} + ${size} > ${LIMIT})`);
        accepted.push(seq);
      } else {
        assert.ok(before + size > LIMIT, `refused a send that fit (${before} + ${size} <= ${LIMIT})`);
        refused.push(seq);
      }
      maxBuffered = Math.max(maxBuffered, ws.bufferedAmount);
      if (seq % 8 === 7) await nextTurn();
    }
    assert.ok(maxBuffered <= LIMIT + size + MAX_HEADER_BYTES, `bufferedAmount reached ${maxBuffered}, more than one message over ${LIMIT}`);
    assert.equal(started.drops.length, refused.length, 'dropped is called once per refused send');
    assert.ok(started.drops.every((drop) => drop.ws === ws && drop.bytes === size && drop.topic === undefined));
    assert.equal(ws.droppedMessages, refused.length);
    assert.equal(ws.readyState, ReadyState.Open, 'drop-newest keeps the connection open');

    client.socket.resume();
    const frames = await readDataFrames(client, (seen) => seen.length === accepted.length);
    assert.deepEqual(frames.map((frame) => seqOf(frame.payload)), accepted, 'the peer gets exactly the accepted messages, in order');
    await client.expectSilence(100);
    // Once the peer reads again, sends go through.
    await waitFor(() => ws.bufferedAmount === 0, TIMEOUT_MS, 'the backlog to drain');
    assert.equal(ws.send('caught up'), true);
    assert.equal((await client.nextMessage(TIMEOUT_MS)).payload.toString(), 'caught up');
    assert.equal(started.closes.length, 0);
  });
});

describe('slowConsumerPolicy "keep-latest"', () => {
  it('parks only the latest message per topic for a slow subscriber, bounded, while a fast one gets everything', async (t) => {
    const size = 2048;
    const total = 10_000;
    const topics = ['a', 'b'] as const;
    const started = await start(t, {
      slowConsumerPolicy: 'keep-latest',
      open(ws) { for (const topic of topics) ws.subscribe(topic); },
    });
    const slow = await connect(started);
    slow.client.socket.pause();
    const fast = await connect(started);
    // The fast subscriber reads as frames arrive, on its own.
    const fastSeen = new Map<string, number[]>(topics.map((topic) => [topic, []]));
    let fastCount = 0;
    let fastReading = true;
    const fastReader = (async () => {
      while (fastReading && fastCount < total) {
        const frame = await fast.client.nextFrame(TIMEOUT_MS);
        const topic = frame.payload.subarray(0, 1).toString();
        fastSeen.get(topic)?.push(seqOf(frame.payload));
        fastCount++;
      }
    })();
    fastReader.catch(() => { /* awaited below; a failure elsewhere must not become an unhandled rejection */ });
    started.defer(() => { fastReading = false; });

    const lastSeq = new Map<string, number>();
    let maxSlowBuffered = 0;
    const batch = 32; // 64 KiB a batch: the fast subscriber never gets near the limit
    for (let seq = 0; seq < total; seq++) {
      const topic = topics[seq % 2]!;
      assert.equal(started.app.publish(topic, numbered(seq, size, topic)), 2);
      lastSeq.set(topic, seq);
      if (seq % batch === batch - 1 || seq === total - 1) {
        maxSlowBuffered = Math.max(maxSlowBuffered, slow.ws.bufferedAmount);
        await waitFor(() => fast.ws.bufferedAmount === 0, TIMEOUT_MS, 'the fast subscriber to keep up');
      }
    }
    assert.ok(maxSlowBuffered <= LIMIT + size + MAX_HEADER_BYTES, `the slow subscriber's unsent bytes reached ${maxSlowBuffered}`);
    assert.ok(slow.ws.droppedMessages > 0, 'the slow subscriber reached the limit (nothing was dropped)');

    await fastReader;
    assert.equal(fastCount, total, 'the fast subscriber received every message');
    for (const topic of topics) {
      const seqs = fastSeen.get(topic)!;
      assert.deepEqual(seqs, Array.from({ length: total / 2 }, (_, i) => i * 2 + (topic === 'a' ? 0 : 1)), `fast subscriber, topic ${topic}, in order`);
    }
    assert.equal(fast.ws.droppedMessages, 0);

    // The slow subscriber reads again: per topic, the messages sent before the limit, then only that topic's latest.
    slow.client.socket.resume();
    const slowSeen = new Map<string, number[]>(topics.map((topic) => [topic, []]));
    const gotLatest = (): boolean => topics.every((topic) => slowSeen.get(topic)!.at(-1) === lastSeq.get(topic));
    let slowCount = 0;
    while (!gotLatest()) {
      const frame = await slow.client.nextFrame(TIMEOUT_MS);
      assert.equal(frame.opcode, Opcode.text, describeFrame(frame));
      slowSeen.get(frame.payload.subarray(0, 1).toString())!.push(seqOf(frame.payload));
      slowCount++;
    }
    await slow.client.expectSilence(200);
    for (const topic of topics) {
      const seqs = slowSeen.get(topic)!;
      const prefix = seqs.slice(0, -1);
      const first = topic === 'a' ? 0 : 1;
      assert.deepEqual(prefix, Array.from({ length: prefix.length }, (_, i) => first + 2 * i), `topic ${topic}: an unbroken run from the start`);
      assert.equal(seqs.at(-1), lastSeq.get(topic), `topic ${topic}: then its latest message`);
      assert.ok(prefix.length < total / 2 - 1, `topic ${topic}: older parked messages were dropped`);
    }
    const slowDrops = started.drops.filter((drop) => drop.ws === slow.ws);
    assert.equal(slow.ws.droppedMessages, total - slowCount, 'every message not delivered is counted as dropped');
    assert.equal(slowDrops.length, total - slowCount, 'dropped is called for each');
    assert.ok(slowDrops.every((drop) => (drop.topic === 'a' || drop.topic === 'b') && drop.bytes >= size && drop.bytes <= size + MAX_HEADER_BYTES));
    assert.equal(started.closes.length, 0, 'keep-latest closes nobody');
    // Caught up: publishing reaches it directly again.
    await waitFor(() => slow.ws.bufferedAmount === 0, TIMEOUT_MS, 'the slow backlog to drain');
    started.app.publish('a', numbered(total, size, 'a'));
    assert.equal(seqOf((await slow.client.nextMessage(TIMEOUT_MS)).payload), total);
  });
});
