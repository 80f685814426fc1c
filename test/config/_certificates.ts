// A throwaway self-signed certificate for TLS tests, made with the openssl command line (for localhost and
// 127.0.0.1, valid one day). Returns undefined when openssl is not installed, so callers can skip.
import { spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface TestCertificate {
  readonly dir: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: Buffer;
  readonly key: Buffer;
}

export const OPENSSL_MISSING = 'openssl is not installed: TLS tests need it to make a self-signed certificate';

export async function makeCertificate(dir?: string): Promise<TestCertificate | undefined> {
  const target = dir ?? await fsp.mkdtemp(path.join(os.tmpdir(), 'switchyard-tls-'));
  const certFile = path.join(target, 'cert.pem');
  const keyFile = path.join(target, 'key.pem');
  const result = spawnSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', keyFile, '-out', certFile,
  ], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', timeout: 30_000 });
  if (result.error !== undefined && (result.error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
  if (result.status !== 0) throw new Error(`openssl failed (${result.status}): ${result.stderr}`);
  return { dir: target, certFile, keyFile, cert: await fsp.readFile(certFile), key: await fsp.readFile(keyFile) };
}
