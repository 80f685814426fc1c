// `switchyard connect URL` in a pipe (issue 6, item 3): stdin lines become messages and messages become stdout
// lines; end of stdin closes with 1000 and every message that arrives before the server's close is printed;
// --execute; handshake options reaching the server; flow control both ways; exit codes 0/1/2. The CLI runs as
// a child process (node dist/src/cli/main.js connect ...) against `switchyard serve` or an embedded server.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { cleanupStack, waitFor } from '../_support/cleanup.js';
import { cliPath } from '../_support/cli-server.js';
import { makeCertificate, OPENSSL_MISSING, type TestCertificate } from '../config/_certificates.js';
import type { WebSocket } from '../../src/transport/websocket.js';
import { assertUsageError, runCli, startServer } from './_cli.js';
import { runConnect, spawnConnect, startEmbedded } from './_connect.js';

describe('switchyard connect in a pipe', () => {
  it("printf 'a\\nb\\n' | switchyard connect URL prints the echoes a and b, and exits 0", async (t) => {
    const defer = cleanupStack(t);
    const server = await startServer(defer, ['--echo', '/echo', '--ping-interval-ms', '0', '--access-log', 'off']);
    // Through a real shell pipe, as a script would write it.
    const child = spawn('sh', ['-c', `printf 'a\\nb\\n' | "${process.execPath}" "${cliPath}" connect ${server.wsUrl}/echo`], { stdio: ['ignore', 'pipe', 'pipe'] });
    defer(() => child.kill('SIGKILL'));
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk; });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    assert.equal(stderr, '');
    assert.equal(stdout, 'a\nb\n');
    assert.equal(code, 0);
  });

  it('sends an unterminated last line, empty lines as empty messages, and strips \\r before \\n', async (t) => {
    const defer = cleanupStack(t);
    const received: string[] = [];
    const { wsUrl } = await startEmbedded(defer, (app) => app.websocket('/echo', {
      message(ws, data, isBinary) { received.push(data.toString()); ws.send(data, isBinary); },
    }));
    const result = await runConnect(t, [`${wsUrl}/echo`], 'one\r\n\nthree');
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(received, ['one', '', 'three']);
    assert.equal(result.stdout, 'one\n\nthree\n');
  });

  it('sends a line that is not UTF-8 as a binary message, and --show-binary picks hex (default) or base64 for binary replies', async (t) => {
    const defer = cleanupStack(t);
    const received: Array<{ data: Buffer; isBinary: boolean }> = [];
    const { wsUrl } = await startEmbedded(defer, (app) => app.websocket('/echo', {
      message(ws, data, isBinary) { received.push({ data: Buffer.from(data), isBinary }); ws.send(data, isBinary); },
    }));
    const input = Buffer.concat([Buffer.from([0xff, 0xfe, 0x0a]), Buffer.from('ok\n')]);
    const hex = await runConnect(t, [`${wsUrl}/echo`], input);
    assert.equal(hex.code, 0, hex.stderr);
    assert.equal(hex.stdout, 'fffe\nok\n');
    assert.deepEqual(received.slice(0, 2), [{ data: Buffer.from([0xff, 0xfe]), isBinary: true }, { data: Buffer.from('ok'), isBinary: false }]);
    const base64 = await runConnect(t, [`${wsUrl}/echo`, '--show-binary', 'base64'], input);
    assert.equal(base64.code, 0, base64.stderr);
    assert.equal(base64.stdout, '//4=\nok\n');
  });

  it('exits 1 with the code and reason on stderr when the server closes with 4000', async (t) => {
    const defer = cleanupStack(t);
    const { wsUrl } = await startEmbedded(defer, (app) => app.websocket('/bye', { open(ws) { ws.send('last words'); ws.close(4000, 'go away'); } }));
    const result = await runConnect(t, [`${wsUrl}/bye`], 'keep-open');
    assert.equal(result.code, 1);
    assert.equal(result.stdout, 'last words\n');
    assert.equal(result.stderr, 'switchyard: connection closed with 4000 "go away"\n');
  });

  it('exits 0 when the server closes with 1000, printing all 1,000 messages it sent first, in order', async (t) => {
    const defer = cleanupStack(t);
    const { wsUrl } = await startEmbedded(defer, (app) => app.websocket('/burst', {
      open(ws) {
        for (let i = 0; i < 1000; i++) ws.send(`message ${i}`);
        ws.close(1000, 'done');
      },
    }));
    const result = await runConnect(t, [`${wsUrl}/burst`], 'keep-open');
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    assert.deepEqual(result.stdout, Array.from({ length: 1000 }, (_, i) => `message ${i}\n`).join(''));
  });

  it('after end of stdin sends close 1000, yet prints every message the server sends before its close', async (t) => {
    const defer = cleanupStack(t);
    let serverSawClose: { code: number; reason: string } | undefined;
    const { wsUrl } = await startEmbedded(defer, (app) => app.websocket('/burst', {
      // "go" and our close frame arrive together: the 1,000 replies are queued before the close answer.
      message(ws, data) { if (data.toString() === 'go') for (let i = 0; i < 1000; i++) ws.send(`reply ${i}`); },
      close(_ws, code, reason) { serverSawClose = { code, reason }; },
    }));
    const result = await runConnect(t, [`${wsUrl}/burst`], 'go\n');
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.split('\n').length - 1, 1000);
    assert.equal(result.stdout, Array.from({ length: 1000 }, (_, i) => `reply ${i}\n`).join(''));
    await waitFor(() => serverSawClose !== undefined, 3000, 'the server to see the close');
    assert.deepEqual(serverSawClose, { code: 1000, reason: '' });
  });

  it('on SIGINT closes with 1000 and exits 0 (stdin still open)', async (t) => {
    const defer = cleanupStack(t);
    let serverSawClose: { code: number; reason: string } | undefined;
    const { wsUrl } = await startEmbedded(defer, (app) => app.websocket('/idle', {
      open(ws) { ws.send('ready'); },
      close(_ws, code, reason) { serverSawClose = { code, reason }; },
    }));
    const run = spawnConnect(t, [`${wsUrl}/idle`]);
    // The CLI prints a message once connected, in the same turn in which it takes over SIGINT.
    await waitFor(() => run.stdout() === 'ready\n', 3000, 'the first message');
    run.child.kill('SIGINT');
    const result = await run.exit();
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'ready\n');
    assert.equal(result.stderr, 'switchyard: closing (Ctrl-C again to quit at once)\n');
    await waitFor(() => serverSawClose !== undefined, 3000, 'the server to see the close');
    assert.deepEqual(serverSawClose, { code: 1000, reason: '' });
  });

  it('sends -H headers, --origin and the --protocol list with the handshake; the server selects a protocol', async (t) => {
    const defer = cleanupStack(t);
    const seen: Array<{ headers: WebSocket['headers']; protocol: string }> = [];
    const { wsUrl } = await startEmbedded(defer, (app) => app.websocket('/inspect', {
      protocols: ['chat.v2'],
      open(ws) { seen.push({ headers: ws.headers, protocol: ws.protocol }); },
      message(ws, data) { ws.send(`${ws.protocol}:${data.toString()}`); },
    }));
    const result = await runConnect(t, [`${wsUrl}/inspect`, '-H', 'X-Token: secret', '-H', 'X-Token: second', '--header=X-Trace: 7',
      '--origin', 'https://app.example', '--protocol', 'chat.v1', '--protocol', 'chat.v2', '--execute', 'hi']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'chat.v2:hi\n');
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.protocol, 'chat.v2');
    assert.equal(seen[0]!.headers['x-token'], 'secret, second');
    assert.equal(seen[0]!.headers['x-trace'], '7');
    assert.equal(seen[0]!.headers['origin'], 'https://app.example');
    assert.equal(seen[0]!.headers['sec-websocket-protocol'], 'chat.v1, chat.v2');
  });

  it('--deflate offers permessage-deflate, and a large compressed reply arrives whole', async (t) => {
    const defer = cleanupStack(t);
    const extensions: string[] = [];
    const { wsUrl } = await startEmbedded(defer, (app) => app.websocket('/z', {
      perMessageDeflate: true,
      open(ws) { extensions.push(ws.extensions); },
      message(ws) { ws.send('z'.repeat(100_000)); },
    }));
    const result = await runConnect(t, [`${wsUrl}/z`, '--deflate', '-x', 'go']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, `${'z'.repeat(100_000)}\n`);
    assert.match(extensions[0] ?? '', /^permessage-deflate/);
  });

  it('--max-message-bytes: a larger message closes with 1009 and exits 1', async (t) => {
    const defer = cleanupStack(t);
    const { wsUrl } = await startEmbedded(defer, (app) => app.websocket('/big', { open(ws) { ws.send('x'.repeat(2000)); } }));
    const result = await runConnect(t, [`${wsUrl}/big`, '--max-message-bytes', '1000'], 'keep-open');
    assert.equal(result.code, 1);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /^switchyard: connection closed with 1009 /);
  });
});

describe('switchyard connect --execute', () => {
  it('sends MSG, prints the first --replies N replies, closes with 1000 and exits 0', async (t) => {
    const defer = cleanupStack(t);
    let closeCode: number | undefined;
    const { wsUrl } = await startEmbedded(defer, (app) => app.websocket('/three', {
      message(ws, data) { for (const n of [1, 2, 3]) ws.send(`${data.toString()} ${n}`); },
      close(_ws, code) { closeCode = code; },
    }));
    const result = await runConnect(t, [`${wsUrl}/three`, '--execute', 'ask', '--replies', '2'], 'stdin is not read with --execute\n');
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'ask 1\nask 2\n');
    await waitFor(() => closeCode !== undefined, 3000, 'the server to see the close');
    assert.equal(closeCode, 1000);
  });

  it('sends several -x messages in order; the default is one reply', async (t) => {
    const defer = cleanupStack(t);
    const server = await startServer(defer, ['--echo', '/echo', '--ping-interval-ms', '0', '--access-log', 'off']);
    const one = await runConnect(t, [`${server.wsUrl}/echo`, '-x', 'first', '-x', 'second']);
    assert.equal(one.code, 0, one.stderr);
    assert.equal(one.stdout, 'first\n');
    const two = await runConnect(t, [`${server.wsUrl}/echo`, '-x', 'first', '-x', 'second', '--replies', '2']);
    assert.equal(two.stdout, 'first\nsecond\n');
  });

  it('exits 1 after --reply-timeout-ms when fewer replies came, printing those that did', async (t) => {
    const defer = cleanupStack(t);
    const server = await startServer(defer, ['--echo', '/echo', '--ping-interval-ms', '0', '--access-log', 'off']);
    const started = Date.now();
    const result = await runConnect(t, [`${server.wsUrl}/echo`, '--execute', 'only one', '--replies', '2', '--reply-timeout-ms', '300']);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, 'only one\n');
    assert.equal(result.stderr, 'switchyard: timed out after 300 ms with 1 of 2 replies\n');
    assert.ok(Date.now() - started >= 300);
  });

  it('--replies 0 sends and closes at once', async (t) => {
    const defer = cleanupStack(t);
    const received: string[] = [];
    const { wsUrl } = await startEmbedded(defer, (app) => app.websocket('/sink', { message(_ws, data) { received.push(data.toString()); } }));
    const result = await runConnect(t, [`${wsUrl}/sink`, '-x', 'fire', '--replies', '0']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, '');
    assert.deepEqual(received, ['fire']);
  });

  it('exits 1 when the server closes normally before the replies came', async (t) => {
    const defer = cleanupStack(t);
    const { wsUrl } = await startEmbedded(defer, (app) => app.websocket('/rude', { message(ws) { ws.close(1000, 'no'); } }));
    const result = await runConnect(t, [`${wsUrl}/rude`, '-x', 'hello?']);
    assert.equal(result.code, 1);
    assert.equal(result.stderr, 'switchyard: connection closed with 1000 "no" after 0 of 1 replies\n');
  });
});

describe('switchyard connect: flow control', () => {
  it('stops reading the socket while stdout is not read (the server stalls), and loses nothing', async (t) => {
    const defer = cleanupStack(t);
    const total = 4000;
    const payload = 'y'.repeat(16 * 1024 - 1);
    let sent = 0;
    const { wsUrl } = await startEmbedded(defer, (app) => app.websocket('/flood', {
      open(ws) { pump(ws); },
      drain(ws) { pump(ws); },
    }));
    // Sends until backpressure, then waits for drain: how far it gets shows how much the client took in.
    function pump(ws: WebSocket): void {
      while (sent < total) {
        sent++;
        if (!ws.send(payload)) return;
      }
      ws.close(1000);
    }
    const run = spawnConnect(t, [`${wsUrl}/flood`]);
    run.child.stdout.pause();
    await waitFor(() => sent > 0, 3000, 'the flood to start');
    await new Promise((resolve) => setTimeout(resolve, 800));
    const stalledAt = sent;
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.equal(sent, stalledAt, 'the server kept sending while nobody read the CLI\'s stdout');
    assert.ok(stalledAt < total / 2, `the CLI took in ${stalledAt} of ${total} 16 KiB messages without writing them out`);
    run.child.stdout.resume();
    const result = await run.exit(20_000);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.length, total * 16 * 1024);
  });

  it('stops reading stdin while the server does not read (send() reports backpressure), and loses nothing', async (t) => {
    const defer = cleanupStack(t);
    const lineCount = 48 * 1024;
    const line = `${'x'.repeat(1023)}\n`;
    let received = 0;
    let socket: WebSocket | undefined;
    const { wsUrl } = await startEmbedded(defer, (app) => app.websocket('/slow', {
      open(ws) { socket = ws; ws.pause(); },
      message() { received++; },
    }));
    const run = spawnConnect(t, [`${wsUrl}/slow`]);
    await waitFor(() => socket !== undefined, 3000, 'the connection');
    run.child.stdin.write(line.repeat(lineCount));
    await new Promise((resolve) => setTimeout(resolve, 1000));
    // 48 MiB written; kernel buffers and the client's 1 MiB send limit hold a fraction of it.
    const unread = run.child.stdin.writableLength;
    assert.ok(unread > 16 * 1024 * 1024, `the CLI read ${48 * 1024 * 1024 - unread} bytes of stdin while the server read nothing`);
    socket!.resume();
    run.child.stdin.end();
    const result = await run.exit(30_000);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(received, lineCount);
  });
});

describe('switchyard connect: failures', () => {
  let dir: string;
  let certificate: TestCertificate | undefined;
  before(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'switchyard-connect-tls-'));
    certificate = await makeCertificate(dir);
  });
  after(() => fsp.rm(dir, { recursive: true, force: true }));

  it('exits 1 for a refused connection, naming the URL', async (t) => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as net.AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    const result = await runCli(t, ['connect', `ws://127.0.0.1:${port}/echo`]);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, '');
    assert.equal(result.stderr, `switchyard: cannot connect to ws://127.0.0.1:${port}/echo: connection refused (is a server listening there?)\n`);
  });

  it('exits 1 when the server answers the handshake with 404', async (t) => {
    const defer = cleanupStack(t);
    const server = await startServer(defer, ['--echo', '/echo', '--ping-interval-ms', '0', '--access-log', 'off']);
    const result = await runCli(t, ['connect', `${server.wsUrl}/nowhere`]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^switchyard: cannot connect to .*\/nowhere: server answered 404 Not Found instead of 101\n$/);
  });

  it('wss:// with a self-signed certificate: exits 1 naming TLS and --insecure; with --insecure it connects', async (t) => {
    if (certificate === undefined) return t.skip(OPENSSL_MISSING);
    const defer = cleanupStack(t);
    const server = await startServer(defer, ['--echo', '/echo', '--ping-interval-ms', '0', '--access-log', 'off',
      '--tls-cert', certificate.certFile, '--tls-key', certificate.keyFile]);
    const url = `wss://127.0.0.1:${server.port}/echo`;
    const refused = await runCli(t, ['connect', url, '-x', 'hi']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^switchyard: cannot connect to wss:.*: TLS: .*self[- ]signed.*\(--insecure skips certificate verification\)\n$/);
    const accepted = await runConnect(t, [url, '--insecure', '-x', 'over tls']);
    assert.equal(accepted.code, 0, accepted.stderr);
    assert.equal(accepted.stdout, 'over tls\n');
  });

  it('exits 2 for an unknown flag or a bad value, naming the flag, before connecting', async (t) => {
    const unknown = await runCli(t, ['connect', 'ws://127.0.0.1:9/echo', '--protocl', 'x']);
    assertUsageError(unknown, /--protocl: unknown flag \(did you mean "--protocol"\?\)\nRun "switchyard connect --help" for usage\./);
    assertUsageError(await runCli(t, ['connect', 'ws://127.0.0.1:9/echo', '--show-binary', 'octal']), /--show-binary: must be one of hex, base64/);
    assertUsageError(await runCli(t, ['connect']), /URL: missing/);
    assertUsageError(await runCli(t, ['connect', 'http://127.0.0.1:9/']), /URL: must be a ws:\/\/ or wss:\/\/ URL .*did you mean "ws:\/\/127\.0\.0\.1:9\/"/);
  });

  it('--help prints the connect usage and exits 0', async (t) => {
    const result = await runCli(t, ['connect', '--help']);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /^Usage: switchyard connect URL \[options\]/);
    assert.match(result.stdout, /--ping-interval-ms N/);
    assert.equal(result.stderr, '');
  });
});
