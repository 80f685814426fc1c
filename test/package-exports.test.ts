// The package's entry points as a user imports them (package.json "exports", resolved by name through node's
// self-reference): each one loads from dist and offers what the docs say it does.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

describe('package exports', () => {
  it('"switchyard" offers the server, both clients and the bridges', async () => {
    const main = await import('switchyard') as Record<string, unknown>;
    for (const name of ['createServer', 'connect', 'connectReconnecting', 'SendError']) {
      assert.equal(typeof main[name], 'function', `switchyard exports ${name}`);
    }
  });

  it('"switchyard/client" offers connect, the reconnecting client and the errors they reject with, without the server', async () => {
    const client = await import('switchyard/client') as Record<string, unknown>;
    for (const name of ['connect', 'connectReconnecting', 'ReconnectingClient', 'SendError', 'HandshakeError', 'SwitchyardError', 'backoffDelayMs']) {
      assert.equal(typeof client[name], 'function', `switchyard/client exports ${name}`);
    }
    assert.equal(client.createServer, undefined, 'the client entry must not pull in the server');
  });

  it('"switchyard/protocol" offers the sans-I/O connection', async () => {
    const protocol = await import('switchyard/protocol') as Record<string, unknown>;
    assert.equal(typeof protocol.Connection, 'function');
  });
});
