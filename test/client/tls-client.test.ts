// connect() over wss:// with TLS settings beyond the server's certificate: a client certificate (cert + key,
// or a PKCS#12 bundle with a passphrase) for a server that requires one, and SNI (the URL's host name, none
// for an IP address, or the `servername` option, which is also the name the certificate is checked against).
// Certificates are self-signed, made with openssl; the tests skip without it.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { connect } from '../../src/client/connect.js';
import { HandshakeError, SwitchyardError } from '../../src/errors.js';
import { cleanupStack, withTimeout } from '../_support/cleanup.js';
import { makeCertificate, OPENSSL_MISSING, type TestCertificate } from '../config/_certificates.js';
import { HOST, TIMEOUT_MS, rejection, tlsServer as startTlsServer, type Defer, type TlsHandshake } from './_servers.js';

let dir: string;
let serverCertificate: TestCertificate | undefined;
let clientCertificate: TestCertificate | undefined;
/** The client certificate and key as a PKCS#12 bundle locked with PFX_PASSPHRASE. */
let clientPfx: Buffer | undefined;
const PFX_PASSPHRASE = 's3cret';

before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'switchyard-tls-client-'));
  serverCertificate = await makeCertificate(await fsp.mkdtemp(path.join(dir, 'server-')));
  clientCertificate = await makeCertificate(await fsp.mkdtemp(path.join(dir, 'client-')));
  if (clientCertificate === undefined) return;
  const pfxFile = path.join(clientCertificate.dir, 'client.p12');
  const result = spawnSync('openssl', ['pkcs12', '-export', '-in', clientCertificate.certFile, '-inkey', clientCertificate.keyFile,
    '-out', pfxFile, '-passout', `pass:${PFX_PASSPHRASE}`], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', timeout: 30_000 });
  if (result.status !== 0) throw new Error(`openssl pkcs12 failed (${result.status}): ${result.stderr}`);
  clientPfx = await fsp.readFile(pfxFile);
});
after(() => fsp.rm(dir, { recursive: true, force: true }));

/**
 * An https server with our /echo route attached (tlsServer in _servers.ts), recording each TLS handshake. With
 * `requireClientCertificate` it asks for a client certificate and accepts only the test's client certificate.
 * `redirectTo` answers every other upgrade with a 302 there.
 */
function tlsServer(defer: Defer, options: { requireClientCertificate?: boolean; redirectTo?: string } = {}): Promise<{ port: number; handshakes: TlsHandshake[] }> {
  return startTlsServer(defer, {
    certificate: serverCertificate!,
    ...(options.requireClientCertificate === true && { requireClientCertificate: clientCertificate!.cert }),
    ...(options.redirectTo !== undefined && { redirectTo: options.redirectTo }),
  });
}

async function assertEcho(defer: Defer, url: string, options: Parameters<typeof connect>[1]): Promise<void> {
  const ws = await withTimeout(connect(url, options), TIMEOUT_MS, `connect(${url})`);
  defer(() => ws.terminate());
  ws.send('over tls');
  const reply = await withTimeout(ws.messages().next(), TIMEOUT_MS, 'the echo');
  assert.equal(reply.value?.data.toString(), 'over tls');
}

function fingerprintOf(pem: Buffer): string {
  const result = spawnSync('openssl', ['x509', '-noout', '-fingerprint', '-sha256'], { input: pem, encoding: 'utf8' });
  return result.stdout.trim().replace(/^.*=/, '');
}

describe('connect() with a client certificate', () => {
  it('presents cert and key to a server that requires a client certificate', async (t) => {
    if (clientCertificate === undefined || serverCertificate === undefined) return t.skip(OPENSSL_MISSING);
    const defer = cleanupStack(t);
    const { port, handshakes } = await tlsServer(defer, { requireClientCertificate: true });
    await assertEcho(defer, `wss://${HOST}:${port}/echo`, { ca: serverCertificate.cert, cert: clientCertificate.cert, key: clientCertificate.key });
    assert.equal(handshakes.length, 1);
    assert.equal(handshakes[0]!.authorized, true);
    assert.equal(handshakes[0]!.clientFingerprint, fingerprintOf(clientCertificate.cert));
  });

  it('presents a PKCS#12 bundle given as pfx with its passphrase', async (t) => {
    if (clientPfx === undefined || serverCertificate === undefined) return t.skip(OPENSSL_MISSING);
    const defer = cleanupStack(t);
    const { port, handshakes } = await tlsServer(defer, { requireClientCertificate: true });
    await assertEcho(defer, `wss://${HOST}:${port}/echo`, { ca: serverCertificate.cert, pfx: clientPfx, passphrase: PFX_PASSPHRASE });
    assert.equal(handshakes[0]?.authorized, true);
  });

  it('rejects with a SwitchyardError (node\'s error as cause) when the bundle\'s passphrase is wrong', async (t) => {
    if (clientPfx === undefined || serverCertificate === undefined) return t.skip(OPENSSL_MISSING);
    const defer = cleanupStack(t);
    const { port } = await tlsServer(defer, { requireClientCertificate: true });
    const error = await rejection(connect(`wss://${HOST}:${port}/echo`, { ca: serverCertificate.cert, pfx: clientPfx, passphrase: 'wrong' }), 'a wrong passphrase');
    assert.ok(error instanceof SwitchyardError, `got ${String(error)}`);
    assert.match(error.message, /cannot use the TLS options/);
    assert.ok(error.cause instanceof Error);
  });

  it('is refused by that server without a client certificate, with a TLS error and node\'s as cause', async (t) => {
    if (clientCertificate === undefined || serverCertificate === undefined) return t.skip(OPENSSL_MISSING);
    const defer = cleanupStack(t);
    const { port } = await tlsServer(defer, { requireClientCertificate: true });
    const error = await rejection(connect(`wss://${HOST}:${port}/echo`, { ca: serverCertificate.cert }), 'no client certificate');
    assert.ok(error instanceof SwitchyardError && !(error instanceof HandshakeError), `got ${String(error)}`);
    assert.ok(error.cause instanceof Error);
    assert.match(`${error.code} ${error.message}`, /TLS|SSL|ECONNRESET|closed the connection/);
  });
});

describe('connect() and SNI', () => {
  it('sends the URL\'s host name as SNI and checks the certificate against it', async (t) => {
    if (serverCertificate === undefined) return t.skip(OPENSSL_MISSING);
    const defer = cleanupStack(t);
    const { port, handshakes } = await tlsServer(defer);
    await assertEcho(defer, `wss://localhost:${port}/echo`, { ca: serverCertificate.cert });
    assert.equal(handshakes[0]?.servername, 'localhost');
  });

  it('sends no SNI for an IP address (RFC 6066 §3)', async (t) => {
    if (serverCertificate === undefined) return t.skip(OPENSSL_MISSING);
    const defer = cleanupStack(t);
    const { port, handshakes } = await tlsServer(defer);
    await assertEcho(defer, `wss://${HOST}:${port}/echo`, { ca: serverCertificate.cert });
    assert.equal(handshakes[0]?.servername, false);
  });

  it('sends the servername option instead, and checks the certificate against that name', async (t) => {
    if (serverCertificate === undefined) return t.skip(OPENSSL_MISSING);
    const defer = cleanupStack(t);
    const { port, handshakes } = await tlsServer(defer);
    await assertEcho(defer, `wss://${HOST}:${port}/echo`, { ca: serverCertificate.cert, servername: 'localhost' });
    assert.equal(handshakes[0]?.servername, 'localhost');
    const mismatch = await rejection(connect(`wss://${HOST}:${port}/echo`, { ca: serverCertificate.cert, servername: 'other.example' }), 'a servername the certificate does not name');
    assert.ok(mismatch instanceof SwitchyardError);
    assert.equal(mismatch.code, 'ERR_TLS_CERT_ALTNAME_INVALID');
    assert.match(mismatch.message, /TLS handshake with wss:\/\/127\.0\.0\.1:\d+\/echo failed/);
  });

  it('gives the servername option to the server connect() was given only, not to a redirect\'s', async (t) => {
    if (serverCertificate === undefined) return t.skip(OPENSSL_MISSING);
    const defer = cleanupStack(t);
    const final = await tlsServer(defer);
    const first = await tlsServer(defer, { redirectTo: `wss://${HOST}:${final.port}/echo` });
    await assertEcho(defer, `wss://${HOST}:${first.port}/start`, { ca: serverCertificate.cert, servername: 'localhost', followRedirects: 1 });
    assert.equal(first.handshakes[0]?.servername, 'localhost');
    assert.equal(final.handshakes[0]?.servername, false);
  });
});
