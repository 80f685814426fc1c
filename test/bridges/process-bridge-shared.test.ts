// Shared mode of the process bridge: one program for the whole route, started lazily with the first
// connection, its output sent to every connection, every connection's messages on its stdin (tagged with the
// connection id when asked), stopped after the last connection leaves, and, when it ends by itself, every
// connection closed 1011 and a fresh program started for the next one.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { processBridge } from '../../src/bridges/process-bridge.js';
import { activeProcessCount } from '../../src/bridges/process-child.js';
import type { WebSocket } from '../../src/transport/websocket.js';
import { sleep } from '../_support/cleanup.js';
import { fixture, logCollector, openClient, serve, waitFor } from './fixtures/harness.js';

describe('processBridge shared mode', () => {
  it('starts one program lazily, sends its output to every connection and tags each message with its connection id', async (t) => {
    const ids: number[] = [];
    const bridge = processBridge({ command: ['cat'], shared: true, tagMessages: true, killGraceMs: 100 });
    const { url } = await serve(t, '/room', { ...bridge, open(ws: WebSocket<unknown>) { ids.push(ws.id); bridge.open!(ws); } });
    await sleep(50);
    assert.equal(activeProcessCount(), 0, 'nothing runs before the first connection');
    const alice = await openClient(url('/room'));
    assert.equal(activeProcessCount(), 1);
    const bob = await openClient(url('/room'));
    assert.equal(activeProcessCount(), 1, 'the second connection shares the program');
    alice.ws.send('hello from alice');
    const aliceLine = `${ids[0]} hello from alice`;
    assert.equal(await alice.text(), aliceLine);
    assert.equal(await bob.text(), aliceLine);
    bob.ws.send('hi alice');
    assert.equal(await alice.text(), `${ids[1]} hi alice`);
    assert.equal(await bob.text(), `${ids[1]} hi alice`);

    alice.ws.close();
    await alice.closed();
    await sleep(100);
    assert.equal(activeProcessCount(), 1, 'kept while a connection remains');
    bob.ws.send('still here');
    assert.equal(await bob.text(), `${ids[1]} still here`);
    bob.ws.close();
    await bob.closed();
    await waitFor(() => activeProcessCount() === 0, 3000, 'the program to stop after the last connection');
  });

  it('when the program exits, every connection closes 1011 and the next connection starts a fresh one', async (t) => {
    const logs = logCollector();
    const { url } = await serve(t, '/greet', processBridge({ command: ['/bin/sh', fixture('greeter.sh')], shared: true, log: logs.log }));
    const first = await openClient(url('/greet'));
    assert.equal(await first.text(), 'hello from greeter');
    const second = await openClient(url('/greet'));
    first.ws.send('abc');
    assert.equal(await first.text(), '1 ABC');
    assert.equal(await second.text(), '1 ABC', 'joined after the greeting: sees only later output');
    second.ws.send('quit');
    for (const client of [first, second]) {
      assert.equal(await client.text(), 'bye after 2');
      assert.deepEqual(await client.closed(), { code: 1011, reason: 'shared process ended: exit status 0', wasClean: true });
    }
    await waitFor(() => activeProcessCount() === 0, 3000, 'the program to be reaped');
    const third = await openClient(url('/greet'));
    assert.equal(await third.text(), 'hello from greeter', 'a fresh program greets');
    third.ws.close();
    await third.closed();
    assert.equal(logs.lines.filter((line) => /: started: /.test(line)).length, 2);
  });

  it('a shared program that cannot start closes its connections "cannot start: ENOENT"', async (t) => {
    const { url } = await serve(t, '/missing', processBridge({ command: ['no-such-program-switchyard'], shared: true }));
    const client = await openClient(url('/missing'));
    assert.deepEqual(await client.closed(), { code: 1011, reason: 'cannot start: ENOENT', wasClean: true });
  });

  it('json framing sends stderr to every connection too', async (t) => {
    const { url } = await serve(t, '/j', processBridge({
      command: ['/bin/sh', '-c', 'while read -r id msg; do echo "$msg" >&2; done'], shared: true, tagMessages: true, framing: 'json', killGraceMs: 100,
    }));
    const a = await openClient(url('/j'));
    const b = await openClient(url('/j'));
    a.ws.send('to stderr');
    for (const client of [a, b]) assert.deepEqual(JSON.parse(await client.text()), { stream: 'stderr', data: 'to stderr' });
    for (const client of [a, b]) {
      client.ws.close();
      await client.closed();
    }
    await waitFor(() => activeProcessCount() === 0, 3000, 'the program to stop');
  });

  it('pauses every connection while the program\'s stdin is full, and resumes them when it drains', async (t) => {
    const totalBytes = 4 * 1024 * 1024;
    const serverSides: Array<WebSocket<unknown>> = [];
    const bridge = processBridge({ command: ['/bin/sh', '-c', `echo ready; sleep 1; head -c ${totalBytes} | wc -c; exec cat > /dev/null`], shared: true, killGraceMs: 100 });
    const { url } = await serve(t, '/s', { ...bridge, open(ws: WebSocket<unknown>) { serverSides.push(ws); bridge.open!(ws); } });
    const writer = await openClient(url('/s'));
    assert.equal(await writer.text(), 'ready');
    const watcher = await openClient(url('/s'));
    const line = Buffer.alloc(65535, 0x62);
    for (let i = 0; i < 64; i++) writer.ws.send(line, true);
    await waitFor(() => serverSides.length === 2 && serverSides.every((ws) => ws.isPaused), 3000, 'both connections to pause');
    for (const client of [writer, watcher]) assert.equal((await client.text('the byte count')).trim(), String(totalBytes));
    await waitFor(() => serverSides.every((ws) => !ws.isPaused), 3000, 'both connections to resume');
    for (const client of [writer, watcher]) {
      client.ws.close();
      await client.closed();
    }
    await waitFor(() => activeProcessCount() === 0, 3000, 'the program to stop');
  });
});
