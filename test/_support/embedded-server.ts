// An application server embedded in a test: listened on 127.0.0.1 port 0 and raw WebSocket clients opened to it,
// each registered with the test's cleanup stack (cleanup.ts) so nothing outlives the test, even when it fails.
import assert from 'node:assert/strict';
import type { Switchyard } from '../../src/server/server.js';
import { openRawClient, type HandshakeOptions, type RawClient } from './raw-client.js';

export const LOOPBACK_HOST = '127.0.0.1';

/** What cleanupStack(t) returns: registers a cleanup for the end of the test. */
export type Defer = (cleanup: () => unknown) => void;

/** Listens on loopback, port 0; closed when the test ends. Resolves with the port. */
export async function listen(defer: Defer, app: Switchyard): Promise<number> {
  defer(() => app.close());
  return (await app.listen({ port: 0, host: LOOPBACK_HOST })).port;
}

/** A raw client that sent the handshake (whatever the answer was); destroyed when the test ends. */
export async function rawWebSocket(defer: Defer, port: number, urlPath: string, options: HandshakeOptions = {}): Promise<RawClient> {
  const client = await openRawClient(port, LOOPBACK_HOST, { ...options, path: urlPath });
  defer(() => client.destroy());
  return client;
}

/** rawWebSocket() that must have been upgraded (101). */
export async function upgradedWebSocket(defer: Defer, port: number, urlPath: string, options: HandshakeOptions = {}): Promise<RawClient> {
  const client = await rawWebSocket(defer, port, urlPath, options);
  assert.equal(client.response.statusCode, 101, client.response.raw);
  return client;
}
