// permessage-deflate on real sockets (RFC 7692): an in-process server with perMessageDeflate, our own client, and
// a byte-level peer that negotiates the extension by sending the header itself, writes RSV1 frames it compressed
// with node:zlib and inflates the server's with node:zlib (never with src/'s codec). Proves message order across
// asynchronous zlib work, the size threshold, shared compression for publish, bounded unsent bytes, UTF-8 and size
// checks after inflation, and that a connection's zlib contexts are freed when it closes.
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { constants, createInflateRaw, deflateRawSync, type InflateRaw } from 'node:zlib';
import { connect } from '../../src/client/connect.js';
import { codecStats, PerMessageDeflate } from '../../src/codec/permessage-deflate.js';
import { ReadyState } from '../../src/protocol/constants.js';
import { createServer, type Switchyard, type WebSocketRoute } from '../../src/server/server.js';
import type { ServerOptions } from '../../src/server/options.js';
import type { WebSocket } from '../../src/transport/websocket.js';
import { cleanupStack, sleep } from '../_support/cleanup.js';
import { Opcode, describeFrame, maskedFrame, patternBytes, type ServerFrame } from '../_support/frames.js';
import { openRawClient, type RawClient } from '../_support/raw-client.js';

const HOST = '127.0.0.1';
const WAIT_MS = 10_000;
const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);
type Defer = (cleanup: () => unknown) => void;

async function waitFor(condition: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(2);
  }
}

/** What a peer puts in a compressed frame: raw DEFLATE, sync-flushed, trailer removed (RFC 7692 §7.2.1). */
function deflatePayload(data: string | Uint8Array): Buffer {
  const out = deflateRawSync(Buffer.from(data), { finishFlush: constants.Z_SYNC_FLUSH });
  return out.subarray(0, out.length - 4);
}

/** zlib's streaming inflater, context kept across messages (valid whatever the server's context takeover). */
class OracleInflater {
  readonly #zlib: InflateRaw = createInflateRaw();
  #output: Buffer[] = [];
  #error: Error | undefined;

  constructor() {
    this.#zlib.on('data', (chunk: Buffer) => this.#output.push(chunk));
    this.#zlib.on('error', (error) => { this.#error = error; });
  }

  inflate(payload: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.#zlib.write(Buffer.concat([payload, TRAILER]));
      this.#zlib.flush(constants.Z_SYNC_FLUSH, () => {
        if (this.#error !== undefined) return reject(this.#error);
        const message = Buffer.concat(this.#output);
        this.#output = [];
        resolve(message);
      });
    });
  }

  close(): void {
    this.#zlib.close();
  }
}

interface PeerMessage {
  opcode: number;
  /** RSV1 was set on the first frame. */
  compressed: boolean;
  /** The message as sent by the application (inflated when compressed). */
  data: Buffer;
  frames: ServerFrame[];
}

/** A byte-level client that negotiated permessage-deflate: reads RSV1 frames where RFC 7692 allows them. */
class DeflatePeer {
  readonly raw: RawClient;
  readonly #inflater = new OracleInflater();
  #cursor = 0;

  constructor(raw: RawClient) {
    this.raw = raw;
  }

  /** The Sec-WebSocket-Extensions the server answered with (undefined: it declined). */
  get extensions(): string | undefined {
    return this.raw.response.headers.get('sec-websocket-extensions');
  }

  async nextFrame(ms = WAIT_MS): Promise<ServerFrame> {
    const deadline = Date.now() + ms;
    while (this.raw.receivedFrames.length <= this.#cursor) {
      if (this.raw.tcpClosed) throw new Error(`the server closed TCP without another frame (got ${this.raw.receivedFrames.map(describeFrame).join('; ')})`);
      if (Date.now() > deadline) throw new Error(`no frame within ${ms} ms`);
      await sleep(2);
    }
    const frame = this.raw.receivedFrames[this.#cursor++]!;
    assert.equal(frame.masked, false, `RFC 6455 §5.1: the server masked ${describeFrame(frame)}`);
    assert.equal(frame.rsv & 0b011, 0, `RSV2/RSV3 set: ${describeFrame(frame)}`);
    assert.ok(frame.minimalLength, `non-minimal length: ${describeFrame(frame)}`);
    return frame;
  }

  /** The next data message, reassembled and inflated; RSV1 only on its first frame (RFC 7692 §6.1). */
  async nextMessage(ms = WAIT_MS): Promise<PeerMessage> {
    const frames: ServerFrame[] = [];
    while (true) {
      const frame = await this.nextFrame(ms);
      assert.ok(frame.opcode < 8, `expected a data frame, got ${describeFrame(frame)}`);
      if (frames.length > 0) assert.equal(frame.rsv, 0, `RSV1 on a continuation frame: ${describeFrame(frame)}`);
      frames.push(frame);
      if (frame.fin) break;
    }
    const payload = Buffer.concat(frames.map((f) => f.payload));
    const compressed = (frames[0]!.rsv & 0b100) !== 0;
    return { opcode: frames[0]!.opcode, compressed, data: compressed ? await this.#inflater.inflate(payload) : payload, frames };
  }

  /** Inflates one compressed payload with the peer's (context-keeping) oracle inflater. */
  inflate(payload: Buffer): Promise<Buffer> {
    return this.#inflater.inflate(payload);
  }

  /** Waits for the server's close frame and the end of TCP; returns the close code. */
  async expectClose(ms = WAIT_MS): Promise<number | undefined> {
    const frame = await this.nextFrame(ms);
    assert.equal(frame.opcode, Opcode.close, `expected a close frame, got ${describeFrame(frame)}`);
    await waitFor(() => this.raw.tcpClosed, 'the server to close TCP', ms);
    return frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : undefined;
  }

  /** Sends one message, compressed (RSV1 on the first frame) or not, in `pieces` frames. */
  send(data: string | Uint8Array, options: { binary?: boolean; compress?: boolean; pieces?: number } = {}): Promise<void> {
    const payload = options.compress === false ? Buffer.from(data) : deflatePayload(data);
    const pieces = Math.max(1, Math.min(options.pieces ?? 1, payload.length));
    const step = Math.ceil(payload.length / pieces);
    const frames: Buffer[] = [];
    for (let i = 0; i < pieces; i++) {
      frames.push(maskedFrame({
        opcode: i === 0 ? (options.binary === true ? Opcode.binary : Opcode.text) : Opcode.continuation,
        payload: payload.subarray(i * step, Math.min(payload.length, (i + 1) * step)),
        fin: i === pieces - 1,
        rsv1: i === 0 && options.compress !== false,
      }));
    }
    return this.raw.send(Buffer.concat(frames));
  }

  destroy(): void {
    this.raw.destroy();
    this.#inflater.close();
  }
}

async function openPeer(defer: Defer, port: number, path: string, offer: string | undefined = 'permessage-deflate; client_max_window_bits'): Promise<DeflatePeer> {
  const raw = await openRawClient(port, HOST, { path, headers: offer === undefined ? {} : { 'Sec-WebSocket-Extensions': offer } });
  const peer = new DeflatePeer(raw);
  defer(() => peer.destroy());
  assert.equal(raw.response.statusCode, 101, raw.response.raw);
  return peer;
}

interface Started {
  app: Switchyard;
  port: number;
  url: string;
  defer: Defer;
  opened: Array<WebSocket<undefined>>;
  closed: Array<{ ws: WebSocket<undefined>; code: number }>;
  errors: Error[];
}

/** A server with one route at /ws (deflate on unless `options` says otherwise). */
async function start(t: TestContext, route: WebSocketRoute<undefined> = {}, options: ServerOptions = {}): Promise<Started> {
  const defer = cleanupStack(t);
  const opened: Started['opened'] = [];
  const closed: Started['closed'] = [];
  const errors: Error[] = [];
  const app = createServer({ perMessageDeflate: true, pingIntervalMs: 0, closeTimeoutMs: 1000, shutdownTimeoutMs: 500, ...options }).websocket<undefined>('/ws', {
    ...route,
    open(ws) { opened.push(ws); route.open?.(ws); },
    close(ws, code, reason, wasClean) { closed.push({ ws, code }); route.close?.(ws, code, reason, wasClean); },
    error(ws, error) { errors.push(error); route.error?.(ws, error); },
  });
  defer(() => app.close());
  const { port } = await app.listen({ port: 0, host: HOST });
  return { app, port, url: `ws://${HOST}:${port}/ws`, defer, opened, closed, errors };
}

const echo: WebSocketRoute<undefined> = { message(ws, data, isBinary) { ws.send(data, isBinary); } };

/** Message `i` of exactly `size` bytes, numbered when there is room. */
function numbered(i: number, size: number, binary: boolean): Buffer {
  const body = binary ? patternBytes(size, i + 1) : Buffer.from('abcdefghij'.repeat(Math.ceil(size / 10) + 1).slice(0, size));
  const head = Buffer.from(`#${i}:`);
  if (size >= head.length) head.copy(body);
  return body;
}

describe('permessage-deflate handshake on the server (RFC 7692 §5)', () => {
  it('answers an offer with Sec-WebSocket-Extensions reflecting the route\'s settings, and both sides report the extension', async (t) => {
    const started = await start(t, { ...echo, deflateServerNoContextTakeover: true, deflateClientMaxWindowBits: 10 });
    const peer = await openPeer(started.defer, started.port, '/ws', 'permessage-deflate; client_max_window_bits');
    assert.equal(peer.extensions, 'permessage-deflate; server_no_context_takeover; client_max_window_bits=10');
    assert.equal(started.opened[0]!.extensions, 'permessage-deflate');

    const client = await connect(started.url, { perMessageDeflate: true });
    started.defer(() => client.terminate());
    assert.equal(client.extensions, 'permessage-deflate');
  });

  it('declines (no header, RSV1 then fails with 1002) when the offer is malformed or the server has deflate off', async (t) => {
    const started = await start(t, echo);
    const bad = await openPeer(started.defer, started.port, '/ws', 'permessage-deflate; server_max_window_bits=8');
    assert.equal(bad.extensions, undefined);
    await bad.send('compressed anyway');
    assert.equal(await bad.expectClose(), 1002);

    const off = await start(t, echo, { perMessageDeflate: false });
    const peer = await openPeer(off.defer, off.port, '/ws');
    assert.equal(peer.extensions, undefined);
    const client = await connect(off.url, { perMessageDeflate: true });
    off.defer(() => client.terminate());
    assert.equal(client.extensions, '', 'our client goes on without compression when the server declines');
  });
});

describe('permessage-deflate: message order around asynchronous zlib work', () => {
  it('keeps the order of 200 messages alternating around the threshold, text and binary, in both directions', async (t) => {
    const THRESHOLD = 256;
    const serverGot: Array<[boolean, string]> = [];
    const started = await start(t, { message(ws, data, isBinary) { serverGot.push([isBinary, data.toString('hex')]); ws.send(data, isBinary); } }, { deflateThresholdBytes: THRESHOLD });
    const clientGot: Array<[boolean, string]> = [];
    const client = await connect(started.url, {
      perMessageDeflate: true, deflateThresholdBytes: THRESHOLD,
      handlers: { message(_ws, data, isBinary) { clientGot.push([isBinary, data.toString('hex')]); } },
    });
    started.defer(() => client.terminate());
    assert.equal(client.extensions, 'permessage-deflate');

    const cycle = [THRESHOLD - 1, THRESHOLD, THRESHOLD + 1, 0, 7, 3000, THRESHOLD - 2, 40_000, 1, 90_000, 100, THRESHOLD + 5];
    const sent: Array<[boolean, string]> = [];
    let compressible = 0;
    const before = { ...codecStats };
    for (let i = 0; i < 200; i++) {
      const size = cycle[i % cycle.length]!;
      const binary = i % 2 === 1;
      const data = numbered(i, size, binary);
      if (size >= THRESHOLD) compressible++;
      sent.push([binary, data.toString('hex')]);
      client.send(binary ? data : data.toString(), binary);
    }
    await waitFor(() => clientGot.length === 200, `200 echoes (got ${clientGot.length})`);
    assert.deepEqual(serverGot, sent, 'the server received every message in order');
    assert.deepEqual(clientGot, sent, 'the client received every echo in order');
    // Each side compressed exactly the messages at or above the threshold, and inflated the other side's.
    assert.equal(codecStats.compressions - before.compressions, 2 * compressible);
    assert.equal(codecStats.decompressions - before.decompressions, 2 * compressible);
  });

  it('keeps order for a byte-level peer mixing compressed, fragmented-compressed and plain messages', async (t) => {
    const started = await start(t, echo, { deflateThresholdBytes: 0 });
    const peer = await openPeer(started.defer, started.port, '/ws');
    const messages: Array<{ data: Buffer; binary: boolean; compress: boolean; pieces: number }> = [];
    for (let i = 0; i < 60; i++) {
      const binary = i % 3 === 0;
      messages.push({ data: numbered(i, [10, 2000, 70_000, 0][i % 4]!, binary), binary, compress: i % 5 !== 0, pieces: 1 + (i % 4) });
    }
    for (const m of messages) await peer.send(m.data, { binary: m.binary, compress: m.compress, pieces: m.pieces });
    for (const [i, m] of messages.entries()) {
      const got = await peer.nextMessage();
      assert.equal(got.opcode, m.binary ? Opcode.binary : Opcode.text, `message ${i}`);
      assert.equal(got.compressed, true, `message ${i}: the server compresses everything at threshold 0`);
      assert.ok(got.data.equals(m.data), `message ${i} came back intact`);
    }
  });
});

describe('permessage-deflate: deflateThresholdBytes', () => {
  it('sends messages shorter than the threshold without RSV1 and longer ones compressed, for send() and publish()', async (t) => {
    const THRESHOLD = 64;
    const sizes = [0, 1, THRESHOLD - 1, THRESHOLD, THRESHOLD + 1, 1000, 70_000];
    const started = await start(t, {
      open(ws) { ws.subscribe('t'); },
      message(ws) {
        for (const size of sizes) ws.send(numbered(size, size, false).toString());
        for (const size of sizes) ws.send(numbered(size, size, true), true);
      },
    }, { deflateThresholdBytes: THRESHOLD });
    const peer = await openPeer(started.defer, started.port, '/ws');
    assert.equal(peer.extensions, 'permessage-deflate');
    await peer.send('go', { compress: false });
    for (const binary of [false, true]) {
      for (const size of sizes) {
        const got = await peer.nextMessage();
        assert.equal(got.opcode, binary ? Opcode.binary : Opcode.text);
        assert.equal(got.compressed, size >= THRESHOLD, `${binary ? 'binary' : 'text'} ${size} B: RSV1 ${got.compressed}`);
        assert.ok(got.data.equals(numbered(size, size, binary)), `${size} B intact`);
      }
    }
    for (const size of sizes) started.app.publish('t', numbered(size, size, true));
    for (const size of sizes) {
      const got = await peer.nextMessage();
      assert.equal(got.compressed, size >= THRESHOLD, `published ${size} B: RSV1 ${got.compressed}`);
      assert.ok(got.data.equals(numbered(size, size, true)));
    }
  });
});

describe('permessage-deflate: publish compresses once for stateless subscribers', () => {
  async function subscribers(started: Started, count: number, options: { deflateServerNoContextTakeover?: boolean; deflateServerMaxWindowBits?: number }): Promise<Buffer[][]> {
    const inboxes: Buffer[][] = [];
    for (let i = 0; i < count; i++) {
      const inbox: Buffer[] = [];
      inboxes.push(inbox);
      const client = await connect(started.url, { perMessageDeflate: true, ...options, handlers: { message(_ws, data) { inbox.push(data); } } });
      started.defer(() => client.terminate());
      assert.equal(client.extensions, 'permessage-deflate');
    }
    return inboxes;
  }

  it('compresses a message published to 50 subscribers with server_no_context_takeover ONCE, and 50 times for 50 with context takeover', async (t) => {
    const started = await start(t, { open(ws) { ws.subscribe('news'); } });
    const stateless = await subscribers(started, 50, { deflateServerNoContextTakeover: true });
    await waitFor(() => started.app.subscriberCount('news') === 50, '50 subscribers');
    const message = JSON.stringify({ headline: 'compressed once', body: 'lorem ipsum dolor sit amet '.repeat(200) });

    let before = codecStats.compressions;
    assert.equal(started.app.publish('news', message), 50);
    await waitFor(() => stateless.every((inbox) => inbox.length === 1), 'every stateless subscriber to receive the message');
    assert.equal(codecStats.compressions - before, 1, 'one compression shared by 50 subscribers');
    for (const inbox of stateless) assert.equal(inbox[0]!.toString(), message);

    before = codecStats.compressions;
    started.app.publish('news', `${message} again`);
    await waitFor(() => stateless.every((inbox) => inbox.length === 2), 'the second message');
    assert.equal(codecStats.compressions - before, 1, 'and one for the next message');

    const keeping = await subscribers(started, 50, {});
    await waitFor(() => started.app.subscriberCount('news') === 100, '100 subscribers');
    before = codecStats.compressions;
    started.app.publish('news', `${message} to everyone`);
    await waitFor(() => stateless.every((inbox) => inbox.length === 3) && keeping.every((inbox) => inbox.length === 1), 'every subscriber to receive the third message');
    assert.equal(codecStats.compressions - before, 1 + 50, 'one shared compression, plus one per subscriber that keeps its context');
    for (const inbox of [...stateless.map((i) => i[2]!), ...keeping.map((i) => i[0]!)]) assert.equal(inbox.toString(), `${message} to everyone`);
  });

  it('shares a compression only between subscribers with the same compressor settings (window bits)', async (t) => {
    const started = await start(t, { open(ws) { ws.subscribe('news'); } });
    const wide = await subscribers(started, 10, { deflateServerNoContextTakeover: true });
    const narrow = await subscribers(started, 10, { deflateServerNoContextTakeover: true, deflateServerMaxWindowBits: 10 });
    await waitFor(() => started.app.subscriberCount('news') === 20, '20 subscribers');
    const before = codecStats.compressions;
    started.app.publish('news', patternBytes(5000).toString('base64'));
    await waitFor(() => [...wide, ...narrow].every((inbox) => inbox.length === 1), 'every subscriber to receive it');
    assert.equal(codecStats.compressions - before, 2);
  });
});

describe('permessage-deflate: slow consumers', () => {
  const LIMIT = 256 * 1024;
  const SIZE = 32 * 1024;
  const MAX_BYTES_TO_FILL = 128 * 1024 * 1024;
  /** A compressed random message may come out a few bytes longer than it went in, plus a 10-byte header. */
  const SLACK = 1024;

  for (const policy of ['close', 'drop-newest'] as const) {
    it(`"${policy}" still bounds bufferedAmount with compression on, and the peer gets the accepted messages in order`, async (t) => {
      const drops: number[] = [];
      const started = await start(t, { dropped(_ws, bytes) { drops.push(bytes); } },
        { deflateThresholdBytes: 0, maxBackpressureBytes: LIMIT, slowConsumerPolicy: policy, closeTimeoutMs: 10_000 });
      const peer = await openPeer(started.defer, started.port, '/ws', 'permessage-deflate; server_no_context_takeover');
      await waitFor(() => started.opened.length === 1, 'the connection to open');
      const ws = started.opened[0]!;
      peer.raw.socket.pause();

      let accepted = 0;
      for (let seq = 0; drops.length === 0; seq++) {
        assert.ok(seq * SIZE < MAX_BYTES_TO_FILL, `sent ${seq * SIZE} bytes to a peer that does not read and was never refused`);
        const before = ws.bufferedAmount;
        ws.send(numbered(seq, SIZE, true));
        if (drops.length > 0) break;
        accepted++;
        assert.ok(before + SIZE <= LIMIT, `a send that passes the limit was accepted (${before} + ${SIZE} > ${LIMIT})`);
        assert.ok(ws.bufferedAmount <= LIMIT + SLACK, `bufferedAmount ${ws.bufferedAmount} over the limit`);
        // Let zlib and the socket work, so bytes really reach the kernel before the limit is hit.
        if (seq % 4 === 3) await sleep(2);
      }
      assert.deepEqual(drops, [SIZE]);
      assert.ok(ws.bufferedAmount <= LIMIT + SLACK, `bufferedAmount ${ws.bufferedAmount} after the refusal`);
      await sleep(20);
      assert.ok(ws.bufferedAmount <= LIMIT + SLACK, `bufferedAmount ${ws.bufferedAmount} once compression settled`);
      if (policy === 'close') assert.notEqual(ws.readyState, ReadyState.Open);
      else assert.equal(ws.readyState, ReadyState.Open);

      peer.raw.socket.resume();
      if (policy === 'close') {
        // Messages still waiting for zlib when the connection failed are not sent (see the todo test below), so
        // the peer gets an in-order prefix of the accepted messages, then the 1008 close.
        let seq = 0;
        for (;;) {
          const frame = await peer.nextFrame();
          if (frame.opcode === Opcode.close) {
            assert.equal(frame.payload.readUInt16BE(0), 1008);
            break;
          }
          assert.ok(seq < accepted, 'no more messages than were accepted');
          assert.ok(frame.fin && frame.rsv === 0b100, describeFrame(frame));
          const data = await peer.inflate(frame.payload);
          assert.ok(data.equals(numbered(seq, SIZE, true)), `message ${seq} of ${accepted} intact and in order`);
          seq++;
        }
        await waitFor(() => peer.raw.tcpClosed, 'the server to close TCP');
      } else {
        for (let seq = 0; seq < accepted; seq++) {
          const got = await peer.nextMessage();
          assert.equal(got.compressed, true);
          assert.ok(got.data.equals(numbered(seq, SIZE, true)), `message ${seq} of ${accepted} intact and in order`);
        }
        await waitFor(() => ws.bufferedAmount === 0, 'the backlog to drain');
        assert.equal(ws.send('after the backlog'), true);
        const got = await peer.nextMessage();
        assert.equal(got.data.toString(), 'after the backlog');
      }
    });
  }
});

describe('permessage-deflate: close() after send()', () => {
  it('server: messages sent before close() reach the peer before the close frame', async (t) => {
    const started = await start(t, { open(ws) { ws.send('x'.repeat(5000)); ws.send('tiny'); ws.close(1000, 'bye'); } });
    const peer = await openPeer(started.defer, started.port, '/ws');
    const first = await peer.nextMessage();
    assert.equal(first.data.toString(), 'x'.repeat(5000));
    assert.equal((await peer.nextMessage()).data.toString(), 'tiny');
    assert.equal(await peer.expectClose(), 1000);
  });

  it('client: messages sent before close() reach the server before the close frame', async (t) => {
    const got: string[] = [];
    const started = await start(t, { message(_ws, data) { got.push(data.toString()); } });
    const client = await connect(started.url, { perMessageDeflate: true });
    started.defer(() => client.terminate());
    client.send('y'.repeat(5000));
    client.close(1000);
    await waitFor(() => started.closed.length === 1, 'the server to see the close');
    assert.deepEqual(got, ['y'.repeat(5000)]);
  });
});

describe('permessage-deflate: checks after inflation', () => {
  it('fails a compressed text message that inflates to invalid UTF-8 with 1007 (RFC 6455 §8.1), whole or fragmented', async (t) => {
    const started = await start(t, echo);
    const whole = await openPeer(started.defer, started.port, '/ws');
    await whole.send(Buffer.from([0x48, 0x69, 0xff, 0xfe]));
    assert.equal(await whole.expectClose(), 1007);

    const fragmented = await openPeer(started.defer, started.port, '/ws');
    // Ends inside a 3-byte sequence (the first two bytes of the euro sign).
    await fragmented.send(Buffer.concat([Buffer.from('price: '.repeat(50)), Buffer.from([0xe2, 0x82])]), { pieces: 3 });
    assert.equal(await fragmented.expectClose(), 1007);
    await waitFor(() => started.errors.length === 2, 'two errors reported');
    for (const error of started.errors) assert.equal((error as Error & { closeCode?: number }).closeCode, 1007);
  });

  it('delivers valid UTF-8 whose sequences straddle compressed fragments, and invalid UTF-8 in binary messages', async (t) => {
    const started = await start(t, echo);
    const peer = await openPeer(started.defer, started.port, '/ws');
    const text = 'h\u00e9llo \u20ac \u{1F600} '.repeat(100);
    await peer.send(text, { pieces: 7 });
    const got = await peer.nextMessage();
    assert.equal(got.opcode, Opcode.text);
    assert.equal(got.data.toString(), text);
    await peer.send(Buffer.from([0xff, 0xfe, 0xfd]), { binary: true });
    assert.deepEqual([...(await peer.nextMessage()).data], [0xff, 0xfe, 0xfd]);
  });

  it('delivers invalid UTF-8 from a compressed text message when the route allows it (allowInvalidUtf8)', async (t) => {
    const received: Array<[boolean, string]> = [];
    const started = await start(t, { allowInvalidUtf8: true, message(ws, data, isBinary) { received.push([isBinary, data.toString('hex')]); ws.send(data, isBinary); } });
    const peer = await openPeer(started.defer, started.port, '/ws');
    await peer.send(Buffer.from([0x41, 0xff]));
    const got = await peer.nextMessage();
    assert.deepEqual(received, [[false, '41ff']]);
    assert.equal(got.opcode, Opcode.text);
    assert.deepEqual([...got.data], [0x41, 0xff]);
  });

  it('fails a compressed message that inflates past maxMessageBytes with 1009, leaving other connections unaffected', async (t) => {
    const MAX = 64 * 1024;
    const started = await start(t, echo, { maxMessageBytes: MAX });
    const bystanderGot: string[] = [];
    const bystander = await connect(started.url, { perMessageDeflate: true, handlers: { message(_ws, data) { bystanderGot.push(data.toString()); } } });
    started.defer(() => bystander.terminate());
    bystander.send('before '.repeat(500));
    await waitFor(() => bystanderGot.length === 1, 'the bystander\'s first echo');

    const attacker = await openPeer(started.defer, started.port, '/ws');
    const bomb = deflatePayload(Buffer.alloc(1024 * 1024));
    assert.ok(bomb.length < MAX, `${bomb.length} compressed bytes pass the wire-size check`);
    await attacker.send(Buffer.alloc(1024 * 1024), { binary: true });
    assert.equal(await attacker.expectClose(), 1009);

    const exact = await openPeer(started.defer, started.port, '/ws');
    await exact.send(Buffer.alloc(MAX, 0x61));
    assert.equal((await exact.nextMessage()).data.length, MAX, 'a message that inflates to exactly maxMessageBytes is fine');

    bystander.send('after '.repeat(500));
    await waitFor(() => bystanderGot.length === 2, 'the bystander\'s second echo');
    assert.deepEqual(bystanderGot, ['before '.repeat(500), 'after '.repeat(500)]);
    assert.equal(bystander.readyState, ReadyState.Open);
  });

  it('cuts an inflated message into messagePieceBytes pieces for a route that streams', async (t) => {
    const pieces: Array<[number, boolean]> = [];
    const started = await start(t, { messagePieceBytes: 1000, messagePiece(_ws, piece, _isBinary, isLast) { pieces.push([piece.length, isLast]); } });
    const peer = await openPeer(started.defer, started.port, '/ws');
    await peer.send('p'.repeat(3500), { pieces: 2 });
    await waitFor(() => pieces.length === 4, 'four pieces');
    assert.deepEqual(pieces, [[1000, false], [1000, false], [1000, false], [500, true]]);
    assert.equal(started.opened[0]!.messagesIn, 1);
  });
});

describe('permessage-deflate: zlib work is released when a connection ends', () => {
  it('closes both sides\' codecs on a clean close, on terminate(), and when the peer vanishes', async (t) => {
    const created = new Set<PerMessageDeflate>();
    const closedCodecs = new Set<PerMessageDeflate>();
    const prototype = PerMessageDeflate.prototype;
    const { compress, decompress, close } = prototype;
    // Watch codecs as they are used and closed (every connection below sends one compressed message each way).
    prototype.compress = function (this: PerMessageDeflate, ...args) { created.add(this); return compress.apply(this, args); };
    prototype.decompress = function (this: PerMessageDeflate, ...args) { created.add(this); return decompress.apply(this, args); };
    prototype.close = function (this: PerMessageDeflate) { closedCodecs.add(this); return close.apply(this); };
    t.after(() => Object.assign(prototype, { compress, decompress, close }));

    const started = await start(t, echo, { deflateThresholdBytes: 0 });
    const clients: Array<WebSocket<undefined>> = [];
    const echoes: number[] = [];
    for (let i = 0; i < 4; i++) {
      echoes.push(0);
      const client = await connect(started.url, { perMessageDeflate: true, deflateThresholdBytes: 0, handlers: { message() { echoes[i]!++; } } });
      started.defer(() => client.terminate());
      clients.push(client);
      client.send(`hello from ${i}`);
    }
    const peer = await openPeer(started.defer, started.port, '/ws');
    await peer.send('hello from the raw peer');
    await peer.nextMessage();
    await waitFor(() => echoes.every((n) => n === 1), 'every echo');
    assert.equal(created.size, 4 * 2 + 1, 'a codec per connection end that negotiated deflate');
    assert.equal(closedCodecs.size, 0);

    clients[0]!.close(1000);
    clients[1]!.close(1001);
    clients[2]!.terminate();
    started.opened[3]!.terminate();
    peer.raw.socket.destroy();
    await waitFor(() => started.closed.length === 5, 'the server to see every connection close');
    await waitFor(() => clients.every((c) => c.readyState === ReadyState.Closed), 'every client to close');
    await waitFor(() => [...created].every((codec) => closedCodecs.has(codec)), 'every codec to be closed');

    // A closed codec refuses work: its zlib contexts are gone.
    for (const codec of created) {
      const error = await new Promise<Error | null>((resolve) => codec.compress(Buffer.from('late'), (e) => resolve(e)));
      assert.ok(error !== null && /closed/.test(error.message));
    }
  });

  it('survives a peer that disconnects while its compressed message is being inflated (no context takeover)', async (t) => {
    const started = await start(t, echo, { deflateClientNoContextTakeover: true });
    const peer = await openPeer(started.defer, started.port, '/ws', 'permessage-deflate; client_no_context_takeover');
    await peer.send('a fairly compressible sentence, repeated. '.repeat(200_000));
    peer.raw.socket.destroy();
    await waitFor(() => started.closed.length === 1, 'the server to see the connection close');
    assert.equal(started.closed[0]!.code, 1006);
    // The server is still healthy.
    const got: string[] = [];
    const client = await connect(started.url, { perMessageDeflate: true, handlers: { message(_ws, data) { got.push(data.toString()); } } });
    started.defer(() => client.terminate());
    client.send('still there? '.repeat(200));
    await waitFor(() => got.length === 1, 'an echo from the server');
    assert.equal(got[0], 'still there? '.repeat(200));
  });
});
