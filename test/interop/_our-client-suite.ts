// One suite for our client (`connect` from src/client/connect.ts) run against every peer echo server
// (python-websockets, ws): Hono's "one shared test suite run against every implementation".
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../../src/client/connect.js';
import { needPeer } from '../_support/peers.js';
import { AsyncQueue, firstDifference, patternBytes, withTimeout } from './_wait.js';

/**
 * A peer's echo server, as the suite needs it. Paths every implementation serves:
 *   /server-close  closes with 4002 "server bye" on the first message
 *   /ping-me       pings on open and sends "pong:ok" once our pong arrived
 *   anything else  echoes every message unchanged, same type
 * It selects the subprotocol "chat.v1" when offered and none otherwise, with permessage-deflate off.
 */
export interface EchoPeerServer {
  /** e.g. ws://127.0.0.1:41234 */
  readonly wsUrl: string;
  /** The close frame the server received on the first connection to `path`. */
  serverSawClose(path: string, timeoutMs: number): Promise<{ code: number; reason: string }>;
  /** Resolves once the server got a pong on the first connection to `path`. */
  serverSawPong(path: string, timeoutMs: number): Promise<void>;
  stop(): Promise<void>;
}

const stepMs = 5_000;
const testOptions = { timeout: 30_000 } as const;

interface Received {
  readonly data: Buffer;
  readonly isBinary: boolean;
}

interface Closed {
  readonly code: number;
  readonly reason: string;
  readonly wasClean: boolean;
}

/** Opens our client with handlers that queue what arrives; terminates it after the test whatever happened. */
async function openOurClient(t: TestContext, url: string, protocols?: string[]) {
  const messages = new AsyncQueue<Received>();
  const pongs = new AsyncQueue<Buffer>();
  const closes = new AsyncQueue<Closed>();
  const ws = await withTimeout(
    connect(url, {
      ...(protocols === undefined ? {} : { protocols }),
      handlers: {
        message(_ws, data, isBinary) { messages.push({ data: Buffer.from(data), isBinary }); },
        pong(_ws, data) { pongs.push(Buffer.from(data)); },
        close(_ws, code, reason, wasClean) { closes.push({ code, reason, wasClean }); },
      },
    }),
    stepMs,
    `connect(${url}) to resolve`,
  );
  t.after(() => { ws.terminate(); });
  return {
    ws,
    nextMessage: (what: string) => messages.next(stepMs, `${what} from ${url}`),
    nextPong: () => pongs.next(stepMs, `a pong from ${url}`),
    closed: () => closes.next(stepMs, `the close handler for ${url}`),
  };
}

export function describeOurClientAgainst(peerName: string, missing: () => string | undefined, start: () => Promise<EchoPeerServer>): void {
  describe(`our client (connect) against ${peerName}`, () => {
    let peer: EchoPeerServer | undefined;
    before(async () => {
      if (missing() === undefined) peer = await start();
    });
    after(async () => {
      await peer?.stop();
    });

    /** The running peer, or undefined when the test was skipped because the peer is not installed. */
    const peerFor = (t: TestContext): EchoPeerServer | undefined => {
      if (!needPeer(t, missing())) return undefined;
      assert.ok(peer, `${peerName} echo server did not start`);
      return peer;
    };

    it('sends a text message and receives it back as text, unchanged', testOptions, async (t) => {
      const server = peerFor(t);
      if (!server) return;
      const client = await openOurClient(t, `${server.wsUrl}/echo`);
      const sent = 'hello from switchyard \u2713 \u{1F600}';
      client.ws.send(sent);
      const echoed = await client.nextMessage('the echoed text');
      assert.equal(echoed.isBinary, false, 'echo of a text message arrived as binary');
      assert.equal(echoed.data.toString('utf8'), sent);
    });

    it('sends a binary message with every byte value and receives it back as binary', testOptions, async (t) => {
      const server = peerFor(t);
      if (!server) return;
      const client = await openOurClient(t, `${server.wsUrl}/echo`);
      const sent = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      client.ws.send(sent);
      const echoed = await client.nextMessage('the echoed binary message');
      assert.equal(echoed.isBinary, true, 'echo of a binary message arrived as text');
      assert.deepEqual(echoed.data, sent);
    });

    it('sends empty text and empty binary messages and receives both back with their types', testOptions, async (t) => {
      const server = peerFor(t);
      if (!server) return;
      const client = await openOurClient(t, `${server.wsUrl}/echo`);
      client.ws.send('');
      client.ws.send(Buffer.alloc(0));
      const text = await client.nextMessage('the echoed empty text');
      const binary = await client.nextMessage('the echoed empty binary');
      assert.deepEqual([text.isBinary, text.data.length], [false, 0]);
      assert.deepEqual([binary.isBinary, binary.data.length], [true, 0]);
    });

    it('round-trips a 1 MiB binary message and a 640 KiB multi-byte UTF-8 text message byte for byte', testOptions, async (t) => {
      const server = peerFor(t);
      if (!server) return;
      const client = await openOurClient(t, `${server.wsUrl}/echo`);
      const binary = patternBytes(1 << 20);
      client.ws.send(binary);
      const echoedBinary = await client.nextMessage('the echoed 1 MiB binary message');
      assert.equal(echoedBinary.isBinary, true);
      assert.equal(echoedBinary.data.length, binary.length, 'echoed length differs');
      assert.equal(firstDifference(echoedBinary.data, binary), -1, 'echoed bytes differ');

      const text = '\u00e9\u20ac\u{1F600}a'.repeat(65_536); // 10 bytes a repeat: 640 KiB, characters of 1 to 4 bytes
      client.ws.send(text);
      const echoedText = await client.nextMessage('the echoed 640 KiB text message');
      assert.equal(echoedText.isBinary, false);
      assert.equal(echoedText.data.length, Buffer.byteLength(text));
      assert.ok(echoedText.data.toString('utf8') === text, 'echoed text differs');
    });

    it('offers subprotocols and exposes the one the server selected as ws.protocol', testOptions, async (t) => {
      const server = peerFor(t);
      if (!server) return;
      const offered = await openOurClient(t, `${server.wsUrl}/echo`, ['nope.v0', 'chat.v1']);
      assert.equal(offered.ws.protocol, 'chat.v1');
      const plain = await openOurClient(t, `${server.wsUrl}/echo`);
      assert.equal(plain.ws.protocol, '', 'no protocol was offered, so none can have been selected');
      offered.ws.send('still works');
      assert.equal((await offered.nextMessage('the echo on the negotiated connection')).data.toString(), 'still works');
    });

    it('sends a ping and gets the pong with the same application data', testOptions, async (t) => {
      const server = peerFor(t);
      if (!server) return;
      const client = await openOurClient(t, `${server.wsUrl}/echo`);
      client.ws.ping(Buffer.from('client-ping'));
      const pong = await client.nextPong();
      assert.equal(pong.toString('utf8'), 'client-ping');
    });

    it('answers the server\'s ping with a pong', testOptions, async (t) => {
      const server = peerFor(t);
      if (!server) return;
      const client = await openOurClient(t, `${server.wsUrl}/ping-me`);
      const reply = await client.nextMessage('"pong:ok" (the server got our pong)');
      assert.equal(reply.data.toString(), 'pong:ok');
      await server.serverSawPong('/ping-me', stepMs);
    });

    it('reports the code and reason when the server closes with 4002 "server bye"', testOptions, async (t) => {
      const server = peerFor(t);
      if (!server) return;
      const client = await openOurClient(t, `${server.wsUrl}/server-close`);
      client.ws.send('bye');
      const closed = await client.closed();
      assert.deepEqual(closed, { code: 4002, reason: 'server bye', wasClean: true });
      // RFC 6455 §5.5.1: the endpoint answering a close typically echoes the status code it received.
      assert.equal((await server.serverSawClose('/server-close', stepMs)).code, 4002);
    });

    it('closes with 4001 "bye": the server receives that code and reason and the close completes cleanly', testOptions, async (t) => {
      const server = peerFor(t);
      if (!server) return;
      const client = await openOurClient(t, `${server.wsUrl}/client-close`);
      client.ws.send('before close');
      assert.equal((await client.nextMessage('the echo before closing')).data.toString(), 'before close');
      client.ws.close(4001, 'bye');
      assert.deepEqual(await server.serverSawClose('/client-close', stepMs), { code: 4001, reason: 'bye' });
      const closed = await client.closed();
      // The peer echoes the code it received (RFC 6455 §5.5.1), and the TCP close came after the handshake.
      assert.equal(closed.code, 4001);
      assert.equal(closed.wasClean, true);
    });
  });
}
