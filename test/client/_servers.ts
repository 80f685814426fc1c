// Servers and waits the connect() tests share: our own server on 127.0.0.1 port 0, a raw `net` server that
// answers the handshake however a test wants, and an assertion on HandshakeError's code and status.
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { createServer, type Switchyard, type WebSocketRoute } from '../../src/server/server.js';
import { HandshakeError } from '../../src/errors.js';
import { withTimeout } from '../_support/cleanup.js';

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

/** A port nothing listens on (it was free a moment ago). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
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
