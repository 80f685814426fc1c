// The opening handshake (RFC 6455 §4) for both roles: the server's checks and answers, the client's request
// headers and its checks of the server's answer. Pure functions, no sockets.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { HandshakeError, SwitchyardError } from '../../src/errors.js';
import {
  acceptServerHandshake, computeAcceptKey, createClientHandshake, isValidClientKey, offeredProtocols, renderResponse,
  verifyServerResponse, type HandshakeRequest, type HandshakeResponse, type ServerHandshakeResult,
} from '../../src/protocol/handshake.js';
import { isToken, listElements, listHasToken, singleValue } from '../../src/protocol/header-tokens.js';

const RFC_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const RFC_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

function request(overrides: Partial<HandshakeRequest> & { set?: Record<string, string | string[] | undefined> } = {}): HandshakeRequest {
  const headers: Record<string, string | string[] | undefined> = {
    host: 'example.com',
    upgrade: 'websocket',
    connection: 'Upgrade',
    'sec-websocket-key': RFC_KEY,
    'sec-websocket-version': '13',
    ...overrides.set,
  };
  for (const name of Object.keys(headers)) if (headers[name] === undefined) delete headers[name];
  return { method: overrides.method ?? 'GET', httpVersion: overrides.httpVersion ?? '1.1', headers };
}

function header(response: HandshakeResponse, name: string): string | undefined {
  const found = response.headers.filter(([n]) => n.toLowerCase() === name.toLowerCase());
  assert.ok(found.length <= 1, `header ${name} appears at most once`);
  return found[0]?.[1];
}

function assertAccepted(result: ServerHandshakeResult, key = RFC_KEY): Extract<ServerHandshakeResult, { accepted: true }> {
  assert.equal(result.accepted, true, result.accepted ? '' : `rejected: ${result.error.message}`);
  if (!result.accepted) throw new Error('unreachable');
  assert.equal(result.response.status, 101);
  assert.equal(result.response.statusText, 'Switching Protocols');
  assert.equal(header(result.response, 'Upgrade')?.toLowerCase(), 'websocket');
  assert.ok(listHasToken(header(result.response, 'Connection'), 'upgrade'));
  assert.equal(header(result.response, 'Sec-WebSocket-Accept'), independentAccept(key));
  return result;
}

function assertRejected(result: ServerHandshakeResult, status: number, code: string): Extract<ServerHandshakeResult, { accepted: false }> {
  assert.equal(result.accepted, false, 'the handshake must be rejected');
  if (result.accepted) throw new Error('unreachable');
  assert.equal(result.response.status, status);
  assert.ok(result.error instanceof HandshakeError);
  assert.ok(result.error instanceof SwitchyardError);
  assert.equal(result.error.code, code);
  assert.equal(result.error.status, status);
  // A short reason a human can read, in the body and in the error.
  assert.ok(result.error.message.length > 0 && result.error.message.length < 120, `short reason: ${result.error.message}`);
  assert.equal(result.response.body.trim(), result.error.message);
  assert.equal(header(result.response, 'Content-Length'), String(Buffer.byteLength(result.response.body)));
  assert.equal(header(result.response, 'Sec-WebSocket-Accept'), undefined);
  return result;
}

/** RFC 6455 §4.2.2 step 5.4, written out independently. */
function independentAccept(key: string): string {
  return createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`, 'latin1').digest('base64');
}

describe('acceptServerHandshake', () => {
  it('accepts the RFC example key with Sec-WebSocket-Accept s3pPLMBiTxaQ9kYGzzhZRbK+xOo= (RFC 6455 §1.3, §4.2.2)', () => {
    const result = assertAccepted(acceptServerHandshake(request()));
    assert.equal(header(result.response, 'Sec-WebSocket-Accept'), RFC_ACCEPT);
    assert.equal(computeAcceptKey(RFC_KEY), RFC_ACCEPT);
    assert.equal(result.protocol, '');
    assert.equal(header(result.response, 'Sec-WebSocket-Protocol'), undefined);
    assert.equal(result.response.body, '');
  });

  it('computes the accept value for other keys as base64(SHA-1(key + GUID)) (RFC 6455 §4.2.2)', () => {
    for (let i = 0; i < 20; i++) {
      const key = Buffer.from(Array.from({ length: 16 }, (_, j) => (i * 37 + j * 11) & 0xff)).toString('base64');
      assertAccepted(acceptServerHandshake(request({ set: { 'sec-websocket-key': key } })), key);
    }
  });

  it('renders the 101 response as HTTP/1.1 with CRLF line ends and a blank line (RFC 6455 §4.2.2)', () => {
    const result = assertAccepted(acceptServerHandshake(request()));
    const text = renderResponse(result.response);
    assert.ok(text.startsWith('HTTP/1.1 101 Switching Protocols\r\n'));
    assert.ok(text.endsWith('\r\n\r\n'));
    assert.ok(text.includes(`\r\nSec-WebSocket-Accept: ${RFC_ACCEPT}\r\n`));
  });

  it('rejects a method other than GET with 400 (RFC 6455 §4.2.1 item 1)', () => {
    for (const method of ['POST', 'HEAD', 'PUT', 'get']) {
      assertRejected(acceptServerHandshake(request({ method })), 400, 'ERR_HANDSHAKE_METHOD');
    }
  });

  it('rejects HTTP versions other than 1.1 with 400 (RFC 6455 §4.2.1 item 1)', () => {
    for (const httpVersion of ['1.0', '0.9', '2.0']) {
      assertRejected(acceptServerHandshake(request({ httpVersion })), 400, 'ERR_HANDSHAKE_HTTP_VERSION');
    }
  });

  it('rejects a request without a Host header with 400 (RFC 6455 §4.2.1 item 2)', () => {
    assertRejected(acceptServerHandshake(request({ set: { host: undefined } })), 400, 'ERR_HANDSHAKE_HOST');
  });

  it('accepts Upgrade: websocket case-insensitively (RFC 6455 §4.2.1 item 3)', () => {
    for (const upgrade of ['websocket', 'WebSocket', 'WEBSOCKET', ' websocket ']) {
      assertAccepted(acceptServerHandshake(request({ set: { upgrade } })));
    }
  });

  it('rejects a missing or wrong Upgrade header with 400 (RFC 6455 §4.2.1 item 3)', () => {
    for (const upgrade of [undefined, '', 'h2c', 'websockets', 'web socket']) {
      assertRejected(acceptServerHandshake(request({ set: { upgrade } })), 400, 'ERR_HANDSHAKE_UPGRADE');
    }
  });

  it('accepts Connection with "Upgrade" as one token among others, case-insensitively (RFC 6455 §4.2.1 item 4)', () => {
    for (const connection of ['Upgrade', 'upgrade', 'UPGRADE', 'keep-alive, Upgrade', 'Upgrade, keep-alive', 'keep-alive,upgrade', ' keep-alive ,  Upgrade ']) {
      assertAccepted(acceptServerHandshake(request({ set: { connection } })));
    }
    assertAccepted(acceptServerHandshake(request({ set: { connection: ['keep-alive', 'Upgrade'] } })));
  });

  it('rejects a Connection header without the Upgrade token with 400 (RFC 6455 §4.2.1 item 4)', () => {
    for (const connection of [undefined, '', 'keep-alive', 'close', 'Upgraded', 'keep-alive Upgrade', 'x-upgrade']) {
      assertRejected(acceptServerHandshake(request({ set: { connection } })), 400, 'ERR_HANDSHAKE_CONNECTION');
    }
  });

  it('accepts a key that is the base64 of exactly 16 bytes (RFC 6455 §4.1 item 7, §4.2.1 item 5)', () => {
    for (const fill of [0x00, 0xff, 0x3f, 0xfb]) {
      const key = Buffer.alloc(16, fill).toString('base64');
      assert.equal(isValidClientKey(key), true, key);
      assertAccepted(acceptServerHandshake(request({ set: { 'sec-websocket-key': key } })), key);
    }
  });

  it('rejects a key of 15 or 17 bytes, non-base64, or missing with 400 (RFC 6455 §4.2.1 item 5)', () => {
    const keys = [
      Buffer.alloc(15, 1).toString('base64'),
      Buffer.alloc(17, 1).toString('base64'),
      Buffer.alloc(16, 1).toString('base64url'),
      Buffer.alloc(16, 1).toString('base64').replace(/=+$/, ''),
      'dGhlIHNhbXBsZSBub25jZQ=',
      'dGhlIHNhbXBsZSBub25jZQ===',
      'dGhlIHNhbXBsZSBub25jZR==', // non-zero padding bits: not the canonical encoding of 16 bytes
      'dGhlIHNhbXBsZSBub25j*Q==',
      'dGhlIHNhbXBs ZSBub25jZQ==',
      '!!!!!!!!!!!!!!!!!!!!!!==',
      '',
    ];
    for (const key of keys) {
      assert.equal(isValidClientKey(key), false, key);
      assertRejected(acceptServerHandshake(request({ set: { 'sec-websocket-key': key } })), 400, 'ERR_HANDSHAKE_KEY');
    }
    assertRejected(acceptServerHandshake(request({ set: { 'sec-websocket-key': undefined } })), 400, 'ERR_HANDSHAKE_KEY');
    // Two key header lines cannot be one key.
    assertRejected(acceptServerHandshake(request({ set: { 'sec-websocket-key': [RFC_KEY, RFC_KEY] } })), 400, 'ERR_HANDSHAKE_KEY');
  });

  it('rejects a missing Sec-WebSocket-Version with 400 (RFC 6455 §4.2.1 item 6)', () => {
    assertRejected(acceptServerHandshake(request({ set: { 'sec-websocket-version': undefined } })), 400, 'ERR_HANDSHAKE_VERSION');
  });

  it('answers any other version with 426 and Sec-WebSocket-Version: 13 (RFC 6455 §4.2.2, §4.4)', () => {
    for (const version of ['8', '7', '12', '14', '0', 'abc', '13, 8']) {
      const result = assertRejected(acceptServerHandshake(request({ set: { 'sec-websocket-version': version } })), 426, 'ERR_HANDSHAKE_VERSION');
      assert.equal(result.response.statusText, 'Upgrade Required');
      assert.equal(header(result.response, 'Sec-WebSocket-Version'), '13');
    }
  });

  it('puts no Sec-WebSocket-Version header on a 400 rejection (only 426 advertises versions)', () => {
    const result = assertRejected(acceptServerHandshake(request({ method: 'POST' })), 400, 'ERR_HANDSHAKE_METHOD');
    assert.equal(header(result.response, 'Sec-WebSocket-Version'), undefined);
    assert.equal(result.response.statusText, 'Bad Request');
  });

  it('selects only a subprotocol the client offered, in the route\'s order of preference (RFC 6455 §4.2.2 item 5.4)', () => {
    const cases: Array<[offered: string | string[] | undefined, route: string[], selected: string]> = [
      ['chat, superchat', ['superchat', 'chat'], 'superchat'],
      ['chat, superchat', ['chat', 'superchat'], 'chat'],
      ['superchat,chat', ['chat', 'superchat'], 'chat'],
      [['superchat', 'chat'], ['chat'], 'chat'],
      ['chat', ['superchat'], ''],
      ['chat', [], ''],
      ['Chat', ['chat'], ''], // subprotocol names are compared exactly
      [undefined, ['chat'], ''],
    ];
    for (const [offered, route, selected] of cases) {
      const result = assertAccepted(acceptServerHandshake(request({ set: { 'sec-websocket-protocol': offered } }), { protocols: route }));
      assert.equal(result.protocol, selected, `${JSON.stringify(offered)} vs ${JSON.stringify(route)}`);
      assert.equal(header(result.response, 'Sec-WebSocket-Protocol'), selected === '' ? undefined : selected);
    }
  });

  it('sends no Sec-WebSocket-Protocol header when the client offered none, even if the route has some (RFC 6455 §4.2.2)', () => {
    const result = assertAccepted(acceptServerHandshake(request(), { protocols: ['chat'] }));
    assert.equal(result.protocol, '');
    assert.equal(header(result.response, 'Sec-WebSocket-Protocol'), undefined);
  });

  it('rejects a malformed subprotocol list with 400 (RFC 6455 §4.1 item 10: elements are tokens)', () => {
    for (const offered of ['chat v2', 'chat;q=1', 'a@b', 'chat, "quoted"', 'caf\u00e9', 'a/b', 'x{y}']) {
      assert.equal(offeredProtocols({ 'sec-websocket-protocol': offered }), undefined, offered);
      assertRejected(acceptServerHandshake(request({ set: { 'sec-websocket-protocol': offered } }), { protocols: ['chat'] }), 400, 'ERR_HANDSHAKE_PROTOCOL');
    }
  });

  it('accepts no extension the client offers (none is negotiated here, RFC 6455 §9.1)', () => {
    const result = assertAccepted(acceptServerHandshake(request({ set: { 'sec-websocket-extensions': 'permessage-deflate; client_max_window_bits, x-foo' } })));
    assert.equal(header(result.response, 'Sec-WebSocket-Extensions'), undefined);
  });
});

describe('header tokens', () => {
  it('splits list headers into trimmed non-empty elements, across repeated lines (RFC 7230 §7)', () => {
    assert.deepEqual(listElements(undefined), []);
    assert.deepEqual(listElements(''), []);
    assert.deepEqual(listElements(' a ,b,, ,c '), ['a', 'b', 'c']);
    assert.deepEqual(listElements(['a, b', 'c']), ['a', 'b', 'c']);
  });

  it('finds a token in a list case-insensitively and only as a whole element (RFC 7230 §6.1)', () => {
    assert.equal(listHasToken('keep-alive, Upgrade', 'upgrade'), true);
    assert.equal(listHasToken('keep-alive, Upgraded', 'upgrade'), false);
    assert.equal(listHasToken(undefined, 'upgrade'), false);
  });

  it('reads a single-valued header, refusing repeats', () => {
    assert.equal(singleValue(' 13 '), '13');
    assert.equal(singleValue(['13']), '13');
    assert.equal(singleValue(['13', '13']), undefined);
    assert.equal(singleValue(undefined), undefined);
  });

  it('recognises RFC 7230 §3.2.6 tokens', () => {
    for (const token of ['chat', 'v1.chat', 'a-b_c', "!#$%&'*+-.^_`|~", 'X9']) assert.equal(isToken(token), true, token);
    for (const bad of ['', 'a b', 'a,b', 'a;b', '"a"', 'a/b', '(a)', 'a=b', 'caf\u00e9', 'a\tb']) assert.equal(isToken(bad), false, bad);
  });
});

describe('createClientHandshake', () => {
  it('builds the request headers of RFC 6455 §4.1 with version 13', () => {
    const handshake = createClientHandshake();
    assert.equal(handshake.headers['Upgrade'], 'websocket');
    assert.equal(handshake.headers['Connection'], 'Upgrade');
    assert.equal(handshake.headers['Sec-WebSocket-Version'], '13');
    assert.equal(handshake.headers['Sec-WebSocket-Key'], handshake.key);
    assert.equal(handshake.headers['Sec-WebSocket-Protocol'], undefined);
    assert.equal(handshake.headers['Sec-WebSocket-Extensions'], undefined);
    assert.equal(handshake.headers['Origin'], undefined);
  });

  it('uses a fresh random key each time, the base64 of 16 bytes (RFC 6455 §4.1 item 7)', () => {
    const keys = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const { key } = createClientHandshake();
      assert.equal(Buffer.from(key, 'base64').length, 16);
      assert.equal(Buffer.from(key, 'base64').toString('base64'), key);
      assert.equal(isValidClientKey(key), true);
      keys.add(key);
    }
    assert.equal(keys.size, 200, 'every key is different');
  });

  it('offers subprotocols as one comma-separated header, and sets extensions and origin when asked (RFC 6455 §4.1)', () => {
    const handshake = createClientHandshake({ protocols: ['chat', 'superchat'], extensions: 'permessage-deflate', origin: 'http://example.com' });
    assert.equal(handshake.headers['Sec-WebSocket-Protocol'], 'chat, superchat');
    assert.equal(handshake.headers['Sec-WebSocket-Extensions'], 'permessage-deflate');
    assert.equal(handshake.headers['Origin'], 'http://example.com');
  });

  it('throws TypeError for a subprotocol that is not a token, or a repeated one (RFC 6455 §4.1 item 10)', () => {
    assert.throws(() => createClientHandshake({ protocols: ['a b'] }), TypeError);
    assert.throws(() => createClientHandshake({ protocols: [''] }), TypeError);
    assert.throws(() => createClientHandshake({ protocols: ['chat', 'chat'] }), TypeError);
  });

  it('produces a request our own server accepts, end to end', () => {
    const handshake = createClientHandshake({ protocols: ['chat'] });
    // Host is added by the HTTP client, as node's http.request does.
    const headers: Record<string, string> = { host: 'example.com' };
    for (const [name, value] of Object.entries(handshake.headers)) headers[name.toLowerCase()] = value;
    const result = acceptServerHandshake({ method: 'GET', httpVersion: '1.1', headers }, { protocols: ['chat'] });
    assert.equal(result.accepted, true);
    if (!result.accepted) return;
    const responseHeaders: Record<string, string> = {};
    for (const [name, value] of result.response.headers) responseHeaders[name.toLowerCase()] = value;
    assert.deepEqual(verifyServerResponse({ status: 101, headers: responseHeaders }, handshake, { protocols: ['chat'] }), { protocol: 'chat', extensions: [] });
  });
});

describe('verifyServerResponse', () => {
  const handshake = { key: RFC_KEY, headers: {} };
  const good = (extra: Record<string, string | string[] | undefined> = {}): { status: number; headers: Record<string, string | string[]> } => {
    const headers: Record<string, string | string[] | undefined> = {
      upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-accept': RFC_ACCEPT, ...extra,
    };
    for (const name of Object.keys(headers)) if (headers[name] === undefined) delete headers[name];
    return { status: 101, headers: headers as Record<string, string | string[]> };
  };
  const rejects = (response: { status: number; headers: Record<string, string | string[]> }, code: string, offered = {}): void => {
    assert.throws(() => verifyServerResponse(response, handshake, offered), (error: unknown) => {
      assert.ok(error instanceof HandshakeError);
      assert.equal(error.code, code);
      assert.equal(error.status, response.status);
      return true;
    });
  };

  it('accepts a correct 101 answer (RFC 6455 §4.1, the client\'s checks)', () => {
    assert.deepEqual(verifyServerResponse(good(), handshake), { protocol: '', extensions: [] });
    assert.deepEqual(verifyServerResponse(good({ upgrade: 'WebSocket', connection: 'upgrade' }), handshake), { protocol: '', extensions: [] });
  });

  it('accepts the one subprotocol it offered, and an offered extension', () => {
    assert.deepEqual(verifyServerResponse(good({ 'sec-websocket-protocol': 'chat' }), handshake, { protocols: ['superchat', 'chat'] }), { protocol: 'chat', extensions: [] });
    assert.deepEqual(
      verifyServerResponse(good({ 'sec-websocket-extensions': 'permessage-deflate; server_no_context_takeover' }), handshake, { extensions: ['permessage-deflate'] }),
      { protocol: '', extensions: ['permessage-deflate; server_no_context_takeover'] },
    );
  });

  it('rejects a status other than 101 (RFC 6455 §4.1: "If the status code received from the server is not 101")', () => {
    for (const status of [200, 400, 426, 500, 0]) rejects({ ...good(), status }, 'ERR_HANDSHAKE_STATUS');
  });

  it('rejects a wrong or missing Sec-WebSocket-Accept (RFC 6455 §4.1 client check 4)', () => {
    rejects(good({ 'sec-websocket-accept': 'AAAAAAAAAAAAAAAAAAAAAAAAAAA=' }), 'ERR_HANDSHAKE_ACCEPT');
    rejects(good({ 'sec-websocket-accept': RFC_ACCEPT.toLowerCase() }), 'ERR_HANDSHAKE_ACCEPT');
    rejects(good({ 'sec-websocket-accept': independentAccept('AAAAAAAAAAAAAAAAAAAAAA==') }), 'ERR_HANDSHAKE_ACCEPT');
    rejects(good({ 'sec-websocket-accept': undefined }), 'ERR_HANDSHAKE_ACCEPT');
    rejects(good({ 'sec-websocket-accept': [RFC_ACCEPT, RFC_ACCEPT] }), 'ERR_HANDSHAKE_ACCEPT');
  });

  it('rejects a missing or wrong Upgrade header (RFC 6455 §4.1 client check 2)', () => {
    rejects(good({ upgrade: undefined }), 'ERR_HANDSHAKE_UPGRADE');
    rejects(good({ upgrade: 'h2c' }), 'ERR_HANDSHAKE_UPGRADE');
  });

  it('rejects a missing or wrong Connection header (RFC 6455 §4.1 client check 3)', () => {
    rejects(good({ connection: undefined }), 'ERR_HANDSHAKE_CONNECTION');
    rejects(good({ connection: 'keep-alive' }), 'ERR_HANDSHAKE_CONNECTION');
  });

  it('rejects a subprotocol it did not offer (RFC 6455 §4.1 client check 6)', () => {
    rejects(good({ 'sec-websocket-protocol': 'chat' }), 'ERR_HANDSHAKE_PROTOCOL');
    rejects(good({ 'sec-websocket-protocol': 'chat' }), 'ERR_HANDSHAKE_PROTOCOL', { protocols: ['superchat'] });
    rejects(good({ 'sec-websocket-protocol': 'Chat' }), 'ERR_HANDSHAKE_PROTOCOL', { protocols: ['chat'] });
  });

  it('rejects more than one selected subprotocol (RFC 6455 §4.2.2: the server selects one)', () => {
    rejects(good({ 'sec-websocket-protocol': 'chat, superchat' }), 'ERR_HANDSHAKE_PROTOCOL', { protocols: ['chat', 'superchat'] });
    rejects(good({ 'sec-websocket-protocol': ['chat', 'superchat'] }), 'ERR_HANDSHAKE_PROTOCOL', { protocols: ['chat', 'superchat'] });
  });

  it('rejects an extension it did not offer (RFC 6455 §4.1 client check 5)', () => {
    rejects(good({ 'sec-websocket-extensions': 'permessage-deflate' }), 'ERR_HANDSHAKE_EXTENSION');
    rejects(good({ 'sec-websocket-extensions': 'permessage-deflate, x-webkit-deflate-frame' }), 'ERR_HANDSHAKE_EXTENSION', { extensions: ['permessage-deflate'] });
  });
});
