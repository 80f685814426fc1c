// Close details after the fact: ws.closeCode, ws.closeReason and ws.closeWasClean (undefined until the close
// is reported) and the ws.closed promise, on connect()'s connections and on the server's.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../../src/client/connect.js';
import type { CloseDetails, WebSocket } from '../../src/transport/websocket.js';
import { cleanupStack, waitFor, withTimeout } from '../_support/cleanup.js';
import { HOST, TIMEOUT_MS, echo, startServer } from './_servers.js';

describe('close details', () => {
  it('are undefined while open, then match what the close handler got (and are set by the time it runs)', async (t) => {
    const defer = cleanupStack(t);
    const { port } = await startServer(defer, { '/echo': echo });
    let inHandler: Array<number | string | boolean | undefined> | undefined;
    const ws = await withTimeout(connect(`ws://${HOST}:${port}/echo`, {
      handlers: { close(socket, code, reason, wasClean) { inHandler = [code, reason, wasClean, socket.closeCode, socket.closeReason, socket.closeWasClean]; } },
    }), TIMEOUT_MS, 'connect');
    defer(() => ws.terminate());
    assert.deepEqual([ws.closeCode, ws.closeReason, ws.closeWasClean], [undefined, undefined, undefined]);
    ws.close(4001, 'client done');
    const details = await withTimeout(ws.closed, TIMEOUT_MS, 'ws.closed');
    assert.deepEqual(details, { code: 4001, reason: 'client done', wasClean: true });
    assert.deepEqual(inHandler, [4001, 'client done', true, 4001, 'client done', true]);
    assert.deepEqual([ws.closeCode, ws.closeReason, ws.closeWasClean], [4001, 'client done', true]);
  });

  it('ws.closed is one promise, whether first read before or after the close, and it resolves on an abrupt end', async (t) => {
    const defer = cleanupStack(t);
    const { port } = await startServer(defer, { '/echo': echo });
    const early = await withTimeout(connect(`ws://${HOST}:${port}/echo`), TIMEOUT_MS, 'connect');
    const promise = early.closed;
    assert.equal(early.closed, promise, 'the same promise each time');
    early.terminate();
    assert.deepEqual(await withTimeout(promise, TIMEOUT_MS, 'closed after terminate()'), { code: 1006, reason: '', wasClean: false });

    const late = await withTimeout(connect(`ws://${HOST}:${port}/echo`), TIMEOUT_MS, 'connect');
    late.close(1000);
    await waitFor(() => late.closeCode !== undefined, TIMEOUT_MS, 'the close to be reported');
    assert.deepEqual(await late.closed, { code: 1000, reason: '', wasClean: true }, 'first read after the close');
    assert.equal(late.closed, late.closed);
  });

  it('work on server connections: the route\'s ws.closed resolves with the client\'s close', async (t) => {
    const defer = cleanupStack(t);
    let serverClosed: Promise<CloseDetails> | undefined;
    let serverWs: WebSocket<undefined> | undefined;
    const { port } = await startServer(defer, { '/watch': { open(ws) { serverWs = ws; serverClosed = ws.closed; } } });
    const ws = await withTimeout(connect(`ws://${HOST}:${port}/watch`), TIMEOUT_MS, 'connect');
    defer(() => ws.terminate());
    ws.close(4002, 'bye server');
    assert.deepEqual(await withTimeout(serverClosed!, TIMEOUT_MS, 'the server side closed'), { code: 4002, reason: 'bye server', wasClean: true });
    assert.equal(serverWs!.closeCode, 4002);
  });
});
