// connect() to a local daemon over a Unix socket: ws+unix:///SOCKET:/PATH URLs (ws's syntax), the socketPath
// option with a ws:// URL, wss+unix:// (TLS over the socket), a relative redirect that stays on the socket, and
// a clear error when no socket is there. Servers are switchyard apps listening on a socket in a temp directory.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { connect } from '../../src/client/connect.js';
import { SwitchyardError } from '../../src/errors.js';
import { cleanupStack, withTimeout } from '../_support/cleanup.js';
import { makeCertificate, OPENSSL_MISSING, type TestCertificate } from '../config/_certificates.js';
import { TIMEOUT_MS, rejection, unixSocketServer, type Defer, type UnixOpened } from './_servers.js';

let dir: string;
let certificate: TestCertificate | undefined;
let socketCount = 0;

before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'switchyard-unix-'));
  certificate = await makeCertificate(await fsp.mkdtemp(path.join(dir, 'cert-')));
});
after(() => fsp.rm(dir, { recursive: true, force: true }));

/**
 * A switchyard app on a fresh Unix socket (unixSocketServer): /echo echoes and records what each connection
 * asked for; upgrades for /old get a 302 to /echo. With `tls`, it speaks TLS on the socket.
 */
function unixServer(defer: Defer, tls?: TestCertificate): Promise<{ socketPath: string; opened: UnixOpened[] }> {
  return unixSocketServer(defer, path.join(dir, `app-${++socketCount}.sock`), tls);
}

async function echoOnce(ws: Awaited<ReturnType<typeof connect>>, text: string): Promise<string> {
  ws.send(text);
  const reply = await withTimeout(ws.messages().next(), TIMEOUT_MS, 'the echo');
  return reply.value?.data.toString() ?? '(connection ended)';
}

describe('connect() over a Unix socket', () => {
  it('echoes over ws+unix:///SOCKET:/PATH?QUERY; the server sees the path and query, ws.url is the URL given', async (t) => {
    const defer = cleanupStack(t);
    const { socketPath, opened } = await unixServer(defer);
    const url = `ws+unix://${socketPath}:/echo?room=7`;
    const ws = await withTimeout(connect(url), TIMEOUT_MS, `connect(${url})`);
    defer(() => ws.terminate());
    assert.equal(ws.url, url);
    assert.equal(await echoOnce(ws, 'over the socket'), 'over the socket');
    assert.deepEqual(opened, [{ url: '/echo?room=7', query: 'room=7', host: 'localhost' }]);
  });

  it('sends a ws:// URL over the socketPath option, with the URL\'s host in the Host header', async (t) => {
    const defer = cleanupStack(t);
    const { socketPath, opened } = await unixServer(defer);
    const ws = await withTimeout(connect('ws://daemon.internal:8080/echo', { socketPath }), TIMEOUT_MS, 'connect with socketPath');
    defer(() => ws.terminate());
    assert.equal(ws.url, 'ws://daemon.internal:8080/echo');
    assert.equal(await echoOnce(ws, 'via socketPath'), 'via socketPath');
    assert.equal(opened[0]?.host, 'daemon.internal:8080');
  });

  it('follows a relative redirect on the same socket', async (t) => {
    const defer = cleanupStack(t);
    const { socketPath, opened } = await unixServer(defer);
    const ws = await withTimeout(connect(`ws+unix://${socketPath}:/old`, { followRedirects: 1 }), TIMEOUT_MS, 'connect through a redirect');
    defer(() => ws.terminate());
    assert.equal(ws.url, `ws+unix://${socketPath}:/echo?moved=1`);
    assert.equal(opened[0]?.url, '/echo?moved=1');
  });

  it('speaks TLS over the socket for wss+unix://, checking the certificate against "localhost"', async (t) => {
    if (certificate === undefined) return t.skip(OPENSSL_MISSING);
    const defer = cleanupStack(t);
    const { socketPath } = await unixServer(defer, certificate);
    const url = `wss+unix://${socketPath}:/echo`;
    const ws = await withTimeout(connect(url, { ca: certificate.cert }), TIMEOUT_MS, `connect(${url})`);
    defer(() => ws.terminate());
    assert.equal(await echoOnce(ws, 'tls over the socket'), 'tls over the socket');
    const untrusted = await rejection(connect(url), 'wss+unix without the ca');
    assert.ok(untrusted instanceof SwitchyardError);
    assert.match(untrusted.message, /TLS handshake/);
  });

  it('rejects with ENOENT "no Unix socket at PATH" when nothing is there, keeping node\'s error as cause', async () => {
    const missing = path.join(dir, 'missing.sock');
    const error = await rejection(connect(`ws+unix://${missing}:/echo`), 'connect to a missing socket');
    assert.ok(error instanceof SwitchyardError);
    assert.equal(error.code, 'ENOENT');
    assert.match(error.message, new RegExp(`no Unix socket at ${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    assert.equal((error.cause as NodeJS.ErrnoException).code, 'ENOENT');
  });
});
