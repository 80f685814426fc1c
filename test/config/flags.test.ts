// The `serve` and `demo` command lines read into config layers (pure, no processes): every flag lands on its
// config key, values are checked with messages naming the flag, and the special rules hold (TLS both or
// neither, repeatable flags, ROOT, --flag=value, unknown flags with suggestions).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { ConfigError } from '../../src/errors.js';
import { parseDemoArgs, parseExecArgs, parseServeArgs, serveFlagDefinitions } from '../../src/config/flags.js';
import { kebabCase } from '../../src/config/schema.js';
import { POLICY_FIELDS } from '../../src/transport/policy.js';

const CWD = path.resolve('/home/user/site');

function rejection(args: string[]): ConfigError {
  try {
    parseServeArgs(args, CWD);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error;
  }
  assert.fail(`accepted ${args.join(' ')}`);
}

function assertRejected(args: string[], message: string): void {
  const error = rejection(args);
  assert.equal(error.message, message, args.join(' '));
  assert.equal(error.field, message.slice(0, message.indexOf(': ')));
}

describe('parseServeArgs: flags onto config keys', () => {
  it('gives an empty layer for no arguments', () => {
    assert.deepEqual(parseServeArgs([], CWD), { help: false, printConfig: false, flags: { layer: {}, routes: [], routeDefaults: {}, sources: {} } });
  });

  it('maps every server flag to its key and records which flag set it', () => {
    const invocation = parseServeArgs([
      '--host', '0.0.0.0', '--port', '9000', '--max-connections', '7', '--handshake-timeout-ms', '1500', '--shutdown-timeout-ms', '0',
      '--access-log', 'json', '--metrics', '/metrics', '--tls-cert', 'c.pem', '--tls-key', '/abs/k.pem', 'public',
    ], CWD);
    assert.deepEqual(invocation.flags.layer, {
      host: '0.0.0.0', port: 9000, maxConnections: 7, handshakeTimeoutMs: 1500, shutdownTimeoutMs: 0, accessLog: 'json', metricsPath: '/metrics',
      tls: { certFile: path.join(CWD, 'c.pem'), keyFile: path.resolve('/abs/k.pem') }, root: path.join(CWD, 'public'),
    });
    assert.deepEqual(invocation.flags.sources, {
      host: '--host', port: '--port', maxConnections: '--max-connections', handshakeTimeoutMs: '--handshake-timeout-ms',
      shutdownTimeoutMs: '--shutdown-timeout-ms', accessLog: '--access-log', metricsPath: '--metrics',
      'tls.certFile': '--tls-cert', 'tls.keyFile': '--tls-key', root: 'ROOT',
    });
  });

  it('has a flag for every WebSocket policy key, all landing in websocket', () => {
    const values: Record<string, string> = {
      maxMessageBytes: '100', maxFrameBytes: '50', messagePieceBytes: '10', pingIntervalMs: '0', idleTimeoutMs: '200', maxLifetimeMs: '300',
      closeTimeoutMs: '400', backpressureBytes: '0', maxBackpressureBytes: '500', slowConsumerPolicy: 'keep-latest', allowInvalidUtf8: '',
      perMessageDeflate: '', deflateThresholdBytes: '64', deflateLevel: '9', deflateMemLevel: '1', deflateServerMaxWindowBits: '9',
      deflateClientMaxWindowBits: '9', deflateServerNoContextTakeover: '', deflateClientNoContextTakeover: '',
    };
    assert.deepEqual(Object.keys(values).sort(), Object.keys(POLICY_FIELDS).sort(), 'the test covers every policy key');
    const flagNames: Record<string, string> = { slowConsumerPolicy: 'slow-consumer', perMessageDeflate: 'deflate' };
    const flagName = (key: string): string => flagNames[key] ?? kebabCase(key);
    const args = Object.entries(values).flatMap(([key, value]) => (value === '' ? [`--${flagName(key)}`] : [`--${flagName(key)}`, value]));
    assert.deepEqual(parseServeArgs(args, CWD).flags.layer.websocket, {
      maxMessageBytes: 100, maxFrameBytes: 50, messagePieceBytes: 10, pingIntervalMs: 0, idleTimeoutMs: 200, maxLifetimeMs: 300,
      closeTimeoutMs: 400, backpressureBytes: 0, maxBackpressureBytes: 500, slowConsumerPolicy: 'keep-latest', allowInvalidUtf8: true,
      perMessageDeflate: true, deflateThresholdBytes: 64, deflateLevel: 9, deflateMemLevel: 1, deflateServerMaxWindowBits: 9,
      deflateClientMaxWindowBits: 9, deflateServerNoContextTakeover: true, deflateClientNoContextTakeover: true,
    });
  });

  it('reads the permessage-deflate flags (--deflate, --deflate-threshold-bytes N, --deflate-level N, ...) into websocket', () => {
    const { layer, sources } = parseServeArgs(['--deflate', '--deflate-threshold-bytes', '0', '--deflate-level=0', '--deflate-mem-level', '9',
      '--deflate-server-max-window-bits', '15', '--deflate-client-max-window-bits', '15', '--deflate-server-no-context-takeover=false'], CWD).flags;
    assert.deepEqual(layer, { websocket: {
      perMessageDeflate: true, deflateThresholdBytes: 0, deflateLevel: 0, deflateMemLevel: 9, deflateServerMaxWindowBits: 15,
      deflateClientMaxWindowBits: 15, deflateServerNoContextTakeover: false,
    } });
    assert.equal(sources['websocket.perMessageDeflate'], '--deflate');
    assert.equal(sources['websocket.deflateLevel'], '--deflate-level');
    assert.equal(parseServeArgs(['--deflate=false'], CWD).flags.layer.websocket?.perMessageDeflate, false);
  });

  it('takes --flag=value, and =true / =false for a boolean flag', () => {
    const { layer } = parseServeArgs(['--port=0', '--allow-invalid-utf8=false', '--slow-consumer=drop-newest'], CWD).flags;
    assert.deepEqual(layer, { port: 0, websocket: { allowInvalidUtf8: false, slowConsumerPolicy: 'drop-newest' } });
  });

  it('lets the last of a repeated flag win', () => {
    assert.equal(parseServeArgs(['--port', '1', '--port', '2'], CWD).flags.layer.port, 2);
  });

  it('adds --echo and --broadcast routes in command-line order', () => {
    const { routes } = parseServeArgs(['--broadcast', '/chat', '--echo', '/echo', '--echo', '/rooms/:room'], CWD).flags;
    assert.deepEqual(routes, [
      { route: { kind: 'broadcast', path: '/chat' }, flag: '--broadcast' },
      { route: { kind: 'echo', path: '/echo' }, flag: '--echo' },
      { route: { kind: 'echo', path: '/rooms/:room' }, flag: '--echo' },
    ]);
  });

  it('collects repeated --protocol and --allowed-origin as defaults for routes', () => {
    const { routeDefaults } = parseServeArgs(['--protocol', 'chat.v2', '--allowed-origin', 'https://a.example', '--protocol', 'chat.v1', '--allowed-origin', '*'], CWD).flags;
    assert.deepEqual(routeDefaults, { protocols: ['chat.v2', 'chat.v1'], allowedOrigins: ['https://a.example', '*'] });
  });

  it('reads --trust-proxy as a comma-separated list, adding up when repeated', () => {
    const { layer, sources } = parseServeArgs(['--trust-proxy', 'loopback, 10.0.0.0/8', '--echo', '/e', '--trust-proxy', 'fd00::/8'], CWD).flags;
    assert.deepEqual(layer.trustProxy, ['loopback', '10.0.0.0/8', 'fd00::/8']);
    assert.equal(sources['trustProxy'], '--trust-proxy');
    assert.equal(parseServeArgs(['--echo', '/e'], CWD).flags.layer.trustProxy, undefined, 'absent: the file\'s value or the default stands');
  });

  it('refuses a --trust-proxy entry that is not an address, a range or "loopback", naming the entry', () => {
    assertRejected(['--trust-proxy', 'loopback,10.0.0.0/33'], '--trust-proxy: "10.0.0.0/33": the prefix length after "/" must be from 0 to 32');
    assertRejected(['--trust-proxy', 'nginx.local'], '--trust-proxy: "nginx.local" is not an IP address, a CIDR range (10.0.0.0/8, fd00::/8) or "loopback"');
    assertRejected(['--trust-proxy', 'loopback,'], '--trust-proxy: an empty entry is not an IP address, a CIDR range (10.0.0.0/8, fd00::/8) or "loopback" (a stray comma?)');
  });

  it('reads --config (resolved against the working directory), --print-config and --help / -h', () => {
    const invocation = parseServeArgs(['--config', 'conf/switchyard.json', '--print-config'], CWD);
    assert.equal(invocation.configFile, path.join(CWD, 'conf', 'switchyard.json'));
    assert.equal(invocation.printConfig, true);
    assert.equal(parseServeArgs(['--help'], CWD).help, true);
    assert.equal(parseServeArgs(['-h'], CWD).help, true);
  });

  it('answers --help even when other values are bad (but not for an unknown flag)', () => {
    assert.equal(parseServeArgs(['--port', '99999', 'a', 'b', '--help'], CWD).help, true);
    assert.throws(() => parseServeArgs(['--help', '--bogus'], CWD), { name: 'ConfigError', field: '--bogus' });
  });

  it('treats everything after -- as positional', () => {
    assert.equal(parseServeArgs(['--', '--odd-dir'], CWD).flags.layer.root, path.join(CWD, '--odd-dir'));
  });
});

describe('parseServeArgs: errors name the flag', () => {
  it('refuses an unknown flag, suggesting a close one', () => {
    assertRejected(['--bogus-flag'], '--bogus-flag: unknown flag');
    assertRejected(['--max-mesage-bytes', '5'], '--max-mesage-bytes: unknown flag (did you mean "--max-message-bytes"?)');
    assertRejected(['--slow-consumer-policy', 'close'], '--slow-consumer-policy: unknown flag (did you mean "--slow-consumer"?)');
    assertRejected(['-x'], '-x: unknown flag');
  });

  it('refuses a missing value, also when the next argument is a flag', () => {
    assertRejected(['--port'], '--port: needs a value (--port N)');
    assertRejected(['--echo', '--broadcast', '/b'], '--echo: needs a value (--echo PATH)');
  });

  it('refuses a value for a flag that takes none', () => {
    assertRejected(['--print-config=yes'], '--print-config: takes no value (got "yes")');
    assertRejected(['--allow-invalid-utf8=yes'], '--allow-invalid-utf8: takes no value (got "yes")');
  });

  it('refuses bad numbers with the flag and the text given', () => {
    assertRejected(['--port', 'abc'], '--port: must be an integer from 0 to 65535 (got "abc")');
    assertRejected(['--port', '70000'], '--port: must be an integer from 0 to 65535 (got 70000)');
    assertRejected(['--max-message-bytes', '0'], '--max-message-bytes: must be an integer >= 1 (got 0)');
    assertRejected(['--ping-interval-ms', '-5'], '--ping-interval-ms: must be an integer >= 0 (got -5)');
    assertRejected(['--max-connections', '1.5'], '--max-connections: must be an integer >= 0 (got "1.5")');
    assertRejected(['--max-lifetime-ms', '1e3'], '--max-lifetime-ms: must be an integer >= 0 (got "1e3")');
    assertRejected(['--message-piece-bytes', ''], '--message-piece-bytes: must be an integer >= 0 (got "")');
    assertRejected(['--max-backpressure-bytes', '0'], '--max-backpressure-bytes: must be an integer >= 1 (got 0)');
    assertRejected(['--shutdown-timeout-ms', '-1'], '--shutdown-timeout-ms: must be an integer >= 0 (got -1)');
    assertRejected(['--deflate-level', '12'], '--deflate-level: must be an integer from 0 to 9 (got 12)');
    assertRejected(['--deflate-level', '-1'], '--deflate-level: must be an integer from 0 to 9 (got -1)');
    assertRejected(['--deflate-mem-level', '0'], '--deflate-mem-level: must be an integer from 1 to 9 (got 0)');
    assertRejected(['--deflate-server-max-window-bits', '8'], '--deflate-server-max-window-bits: must be an integer from 9 to 15 (got 8)');
    assertRejected(['--deflate-client-max-window-bits', '16'], '--deflate-client-max-window-bits: must be an integer from 9 to 15 (got 16)');
    assertRejected(['--deflate-threshold-bytes', '-1'], '--deflate-threshold-bytes: must be an integer >= 0 (got -1)');
  });

  it('refuses a value outside an enumeration', () => {
    assertRejected(['--slow-consumer', 'never'], '--slow-consumer: must be one of close, drop-newest, keep-latest (got "never")');
    assertRejected(['--slow-consumer', 'drop'], '--slow-consumer: must be one of close, drop-newest, keep-latest (got "drop"; did you mean "drop-newest"?)');
    assertRejected(['--access-log', 'jsno'], '--access-log: must be one of text, json, off (got "jsno"; did you mean "json"?)');
  });

  it('refuses route and metrics paths that do not start with "/", and a route given twice', () => {
    assertRejected(['--echo', 'echo'], '--echo: must start with "/" (got "echo")');
    assertRejected(['--broadcast', 'chat'], '--broadcast: must start with "/" (got "chat")');
    assertRejected(['--metrics', 'metrics'], '--metrics: must start with "/" (got "metrics")');
    assertRejected(['--echo', '/a', '--broadcast', '/a'], '--broadcast: route path "/a" is given more than once (also --echo)');
  });

  it('refuses a bad subprotocol or origin', () => {
    assertRejected(['--protocol', 'a b'], '--protocol: must be a token: letters, digits and !#$%&\'*+-.^_`|~ (got "a b")');
    assertRejected(['--allowed-origin', 'https://example.com/'], '--allowed-origin: must be written as browsers send it: "https://example.com" (got "https://example.com/")');
  });

  it('requires --tls-cert and --tls-key together', () => {
    assertRejected(['--tls-cert', 'c.pem'], '--tls-key: required with --tls-cert (give both or neither)');
    assertRejected(['--tls-key', 'k.pem'], '--tls-cert: required with --tls-key (give both or neither)');
  });

  it('takes at most one ROOT', () => {
    assertRejected(['a', 'b'], 'ROOT: serve takes one ROOT directory (got 2: a b)');
  });
});

describe('serveFlagDefinitions', () => {
  it('has one definition per flag name, including every flag the CLI contract names', () => {
    const names = serveFlagDefinitions().map((definition) => definition.spec.name);
    assert.equal(new Set(names).size, names.length, 'no flag name twice');
    for (const name of ['port', 'host', 'config', 'echo', 'broadcast', 'max-message-bytes', 'max-frame-bytes', 'ping-interval-ms', 'idle-timeout-ms',
      'handshake-timeout-ms', 'close-timeout-ms', 'max-connections', 'max-lifetime-ms', 'message-piece-bytes', 'max-backpressure-bytes',
      'slow-consumer', 'allow-invalid-utf8', 'protocol', 'allowed-origin', 'access-log', 'metrics', 'tls-cert', 'tls-key',
      'shutdown-timeout-ms', 'trust-proxy', 'print-config', 'help']) {
      assert.ok(names.includes(name), `--${name} is missing`);
    }
  });
});

describe('parseDemoArgs', () => {
  it('reads --port and --host with the serve defaults', () => {
    assert.deepEqual(parseDemoArgs([]), { help: false, port: 8080, host: '127.0.0.1' });
    assert.deepEqual(parseDemoArgs(['--port', '0', '--host', '::1']), { help: false, port: 0, host: '::1' });
    assert.equal(parseDemoArgs(['-h']).help, true);
  });

  it('refuses other flags and arguments', () => {
    assert.throws(() => parseDemoArgs(['--echo', '/x']), { name: 'ConfigError', message: '--echo: unknown flag' });
    assert.throws(() => parseDemoArgs(['extra']), { name: 'ConfigError', message: 'demo: takes no arguments (got extra)' });
    assert.throws(() => parseDemoArgs(['--port', 'x']), { name: 'ConfigError', message: '--port: must be an integer from 0 to 65535 (got "x")' });
  });
});

describe('parseServeArgs: bridge flags', () => {
  const routesOf = (args: string[]): unknown => parseServeArgs(args, CWD).flags.routes;

  it('maps --exec, --tcp, --proxy and --cgi onto routes, resolving relative paths against the working directory', () => {
    assert.deepEqual(routesOf([
      '--exec', '/upper=./upper.sh --loud', '--tcp', '/vnc=localhost:5900', '--tcp', '/sock=unix:run/s.sock',
      '--proxy', '/legacy=http://127.0.0.1:9000/app', '--cgi', '/cgi-bin=cgi',
    ]), [
      { route: { kind: 'exec', path: '/upper', command: [path.join(CWD, 'upper.sh'), '--loud'] }, flag: '--exec' },
      { route: { kind: 'tcp', path: '/vnc', target: 'localhost:5900' }, flag: '--tcp' },
      { route: { kind: 'tcp', path: '/sock', target: `unix:${path.join(CWD, 'run/s.sock')}` }, flag: '--tcp' },
      { route: { kind: 'proxy', path: '/legacy', target: 'http://127.0.0.1:9000/app' }, flag: '--proxy' },
      { route: { kind: 'cgi', path: '/cgi-bin', directory: path.join(CWD, 'cgi') }, flag: '--cgi' },
    ]);
  });

  it('splits COMMAND like a shell splits simple words', () => {
    const command = (text: string): unknown => (parseServeArgs(['--exec', `/x=${text}`], CWD).flags.routes[0]!.route as { command: string[] }).command;
    assert.deepEqual(command(`grep -i 'two words' "a \\"quoted\\" b" c\\ d`), ['grep', '-i', 'two words', 'a "quoted" b', 'c d']);
    assert.deepEqual(command(`  cat\t-u  `), ['cat', '-u']);
    assert.deepEqual(command(`printf '%s|%s' ''`), ['printf', '%s|%s', '']);
    assert.deepEqual(command(`sh -c 'tr a-z A-Z | cat'`), ['sh', '-c', 'tr a-z A-Z | cat']);
  });

  it('applies --exec-framing, --exec-line-buffered and --exec-shared to every --exec route, wherever they stand', () => {
    assert.deepEqual(routesOf(['--exec-shared', '--exec', '/a=cat', '--exec', '/b=cat', '--exec-framing', 'json', '--exec-line-buffered=false']), [
      { route: { kind: 'exec', path: '/a', command: ['cat'], shared: true, framing: 'json', lineBuffered: false }, flag: '--exec' },
      { route: { kind: 'exec', path: '/b', command: ['cat'], shared: true, framing: 'json', lineBuffered: false }, flag: '--exec' },
    ]);
  });

  it('refuses bad values, naming the flag', () => {
    assertRejected(['--exec', '/x'], '--exec: expected PATH=COMMAND (got "/x")');
    assertRejected(['--exec', '/x='], '--exec: COMMAND missing after "=" (expected PATH=COMMAND; got "/x=")');
    assertRejected(['--exec', "/x=''"], '--exec: must be a non-empty string without NUL (got "")');
    assertRejected(['--exec', '/x=a > b'], '--exec: the command is not run by a shell, so an unquoted > has no meaning here: quote it, or run a shell (sh -c \'...\') (got "a > b")');
    assertRejected(['--exec', '/x=a $HOME'], '--exec: the command is not run by a shell, so an unquoted $ has no meaning here: quote it, or run a shell (sh -c \'...\') (got "a $HOME")');
    assertRejected(['--exec', '/x="open'], '--exec: unmatched " in the command (got "\\"open")');
    assertRejected(['--exec', '/x=a\\'], '--exec: a command cannot end with a backslash (got "a\\\\")');
    assertRejected(['--exec-framing', 'xml'], '--exec-framing: must be one of line, binary, length-prefixed, json (got "xml")');
    assertRejected(['--exec-shared=yes'], '--exec-shared: takes no value (got "yes")');
    assertRejected(['--exec-shared', '--exec-framing', 'json', '--echo', '/e'],
      '--exec-shared: applies to the routes --exec adds, and there is none (a config file\'s exec routes set shared, framing themselves)');
    assertRejected(['--tcp', '/t=h:65536'], '--tcp: port must be from 1 to 65535 (got "h:65536")');
    assertRejected(['--tcp', '/t=h'], '--tcp: must be HOST:PORT, [IPv6]:PORT or unix:/PATH (got "h")');
    assertRejected(['--tcp', 't=h:1'], '--tcp: must start with "/" (got "t")');
    assertRejected(['--proxy', '/p=file:///etc'], '--proxy: must be an http:// or https:// URL (got "file:///etc")');
    assertRejected(['--proxy', '/p'], '--proxy: expected PREFIX=URL (got "/p")');
    assertRejected(['--proxy', '/p/*=http://h/'], '--proxy: a proxy route\'s path is a prefix: no :parameters or * (it serves the path and everything under it; got "/p/*")');
    assertRejected(['--cgi', '/c='], '--cgi: DIR missing after "=" (expected PREFIX=DIR; got "/c=")');
    assertRejected(['--cgi', '/c=a', '--exec', '/c=cat'], '--exec: route path "/c" is given more than once (also --cgi)');
  });
});

describe('parseExecArgs', () => {
  it('makes one exec route on every path, the program and its arguments unchanged after the first positional', () => {
    assert.deepEqual(parseExecArgs(['--port', '9000', '--framing', 'binary', '--shared', 'cat', '-u', '--port', '1'], CWD), {
      help: false,
      flags: {
        layer: { port: 9000 }, sources: { port: '--port' }, routeDefaults: {},
        routes: [{ route: { kind: 'exec', framing: 'binary', shared: true, path: '/*', command: ['cat', '-u', '--port', '1'] }, flag: 'PROGRAM' }],
      },
    });
    assert.deepEqual(parseExecArgs(['--path', '/ws', '--line-buffered', '--host', '0.0.0.0', '--', './prog', 'a'], CWD).flags, {
      layer: { host: '0.0.0.0' }, sources: { host: '--host' }, routeDefaults: {},
      routes: [{ route: { kind: 'exec', lineBuffered: true, path: '/ws', command: [path.join(CWD, 'prog'), 'a'] }, flag: 'PROGRAM' }],
    });
    assert.equal(parseExecArgs(['--help'], CWD).help, true);
  });

  it('takes --trust-proxy like serve does (behind nginx, as websocketd users deploy it), comma list and repeats adding up', () => {
    const { layer, sources } = parseExecArgs(['--trust-proxy', 'loopback,10.0.0.5', '--trust-proxy', 'fd00::/8', 'cat'], CWD).flags;
    assert.deepEqual(layer, { trustProxy: ['loopback', '10.0.0.5', 'fd00::/8'] });
    assert.equal(sources['trustProxy'], '--trust-proxy');
    assert.throws(() => parseExecArgs(['--trust-proxy', 'nginx.local', 'cat'], CWD), { message: /^--trust-proxy: "nginx.local" is not an IP address/ });
  });

  it('refuses no program and bad flags, naming them', () => {
    assert.throws(() => parseExecArgs(['--port', '1'], CWD), { message: 'exec: needs a program to run: switchyard exec [options] -- PROGRAM [ARGS...]' });
    assert.throws(() => parseExecArgs(['--framing', 'x', 'cat'], CWD), { message: '--framing: must be one of line, binary, length-prefixed, json (got "x")' });
    assert.throws(() => parseExecArgs(['--echo', '/x', 'cat'], CWD), { message: /^--echo: unknown flag/ });
    assert.throws(() => parseExecArgs(['--path', 'x', 'cat'], CWD), { message: '--path: must start with "/" (got "x")' });
  });
});
