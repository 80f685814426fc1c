// From configuration to server (in process): ServerOptions carry every config value one-to-one, routes get
// their settings and their kind's behaviour, and a route the server refuses is a ConfigError naming it.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { addConfiguredRoutes, buildServer, serverOptionsFor } from '../../src/config/build.js';
import { parseServeArgs } from '../../src/config/flags.js';
import { mergeConfig } from '../../src/config/merge.js';
import { validateConfig } from '../../src/config/validate.js';
import { createServer } from '../../src/server/server.js';
import { connect } from '../../src/client/connect.js';
import type { WebSocket } from '../../src/transport/websocket.js';
import { cleanupStack } from '../_support/cleanup.js';

const noHooks = { writeAccessLogLine(): void {} };

describe('serverOptionsFor', () => {
  it('passes every server and policy value through under the same name', () => {
    const { config } = mergeConfig(validateConfig({
      root: '/srv/www', static: { cacheControl: 'max-age=5' }, maxConnections: 3, handshakeTimeoutMs: 1234, shutdownTimeoutMs: 0,
      metricsPath: '/metrics', accessLog: 'json', websocket: { maxMessageBytes: 100, slowConsumerPolicy: 'drop-newest' },
    }, '/'));
    const lines: string[] = [];
    const options = serverOptionsFor(config, { tls: { cert: Buffer.from('C'), key: Buffer.from('K') } }, { writeAccessLogLine: (line) => lines.push(line) });
    const { accessLog, ...rest } = options;
    assert.deepEqual(rest, {
      ...config.websocket, root: '/srv/www',
      static: { indexFile: 'index.html', cacheControl: 'max-age=5', directoryListing: false, precompressed: true },
      maxConnections: 3, handshakeTimeoutMs: 1234, shutdownTimeoutMs: 0, metricsPath: '/metrics',
      tls: { cert: Buffer.from('C'), key: Buffer.from('K') },
    });
    assert.equal(accessLog?.format, 'json');
    accessLog?.write('a line');
    assert.deepEqual(lines, ['a line'], 'access-log lines go to the hook');
  });

  it('leaves out the access log when it is off, and root, tls and metrics when unset', () => {
    const { config } = mergeConfig(validateConfig({ accessLog: 'off' }, '/'));
    const options = serverOptionsFor(config, {}, noHooks);
    for (const key of ['accessLog', 'root', 'tls', 'metricsPath'] as const) assert.ok(!(key in options), key);
  });
});

describe('addConfiguredRoutes', () => {
  it('turns a route the server refuses into a ConfigError naming the route or its flag', () => {
    const fromFile = mergeConfig(validateConfig({ routes: [{ path: '/a/*/b', kind: 'echo' }] }, '/'));
    assert.throws(() => buildServer(fromFile, {}, noHooks), { name: 'ConfigError', field: 'routes[0].path' });
    const fromFlag = mergeConfig(undefined, parseServeArgs(['--broadcast', '/x/:id/:id'], '/').flags);
    assert.throws(() => buildServer(fromFlag, {}, noHooks), { name: 'ConfigError', field: '--broadcast' });
  });

  it('echo sends each message back with its type, also in pieces; broadcast reaches every connection on the same request path', async (t) => {
    const defer = cleanupStack(t);
    const app = createServer({ pingIntervalMs: 0 });
    addConfiguredRoutes(app, [
      { kind: 'echo', path: '/echo', protocols: ['echo.v1'], maxConnections: 0 },
      { kind: 'echo', path: '/pieces', protocols: [], maxConnections: 0, messagePieceBytes: 4 },
      { kind: 'broadcast', path: '/rooms/:room', protocols: [], maxConnections: 0 },
    ]);
    const { port } = await app.listen({ port: 0, host: '127.0.0.1' });
    defer(() => app.close());

    const received = new Map<string, Array<{ text: string; isBinary: boolean }>>();
    const open = async (name: string, path: string, protocols?: string[]): Promise<WebSocket<undefined>> => {
      received.set(name, []);
      const ws = await connect(`ws://127.0.0.1:${port}${path}`, {
        ...(protocols !== undefined && { protocols }),
        handlers: { message(_ws, data, isBinary) { received.get(name)!.push({ text: data.toString(), isBinary }); } },
      });
      defer(() => ws.terminate());
      return ws;
    };
    const until = async (check: () => boolean): Promise<void> => {
      for (let i = 0; i < 200 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
    };

    const echo = await open('echo', '/echo', ['echo.v1']);
    assert.equal(echo.protocol, 'echo.v1', 'the route speaks its configured subprotocol');
    echo.send('hello');
    echo.send(Buffer.from([1, 2, 3]));
    await until(() => received.get('echo')!.length === 2);
    assert.deepEqual(received.get('echo'), [{ text: 'hello', isBinary: false }, { text: '\u0001\u0002\u0003', isBinary: true }]);

    const pieces = await open('pieces', '/pieces');
    pieces.send('0123456789');
    pieces.send('');
    await until(() => received.get('pieces')!.length === 2);
    assert.deepEqual(received.get('pieces'), [{ text: '0123456789', isBinary: false }, { text: '', isBinary: false }],
      'with messagePieceBytes the pieces are put back together before echoing');

    const alice = await open('alice', '/rooms/red');
    await open('bob', '/rooms/red?seat=2');
    await open('carol', '/rooms/blue');
    alice.send('in red');
    await until(() => received.get('bob')!.length === 1 && received.get('alice')!.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(received.get('alice'), [{ text: 'in red', isBinary: false }], 'the sender gets it too');
    assert.deepEqual(received.get('bob'), [{ text: 'in red', isBinary: false }], 'the query string does not split the room');
    assert.deepEqual(received.get('carol'), [], 'another room does not');
  });
});
