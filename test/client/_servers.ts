// Servers and waits the connect() tests (and the `switchyard connect` ones) share: our own server on 127.0.0.1
// port 0, on a Unix socket, or behind https (asking for a client certificate if told to), a raw `net` server
// that answers the handshake however a test wants, and an assertion on HandshakeError's code and status.
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { createServer, type Switchyard, type WebSocketRoute } from '../../src/server/server.js';
import { HandshakeError } from '../../src/errors.js';
import { withTimeout } from '../_support/cleanup.js';

/** A port nothing listens on (it was free a moment ago). */
export { freePort as closedPort } from '../_support/resources.js';

export const HOST = '127.0.0.1';
export const TIMEOUT_MS = 3000;

export type Defer = (cleanup: () => unknown) => void;

export const echo: WebSocketRoute<undefined> = { message(ws, data, isBinary) { ws.send(data, isBinary); } };

/** Our server with `routes`, listening on 127.0.0.1 port 0, closed after the test. */
export async function startServer(defer: Defer, routes: Record<string, WebSocketRoute<undefined>>): Promise<{ app: Switchyard; port: number }> {
  const app = createServer({ pingIntervalMs: 0, closeTimeoutMs: 1000, shutdownTimeoutMs: 500 });
  for (const [path, route] of Object.entries(routes)) app.websocket<undefined>(path, route);
  defer(() => app.close());
  return { app, port: (await app.listen({ port: 0, host: HOST })).port };
}

export interface UnixOpened {
  readonly url: string;
  readonly query: string;
  readonly host: string | string[] | undefined;
}

/** Answers an upgrade with a redirect and closes, as a server that moved would. */
function redirectUpgrade(socket: Duplex, location: string): void {
  socket.on('error', () => {});
  socket.end(`HTTP/1.1 302 Found\r\nLocation: ${location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
}

/**
 * Our app listening on the Unix socket `socketPath`: /echo echoes and records what each connection asked for;
 * upgrades for /old get a 302 to /echo?moved=1. With `tls` (a certificate and its key), it speaks TLS on the socket.
 */
export async function unixSocketServer(defer: Defer, socketPath: string, tls?: { cert: Buffer; key: Buffer }): Promise<{ socketPath: string; opened: UnixOpened[] }> {
  const opened: UnixOpened[] = [];
  const route: WebSocketRoute<undefined> = {
    open(ws) { opened.push({ url: ws.url, query: ws.query.toString(), host: ws.headers['host'] }); },
    message(ws, data, isBinary) { ws.send(data, isBinary); },
  };
  const app = createServer({ pingIntervalMs: 0, shutdownTimeoutMs: 200 }).websocket<undefined>('/echo', route);
  const server = tls === undefined ? http.createServer() : https.createServer({ cert: tls.cert, key: tls.key });
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex) => {
    if (req.url?.startsWith('/old') === true) redirectUpgrade(socket, '/echo?moved=1');
  });
  app.attach(server);
  defer(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await app.close();
  });
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(socketPath, resolve); });
  return { socketPath, opened };
}

export interface TlsHandshake {
  /** The SNI the client sent (false when none). */
  readonly servername: string | false | null;
  readonly authorized: boolean;
  /** The client certificate's fingerprint, if one was presented. */
  readonly clientFingerprint: string | undefined;
}

export interface TlsServerOptions {
  /** The server's certificate and key. */
  readonly certificate: { cert: Buffer; key: Buffer };
  /** Ask for a client certificate and accept only one this CA (a self-signed certificate: itself) signed. */
  readonly requireClientCertificate?: Buffer;
  /** Answer every upgrade but /echo with a 302 there. */
  readonly redirectTo?: string;
}

/** An https server on 127.0.0.1 with our /echo route attached, recording each TLS handshake. */
export async function tlsServer(defer: Defer, options: TlsServerOptions): Promise<{ port: number; handshakes: TlsHandshake[] }> {
  const handshakes: TlsHandshake[] = [];
  const clientCa = options.requireClientCertificate;
  const server = https.createServer({
    cert: options.certificate.cert, key: options.certificate.key,
    ...(clientCa !== undefined && { requestCert: true, rejectUnauthorized: true, ca: clientCa }),
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    const peer = socket.getPeerCertificate();
    handshakes.push({ servername: socket.servername, authorized: socket.authorized, clientFingerprint: peer?.fingerprint256 });
  });
  server.on('tlsClientError', () => { /* a client without a certificate: the test looks at the client's side */ });
  if (options.redirectTo !== undefined) {
    const location = options.redirectTo;
    server.on('upgrade', (req: http.IncomingMessage, socket: Duplex) => {
      if (req.url !== '/echo') redirectUpgrade(socket, location);
    });
  }
  const app = createServer({ pingIntervalMs: 0, shutdownTimeoutMs: 200 }).websocket<undefined>('/echo', echo);
  app.attach(server);
  defer(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await app.close();
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  return { port: (server.address() as net.AddressInfo).port, handshakes };
}

/** A raw TCP server that hands each request head (once complete) to `answer`. */
export async function rawHttpServer(defer: Defer, answer: (head: string, socket: net.Socket) => void): Promise<{ port: number; sockets: net.Socket[] }> {
  const sockets: net.Socket[] = [];
  const server = net.createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => {});
    let received = '';
    socket.setEncoding('latin1').on('data', (chunk: string) => {
      const before = received.length;
      received += chunk;
      if (before < received.length && received.includes('\r\n\r\n') && !received.slice(0, before).includes('\r\n\r\n')) answer(received, socket);
    });
  });
  defer(() => new Promise<void>((resolve) => { for (const socket of sockets) socket.destroy(); server.close(() => resolve()); }));
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  return { port: (server.address() as net.AddressInfo).port, sockets };
}

export function socketClosed(socket: net.Socket): Promise<void> {
  return socket.destroyed ? Promise.resolve() : new Promise((resolve) => socket.once('close', () => resolve()));
}

export async function expectHandshakeError(promise: Promise<unknown>, code: string, status: number): Promise<HandshakeError> {
  let caught: unknown;
  try {
    await withTimeout(promise, TIMEOUT_MS * 2, 'connect() to settle');
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof HandshakeError, `expected a HandshakeError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.status, status);
  return caught;
}

/** Resolves with what `promise` rejected with; fails if it resolves. */
export async function rejection(promise: Promise<unknown>, what: string): Promise<Error> {
  try {
    await withTimeout(promise, TIMEOUT_MS * 2, what);
  } catch (error) {
    assert.ok(error instanceof Error, `${what}: rejected with a non-Error ${String(error)}`);
    return error;
  }
  assert.fail(`${what}: expected a rejection`);
}
