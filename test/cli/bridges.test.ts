// The bridges on the command line, through the real CLI: --exec, --tcp, --proxy, --cgi and `switchyard exec`,
// each against a local fixture (a script in a temp dir, a TCP echo server, a node:http backend); bad values exit
// 2 naming the flag; bridge log lines go to stderr; SIGTERM with a program running exits 0 and leaves no child.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { promises as fsp } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { connect } from '../../src/client/connect.js';
import type { WebSocket } from '../../src/transport/websocket.js';
import { cliPath } from '../_support/cli-server.js';
import { cleanupStack, sleep } from '../_support/cleanup.js';
import { HOST, assertUsageError, httpGet, runCli, startServer, type Defer } from './_cli.js';

async function tempDir(defer: Defer): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'switchyard-bridges-'));
  defer(() => fsp.rm(dir, { recursive: true, force: true }));
  return dir;
}

async function script(dir: string, name: string, body: string): Promise<string> {
  const file = path.join(dir, name);
  await fsp.writeFile(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

/** A script that writes its pid to `pidFile`, then uppercases every line it reads. */
const UPPER = (pidFile = '/dev/null'): string => `echo $$ > '${pidFile}'\nwhile IFS= read -r line; do printf '%s\\n' "$line" | tr a-z A-Z; done`;

/** A client that collects text messages and its close. */
async function client(defer: Defer, url: string, protocols: string[] = []): Promise<{
  ws: WebSocket<undefined>; next(): Promise<string>; closed: Promise<{ code: number; reason: string }>;
}> {
  const queue: string[] = [];
  const waiters: Array<(message: string) => void> = [];
  let closedResolve!: (value: { code: number; reason: string }) => void;
  const closed = new Promise<{ code: number; reason: string }>((resolve) => { closedResolve = resolve; });
  const ws = await connect(url, {
    protocols, pingIntervalMs: 0,
    handlers: {
      message(_ws, data) {
        const text = data.toString('utf8');
        const waiter = waiters.shift();
        if (waiter !== undefined) waiter(text);
        else queue.push(text);
      },
      close(_ws, code, reason) { closedResolve({ code, reason }); },
    },
  });
  defer(() => ws.terminate());
  const next = (): Promise<string> => {
    const ready = queue.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no message within 5 s')), 5000);
      waiters.push((message) => { clearTimeout(timer); resolve(message); });
    });
  };
  return { ws, next, closed };
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Spawns the CLI with any arguments and waits for its listening line. */
async function startCli(defer: Defer, args: readonly string[]): Promise<{ port: number; child: ReturnType<typeof spawn>; stdout(): string; stderr(): string }> {
  const child = spawn(process.execPath, [cliPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(child, 'exit');
  defer(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk; });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
  const deadline = Date.now() + 10_000;
  for (;;) {
    const match = /listening on http:\/\/127\.0\.0\.1:(\d+)\n/.exec(stdout);
    if (match !== null) return { port: Number(match[1]), child, stdout: () => stdout, stderr: () => stderr };
    if (child.exitCode !== null) assert.fail(`switchyard ${args.join(' ')} exited ${child.exitCode}: ${stdout}${stderr}`);
    if (Date.now() > deadline) assert.fail(`no listening line: ${stdout}${stderr}`);
    await sleep(20);
  }
}

describe('switchyard serve with bridges', () => {
  it('--exec PATH=COMMAND runs a script per connection (arguments split like a shell), its stderr on our stderr', async (t) => {
    const defer = cleanupStack(t);
    const dir = await tempDir(defer);
    const upper = await script(dir, 'upper.sh', `echo "started with $# args: $1|$2" >&2\n${UPPER()}`);
    const server = await startServer(defer, ['--exec', `/upper=${upper} one 'two words'`, '--ping-interval-ms', '0']);
    const { ws, next } = await client(defer, `ws://${HOST}:${server.port}/upper`);
    ws.send('hello bridge');
    assert.equal(await next(), 'HELLO BRIDGE');
    ws.send('again');
    assert.equal(await next(), 'AGAIN');
    const deadline = Date.now() + 3000;
    while (!server.output().includes('started with 2 args: one|two words') && Date.now() < deadline) await sleep(20);
    assert.match(server.output(), /^switchyard: exec \/upper #\d+ pid \d+ stderr: started with 2 args: one\|two words$/m);
  });

  it('--exec-framing, --exec-shared and --exec-line-buffered apply to every --exec route (--print-config)', async (t) => {
    const result = await runCli(t, ['serve', '--exec', '/a=cat', '--exec-shared', '--exec', '/b=cat -u', '--exec-framing', 'binary', '--exec-line-buffered', '--print-config']);
    assert.equal(result.code, 0, result.stderr);
    const config = JSON.parse(result.stdout) as { routes: Array<Record<string, unknown>> };
    assert.deepEqual(config.routes.map((route) => [route['path'], route['command'], route['framing'], route['shared'], route['lineBuffered']]), [
      ['/a', ['cat'], 'binary', true, true],
      ['/b', ['cat', '-u'], 'binary', true, true],
    ]);
  });

  it('--tcp PATH=HOST:PORT bridges to a TCP echo server', async (t) => {
    const defer = cleanupStack(t);
    const echo = net.createServer((socket) => socket.pipe(socket));
    echo.listen(0, HOST);
    await once(echo, 'listening');
    defer(() => new Promise((resolve) => echo.close(resolve)));
    const port = (echo.address() as net.AddressInfo).port;
    const server = await startServer(defer, ['--tcp', `/tcp=${HOST}:${port}`, '--ping-interval-ms', '0']);
    const { ws, next } = await client(defer, `ws://${HOST}:${server.port}/tcp`, ['binary']);
    assert.equal(ws.protocol, 'binary');
    ws.send(Buffer.from('over tcp'), true);
    assert.equal(await next(), 'over tcp');
  });

  it('--cgi PREFIX=DIR runs a shell CGI script', async (t) => {
    const defer = cleanupStack(t);
    const dir = await tempDir(defer);
    await script(dir, 'hello.cgi', 'echo "Content-Type: text/plain"\necho\necho "hello $QUERY_STRING from $SCRIPT_NAME$PATH_INFO"\necho "to the log" >&2');
    const server = await startServer(defer, ['--cgi', `/cgi-bin=${dir}`]);
    const answer = await httpGet(server.port, '/cgi-bin/hello.cgi/extra?x=1');
    assert.equal(answer.status, 200);
    assert.equal(answer.headers['content-type'], 'text/plain');
    assert.equal(answer.body, 'hello x=1 from /cgi-bin/hello.cgi/extra\n');
    assert.equal((await httpGet(server.port, '/cgi-bin/missing.cgi')).status, 404);
    const deadline = Date.now() + 3000;
    while (!server.output().includes('to the log') && Date.now() < deadline) await sleep(20);
    assert.match(server.output(), /^switchyard: cgi \/cgi-bin\/hello\.cgi: .*to the log/m);
  });

  it('--proxy PREFIX=URL forwards HTTP and WebSocket requests under the prefix', async (t) => {
    const defer = cleanupStack(t);
    const backend = http.createServer((req, res) => {
      res.setHeader('content-type', 'text/plain');
      res.end(`backend saw ${req.method} ${req.url}`);
    });
    // The backend's WebSocket side: switchyard itself, behind the proxy.
    backend.listen(0, HOST);
    await once(backend, 'listening');
    defer(() => new Promise((resolve) => { backend.closeAllConnections(); backend.close(resolve); }));
    const port = (backend.address() as net.AddressInfo).port;
    const server = await startServer(defer, ['--proxy', `/legacy=http://${HOST}:${port}/app`, '--ping-interval-ms', '0']);
    const answer = await httpGet(server.port, '/legacy/page?q=1');
    assert.equal(answer.status, 200);
    assert.equal(answer.body, 'backend saw GET /app/page?q=1');
    assert.equal((await httpGet(server.port, '/legacy')).body, 'backend saw GET /app');
    assert.equal((await httpGet(server.port, '/elsewhere')).status, 404);

    const wsBackend = await startServer(defer, ['--echo', '/app/ws', '--ping-interval-ms', '0']);
    const wsProxy = await startServer(defer, ['--proxy', `/legacy=http://${HOST}:${wsBackend.port}/app`, '--ping-interval-ms', '0']);
    const { ws, next } = await client(defer, `ws://${HOST}:${wsProxy.port}/legacy/ws`);
    ws.send('through the proxy');
    assert.equal(await next(), 'through the proxy');
  });

  it('refuses bad bridge flags with exit 2, naming the flag', async (t) => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'switchyard-bridges-'));
    t.after(() => fsp.rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'plain-file');
    await fsp.writeFile(file, '');
    const cases: Array<[string[], RegExp]> = [
      [['--exec', '/x'], /^switchyard: --exec: expected PATH=COMMAND \(got "\/x"\)$/m],
      [['--exec', '/x='], /^switchyard: --exec: COMMAND missing after "="/m],
      [['--exec', '/x=   '], /^switchyard: --exec: COMMAND missing after "="/m],
      [['--exec', 'x=cat'], /^switchyard: --exec: must start with "\/"/m],
      [['--exec', '/x=grep a | wc'], /^switchyard: --exec: the command is not run by a shell, so an unquoted \| has no meaning here/m],
      [['--exec', "/x=echo 'open"], /^switchyard: --exec: unmatched ' in the command/m],
      [['--exec', '/x=no-such-program-here'], /^switchyard: --exec: cannot find program "no-such-program-here" on the PATH/m],
      [['--exec', `/x=${dir}/missing.sh`], /^switchyard: --exec: cannot run ".*missing\.sh": no such executable file$/m],
      [['--exec', '/x=cat', '--exec-framing', 'lines'], /^switchyard: --exec-framing: must be one of line, binary, length-prefixed, json \(got "lines"; did you mean "line"\?\)$/m],
      [['--tcp', '/t=127.0.0.1:70000'], /^switchyard: --tcp: port must be from 1 to 65535 \(got "127\.0\.0\.1:70000"\)$/m],
      [['--tcp', '/t=localhost'], /^switchyard: --tcp: must be HOST:PORT, \[IPv6\]:PORT or unix:\/PATH \(got "localhost"\)$/m],
      [['--tcp', '/t'], /^switchyard: --tcp: expected PATH=HOST:PORT/m],
      [['--proxy', '/p=ftp://example.com/'], /^switchyard: --proxy: must be an http:\/\/ or https:\/\/ URL \(got "ftp:\/\/example\.com\/"\)$/m],
      [['--proxy', '/p=example.com:80'], /^switchyard: --proxy: must be an http:\/\/ or https:\/\/ URL/m],
      [['--proxy', '/p/:id=http://127.0.0.1:1'], /^switchyard: --proxy: a proxy route's path is a prefix: no :parameters or \*/m],
      [['--cgi', `/c=${dir}/nope`], /^switchyard: --cgi: cannot read ".*nope": no such file$/m],
      [['--cgi', `/c=${file}`], /^switchyard: --cgi: ".*plain-file" is not a directory$/m],
      [['--cgi', '/c'], /^switchyard: --cgi: expected PREFIX=DIR/m],
      [['--exec', '/x=cat', '--exec', '/x=cat'], /^switchyard: --exec: route path "\/x" is given more than once \(also --exec\)$/m],
    ];
    for (const [args, message] of cases) {
      const result = await runCli(t, ['serve', ...args]);
      assertUsageError(result, message);
    }
  });

  it('reads the bridge kinds from a config file, paths relative to its directory', async (t) => {
    const defer = cleanupStack(t);
    const dir = await tempDir(defer);
    await fsp.mkdir(path.join(dir, 'bin'));
    await script(path.join(dir, 'bin'), 'upper.sh', UPPER());
    await fsp.writeFile(path.join(dir, 'switchyard.json'), JSON.stringify({
      routes: [{ path: '/upper', kind: 'exec', command: 'bin/upper.sh' }, { path: '/cgi', kind: 'cgi', directory: 'bin' }],
    }));
    const printed = await runCli(t, ['serve', '--config', path.join(dir, 'switchyard.json'), '--print-config']);
    assert.equal(printed.code, 0, printed.stderr);
    const routes = (JSON.parse(printed.stdout) as { routes: Array<Record<string, unknown>> }).routes;
    assert.deepEqual(routes[0]!['command'], [path.join(dir, 'bin', 'upper.sh')]);
    assert.equal(routes[1]!['directory'], path.join(dir, 'bin'));

    await fsp.writeFile(path.join(dir, 'bad.json'), JSON.stringify({ routes: [{ path: '/x', kind: 'exec', command: ['./nope.sh'] }] }));
    const bad = await runCli(t, ['serve', '--config', path.join(dir, 'bad.json')]);
    assert.equal(bad.code, 2);
    assert.equal(bad.stderr, `switchyard: ${path.join(dir, 'bad.json')}: routes[0].command: cannot run ${JSON.stringify(path.join(dir, 'nope.sh'))}: no such executable file\n`);
  });

  it('on SIGTERM with an exec connection open: exits 0 and the program is gone', async (t) => {
    const defer = cleanupStack(t);
    const dir = await tempDir(defer);
    const pidFile = path.join(dir, 'pid');
    // Ignores SIGTERM's default only through its read loop: the stop sequence must still end it.
    const upper = await script(dir, 'upper.sh', UPPER(pidFile));
    const server = await startCli(defer, ['serve', '--port', '0', '--host', HOST, '--ping-interval-ms', '0', '--exec', `/upper=${upper}`]);
    const { ws, next, closed } = await client(defer, `ws://${HOST}:${server.port}/upper`);
    ws.send('up');
    assert.equal(await next(), 'UP');
    const pid = Number((await fsp.readFile(pidFile, 'utf8')).trim());
    assert.ok(pidAlive(pid), 'the program runs while the connection is open');
    const exited = once(server.child, 'exit');
    server.child.kill('SIGTERM');
    const [code, signal] = await exited as [number | null, NodeJS.Signals | null];
    assert.equal(signal, null);
    assert.equal(code, 0, server.stderr());
    assert.equal((await closed).code, 1001);
    assert.equal(pidAlive(pid), false, `pid ${pid} still exists after the server exited`);
  });
});

describe('switchyard exec', () => {
  it('serves PROGRAM on every path, like websocketd: exec -- cat echoes', async (t) => {
    const defer = cleanupStack(t);
    const server = await startCli(defer, ['exec', '--port', '0', '--host', HOST, '--', 'cat']);
    assert.equal(server.stdout(), `switchyard listening on http://127.0.0.1:${server.port}\n`);
    for (const urlPath of ['/', '/any/path?x=1']) {
      const { ws, next } = await client(defer, `ws://${HOST}:${server.port}${urlPath}`);
      ws.send(`echo at ${urlPath}`);
      assert.equal(await next(), `echo at ${urlPath}`);
    }
  });

  it('takes the program and its own flags without "--", and --path limits it to one route', async (t) => {
    const defer = cleanupStack(t);
    const dir = await tempDir(defer);
    const args = await script(dir, 'args.sh', 'printf \'%s\\n\' "$*"\ncat >/dev/null');
    const server = await startCli(defer, ['exec', '--port', '0', '--host', HOST, '--path', '/args', args, '-n', '--port', 'x']);
    const { next } = await client(defer, `ws://${HOST}:${server.port}/args`);
    assert.equal(await next(), '-n --port x');
    await assert.rejects(connect(`ws://${HOST}:${server.port}/other`));
  });

  it('exits 2 for a program that is not on PATH, or no program', async (t) => {
    assertUsageError(await runCli(t, ['exec', '--port', '0', '--', 'no-such-program-xyz']),
      /^switchyard: PROGRAM: cannot find program "no-such-program-xyz" on the PATH its programs get/m);
    assertUsageError(await runCli(t, ['exec', '--port', '0']), /^switchyard: exec: needs a program to run/m);
    assertUsageError(await runCli(t, ['exec', '--framing', 'bytes', 'cat']), /^switchyard: --framing: must be one of line, binary, length-prefixed, json/m);
  });
});
