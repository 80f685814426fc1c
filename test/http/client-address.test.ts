// src/http/client-address.ts: which peers are trusted (addresses, CIDR ranges, "loopback", IPv4-mapped IPv6 as
// IPv4), and who the client of a request is: the peer, or, from a trusted peer, the X-Forwarded-For entry found
// walking from the right past trusted hops, never a garbage string; plus X-Forwarded-Proto from a trusted peer.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  TrustedProxies, forwardedClientAddress, forwardedProtocol, resolveRequestClient, trustProxyEntryError,
} from '../../src/http/client-address.js';

describe('TrustedProxies', () => {
  it('trusts nobody by default', () => {
    const nobody = new TrustedProxies();
    assert.equal(nobody.isEmpty, true);
    for (const address of ['127.0.0.1', '::1', '10.0.0.1', '']) assert.equal(nobody.has(address), false, address);
  });

  it('"loopback" is 127.0.0.0/8 and ::1, and the IPv4-mapped form of 127.x counts as IPv4', () => {
    const loopback = new TrustedProxies(['loopback']);
    for (const address of ['127.0.0.1', '127.255.0.9', '::1', '::ffff:127.0.0.1', '::FFFF:127.1.2.3']) assert.equal(loopback.has(address), true, address);
    for (const address of ['128.0.0.1', '::2', '::ffff:10.0.0.1', '0:0:0:0:0:0:0:2', '203.0.113.7']) assert.equal(loopback.has(address), false, address);
  });

  it('matches single IPv4 and IPv6 addresses exactly', () => {
    const trusted = new TrustedProxies(['192.0.2.10', '2001:db8::5']);
    assert.equal(trusted.has('192.0.2.10'), true);
    assert.equal(trusted.has('::ffff:192.0.2.10'), true);
    assert.equal(trusted.has('192.0.2.11'), false);
    assert.equal(trusted.has('2001:db8::5'), true);
    assert.equal(trusted.has('2001:0db8:0:0:0:0:0:5'), true, 'the same IPv6 address written out');
    assert.equal(trusted.has('2001:db8::6'), false);
  });

  it('matches CIDR ranges of both families, including a mapped IPv4 range written as IPv6', () => {
    const trusted = new TrustedProxies(['10.0.0.0/8', 'fd00::/8', '192.168.1.0/24', '::ffff:172.16.0.0/108']);
    for (const address of ['10.0.0.1', '10.255.255.255', 'fd12:3456::1', '192.168.1.77', '::ffff:10.1.2.3', '172.16.5.5', '172.31.255.1']) {
      assert.equal(trusted.has(address), true, address);
    }
    for (const address of ['11.0.0.1', 'fe80::1', '192.168.2.1', '172.32.0.1', '127.0.0.1']) assert.equal(trusted.has(address), false, address);
  });

  it('says a non-address is not trusted instead of throwing', () => {
    const everyone = new TrustedProxies(['0.0.0.0/0', '::/0']);
    for (const address of ['', 'unknown', 'example.com', '1.2.3.4:80', '[::1]', '1.2.3']) assert.equal(everyone.has(address), false, address);
  });

  it('refuses a bad entry with a TypeError that names it', () => {
    for (const [entry, message] of [
      ['10.0.0.0/33', /"10\.0\.0\.0\/33".*from 0 to 32/],
      ['fd00::/129', /"fd00::\/129".*from 0 to 128/],
      ['10.0.0.0/', /"10\.0\.0\.0\/".*prefix length/],
      ['10.0.0.0/8/8', /"10\.0\.0\.0\/8\/8"/],
      ['proxy.example', /"proxy\.example" is not an IP address, a CIDR range .* or "loopback"/],
      ['localhost', /"localhost" is not/],
      ['Loopback', /"Loopback" is not/],
      ['256.0.0.1', /"256\.0\.0\.1" is not/],
      ['fe80::1%eth0', /"fe80::1%eth0" is not/],
      ['', /empty entry/],
    ] as const) {
      assert.throws(() => new TrustedProxies(['loopback', entry]), { name: 'TypeError', message }, entry);
      assert.match(trustProxyEntryError(entry) ?? '', message, entry);
    }
    assert.throws(() => new TrustedProxies([7 as unknown as string]), { name: 'TypeError', message: /got 7/ });
    assert.throws(() => new TrustedProxies('loopback' as unknown as string[]), { name: 'TypeError', message: /array/ });
    for (const good of ['loopback', ' 10.0.0.0/8 ', '::1', '::/0', '::ffff:127.0.0.1', '203.0.113.7/32']) assert.equal(trustProxyEntryError(good), undefined, good);
  });
});

describe('forwardedClientAddress: walking X-Forwarded-For from the right', () => {
  const loopback = new TrustedProxies(['loopback']);
  const proxies = new TrustedProxies(['loopback', '10.0.0.0/8', 'fd00::/8']);

  it('ignores the header entirely when the peer is not trusted', () => {
    assert.equal(forwardedClientAddress('203.0.113.9', '198.51.100.1', loopback), undefined);
    assert.equal(forwardedClientAddress('10.0.0.1', '198.51.100.1', loopback), undefined);
    assert.equal(forwardedClientAddress('127.0.0.1', '198.51.100.1', new TrustedProxies()), undefined);
  });

  it('takes the entry the trusted peer appended (IPv4 and IPv6)', () => {
    assert.equal(forwardedClientAddress('127.0.0.1', '198.51.100.1', loopback), '198.51.100.1');
    assert.equal(forwardedClientAddress('::1', '2001:db8::77', loopback), '2001:db8::77');
    assert.equal(forwardedClientAddress('::ffff:127.0.0.1', '198.51.100.1', loopback), '198.51.100.1', 'a mapped loopback peer is trusted');
  });

  it('skips trusted hops and stops at the first untrusted entry: spoofed entries left of it are never used', () => {
    assert.equal(forwardedClientAddress('127.0.0.1', '6.6.6.6, 198.51.100.1, 10.0.0.3', proxies), '198.51.100.1');
    assert.equal(forwardedClientAddress('10.0.0.2', '1.1.1.1, 2.2.2.2, fd00::9, 10.1.1.1', proxies), '2.2.2.2');
    assert.equal(forwardedClientAddress('127.0.0.1', '203.0.113.7, 127.0.0.1', loopback), '203.0.113.7',
      'what nginx sends when a client on the proxy\'s machine adds its own header');
  });

  it('reads every header line, in order, as one comma-separated list', () => {
    assert.equal(forwardedClientAddress('127.0.0.1', ['6.6.6.6', '198.51.100.1, 10.0.0.3'], proxies), '198.51.100.1');
    assert.equal(forwardedClientAddress('127.0.0.1', ['198.51.100.1', '10.0.0.3', '10.0.0.4'], proxies), '198.51.100.1');
    assert.equal(forwardedClientAddress('127.0.0.1', ['192.0.2.1, 198.51.100.2', '10.0.0.3'], proxies), '198.51.100.2');
  });

  it('takes the leftmost entry when every entry is trusted', () => {
    assert.equal(forwardedClientAddress('127.0.0.1', '10.9.9.9, 10.0.0.3, 127.0.0.1', proxies), '10.9.9.9');
  });

  it('stops at an entry that is not an IP address and keeps the last good one, never the garbage', () => {
    assert.equal(forwardedClientAddress('127.0.0.1', 'unknown', loopback), undefined, 'nothing good: the peer stays the client');
    assert.equal(forwardedClientAddress('127.0.0.1', '198.51.100.1, <script>', loopback), undefined);
    assert.equal(forwardedClientAddress('127.0.0.1', 'garbage, 10.0.0.3', proxies), '10.0.0.3', 'the walk ended on a trusted entry: that one');
    assert.equal(forwardedClientAddress('127.0.0.1', '198.51.100.1, 198.51.100.2:4711, 10.0.0.3', proxies), '10.0.0.3', 'an address with a port is not an address');
    assert.equal(forwardedClientAddress('127.0.0.1', '198.51.100.1,, 10.0.0.3', proxies), '10.0.0.3', 'an empty entry ends the walk');
    assert.equal(forwardedClientAddress('127.0.0.1', 'evil.example, 198.51.100.1', proxies), '198.51.100.1', 'garbage left of the client is never reached');
    assert.equal(forwardedClientAddress('127.0.0.1', '', loopback), undefined);
    assert.equal(forwardedClientAddress('127.0.0.1', undefined, loopback), undefined);
  });
});

describe('forwardedProtocol', () => {
  const loopback = new TrustedProxies(['loopback']);

  it('takes the rightmost X-Forwarded-Proto value from a trusted peer, only http or https', () => {
    assert.equal(forwardedProtocol('127.0.0.1', 'https', loopback), 'https');
    assert.equal(forwardedProtocol('127.0.0.1', 'HTTPS', loopback), 'https');
    assert.equal(forwardedProtocol('127.0.0.1', 'http, https', loopback), 'https');
    assert.equal(forwardedProtocol('127.0.0.1', ['https', 'http'], loopback), 'http');
    assert.equal(forwardedProtocol('127.0.0.1', 'https, gopher', loopback), undefined);
    assert.equal(forwardedProtocol('127.0.0.1', 'wss', loopback), undefined);
    assert.equal(forwardedProtocol('127.0.0.1', undefined, loopback), undefined);
  });

  it('ignores the header from an untrusted peer', () => {
    assert.equal(forwardedProtocol('203.0.113.9', 'https', loopback), undefined);
  });
});

describe('resolveRequestClient', () => {
  const loopback = new TrustedProxies(['loopback']);

  it('without trust is the peer, with its port and this connection\'s scheme, whatever the headers say', () => {
    const headers = { 'x-forwarded-for': '198.51.100.1', 'x-forwarded-proto': 'https' };
    assert.deepEqual(resolveRequestClient({ remoteAddress: '127.0.0.1', remotePort: 5000 }, headers), {
      address: '127.0.0.1', peerAddress: '127.0.0.1', port: 5000, forwarded: false, peerTrusted: false, protocol: 'http', protocolForwarded: false,
    });
    assert.deepEqual(resolveRequestClient({ remoteAddress: '::ffff:203.0.113.9', remotePort: 6000, encrypted: true }, headers, loopback), {
      address: '::ffff:203.0.113.9', peerAddress: '::ffff:203.0.113.9', port: 6000, forwarded: false, peerTrusted: false, protocol: 'https', protocolForwarded: false,
    });
  });

  it('behind a trusted proxy is the forwarded client, without the proxy\'s port, with the proxy\'s scheme', () => {
    const client = resolveRequestClient({ remoteAddress: '127.0.0.1', remotePort: 5000 },
      { 'x-forwarded-for': '6.6.6.6, 198.51.100.1', 'x-forwarded-proto': 'https' }, loopback);
    assert.deepEqual(client, {
      address: '198.51.100.1', peerAddress: '127.0.0.1', port: undefined, forwarded: true, peerTrusted: true, protocol: 'https', protocolForwarded: true,
    });
  });

  it('behind a trusted proxy that sent no usable header is the peer, with its port', () => {
    const client = resolveRequestClient({ remoteAddress: '127.0.0.1', remotePort: 5000, encrypted: true }, { 'x-forwarded-for': 'unknown', 'x-forwarded-proto': 'ftp' }, loopback);
    assert.deepEqual(client, {
      address: '127.0.0.1', peerAddress: '127.0.0.1', port: 5000, forwarded: false, peerTrusted: true, protocol: 'https', protocolForwarded: false,
    });
  });

  it('with no peer address at all (a socket already gone) is empty and untrusted', () => {
    const client = resolveRequestClient({}, { 'x-forwarded-for': '198.51.100.1' }, new TrustedProxies(['0.0.0.0/0']));
    assert.equal(client.address, '');
    assert.equal(client.peerTrusted, false);
  });
});
