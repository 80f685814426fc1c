// Merging (pure): the defaults, then the file, then the flags; how routes and route defaults combine; the
// --print-config output (shape, order, and that it is itself a config file describing the same server).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { parseServeArgs } from '../../src/config/flags.js';
import { parseConfigText } from '../../src/config/load.js';
import { formatConfig, mergeConfig } from '../../src/config/merge.js';
import { defaultConfig, type EchoRouteConfig, type SwitchyardConfig } from '../../src/config/schema.js';
import { validateConfig } from '../../src/config/validate.js';
import { DEFAULT_POLICY } from '../../src/transport/policy.js';
import { DEFAULT_HANDSHAKE_TIMEOUT_MS, DEFAULT_SHUTDOWN_TIMEOUT_MS } from '../../src/server/options.js';

const FILE_DIR = path.resolve('/etc/switchyard');
const CWD = path.resolve('/home/user');

const merged = (fileJson: unknown, args: string[] = []): SwitchyardConfig =>
  mergeConfig(fileJson === undefined ? undefined : validateConfig(fileJson, FILE_DIR), parseServeArgs(args, CWD).flags).config;

describe('defaults', () => {
  it('are the documented values, with the WebSocket policy taken from DEFAULT_POLICY', () => {
    assert.deepEqual(defaultConfig(), {
      host: '127.0.0.1', port: 8080,
      static: { indexFile: 'index.html', cacheControl: 'no-cache', directoryListing: false, precompressed: true },
      maxConnections: 0, handshakeTimeoutMs: DEFAULT_HANDSHAKE_TIMEOUT_MS, shutdownTimeoutMs: DEFAULT_SHUTDOWN_TIMEOUT_MS,
      accessLog: 'text', trustProxy: [], websocket: { ...DEFAULT_POLICY }, routes: [],
    });
    assert.equal(DEFAULT_HANDSHAKE_TIMEOUT_MS, 10_000);
    assert.equal(DEFAULT_SHUTDOWN_TIMEOUT_MS, 10_000);
  });

  it('are what merging nothing gives, and a fresh copy each time', () => {
    assert.deepEqual(merged(undefined), defaultConfig());
    const first = defaultConfig();
    first.websocket.maxMessageBytes = 1;
    first.routes.push({ kind: 'echo', path: '/x', protocols: [], maxConnections: 0 });
    assert.deepEqual(defaultConfig(), merged(undefined));
  });
});

describe('precedence: defaults < file < flags', () => {
  it('takes a file value over the default and a flag over the file, key by key', () => {
    const config = merged(
      { port: 9000, host: '0.0.0.0', accessLog: 'json', websocket: { maxMessageBytes: 1000, pingIntervalMs: 0 }, static: { directoryListing: true } },
      ['--port', '0', '--max-message-bytes', '100'],
    );
    assert.equal(config.port, 0, 'flag over file');
    assert.equal(config.host, '0.0.0.0', 'file over default');
    assert.equal(config.accessLog, 'json');
    assert.equal(config.websocket.maxMessageBytes, 100, 'flag over file inside websocket');
    assert.equal(config.websocket.pingIntervalMs, 0, 'the file keeps the keys the flags do not give');
    assert.equal(config.websocket.maxFrameBytes, DEFAULT_POLICY.maxFrameBytes, 'defaults fill the rest of websocket');
    assert.deepEqual(config.static, { indexFile: 'index.html', cacheControl: 'no-cache', directoryListing: true, precompressed: true });
  });

  it('takes ROOT over the file root, each resolved against its own base', () => {
    assert.equal(merged({ root: 'www' }).root, path.join(FILE_DIR, 'www'));
    assert.equal(merged({ root: 'www' }, ['public']).root, path.join(CWD, 'public'));
  });

  it('replaces the file tls as a whole with --tls-cert and --tls-key', () => {
    assert.deepEqual(merged({ tls: { certFile: 'a.pem', keyFile: 'b.pem' } }).tls, { certFile: path.join(FILE_DIR, 'a.pem'), keyFile: path.join(FILE_DIR, 'b.pem') });
    assert.deepEqual(merged({ tls: { certFile: 'a.pem', keyFile: 'b.pem' } }, ['--tls-cert', 'c.pem', '--tls-key', 'd.pem']).tls,
      { certFile: path.join(CWD, 'c.pem'), keyFile: path.join(CWD, 'd.pem') });
  });

  it('turns a file true off with --flag=false', () => {
    assert.equal(merged({ websocket: { allowInvalidUtf8: true } }, ['--allow-invalid-utf8=false']).websocket.allowInvalidUtf8, false);
  });

  it('leaves a route its own policy values: a flag sets the server-wide websocket value only', () => {
    const config = merged({ routes: [{ path: '/a', kind: 'echo', maxMessageBytes: 5000 }, { path: '/b', kind: 'echo' }] }, ['--max-message-bytes', '100']);
    assert.equal(config.websocket.maxMessageBytes, 100);
    assert.equal((config.routes[0] as EchoRouteConfig | undefined)?.maxMessageBytes, 5000);
    assert.equal((config.routes[1] as EchoRouteConfig | undefined)?.maxMessageBytes, undefined, 'the second route inherits websocket (100)');
  });
});

describe('routes', () => {
  it('completes each route (protocols [], maxConnections 0) and orders its keys as the schema does', () => {
    const config = merged({ routes: [{ maxMessageBytes: 10, kind: 'broadcast', path: '/chat' }] });
    assert.deepEqual(config.routes, [{ path: '/chat', kind: 'broadcast', protocols: [], maxConnections: 0, maxMessageBytes: 10 }]);
    assert.deepEqual(Object.keys(config.routes[0]!), ['path', 'kind', 'protocols', 'maxConnections', 'maxMessageBytes']);
  });

  it('puts flag routes after the file routes', () => {
    const config = merged({ routes: [{ path: '/file', kind: 'echo' }] }, ['--broadcast', '/chat', '--echo', '/echo']);
    assert.deepEqual(config.routes.map((route) => `${route.kind} ${route.path}`), ['echo /file', 'broadcast /chat', 'echo /echo']);
  });

  it('gives --protocol and --allowed-origin to every route that lists none of its own', () => {
    const config = merged(
      { routes: [{ path: '/own', kind: 'echo', protocols: ['own.v1'], allowedOrigins: ['https://own.example'] }, { path: '/bare', kind: 'echo' }] },
      ['--echo', '/flag', '--protocol', 'echo.v1', '--allowed-origin', 'http://localhost:8080'],
    );
    assert.deepEqual((config.routes as EchoRouteConfig[]).map((route) => [route.path, route.protocols, route.allowedOrigins]), [
      ['/own', ['own.v1'], ['https://own.example']],
      ['/bare', ['echo.v1'], ['http://localhost:8080']],
      ['/flag', ['echo.v1'], ['http://localhost:8080']],
    ]);
  });

  it('refuses a flag route at a path the file already routes, naming the flag', () => {
    assert.throws(() => merged({ routes: [{ path: '/a', kind: 'echo' }, { path: '/chat', kind: 'broadcast' }] }, ['--echo', '/chat']),
      { name: 'ConfigError', field: '--echo', message: '--echo: route path "/chat" is also routes[1].path in the config file' });
  });

  it('refuses a metrics path that is also a route path, naming whoever set it', () => {
    assert.throws(() => merged({ metricsPath: '/m', routes: [{ path: '/m', kind: 'echo' }] }),
      { name: 'ConfigError', message: 'metricsPath: "/m" is also the path of a WebSocket route (routes[0])' });
    assert.throws(() => merged(undefined, ['--echo', '/m', '--metrics', '/m']),
      { name: 'ConfigError', message: '--metrics: "/m" is also the path of a WebSocket route (--echo)' });
  });
});

describe('fieldFor', () => {
  it('names the flag or argument that set a value, else the config path', () => {
    const { fieldFor } = mergeConfig(validateConfig({ root: 'www', routes: [{ path: '/a', kind: 'echo' }] }, FILE_DIR),
      parseServeArgs(['--tls-cert', 'c', '--tls-key', 'k', '--echo', '/b'], CWD).flags);
    assert.equal(fieldFor('root'), 'root');
    assert.equal(fieldFor('tls.certFile'), '--tls-cert');
    assert.equal(fieldFor('tls.keyFile'), '--tls-key');
    assert.equal(fieldFor('routes[0].path'), 'routes[0].path');
    assert.equal(fieldFor('routes[1].path'), '--echo');
    assert.equal(mergeConfig(undefined, parseServeArgs(['site'], CWD).flags).fieldFor('root'), 'ROOT');
  });
});

describe('formatConfig (--print-config)', () => {
  const file = {
    routes: [{ path: '/echo', kind: 'echo', protocols: ['echo.v1'], maxMessageBytes: 1024 }],
    websocket: { pingIntervalMs: 0 }, tls: { certFile: 'cert.pem', keyFile: 'key.pem' }, root: 'public', port: 9000, metricsPath: '/metrics',
  };
  const config = merged(file, ['--port', '0', '--broadcast', '/chat', '--allowed-origin', 'https://example.com']);
  const printed = formatConfig(config);

  it('is two-space JSON with one trailing newline and every key in schema order', () => {
    assert.ok(printed.endsWith('}\n') && !printed.endsWith('\n\n'));
    assert.equal(printed, `${JSON.stringify(JSON.parse(printed), null, 2)}\n`);
    const parsed = JSON.parse(printed) as Record<string, unknown>;
    assert.deepEqual(Object.keys(parsed), ['host', 'port', 'root', 'static', 'maxConnections', 'handshakeTimeoutMs', 'shutdownTimeoutMs', 'tls', 'accessLog', 'metricsPath', 'trustProxy', 'websocket', 'routes']);
    assert.deepEqual(Object.keys(parsed['websocket'] as object), Object.keys(DEFAULT_POLICY));
  });

  it('shows the merged values with absolute paths and completed routes', () => {
    assert.deepEqual(JSON.parse(printed), {
      host: '127.0.0.1', port: 0, root: path.join(FILE_DIR, 'public'),
      static: { indexFile: 'index.html', cacheControl: 'no-cache', directoryListing: false, precompressed: true },
      maxConnections: 0, handshakeTimeoutMs: 10000, shutdownTimeoutMs: 10000,
      tls: { certFile: path.join(FILE_DIR, 'cert.pem'), keyFile: path.join(FILE_DIR, 'key.pem') },
      accessLog: 'text', metricsPath: '/metrics', trustProxy: [],
      websocket: { ...DEFAULT_POLICY, pingIntervalMs: 0 },
      routes: [
        { path: '/echo', kind: 'echo', protocols: ['echo.v1'], allowedOrigins: ['https://example.com'], maxConnections: 0, maxMessageBytes: 1024 },
        { path: '/chat', kind: 'broadcast', protocols: [], allowedOrigins: ['https://example.com'], maxConnections: 0 },
      ],
    });
  });

  it('leaves out optional keys that are unset (root, tls, metricsPath, allowedOrigins)', () => {
    const parsed = JSON.parse(formatConfig(merged(undefined, ['--echo', '/e']))) as Record<string, unknown>;
    for (const key of ['root', 'tls', 'metricsPath']) assert.ok(!(key in parsed), key);
    assert.ok(!('allowedOrigins' in (parsed['routes'] as object[])[0]!));
  });

  it('is itself a config file that describes the same server (printing it again gives the same text)', () => {
    const again = mergeConfig(parseConfigText(printed, path.resolve('/somewhere/else'))).config;
    assert.deepEqual(again, config);
    assert.equal(formatConfig(again), printed);
  });
});

describe('bridge routes', () => {
  it('fills every key of a bridge kind with its default, and prints a config that reads back the same', () => {
    const file = validateConfig({ routes: [
      { path: '/x', kind: 'exec', command: 'cat -u', shared: true },
      { path: '/t', kind: 'tcp', target: 'localhost:22' },
      { path: '/p', kind: 'proxy', target: 'http://127.0.0.1:1/app' },
      { path: '/c', kind: 'cgi', directory: '/srv/cgi' },
    ] }, '/srv');
    const { config } = mergeConfig(file, parseServeArgs(['--exec', '/y=cat', '--exec-framing', 'binary', '--protocol', 'p1'], '/home').flags);
    assert.deepEqual(config.routes, [
      { path: '/x', kind: 'exec', protocols: ['p1'], maxConnections: 0, command: ['cat', '-u'], framing: 'line', passEnv: [], maxProcesses: 0,
        killGraceMs: 2000, lineBuffered: false, shared: true, tagMessages: false, maxLineBytes: 1048576 },
      { path: '/t', kind: 'tcp', maxConnections: 0, target: 'localhost:22', connectTimeoutMs: 10000 },
      { path: '/p', kind: 'proxy', maxConnections: 0, target: 'http://127.0.0.1:1/app' },
      { path: '/c', kind: 'cgi', directory: '/srv/cgi', timeoutMs: 30000, passEnv: [], maxHeaderBytes: 65536, maxBodyBytes: 16777216 },
      { path: '/y', kind: 'exec', protocols: ['p1'], maxConnections: 0, command: ['cat'], framing: 'binary', passEnv: [], maxProcesses: 0,
        killGraceMs: 2000, lineBuffered: false, shared: false, tagMessages: false, maxLineBytes: 1048576 },
    ]);
    const again = mergeConfig(parseConfigText(formatConfig(config), '/elsewhere')).config;
    assert.deepEqual(again, config);
  });
});
