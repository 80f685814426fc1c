// Lifecycle tests for cgiHandler (src/bridges/cgi.ts, cgi-process.ts): the no-progress timeout (504 before the
// headers, a cut response after them) and the kill that reaches a script's own children (SIGTERM, then SIGKILL
// for one that ignores it); a client that leaves mid-response; no zombie and no leaked descriptor after many
// runs of every kind; and bounded memory while a script floods a client that does not read.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { promises as fsp } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { activeCgiProcessCount } from '../../src/bridges/cgi-process.js';
import { childPids, hasPython, makeCgiBin, openFdCount, parseResponse, processExists, rawExchange, request, startCgiServer, waitFor } from './cgi-fixtures/harness.js';
import * as scripts from './cgi-fixtures/scripts.js';

async function readPid(file: string): Promise<number> {
  let text = '';
  await waitFor(`a pid in ${file}`, async () => {
    text = await fsp.readFile(file, 'utf8').catch(() => '');
    return /^\d+\n$/.test(text);
  });
  return Number(text.trim());
}

/** Opens a connection, sends a GET for `target`, and resolves once `until` is in what has arrived. */
function openSlowReader(port: number, target: string, until: string): Promise<{ socket: net.Socket; received: () => number }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    let bytes = 0;
    let resolved = false;
    socket.on('error', (error) => { if (!resolved) reject(error); });
    socket.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (resolved) return;
      text += chunk.toString('latin1');
      if (text.includes(until)) {
        resolved = true;
        resolve({ socket, received: () => bytes });
      }
    });
    socket.write(`GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`);
  });
}

describe('cgiHandler: timeouts and kills', () => {
  it('answers 504 when the script makes no progress for timeoutMs, and kills it with what it started', async (t) => {
    const base = await makeCgiBin(t, {});
    const pidFile = path.join(path.dirname(base), 'grandchild.pid');
    await fsp.writeFile(path.join(base, 'hang.cgi'), scripts.hangWithGrandchild(pidFile), { mode: 0o755 });
    const server = await startCgiServer(t, base, { timeoutMs: 400 });
    const started = Date.now();
    const response = await request(server.port, 'GET', '/cgi-bin/hang.cgi');
    assert.equal(response.status, 504);
    assert.ok(Date.now() - started >= 380, 'not before the timeout');
    const grandchild = await readPid(pidFile);
    await waitFor('the grandchild (sleep 300) to be killed', () => !processExists(grandchild));
    await waitFor('no child left', () => childPids().length === 0 && activeCgiProcessCount() === 0);
    await waitFor('the log line', () => server.logs.some((line) => /^cgi \/cgi-bin\/hang\.cgi: no progress for 400 ms \(killed by SIGTERM\); stderr: hanging$/.test(line)));
  });

  it('after the headers, a timeout cuts the response (the client sees it incomplete) and kills the script', async (t) => {
    const directory = await makeCgiBin(t, { 'half.cgi': scripts.hangAfterHeaders });
    const server = await startCgiServer(t, directory, { timeoutMs: 300 });
    const response = parseResponse(await rawExchange(server.port, 'GET /cgi-bin/half.cgi HTTP/1.1\r\nHost: x\r\n\r\n'));
    assert.equal(response.status, 200);
    assert.equal(response.body.toString(), 'partial\n');
    assert.equal(response.complete, false, 'no last chunk: the client can tell the response is truncated');
    await waitFor('no child left', () => childPids().length === 0);
  });

  it('a script that ignores SIGTERM gets SIGKILL after the grace period', async (t) => {
    const directory = await makeCgiBin(t, { 'stubborn.cgi': '#!/bin/sh\ntrap "" TERM\nwhile :; do sleep 0.05; done\n' });
    const server = await startCgiServer(t, directory, { timeoutMs: 200 });
    const response = await request(server.port, 'GET', '/cgi-bin/stubborn.cgi');
    assert.equal(response.status, 504);
    await waitFor('the script to be killed', () => childPids().length === 0, 6000);
    await waitFor('the log line', () => server.logs.some((line) => /no progress for 200 ms \(killed by SIGKILL\)/.test(line)));
  });

  it('progress resets the timeout: a slow but steady upload and a slow but steady body both complete', async (t) => {
    const directory = await makeCgiBin(t, { 'form.cgi': scripts.classicForm, 'slow.cgi': '#!/bin/sh\necho "Content-Type: text/plain"\necho\nfor i in 1 2 3 4 5 6; do echo $i; sleep 0.15; done\n' });
    const server = await startCgiServer(t, directory, { timeoutMs: 400 });
    const socket = net.connect(server.port, '127.0.0.1');
    t.after(() => socket.destroy());
    const chunks: Buffer[] = [];
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    const body = 'a=1&b=2&c=3&d=4&e=5';
    socket.write(`POST /cgi-bin/form.cgi HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: ${body.length}\r\n\r\n`);
    for (const piece of body.match(/.{1,4}/g)!) { // 5 pieces, 150 ms apart: 750 ms in all, more than the timeout
      await new Promise((resolve) => setTimeout(resolve, 150));
      socket.write(piece);
    }
    await closed;
    const upload = parseResponse(Buffer.concat(chunks));
    assert.equal(upload.status, 200);
    assert.match(upload.body.toString(), /a=1\nb=2\nc=3\nd=4\ne=5\n$/);
    const slow = await request(server.port, 'GET', '/cgi-bin/slow.cgi');
    assert.equal(slow.status, 200);
    assert.equal(slow.body.toString(), '1\n2\n3\n4\n5\n6\n');
  });

  it('an upload that stalls is a timeout too (504): the script waits on stdin in vain', async (t) => {
    const directory = await makeCgiBin(t, { 'form.cgi': scripts.classicForm });
    const server = await startCgiServer(t, directory, { timeoutMs: 300 });
    const response = parseResponse(await rawExchange(server.port, 'POST /cgi-bin/form.cgi HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly ten b'));
    assert.equal(response.status, 504);
    await waitFor('no child left', () => childPids().length === 0);
  });
});

describe('cgiHandler: the client goes away', () => {
  it('a disconnect mid-response kills the script', async (t) => {
    const directory = await makeCgiBin(t, { 'slow.cgi': scripts.slowBody });
    const server = await startCgiServer(t, directory);
    const { socket } = await openSlowReader(server.port, '/cgi-bin/slow.cgi', 'line 2\n');
    assert.equal(childPids().length, 1);
    socket.destroy();
    await waitFor('the script to be killed', () => childPids().length === 0 && activeCgiProcessCount() === 0);
    await waitFor('the log line', () => server.logs.some((line) => /^cgi \/cgi-bin\/slow\.cgi: client disconnected \(killed by SIGTERM\)$/.test(line)));
  });

  it('a disconnect before the script answers kills it too', async (t) => {
    const base = await makeCgiBin(t, {});
    const pidFile = path.join(path.dirname(base), 'grandchild.pid');
    await fsp.writeFile(path.join(base, 'hang.cgi'), scripts.hangWithGrandchild(pidFile), { mode: 0o755 });
    const server = await startCgiServer(t, base);
    const socket = net.connect(server.port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write('GET /cgi-bin/hang.cgi HTTP/1.1\r\nHost: x\r\n\r\n');
    const grandchild = await readPid(pidFile);
    socket.destroy();
    await waitFor('the grandchild to be killed', () => !processExists(grandchild));
    await waitFor('no child left', () => childPids().length === 0);
  });
});

describe('cgiHandler: no zombies, no leaked descriptors', () => {
  it('after many runs of every kind (ok, POST, 502, 504, 404, disconnects), sequential and concurrent', async (t) => {
    const directory = await makeCgiBin(t, {
      'ok.cgi': scripts.classicQuery, 'form.cgi': scripts.classicForm, 'fail.cgi': scripts.failsSilently,
      'bad.cgi': scripts.notAHeader, 'hang.cgi': '#!/bin/sh\nexec sleep 30\n', 'slow.cgi': scripts.slowBody,
      'noread.cgi': '#!/bin/sh\necho "Content-Type: text/plain"\necho\necho "did not read"\n',
    });
    const server = await startCgiServer(t, directory, { timeoutMs: 300 });
    // One warm-up of each path, so lazily opened descriptors (the loader, libuv's signal pipe) are counted in the baseline.
    await request(server.port, 'GET', '/cgi-bin/ok.cgi?name=warm');
    await request(server.port, 'GET', '/cgi-bin/hang.cgi');
    await waitFor('warm-up runs to end', () => childPids().length === 0);
    const baseline = openFdCount();

    const round = async (i: number): Promise<void> => {
      assert.equal((await request(server.port, 'GET', `/cgi-bin/ok.cgi?name=n${i}`)).status, 200);
      assert.equal((await request(server.port, 'POST', '/cgi-bin/form.cgi', { body: `i=${i}` })).status, 200);
      assert.equal((await request(server.port, 'POST', '/cgi-bin/noread.cgi', { body: Buffer.alloc(200_000, 1) })).status, 200);
      assert.equal((await request(server.port, 'GET', '/cgi-bin/fail.cgi')).status, 502);
      assert.equal((await request(server.port, 'GET', '/cgi-bin/bad.cgi')).status, 502);
      assert.equal((await request(server.port, 'GET', '/cgi-bin/missing.cgi')).status, 404);
      const { socket } = await openSlowReader(server.port, '/cgi-bin/slow.cgi', 'line 0\n');
      socket.destroy();
    };
    for (let i = 0; i < 5; i++) await round(i);
    await Promise.all(Array.from({ length: 8 }, (_, i) => round(100 + i)));
    await Promise.all(Array.from({ length: 4 }, () => request(server.port, 'GET', '/cgi-bin/hang.cgi').then((r) => assert.equal(r.status, 504))));

    await waitFor('every script reaped (no child, zombie or not)', () => childPids().length === 0 && activeCgiProcessCount() === 0, 8000);
    await waitFor(`descriptors back to the baseline of ${baseline} (now ${openFdCount()})`, () => openFdCount() <= baseline, 5000);
  });
});

describe('cgiHandler: backpressure', () => {
  it('a script flooding a client that does not read is held back: server memory stays bounded', { skip: !hasPython && 'needs /usr/bin/python3' }, async (t) => {
    const directory = await makeCgiBin(t, { 'flood.cgi': scripts.pythonFlood });
    const server = await startCgiServer(t, directory);
    const totalWritten = (): number => {
      for (let i = server.logs.length - 1; i >= 0; i--) {
        const match = /total (\d+)$/.exec(server.logs[i]!);
        if (match !== null) return Number(match[1]);
      }
      return 0;
    };
    const rssBefore = process.memoryUsage().rss;
    const { socket, received } = await openSlowReader(server.port, '/cgi-bin/flood.cgi', '\r\n\r\n');
    t.after(() => socket.destroy());
    socket.pause(); // stop reading: the kernel buffers fill, then node's, then the pipe, then the script blocks
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const stalledAt = totalWritten();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const stillStalled = totalWritten();
    // Without backpressure the script writes hundreds of MiB a second. With it, what it wrote is what the socket
    // buffers (a few MiB on loopback), node's 16 KiB, the 64 KiB pipe and python's block: well under 32 MiB.
    assert.ok(stalledAt < 32 * 1024 * 1024, `the script wrote ${stalledAt} bytes to a client that reads nothing`);
    assert.equal(stillStalled, stalledAt, 'the script is blocked, not just slow');
    const rssGrowth = process.memoryUsage().rss - rssBefore;
    assert.ok(rssGrowth < 64 * 1024 * 1024, `server RSS grew by ${rssGrowth} bytes`);

    // Reading again releases it: the data flows.
    const receivedBefore = received();
    socket.resume();
    await waitFor('the script to write more', () => totalWritten() > stalledAt + 8 * 1024 * 1024);
    assert.ok(received() > receivedBefore);
    socket.destroy();
    await waitFor('the script to be killed when the client leaves', () => childPids().length === 0, 6000);
  });
});
