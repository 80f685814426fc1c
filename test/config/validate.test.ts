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
    assertRejected({ routes: [{ path: '/a' }] }, 'routes[0].kind: required (one of echo, broadcast)');
    assertRejected({ routes: [{ path: '/a', kind: 'ecko' }] }, 'routes[0].kind: unknown route kind "ecko" (did you mean "echo"?); known kinds: echo, broadcast');
    assertRejected({ routes: [{ path: '/a', kind: 'exec' }] }, 'routes[0].kind: unknown route kind "exec"; known kinds: echo, broadcast');
    assertRejected({ routes: [{ path: '/a', kind: 7 }] }, 'routes[0].kind: unknown route kind 7; known kinds: echo, broadcast');
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
