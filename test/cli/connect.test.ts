// `switchyard connect URL` in a pipe (issue 6, item 3): stdin lines become messages and messages become stdout
// lines; end of stdin closes with 1000 and every message that arrives before the server's close is printed;
// --execute; handshake options reaching the server; flow control both ways; redirects, Unix sockets, client
// certificates and SNI; exit codes 0/1/2. The CLI runs as a child process (node dist/src/cli/main.js connect
// ...) against `switchyard serve`, an embedded server, or the connect() tests' servers (test/client/_servers.ts).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, promises as fsp } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { cleanupStack, waitFor, waitForSteady } from '../_support/cleanup.js';
import { cliPath } from '../_support/cli-server.js';
import { makeCertificate, OPENSSL_MISSING, type TestCertificate } from '../config/_certificates.js';
import { rawHttpServer, tlsServer, unixSocketServer } from '../client/_servers.js';
import { KEY_PASSPHRASE_ENV } from '../../src/config/connect-flags.js';
import { ReadyState } from '../../src/protocol/constants.js';
import type { WebSocket } from '../../src/transport/websocket.js';
import { assertUsageError, runCli, startServer, type Defer } from './_cli.js';
import { runConnect, spawnConnect, startEmbedded } from './_connect.js';

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A raw server that answers every handshake with a 302 to `location`. */
async function redirector(defer: Defer, location: string): Promise<string> {
  const { port } = await rawHttpServer(defer, (_head, socket) => {
    socket.end(`HTTP/1.1 302 Found\r\nLocation: ${location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
  });
  return `ws://127.0.0.1:${port}`;
}

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

  it('takes an http:// URL as ws://, as connect() does', async (t) => {
    const defer = cleanupStack(t);
    const { wsUrl } = await startEmbedded(defer, (app) => app.websocket('/echo', { message(ws, data, isBinary) { ws.send(data, isBinary); } }));
    const result = await runConnect(t, [`${wsUrl.replace(/^ws:/, 'http:')}/echo`], 'over http://\n');
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'over http://\n');
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

  it('when stdout\'s reader goes away while reading is paused for it, closes with 1001 at once, not after --close-timeout-ms', async (t) => {
    const defer = cleanupStack(t);
    const payload = 'b'.repeat(16 * 1024 - 1);
    let sent = 0;
    let closeCode: number | undefined;
    const { wsUrl } = await startEmbedded(defer, (app) => app.websocket('/flood', {
      open(ws) { pump(ws); },
      drain(ws) { pump(ws); },
      close(_ws, code) { closeCode = code; },
    }));
    function pump(ws: WebSocket): void {
      while (ws.readyState === ReadyState.Open) {
        sent++;
        if (!ws.send(payload)) return;
      }
    }
    // A close timeout longer than exit() waits: only reading the server's answer to our close ends it in time.
    const run = spawnConnect(t, [`${wsUrl}/flood`, '--close-timeout-ms', '60000']);
    run.child.stdout.pause();
    await waitFor(() => sent > 0, 5000, 'the flood to start');
    // The server stalls once the CLI stops reading its socket: stdout is full and the CLI waits for 'drain'.
    await waitForSteady(() => sent, 500, 15_000, 'the flood');
    // The reader goes away (`| head -1`): the pending write fails with EPIPE, and 'drain' will never come.
    run.child.stdout.destroy();
    const result = await run.exit(10_000);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    await waitFor(() => closeCode !== undefined, 3000, 'the server to see the close');
    assert.equal(closeCode, 1001);
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
    assert.match(refused.stderr, /^switchyard: cannot connect to wss:.*: TLS: .*self[- ]signed.*\(--ca FILE trusts the server's certificate; --insecure skips certificate verification\)\n$/);
    const accepted = await runConnect(t, [url, '--insecure', '-x', 'over tls']);
    assert.equal(accepted.code, 0, accepted.stderr);
    assert.equal(accepted.stdout, 'over tls\n');
  });

  it('exits 2 for an unknown flag or a bad value, naming the flag, before connecting', async (t) => {
    const unknown = await runCli(t, ['connect', 'ws://127.0.0.1:9/echo', '--protocl', 'x']);
    assertUsageError(unknown, /--protocl: unknown flag \(did you mean "--protocol"\?\)\nRun "switchyard connect --help" for usage\./);
    assertUsageError(await runCli(t, ['connect', 'ws://127.0.0.1:9/echo', '--show-binary', 'octal']), /--show-binary: must be one of hex, base64/);
    assertUsageError(await runCli(t, ['connect']), /URL: missing/);
    assertUsageError(await runCli(t, ['connect', 'ftp://127.0.0.1:9/']), /URL: must be a ws:\/\/, wss:\/\/ \(or http:\/\/, https:\/\/\) URL/);
    assertUsageError(await runCli(t, ['connect', 'ws+unix://host/app.sock:/x']), /URL: a ws\+unix:\/\/ URL names a socket path, not a host/);
  });

  it('--help prints the connect usage and exits 0', async (t) => {
    const result = await runCli(t, ['connect', '--help']);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /^Usage: switchyard connect URL \[options\]/);
    assert.match(result.stdout, /--ping-interval-ms N/);
    assert.equal(result.stderr, '');
  });
});

describe('switchyard connect: redirects, Unix sockets, client certificates and SNI', () => {
  let dir: string;
  let serverCertificate: TestCertificate | undefined;
  let clientCertificate: TestCertificate | undefined;
  /** The client certificate's key, encrypted with PASSPHRASE. */
  let encryptedKeyFile: string | undefined;
  const PASSPHRASE = 's3cret';
  before(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'switchyard-connect-'));
    serverCertificate = await makeCertificate(await fsp.mkdtemp(path.join(dir, 'server-')));
    clientCertificate = await makeCertificate(await fsp.mkdtemp(path.join(dir, 'client-')));
    if (clientCertificate === undefined) return;
    encryptedKeyFile = path.join(clientCertificate.dir, 'encrypted-key.pem');
    const result = spawnSync('openssl', ['pkey', '-in', clientCertificate.keyFile, '-aes256', '-passout', `pass:${PASSPHRASE}`, '-out', encryptedKeyFile],
      { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', timeout: 30_000 });
    if (result.status !== 0) throw new Error(`openssl pkey failed (${result.status}): ${result.stderr}`);
  });
  after(() => fsp.rm(dir, { recursive: true, force: true }));

  it('refuses a redirect without --follow-redirects (exit 1, naming the Location and the flag), and follows it with the flag', async (t) => {
    const defer = cleanupStack(t);
    const { wsUrl } = await startEmbedded(defer, (app) => app.websocket('/echo', { message(ws, data, isBinary) { ws.send(data, isBinary); } }));
    const url = `${await redirector(defer, `${wsUrl}/echo`)}/old`;
    const refused = await runConnect(t, [url, '-x', 'hi']);
    assert.equal(refused.code, 1);
    assert.equal(refused.stdout, '');
    assert.equal(refused.stderr, `switchyard: cannot connect to ${url}: server answered 302 Found instead of 101, a redirect to ${wsUrl}/echo (--follow-redirects N follows up to N redirects)\n`);
    const followed = await runConnect(t, [url, '--follow-redirects', '1', '-x', 'hi']);
    assert.equal(followed.code, 0, followed.stderr);
    assert.equal(followed.stdout, 'hi\n');
  });

  it('follows at most --follow-redirects N redirects (exit 1 past them)', async (t) => {
    const defer = cleanupStack(t);
    const { wsUrl } = await startEmbedded(defer, (app) => app.websocket('/echo', { message(ws, data, isBinary) { ws.send(data, isBinary); } }));
    const second = await redirector(defer, `${wsUrl}/echo`);
    const first = `${await redirector(defer, `${second}/two`)}/one`;
    const one = await runConnect(t, [first, '--follow-redirects', '1', '-x', 'hi']);
    assert.equal(one.code, 1);
    assert.equal(one.stderr, `switchyard: cannot connect to ${first}: server answered 302 Found to ${wsUrl}/echo after 1 redirect, the most --follow-redirects 1 allows\n`);
    const two = await runConnect(t, [first, '--follow-redirects', '2', '-x', 'hi']);
    assert.equal(two.code, 0, two.stderr);
    assert.equal(two.stdout, 'hi\n');
  });

  it('connects to a server on a Unix socket with a ws+unix: URL, and follows a redirect on that socket', async (t) => {
    const defer = cleanupStack(t);
    const { socketPath, opened } = await unixSocketServer(defer, path.join(dir, 'app.sock'));
    const piped = await runConnect(t, [`ws+unix://${socketPath}:/echo?room=7`], 'over the socket\n');
    assert.equal(piped.code, 0, piped.stderr);
    assert.equal(piped.stdout, 'over the socket\n');
    assert.deepEqual(opened, [{ url: '/echo?room=7', query: 'room=7', host: 'localhost' }]);
    const moved = await runConnect(t, [`ws+unix://${socketPath}:/old`, '--follow-redirects', '1', '-x', 'moved']);
    assert.equal(moved.code, 0, moved.stderr);
    assert.equal(moved.stdout, 'moved\n');
    assert.equal(opened[1]?.url, '/echo?moved=1');
    const missingUrl = `ws+unix://${path.join(dir, 'missing.sock')}:/echo`;
    const missing = await runConnect(t, [missingUrl, '-x', 'anyone?']);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, `switchyard: cannot connect to ${missingUrl}: no Unix socket at that path (is a server listening there?)\n`);
  });

  it('--ca, --cert and --key: presents a client certificate to a server that requires one; without it, exit 1', async (t) => {
    if (serverCertificate === undefined || clientCertificate === undefined) return t.skip(OPENSSL_MISSING);
    const defer = cleanupStack(t);
    const { port, handshakes } = await tlsServer(defer, { certificate: serverCertificate, requireClientCertificate: clientCertificate.cert });
    const url = `wss://127.0.0.1:${port}/echo`;
    const accepted = await runConnect(t, [url, '--ca', serverCertificate.certFile, '--cert', clientCertificate.certFile, '--key', clientCertificate.keyFile, '-x', 'with a client certificate']);
    assert.equal(accepted.code, 0, accepted.stderr);
    assert.equal(accepted.stdout, 'with a client certificate\n');
    assert.equal(handshakes[0]?.authorized, true);
    const refused = await runConnect(t, [url, '--ca', serverCertificate.certFile, '-x', 'without one']);
    assert.equal(refused.code, 1);
    assert.equal(refused.stdout, '');
    assert.match(refused.stderr, new RegExp(`^switchyard: cannot connect to ${escapeRegExp(url)}: .+\n$`));
  });

  it(`unlocks an encrypted --key with ${KEY_PASSPHRASE_ENV}; without it, or with a wrong one, exits 2 naming --key`, async (t) => {
    if (serverCertificate === undefined || clientCertificate === undefined || encryptedKeyFile === undefined) return t.skip(OPENSSL_MISSING);
    const defer = cleanupStack(t);
    const { port, handshakes } = await tlsServer(defer, { certificate: serverCertificate, requireClientCertificate: clientCertificate.cert });
    const args = [`wss://127.0.0.1:${port}/echo`, '--ca', serverCertificate.certFile, '--cert', clientCertificate.certFile, '--key', encryptedKeyFile, '-x', 'unlocked'];
    const accepted = await runConnect(t, args, '', { env: { [KEY_PASSPHRASE_ENV]: PASSPHRASE } });
    assert.equal(accepted.code, 0, accepted.stderr);
    assert.equal(accepted.stdout, 'unlocked\n');
    assert.equal(handshakes.length, 1);
    const key = escapeRegExp(encryptedKeyFile);
    assertUsageError(await runConnect(t, args, '', { env: { [KEY_PASSPHRASE_ENV]: '' } }),
      new RegExp(`^switchyard: --key: ${key} is encrypted: put its passphrase in the ${KEY_PASSPHRASE_ENV} environment variable\nRun "switchyard connect --help" for usage\.\n$`));
    assertUsageError(await runConnect(t, args, '', { env: { [KEY_PASSPHRASE_ENV]: 'wrong' } }),
      new RegExp(`^switchyard: --key: cannot decrypt ${key} with the passphrase in ${KEY_PASSPHRASE_ENV} \\(is it the right one\\?\\)\n`));
    assert.equal(handshakes.length, 1, 'no connection is made after a usage error');
  });

  it('--servername sends that name as SNI and checks the certificate against it', async (t) => {
    if (serverCertificate === undefined) return t.skip(OPENSSL_MISSING);
    const defer = cleanupStack(t);
    const { port, handshakes } = await tlsServer(defer, { certificate: serverCertificate });
    const url = `wss://127.0.0.1:${port}/echo`;
    const named = await runConnect(t, [url, '--ca', serverCertificate.certFile, '--servername', 'localhost', '-x', 'sni']);
    assert.equal(named.code, 0, named.stderr);
    assert.equal(named.stdout, 'sni\n');
    assert.equal(handshakes[0]?.servername, 'localhost');
    const other = await runConnect(t, [url, '--ca', serverCertificate.certFile, '--servername', 'other.example', '-x', 'sni']);
    assert.equal(other.code, 1);
    assert.match(other.stderr, /^switchyard: cannot connect to wss:.*: TLS: .*other\.example.*\(--servername NAME checks it against another name; --insecure skips certificate verification\)\n$/);
  });

  it('exits 2 naming the flag and the file when a --ca, --cert or --key file is missing, unreadable or unusable', async (t) => {
    const url = 'ws://127.0.0.1:9/echo';
    const usage = (flag: string, message: string): RegExp =>
      new RegExp(`^switchyard: ${flag}: ${message}\nRun "switchyard connect --help" for usage\.\n$`);
    const missing = path.join(dir, 'missing.pem');
    assertUsageError(await runCli(t, ['connect', url, '--ca', missing]), usage('--ca', `cannot read ${escapeRegExp(missing)}: no such file`));
    assertUsageError(await runCli(t, ['connect', url, '--cert', missing, '--key', missing]), usage('--cert', `cannot read ${escapeRegExp(missing)}: no such file`));
    assertUsageError(await runCli(t, ['connect', url, '--ca', dir]), usage('--ca', `cannot read ${escapeRegExp(dir)}: it is a directory`));
    const notes = path.join(dir, 'notes.txt');
    await fsp.writeFile(notes, 'not a certificate\n');
    assertUsageError(await runCli(t, ['connect', url, '--ca', notes]), usage('--ca', `${escapeRegExp(notes)} holds no PEM certificate \\(no "-----BEGIN CERTIFICATE-----" line\\)`));
    if (process.getuid?.() !== 0) {
      const locked = path.join(dir, 'locked.pem');
      await fsp.writeFile(locked, 'secret', { mode: 0o000 });
      assertUsageError(await runCli(t, ['connect', url, '--ca', locked]), usage('--ca', `cannot read ${escapeRegExp(locked)}: permission denied`));
    }
    if (serverCertificate === undefined || clientCertificate === undefined) return t.skip(OPENSSL_MISSING);
    assertUsageError(await runCli(t, ['connect', url, '--cert', clientCertificate.certFile, '--key', missing]), usage('--key', `cannot read ${escapeRegExp(missing)}: no such file`));
    assertUsageError(await runCli(t, ['connect', url, '--cert', clientCertificate.certFile, '--key', serverCertificate.keyFile]),
      usage('--key', `${escapeRegExp(serverCertificate.keyFile)} is not the private key of the certificate in ${escapeRegExp(clientCertificate.certFile)}`));
    assertUsageError(await runCli(t, ['connect', url, '--cert', notes, '--key', clientCertificate.keyFile]), usage('--cert', `${escapeRegExp(notes)} is not a PEM certificate: .+`));
    assertUsageError(await runCli(t, ['connect', url, '--cert', clientCertificate.certFile, '--key', clientCertificate.certFile]), usage('--key', `${escapeRegExp(clientCertificate.certFile)} is not a PEM private key: .+`));
  });
});

describe('the connect tests\' harness', () => {
  /** The process's state letter from /proc (Z: exited, not yet reaped by its parent's event loop). */
  function processState(pid: number): string {
    try {
      return /\) (\S)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1] ?? '?';
    } catch {
      return '?';
    }
  }

  it('reports a CLI that finished while this process was too busy to look as exited, not as hung with its output cut short', async (t) => {
    if (!existsSync('/proc/self/stat')) return t.skip('needs /proc (Linux) to see the child exit while the event loop is blocked');
    const defer = cleanupStack(t);
    // The server is another process: this one is about to stop running its event loop.
    const server = await startServer(defer, ['--echo', '/echo', '--ping-interval-ms', '0', '--access-log', 'off']);
    const run = spawnConnect(t, [`${server.wsUrl}/echo`, '-x', 'finished in time']);
    const deadlineMs = 200;
    const started = Date.now();
    const exited = run.exit(deadlineMs);
    // As on a loaded machine: this process does not get to its event loop until after the deadline, by which
    // time the CLI has exited (a zombie: reaped only by the event loop) with its output waiting in the pipe.
    // The deadline timer then runs before the poll phase that would see the exit and the output.
    const pause = new Int32Array(new SharedArrayBuffer(4));
    while (processState(run.child.pid!) !== 'Z' || Date.now() - started <= deadlineMs) {
      if (Date.now() - started > 30_000) assert.fail('the CLI did not exit within 30 s');
      Atomics.wait(pause, 0, 0, 5);
    }
    const result = await exited;
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'finished in time\n');
  });
});
