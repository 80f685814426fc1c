// Loading (file system, no processes): the config file read from disk with paths relative to its directory,
// and the files the configuration names (ROOT, TLS certificate and key) checked with errors naming the field
// or flag that gave them.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseServeArgs } from '../../src/config/flags.js';
import { loadConfigFile, loadResources, loadServeConfig } from '../../src/config/load.js';
import { mergeConfig } from '../../src/config/merge.js';
import { makeCertificate, OPENSSL_MISSING, type TestCertificate } from './_certificates.js';

let dir: string;
let certificate: TestCertificate | undefined;
let otherCertificate: TestCertificate | undefined;

before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'switchyard-config-'));
  await fsp.mkdir(path.join(dir, 'conf', 'public'), { recursive: true });
  await fsp.writeFile(path.join(dir, 'conf', 'file.txt'), 'not a directory');
  certificate = await makeCertificate(await fsp.mkdtemp(path.join(dir, 'tls-')));
  otherCertificate = await makeCertificate(await fsp.mkdtemp(path.join(dir, 'tls-')));
});
after(() => fsp.rm(dir, { recursive: true, force: true }));

async function writeConfig(name: string, json: unknown): Promise<string> {
  const file = path.join(dir, 'conf', name);
  await fsp.writeFile(file, typeof json === 'string' ? json : JSON.stringify(json, null, 2));
  return file;
}

describe('loadConfigFile', () => {
  it('resolves relative paths against the config file directory, not the working directory', async () => {
    const file = await writeConfig('relative.json', { root: 'public', tls: { certFile: '../tls/cert.pem', keyFile: 'key.pem' } });
    const layer = await loadConfigFile(file);
    assert.equal(layer.root, path.join(dir, 'conf', 'public'));
    assert.deepEqual(layer.tls, { certFile: path.join(dir, 'tls', 'cert.pem'), keyFile: path.join(dir, 'conf', 'key.pem') });
  });

  it('names --config when the file cannot be read', async () => {
    const missing = path.join(dir, 'conf', 'missing.json');
    await assert.rejects(loadConfigFile(missing), { name: 'ConfigError', field: '--config', message: `--config: cannot read ${JSON.stringify(missing)}: no such file` });
    await assert.rejects(loadConfigFile(path.join(dir, 'conf')), { name: 'ConfigError', field: '--config', message: /it is a directory/ });
  });

  it('reports malformed JSON with its line and column and bad values with their field path', async () => {
    await assert.rejects(loadConfigFile(await writeConfig('syntax.json', '{\n  "port": 1\n  "host": "x"\n}')),
      { name: 'ConfigError', message: "line 3, column 3: invalid JSON: expected ',' or '}' after a value in an object, found '\"'" });
    await assert.rejects(loadConfigFile(await writeConfig('value.json', { routes: [{ path: '/a', kind: 'echo' }, { path: '/b', kind: 'echo', maxMessageBytes: -5 }] })),
      { name: 'ConfigError', field: 'routes[1].maxMessageBytes', message: 'routes[1].maxMessageBytes: must be an integer >= 1 (got -5)' });
  });
});

describe('loadResources', () => {
  const effective = (fileJson: unknown, args: string[] = []) =>
    mergeConfig(fileJson === undefined ? undefined : { ...(fileJson as object) }, parseServeArgs(args, dir).flags);

  it('accepts an existing ROOT directory and no TLS', async () => {
    assert.deepEqual(await loadResources(effective(undefined, [path.join(dir, 'conf', 'public')])), {});
  });

  it('refuses a ROOT that does not exist or is a file, naming ROOT or root', async () => {
    const missing = path.join(dir, 'nowhere');
    await assert.rejects(loadResources(effective(undefined, [missing])), { name: 'ConfigError', message: `ROOT: ${JSON.stringify(missing)} does not exist` });
    const file = path.join(dir, 'conf', 'file.txt');
    await assert.rejects(loadResources(effective({ root: file })), { name: 'ConfigError', message: `root: ${JSON.stringify(file)} is not a directory` });
  });

  it('refuses an unreadable certificate or key, naming tls.certFile / tls.keyFile or the flag', async () => {
    const missing = path.join(dir, 'missing.pem');
    const existing = path.join(dir, 'conf', 'file.txt');
    await assert.rejects(loadResources(effective({ tls: { certFile: missing, keyFile: existing } })),
      { name: 'ConfigError', field: 'tls.certFile', message: `tls.certFile: cannot read ${JSON.stringify(missing)}: no such file` });
    await assert.rejects(loadResources(effective(undefined, ['--tls-cert', existing, '--tls-key', missing])),
      { name: 'ConfigError', field: '--tls-key', message: `--tls-key: cannot read ${JSON.stringify(missing)}: no such file` });
  });

  it('refuses files that are not PEM', async (t) => {
    if (certificate === undefined) return t.skip(OPENSSL_MISSING);
    const text = path.join(dir, 'conf', 'file.txt');
    await assert.rejects(loadResources(effective({ tls: { certFile: text, keyFile: certificate.keyFile } })),
      { name: 'ConfigError', field: 'tls.certFile', message: /holds no PEM certificate/ });
    await assert.rejects(loadResources(effective({ tls: { certFile: certificate.certFile, keyFile: certificate.certFile } })),
      { name: 'ConfigError', field: 'tls.keyFile', message: /holds no PEM private key/ });
  });

  it('refuses a key that does not belong to the certificate', async (t) => {
    if (certificate === undefined || otherCertificate === undefined) return t.skip(OPENSSL_MISSING);
    await assert.rejects(loadResources(effective(undefined, ['--tls-cert', certificate.certFile, '--tls-key', otherCertificate.keyFile])),
      { name: 'ConfigError', field: '--tls-key', message: /cannot be used with/ });
  });

  it('reads a matching certificate and key', async (t) => {
    if (certificate === undefined) return t.skip(OPENSSL_MISSING);
    const resources = await loadResources(effective({ tls: { certFile: certificate.certFile, keyFile: certificate.keyFile } }));
    assert.deepEqual(resources.tls, { cert: certificate.cert, key: certificate.key });
  });
});

describe('loadServeConfig', () => {
  it('runs file, flags and files checks in one go', async () => {
    const file = await writeConfig('whole.json', { root: 'public', port: 9000, routes: [{ path: '/echo', kind: 'echo' }] });
    const loaded = await loadServeConfig(parseServeArgs(['--config', file, '--port', '0', '--broadcast', '/chat'], '/'));
    assert.equal(loaded.config.root, path.join(dir, 'conf', 'public'));
    assert.equal(loaded.config.port, 0);
    assert.deepEqual(loaded.config.routes.map((route) => route.path), ['/echo', '/chat']);
    assert.deepEqual(loaded.resources, {});
  });
});
