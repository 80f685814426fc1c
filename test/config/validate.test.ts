// Config file validation (pure, no files): every rule, with the exact message and field path it reports, and
// what a valid file turns into (schema order, paths resolved against the config file's directory).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { ConfigError } from '../../src/errors.js';
import { parseConfigText } from '../../src/config/load.js';
import { validateConfig } from '../../src/config/validate.js';
import { POLICY_FIELDS } from '../../src/transport/policy.js';

const BASE = path.resolve('/srv/site');

function rejection(json: unknown): ConfigError {
  try {
    validateConfig(json, BASE);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error;
  }
  assert.fail(`accepted ${JSON.stringify(json)}`);
}

/** Asserts the exact message and that `field` is the path before the first ': '. */
function assertRejected(json: unknown, message: string): void {
  const error = rejection(json);
  assert.equal(error.message, message, JSON.stringify(json));
  assert.equal(error.field, message.slice(0, message.indexOf(': ')));
}

describe('validateConfig: accepted files', () => {
  it('accepts an empty object (every key is optional) and returns nothing to override', () => {
    assert.deepEqual(validateConfig({}, BASE), {});
  });

  it('accepts the full example, returns its keys in schema order and resolves relative paths against the file directory', () => {
    const layer = validateConfig({
      routes: [{ kind: 'echo', path: '/echo', protocols: ['echo.v1'], allowedOrigins: ['http://localhost:8080'], maxConnections: 100, maxMessageBytes: 1024 }],
      websocket: { slowConsumerPolicy: 'keep-latest', allowInvalidUtf8: true, pingIntervalMs: 0 },
      metricsPath: '/metrics', accessLog: 'json',
      tls: { keyFile: 'tls/key.pem', certFile: '/etc/ssl/cert.pem' },
      shutdownTimeoutMs: 0, handshakeTimeoutMs: 1, maxConnections: 5,
      static: { precompressed: false, indexFile: 'home.html', cacheControl: 'max-age=60', directoryListing: true },
      root: 'public', port: 0, host: '::1',
    }, BASE);
    assert.deepEqual(Object.keys(layer), ['host', 'port', 'root', 'static', 'maxConnections', 'handshakeTimeoutMs', 'shutdownTimeoutMs', 'tls', 'accessLog', 'metricsPath', 'websocket', 'routes']);
    assert.equal(layer.root, path.join(BASE, 'public'));
    assert.deepEqual(layer.tls, { certFile: path.resolve('/etc/ssl/cert.pem'), keyFile: path.join(BASE, 'tls', 'key.pem') });
    assert.deepEqual(Object.keys(layer.static!), ['indexFile', 'cacheControl', 'directoryListing', 'precompressed']);
    assert.deepEqual(layer.websocket, { pingIntervalMs: 0, slowConsumerPolicy: 'keep-latest', allowInvalidUtf8: true });
    assert.deepEqual(layer.routes, [{ path: '/echo', kind: 'echo', protocols: ['echo.v1'], allowedOrigins: ['http://localhost:8080'], maxConnections: 100, maxMessageBytes: 1024 }]);
  });

  it('accepts every WebSocket policy key (from POLICY_FIELDS) in websocket and on a route', () => {
    const policy = { maxMessageBytes: 1, maxFrameBytes: 1, messagePieceBytes: 0, pingIntervalMs: 0, idleTimeoutMs: 0, maxLifetimeMs: 0,
      closeTimeoutMs: 1, backpressureBytes: 0, maxBackpressureBytes: 1, slowConsumerPolicy: 'drop-newest', allowInvalidUtf8: false,
      perMessageDeflate: true, deflateThresholdBytes: 0, deflateLevel: 9, deflateMemLevel: 1, deflateServerMaxWindowBits: 9,
      deflateClientMaxWindowBits: 9, deflateServerNoContextTakeover: true, deflateClientNoContextTakeover: false };
    assert.deepEqual(Object.keys(policy).sort(), Object.keys(POLICY_FIELDS).sort(), 'the test covers every policy key');
    const layer = validateConfig({ websocket: policy, routes: [{ path: '/a', kind: 'broadcast', ...policy }] }, BASE);
    assert.deepEqual(layer.websocket, policy);
    assert.deepEqual(layer.routes?.[0], { path: '/a', kind: 'broadcast', ...policy });
  });

  it('accepts route patterns with parameters and a trailing wildcard, and the "*" and "null" origins', () => {
    const layer = validateConfig({ routes: [
      { path: '/rooms/:room', kind: 'broadcast', allowedOrigins: ['*'] },
      { path: '/files/*', kind: 'echo', allowedOrigins: ['null', 'https://example.com'] },
      { path: '/', kind: 'echo' },
    ] }, BASE);
    assert.equal(layer.routes?.length, 3);
  });

  it('accepts the extremes of each range (port 0 and 65535, integers up to 2^53 - 1)', () => {
    validateConfig({ port: 0 }, BASE);
    validateConfig({ port: 65535 }, BASE);
    validateConfig({ websocket: { maxMessageBytes: Number.MAX_SAFE_INTEGER } }, BASE);
    validateConfig({ websocket: { deflateLevel: 0, deflateMemLevel: 1, deflateServerMaxWindowBits: 9, deflateClientMaxWindowBits: 9 } }, BASE);
    validateConfig({ websocket: { deflateLevel: 9, deflateMemLevel: 9, deflateServerMaxWindowBits: 15, deflateClientMaxWindowBits: 15 } }, BASE);
  });
});

describe('validateConfig: trustProxy', () => {
  it('accepts addresses, CIDR ranges and "loopback"', () => {
    assert.deepEqual(validateConfig({ trustProxy: ['loopback', '10.0.0.0/8', 'fd00::/8', '192.0.2.10', '::1'] }, BASE).trustProxy,
      ['loopback', '10.0.0.0/8', 'fd00::/8', '192.0.2.10', '::1']);
    assert.deepEqual(validateConfig({ trustProxy: [] }, BASE).trustProxy, []);
  });

  it('refuses a bad entry, naming its index and the entry', () => {
    assertRejected({ trustProxy: ['loopback', 'proxy.lan'] }, 'trustProxy[1]: "proxy.lan" is not an IP address, a CIDR range (10.0.0.0/8, fd00::/8) or "loopback"');
    assertRejected({ trustProxy: ['fd00::/200'] }, 'trustProxy[0]: "fd00::/200": the prefix length after "/" must be from 0 to 128');
    assertRejected({ trustProxy: 'loopback' }, 'trustProxy: must be an array of strings (got "loopback")');
  });
});

describe('validateConfig: every rule names its field', () => {
  it('refuses a file whose top level is not an object', () => {
    assertRejected([], '(top level): must be an object (got [])');
    assertRejected('x', '(top level): must be an object (got "x")');
    assertRejected(null, '(top level): must be an object (got null)');
  });

  it('refuses an unknown key anywhere, suggesting the close one', () => {
    assertRejected({ prot: 8080 }, 'prot: unknown key (did you mean "port"?)');
    assertRejected({ websocket: { maxMesageBytes: 5 } }, 'websocket.maxMesageBytes: unknown key (did you mean "maxMessageBytes"?)');
    assertRejected({ static: { indexfile: 'a.html' } }, 'static.indexfile: unknown key (did you mean "indexFile"?)');
    assertRejected({ tls: { certfile: 'a', keyFile: 'b' } }, 'tls.certfile: unknown key (did you mean "certFile"?)');
    assertRejected({ routes: [{ path: '/a', kind: 'echo' }, { path: '/b', kind: 'echo', protocol: ['x'] }] },
      'routes[1].protocol: unknown key (did you mean "protocols"?)');
    assertRejected({ routes: [{ path: '/a', kind: 'echo', maxMesageBytes: 5 }] }, 'routes[0].maxMesageBytes: unknown key (did you mean "maxMessageBytes"?)');
  });

  it('lists the known keys when nothing is close', () => {
    assertRejected({ websocket: { zzz: 1 } }, `websocket.zzz: unknown key (known keys: ${Object.keys(POLICY_FIELDS).join(', ')})`);
  });

  it('refuses "__proto__", "constructor" and other Object.prototype names as unknown keys', () => {
    assert.match(rejection(JSON.parse('{"__proto__": {"port": 1}}')).message, /^__proto__: unknown key/);
    assert.match(rejection({ constructor: {} }).message, /^constructor: unknown key/);
    assert.match(rejection({ websocket: { toString: 1 } }).message, /^websocket\.toString: unknown key/);
    assert.match(rejection({ routes: [{ path: '/a', kind: 'echo', hasOwnProperty: 1 }] }).message, /^routes\[0\]\.hasOwnProperty: unknown key/);
  });

  it('refuses wrong types', () => {
    assertRejected({ port: '8080' }, 'port: must be an integer from 0 to 65535 (got "8080")');
    assertRejected({ host: 5 }, 'host: must be a string (got 5)');
    assertRejected({ root: true }, 'root: must be a string (got true)');
    assertRejected({ static: 'yes' }, 'static: must be an object (got "yes")');
    assertRejected({ static: { directoryListing: 'true' } }, 'static.directoryListing: must be true or false (got "true")');
    assertRejected({ websocket: { allowInvalidUtf8: 1 } }, 'websocket.allowInvalidUtf8: must be true or false (got 1)');
    assertRejected({ websocket: [] }, 'websocket: must be an object (got [])');
    assertRejected({ routes: {} }, 'routes: must be an array of routes (got {})');
    assertRejected({ routes: ['/echo'] }, 'routes[0]: must be an object (got "/echo")');
    assertRejected({ routes: [{ path: '/a', kind: 'echo', protocols: 'echo.v1' }] }, 'routes[0].protocols: must be an array of strings (got "echo.v1")');
    assertRejected({ routes: [{ path: '/a', kind: 'echo', protocols: ['a', 2] }] }, 'routes[0].protocols[1]: must be a string (got 2)');
    assertRejected({ maxConnections: null }, 'maxConnections: must be an integer >= 0 (got null)');
  });

  it('refuses impossible numbers: negative, fractional, too large, out of range', () => {
    assertRejected({ routes: [{ path: '/a', kind: 'echo' }, { path: '/b', kind: 'echo', maxMessageBytes: -5 }] },
      'routes[1].maxMessageBytes: must be an integer >= 1 (got -5)');
    assertRejected({ port: 65536 }, 'port: must be an integer from 0 to 65535 (got 65536)');
    assertRejected({ port: -1 }, 'port: must be an integer from 0 to 65535 (got -1)');
    assertRejected({ maxConnections: 1.5 }, 'maxConnections: must be an integer >= 0 (got 1.5)');
    assertRejected({ handshakeTimeoutMs: 0 }, 'handshakeTimeoutMs: must be an integer >= 1 (got 0)');
    assertRejected({ shutdownTimeoutMs: -1 }, 'shutdownTimeoutMs: must be an integer >= 0 (got -1)');
    assertRejected({ websocket: { maxFrameBytes: 0 } }, 'websocket.maxFrameBytes: must be an integer >= 1 (got 0)');
    assertRejected({ websocket: { pingIntervalMs: 2 ** 53 } }, 'websocket.pingIntervalMs: must be an integer >= 0 (got 9007199254740992)');
    assertRejected({ routes: [{ path: '/a', kind: 'echo', maxConnections: -1 }] }, 'routes[0].maxConnections: must be an integer >= 0 (got -1)');
  });

  it('refuses permessage-deflate settings outside their ranges, naming the field and the range', () => {
    assertRejected({ websocket: { deflateLevel: 12 } }, 'websocket.deflateLevel: must be an integer from 0 to 9 (got 12)');
    assertRejected({ websocket: { deflateLevel: -1 } }, 'websocket.deflateLevel: must be an integer from 0 to 9 (got -1)');
    assertRejected({ websocket: { deflateLevel: 1.5 } }, 'websocket.deflateLevel: must be an integer from 0 to 9 (got 1.5)');
    assertRejected({ websocket: { deflateMemLevel: 0 } }, 'websocket.deflateMemLevel: must be an integer from 1 to 9 (got 0)');
    assertRejected({ websocket: { deflateMemLevel: 10 } }, 'websocket.deflateMemLevel: must be an integer from 1 to 9 (got 10)');
    assertRejected({ websocket: { deflateServerMaxWindowBits: 8 } }, 'websocket.deflateServerMaxWindowBits: must be an integer from 9 to 15 (got 8)');
    assertRejected({ websocket: { deflateClientMaxWindowBits: 8 } }, 'websocket.deflateClientMaxWindowBits: must be an integer from 9 to 15 (got 8)');
    assertRejected({ websocket: { deflateClientMaxWindowBits: 16 } }, 'websocket.deflateClientMaxWindowBits: must be an integer from 9 to 15 (got 16)');
    assertRejected({ websocket: { deflateThresholdBytes: -1 } }, 'websocket.deflateThresholdBytes: must be an integer >= 0 (got -1)');
    assertRejected({ websocket: { perMessageDeflate: 'yes' } }, 'websocket.perMessageDeflate: must be true or false (got "yes")');
    assertRejected({ routes: [{ path: '/a', kind: 'echo', deflateLevel: 10 }] }, 'routes[0].deflateLevel: must be an integer from 0 to 9 (got 10)');
  });

  it('refuses a value outside an enumeration, suggesting the close one', () => {
    assertRejected({ accessLog: 'xml' }, 'accessLog: must be one of text, json, off (got "xml")');
    assertRejected({ accessLog: 'jsno' }, 'accessLog: must be one of text, json, off (got "jsno"; did you mean "json"?)');
    assertRejected({ websocket: { slowConsumerPolicy: 'keep-lates' } },
      'websocket.slowConsumerPolicy: must be one of close, drop-newest, keep-latest (got "keep-lates"; did you mean "keep-latest"?)');
  });

  it('refuses strings of the wrong shape', () => {
    assertRejected({ host: '' }, 'host: must be a host name or address (got "")');
    assertRejected({ host: 'local host' }, 'host: must be a host name or address (got "local host")');
    assertRejected({ root: '' }, 'root: must be a file system path (got "")');
    assertRejected({ metricsPath: 'metrics' }, 'metricsPath: must start with "/" (got "metrics")');
    assertRejected({ metricsPath: '/metrics?x=1' }, 'metricsPath: must be a URL path without spaces, "?" or "#" (got "/metrics?x=1")');
    assertRejected({ static: { indexFile: 'a/index.html' } }, 'static.indexFile: must be a plain file name (got "a/index.html")');
    assertRejected({ static: { indexFile: '..' } }, 'static.indexFile: must be a plain file name (got "..")');
    assertRejected({ static: { cacheControl: 'no-cache\r\nX-Evil: 1' } }, 'static.cacheControl: must be a valid HTTP header value (got "no-cache\\r\\nX-Evil: 1")');
  });

  it('refuses a route path that does not start with "/" or holds a query', () => {
    assertRejected({ routes: [{ path: 'echo', kind: 'echo' }] }, 'routes[0].path: must start with "/" (got "echo")');
    assertRejected({ routes: [{ path: '/echo#x', kind: 'echo' }] }, 'routes[0].path: must be a URL path without spaces, "?" or "#" (got "/echo#x")');
  });

  it('refuses a duplicate route path, naming both routes', () => {
    assertRejected({ routes: [{ path: '/echo', kind: 'echo' }, { path: '/chat', kind: 'broadcast' }, { path: '/echo', kind: 'broadcast' }] },
      'routes[2].path: duplicate route path "/echo" (also routes[0].path)');
  });

  it('requires a route path and kind, and refuses an unknown kind with a suggestion and the known kinds', () => {
    assertRejected({ routes: [{ kind: 'echo' }] }, 'routes[0].path: required');
    assertRejected({ routes: [{ path: '/a' }] }, 'routes[0].kind: required (one of echo, broadcast, exec, tcp, proxy, cgi)');
    assertRejected({ routes: [{ path: '/a', kind: 'ecko' }] }, 'routes[0].kind: unknown route kind "ecko" (did you mean "echo"?); known kinds: echo, broadcast, exec, tcp, proxy, cgi');
    assertRejected({ routes: [{ path: '/a', kind: 'websocketd' }] }, 'routes[0].kind: unknown route kind "websocketd"; known kinds: echo, broadcast, exec, tcp, proxy, cgi');
    assertRejected({ routes: [{ path: '/a', kind: 7 }] }, 'routes[0].kind: unknown route kind 7; known kinds: echo, broadcast, exec, tcp, proxy, cgi');
  });

  it('refuses subprotocol names that are not tokens and origins not written as browsers send them', () => {
    assertRejected({ routes: [{ path: '/a', kind: 'echo', protocols: ['chat v1'] }] },
      'routes[0].protocols[0]: must be a token: letters, digits and !#$%&\'*+-.^_`|~ (got "chat v1")');
    assertRejected({ routes: [{ path: '/a', kind: 'echo', allowedOrigins: ['http://localhost:8080/'] }] },
      'routes[0].allowedOrigins[0]: must be written as browsers send it: "http://localhost:8080" (got "http://localhost:8080/")');
    assertRejected({ routes: [{ path: '/a', kind: 'echo', allowedOrigins: ['https://Example.com:443'] }] },
      'routes[0].allowedOrigins[0]: must be written as browsers send it: "https://example.com" (got "https://Example.com:443")');
    assertRejected({ routes: [{ path: '/a', kind: 'echo', allowedOrigins: ['example.com'] }] },
      'routes[0].allowedOrigins[0]: must be an http(s) origin such as "https://example.com", or "*" (got "example.com")');
  });

  it('requires both TLS files when tls is given', () => {
    assertRejected({ tls: { certFile: 'cert.pem' } }, 'tls.keyFile: required when tls is given');
    assertRejected({ tls: { keyFile: 'key.pem' } }, 'tls.certFile: required when tls is given');
    assertRejected({ tls: {} }, 'tls.certFile: required when tls is given');
  });

  it('reports the first mistake in file order', () => {
    assertRejected({ port: -1, host: '' }, 'port: must be an integer from 0 to 65535 (got -1)');
    assertRejected({ host: '', port: -1 }, 'host: must be a host name or address (got "")');
  });

  it('shortens long values in messages', () => {
    assert.match(rejection({ host: 'x'.repeat(200) + ' ' }).message, /^host: must be a host name or address \(got "x{56}\.\.\.\)$/);
  });
});

describe('parseConfigText', () => {
  it('parses and validates in one step, resolving paths against the given directory', () => {
    assert.deepEqual(parseConfigText('{ "root": "../www", "port": 1 }', BASE), { port: 1, root: path.resolve(BASE, '../www') });
  });

  it('reports malformed JSON with line and column, and schema errors with the field path', () => {
    assert.throws(() => parseConfigText('{\n  "port": 1,\n}', BASE), { name: 'ConfigError', message: "line 3, column 1: invalid JSON: trailing comma before '}'" });
    assert.throws(() => parseConfigText('{"routes": [{"path": "/a", "kind": "echo", "maxMessageBytes": -5}]}', BASE),
      { name: 'ConfigError', field: 'routes[0].maxMessageBytes', message: 'routes[0].maxMessageBytes: must be an integer >= 1 (got -5)' });
  });
});

describe('validateConfig: bridge route kinds', () => {
  it('accepts an exec route: command as an array or a whitespace-split string, relative program and cwd resolved', () => {
    const layer = validateConfig({
      routes: [
        { path: '/a', kind: 'exec', command: ['./bin/count.sh', '--from', '1 2'], framing: 'json', passEnv: ['HOME'], env: { GREETING: 'hi' }, cwd: 'work',
          maxProcesses: 5, killGraceMs: 0, lineBuffered: true, shared: true, tagMessages: true, maxLineBytes: 10, protocols: ['p'], maxMessageBytes: 100 },
        { path: '/b', kind: 'exec', command: '  python3   room.py  ' },
      ],
    }, BASE);
    assert.deepEqual(layer.routes, [
      { path: '/a', kind: 'exec', protocols: ['p'], maxMessageBytes: 100, command: [path.join(BASE, 'bin/count.sh'), '--from', '1 2'], framing: 'json',
        passEnv: ['HOME'], env: { GREETING: 'hi' }, cwd: path.join(BASE, 'work'), maxProcesses: 5, killGraceMs: 0, lineBuffered: true, shared: true,
        tagMessages: true, maxLineBytes: 10 },
      { path: '/b', kind: 'exec', command: ['python3', 'room.py'] },
    ]);
  });

  it('checks every exec key with its field path', () => {
    const exec = (extra: Record<string, unknown>): unknown => ({ routes: [{ path: '/x', kind: 'exec', command: ['cat'], ...extra }] });
    assertRejected({ routes: [{ path: '/x', kind: 'exec' }] }, 'routes[0].command: required for a route of kind "exec"');
    assertRejected(exec({ command: [] }), 'routes[0].command: must name a program (got [])');
    assertRejected(exec({ command: '   ' }), 'routes[0].command: must name a program (got "   ")');
    assertRejected(exec({ command: ['cat', 7] }), 'routes[0].command[1]: must be a string without NUL (got 7)');
    assertRejected(exec({ command: [''] }), 'routes[0].command[0]: must be a non-empty string without NUL (got "")');
    assertRejected(exec({ command: { program: 'cat' } }), 'routes[0].command: must be an array of strings (the program, then its arguments) or a string (got {"program":"cat"})');
    assertRejected(exec({ framing: 'lines' }), 'routes[0].framing: must be one of line, binary, length-prefixed, json (got "lines"; did you mean "line"?)');
    assertRejected(exec({ passEnv: ['HOME', '1X'] }), 'routes[0].passEnv[1]: must be an environment variable name (letters, digits and _, not starting with a digit; got "1X")');
    assertRejected(exec({ env: { 'A-B': 'x' } }), 'routes[0].env.A-B: must be an environment variable name (letters, digits and _, not starting with a digit)');
    assertRejected(exec({ env: { A: 1 } }), 'routes[0].env.A: must be a string without NUL (got 1)');
    assertRejected(exec({ env: ['A=1'] }), 'routes[0].env: must be an object of variable names to strings (got ["A=1"])');
    assertRejected(exec({ cwd: '' }), 'routes[0].cwd: must be a file system path (got "")');
    assertRejected(exec({ maxProcesses: -1 }), 'routes[0].maxProcesses: must be an integer >= 0 (got -1)');
    assertRejected(exec({ killGraceMs: 1.5 }), 'routes[0].killGraceMs: must be an integer >= 0 (got 1.5)');
    assertRejected(exec({ lineBuffered: 'yes' }), 'routes[0].lineBuffered: must be true or false (got "yes")');
    assertRejected(exec({ maxLineBytes: 0 }), 'routes[0].maxLineBytes: must be an integer >= 1 (got 0)');
    assertRejected(exec({ tagMessages: true }), 'routes[0].tagMessages: applies to shared mode only (set shared: true)');
    assertRejected(exec({ tagMessages: true, shared: true, framing: 'binary' }), 'routes[0].tagMessages: needs line or json framing (got "binary")');
    assertRejected(exec({ directory: '/x' }), 'routes[0].directory: unknown key (known keys: path, kind, protocols, allowedOrigins, maxConnections, '
      + 'maxMessageBytes, maxFrameBytes, messagePieceBytes, pingIntervalMs, idleTimeoutMs, maxLifetimeMs, closeTimeoutMs, backpressureBytes, '
      + 'maxBackpressureBytes, slowConsumerPolicy, allowInvalidUtf8, perMessageDeflate, deflateThresholdBytes, deflateLevel, deflateMemLevel, '
      + 'deflateServerMaxWindowBits, deflateClientMaxWindowBits, deflateServerNoContextTakeover, deflateClientNoContextTakeover, command, framing, '
      + 'passEnv, env, cwd, maxProcesses, killGraceMs, lineBuffered, shared, tagMessages, maxLineBytes)');
  });

  it('accepts and checks a tcp route: target or tokenFile, allow-list, no protocols', () => {
    const layer = validateConfig({ routes: [
      { path: '/vnc', kind: 'tcp', target: 'LocalHost:5900', allow: ['localhost:5900', '[::1]:22', 'unix:sock'], connectTimeoutMs: 500 },
      { path: '/tok', kind: 'tcp', tokenFile: 'tokens.cfg' },
      { path: '/unix', kind: 'tcp', target: 'unix:run/app.sock' },
    ] }, BASE);
    assert.deepEqual(layer.routes, [
      { path: '/vnc', kind: 'tcp', target: 'localhost:5900', allow: ['localhost:5900', '[::1]:22', `unix:${path.join(BASE, 'sock')}`], connectTimeoutMs: 500 },
      { path: '/tok', kind: 'tcp', tokenFile: path.join(BASE, 'tokens.cfg') },
      { path: '/unix', kind: 'tcp', target: `unix:${path.join(BASE, 'run/app.sock')}` },
    ]);
    const tcp = (extra: Record<string, unknown>): unknown => ({ routes: [{ path: '/t', kind: 'tcp', ...extra }] });
    assertRejected(tcp({}), 'routes[0].target: give exactly one of target and tokenFile');
    assertRejected(tcp({ target: 'h:1', tokenFile: 't' }), 'routes[0].tokenFile: give exactly one of target and tokenFile');
    assertRejected(tcp({ target: 'h:0' }), 'routes[0].target: port must be from 1 to 65535 (got "h:0")');
    assertRejected(tcp({ target: 'h:99999' }), 'routes[0].target: port must be from 1 to 65535 (got "h:99999")');
    assertRejected(tcp({ target: 'h' }), 'routes[0].target: must be HOST:PORT, [IPv6]:PORT or unix:/PATH (got "h")');
    assertRejected(tcp({ target: 'unix:' }), 'routes[0].target: must be HOST:PORT, [IPv6]:PORT or unix:/PATH (got "unix:")');
    assertRejected(tcp({ target: 'h:1', allow: ['nope'] }), 'routes[0].allow[0]: must be HOST:PORT, [IPv6]:PORT or unix:/PATH (got "nope")');
    assertRejected(tcp({ target: 'h:1', connectTimeoutMs: 0 }), 'routes[0].connectTimeoutMs: must be an integer >= 1 (got 0)');
    assertRejected(tcp({ target: 'h:1', protocols: ['binary'] }), 'routes[0].protocols: not a key of a tcp route (its subprotocols are binary and base64)');
  });

  it('accepts and checks a proxy route: an http(s) URL, a prefix path', () => {
    assert.deepEqual(validateConfig({ routes: [{ path: '/legacy', kind: 'proxy', target: 'https://backend:8443/app/', maxConnections: 3 }] }, BASE).routes,
      [{ path: '/legacy', kind: 'proxy', maxConnections: 3, target: 'https://backend:8443/app/' }]);
    const proxy = (extra: Record<string, unknown>): unknown => ({ routes: [{ path: '/p', kind: 'proxy', ...extra }] });
    assertRejected(proxy({}), 'routes[0].target: required for a route of kind "proxy"');
    assertRejected(proxy({ target: 'http://h/', protocols: [] }), 'routes[0].protocols: not a key of a proxy route (the backend chooses among the subprotocols the client offers)');
    assertRejected(proxy({ target: 'ws://h/' }), 'routes[0].target: must be an http:// or https:// URL (got "ws://h/")');
    assertRejected(proxy({ target: 'backend:80' }), 'routes[0].target: must be an http:// or https:// URL (got "backend:80")');
    assertRejected(proxy({ target: 'http://u:p@h/' }), 'routes[0].target: must not carry a user name or password (got "http://u:p@h/")');
    assertRejected(proxy({ target: 'http://h/?a=1' }), 'routes[0].target: must not have a query or fragment (got "http://h/?a=1")');
    assertRejected({ routes: [{ path: '/p/*', kind: 'proxy', target: 'http://h/' }] },
      'routes[0].path: a proxy route\'s path is a prefix: no :parameters or * (it serves the path and everything under it; got "/p/*")');
  });

  it('accepts and checks a cgi route: a directory, no WebSocket keys', () => {
    assert.deepEqual(validateConfig({ routes: [{ path: '/cgi-bin', kind: 'cgi', directory: 'cgi-bin', timeoutMs: 5, maxHeaderBytes: 10, maxBodyBytes: 0, passEnv: [], env: {} }] }, BASE).routes,
      [{ path: '/cgi-bin', kind: 'cgi', directory: path.join(BASE, 'cgi-bin'), timeoutMs: 5, passEnv: [], env: {}, maxHeaderBytes: 10, maxBodyBytes: 0 }]);
    const cgi = (extra: Record<string, unknown>): unknown => ({ routes: [{ path: '/c', kind: 'cgi', directory: 'd', ...extra }] });
    assertRejected({ routes: [{ path: '/c', kind: 'cgi' }] }, 'routes[0].directory: required for a route of kind "cgi"');
    assertRejected(cgi({ timeoutMs: 0 }), 'routes[0].timeoutMs: must be an integer >= 1 (got 0)');
    assertRejected(cgi({ maxBodyBytes: -1 }), 'routes[0].maxBodyBytes: must be an integer >= 0 (got -1)');
    assertRejected(cgi({ protocols: [] }), 'routes[0].protocols: not a key of a cgi route (it serves plain HTTP, so no WebSocket key applies)');
    assertRejected(cgi({ maxMessageBytes: 5 }), 'routes[0].maxMessageBytes: not a key of a cgi route (it serves plain HTTP, so no WebSocket key applies)');
    assertRejected(cgi({ command: 'x' }), 'routes[0].command: unknown key (known keys: path, kind, directory, timeoutMs, passEnv, env, maxHeaderBytes, maxBodyBytes)');
    assertRejected({ routes: [{ path: '/c/:x', kind: 'cgi', directory: 'd' }] },
      'routes[0].path: a cgi route\'s path is a prefix: no :parameters or * (it serves the path and everything under it; got "/c/:x")');
  });
});
