// TLS (issue 3): createServer({ tls: { cert, key } }) serves https and wss on one port. A self-signed certificate
// is made with openssl in a temporary directory; without openssl the tests skip (or fail under
// SWITCHYARD_REQUIRE_PEERS=1). Clients verify the certificate by default and accept it only when given as `ca`.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { createServer, type Switchyard } from '../../src/server/server.js';
import { connect } from '../../src/client/connect.js';
import type { WebSocket } from '../../src/transport/websocket.js';
import { cleanupStack, withTimeout, waitFor } from '../_support/cleanup.js';
import { needPeer } from '../_support/peers.js';

const TIMEOUT_MS = 5000;
type Defer = (cleanup: () => unknown) => void;

let opensslProbe: string | undefined | null = null;
function opensslMissing(): string | undefined {
  if (opensslProbe === null) {
    const result = spawnSync('openssl', ['version'], { encoding: 'utf8' });
    opensslProbe = result.status === 0 ? undefined : 'openssl not found on PATH (install Debian openssl)';
  }
  return opensslProbe;
}

/** One certificate for the whole file: generated once, removed at the end. */
let material: { dir: string; cert: string; key: string } | undefined;

before(async () => {
  if (opensslMissing() !== undefined) return;
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'switchyard-tls-'));
  const result = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem',
    '-subj', '/CN=localhost', '-days', '1'], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
  if (result.status !== 0) throw new Error(`openssl req failed (${result.status}): ${result.stderr}`);
  material = { dir, cert: await fsp.readFile(path.join(dir, 'cert.pem'), 'utf8'), key: await fsp.readFile(path.join(dir, 'key.pem'), 'utf8') };
  await fsp.mkdir(path.join(dir, 'www'));
  await fsp.writeFile(path.join(dir, 'www', 'hello.txt'), 'hello over https\n');
});

after(async () => {
  if (material !== undefined) await fsp.rm(material.dir, { recursive: true, force: true });
});

async function tlsServer(defer: Defer): Promise<{ app: Switchyard; port: number; cert: string }> {
  const { cert, key, dir } = material!;
  const app = createServer({ tls: { cert, key }, root: path.join(dir, 'www'), pingIntervalMs: 0, shutdownTimeoutMs: 500 })
    .websocket('/echo', { message(ws, data, isBinary) { ws.send(data, isBinary); } });
  defer(() => app.close());
  // The certificate names "localhost"; listen where that name resolves.
  const { port } = await app.listen({ port: 0, host: 'localhost' });
  return { app, port, cert };
}

function httpsGet(port: number, urlPath: string, ca: string | undefined): Promise<{ status: number; body: string; authorized: boolean }> {
  return withTimeout(new Promise((resolve, reject) => {
    const request = https.get({ host: 'localhost', port, path: urlPath, agent: false, ...(ca !== undefined && { ca }) }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => { body += chunk; });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body, authorized: (response.socket as TLSSocket).authorized }));
    });
    request.on('error', reject);
  }), TIMEOUT_MS, `GET https://localhost:${port}${urlPath}`);
}

describe('TLS: https and wss on one port', () => {
  it('serves a static file over https to a client that trusts the certificate', async (t) => {
    if (!needPeer(t, opensslMissing())) return;
    const defer = cleanupStack(t);
    const { port, cert } = await tlsServer(defer);
    const result = await httpsGet(port, '/hello.txt', cert);
    assert.equal(result.status, 200);
    assert.equal(result.body, 'hello over https\n');
    assert.equal(result.authorized, true);
    assert.equal((await httpsGet(port, '/missing.txt', cert)).status, 404);
  });

  it('echoes over wss:// with connect(..., { ca })', async (t) => {
    if (!needPeer(t, opensslMissing())) return;
    const defer = cleanupStack(t);
    const { app, port, cert } = await tlsServer(defer);
    const received: string[] = [];
    const closes: number[] = [];
    const ws: WebSocket<undefined> = await withTimeout(connect(`wss://localhost:${port}/echo`, {
      ca: cert,
      handlers: {
        message(_ws, data) { received.push(data.toString()); },
        close(_ws, code) { closes.push(code); },
      },
    }), TIMEOUT_MS, 'the wss handshake');
    defer(() => ws.terminate());
    assert.equal(app.connectionCount, 1);
    ws.send('over TLS');
    ws.send('and again');
    await waitFor(() => received.length === 2, TIMEOUT_MS, 'the echoes');
    assert.deepEqual(received, ['over TLS', 'and again']);
    ws.close(1000, 'done');
    await waitFor(() => closes.length === 1, TIMEOUT_MS, 'the closing handshake');
    assert.deepEqual(closes, [1000]);
    await waitFor(() => app.connectionCount === 0, TIMEOUT_MS, 'the server to forget the connection');
  });

  it('refuses the self-signed certificate by default (no ca), for https and wss, and keeps serving', async (t) => {
    if (!needPeer(t, opensslMissing())) return;
    const defer = cleanupStack(t);
    const { app, port, cert } = await tlsServer(defer);
    const certificateError = (error: NodeJS.ErrnoException): boolean =>
      /SELF_SIGNED|UNABLE_TO_VERIFY|CERT/.test(`${error.code ?? ''} ${error.message}`);
    await assert.rejects(httpsGet(port, '/hello.txt', undefined), certificateError);
    await assert.rejects(withTimeout(connect(`wss://localhost:${port}/echo`), TIMEOUT_MS, 'wss without ca'), certificateError);
    assert.equal(app.connectionCount, 0);
    // Turning verification off is an explicit choice, and the server still works for clients that verify.
    const insecure = await withTimeout(connect(`wss://localhost:${port}/echo`, { rejectUnauthorized: false }), TIMEOUT_MS, 'wss without verification');
    defer(() => insecure.terminate());
    assert.equal((await httpsGet(port, '/hello.txt', cert)).status, 200);
  });
});
