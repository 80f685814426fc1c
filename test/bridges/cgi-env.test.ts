// buildCgiEnvironment: the RFC 3875 §4.1 meta-variables, HTTP_* per header with the exclusions that keep a
// client from setting variables a program trusts (httpoxy, underscore spoofing, credentials), and nothing of
// the server's own environment unless passEnv names it.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_CHILD_PATH, SWITCHYARD_VERSION, buildCgiEnvironment, checkEnvRecord, envNameFragment, type CgiRequestInfo } from '../../src/bridges/cgi-env.js';

function request(overrides: Partial<CgiRequestInfo> = {}): CgiRequestInfo {
  return {
    method: 'GET', url: '/app/run/extra?a=1&b=%20', scriptName: '/app/run', pathInfo: '/extra',
    headers: { host: 'example.com:8080', 'user-agent': 'test/1.0' },
    remoteAddress: '192.0.2.7', remotePort: 50000, localAddress: '10.0.0.1', localPort: 8080,
    serverName: '', secure: false, ...overrides,
  };
}

function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'src'))) dir = dirname(dir);
  return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
}

describe('buildCgiEnvironment', () => {
  it('sets the RFC 3875 meta-variables', () => {
    const env = buildCgiEnvironment(request(), { parentEnv: {} });
    assert.deepEqual(env, {
      PATH: DEFAULT_CHILD_PATH,
      GATEWAY_INTERFACE: 'CGI/1.1',
      SERVER_SOFTWARE: `switchyard/${SWITCHYARD_VERSION}`,
      SERVER_NAME: 'example.com',
      SERVER_PORT: '8080',
      SERVER_PROTOCOL: 'HTTP/1.1',
      REQUEST_METHOD: 'GET',
      REQUEST_URI: '/app/run/extra?a=1&b=%20',
      QUERY_STRING: 'a=1&b=%20',
      SCRIPT_NAME: '/app/run',
      PATH_INFO: '/extra',
      REMOTE_ADDR: '192.0.2.7',
      REMOTE_HOST: '192.0.2.7',
      REMOTE_PORT: '50000',
      HTTP_HOST: 'example.com:8080',
      HTTP_USER_AGENT: 'test/1.0',
    });
  });

  it('leaves REMOTE_PORT out when the port is unknown (an address forwarded by a trusted proxy)', () => {
    const env = buildCgiEnvironment(request({ remoteAddress: '203.0.113.7', remotePort: undefined }), { parentEnv: {} });
    assert.equal(env['REMOTE_ADDR'], '203.0.113.7');
    assert.equal('REMOTE_PORT' in env, false);
  });

  it('reports the package version in SERVER_SOFTWARE', () => {
    assert.equal(SWITCHYARD_VERSION, packageVersion());
  });

  it('never creates HTTP_PROXY from a Proxy header (httpoxy), nor HTTP_CONTENT_LENGTH/TYPE duplicates', () => {
    const env = buildCgiEnvironment(request({
      method: 'POST', contentLength: 12, contentType: 'text/plain',
      headers: { proxy: 'http://evil.example:3128', 'content-length': '12', 'content-type': 'text/plain', 'x-ok': '1' },
    }), { parentEnv: {} });
    assert.equal(env['HTTP_PROXY'], undefined);
    assert.equal(env['HTTP_CONTENT_LENGTH'], undefined);
    assert.equal(env['HTTP_CONTENT_TYPE'], undefined);
    assert.equal(env['CONTENT_LENGTH'], '12');
    assert.equal(env['CONTENT_TYPE'], 'text/plain');
    assert.equal(env['HTTP_X_OK'], '1');
  });

  it('joins repeated header values with ", " and upper-cases names with - as _', () => {
    const env = buildCgiEnvironment(request({ headers: { 'x-forwarded-for': ['1.1.1.1', '2.2.2.2'], 'Accept-Language': 'en' } }), { parentEnv: {} });
    assert.equal(env['HTTP_X_FORWARDED_FOR'], '1.1.1.1, 2.2.2.2');
    assert.equal(env['HTTP_ACCEPT_LANGUAGE'], 'en');
  });

  it('drops header names that would alias another header (underscores, dots), as Apache does', () => {
    const env = buildCgiEnvironment(request({ headers: { 'x_forwarded_for': 'spoofed', 'x.real.ip': 'spoofed' } }), { parentEnv: {} });
    assert.equal(env['HTTP_X_FORWARDED_FOR'], undefined);
    assert.equal(Object.values(env).includes('spoofed'), false);
  });

  it('keeps credentials out unless passAuthorization is set (RFC 3875 §4.1.18)', () => {
    const headers = { authorization: 'Bearer t', 'proxy-authorization': 'Basic x' };
    assert.equal(buildCgiEnvironment(request({ headers }), { parentEnv: {} })['HTTP_AUTHORIZATION'], undefined);
    const passed = buildCgiEnvironment(request({ headers }), { parentEnv: {}, passAuthorization: true });
    assert.equal(passed['HTTP_AUTHORIZATION'], 'Bearer t');
    assert.equal(passed['HTTP_PROXY_AUTHORIZATION'], 'Basic x');
  });

  it('takes nothing from the parent environment unless passEnv lists it; PATH may be passed through', () => {
    const parentEnv = { SECRET_TOKEN: 'sentinel-123', LANG: 'C.UTF-8', PATH: '/home/me/bin:/usr/bin', HTTP_PROXY: 'http://corp:3128' };
    const none = buildCgiEnvironment(request(), { parentEnv });
    assert.equal(Object.values(none).some((value) => value.includes('sentinel-123')), false);
    assert.equal(none['PATH'], DEFAULT_CHILD_PATH);
    assert.equal(none['HTTP_PROXY'], undefined);
    const passed = buildCgiEnvironment(request(), { parentEnv, passEnv: ['LANG', 'PATH', 'UNSET'] });
    assert.equal(passed['LANG'], 'C.UTF-8');
    assert.equal(passed['PATH'], '/home/me/bin:/usr/bin');
    assert.equal('UNSET' in passed, false);
    assert.equal(passed['SECRET_TOKEN'], undefined);
  });

  it('reads process.env by default, and only what passEnv names', () => {
    process.env['SWITCHYARD_CGI_SENTINEL'] = 'leak-me-not';
    try {
      assert.equal(buildCgiEnvironment(request())['SWITCHYARD_CGI_SENTINEL'], undefined);
      assert.equal(buildCgiEnvironment(request(), { passEnv: ['SWITCHYARD_CGI_SENTINEL'] })['SWITCHYARD_CGI_SENTINEL'], 'leak-me-not');
    } finally {
      delete process.env['SWITCHYARD_CGI_SENTINEL'];
    }
  });

  it('lets env override anything, and sets HTTPS=on for secure requests', () => {
    const env = buildCgiEnvironment(request({ secure: true }), { parentEnv: {}, env: { SERVER_NAME: 'configured', APP_MODE: 'x' }, serverSoftware: 'custom/1' });
    assert.equal(env['HTTPS'], 'on');
    assert.equal(env['SERVER_NAME'], 'configured');
    assert.equal(env['APP_MODE'], 'x');
    assert.equal(env['SERVER_SOFTWARE'], 'custom/1');
  });

  it('derives SERVER_NAME from Host (IPv6 kept in brackets), else from the local address', () => {
    const name = (headers: CgiRequestInfo['headers'], localAddress = '10.0.0.1'): string | undefined =>
      buildCgiEnvironment(request({ headers, localAddress }), { parentEnv: {} })['SERVER_NAME'];
    assert.equal(name({ host: '[::1]:8080' }), '[::1]');
    assert.equal(name({ host: 'Example.COM' }), 'Example.COM');
    assert.equal(name({}), '10.0.0.1');
    assert.equal(name({}, '::1'), '[::1]');
    assert.equal(name({ host: 'bad host/../' }), '10.0.0.1', 'an implausible Host is not trusted');
    assert.equal(buildCgiEnvironment(request({ serverName: 'given' }), { parentEnv: {} })['SERVER_NAME'], 'given');
  });

  it('writes IPv4-mapped peers as plain IPv4 and an empty QUERY_STRING when there is no query', () => {
    const env = buildCgiEnvironment(request({ remoteAddress: '::ffff:127.0.0.1', url: '/plain' }), { parentEnv: {} });
    assert.equal(env['REMOTE_ADDR'], '127.0.0.1');
    assert.equal(env['QUERY_STRING'], '');
  });

  it('turns NUL, CR and LF in values into spaces', () => {
    const env = buildCgiEnvironment(request({ pathInfo: '/a\0b\nc', headers: { 'x-a': 'one\rtwo' } }), { parentEnv: {} });
    assert.equal(env['PATH_INFO'], '/a b c');
    assert.equal(env['HTTP_X_A'], 'one two');
  });
});

describe('environment helpers', () => {
  it('envNameFragment upper-cases and replaces what a variable name cannot hold', () => {
    assert.equal(envNameFragment('room-id'), 'ROOM_ID');
    assert.equal(envNameFragment('user.name'), 'USER_NAME');
  });

  it('checkEnvRecord refuses bad names and values', () => {
    assert.throws(() => checkEnvRecord({ '1BAD': 'x' }, 'env'), TypeError);
    assert.throws(() => checkEnvRecord({ OK: 'a\0b' }, 'env'), TypeError);
    assert.throws(() => checkEnvRecord([], 'env'), TypeError);
    assert.deepEqual(checkEnvRecord({ OK: 'v' }, 'env'), { OK: 'v' });
  });
});
