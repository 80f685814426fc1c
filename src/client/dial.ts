// One opening-handshake attempt: connects (TCP, TLS or a Unix socket) through node's HTTP client, sends the
// GET with the upgrade fields, and reports what came back (the upgraded socket, or an answer that is not an
// upgrade) or why the connection failed, as an error that names the failure and keeps node's as its cause.
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import type { Socket } from 'node:net';
import type { SecureContextOptions } from 'node:tls';
import { SwitchyardError } from '../errors.js';
import { serverNameFor, type ClientTarget } from './client-url.js';

/** TLS settings for wss:// (and wss+unix://), including a wss:// URL reached by a redirect. */
export interface ClientTlsOptions {
  /** Verify the server's certificate (default true). */
  rejectUnauthorized?: boolean;
  /** Trusted certificates (PEM) instead of Node's bundled roots. */
  ca?: NonNullable<SecureContextOptions['ca']>;
  /** A client certificate chain (PEM), for servers that ask for one; goes with `key`. */
  cert?: NonNullable<SecureContextOptions['cert']>;
  /** The client certificate's private key (PEM). */
  key?: NonNullable<SecureContextOptions['key']>;
  /** A PKCS#12 bundle holding the client certificate and key, instead of `cert` and `key`. */
  pfx?: NonNullable<SecureContextOptions['pfx']>;
  /** Unlocks an encrypted `key` or `pfx`. */
  passphrase?: string;
  /**
   * The name sent as SNI and checked against the certificate. Default: the URL's host name; none for an IP
   * address; "localhost" for wss+unix://.
   */
  servername?: string;
}

export interface DialHandlers {
  /** The server answered 101: the socket and any bytes that came after the response head. */
  upgrade(response: IncomingMessage, socket: Socket, head: Buffer): void;
  /** The server answered without upgrading (any status but 101); the connection is closed after this returns. */
  answer(response: IncomingMessage): void;
  error(error: Error): void;
}

/** Starts one attempt. Returns a function that abandons it, closing its connection. Throws for bad headers. */
export function dial(target: ClientTarget, headers: Readonly<Record<string, string>>, tls: ClientTlsOptions, handlers: DialHandlers): () => void {
  const options: RequestOptions = {
    method: 'GET',
    // Never pooled: the socket becomes the WebSocket's, and an answer that is not a 101 ends it.
    agent: false,
    host: target.hostname,
    port: target.port,
    path: target.path,
    headers,
    ...(target.socketPath !== undefined && { socketPath: target.socketPath }),
    ...(target.secure && secureOptions(target, tls)),
  };
  let request: ClientRequest;
  try {
    request = target.secure ? httpsRequest(options) : httpRequest(options);
  } catch (error) {
    // Bad header names or values are the caller's mistake (node's TypeError); anything else here is TLS
    // material node could not use (a key that does not match, a wrong passphrase).
    if (error instanceof TypeError || !target.secure) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new SwitchyardError(typeof code === 'string' ? code : 'ERR_TLS_CREDENTIALS', `cannot use the TLS options for ${describeTarget(target)} (${(error as Error).message})`, { cause: error });
  }
  const progress = { connected: false, secured: false };
  let done = false;
  request.on('socket', (socket: Socket) => {
    socket.once('connect', () => { progress.connected = true; });
    socket.once('secureConnect', () => { progress.secured = true; });
  });
  request.on('error', (error: NodeJS.ErrnoException) => {
    if (done) return;
    done = true;
    handlers.error(describeFailure(error, target, progress));
  });
  request.on('response', (response: IncomingMessage) => {
    response.on('error', () => {}); // the body is not read: closing the connection under it is not an error
    response.resume();
    if (done) return;
    done = true;
    try {
      handlers.answer(response);
    } finally {
      request.destroy();
    }
  });
  request.on('upgrade', (response: IncomingMessage, socket: Socket, head: Buffer) => {
    if (done) {
      socket.destroy();
      return;
    }
    done = true;
    handlers.upgrade(response, socket, head);
  });
  request.end();
  return () => {
    done = true;
    request.destroy();
  };
}

function secureOptions(target: ClientTarget, tls: ClientTlsOptions): Partial<RequestOptions> {
  return {
    // "" asks node for no SNI; the certificate is then checked against the host (an IP address).
    servername: serverNameFor(target, tls.servername) ?? '',
    rejectUnauthorized: tls.rejectUnauthorized ?? true,
    ...(tls.ca !== undefined && { ca: tls.ca }),
    ...(tls.cert !== undefined && { cert: tls.cert }),
    ...(tls.key !== undefined && { key: tls.key }),
    ...(tls.pfx !== undefined && { pfx: tls.pfx }),
    ...(tls.passphrase !== undefined && { passphrase: tls.passphrase }),
  };
}

/** Where the attempt went, for messages: the URL, or the socket path and request path. */
function describeTarget(target: ClientTarget): string {
  return target.socketPath === undefined || target.href.includes('+unix:') ? target.href : `${target.href} (over Unix socket ${target.socketPath})`;
}

/**
 * Node's error, explained: the same `code` (ECONNREFUSED, ENOTFOUND, a certificate error...) so callers can
 * match on it, a message that says what failed and where, and the original as `cause`.
 */
function describeFailure(error: NodeJS.ErrnoException, target: ClientTarget, progress: { connected: boolean; secured: boolean }): SwitchyardError {
  const code = typeof error.code === 'string' ? error.code : 'ERR_CONNECT';
  const where = describeTarget(target);
  const tlsFailure = target.secure && ((progress.connected && !progress.secured) || /^ERR_(SSL|TLS|OSSL)_/.test(code));
  let what: string;
  if (tlsFailure) what = `TLS handshake with ${where} failed`;
  else if (code === 'ECONNREFUSED') what = target.socketPath === undefined ? `cannot connect to ${where}: connection refused` : `cannot connect to ${where}: nothing listens on the socket`;
  else if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_FAIL' || code === 'EAI_NONAME') what = `cannot connect to ${where}: cannot resolve host name ${target.hostname}`;
  else if (code === 'ENOENT' && target.socketPath !== undefined) what = `cannot connect to ${where}: no Unix socket at ${target.socketPath}`;
  else if (code === 'EACCES' || code === 'EPERM') what = `cannot connect to ${where}: permission denied`;
  else if (code === 'ECONNRESET' && progress.connected) what = `${where} closed the connection before answering the handshake`;
  else what = `cannot connect to ${where}`;
  return new SwitchyardError(code, `${what} (${error.message.trim()})`, { cause: error });
}
