// Per-route WebSocket policy (issue 3, item 6), observed from raw `net` peers: messagePieceBytes streams a
// message to `messagePiece` as it arrives; maxLifetimeMs and idleTimeoutMs close with 1001; allowInvalidUtf8
// delivers text that is not UTF-8 where the default fails with 1007; a route's pingIntervalMs overrides the
// server's. Timers are short and bounds generous: the tests prove a timer fired, not how fast.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { createServer } from '../../src/server/server.js';
import type { ServerOptions } from '../../src/server/options.js';
import { Opcode, binary, continuation, describeFrame, patternBytes, text } from '../_support/frames.js';
import type { RawClient } from '../_support/raw-client.js';
import { cleanupStack, sleep, waitFor } from '../_support/cleanup.js';
import { listen, upgradedWebSocket, type Defer } from '../_support/embedded-server.js';

const TIMEOUT_MS = 3000;

interface Piece { data: Buffer; isBinary: boolean; isLast: boolean }

/** Splits recorded pieces into messages at each isLast. */
function messagesOf(pieces: readonly Piece[]): Piece[][] {
  const messages: Piece[][] = [];
  let current: Piece[] = [];
  for (const piece of pieces) {
    current.push(piece);
    if (piece.isLast) {
      messages.push(current);
      current = [];
    }
  }
  assert.equal(current.length, 0, 'pieces after the last isLast');
  return messages;
}

function assertPieces(message: readonly Piece[], limit: number, original: Buffer, isBinary: boolean): void {
  for (const [index, piece] of message.entries()) {
    assert.ok(piece.data.length <= limit, `piece ${index} has ${piece.data.length} bytes, more than messagePieceBytes ${limit}`);
    assert.equal(piece.isLast, index === message.length - 1, `only the last piece is flagged (piece ${index} of ${message.length})`);
    assert.equal(piece.isBinary, isBinary, `piece ${index} isBinary`);
    if (original.length > 0) assert.ok(piece.data.length > 0, `piece ${index} is empty in a non-empty message`);
  }
  const joined = Buffer.concat(message.map((piece) => piece.data));
  assert.equal(joined.length, original.length, 'the pieces add up to the message length');
  assert.ok(joined.equals(original), 'the pieces, in order, concatenate to the original message');
}

/** Sends each frame in several TCP writes (sizes cycling), pausing between writes so the server reads them apart. */
async function sendFramesInPieces(client: RawClient, frames: readonly Buffer[]): Promise<void> {
  for (const frame of frames) await client.sendInPieces(frame, [777, 1500, 3001], 1);
}

describe('messagePieceBytes: streaming delivery', () => {
  const limit = 4096;

  async function streamingServer(defer: Defer): Promise<{ port: number; pieces: Piece[]; wholeMessages: () => number }> {
    const pieces: Piece[] = [];
    let wholeMessages = 0;
    const app = createServer({ pingIntervalMs: 0 })
      .websocket('/stream', {
        messagePieceBytes: limit,
        message() { wholeMessages++; },
        messagePiece(ws, piece, isBinary, isLast) {
          pieces.push({ data: Buffer.from(piece), isBinary, isLast });
          if (isLast) ws.send(`got ${pieces.length}`);
        },
      });
    return { port: await listen(defer, app), pieces, wholeMessages: () => wholeMessages };
  }

  it('delivers a 100 KiB message sent in several frames and many TCP writes in ordered pieces of at most N bytes', async (t) => {
    const defer = cleanupStack(t);
    const { port, pieces, wholeMessages } = await streamingServer(defer);
    const client = await upgradedWebSocket(defer, port, '/stream');
    const original = patternBytes(100 * 1024, 7);
    const cuts = [0, 10_000, 40_000, 40_001, 80_000, original.length];
    const frames = cuts.slice(0, -1).map((start, index) => {
      const chunk = original.subarray(start, cuts[index + 1]);
      const fin = index === cuts.length - 2;
      return index === 0 ? binary(chunk, fin) : continuation(chunk, fin);
    });
    await sendFramesInPieces(client, frames.slice(0, -1));
    await waitFor(() => pieces.length > 0, TIMEOUT_MS, 'the first pieces before the last frame was sent');
    const deliveredBeforeTheEnd = pieces.length;
    assert.ok(pieces.every((piece) => !piece.isLast), 'no piece is flagged last before the final frame arrived');
    await sendFramesInPieces(client, frames.slice(-1));

    const reply = await client.nextMessage(TIMEOUT_MS);
    assert.match(reply.payload.toString(), /^got \d+$/);
    const messages = messagesOf(pieces);
    assert.equal(messages.length, 1);
    assertPieces(messages[0]!, limit, original, true);
    assert.ok(messages[0]!.length >= Math.ceil(original.length / limit), `${messages[0]!.length} pieces for ${original.length} bytes`);
    assert.ok(deliveredBeforeTheEnd >= 10, `only ${deliveredBeforeTheEnd} pieces were delivered while 80,000 bytes had arrived`);
    assert.equal(wholeMessages(), 0, 'message is not called when messagePiece takes the message');
  });

  it('delivers text in pieces that may split a UTF-8 character but join to the exact text', async (t) => {
    const defer = cleanupStack(t);
    const { port, pieces } = await streamingServer(defer);
    const client = await upgradedWebSocket(defer, port, '/stream');
    const original = Buffer.from('é€😀 switchyard '.repeat(1200));
    const third = Math.floor(original.length / 3) + 1; // cut inside a multi-byte character on purpose
    await sendFramesInPieces(client, [
      text(original.subarray(0, third), false),
      continuation(original.subarray(third, 2 * third), false),
      continuation(original.subarray(2 * third)),
    ]);
    await client.nextMessage(TIMEOUT_MS);
    const messages = messagesOf(pieces);
    assert.equal(messages.length, 1);
    assertPieces(messages[0]!, limit, original, false);
    assert.equal(Buffer.concat(messages[0]!.map((piece) => piece.data)).toString('utf8'), original.toString('utf8'));
  });

  it('delivers an empty message as one empty last piece, whole or fragmented', async (t) => {
    const defer = cleanupStack(t);
    const { port, pieces, wholeMessages } = await streamingServer(defer);
    const client = await upgradedWebSocket(defer, port, '/stream');
    await client.send(text(''));
    await client.nextMessage(TIMEOUT_MS);
    await client.send(Buffer.concat([binary(Buffer.alloc(0), false), continuation(Buffer.alloc(0), false), continuation(Buffer.alloc(0))]));
    await client.nextMessage(TIMEOUT_MS);
    // A small message that fits in one piece, between and after.
    await client.send(binary(Buffer.from([1, 2, 3])));
    await client.nextMessage(TIMEOUT_MS);
    const messages = messagesOf(pieces);
    assert.deepEqual(messages.map((message) => message.map((piece) => ({ length: piece.data.length, isBinary: piece.isBinary, isLast: piece.isLast }))), [
      [{ length: 0, isBinary: false, isLast: true }],
      [{ length: 0, isBinary: true, isLast: true }],
      [{ length: 3, isBinary: true, isLast: true }],
    ]);
    assert.equal(wholeMessages(), 0);
  });
});

describe('maxLifetimeMs', () => {
  it('closes a connection with 1001 once it is maxLifetimeMs old, even while messages flow', async (t) => {
    const defer = cleanupStack(t);
    const lifetimeMs = 400;
    const app = createServer({ pingIntervalMs: 0 })
      .websocket('/short', { maxLifetimeMs: lifetimeMs, message(ws, data) { ws.send(data); } })
      .websocket('/long', { message(ws, data) { ws.send(data); } });
    const port = await listen(defer, app);
    await sleep(600); // a server that has been idle for a while
    // The first connection of an idle server: its clock must start at its own open, not at the last tick.
    const short = await upgradedWebSocket(defer, port, '/short');
    const openedAt = Date.now();
    const long = await upgradedWebSocket(defer, port, '/long');
    let frame;
    // Keep the connection busy: the lifetime is not an idle timeout.
    for (;;) {
      await short.send(text('busy'));
      frame = await short.nextFrame(TIMEOUT_MS + lifetimeMs);
      if (frame.opcode >= 8) break;
      await sleep(40);
    }
    const elapsedMs = Date.now() - openedAt;
    assert.equal(frame.opcode, Opcode.close, describeFrame(frame));
    assert.equal(frame.payload.readUInt16BE(0), 1001);
    assert.equal(frame.payload.subarray(2).toString(), 'connection lifetime exceeded');
    assert.ok(elapsedMs >= lifetimeMs * 0.75, `closed after ${elapsedMs} ms, well before maxLifetimeMs ${lifetimeMs}`);
    // The route without a lifetime is untouched.
    await long.send(text('still here'));
    assert.equal((await long.nextMessage(TIMEOUT_MS)).payload.toString(), 'still here');
  });
});

describe('idleTimeoutMs per route', () => {
  async function expectIdleClose(client: RawClient, idleMs: number, openedAt: number): Promise<void> {
    const frame = await client.nextFrame(TIMEOUT_MS + idleMs);
    const elapsedMs = Date.now() - openedAt;
    assert.equal(frame.opcode, Opcode.close, describeFrame(frame));
    assert.equal(frame.payload.readUInt16BE(0), 1001);
    assert.equal(frame.payload.subarray(2).toString(), 'idle timeout');
    assert.ok(elapsedMs >= idleMs * 0.75, `closed after ${elapsedMs} ms, well before idleTimeoutMs ${idleMs}`);
  }

  it('closes an idle connection on a route with idleTimeoutMs while the server default (off) keeps others', async (t) => {
    const defer = cleanupStack(t);
    const idleMs = 300;
    const app = createServer({ pingIntervalMs: 0 })
      .websocket('/idle', { idleTimeoutMs: idleMs })
      .websocket('/default', {});
    const port = await listen(defer, app);
    await sleep(400); // an idle server first: the connection's clock must start at its own open
    const idle = await upgradedWebSocket(defer, port, '/idle');
    const openedAt = Date.now();
    const quiet = await upgradedWebSocket(defer, port, '/default');
    await expectIdleClose(idle, idleMs, openedAt);
    await quiet.expectSilence(Math.max(0, openedAt + 2 * idleMs - Date.now()));
    assert.equal(quiet.tcpClosed, false);
  });

  it('lets a route turn off the server\'s idleTimeoutMs with 0', async (t) => {
    const defer = cleanupStack(t);
    const idleMs = 300;
    const app = createServer({ pingIntervalMs: 0, idleTimeoutMs: idleMs })
      .websocket('/inherits', {})
      .websocket('/never', { idleTimeoutMs: 0 });
    const port = await listen(defer, app);
    const never = await upgradedWebSocket(defer, port, '/never');
    const inherits = await upgradedWebSocket(defer, port, '/inherits');
    const openedAt = Date.now();
    await expectIdleClose(inherits, idleMs, openedAt);
    await never.expectSilence(Math.max(0, openedAt + 2 * idleMs - Date.now()));
    assert.equal(never.tcpClosed, false);
  });
});

describe('allowInvalidUtf8', () => {
  const invalid = Buffer.from([0x48, 0xff, 0xc3, 0x28, 0xed, 0xa0, 0x80]); // 0xff, a bad continuation, a surrogate

  async function utf8Server(defer: Defer, options: ServerOptions = {}): Promise<{ port: number; received: Array<{ hex: string; isBinary: boolean }> }> {
    const received: Array<{ hex: string; isBinary: boolean }> = [];
    const app = createServer({ pingIntervalMs: 0, ...options })
      .websocket('/lenient', {
        allowInvalidUtf8: true,
        message(ws, data, isBinary) { received.push({ hex: data.toString('hex'), isBinary }); ws.send('ok'); },
      })
      .websocket('/strict', { message(ws) { ws.send('ok'); } });
    return { port: await listen(defer, app), received };
  }

  it('delivers a text message that is not UTF-8, whole or fragmented, on a route that allows it', async (t) => {
    const defer = cleanupStack(t);
    const { port, received } = await utf8Server(defer);
    const client = await upgradedWebSocket(defer, port, '/lenient');
    await client.send(text(invalid));
    assert.equal((await client.nextMessage(TIMEOUT_MS)).payload.toString(), 'ok');
    // A fragmented text message that ends inside a character.
    await client.send(Buffer.concat([text(Buffer.from([0x41, 0xe2, 0x82]), false), continuation(Buffer.from([0x42, 0xf0]))]));
    assert.equal((await client.nextMessage(TIMEOUT_MS)).payload.toString(), 'ok');
    assert.deepEqual(received, [
      { hex: invalid.toString('hex'), isBinary: false },
      { hex: '41e28242f0', isBinary: false },
    ]);
  });

  it('fails the same message with 1007 on a route that keeps the default', async (t) => {
    const defer = cleanupStack(t);
    const { port } = await utf8Server(defer);
    const client = await upgradedWebSocket(defer, port, '/strict');
    await client.send(text(invalid));
    const result = await client.expectClose(TIMEOUT_MS);
    assert.equal(result.code, 1007);
    assert.equal(result.tcpClosed, true);
  });

  it('lets a route be strict when the server allows invalid UTF-8', async (t) => {
    const defer = cleanupStack(t);
    const app = createServer({ pingIntervalMs: 0, allowInvalidUtf8: true })
      .websocket('/inherits', { message(ws) { ws.send('ok'); } })
      .websocket('/strict', { allowInvalidUtf8: false, message(ws) { ws.send('ok'); } });
    const port = await listen(defer, app);
    const inherits = await upgradedWebSocket(defer, port, '/inherits');
    await inherits.send(text(invalid));
    assert.equal((await inherits.nextMessage(TIMEOUT_MS)).payload.toString(), 'ok');
    const strict = await upgradedWebSocket(defer, port, '/strict');
    await strict.send(text(invalid));
    assert.equal((await strict.expectClose(TIMEOUT_MS)).code, 1007);
  });
});

describe('pingIntervalMs per route', () => {
  it('pings on a route that sets pingIntervalMs while the server has pings off', async (t) => {
    const defer = cleanupStack(t);
    const app = createServer({ pingIntervalMs: 0 })
      .websocket('/pinged', { pingIntervalMs: 60 })
      .websocket('/quiet', {});
    const port = await listen(defer, app);
    const quiet = await upgradedWebSocket(defer, port, '/quiet');
    const pinged = await upgradedWebSocket(defer, port, '/pinged');
    const frame = await pinged.nextFrame(TIMEOUT_MS);
    assert.equal(frame.opcode, Opcode.ping, describeFrame(frame));
    await quiet.expectSilence(400);
  });

  it('sends no ping on a route with pingIntervalMs 0 while the server pings the others', async (t) => {
    const defer = cleanupStack(t);
    const app = createServer({ pingIntervalMs: 60 })
      .websocket('/inherits', {})
      .websocket('/quiet', { pingIntervalMs: 0 });
    const port = await listen(defer, app);
    const quiet = await upgradedWebSocket(defer, port, '/quiet');
    const inherits = await upgradedWebSocket(defer, port, '/inherits');
    const frame = await inherits.nextFrame(TIMEOUT_MS);
    assert.equal(frame.opcode, Opcode.ping, describeFrame(frame));
    await quiet.expectSilence(400);
    assert.equal(quiet.tcpClosed, false);
  });
});
