// parseClientUrl() and resolveLocation(): the URL forms connect() takes and where a redirect's Location leads,
// without sockets.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseClientUrl, resolveLocation } from '../../src/client/client-url.js';

describe('parseClientUrl', () => {
  it('reads ws:// and wss:// with default ports, IPv6 brackets removed, and path plus query as the request target', () => {
    const plain = parseClientUrl('ws://Example.com/chat?room=1');
    assert.deepEqual([plain.secure, plain.hostname, plain.port, plain.path, plain.socketPath, plain.authority], [false, 'example.com', 80, '/chat?room=1', undefined, 'example.com:80']);
    const secure = parseClientUrl('wss://[::1]:8443');
    assert.deepEqual([secure.secure, secure.hostname, secure.port, secure.path, secure.href], [true, '::1', 8443, '/', 'wss://[::1]:8443/']);
  });

  it('maps http:// to ws:// and https:// to wss://, keeping an explicit port', () => {
    assert.equal(parseClientUrl('http://h:8080/x').href, 'ws://h:8080/x');
    const secure = parseClientUrl('https://h/x');
    assert.deepEqual([secure.href, secure.secure, secure.port], ['wss://h/x', true, 443]);
  });

  it('reads ws+unix:///SOCKET:/PATH?QUERY as a socket path (percent-decoded) and a request target', () => {
    const target = parseClientUrl('ws+unix:///run/my%20app.sock:/events?since=5');
    assert.deepEqual([target.socketPath, target.path, target.hostname, target.secure, target.authority], ['/run/my app.sock', '/events?since=5', 'localhost', false, 'unix:/run/my app.sock']);
    assert.equal(parseClientUrl('ws+unix:///run/app.sock').path, '/', 'no colon: the request path is /');
    assert.equal(parseClientUrl('wss+unix:///run/app.sock:/x').secure, true);
  });

  it('sends a ws:// URL over the socketPath option, the URL host still naming the server', () => {
    const target = parseClientUrl('ws://daemon.local/x', '/run/d.sock');
    assert.deepEqual([target.socketPath, target.hostname, target.path, target.authority], ['/run/d.sock', 'daemon.local', '/x', 'unix:/run/d.sock']);
  });

  it('decodes credentials from the URL', () => {
    const target = parseClientUrl('ws://us%40er:p%3Ass@h/');
    assert.deepEqual([target.username, target.password], ['us@er', 'p:ss']);
  });

  it('throws TypeError for other schemes, fragments, relative URLs and malformed ws+unix URLs', () => {
    for (const url of ['ftp://h/', 'ws://h/#x', 'ws://h/#', '/relative', 'ws+unix://host/a.sock:/', 'ws+unix:///a.sock:relative', 'ws+unix:///:/path', 'ws+unix://u:p@/a.sock:/']) {
      assert.throws(() => parseClientUrl(url), TypeError, url);
    }
  });
});

describe('resolveLocation', () => {
  const current = parseClientUrl('wss://a.example:8443/old/path?q=1');

  it('resolves relative, absolute-path and scheme-relative Locations against the current URL', () => {
    assert.equal(resolveLocation('new', current).href, 'wss://a.example:8443/old/new');
    assert.equal(resolveLocation('/top?x=2', current).href, 'wss://a.example:8443/top?x=2');
    assert.equal(resolveLocation('//b.example/p', current).href, 'wss://b.example/p');
  });

  it('maps http(s) Locations to ws(s) and drops a Location\'s fragment', () => {
    assert.equal(resolveLocation('https://b.example/p#frag', current).href, 'wss://b.example/p');
    assert.equal(resolveLocation('http://b.example/p', current).href, 'ws://b.example/p');
  });

  it('keeps a ws+unix connection on its socket for a relative Location, and leaves it for an absolute one', () => {
    const unix = parseClientUrl('ws+unix:///run/app.sock:/v1/events?a=1');
    const moved = resolveLocation('/v2/events?b=2', unix);
    assert.deepEqual([moved.socketPath, moved.path, moved.href], ['/run/app.sock', '/v2/events?b=2', 'ws+unix:///run/app.sock:/v2/events?b=2']);
    assert.equal(resolveLocation('stream', unix).path, '/v1/stream');
    const away = resolveLocation('ws://remote.example/x', unix);
    assert.deepEqual([away.socketPath, away.href], [undefined, 'ws://remote.example/x']);
  });

  it('keeps the socketPath option for Locations on the same host and port, not for another host', () => {
    const viaSocket = parseClientUrl('ws://daemon.local/a', '/run/d.sock');
    assert.equal(resolveLocation('/b', viaSocket).socketPath, '/run/d.sock');
    assert.equal(resolveLocation('http://daemon.local:80/c', viaSocket).socketPath, '/run/d.sock');
    assert.equal(resolveLocation('ws://daemon.local:81/c', viaSocket).socketPath, undefined);
    assert.equal(resolveLocation('ws://elsewhere/c', viaSocket).socketPath, undefined);
  });

  it('throws TypeError for a Location of a scheme connect() does not take', () => {
    assert.throws(() => resolveLocation('ftp://h/x', current), TypeError);
    assert.throws(() => resolveLocation('mailto:someone@example.com', current), TypeError);
  });
});
