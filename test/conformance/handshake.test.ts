// Conformance: the opening handshake over raw HTTP, RFC 6455 §4.1-§4.4, against the CLI echo route; every
// rejection is followed by proof that the server still accepts and echoes on a new connection.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type { RunningServer } from '../_support/cli-server.js';
import { useEchoServer } from './_echo-server.js';
import { Opcode, text } from '../_support/frames.js';
import {
  assertServerStillEchoes, connectWebSocket, openTracked, type HandshakeOptions, type RawClient,
} from '../_support/raw-client.js';

let server!: RunningServer;

useEchoServer((started) => { server = started; });

const guid = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const expectedAccept = (key: string): string => createHash('sha1').update(key + guid).digest('base64');

function headerTokens(client: RawClient, name: string): string[] {
  return (client.response.headers.get(name) ?? '').split(',').map((token) => token.trim().toLowerCase()).filter((token) => token !== '');
}

/** Sends a handshake that must be refused with one of `statuses`, checks that nothing was upgraded, then that the server still works. */
async function expectRejection(options: HandshakeOptions, statuses: readonly number[]): Promise<RawClient> {
  const client = await openTracked(server, options);
  const { statusCode, raw } = client.response;
  assert.ok(statuses.includes(statusCode), `expected ${statuses.join(' or ')}, got ${statusCode}:\n${raw}\nfor request:\n${client.request}`);
  assert.equal(client.response.headers.get('sec-websocket-accept'), undefined, 'a refused handshake must not carry Sec-WebSocket-Accept');
  if (statusCode === 426) {
    // RFC 9110 §15.5.22 (was RFC 7231 §6.5.15): "The server MUST send an Upgrade header field in a 426 response to
    // indicate the required protocol(s)".
    assert.ok(headerTokens(client, 'upgrade').includes('websocket'), `a 426 response MUST name the protocol in an Upgrade header:\n${raw}`);
  }
  client.destroy();
  await assertServerStillEchoes(server);
  return client;
}

describe('conformance: opening handshake accepted', () => {
  it('§1.3/§4.2.2: answers the RFC example key dGhlIHNhbXBsZSBub25jZQ== with s3pPLMBiTxaQ9kYGzzhZRbK+xOo=', async () => {
    // The value printed in RFC 6455 §1.3; the test also recomputes it so a typo here cannot hide a server bug.
    assert.equal(expectedAccept('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
    const client = await connectWebSocket(server, '/echo', { headers: { 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' } });
    assert.equal(client.response.headers.get('sec-websocket-accept'), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  });

  it('§4.2.2: sends 101 with Upgrade: websocket, Connection: Upgrade and the accept hash for a random key', async () => {
    const key = randomBytes(16).toString('base64');
    const client = await connectWebSocket(server, '/echo', { headers: { 'Sec-WebSocket-Key': key } });
    assert.equal(client.response.httpVersion, 'HTTP/1.1');
    assert.deepEqual(headerTokens(client, 'upgrade'), ['websocket']);
    assert.ok(headerTokens(client, 'connection').includes('upgrade'), `Connection: ${client.response.headers.get('connection')}`);
    assert.equal(client.response.headers.get('sec-websocket-accept'), expectedAccept(key));
    await client.send(text('works'));
    assert.equal((await client.nextMessage()).payload.toString('utf8'), 'works');
  });

  it('§4.2.2: selects no subprotocol when the route speaks none of those offered', async () => {
    const client = await connectWebSocket(server, '/echo', { headers: { 'Sec-WebSocket-Protocol': 'chat, superchat' } });
    // RFC 6455 §4.2.2: the server may only pick one of the offered values; "null" means no header at all.
    assert.equal(client.response.headers.get('sec-websocket-protocol'), undefined);
  });

  it('§9.1: negotiates no extension when deflate is not enabled (an offer is ignored, not refused)', async () => {
    const client = await connectWebSocket(server, '/echo', { headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' } });
    assert.equal(client.response.headers.get('sec-websocket-extensions'), undefined);
    await client.send(text('uncompressed'));
    const message = await client.nextMessage();
    assert.equal(message.opcode, Opcode.text);
    assert.equal(message.payload.toString('utf8'), 'uncompressed');
  });

  it('§4.2.1: accepts Connection: keep-alive, Upgrade', async () => {
    await connectWebSocket(server, '/echo', { headers: { Connection: 'keep-alive, Upgrade' } });
  });

  it('§4.2.1: accepts header values in any letter case (Upgrade: WebSocket, Connection: upgrade)', async () => {
    await connectWebSocket(server, '/echo', { headers: { Upgrade: 'WebSocket', Connection: 'upgrade' } });
  });

  it('§4.1: accepts extra request headers (Origin, User-Agent, Cookie) and a query string', async () => {
    await connectWebSocket(server, '/echo?x=1', { headers: { Origin: 'http://example.com', 'User-Agent': 'conformance', Cookie: 'a=b' } });
  });
});

describe('conformance: opening handshake refused', () => {
  it('§4.2.1: refuses POST with 400 or 405', async () => {
    await expectRejection({ method: 'POST', headers: { 'Content-Length': '0' } }, [400, 405]);
  });

  it('§4.2.1: refuses an HTTP/1.0 request with 400', async () => {
    // RFC 6455 §4.2.1: "An HTTP/1.1 or higher GET request".
    await expectRejection({ httpVersion: 'HTTP/1.0' }, [400]);
  });

  it('§4.2.1: refuses a request without an Upgrade header with 400 (or 426)', async () => {
    await expectRejection({ headers: { Upgrade: null } }, [400, 426]);
  });

  it('§4.2.1: refuses Upgrade: h2c with 400', async () => {
    await expectRejection({ headers: { Upgrade: 'h2c' } }, [400]);
  });

  it('§4.2.1: refuses a Connection header without the upgrade token with 400 (or 426)', async () => {
    await expectRejection({ headers: { Connection: 'keep-alive' } }, [400, 426]);
  });

  it('§4.2.1: refuses a request without Sec-WebSocket-Key with 400', async () => {
    await expectRejection({ headers: { 'Sec-WebSocket-Key': null } }, [400]);
  });

  const badKeys: ReadonlyArray<readonly [string, string]> = [
    ['a short string', 'abc'],
    ['base64 of 15 bytes', randomBytes(15).toString('base64')],
    ['base64 of 17 bytes', randomBytes(17).toString('base64')],
    ['24 characters that are not base64', '!!!!!!!!!!!!!!!!!!!!!!=='],
    ['an empty value', ''],
  ];
  for (const [name, key] of badKeys) {
    it(`§4.2.1: refuses a Sec-WebSocket-Key that is ${name} with 400`, async () => {
      // RFC 6455 §4.1: the key "MUST be a nonce consisting of a randomly selected 16-byte value that has been base64-encoded".
      await expectRejection({ headers: { 'Sec-WebSocket-Key': key } }, [400]);
    });
  }

  it('§4.2.2: refuses Sec-WebSocket-Version: 8 with 426 and Sec-WebSocket-Version: 13', async () => {
    // RFC 6455 §4.2.2 / §4.4: "send an appropriate HTTP error code (such as 426 Upgrade Required) and a
    // |Sec-WebSocket-Version| header field indicating the version(s) the server is capable of understanding".
    const client = await expectRejection({ headers: { 'Sec-WebSocket-Version': '8' } }, [426]);
    assert.ok(headerTokens(client, 'sec-websocket-version').includes('13'), `Sec-WebSocket-Version: ${client.response.headers.get('sec-websocket-version')}`);
  });

  it('§4.2.2: refuses Sec-WebSocket-Version: 14 with 426 and Sec-WebSocket-Version: 13', async () => {
    const client = await expectRejection({ headers: { 'Sec-WebSocket-Version': '14' } }, [426]);
    assert.ok(headerTokens(client, 'sec-websocket-version').includes('13'));
  });

  it('§4.2.1: refuses a request without Sec-WebSocket-Version with 400 or 426', async () => {
    await expectRejection({ headers: { 'Sec-WebSocket-Version': null } }, [400, 426]);
  });

  it('§4.2.1: refuses an upgrade to a path with no WebSocket route with 404, without upgrading', async () => {
    await expectRejection({ path: '/no-such-route' }, [404]);
  });

  it('§4.2.1: survives a garbage request line and still serves the next connection', async () => {
    const client = await openTracked(server, { rawRequest: 'HELLO THERE\r\n\r\n' });
    assert.ok(client.response.statusCode >= 400 && client.response.statusCode < 500, `got ${client.response.statusCode}`);
    client.destroy();
    await assertServerStillEchoes(server);
  });
});
