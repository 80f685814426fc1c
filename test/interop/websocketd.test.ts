// websocketd side by side with our process bridge (issue 5, item 6): the same program (test/bridges/fixtures/
// greeter.sh) and the same client transcript through a real websocketd and through processBridge() give the
// same messages in the same order, and both end the connection when the program exits; the CGI variables a
// program reads for the request agree too. Differences we keep on purpose are asserted, not hidden: when the
// program exits websocketd drops the TCP connection without a close frame (the client sees 1006), we send
// close 1000.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { connect as netConnect } from 'node:net';
import type { TestContext } from 'node:test';
import { needPeer, programPath, websocketdMissing } from '../_support/peers.js';
import { sleep } from '../_support/cleanup.js';
import { freePort } from '../_support/resources.js';
import { processBridge } from '../../src/bridges/process-bridge.js';
import { fixture, openClient, serve, type ClientEvent } from '../bridges/fixtures/harness.js';

const HOST = '127.0.0.1';
const GREETER = ['/bin/sh', fixture('greeter.sh')];

function acceptsConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect(port, HOST);
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

/** Starts websocketd for `command` on a free port; retries if another process took the port meanwhile. */
async function startWebsocketd(t: TestContext, command: readonly string[]): Promise<number> {
  const binary = programPath('websocketd');
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const child: ChildProcess = spawn(binary, [`--address=${HOST}`, `--port=${port}`, '--loglevel=error', ...command], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    let exited = false;
    child.once('exit', () => { exited = true; });
    t.after(() => {
      if (exited) return undefined;
      return new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      });
    });
    const deadline = Date.now() + 5000;
    while (!exited && Date.now() < deadline) {
      if (await acceptsConnections(port)) return port;
      await sleep(20);
    }
    if (attempt === 3) throw new Error(`websocketd did not start on port ${port}: ${stderr}`);
    child.kill('SIGKILL');
  }
}

interface Transcript {
  /** Messages as "text:..." / "binary:<hex>", then "close" once the connection ended. */
  events: string[];
  closeCode: number;
  wasClean: boolean;
}

/** Connects, sends `messages` at once, and records everything until the connection ends. */
async function runTranscript(url: string, messages: readonly string[], headers: Readonly<Record<string, string>> = {}): Promise<Transcript> {
  const client = await openClient(url, { headers });
  for (const message of messages) client.ws.send(message);
  const events: string[] = [];
  for (;;) {
    const event: ClientEvent = await client.events.next(10_000, `the transcript from ${url}`);
    if (event.kind === 'close') {
      events.push('close');
      return { events, closeCode: event.code, wasClean: event.wasClean };
    }
    events.push(event.kind === 'text' ? `text:${event.text}` : `binary:${event.data.toString('hex')}`);
  }
}

async function environmentOf(url: string, headers: Readonly<Record<string, string>>): Promise<Map<string, string>> {
  const transcript = await runTranscript(url, [], headers);
  const vars = new Map<string, string>();
  for (const event of transcript.events) {
    if (!event.startsWith('text:')) continue;
    const line = event.slice('text:'.length);
    const at = line.indexOf('=');
    if (at > 0) vars.set(line.slice(0, at), line.slice(at + 1));
  }
  return vars;
}

describe('websocketd and processBridge side by side', () => {
  it('the same program and transcript give the same messages in the same order, and both end when the program exits', { timeout: 30_000 }, async (t) => {
    if (!needPeer(t, websocketdMissing())) return;
    const websocketdPort = await startWebsocketd(t, GREETER);
    const ours = await serve(t, '/', processBridge({ command: GREETER }));
    // Plain words, a message holding a newline (both write it as two lines), an empty one, and quit.
    const messages = ['abc', 'Mixed Case 123', 'two\nlines', '', 'quit'];
    const theirs = await runTranscript(`ws://${HOST}:${websocketdPort}/`, messages);
    const mine = await runTranscript(ours.url('/'), messages);
    assert.deepEqual(mine.events, [
      'text:hello from greeter', 'text:1 ABC', 'text:2 MIXED CASE 123', 'text:3 TWO', 'text:4 LINES', 'text:5 ', 'text:bye after 6', 'close',
    ]);
    assert.deepEqual(mine.events, theirs.events, 'same messages, same order, then the end of the connection');
    t.diagnostic(`close when the program exits: websocketd ${theirs.closeCode} (clean ${String(theirs.wasClean)}), switchyard ${mine.closeCode} (clean ${String(mine.wasClean)})`);
    assert.deepEqual([mine.closeCode, mine.wasClean], [1000, true], 'we finish with a closing handshake');
    assert.ok([1000, 1006].includes(theirs.closeCode), `websocketd ended with ${theirs.closeCode}`);
  });

  it('a client that leaves first gets the same messages up to its close from both', { timeout: 30_000 }, async (t) => {
    if (!needPeer(t, websocketdMissing())) return;
    const websocketdPort = await startWebsocketd(t, GREETER);
    const ours = await serve(t, '/', processBridge({ command: GREETER }));
    const run = async (url: string): Promise<string[]> => {
      const client = await openClient(url);
      const seen = [await client.text(), (client.ws.send('first'), await client.text())];
      client.ws.close(1000, 'done');
      const close = await client.closed();
      seen.push(`close ${close.code}`);
      return seen;
    };
    const theirs = await run(`ws://${HOST}:${websocketdPort}/`);
    const mine = await run(ours.url('/'));
    assert.deepEqual(mine, ['hello from greeter', '1 FIRST', 'close 1000']);
    assert.deepEqual(mine, theirs);
  });

  it('the program sees the same CGI variables for the request from both', { timeout: 30_000 }, async (t) => {
    if (!needPeer(t, websocketdMissing())) return;
    const envCommand = ['/usr/bin/env'];
    const websocketdPort = await startWebsocketd(t, envCommand);
    const ours = await serve(t, '/env', processBridge({ command: envCommand }));
    const headers = { 'X-Custom': 'yes', Proxy: 'http://evil.example:3128' };
    const theirs = await environmentOf(`ws://${HOST}:${websocketdPort}/env?room=blue&x=%20y`, headers);
    const mine = await environmentOf(`${ours.url('/env')}?room=blue&x=%20y`, headers);
    for (const name of ['REQUEST_METHOD', 'HTTP_X_CUSTOM', 'QUERY_STRING', 'REQUEST_URI', 'REMOTE_ADDR', 'REMOTE_HOST', 'SERVER_NAME', 'SERVER_PROTOCOL', 'HTTP_UPGRADE', 'HTTP_SEC_WEBSOCKET_VERSION']) {
      assert.equal(mine.get(name), theirs.get(name), `${name}: ours ${mine.get(name)}, websocketd ${theirs.get(name)}`);
    }
    // SERVER_PORT is each server's own port; both report the port the client connected to.
    assert.equal(theirs.get('SERVER_PORT'), String(websocketdPort));
    assert.equal(mine.get('SERVER_PORT'), String(ours.port));
    assert.match(mine.get('REMOTE_PORT') ?? '', /^\d+$/);
    assert.match(theirs.get('REMOTE_PORT') ?? '', /^\d+$/);
    // Where we differ on purpose: RFC 3875's GATEWAY_INTERFACE (websocketd says "websocketd-CGI/0.1"), and no
    // HTTP_PROXY from a client's Proxy header (httpoxy; the websocketd build tested here passes it on).
    assert.equal(mine.get('GATEWAY_INTERFACE'), 'CGI/1.1');
    assert.equal(mine.has('HTTP_PROXY'), false);
    t.diagnostic(`websocketd: GATEWAY_INTERFACE=${theirs.get('GATEWAY_INTERFACE')}, HTTP_PROXY ${theirs.has('HTTP_PROXY') ? 'set from the Proxy header' : 'not set'}`);
  });
});
