// TLS through the CLI: with --tls-cert/--tls-key (or `tls` in the config file) the one port serves https and
// wss, the listening line says https://, and bad TLS files exit 2 naming the flag or field. Uses a self-signed
// certificate made with openssl; skipped when openssl is not installed.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { cleanupStack } from '../_support/cleanup.js';
import { connect } from '../../src/client/connect.js';
import { makeCertificate, OPENSSL_MISSING, type TestCertificate } from '../config/_certificates.js';
import { assertUsageError, eventually, httpGet, runCli, startServer } from './_cli.js';

let dir: string;
let certificate: TestCertificate | undefined;
let stranger: TestCertificate | undefined;

before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'switchyard-cli-tls-'));
  await fsp.mkdir(path.join(dir, 'site', 'public'), { recursive: true });
  await fsp.writeFile(path.join(dir, 'site', 'public', 'hello.txt'), 'hello over tls\n');
  certificate = await makeCertificate(await fsp.mkdtemp(path.join(dir, 'cert-')));
  stranger = await makeCertificate(await fsp.mkdtemp(path.join(dir, 'cert-')));
});
after(() => fsp.rm(dir, { recursive: true, force: true }));

/** A wss echo round trip, verifying the server's certificate against `ca`. */
async function assertWssEcho(defer: (cleanup: () => unknown) => void, port: number, ca: Buffer): Promise<void> {
  const messages: string[] = [];
  const client = await connect(`wss://127.0.0.1:${port}/echo`, { ca, handlers: { message(_ws, data) { messages.push(data.toString()); } } });
  defer(() => client.terminate());
  client.send('over wss');
  assert.ok(await eventually(() => messages.length === 1), 'no echo over wss');
  assert.equal(messages[0], 'over wss');
}

describe('switchyard serve with TLS', () => {
  it('--tls-cert and --tls-key: https and wss on one port, and the listening line says https://', async (t) => {
    if (certificate === undefined) return t.skip(OPENSSL_MISSING);
    const defer = cleanupStack(t);
    const server = await startServer(defer, [path.join(dir, 'site', 'public'), '--echo', '/echo', '--ping-interval-ms', '0', '--access-log', 'off',
      '--tls-cert', certificate.certFile, '--tls-key', certificate.keyFile]);
    assert.equal(server.output(), `switchyard listening on https://127.0.0.1:${server.port}\n`);

    const page = await httpGet(server.port, '/hello.txt', { ca: certificate.cert });
    assert.equal(page.status, 200);
    assert.equal(page.body, 'hello over tls\n');
    await assertWssEcho(defer, server.port, certificate.cert);

    // Plain HTTP to the TLS port gets no HTTP answer.
    const socket = net.connect(server.port, '127.0.0.1');
    defer(() => socket.destroy());
    let received = '';
    socket.setEncoding('latin1').on('data', (chunk: string) => { received += chunk; });
    socket.on('error', () => {});
    socket.write('GET /hello.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.doesNotMatch(received, /hello over tls/);
  });

  it('tls in the config file, with paths relative to the file', async (t) => {
    if (certificate === undefined) return t.skip(OPENSSL_MISSING);
    const defer = cleanupStack(t);
    await fsp.mkdir(path.join(dir, 'site', 'tls'), { recursive: true });
    await fsp.copyFile(certificate.certFile, path.join(dir, 'site', 'tls', 'cert.pem'));
    await fsp.copyFile(certificate.keyFile, path.join(dir, 'site', 'tls', 'key.pem'));
    const file = path.join(dir, 'site', 'switchyard.json');
    await fsp.writeFile(file, JSON.stringify({
      root: 'public', accessLog: 'off', tls: { certFile: 'tls/cert.pem', keyFile: 'tls/key.pem' },
      websocket: { pingIntervalMs: 0 }, routes: [{ path: '/echo', kind: 'echo' }],
    }));
    const server = await startServer(defer, ['--config', file], { cwd: os.tmpdir() });
    assert.match(server.output(), /^switchyard listening on https:\/\/127\.0\.0\.1:\d+\n$/);
    assert.equal((await httpGet(server.port, '/hello.txt', { ca: certificate.cert })).status, 200);
    await assertWssEcho(defer, server.port, certificate.cert);
  });

  it('--print-config shows the TLS files as absolute paths', async (t) => {
    if (certificate === undefined) return t.skip(OPENSSL_MISSING);
    const relative = path.relative(dir, certificate.certFile);
    const result = await runCli(t, ['serve', '--tls-cert', relative, '--tls-key', certificate.keyFile, '--print-config'], { cwd: dir });
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual((JSON.parse(result.stdout) as { tls: unknown }).tls, { certFile: certificate.certFile, keyFile: certificate.keyFile });
  });

  it('exits 2 naming --tls-key for a key that does not belong to the certificate', async (t) => {
    if (certificate === undefined || stranger === undefined) return t.skip(OPENSSL_MISSING);
    const result = await runCli(t, ['serve', '--tls-cert', certificate.certFile, '--tls-key', stranger.keyFile]);
    assertUsageError(result, /^switchyard: --tls-key: .* cannot be used with /m);
  });

  it('exits 2 naming --tls-cert for a certificate file that is missing or not PEM', async (t) => {
    if (certificate === undefined) return t.skip(OPENSSL_MISSING);
    const missing = path.join(dir, 'missing.pem');
    assertUsageError(await runCli(t, ['serve', '--tls-cert', missing, '--tls-key', certificate.keyFile]), /^switchyard: --tls-cert: cannot read .*missing\.pem.*: no such file$/m);
    assertUsageError(await runCli(t, ['serve', '--tls-cert', certificate.keyFile, '--tls-key', certificate.keyFile]), /^switchyard: --tls-cert: .* holds no PEM certificate/m);
  });
});
