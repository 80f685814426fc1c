// The TLS material `switchyard connect` is given by file name (--ca, --cert, --key, and the key's passphrase from
// SWITCHYARD_KEY_PASSPHRASE): read and tried before any connection is made, so that a missing file, a file that
// is not PEM, a key that does not fit the certificate or a wrong passphrase is a usage error (exit 2) naming the
// flag and the file, not a TLS failure at connect time.
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { ClientTlsOptions } from '../client/connect.js';
import { KEY_PASSPHRASE_ENV, type ConnectInvocation } from '../config/connect-flags.js';
import { ConfigError } from '../errors.js';

const PEM_CERTIFICATE = '-----BEGIN CERTIFICATE-----';

/** Why a file could not be read, in words. */
function unreadable(error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case 'ENOENT': return 'no such file';
    case 'EACCES': case 'EPERM': return 'permission denied';
    case 'EISDIR': return 'it is a directory';
    default: return error.message;
  }
}

function readFor(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new ConfigError(flag, `cannot read ${file}: ${unreadable(error as NodeJS.ErrnoException)}`, { cause: error });
  }
}

/** OpenSSL's reason without its "error:0480006C:PEM routines::" prefix. */
function reason(error: unknown): string {
  const message = (error as Error)?.message ?? String(error);
  return message.replace(/^error:[0-9A-F]+:[^:]*::?/i, '');
}

/**
 * The TLS options for connect() that come from files: {} when no file flag is given. Throws ConfigError (exit 2)
 * naming the flag and the file for anything unusable.
 */
export function loadClientTls(invocation: ConnectInvocation): ClientTlsOptions {
  const tls: { ca?: Buffer; cert?: Buffer; key?: Buffer; passphrase?: string } = {};
  const { caFile, certFile, keyFile, passphrase } = invocation;
  if (caFile !== undefined) {
    const ca = readFor('--ca', caFile);
    // Node ignores text that holds no certificate, which would leave nothing trusted and fail every wss:// later.
    if (!ca.includes(PEM_CERTIFICATE)) throw new ConfigError('--ca', `${caFile} holds no PEM certificate (no "${PEM_CERTIFICATE}" line)`);
    try {
      createSecureContext({ ca });
    } catch (error) {
      throw new ConfigError('--ca', `${caFile} is not usable as PEM certificates: ${reason(error)}`, { cause: error });
    }
    tls.ca = ca;
  }
  if (certFile !== undefined && keyFile !== undefined) {
    const cert = readFor('--cert', certFile);
    const key = readFor('--key', keyFile);
    try {
      createSecureContext({ cert, key, ...(passphrase !== undefined && { passphrase }) });
    } catch (error) {
      throw explainPairFailure(error, certFile, keyFile, cert, passphrase);
    }
    tls.cert = cert;
    tls.key = key;
    if (passphrase !== undefined) tls.passphrase = passphrase;
  }
  return tls;
}

/** Which of the two files (or the passphrase) made the certificate and key unusable. */
function explainPairFailure(error: unknown, certFile: string, keyFile: string, cert: Buffer, passphrase: string | undefined): ConfigError {
  const code = (error as NodeJS.ErrnoException)?.code ?? '';
  if (code === 'ERR_OSSL_BAD_DECRYPT' || /bad decrypt|bad password/i.test(reason(error))) {
    return new ConfigError('--key', passphrase === undefined
      ? `${keyFile} is encrypted: put its passphrase in the ${KEY_PASSPHRASE_ENV} environment variable`
      : `cannot decrypt ${keyFile} with the passphrase in ${KEY_PASSPHRASE_ENV} (is it the right one?)`, { cause: error });
  }
  if (code === 'ERR_OSSL_X509_KEY_VALUES_MISMATCH' || /key values mismatch/i.test(reason(error))) {
    return new ConfigError('--key', `${keyFile} is not the private key of the certificate in ${certFile}`, { cause: error });
  }
  try {
    createSecureContext({ cert });
  } catch (certError) {
    return new ConfigError('--cert', `${certFile} is not a PEM certificate: ${reason(certError)}`, { cause: certError });
  }
  return new ConfigError('--key', `${keyFile} is not a PEM private key: ${reason(error)}`, { cause: error });
}
