// The process bridge's lifecycle (issue 5, item 1): a client that leaves gives the program stdin EOF, then
// SIGTERM after killGraceMs, then SIGKILL after as long again, to its whole process group; every child is
// reaped (no zombies) and every pipe closed (no leaked fds), also when the server shuts down; a program that
// stops reading stdin pauses the WebSocket instead of growing a buffer.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { processBridge } from '../../src/bridges/process-bridge.js';
import { activeProcessCount, allProcessesExited } from '../../src/bridges/process-child.js';
import type { WebSocket } from '../../src/transport/websocket.js';
import { sleep } from '../_support/cleanup.js';
import { fixture, logCollector, openClient, openFdCount, processState, serve, waitFor, zombieChildren } from './fixtures/harness.js';

/** Reads "pid N" from the program's first line. */
async function programPid(client: Awaited<ReturnType<typeof openClient>>): Promise<number> {
  const line = await client.text('the pid line');
  const match = /^pid (\d+)$/.exec(line);
  assert.ok(match, `expected "pid N", got ${line}`);
  return Number(match[1]);
}

describe('processBridge lifecycle', () => {
  it('a client close gives stdin EOF: a program that ends on EOF is reaped at once, without signals', async (t) => {
    const logs = logCollector();
    const { url } = await serve(t, '/greet', processBridge({ command: ['/bin/sh', fixture('greeter.sh')], killGraceMs: 5000, log: logs.log }));
    const client = await openClient(url('/greet'));
    await client.text();
    const started = Date.now();
    client.ws.close(1000, 'bye');
    await client.closed();
    await waitFor(() => activeProcessCount() === 0, 3000, 'the program to end on EOF');
    assert.ok(Date.now() - started < 2000, 'ended well before the grace period');
    assert.ok(logs.lines.some((line) => line.endsWith('exited (exit status 0)')), logs.lines.join('\n'));
    assert.ok(!logs.lines.some((line) => /SIGTERM|SIGKILL/.test(line)), logs.lines.join('\n'));
  });

  it('a program that ignores EOF gets SIGTERM after killGraceMs', async (t) => {
    const logs = logCollector();
    const { url } = await serve(t, '/polite', processBridge({ command: ['/bin/sh', fixture('polite.sh')], killGraceMs: 300, log: logs.log }));
    const client = await openClient(url('/polite'));
    const pid = await programPid(client);
    const closedAt = Date.now();
    client.ws.close();
    await client.closed();
    await sleep(150);
    assert.equal(processState(pid), 'running', 'still running inside the grace period');
    await waitFor(() => processState(pid) === 'gone', 3000, 'the program to exit on SIGTERM');
    const elapsed = Date.now() - closedAt;
    assert.ok(elapsed >= 280 && elapsed < 1500, `SIGTERM came after about 300 ms (took ${elapsed} ms)`);
    await waitFor(() => logs.lines.some((line) => line.endsWith('exited (exit status 3)')), 3000, 'the exit log line');
    assert.ok(logs.lines.some((line) => line.endsWith('stderr: got TERM')), logs.lines.join('\n'));
    assert.ok(logs.lines.some((line) => /after stdin EOF: SIGTERM$/.test(line)), logs.lines.join('\n'));
    assert.ok(!logs.lines.some((line) => /SIGKILL/.test(line)), logs.lines.join('\n'));
  });

  it('a program that ignores EOF and SIGTERM gets SIGKILL after twice killGraceMs', async (t) => {
    const logs = logCollector();
    const { url } = await serve(t, '/stubborn', processBridge({ command: ['/bin/sh', fixture('stubborn.sh')], killGraceMs: 200, log: logs.log }));
    const client = await openClient(url('/stubborn'));
    const pid = await programPid(client);
    const closedAt = Date.now();
    client.ws.close();
    await client.closed();
    await sleep(300);
    assert.equal(processState(pid), 'running', 'SIGTERM is ignored');
    await waitFor(() => processState(pid) === 'gone', 3000, 'SIGKILL');
    const elapsed = Date.now() - closedAt;
    assert.ok(elapsed >= 380 && elapsed < 2000, `SIGKILL came after about 400 ms (took ${elapsed} ms)`);
    await waitFor(() => activeProcessCount() === 0, 3000, 'the child to be reaped');
    assert.ok(logs.lines.some((line) => line.endsWith('exited (signal SIGKILL)')), logs.lines.join('\n'));
  });

  it('stops the programs a program started too (its process group)', async (t) => {
    const { url } = await serve(t, '/tree', processBridge({
      command: ['/bin/sh', '-c', 'trap "" TERM; sleep 60 & echo "pid $!"; wait'], killGraceMs: 100,
    }));
    const client = await openClient(url('/tree'));
    const grandchild = await programPid(client);
    assert.equal(processState(grandchild), 'running');
    client.ws.close();
    await client.closed();
    await waitFor(() => processState(grandchild) === 'gone', 3000, 'the grandchild to be stopped');
    await waitFor(() => activeProcessCount() === 0, 3000, 'the child to be reaped');
  });

  it('a program that exits while a program it started keeps stdout open still closes the connection', async (t) => {
    const { url } = await serve(t, '/orphan', processBridge({
      command: ['/bin/sh', '-c', 'sleep 60 & echo "pid $!"; exit 0'], killGraceMs: 100,
    }));
    const client = await openClient(url('/orphan'));
    const grandchild = await programPid(client);
    assert.deepEqual(await client.closed(), { code: 1000, reason: '', wasClean: true });
    await waitFor(() => processState(grandchild) === 'gone', 3000, 'the grandchild to be stopped');
  });

  it('leaves no zombie and no open fd after many connections ended every way', async (t) => {
    const { url } = await serve(t, '/:how', {
      ...processBridge({
        command: ['/bin/sh', '-c', 'case "$ROUTE_HOW" in exit) echo hi; exit 0;; fail) exit 5;; *) echo hi; exec cat;; esac'],
        killGraceMs: 100,
      }),
    });
    // Warm up (first connection, lazily created handles), then take the baseline.
    const warm = await openClient(url('/exit'));
    await warm.text();
    await warm.closed();
    await waitFor(() => activeProcessCount() === 0, 3000, 'warm-up program to end');
    await sleep(50);
    const fdsBefore = openFdCount();
    const clients = await Promise.all(Array.from({ length: 24 }, (_, i) => openClient(url(['/exit', '/fail', '/cat', '/drop'][i % 4]!))));
    await Promise.all(clients.map(async (client, i) => {
      if (i % 4 === 0) await client.text();
      if (i % 4 === 2) {
        await client.text();
        client.ws.close();
      }
      if (i % 4 === 3) {
        await client.text();
        client.ws.terminate();
      }
      await client.closed();
    }));
    await waitFor(() => activeProcessCount() === 0, 5000, 'every program to be reaped');
    await sleep(100);
    assert.deepEqual(zombieChildren(), [], 'no zombie children');
    assert.equal(openFdCount(), fdsBefore, 'as many fds open as before');
  });

  it('server shutdown closes the connections (1001) and stops every program; allProcessesExited() resolves', async (t) => {
    const { app, url } = await serve(t, '/:kind', processBridge({
      command: ['/bin/sh', '-c', 'if [ "$ROUTE_KIND" = stubborn ]; then exec /bin/sh "$STUBBORN"; fi; echo "pid $$"; exec cat'],
      env: { STUBBORN: fixture('stubborn.sh') }, killGraceMs: 100,
    }));
    const clients = await Promise.all(['/cat', '/cat', '/stubborn', '/stubborn'].map((path) => openClient(url(path))));
    const pids = await Promise.all(clients.map((client) => programPid(client)));
    assert.equal(activeProcessCount(), 4);
    await app.close();
    for (const client of clients) assert.equal((await client.closed()).code, 1001);
    await allProcessesExited();
    assert.equal(activeProcessCount(), 0);
    for (const pid of pids) assert.equal(processState(pid), 'gone', `pid ${pid} reaped`);
    assert.deepEqual(zombieChildren(), []);
  });
});

describe('processBridge backpressure into the program', () => {
  it('pauses reading the WebSocket while the program\'s stdin is full, and loses nothing', async (t) => {
    let serverSide: WebSocket<unknown> | undefined;
    const totalBytes = 4 * 1024 * 1024;
    const bridge = processBridge({
      command: ['/bin/sh', '-c', `echo ready; sleep 1; head -c ${totalBytes} | wc -c`], framing: 'line',
    });
    const { url } = await serve(t, '/slow', { ...bridge, open(ws) { serverSide = ws; bridge.open!(ws); } });
    const client = await openClient(url('/slow'));
    assert.equal(await client.text(), 'ready');
    // 64 lines of 64 KiB (65535 bytes + the newline the bridge adds).
    const line = Buffer.alloc(65535, 0x61);
    for (let i = 0; i < 64; i++) client.ws.send(line, true);
    await waitFor(() => serverSide?.isPaused === true, 3000, 'the server to pause reading');
    assert.ok(client.ws.bufferedAmount > 0 || serverSide!.isPaused);
    const count = await client.text('the byte count');
    assert.equal(count.trim(), String(totalBytes));
    assert.equal(serverSide!.isPaused, false, 'reading resumed once stdin drained');
    assert.equal((await client.closed()).code, 1000);
  });
});
