// The reverse proxy's rules without sockets: option checks, mapping a path under the prefix onto the backend's
// base, Location rewriting, which header fields pass, drop or are added, and how close codes cross the relay.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mapRequestTarget, resolveProxySettings, rewriteLocation } from '../../src/bridges/proxy-target.js';
import { backendHandshakeHeaders, backendRequestHeaders, clientResponseHeaders, connectionListed, type ClientHop } from '../../src/bridges/proxy-headers.js';
import { backendCloseFor, clientCloseFor } from '../../src/bridges/proxy-websocket.js';
import { proxyHttpHandler, proxyWebSocketRoute } from '../../src/bridges/proxy.js';

const settings = (target: string, prefix: string, extra: Record<string, unknown> = {}) => resolveProxySettings({ target, prefix, ...extra });

/** A flat [name, value, ...] list as a list of "name: value" lines, for readable assertions. */
function lines(flat: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < flat.length; i += 2) out.push(`${flat[i]}: ${flat[i + 1]}`);
  return out;
}

const hop: ClientHop = { remoteAddress: '::ffff:192.0.2.7', secure: false, host: 'public.example:8443', httpVersion: '1.1' };

describe('resolveProxySettings', () => {
  it('normalizes the target and the prefix', () => {
    const s = settings('http://127.0.0.1:9000/base/', '/legacy/');
    assert.equal(s.origin, 'http://127.0.0.1:9000');
    assert.equal(s.host, '127.0.0.1:9000');
    assert.equal(s.port, 9000);
    assert.equal(s.basePath, '/base');
    assert.equal(s.prefix, '/legacy');
    assert.equal(s.timeoutMs, 30_000);
    assert.equal(s.trustForwarded, false);
    const secure = settings('wss://[::1]/', '/');
    assert.equal(secure.secure, true);
    assert.equal(secure.origin, 'https://[::1]');
    assert.equal(secure.hostname, '::1');
    assert.equal(secure.port, 443);
    assert.equal(secure.basePath, '');
    assert.equal(secure.prefix, '');
  });

  it('refuses targets and prefixes it cannot honour, naming the option', () => {
    assert.throws(() => settings('ftp://x/', '/a'), /http:\/\/, https:\/\/, ws:\/\/ or wss:\/\//);
    assert.throws(() => settings('not a url', '/a'), /not a URL/);
    assert.throws(() => settings('http://u:p@x/', '/a'), /credentials/);
    assert.throws(() => settings('http://x/?q=1', '/a'), /query or fragment/);
    assert.throws(() => settings('http://x/', 'legacy'), /prefix/);
    assert.throws(() => settings('http://x/', '/a?b'), /prefix/);
    assert.throws(() => settings('http://x/', '/a', { timeoutMs: 0 }), RangeError);
    assert.throws(() => settings('http://x/', '/a', { webSocket: { maxMessageBytes: -1 } }), RangeError);
    assert.throws(() => proxyHttpHandler({ target: 'mailto:x@y', prefix: '/a' }), TypeError);
    assert.throws(() => proxyWebSocketRoute({ target: 'http://x/', prefix: 'a' }), TypeError);
  });
});

describe('mapRequestTarget', () => {
  const s = settings('http://backend:9000/base', '/legacy');

  it('strips the prefix, prepends the base and keeps the query byte for byte', () => {
    assert.deepEqual(mapRequestTarget('/legacy/a/b%20c?x=1&y=%2F', s), { kind: 'ok', path: '/base/a/b%20c?x=1&y=%2F' });
    assert.deepEqual(mapRequestTarget('/legacy', s), { kind: 'ok', path: '/base' });
    assert.deepEqual(mapRequestTarget('/legacy/', s), { kind: 'ok', path: '/base/' });
    assert.deepEqual(mapRequestTarget('/legacy?x', s), { kind: 'ok', path: '/base?x' });
  });

  it('maps onto a backend without a base, and mounts at the root with an empty prefix', () => {
    assert.deepEqual(mapRequestTarget('/legacy', settings('http://b/', '/legacy')), { kind: 'ok', path: '/' });
    assert.deepEqual(mapRequestTarget('/legacy/x?q', settings('http://b', '/legacy')), { kind: 'ok', path: '/x?q' });
    assert.deepEqual(mapRequestTarget('/any/path?q', settings('http://b/', '/')), { kind: 'ok', path: '/any/path?q' });
    assert.deepEqual(mapRequestTarget('/any', settings('http://b/app', '')), { kind: 'ok', path: '/app/any' });
  });

  it('refuses paths outside the prefix (segment boundary) and dot segments, encoded or not', () => {
    assert.deepEqual(mapRequestTarget('/legacyx/a', s), { kind: 'outside' });
    assert.deepEqual(mapRequestTarget('/other', s), { kind: 'outside' });
    for (const path of ['/legacy/..', '/legacy/../admin', '/legacy/a/./b', '/legacy/%2e%2E/admin', '/legacy/.%2e', '/legacy/..%2fadmin', '/legacy/..\\admin', '/legacy/a/..?x']) {
      assert.deepEqual(mapRequestTarget(path, s), { kind: 'dot-segment' }, path);
    }
    assert.deepEqual(mapRequestTarget('/legacy/...', s), { kind: 'ok', path: '/base/...' });
    assert.deepEqual(mapRequestTarget('/legacy/a..b/.hidden', s), { kind: 'ok', path: '/base/a..b/.hidden' });
  });
});

describe('rewriteLocation', () => {
  const s = settings('http://127.0.0.1:9000/base', '/legacy');

  it('moves a Location under the base, absolute URL or absolute path, under the prefix', () => {
    assert.equal(rewriteLocation('http://127.0.0.1:9000/base/login?next=%2Fx#top', s), '/legacy/login?next=%2Fx#top');
    assert.equal(rewriteLocation('HTTP://127.0.0.1:9000/base', s), '/legacy');
    assert.equal(rewriteLocation('/base/x', s), '/legacy/x');
    assert.equal(rewriteLocation('/base?x=1', s), '/legacy?x=1');
    assert.equal(rewriteLocation('/base', settings('http://b/base', '')), '/');
    assert.equal(rewriteLocation('/x', settings('http://b/', '/legacy')), '/legacy/x');
  });

  it('leaves alone what is not under the base: other paths, other origins, relative references', () => {
    assert.equal(rewriteLocation('/basement/x', s), '/basement/x');
    assert.equal(rewriteLocation('/other', s), '/other');
    assert.equal(rewriteLocation('http://127.0.0.1:9001/base/x', s), 'http://127.0.0.1:9001/base/x');
    assert.equal(rewriteLocation('https://127.0.0.1:9000/base/x', s), 'https://127.0.0.1:9000/base/x');
    assert.equal(rewriteLocation('https://example.com/base/x', s), 'https://example.com/base/x');
    assert.equal(rewriteLocation('//127.0.0.1:9000/base/x', s), '//127.0.0.1:9000/base/x');
    assert.equal(rewriteLocation('next', s), 'next');
    assert.equal(rewriteLocation('../up', s), '../up');
  });
});

describe('request and response header fields', () => {
  const s = settings('http://127.0.0.1:9000/base', '/legacy');

  it('reads the field names a Connection header lists', () => {
    assert.deepEqual([...connectionListed(['keep-alive, X-Drop', ' x-other ,'])], ['keep-alive', 'x-drop', 'x-other']);
    assert.deepEqual([...connectionListed(undefined)], []);
  });

  it('drops hop-by-hop fields and Expect, names the backend in Host, and adds X-Forwarded-* and Via', () => {
    const raw = [
      'Host', 'public.example:8443', 'Connection', 'keep-alive, X-Drop', 'X-Drop', '1', 'Keep-Alive', 'timeout=5',
      'TE', 'trailers', 'Trailer', 'X-T', 'Transfer-Encoding', 'chunked', 'Upgrade', 'h2c', 'Proxy-Authorization', 'Basic x',
      'Proxy-Connection', 'keep-alive', 'Proxy', 'http://evil', 'Expect', '100-continue', 'Cookie', 'a=1', 'Cookie', 'b=2',
      'X-Forwarded-For', '203.0.113.9', 'X-Forwarded-Proto', 'https', 'Forwarded', 'for=203.0.113.9', 'X-Keep', 'yes',
    ];
    const headers = { host: 'public.example:8443', connection: 'keep-alive, X-Drop', 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https', forwarded: 'for=203.0.113.9' };
    assert.deepEqual(lines(backendRequestHeaders(raw, headers, hop, s)), [
      'Host: 127.0.0.1:9000', 'Cookie: a=1', 'Cookie: b=2', 'X-Keep: yes',
      'X-Forwarded-For: 192.0.2.7', 'X-Forwarded-Proto: http', 'X-Forwarded-Host: public.example:8443', 'Via: 1.1 switchyard',
    ]);
  });

  it('with trustForwarded appends to X-Forwarded-For and Forwarded and keeps the first hop\'s proto and host', () => {
    const trusted = settings('http://127.0.0.1:9000/base', '/legacy', { trustForwarded: true, forwarded: true });
    const headers = { host: 'public.example:8443', 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'www.example', forwarded: 'for=203.0.113.9;proto=https', via: '1.1 edge' };
    const raw = Object.entries(headers).flat();
    assert.deepEqual(lines(backendRequestHeaders(raw, headers, hop, trusted)), [
      'Host: 127.0.0.1:9000',
      'X-Forwarded-For: 203.0.113.9, 192.0.2.7', 'X-Forwarded-Proto: https', 'X-Forwarded-Host: www.example',
      'Forwarded: for=203.0.113.9;proto=https, for=192.0.2.7;host="public.example:8443";proto=http', 'Via: 1.1 edge, 1.1 switchyard',
    ]);
    // Trusted without our own Forwarded: the client's goes on unchanged.
    const passThrough = settings('http://127.0.0.1:9000/', '/', { trustForwarded: true });
    assert.ok(lines(backendRequestHeaders(raw, headers, hop, passThrough)).includes('forwarded: for=203.0.113.9;proto=https'));
  });

  it('from a peer in the server\'s trustProxy keeps the incoming chain and appends the peer; from any other peer replaces it with the peer', () => {
    const s = settings('http://127.0.0.1:9000/base', '/legacy', { forwarded: true });
    const headers = { host: 'public.example:8443', 'x-forwarded-for': '198.51.100.4, 203.0.113.9', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'www.example', forwarded: 'for=203.0.113.9;proto=https' };
    const raw = Object.entries(headers).flat();
    const fromTrustedPeer = lines(backendRequestHeaders(raw, headers, { ...hop, remoteAddress: '127.0.0.1', peerTrusted: true }, s));
    assert.deepEqual(fromTrustedPeer.slice(1), [
      'X-Forwarded-For: 198.51.100.4, 203.0.113.9, 127.0.0.1', 'X-Forwarded-Proto: https', 'X-Forwarded-Host: www.example',
      'Forwarded: for=203.0.113.9;proto=https, for=127.0.0.1;host="public.example:8443";proto=http', 'Via: 1.1 switchyard',
    ]);
    const fromUntrustedPeer = lines(backendRequestHeaders(raw, headers, { ...hop, remoteAddress: '127.0.0.1', peerTrusted: false }, s));
    assert.deepEqual(fromUntrustedPeer.slice(1), [
      'X-Forwarded-For: 127.0.0.1', 'X-Forwarded-Proto: http', 'X-Forwarded-Host: public.example:8443',
      'Forwarded: for=127.0.0.1;host="public.example:8443";proto=http', 'Via: 1.1 switchyard',
    ], 'a chain the client wrote never reaches the backend');
    const handshake = backendHandshakeHeaders(headers, { ...hop, remoteAddress: '127.0.0.1', peerTrusted: true }, s);
    assert.equal(handshake['x-forwarded-for'], '198.51.100.4, 203.0.113.9, 127.0.0.1');
    assert.equal(backendHandshakeHeaders(headers, { ...hop, remoteAddress: '127.0.0.1', peerTrusted: false }, s)['x-forwarded-for'], '127.0.0.1');
  });

  it('writes Forwarded per RFC 7239: a quoted, bracketed IPv6 address and "unknown" without one', () => {
    const s6 = settings('http://b/', '/', { forwarded: true });
    const v6 = backendRequestHeaders([], {}, { remoteAddress: '2001:db8::1', secure: true, host: undefined, httpVersion: '1.0' }, s6);
    assert.deepEqual(lines(v6).slice(1), ['X-Forwarded-For: 2001:db8::1', 'X-Forwarded-Proto: https', 'Forwarded: for="[2001:db8::1]";proto=https', 'Via: 1.0 switchyard']);
    const none = backendRequestHeaders([], {}, { remoteAddress: '', secure: false, host: 'h', httpVersion: '1.1' }, s6);
    assert.ok(lines(none).includes('Forwarded: for=unknown;host=h;proto=http'));
  });

  it('drops hop-by-hop response fields, keeps repeated ones and rewrites Location', () => {
    const raw = [
      'Connection', 'X-Secret', 'X-Secret', 'internal', 'Keep-Alive', 'timeout=99', 'Transfer-Encoding', 'chunked',
      'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'Proxy-Authenticate', 'Basic', 'Location', 'http://127.0.0.1:9000/base/next', 'X-App', 'v',
    ];
    assert.deepEqual(lines(clientResponseHeaders(raw, { connection: 'X-Secret' }, s)), ['Set-Cookie: a=1', 'Set-Cookie: b=2', 'Location: /legacy/next', 'X-App: v']);
  });

  it('passes end-to-end fields to the backend WebSocket, never the handshake\'s own', () => {
    const headers = {
      host: 'public.example', upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-key': 'k', 'sec-websocket-version': '13',
      'sec-websocket-protocol': 'a, b', 'sec-websocket-extensions': 'permessage-deflate', origin: 'https://app.example',
      cookie: 'session=1; theme=dark', authorization: 'Bearer t', 'user-agent': 'test', 'x-forwarded-for': '203.0.113.9',
    };
    assert.deepEqual(backendHandshakeHeaders(headers, hop, s), {
      cookie: 'session=1; theme=dark', authorization: 'Bearer t', 'user-agent': 'test',
      'x-forwarded-for': '192.0.2.7', 'x-forwarded-proto': 'http', 'x-forwarded-host': 'public.example:8443', via: '1.1 switchyard',
    });
  });
});

describe('close codes across the relay', () => {
  it('gives the backend the client\'s code and reason, 1000 for "no status" and 1001 for a client that vanished', () => {
    assert.deepEqual(backendCloseFor(4001, 'x'), [4001, 'x']);
    assert.deepEqual(backendCloseFor(1000, ''), [1000, '']);
    assert.deepEqual(backendCloseFor(1008, 'policy'), [1008, 'policy']);
    assert.deepEqual(backendCloseFor(1005, ''), [1000, '']);
    assert.deepEqual(backendCloseFor(1006, ''), [1001, 'client went away']);
    assert.deepEqual(backendCloseFor(1015, ''), [1001, 'client went away']);
  });

  it('gives the client the backend\'s code and reason, and 1014 for a backend that vanished', () => {
    assert.deepEqual(clientCloseFor(4002, 'y'), [4002, 'y']);
    assert.deepEqual(clientCloseFor(1011, 'oops'), [1011, 'oops']);
    assert.deepEqual(clientCloseFor(1005, ''), [1000, '']);
    assert.deepEqual(clientCloseFor(1006, ''), [1014, 'backend connection lost']);
    assert.deepEqual(clientCloseFor(1015, ''), [1014, 'backend connection lost']);
  });
});
