// `switchyard serve --config FILE` and the flags that map onto it, through the real process: a config file
// runs end to end, flags override it, --print-config prints the merged configuration without listening, bad
// configurations exit 2 with one line naming the field, and the issue-3 flags reach the server.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Opcode, close, patternText, text } from '../_support/frames.js';
import { openRawClient } from '../_support/raw-client.js';
import { cleanupStack } from '../_support/cleanup.js';
import { connect } from '../../src/client/connect.js';
import { renderUsage } from '../../src/config/help.js';
import { DEFAULT_POLICY } from '../../src/transport/policy.js';
import { assertUsageError, eventually, httpGet, messageLines, rawWebSocket, runCli, startServer } from './_cli.js';

let dir: string;

before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'switchyard-cli-config-'));
  await fsp.mkdir(path.join(dir, 'site', 'public'), { recursive: true });
  await fsp.writeFile(path.join(dir, 'site', 'public', 'hello.txt'), 'hello from the config root\n');
});
after(() => fsp.rm(dir, { recursive: true, force: true }));

let configCount = 0;
/** Writes a config file under site/ and returns its absolute path. */
async function writeConfig(json: unknown): Promise<string> {
  const file = path.join(dir, 'site', `switchyard-${++configCount}.json`);
  await fsp.writeFile(file, typeof json === 'string' ? json : JSON.stringify(json, null, 2));
  return file;
}

describe('switchyard serve --config', () => {
  it('runs a config file end to end: root relative to the file, an echo route with its protocol and its own limit', async (t) => {
    const defer = cleanupStack(t);
    const file = await writeConfig({
      root: 'public', accessLog: 'off', websocket: { pingIntervalMs: 0 },
      routes: [{ path: '/echo', kind: 'echo', protocols: ['echo.v1'], maxMessageBytes: 100 }],
    });
    // Started from another directory: "public" must resolve against the config file's directory.
    const server = await startServer(defer, ['--config', file], { cwd: os.tmpdir() });
    assert.equal(server.output(), `switchyard listening on http://127.0.0.1:${server.port}\n`);

    const page = await httpGet(server.port, '/hello.txt');
    assert.equal(page.status, 200);
    assert.equal(page.body, 'hello from the config root\n');

    const messages: string[] = [];
    const client = await connect(`${server.wsUrl}/echo`, { protocols: ['echo.v1'], handlers: { message(_ws, data) { messages.push(data.toString()); } } });
    defer(() => client.terminate());
    assert.equal(client.protocol, 'echo.v1');
    client.send('through the config file');
    assert.ok(await eventually(() => messages.length === 1), 'no echo');
    assert.equal(messages[0], 'through the config file');

    const tooBig = await rawWebSocket(defer, server, '/echo');
    await tooBig.send(text(patternText(200)));
    assert.equal((await tooBig.expectClose(3000)).code, 1009, 'the route\'s maxMessageBytes applies');
  });

  it('lets flags override the file: port, the WebSocket policy and the access log', async (t) => {
    const defer = cleanupStack(t);
    // Port 1 would fail to listen (EACCES or in use): the --port 0 that startCliServer passes must win.
    const file = await writeConfig({ port: 1, accessLog: 'off', websocket: { maxMessageBytes: 1000, pingIntervalMs: 0 }, routes: [{ path: '/echo', kind: 'echo' }] });
    const server = await startServer(defer, ['--config', file, '--max-message-bytes', '100', '--access-log', 'json']);
    assert.notEqual(server.port, 1);

    const fits = await rawWebSocket(defer, server, '/echo');
    await fits.send(text(patternText(100)));
    assert.equal((await fits.nextMessage(3000)).payload.length, 100);
    const tooBig = await rawWebSocket(defer, server, '/echo');
    await tooBig.send(text(patternText(200)));
    assert.equal((await tooBig.expectClose(3000)).code, 1009, '--max-message-bytes 100 beat the file\'s 1000');

    await httpGet(server.port, '/nothing-here');
    assert.ok(await eventually(() => server.output().includes('"/nothing-here"')), `no JSON access-log line:\n${server.output()}`);
    const line = server.output().split('\n').find((entry) => entry.includes('"/nothing-here"'))!;
    const entry = JSON.parse(line) as Record<string, unknown>;
    assert.deepEqual([entry['event'], entry['method'], entry['url'], entry['status']], ['http', 'GET', '/nothing-here', 404]);
  });

  it('--print-config prints the merged configuration as JSON, exits 0 and does not listen', async (t) => {
    const file = await writeConfig({ root: 'public', port: 9000, websocket: { pingIntervalMs: 0 }, routes: [{ path: '/echo', kind: 'echo', maxMessageBytes: 64 }] });
    const result = await runCli(t, ['serve', '--config', file, '--port', '0', '--broadcast', '/chat', '--protocol', 'chat.v1', '--print-config']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    assert.doesNotMatch(result.stdout, /listening/);
    const printed = JSON.parse(result.stdout) as Record<string, unknown>;
    assert.deepEqual(printed, {
      host: '127.0.0.1', port: 0, root: path.join(dir, 'site', 'public'),
      static: { indexFile: 'index.html', cacheControl: 'no-cache', directoryListing: false, precompressed: true },
      maxConnections: 0, handshakeTimeoutMs: 10000, shutdownTimeoutMs: 10000, accessLog: 'text', trustProxy: [],
      websocket: { ...DEFAULT_POLICY, pingIntervalMs: 0 },
      routes: [
        { path: '/echo', kind: 'echo', protocols: ['chat.v1'], maxConnections: 0, maxMessageBytes: 64 },
        { path: '/chat', kind: 'broadcast', protocols: ['chat.v1'], maxConnections: 0 },
      ],
    });

    // What it prints is a config file for the same server.
    const again = await runCli(t, ['serve', '--config', await writeConfig(result.stdout), '--print-config'], { cwd: os.tmpdir() });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, result.stdout);
  });

  it('--print-config with no file prints the defaults', async (t) => {
    const result = await runCli(t, ['serve', '--print-config']);
    assert.equal(result.code, 0, result.stderr);
    const printed = JSON.parse(result.stdout) as { port: number; accessLog: string; websocket: unknown; routes: unknown[] };
    assert.equal(printed.port, 8080);
    assert.equal(printed.accessLog, 'text');
    assert.deepEqual(printed.websocket, { ...DEFAULT_POLICY });
    assert.deepEqual(printed.routes, []);
  });

  it('--help is the usage generated from the schema', async (t) => {
    const result = await runCli(t, ['serve', '--help']);
    assert.equal(result.code, 0);
    assert.equal(result.stdout, renderUsage());
    for (const flag of ['--config', '--print-config', '--max-connections', '--tls-cert', '--slow-consumer', '--allowed-origin', '--access-log', '--metrics']) {
      assert.ok(result.stdout.includes(flag), flag);
    }
  });
});

describe('switchyard serve --config: errors exit 2 with one line naming the field', () => {
  async function assertConfigError(t: Parameters<typeof runCli>[0], json: unknown, expected: string): Promise<void> {
    const file = await writeConfig(json);
    const result = await runCli(t, ['serve', '--config', file]);
    assertUsageError(result, /./);
    assert.equal(result.stderr, `switchyard: ${file}: ${expected}\n`, 'exactly one line: the file, the field and the problem');
  }

  it('a bad value, with its field path', async (t) => {
    await assertConfigError(t, { routes: [{ path: '/a', kind: 'echo' }, { path: '/b', kind: 'echo', maxMessageBytes: -5 }] },
      'routes[1].maxMessageBytes: must be an integer >= 1 (got -5)');
  });

  it('an unknown key, with a suggestion', async (t) => {
    await assertConfigError(t, { websocket: { maxMesageBytes: 5 } }, 'websocket.maxMesageBytes: unknown key (did you mean "maxMessageBytes"?)');
  });

  it('malformed JSON, with line and column', async (t) => {
    await assertConfigError(t, '{\n  "port": 8080,\n  "host": "127.0.0.1",\n}\n', "line 4, column 1: invalid JSON: trailing comma before '}'");
  });

  it('an unknown route kind and a duplicate route path', async (t) => {
    await assertConfigError(t, { routes: [{ path: '/a', kind: 'ecko' }] }, 'routes[0].kind: unknown route kind "ecko" (did you mean "echo"?); known kinds: echo, broadcast, exec, tcp, proxy, cgi');
    await assertConfigError(t, { routes: [{ path: '/a', kind: 'echo' }, { path: '/a', kind: 'broadcast' }] }, 'routes[1].path: duplicate route path "/a" (also routes[0].path)');
  });

  it('a root or certificate file that is not there', async (t) => {
    await assertConfigError(t, { root: 'missing-dir' }, `root: ${JSON.stringify(path.join(dir, 'site', 'missing-dir'))} does not exist`);
    await assertConfigError(t, { tls: { certFile: 'no-cert.pem', keyFile: 'no-key.pem' } }, `tls.certFile: cannot read ${JSON.stringify(path.join(dir, 'site', 'no-cert.pem'))}: no such file`);
  });

  it('a config file that cannot be read names --config', async (t) => {
    const missing = path.join(dir, 'nope.json');
    const result = await runCli(t, ['serve', '--config', missing]);
    assertUsageError(result, /^switchyard: --config: cannot read .*nope\.json.*: no such file$/m);
    assert.equal(messageLines(result.stderr).length, 1);
  });

  it('a flag route that clashes with a file route names the flag', async (t) => {
    const file = await writeConfig({ routes: [{ path: '/chat', kind: 'broadcast' }] });
    const result = await runCli(t, ['serve', '--config', file, '--echo', '/chat']);
    assertUsageError(result, /^switchyard: --echo: route path "\/chat" is also routes\[0\]\.path in the config file$/m);
  });

  it('--tls-cert without --tls-key (and the reverse)', async (t) => {
    assertUsageError(await runCli(t, ['serve', '--tls-cert', 'cert.pem']), /^switchyard: --tls-key: required with --tls-cert/m);
    assertUsageError(await runCli(t, ['serve', '--tls-key', 'key.pem']), /^switchyard: --tls-cert: required with --tls-key/m);
  });

  it('bad values for the new flags name the flag', async (t) => {
    assertUsageError(await runCli(t, ['serve', '--slow-consumer', 'sometimes']), /--slow-consumer: must be one of close, drop-newest, keep-latest/);
    assertUsageError(await runCli(t, ['serve', '--access-log', 'xml']), /--access-log: must be one of text, json, off/);
    assertUsageError(await runCli(t, ['serve', '--max-connections', '-1']), /--max-connections: must be an integer >= 0/);
    assertUsageError(await runCli(t, ['serve', '--metrics', 'metrics']), /--metrics: must start with "\/"/);
    assertUsageError(await runCli(t, ['serve', '--allowed-origin', 'localhost']), /--allowed-origin: must be an http\(s\) origin/);
    assertUsageError(await runCli(t, ['serve', '--trust-proxy', 'loopback,example.com']), /^switchyard: --trust-proxy: "example\.com" is not an IP address/m);
  });
});

describe('switchyard serve: the issue-3 flags reach the server', () => {
  it('--protocol gives the --echo route its subprotocol', async (t) => {
    const defer = cleanupStack(t);
    const server = await startServer(defer, ['--echo', '/echo', '--protocol', 'echo.v2', '--protocol', 'echo.v1', '--ping-interval-ms', '0']);
    const client = await connect(`${server.wsUrl}/echo`, { protocols: ['echo.v1'] });
    defer(() => client.terminate());
    assert.equal(client.protocol, 'echo.v1');
  });

  it('--allowed-origin refuses other origins with 403 and accepts the listed one', async (t) => {
    const defer = cleanupStack(t);
    const server = await startServer(defer, ['--echo', '/echo', '--allowed-origin', 'http://localhost:8080', '--ping-interval-ms', '0', '--access-log', 'off']);
    const refused = await openRawClient(server.port, server.host, { path: '/echo', headers: { Origin: 'https://evil.example' } });
    defer(() => refused.destroy());
    assert.equal(refused.response.statusCode, 403);
    await rawWebSocket(defer, server, '/echo', { headers: { Origin: 'http://localhost:8080' } });
  });

  it('--max-connections refuses the connection past the limit with 503', async (t) => {
    const defer = cleanupStack(t);
    const server = await startServer(defer, ['--echo', '/echo', '--max-connections', '1', '--ping-interval-ms', '0', '--access-log', 'off']);
    await rawWebSocket(defer, server, '/echo');
    const second = await openRawClient(server.port, server.host, { path: '/echo' });
    defer(() => second.destroy());
    assert.equal(second.response.statusCode, 503);
  });

  it('--max-lifetime-ms closes a connection with 1001 when it is that old', async (t) => {
    const defer = cleanupStack(t);
    const server = await startServer(defer, ['--echo', '/echo', '--max-lifetime-ms', '300', '--ping-interval-ms', '0', '--access-log', 'off']);
    const client = await rawWebSocket(defer, server, '/echo');
    const started = Date.now();
    const frame = await client.nextFrame(5000);
    assert.equal(frame.opcode, Opcode.close);
    assert.equal(frame.payload.readUInt16BE(0), 1001);
    assert.ok(Date.now() - started >= 250, `closed after ${Date.now() - started} ms`);
  });

  it('--message-piece-bytes still echoes whole messages', async (t) => {
    const defer = cleanupStack(t);
    const server = await startServer(defer, ['--echo', '/echo', '--message-piece-bytes', '16', '--ping-interval-ms', '0', '--access-log', 'off']);
    const client = await rawWebSocket(defer, server, '/echo');
    await client.send(text(patternText(100)));
    const echo = await client.nextMessage(3000);
    assert.equal(echo.payload.toString(), patternText(100));
  });

  it('--allow-invalid-utf8 echoes a text message that is not UTF-8 instead of closing with 1007', async (t) => {
    const defer = cleanupStack(t);
    const server = await startServer(defer, ['--echo', '/echo', '--allow-invalid-utf8', '--ping-interval-ms', '0', '--access-log', 'off']);
    const client = await rawWebSocket(defer, server, '/echo');
    await client.send(text(Buffer.from([0x68, 0xff, 0x69])));
    const echo = await client.nextMessage(3000);
    assert.deepEqual([...echo.payload], [0x68, 0xff, 0x69]);
  });

  it('--metrics serves Prometheus text at the path', async (t) => {
    const defer = cleanupStack(t);
    const server = await startServer(defer, ['--echo', '/echo', '--metrics', '/metrics', '--ping-interval-ms', '0', '--access-log', 'off']);
    await rawWebSocket(defer, server, '/echo');
    const metrics = await httpGet(server.port, '/metrics');
    assert.equal(metrics.status, 200);
    assert.match(String(metrics.headers['content-type']), /^text\/plain/);
    assert.match(metrics.body, /^switchyard_websocket_connections_total\{route="\/echo"\} 1$/m);
  });

  it('logs in the text format to stdout by default, and nothing with --access-log off', async (t) => {
    const defer = cleanupStack(t);
    const logged = await startServer(defer, ['--ping-interval-ms', '0']);
    await httpGet(logged.port, '/missing.txt');
    assert.ok(await eventually(() => /"GET \/missing\.txt HTTP\/1\.1" 404 /.test(logged.output())), `no text access-log line:\n${logged.output()}`);

    const quiet = await startServer(defer, ['--ping-interval-ms', '0', '--access-log', 'off']);
    await httpGet(quiet.port, '/missing.txt');
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(quiet.output(), `switchyard listening on http://127.0.0.1:${quiet.port}\n`);
  });

  it('--shutdown-timeout-ms bounds how long SIGTERM waits for a peer that never answers the close', async (t) => {
    const defer = cleanupStack(t);
    const server = await startServer(defer, ['--echo', '/echo', '--shutdown-timeout-ms', '300', '--close-timeout-ms', '20000', '--ping-interval-ms', '0', '--access-log', 'off']);
    const silent = await rawWebSocket(defer, server, '/echo');
    const exited = new Promise<number | null>((resolve) => server.child.once('exit', (code) => resolve(code)));
    const started = Date.now();
    server.child.kill('SIGTERM');
    assert.equal((await silent.nextFrame(5000)).opcode, Opcode.close, 'the server starts the closing handshake');
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([exited, new Promise<'late'>((resolve) => { timer = setTimeout(() => resolve('late'), 5000); })]);
    clearTimeout(timer);
    assert.equal(code, 0, `exit after SIGTERM: ${String(code)} after ${Date.now() - started} ms`);
    assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms; the close timeout (20 s) must not apply`);
    await silent.send(close(1001)).catch(() => {});
  });
});
