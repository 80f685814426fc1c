// The `switchyard serve` contract (docs/architecture.md, CLI contract): the listening line, exit codes 0/1/2
// with one-line messages that name the flag, limits passed through flags, and a clean stop on SIGTERM.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Opcode, close, patternText, text } from '../_support/frames.js';
import { connect } from '../../src/client/connect.js';
import { cleanupStack } from '../_support/cleanup.js';
import { HOST, assertUsageError, httpGet, messageLines, rawWebSocket, runCli, startServer } from './_cli.js';

describe('switchyard serve: running', () => {
  it('prints exactly one listening line and serves files and WebSockets on that port', async (t) => {
    const defer = cleanupStack(t);
    const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'switchyard-cli-'));
    defer(() => fsp.rm(root, { recursive: true, force: true }));
    await fsp.writeFile(path.join(root, 'hello.txt'), 'hello from the root\n');
    const server = await startServer(defer, [root, '--echo', '/echo', '--ping-interval-ms', '0']);
    assert.equal(server.output(), `switchyard listening on http://127.0.0.1:${server.port}\n`);

    const file = await httpGet(server.port, '/hello.txt');
    assert.equal(file.status, 200);
    assert.equal(file.body, 'hello from the root\n');

    const client = await rawWebSocket(defer, server, '/echo');
    await client.send(text('through the CLI'));
    const echo = await client.nextMessage(3000);
    assert.equal(echo.opcode, Opcode.text);
    assert.equal(echo.payload.toString(), 'through the CLI');
  });

  it('closes a 200-byte message with 1009 under --max-message-bytes 100, and accepts 100 bytes', async (t) => {
    const defer = cleanupStack(t);
    const server = await startServer(defer, ['--echo', '/echo', '--ping-interval-ms', '0', '--max-message-bytes', '100']);
    const fits = await rawWebSocket(defer, server, '/echo');
    await fits.send(text(patternText(100)));
    assert.equal((await fits.nextMessage(3000)).payload.length, 100);

    const tooBig = await rawWebSocket(defer, server, '/echo');
    await tooBig.send(text(patternText(200)));
    const result = await tooBig.expectClose(3000);
    assert.equal(result.code, 1009);
    assert.equal(result.tcpClosed, true);
  });

  it('on SIGTERM closes open WebSockets with 1001 and exits 0', async (t) => {
    const defer = cleanupStack(t);
    const server = await startServer(defer, ['--echo', '/echo', '--ping-interval-ms', '0']);
    const raw = await rawWebSocket(defer, server, '/echo');
    const closes: Array<{ code: number; reason: string }> = [];
    const client = await connect(`${server.wsUrl}/echo`, { handlers: { close(_ws, code, reason) { closes.push({ code, reason }); } } });
    defer(() => client.terminate());
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      server.child.once('exit', (code, signal) => resolve({ code, signal }));
    });

    server.child.kill('SIGTERM');
    const frame = await raw.nextFrame(5000);
    assert.equal(frame.opcode, Opcode.close);
    assert.equal(frame.payload.readUInt16BE(0), 1001);
    await raw.send(close(1001));

    let timer: NodeJS.Timeout | undefined;
    const exit = await Promise.race([exited, new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), 8000); })]);
    clearTimeout(timer);
    assert.ok(exit !== undefined, `the server did not exit after SIGTERM; output:\n${server.output()}`);
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.equal(closes.length, 1);
    assert.equal(closes[0]?.code, 1001);
  });
});

describe('switchyard serve: route and timer flags', () => {
  it('--broadcast sends every message to every connection on the path, sender included', async (t) => {
    const defer = cleanupStack(t);
    const server = await startServer(defer, ['--broadcast', '/room', '--ping-interval-ms', '0']);
    const alice = await rawWebSocket(defer, server, '/room');
    const bob = await rawWebSocket(defer, server, '/room');
    await alice.send(text('hello room'));
    for (const client of [alice, bob]) assert.equal((await client.nextMessage(3000)).payload.toString(), 'hello room');
    await Promise.all([alice.expectSilence(150), bob.expectSilence(150)]);
  });

  it('--idle-timeout-ms closes a quiet connection with 1001', async (t) => {
    const defer = cleanupStack(t);
    const server = await startServer(defer, ['--echo', '/echo', '--ping-interval-ms', '0', '--idle-timeout-ms', '200']);
    const client = await rawWebSocket(defer, server, '/echo');
    const frame = await client.nextFrame(5000);
    assert.equal(frame.opcode, Opcode.close);
    assert.equal(frame.payload.readUInt16BE(0), 1001);
  });

  it('--ping-interval-ms makes the server ping', async (t) => {
    const defer = cleanupStack(t);
    const server = await startServer(defer, ['--echo', '/echo', '--ping-interval-ms', '100']);
    const client = await rawWebSocket(defer, server, '/echo');
    assert.equal((await client.nextFrame(5000)).opcode, Opcode.ping);
  });

  it('--handshake-timeout-ms drops a client that never finishes its request', async (t) => {
    const defer = cleanupStack(t);
    const server = await startServer(defer, ['--echo', '/echo', '--handshake-timeout-ms', '200']);
    const socket = net.connect(server.port, HOST);
    defer(() => socket.destroy());
    socket.on('error', () => {});
    socket.resume(); // read, so that the server's FIN is seen
    socket.write('GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    let timer: NodeJS.Timeout | undefined;
    const closed = await new Promise<boolean>((resolve) => {
      socket.once('close', () => resolve(true));
      timer = setTimeout(() => resolve(false), 5000);
    });
    clearTimeout(timer);
    assert.ok(closed, 'the half-sent request was not dropped');
  });
});

describe('switchyard serve: usage and runtime errors', () => {
  it('exits 2 naming an unknown flag', async (t) => {
    assertUsageError(await runCli(t, ['serve', '--bogus-flag']), /--bogus-flag/);
  });

  it('exits 2 naming --port for a port that is not a number or out of range', async (t) => {
    assertUsageError(await runCli(t, ['serve', '--port', 'abc']), /--port/);
    assertUsageError(await runCli(t, ['serve', '--port', '70000']), /--port/);
  });

  it('exits 2 naming the flag for a bad numeric option', async (t) => {
    assertUsageError(await runCli(t, ['serve', '--max-message-bytes', '0']), /--max-message-bytes/);
    assertUsageError(await runCli(t, ['serve', '--ping-interval-ms', '-5']), /--ping-interval-ms/);
  });

  it('exits 2 when --echo is not given a path starting with "/"', async (t) => {
    assertUsageError(await runCli(t, ['serve', '--echo', 'echo']), /--echo/);
  });

  it('exits 2 with a one-line message when ROOT does not exist', async (t) => {
    const missing = path.join(os.tmpdir(), `switchyard-missing-${process.pid}-${Date.now()}`);
    const result = await runCli(t, ['serve', missing]);
    assertUsageError(result, /does not exist/);
    const lines = messageLines(result.stderr);
    assert.equal(lines.length, 1, `expected one message line, got ${JSON.stringify(result.stderr)}`);
    assert.ok(lines[0]!.includes(missing), 'the message names the missing directory');
  });

  it('exits 2 when ROOT is a file', async (t) => {
    const defer = cleanupStack(t);
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'switchyard-cli-'));
    defer(() => fsp.rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'not-a-dir.txt');
    await fsp.writeFile(file, 'x');
    const result = await runCli(t, ['serve', file]);
    assertUsageError(result, /not a directory/);
    assert.equal(messageLines(result.stderr).length, 1);
  });

  it('exits 1 with a one-line message and no stack trace when the port is in use', async (t) => {
    const defer = cleanupStack(t);
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, HOST, resolve));
    defer(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
    const port = (blocker.address() as net.AddressInfo).port;
    const result = await runCli(t, ['serve', '--port', String(port), '--host', HOST]);
    assert.equal(result.code, 1, `expected exit 1, got ${result.code} (stderr ${JSON.stringify(result.stderr)})`);
    assert.equal(result.stdout, '', 'nothing is printed as listening');
    const lines = result.stderr.split('\n').filter((line) => line !== '');
    assert.equal(lines.length, 1, `expected a one-line message, got ${JSON.stringify(result.stderr)}`);
    assert.match(lines[0]!, new RegExp(`${port}.*in use|in use.*${port}`));
  });

  it('exits 2 for an unknown command', async (t) => {
    assertUsageError(await runCli(t, ['serv']), /serv/);
  });

  it('prints usage and exits 0 for --help, also after serve', async (t) => {
    for (const args of [['--help'], ['serve', '--help'], ['serve', '-h']]) {
      const result = await runCli(t, args);
      assert.equal(result.code, 0, `${args.join(' ')} exited ${result.code}`);
      assert.match(result.stdout, /Usage:/);
      assert.match(result.stdout, /--max-message-bytes/);
      assert.equal(result.stderr, '');
    }
  });
});
