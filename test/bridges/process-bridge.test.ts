// The process bridge, one program per connection (issue 5, item 1): each framing end to end through a real
// server and our client, the close codes a program's end maps to, a missing program, per-route limits, the
// environment a program sees (CGI/1.1 variables, route parameters, hook data, no leaks, no httpoxy), stderr
// in the log, and option checks.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HandshakeError } from '../../src/errors.js';
import { processBridge, splitScriptPath, resolveProcessOptions } from '../../src/bridges/process-bridge.js';
import { activeProcessCount } from '../../src/bridges/process-child.js';
import { fixture, logCollector, openClient, serve, waitFor } from './fixtures/harness.js';
import { connect } from '../../src/client/connect.js';

const GREETER = ['/bin/sh', fixture('greeter.sh')];

/** Runs `env` as the program and returns its lines as a map. */
async function programEnvironment(client: Awaited<ReturnType<typeof openClient>>): Promise<Map<string, string>> {
  const vars = new Map<string, string>();
  for (;;) {
    const event = await client.events.next(5000, 'the env output');
    if (event.kind === 'close') {
      assert.equal(event.code, 1000, `env should exit 0, got ${event.code} ${event.reason}`);
      return vars;
    }
    assert.equal(event.kind, 'text');
    const text = (event as { text: string }).text;
    const at = text.indexOf('=');
    vars.set(text.slice(0, at), text.slice(at + 1));
  }
}

describe('processBridge: line framing', () => {
  it('turns stdout lines into text messages and messages into stdin lines, and closes 1000 when the program exits 0', async (t) => {
    const { url } = await serve(t, '/greet', processBridge({ command: GREETER }));
    const client = await openClient(url('/greet'));
    assert.equal(await client.text(), 'hello from greeter');
    client.ws.send('abc');
    assert.equal(await client.text(), '1 ABC');
    client.ws.send('Mixed Case');
    assert.equal(await client.text(), '2 MIXED CASE');
    client.ws.send('quit');
    assert.equal(await client.text(), 'bye after 3');
    const close = await client.closed();
    assert.deepEqual(close, { code: 1000, reason: '', wasClean: true });
    await waitFor(() => activeProcessCount() === 0, 5000, 'the program to be reaped');
  });

  it('writes a message containing newlines as it is (several lines), strips CRLF, and delivers a last line without a newline before the close', async (t) => {
    const { url } = await serve(t, '/x', processBridge({
      command: ['/bin/sh', '-c', 'printf "crlf\\r\\n"; read a; read b; echo "[$a][$b]"; printf "no newline at the end"'],
    }));
    const client = await openClient(url('/x'));
    assert.equal(await client.text(), 'crlf');
    client.ws.send('first\nsecond');
    assert.equal(await client.text(), '[first][second]');
    assert.equal(await client.text(), 'no newline at the end');
    assert.equal((await client.closed()).code, 1000);
  });

  it('sends empty lines as empty messages and bytes that are not UTF-8 as U+FFFD', async (t) => {
    const { url } = await serve(t, '/x', processBridge({ command: ['/bin/sh', '-c', 'printf "\\n\\377ok\\n"'] }));
    const client = await openClient(url('/x'));
    assert.equal(await client.text(), '');
    assert.equal(await client.text(), '\uFFFDok');
    assert.equal((await client.closed()).code, 1000);
  });

  it('closes 1009 when a line passes maxLineBytes, and stops the program', async (t) => {
    const logs = logCollector();
    const { url } = await serve(t, '/x', processBridge({
      command: ['/bin/sh', '-c', 'echo short; head -c 5000 /dev/zero | tr "\\0" a; echo; sleep 30'], maxLineBytes: 1000, killGraceMs: 50, log: logs.log,
    }));
    const client = await openClient(url('/x'));
    assert.equal(await client.text(), 'short');
    const close = await client.closed();
    assert.equal(close.code, 1009);
    assert.match(close.reason, /line over 1000 bytes/);
    await waitFor(() => activeProcessCount() === 0, 5000, 'the program to be stopped');
  });

  it('closes 1011 with "exit status N" for a non-zero exit, and "signal SIGX" when killed by a signal', async (t) => {
    const { url } = await serve(t, '/exit/:how', processBridge({
      command: ['/bin/sh', '-c', 'echo going; if [ "$ROUTE_HOW" = signal ]; then kill -9 $$; fi; exit 3'],
    }));
    const exited = await openClient(url('/exit/status'));
    assert.equal(await exited.text(), 'going');
    assert.deepEqual(await exited.closed(), { code: 1011, reason: 'exit status 3', wasClean: true });
    const killed = await openClient(url('/exit/signal'));
    assert.equal(await killed.text(), 'going');
    assert.deepEqual(await killed.closed(), { code: 1011, reason: 'signal SIGKILL', wasClean: true });
  });

  it('closes 1011 "cannot start: ENOENT" for a program that does not exist, logs it, and keeps serving', async (t) => {
    const logs = logCollector();
    const { app, url } = await serve(t, '/missing', processBridge({ command: ['no-such-program-switchyard'], log: logs.log }));
    app.websocket('/ok', processBridge({ command: GREETER }));
    for (const lineBuffered of [false, true]) {
      app.websocket(`/missing-${String(lineBuffered)}`, processBridge({ command: ['./no/such/program'], lineBuffered, log: logs.log }));
      const client = await openClient(url(`/missing-${String(lineBuffered)}`));
      assert.deepEqual(await client.closed(), { code: 1011, reason: 'cannot start: ENOENT', wasClean: true });
    }
    const client = await openClient(url('/missing'));
    assert.deepEqual(await client.closed(), { code: 1011, reason: 'cannot start: ENOENT', wasClean: true });
    assert.ok(logs.lines.some((line) => /^#\d+: cannot start: .*ENOENT/.test(line)), logs.lines.join('\n'));
    const ok = await openClient(url('/ok'));
    assert.equal(await ok.text(), 'hello from greeter');
    ok.ws.close();
    await ok.closed();
    await waitFor(() => activeProcessCount() === 0, 5000, 'no process left');
  });

  it('logs stderr lines tagged with the connection id and pid, and lifecycle events', async (t) => {
    const logs = logCollector();
    const { url } = await serve(t, '/x', processBridge({ command: ['/bin/sh', '-c', 'echo oops >&2; echo out; exit 0'], log: logs.log }));
    const client = await openClient(url('/x'));
    assert.equal(await client.text(), 'out');
    await client.closed();
    await waitFor(() => logs.lines.some((line) => line.includes('exited')), 5000, 'the exit log line');
    assert.ok(logs.lines.some((line) => /^#\d+ pid \d+ stderr: oops$/.test(line)), logs.lines.join('\n'));
    assert.ok(logs.lines.some((line) => /^#\d+ pid \d+: started: \/bin\/sh -c/.test(line)), logs.lines.join('\n'));
    assert.ok(logs.lines.some((line) => /^#\d+ pid \d+: exited \(exit status 0\)$/.test(line)), logs.lines.join('\n'));
  });
});

describe('processBridge: binary, length-prefixed and json framing', () => {
  it('binary: stdout bytes become binary messages and messages are written as raw bytes', async (t) => {
    const { url } = await serve(t, '/cat', processBridge({ command: ['cat'], framing: 'binary' }));
    const client = await openClient(url('/cat'));
    const sent = Buffer.from([0, 1, 2, 0xff, 0x0a, 0x0d, 0x80]);
    client.ws.send(sent);
    client.ws.send('text\n', false);
    const received: Buffer[] = [];
    let total = 0;
    while (total < sent.length + 5) {
      const chunk = await client.binary();
      received.push(chunk);
      total += chunk.length;
    }
    assert.deepEqual(Buffer.concat(received), Buffer.concat([sent, Buffer.from('text\n')]));
    client.ws.close();
    assert.equal((await client.closed()).code, 1000);
  });

  it('length-prefixed: records both ways, reassembled across reads', async (t) => {
    const { url } = await serve(t, '/rec', processBridge({ command: ['/usr/bin/python3', fixture('records.py')], framing: 'length-prefixed' }));
    const client = await openClient(url('/rec'));
    client.ws.send(Buffer.from('abc'));
    assert.equal((await client.binary()).toString(), 'cba');
    client.ws.send('hello');
    assert.equal((await client.binary()).toString(), 'olleh');
    client.ws.send(Buffer.alloc(0));
    assert.equal((await client.binary()).length, 0);
    const big = Buffer.alloc(300_000, 7);
    big[0] = 1;
    client.ws.send(big);
    const reversed = await client.binary();
    assert.equal(reversed.length, big.length);
    assert.equal(reversed[reversed.length - 1], 1);
    client.ws.close();
    await client.closed();
  });

  it('with messagePieceBytes, pieces are written as they arrive (binary) or whole (length-prefixed)', async (t) => {
    const { app, url } = await serve(t, '/cat', { ...processBridge({ command: ['cat'], framing: 'binary' }), messagePieceBytes: 1000 });
    app.websocket('/rec', { ...processBridge({ command: ['/usr/bin/python3', fixture('records.py')], framing: 'length-prefixed' }), messagePieceBytes: 1000 });
    const payload = Buffer.alloc(10_000);
    for (let i = 0; i < payload.length; i++) payload[i] = i % 251;
    const cat = await openClient(url('/cat'));
    cat.ws.send(payload);
    const echoed: Buffer[] = [];
    for (let total = 0; total < payload.length; total += echoed[echoed.length - 1]!.length) echoed.push(await cat.binary());
    assert.deepEqual(Buffer.concat(echoed), payload);
    const records = await openClient(url('/rec'));
    records.ws.send(payload);
    assert.deepEqual(await records.binary(), Buffer.from(payload).reverse());
    for (const client of [cat, records]) {
      client.ws.close();
      await client.closed();
    }
  });

  it('length-prefixed: a record announced over maxRecordBytes closes with 1009', async (t) => {
    const { url } = await serve(t, '/rec', processBridge({
      command: ['/usr/bin/python3', fixture('records.py')], framing: 'length-prefixed', maxRecordBytes: 1 << 20, killGraceMs: 100,
    }));
    const client = await openClient(url('/rec'));
    client.ws.send('big');
    const close = await client.closed();
    assert.equal(close.code, 1009);
    assert.match(close.reason, /record of 2147483647 bytes over 1048576/);
  });

  it('json: stdout and stderr lines arrive as {"stream","data"} messages; messages go to stdin as lines', async (t) => {
    const logs = logCollector();
    const { url } = await serve(t, '/json', processBridge({
      command: ['/bin/sh', '-c', 'echo started; read line; echo "warn: $line" >&2; echo "got $line"'], framing: 'json', log: logs.log,
    }));
    const client = await openClient(url('/json'));
    assert.deepEqual(JSON.parse(await client.text()), { stream: 'stdout', data: 'started' });
    client.ws.send('"quoted" \u00e9');
    const messages = [JSON.parse(await client.text()), JSON.parse(await client.text())] as Array<{ stream: string; data: string }>;
    messages.sort((a, b) => a.stream.localeCompare(b.stream));
    assert.deepEqual(messages, [
      { stream: 'stderr', data: 'warn: "quoted" \u00e9' },
      { stream: 'stdout', data: 'got "quoted" \u00e9' },
    ]);
    assert.equal((await client.closed()).code, 1000);
    assert.ok(logs.lines.some((line) => line.endsWith('stderr: warn: "quoted" \u00e9')));
  });
});

describe('processBridge: limits', () => {
  it('maxProcesses is the route\'s maxConnections: 503 before the upgrade, and a slot frees when a program ends', async (t) => {
    await waitFor(() => activeProcessCount() === 0, 5000, 'earlier tests\' programs to end');
    const { app, url } = await serve(t, '/limited', processBridge({ command: ['cat'], maxProcesses: 2 }));
    const first = await openClient(url('/limited'));
    const second = await openClient(url('/limited'));
    await assert.rejects(connect(url('/limited')), (error: unknown) => error instanceof HandshakeError && error.status === 503);
    assert.equal(activeProcessCount(), 2, 'no program was started for the refused upgrade');
    first.ws.close();
    await first.closed();
    await waitFor(() => app.routeConnectionCount('/limited') === 1, 5000, 'the slot to free');
    const third = await openClient(url('/limited'));
    for (const client of [second, third]) {
      client.ws.close();
      await client.closed();
    }
    await waitFor(() => activeProcessCount() === 0, 5000, 'no process left');
  });
});

describe('processBridge: environment', () => {
  it('gives the program CGI/1.1 variables, route parameters, the subprotocol and hook data, and nothing else of ours', async (t) => {
    const sentinel = `switchyard-sentinel-${process.pid}`;
    process.env['SWITCHYARD_TEST_SECRET'] = sentinel;
    process.env['SWITCHYARD_TEST_PASSED'] = 'passed-through';
    t.after(() => {
      delete process.env['SWITCHYARD_TEST_SECRET'];
      delete process.env['SWITCHYARD_TEST_PASSED'];
    });
    const { port, url } = await serve(t, '/rooms/:room/*', {
      ...processBridge({ command: ['env'], passEnv: ['SWITCHYARD_TEST_PASSED', 'NOT_SET_ANYWHERE'], env: { EXTRA: 'from config' } }),
      protocols: ['chat.v1'],
      upgrade: () => ({ data: { user: 'alice', 'team-id': 7, admin: true, nested: { no: 'pass' } } }),
    });
    const client = await openClient(`${url('/rooms/blue%20sky/a/b')}?x=1&y=two`, {
      protocols: ['chat.v1'],
      headers: { 'X-Custom': 'yes', Proxy: 'http://evil.example:8080', 'X_Spoofed': 'no', Authorization: 'Bearer secret' },
    });
    const vars = await programEnvironment(client);
    const expected: Record<string, string> = {
      GATEWAY_INTERFACE: 'CGI/1.1', REQUEST_METHOD: 'GET', SERVER_PROTOCOL: 'HTTP/1.1',
      REQUEST_URI: '/rooms/blue%20sky/a/b?x=1&y=two', QUERY_STRING: 'x=1&y=two',
      SCRIPT_NAME: '/rooms/blue sky', PATH_INFO: '/a/b',
      REMOTE_ADDR: '127.0.0.1', SERVER_NAME: '127.0.0.1', SERVER_PORT: String(port),
      HTTP_X_CUSTOM: 'yes', HTTP_HOST: `127.0.0.1:${port}`,
      ROUTE_ROOM: 'blue sky', ROUTE_WILDCARD: 'a/b', WEBSOCKET_PROTOCOL: 'chat.v1',
      SWITCHYARD_DATA_USER: 'alice', SWITCHYARD_DATA_TEAM_ID: '7', SWITCHYARD_DATA_ADMIN: 'true',
      SWITCHYARD_TEST_PASSED: 'passed-through', EXTRA: 'from config',
      PATH: '/usr/local/bin:/usr/bin:/bin',
    };
    for (const [name, value] of Object.entries(expected)) assert.equal(vars.get(name), value, name);
    assert.match(vars.get('SERVER_SOFTWARE') ?? '', /^switchyard\/\d+\.\d+\.\d+/);
    assert.match(vars.get('REMOTE_PORT') ?? '', /^\d+$/);
    assert.match(vars.get('SWITCHYARD_CONNECTION_ID') ?? '', /^\d+$/);
    assert.equal(vars.get('HTTP_SEC_WEBSOCKET_PROTOCOL'), 'chat.v1');
    for (const name of ['HTTP_PROXY', 'HTTP_X_SPOOFED', 'HTTP_AUTHORIZATION', 'HTTPS', 'CONTENT_LENGTH', 'SWITCHYARD_DATA_NESTED', 'NOT_SET_ANYWHERE', 'SWITCHYARD_TEST_SECRET', 'HOME', 'NODE_OPTIONS']) {
      assert.equal(vars.has(name), false, `${name} must not be set (got ${vars.get(name)})`);
    }
    for (const [name, value] of vars) assert.ok(!value.includes(sentinel), `${name} leaks the sentinel`);
  });

  it('sets HTTPS=on with secure, and PYTHONUNBUFFERED=1 with lineBuffered; env overrides PATH', async (t) => {
    const { url } = await serve(t, '/env', processBridge({ command: ['/usr/bin/env'], secure: true, lineBuffered: true, env: { PATH: '/opt/bin:/usr/bin:/bin' } }));
    const vars = await programEnvironment(await openClient(url('/env')));
    assert.equal(vars.get('HTTPS'), 'on');
    assert.equal(vars.get('PYTHONUNBUFFERED'), '1');
    assert.equal(vars.get('PATH'), '/opt/bin:/usr/bin:/bin');
  });

  it('behind a proxy in the server\'s trustProxy: REMOTE_ADDR is the forwarded client, no REMOTE_PORT, HTTPS from X-Forwarded-Proto', async (t) => {
    const trusted = await serve(t, '/env', processBridge({ command: ['env'] }), { trustProxy: ['loopback'] });
    const vars = await programEnvironment(await openClient(trusted.url('/env'), { headers: { 'X-Forwarded-For': '203.0.113.7', 'X-Forwarded-Proto': 'https' } }));
    assert.equal(vars.get('REMOTE_ADDR'), '203.0.113.7');
    assert.equal(vars.has('REMOTE_PORT'), false, `REMOTE_PORT=${vars.get('REMOTE_PORT')}: the proxy's port, not the client's`);
    assert.equal(vars.get('HTTPS'), 'on');
    // The proxy's word beats the route's secure option: the client used plain http.
    const secureRoute = await serve(t, '/env', processBridge({ command: ['env'], secure: true }), { trustProxy: ['loopback'] });
    const plain = await programEnvironment(await openClient(secureRoute.url('/env'), { headers: { 'X-Forwarded-Proto': 'http' } }));
    assert.equal(plain.has('HTTPS'), false);
    assert.equal(plain.get('REMOTE_ADDR'), '127.0.0.1', 'no X-Forwarded-For: the peer');
    assert.match(plain.get('REMOTE_PORT') ?? '', /^\d+$/);
  });

  it('from a peer not in trustProxy: the headers change nothing', async (t) => {
    const { url } = await serve(t, '/env', processBridge({ command: ['env'] }), { trustProxy: ['10.0.0.0/8'] });
    const vars = await programEnvironment(await openClient(url('/env'), { headers: { 'X-Forwarded-For': '203.0.113.7', 'X-Forwarded-Proto': 'https' } }));
    assert.equal(vars.get('REMOTE_ADDR'), '127.0.0.1');
    assert.match(vars.get('REMOTE_PORT') ?? '', /^\d+$/);
    assert.equal(vars.has('HTTPS'), false);
  });

  it('a route parameter with NUL or newlines cannot break the spawn or the environment', async (t) => {
    const { url } = await serve(t, '/p/:name', processBridge({ command: ['/bin/sh', '-c', 'printf "%s\\n" "$ROUTE_NAME"'] }));
    const client = await openClient(url('/p/a%00b%0Ac'));
    assert.equal(await client.text(), 'a b c');
    assert.equal((await client.closed()).code, 1000);
  });
});

describe('splitScriptPath', () => {
  it('puts the wildcard part in PATH_INFO and the rest in SCRIPT_NAME', () => {
    assert.deepEqual(splitScriptPath('/term/a/b?q', 'a/b'), { scriptName: '/term', pathInfo: '/a/b' });
    assert.deepEqual(splitScriptPath('/term', ''), { scriptName: '/term', pathInfo: '' });
    assert.deepEqual(splitScriptPath('/term/', ''), { scriptName: '/term', pathInfo: '' });
    assert.deepEqual(splitScriptPath('/rooms/blue%20sky', undefined), { scriptName: '/rooms/blue sky', pathInfo: '' });
    assert.deepEqual(splitScriptPath('/bad%zz', undefined), { scriptName: '/bad%zz', pathInfo: '' });
  });
});

describe('processBridge options', () => {
  it('rejects misuse synchronously with TypeError or RangeError', () => {
    assert.throws(() => processBridge({ command: [] }), TypeError);
    assert.throws(() => processBridge({ command: [''] }), TypeError);
    assert.throws(() => processBridge({ command: 'ls' as unknown as string[] }), TypeError);
    assert.throws(() => processBridge({ command: ['a\0b'] }), TypeError);
    assert.throws(() => processBridge({ command: ['cat'], framing: 'lines' as 'line' }), RangeError);
    assert.throws(() => processBridge({ command: ['cat'], passEnv: ['NOT-A-NAME'] }), TypeError);
    assert.throws(() => processBridge({ command: ['cat'], env: { A: 1 as unknown as string } }), TypeError);
    assert.throws(() => processBridge({ command: ['cat'], killGraceMs: -1 }), RangeError);
    assert.throws(() => processBridge({ command: ['cat'], maxProcesses: 1.5 }), RangeError);
    assert.throws(() => processBridge({ command: ['cat'], maxLineBytes: 0 }), RangeError);
    assert.throws(() => processBridge({ command: ['cat'], tagMessages: true }), TypeError);
    assert.throws(() => processBridge({ command: ['cat'], shared: true, tagMessages: true, framing: 'binary' }), TypeError);
  });

  it('fills in defaults and maps maxProcesses onto maxConnections', () => {
    const resolved = resolveProcessOptions({ command: ['cat'] });
    assert.equal(resolved.framing, 'line');
    assert.equal(resolved.killGraceMs, 2000);
    assert.equal(resolved.maxLineBytes, 1024 * 1024);
    assert.equal(processBridge({ command: ['cat'], maxProcesses: 3 }).maxConnections, 3);
    assert.equal(processBridge({ command: ['cat'] }).maxConnections, undefined);
  });
});
