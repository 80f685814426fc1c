// Tests for cgiHandler (src/bridges/cgi.ts) over a real server on 127.0.0.1:0 with scripts in a temp cgi-bin:
// the meta-variables and command line a script sees, request bodies (Content-Length streamed, chunked
// buffered, 413 beyond the limit), the three response kinds, passed-through and dropped fields, HEAD, the 502s
// (with the script's stderr tail in the log), and classic CGI scripts working as they would under Apache.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { cgiHandler } from '../../src/bridges/cgi.js';
import { createServer } from '../../src/server/server.js';
import { childPids, hasPython, header, makeCgiBin, parseResponse, rawExchange, request, startCgiServer, waitFor } from './cgi-fixtures/harness.js';
import * as scripts from './cgi-fixtures/scripts.js';

/** `NAME=value` lines of envDump's output as a map (ARG lines collected in order). */
function dumpOf(body: Buffer): { vars: Map<string, string>; args: string[] } {
  const vars = new Map<string, string>();
  const args: string[] = [];
  for (const line of body.toString('utf8').split('\n')) {
    const eq = line.indexOf('=');
    if (eq === -1) continue;
    const [name, value] = [line.slice(0, eq), line.slice(eq + 1)];
    if (name === 'ARG') args.push(value);
    else vars.set(name, value);
  }
  return { vars, args };
}

describe('cgiHandler options', () => {
  it('throws TypeError/RangeError for bad options, at mount time', () => {
    assert.throws(() => cgiHandler({ directory: '' }), TypeError);
    assert.throws(() => cgiHandler({ directory: '/tmp', timeoutMs: 0 }), RangeError);
    assert.throws(() => cgiHandler({ directory: '/tmp', timeoutMs: 1.5 }), TypeError);
    assert.throws(() => cgiHandler({ directory: '/tmp', maxHeaderBytes: 0 }), RangeError);
    assert.throws(() => cgiHandler({ directory: '/tmp', maxBodyBytes: -1 }), RangeError);
    assert.throws(() => cgiHandler({ directory: '/tmp', passEnv: ['NOT-A-NAME'] }), TypeError);
    assert.throws(() => cgiHandler({ directory: '/tmp', env: { GOOD: 'a\0b' } }), TypeError);
  });
});

describe('cgiHandler: what the script sees (RFC 3875 §4)', () => {
  it('sets the meta-variables: SCRIPT_NAME, PATH_INFO, QUERY_STRING, HTTP_*, and runs in the script\'s directory', async (t) => {
    const directory = await makeCgiBin(t, { 'env.cgi': scripts.envDump });
    const server = await startCgiServer(t, directory);
    const response = await request(server.port, 'GET', '/cgi-bin/env.cgi/extra/p%20ath?x=1&y=%41', { headers: { 'X-Custom': 'hello', Proxy: 'http://evil.example:3128' } });
    assert.equal(response.status, 200);
    assert.equal(header(response, 'content-type'), 'text/plain');
    const { vars } = dumpOf(response.body);
    assert.equal(vars.get('GATEWAY_INTERFACE'), 'CGI/1.1');
    assert.equal(vars.get('REQUEST_METHOD'), 'GET');
    assert.equal(vars.get('SCRIPT_NAME'), '/cgi-bin/env.cgi');
    assert.equal(vars.get('PATH_INFO'), '/extra/p ath', 'PATH_INFO is decoded (§4.1.5)');
    assert.equal(vars.get('QUERY_STRING'), 'x=1&y=%41', 'QUERY_STRING is not decoded (§4.1.7)');
    assert.equal(vars.get('CONTENT_LENGTH'), '<unset>', 'no body, no CONTENT_LENGTH (§4.1.2)');
    assert.equal(vars.get('REMOTE_ADDR'), '127.0.0.1');
    assert.equal(vars.get('SERVER_PORT'), String(server.port));
    assert.equal(vars.get('HTTP_X_CUSTOM'), 'hello');
    assert.equal(vars.get('HTTP_PROXY'), '<unset>', 'httpoxy: a Proxy header never becomes HTTP_PROXY');
    assert.equal(vars.get('PWD'), await fsp.realpath(directory), 'the working directory is the script\'s (§7.2)');
    assert.equal(vars.get('ARGC'), '0');
  });

  it('passes an indexed query as the command line (§4.4), but none when a word starts with "-" (CVE-2012-1823)', async (t) => {
    const directory = await makeCgiBin(t, { 'env.cgi': scripts.envDump });
    const server = await startCgiServer(t, directory);
    const words = dumpOf((await request(server.port, 'GET', '/cgi-bin/env.cgi?foo+bar%20baz+%C3%A9')).body);
    assert.equal(words.vars.get('ARGC'), '3');
    assert.deepEqual(words.args, ['foo', 'bar baz', 'é']);
    for (const query of ['-s', 'a+-d+b', 'x=1', 'a+%zz', 'a++b', `${'w+'.repeat(64)}w`]) {
      const { vars } = dumpOf((await request(server.port, 'GET', `/cgi-bin/env.cgi?${query}`)).body);
      assert.equal(vars.get('ARGC'), '0', query);
      assert.equal(vars.get('QUERY_STRING'), query);
    }
    const post = dumpOf((await request(server.port, 'POST', '/cgi-bin/env.cgi?foo', { body: '' })).body);
    assert.equal(post.vars.get('ARGC'), '0', 'only GET and HEAD are indexed queries');
  });

  it('hands the body to stdin with CONTENT_LENGTH and CONTENT_TYPE (Content-Length, streamed)', async (t) => {
    const directory = await makeCgiBin(t, { 'form.cgi': scripts.classicForm });
    const server = await startCgiServer(t, directory);
    const response = await request(server.port, 'POST', '/cgi-bin/form.cgi', {
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'name=Ada+Lovelace&lang=en',
    });
    assert.equal(response.status, 200);
    assert.equal(response.body.toString(), 'type=application/x-www-form-urlencoded\nlength=25\nname=Ada+Lovelace\nlang=en\n');
  });

  it('streams a large Content-Length body to stdin intact, then EOF', { skip: !hasPython && 'needs /usr/bin/python3' }, async (t) => {
    const directory = await makeCgiBin(t, { 'echo.cgi': scripts.pythonEcho });
    const server = await startCgiServer(t, directory);
    const body = randomBytes(3 * 1024 * 1024 + 17);
    const response = await request(server.port, 'POST', '/cgi-bin/echo.cgi', { body });
    assert.equal(response.status, 200);
    assert.equal(header(response, 'x-length'), String(body.length));
    assert.equal(header(response, 'x-sha256'), createHash('sha256').update(body).digest('hex'));
    assert.equal(header(response, 'x-extra'), '0');
  });

  it('reads a chunked body whole and gives the script its length as CONTENT_LENGTH', { skip: !hasPython && 'needs /usr/bin/python3' }, async (t) => {
    const directory = await makeCgiBin(t, { 'echo.cgi': scripts.pythonEcho });
    const server = await startCgiServer(t, directory);
    const pieces = [randomBytes(1000), randomBytes(70_000), randomBytes(5)];
    const chunked = Buffer.concat([...pieces.flatMap((piece) => [Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]), Buffer.from('0\r\n\r\n')]);
    const response = await request(server.port, 'POST', '/cgi-bin/echo.cgi', { headers: { 'Transfer-Encoding': 'chunked' }, body: chunked });
    const whole = Buffer.concat(pieces);
    assert.equal(response.status, 200);
    assert.equal(header(response, 'x-length'), String(whole.length));
    assert.equal(header(response, 'x-sha256'), createHash('sha256').update(whole).digest('hex'));
  });

  it('answers 413 without running the script for a body over maxBodyBytes, declared or chunked', async (t) => {
    const directory = await makeCgiBin(t, { 'form.cgi': scripts.classicForm });
    const server = await startCgiServer(t, directory, { maxBodyBytes: 1000 });
    const declared = parseResponse(await rawExchange(server.port,
      `POST /cgi-bin/form.cgi HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n${'a'.repeat(2000)}`));
    assert.equal(declared.status, 413);
    assert.equal(header(declared, 'connection'), 'close');
    const chunk = 'a'.repeat(600);
    const chunked = parseResponse(await rawExchange(server.port,
      `POST /cgi-bin/form.cgi HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n${chunk}\r\n258\r\n${chunk}\r\n`));
    assert.equal(chunked.status, 413);
    const atLimit = await request(server.port, 'POST', '/cgi-bin/form.cgi', { body: 'a'.repeat(1000) });
    assert.equal(atLimit.status, 200, 'exactly maxBodyBytes is allowed');
    assert.deepEqual(server.logs, []);
  });
});

describe('cgiHandler behind a reverse proxy (the server\'s trustProxy)', () => {
  /** Prints what a script knows of its client. */
  const clientDump = `#!/bin/sh
printf 'Content-Type: text/plain\\n\\n'
printf 'REMOTE_ADDR=%s\\nREMOTE_HOST=%s\\nREMOTE_PORT=%s\\nHTTPS=%s\\n' "$REMOTE_ADDR" "$REMOTE_HOST" "\${REMOTE_PORT-<unset>}" "\${HTTPS-<unset>}"
`;

  async function ask(t: Parameters<typeof makeCgiBin>[0], trustProxy: string[], headers: Record<string, string>): Promise<Map<string, string>> {
    const directory = await makeCgiBin(t, { 'client.cgi': clientDump });
    const app = createServer({ trustProxy, shutdownTimeoutMs: 500 }).all('/cgi-bin/*', cgiHandler({ directory }));
    const { port } = await app.listen({ port: 0, host: '127.0.0.1' });
    t.after(() => app.close());
    const response = await request(port, 'GET', '/cgi-bin/client.cgi', { headers });
    assert.equal(response.status, 200, response.body.toString());
    return dumpOf(response.body).vars;
  }

  it('from a trusted proxy: REMOTE_ADDR is the forwarded client, REMOTE_PORT is left out, HTTPS=on from X-Forwarded-Proto', async (t) => {
    const vars = await ask(t, ['loopback'], { 'X-Forwarded-For': '198.51.100.4, 203.0.113.7', 'X-Forwarded-Proto': 'https' });
    assert.equal(vars.get('REMOTE_ADDR'), '203.0.113.7');
    assert.equal(vars.get('REMOTE_HOST'), '203.0.113.7');
    assert.equal(vars.get('REMOTE_PORT'), '<unset>', 'the proxy\'s port says nothing about the client');
    assert.equal(vars.get('HTTPS'), 'on');
  });

  it('from an untrusted peer: the peer and its port, whatever the headers claim (as without trustProxy)', async (t) => {
    for (const trustProxy of [[], ['10.0.0.0/8']]) {
      const vars = await ask(t, trustProxy, { 'X-Forwarded-For': '203.0.113.7', 'X-Forwarded-Proto': 'https' });
      assert.equal(vars.get('REMOTE_ADDR'), '127.0.0.1', JSON.stringify(trustProxy));
      assert.match(vars.get('REMOTE_PORT') ?? '', /^\d+$/, JSON.stringify(trustProxy));
      assert.equal(vars.get('HTTPS'), '<unset>', JSON.stringify(trustProxy));
    }
  });
});

describe('cgiHandler: the script\'s response (RFC 3875 §6)', () => {
  it('sends Status with its reason, passes fields through (repeated ones too) and drops connection-specific ones', async (t) => {
    const directory = await makeCgiBin(t, { 'teapot.cgi': scripts.withStatus });
    const server = await startCgiServer(t, directory);
    const response = await request(server.port, 'GET', '/cgi-bin/teapot.cgi');
    assert.equal(response.status, 418);
    assert.equal(response.statusText, "I'm a teapot");
    assert.deepEqual(response.headers.get('set-cookie'), ['a=1', 'b=2']);
    assert.equal(header(response, 'x-custom'), 'kept');
    assert.equal(header(response, 'connection'), 'close', 'the server\'s own Connection, not the script\'s');
    assert.equal(header(response, 'transfer-encoding'), 'chunked', 'the server frames the body');
    assert.equal(response.body.toString(), 'short and stout\n');
    assert.ok(response.complete);
  });

  it('HEAD: the same head, no body', async (t) => {
    const directory = await makeCgiBin(t, { 'teapot.cgi': scripts.withStatus, 'env.cgi': scripts.envDump });
    const server = await startCgiServer(t, directory);
    const raw = await rawExchange(server.port, 'HEAD /cgi-bin/teapot.cgi HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const response = parseResponse(raw, true);
    assert.equal(response.status, 418);
    assert.equal(header(response, 'x-custom'), 'kept');
    assert.ok(raw.toString('latin1').endsWith('\r\n\r\n'), 'nothing after the head');
    const env = parseResponse(await rawExchange(server.port, 'HEAD /cgi-bin/env.cgi HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), true);
    assert.equal(env.status, 200);
    assert.ok(!env.rawHead.includes('REQUEST_METHOD'));
  });

  it('a CR inside a header value never reaches the client: 502, no injected field', async (t) => {
    const directory = await makeCgiBin(t, { 'evil.cgi': scripts.crInjection });
    const server = await startCgiServer(t, directory);
    const response = await request(server.port, 'GET', '/cgi-bin/evil.cgi');
    assert.equal(response.status, 502);
    assert.doesNotMatch(response.rawHead, /injected/i);
    await waitFor('the log line', () => server.logs.some((line) => /CR inside a header line/.test(line)));
  });

  it('an absolute Location alone answers 302 (§6.2.3); with Status and a document, that status and the document (§6.2.4)', async (t) => {
    const directory = await makeCgiBin(t, { 'away.cgi': scripts.clientRedirect, 'moved.cgi': scripts.clientRedirectWithDocument });
    const server = await startCgiServer(t, directory);
    const away = await request(server.port, 'GET', '/cgi-bin/away.cgi');
    assert.equal(away.status, 302);
    assert.equal(header(away, 'location'), 'https://example.com/elsewhere?x=1');
    const moved = await request(server.port, 'GET', '/cgi-bin/moved.cgi');
    assert.equal(moved.status, 301);
    assert.equal(header(moved, 'location'), 'https://example.com/moved');
    assert.equal(header(moved, 'content-type'), 'text/html');
    assert.match(moved.body.toString(), /moved<\/a>/);
  });

  it('a local Location under the mount is fetched by the server (§6.2.2): as GET, with the new path and query', async (t) => {
    const directory = await makeCgiBin(t, { 'go.cgi': scripts.localRedirect, 'env.cgi': scripts.envDump });
    const server = await startCgiServer(t, directory);
    const response = await request(server.port, 'POST', '/cgi-bin/go.cgi?orig=1', { headers: { 'Content-Type': 'text/plain' }, body: 'the body stays behind' });
    assert.equal(response.status, 200);
    assert.equal(header(response, 'location'), undefined);
    const { vars } = dumpOf(response.body);
    assert.equal(vars.get('SCRIPT_NAME'), '/cgi-bin/env.cgi');
    assert.equal(vars.get('PATH_INFO'), '/from-redirect');
    assert.equal(vars.get('QUERY_STRING'), 'redirected=1');
    assert.equal(vars.get('REQUEST_METHOD'), 'GET');
    assert.equal(vars.get('CONTENT_LENGTH'), '<unset>');
  });

  it('a local Location outside the mount answers 302 to it (a handler cannot dispatch to other routes)', async (t) => {
    const directory = await makeCgiBin(t, { 'out.cgi': scripts.localRedirectOutside });
    const server = await startCgiServer(t, directory);
    const response = await request(server.port, 'GET', '/cgi-bin/out.cgi');
    assert.equal(response.status, 302);
    assert.equal(header(response, 'location'), '/static/page.html');
  });

  it('a local redirect loop ends with 502 after 10 hops', async (t) => {
    const directory = await makeCgiBin(t, { 'loop.cgi': scripts.redirectLoop });
    const server = await startCgiServer(t, directory);
    const response = await request(server.port, 'GET', '/cgi-bin/loop.cgi');
    assert.equal(response.status, 502);
    assert.ok(server.logs.some((line) => /more than 10 local redirects/.test(line)), server.logs.join('\n'));
    await waitFor('every run to be reaped', () => childPids().length === 0);
  });

  it('holds the body to the script\'s own Content-Length: extra bytes dropped, a short body cuts the connection', async (t) => {
    const directory = await makeCgiBin(t, { 'long.cgi': scripts.contentLengthTooShort, 'short.cgi': scripts.contentLengthTooLong });
    const server = await startCgiServer(t, directory);
    // Keep-alive: a second request on the same connection proves the extra bytes did not leak into it.
    const raw = await rawExchange(server.port,
      'GET /cgi-bin/long.cgi HTTP/1.1\r\nHost: x\r\n\r\nGET /cgi-bin/long.cgi HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const text = raw.toString('latin1');
    assert.equal(text.match(/HTTP\/1\.1 200 OK\r\n/g)?.length, 2, text);
    assert.equal(text.match(/\r\n\r\nhello(?=HTTP|$)/g)?.length, 2, text);
    const short = await rawExchange(server.port, 'GET /cgi-bin/short.cgi HTTP/1.1\r\nHost: x\r\n\r\n');
    const shortText = short.toString('latin1');
    assert.match(shortText, /^HTTP\/1\.1 200 OK\r\n/);
    assert.ok(shortText.endsWith('only this\n'), 'the connection was closed after the short body');
    await waitFor('the log lines', () => server.logs.some((line) => /short of its Content-Length/.test(line)) && server.logs.some((line) => /longer than its Content-Length/.test(line)));
  });
});

describe('cgiHandler: broken scripts answer 502 and log their stderr', () => {
  const cases: ReadonlyArray<readonly [string, string, RegExp]> = [
    ['exits non-zero before any output', scripts.failsSilently, /no output \(exit status 3\); stderr: starting up \| fatal: database unreachable/],
    ['prints a line that is not a header', scripts.notAHeader, /malformed response headers: header line without a colon: "Hello world".*stderr: oops: something went wrong/],
    ['sends none of Content-Type, Location or Status', scripts.noCgiField, /none of Content-Type, Location or Status/],
    ['cannot be started (missing interpreter)', '#!/nonexistent/interpreter\n', /could not start/],
  ];
  for (const [what, text, logLine] of cases) {
    it(`a script that ${what}`, async (t) => {
      const directory = await makeCgiBin(t, { 'broken.cgi': text });
      const server = await startCgiServer(t, directory);
      const response = await request(server.port, 'GET', '/cgi-bin/broken.cgi');
      assert.equal(response.status, 502);
      assert.equal(response.body.toString(), '502 Bad Gateway\n');
      await waitFor(`a log line matching ${logLine}`, () => server.logs.some((line) => logLine.test(line)));
      assert.ok(server.logs.every((line) => line.startsWith('cgi /cgi-bin/broken.cgi: ')), server.logs.join('\n'));
    });
  }

  it('a script that prints more than maxHeaderBytes of headers: 502, and it is stopped', async (t) => {
    const directory = await makeCgiBin(t, { 'endless.cgi': scripts.endlessHeaders });
    const server = await startCgiServer(t, directory, { maxHeaderBytes: 4096 });
    const response = await request(server.port, 'GET', '/cgi-bin/endless.cgi');
    assert.equal(response.status, 502);
    await waitFor('the log line', () => server.logs.some((line) => /more than 4096 bytes of headers \(killed by SIGTERM\)/.test(line)));
    await waitFor('no child left', () => childPids().length === 0);
  });

  it('passes stderr to the log line by line, prefixed with the script, on a good run too', async (t) => {
    const directory = await makeCgiBin(t, { 'noisy.cgi': scripts.stderrLines });
    const server = await startCgiServer(t, directory);
    const response = await request(server.port, 'GET', '/cgi-bin/noisy.cgi');
    assert.equal(response.status, 200);
    await waitFor('both stderr lines', () => server.logs.length >= 2);
    assert.deepEqual(server.logs, ['cgi /cgi-bin/noisy.cgi: first problem', 'cgi /cgi-bin/noisy.cgi: second problem']);
  });
});

describe('cgiHandler: a CGI-only server\'s cgi-bin moved unchanged', () => {
  it('a classic shell CGI (echo "Content-type: text/html"; echo; ... $QUERY_STRING) answers as under a classic server', async (t) => {
    const directory = await makeCgiBin(t, { 'hello.sh': scripts.classicQuery });
    const server = await startCgiServer(t, directory);
    const response = await fetch(`http://127.0.0.1:${server.port}/cgi-bin/hello.sh?name=World+Wide&x=1`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'text/html');
    const html = await response.text();
    assert.match(html, /<h1>Hello, World Wide<\/h1>/);
    assert.match(html, /<p>You asked for: name=World\+Wide&x=1<\/p>/);
  });

  it('a POST form handler reading CONTENT_LENGTH bytes of stdin (shell and python), from a browser-style form post', async (t) => {
    const directory = await makeCgiBin(t, { 'form.cgi': scripts.classicForm, ...(hasPython && { 'form.py': scripts.pythonForm }) });
    const server = await startCgiServer(t, directory);
    const form = new URLSearchParams({ name: 'Grace Hopper', lang: 'COBOL', note: 'a&b=c' });
    const shell = await fetch(`http://127.0.0.1:${server.port}/cgi-bin/form.cgi`, { method: 'POST', body: form });
    assert.equal(shell.status, 200);
    assert.equal(await shell.text(), `type=application/x-www-form-urlencoded;charset=UTF-8\nlength=${form.toString().length}\nname=Grace+Hopper\nlang=COBOL\nnote=a%26b%3Dc\n`);
    const get = await fetch(`http://127.0.0.1:${server.port}/cgi-bin/form.cgi`);
    assert.equal(get.status, 405);
    assert.equal(await get.text(), 'POST only\n');
    if (hasPython) {
      const python = await fetch(`http://127.0.0.1:${server.port}/cgi-bin/form.py`, { method: 'POST', body: form });
      assert.equal(python.status, 200);
      assert.equal(python.headers.get('content-type'), 'text/plain; charset=utf-8');
      assert.equal(await python.text(), 'lang=COBOL\nname=Grace Hopper\nnote=a&b=c\n');
    }
  });
});
