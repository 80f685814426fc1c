// Tests for StaticFiles over a real node:http server and a temp directory. Requests are written raw over
// node:net because fetch and http.request normalise `..` and percent-encoded dots before they are sent.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { StaticFiles, type StaticFilesOptions } from '../../src/http/static-files.js';

interface RawResponse {
  status: number;
  headers: Map<string, string>;
  body: Buffer;
}

const secretText = 'TOP SECRET, outside the root';

/** Sends `head` (request line and headers, already ending in a blank line) and reads until the server closes. */
function rawExchange(port: number, head: string | Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks)));
    socket.write(head); // not end(): a half-closed client may be dropped before the async answer is written
  });
}

function parseResponse(raw: Buffer): RawResponse {
  const headEnd = raw.indexOf('\r\n\r\n');
  assert.notEqual(headEnd, -1, `no complete response head in ${JSON.stringify(raw.toString('latin1'))}`);
  const [statusLine = '', ...headerLines] = raw.subarray(0, headEnd).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1]);
  const headers = new Map<string, string>();
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { status, headers, body: raw.subarray(headEnd + 4) };
}

/** One request with `Connection: close`; the target is sent byte for byte, unnormalised. */
async function request(port: number, target: string, method = 'GET'): Promise<RawResponse> {
  const head = `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`;
  return parseResponse(await rawExchange(port, head));
}

describe('StaticFiles', { timeout: 30_000 }, () => {
  let baseDir = '';
  let rootDir = '';
  let server: http.Server | undefined;
  let port = 0;
  const rejections: unknown[] = [];
  const bigFile = randomBytes(3 * 1024 * 1024 + 123); // many read-stream chunks, not a multiple of any

  before(async () => {
    baseDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'switchyard-static-'));
    rootDir = path.join(baseDir, 'root');
    const outsideDir = path.join(baseDir, 'outside');
    // Shares the root's name as a prefix: proves the containment check compares whole path segments.
    const siblingDir = path.join(baseDir, 'root-private');
    await fsp.mkdir(path.join(rootDir, 'sub'), { recursive: true });
    await fsp.mkdir(path.join(rootDir, 'no-index'));
    await fsp.mkdir(path.join(rootDir, '.hidden'));
    await fsp.mkdir(outsideDir);
    await fsp.mkdir(siblingDir);

    await fsp.writeFile(path.join(rootDir, 'index.html'), '<h1>root</h1>');
    await fsp.writeFile(path.join(rootDir, 'hello.txt'), 'hello world\n');
    await fsp.writeFile(path.join(rootDir, 'STYLE.CSS'), 'body{}');
    await fsp.writeFile(path.join(rootDir, 'blob.unknownext'), 'x');
    await fsp.writeFile(path.join(rootDir, 'empty.txt'), '');
    await fsp.writeFile(path.join(rootDir, 'a b.txt'), 'space');
    await fsp.writeFile(path.join(rootDir, 'big.bin'), bigFile);
    await fsp.writeFile(path.join(rootDir, 'sub', 'index.html'), '<h1>sub</h1>');
    await fsp.writeFile(path.join(rootDir, '.secret'), secretText);
    await fsp.writeFile(path.join(rootDir, '.hidden', 'file.txt'), secretText);
    await fsp.writeFile(path.join(outsideDir, 'secret.txt'), secretText);
    await fsp.writeFile(path.join(siblingDir, 'secret.txt'), secretText);

    await fsp.symlink(path.join(outsideDir, 'secret.txt'), path.join(rootDir, 'link-out.txt'));
    await fsp.symlink(outsideDir, path.join(rootDir, 'link-out-dir'));
    await fsp.symlink(path.join(siblingDir, 'secret.txt'), path.join(rootDir, 'link-sibling.txt'));
    await fsp.symlink('hello.txt', path.join(rootDir, 'link-in.txt'));
    await fsp.symlink('.secret', path.join(rootDir, 'link-to-dotfile.txt'));
    // A dot name in the URL is refused even when its real path has none.
    await fsp.symlink('sub', path.join(rootDir, '.alias'));

    const files = new StaticFiles({ root: rootDir });
    server = http.createServer((req, res) => {
      files.handle(req, res).catch((error: unknown) => rejections.push(error));
    });
    // Longer than any test, so a response left short of its Content-Length shows as a hang, not a timeout close.
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  after(async () => {
    if (server !== undefined) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server?.close(() => resolve()));
    }
    if (baseDir !== '') await fsp.rm(baseDir, { recursive: true, force: true });
  });

  it('serves a file with its Content-Type, Content-Length and nosniff', async () => {
    const res = await request(port, '/hello.txt');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/plain; charset=utf-8');
    assert.equal(res.headers.get('content-length'), '12');
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.body.toString(), 'hello world\n');
  });

  it('picks the Content-Type from the extension case-insensitively and falls back to octet-stream', async () => {
    assert.equal((await request(port, '/STYLE.CSS')).headers.get('content-type'), 'text/css; charset=utf-8');
    assert.equal((await request(port, '/blob.unknownext')).headers.get('content-type'), 'application/octet-stream');
  });

  it('decodes percent-encoded names and accepts the absolute-form request target', async () => {
    assert.equal((await request(port, '/a%20b.txt')).body.toString(), 'space');
    const absolute = await request(port, 'http://127.0.0.1/hello.txt');
    assert.equal(absolute.status, 200);
    assert.equal(absolute.body.toString(), 'hello world\n');
  });

  it('answers HEAD with the GET headers and no body', async () => {
    const res = await request(port, '/hello.txt', 'HEAD');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/plain; charset=utf-8');
    assert.equal(res.headers.get('content-length'), '12');
    assert.equal(res.body.length, 0);
  });

  it('serves an empty file with Content-Length 0', async () => {
    const res = await request(port, '/empty.txt');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-length'), '0');
    assert.equal(res.body.length, 0);
  });

  it('streams a multi-megabyte file byte for byte with the right Content-Length', async () => {
    const res = await request(port, '/big.bin');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-length'), String(bigFile.length));
    assert.equal(res.body.length, bigFile.length);
    const digest = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
    assert.equal(digest(res.body), digest(bigFile));
  });

  it('answers other methods with 405 and Allow: GET, HEAD', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      const res = await request(port, '/hello.txt', method);
      assert.equal(res.status, 405, method);
      assert.equal(res.headers.get('allow'), 'GET, HEAD', method);
    }
  });

  it('answers 404 for a missing file', async () => {
    assert.equal((await request(port, '/missing.txt')).status, 404);
    assert.equal((await request(port, '/missing-dir/file.txt')).status, 404);
    assert.equal((await request(port, '/missing.txt', 'HEAD')).status, 404);
  });

  it('serves index.html for the root and for a directory URL ending in a slash', async () => {
    const root = await request(port, '/');
    assert.equal(root.status, 200);
    assert.equal(root.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(root.body.toString(), '<h1>root</h1>');
    const sub = await request(port, '/sub/');
    assert.equal(sub.status, 200);
    assert.equal(sub.body.toString(), '<h1>sub</h1>');
  });

  it('redirects a directory URL without a trailing slash to the slash form, keeping the query', async () => {
    const plain = await request(port, '/sub');
    assert.equal(plain.status, 301);
    assert.equal(plain.headers.get('location'), '/sub/');
    const withQuery = await request(port, '/sub?a=1&b=%20');
    assert.equal(withQuery.status, 301);
    assert.equal(withQuery.headers.get('location'), '/sub/?a=1&b=%20');
  });

  it('never redirects to another host when the path starts with a double slash', async () => {
    const res = await request(port, '//sub');
    assert.equal(res.status, 301);
    assert.equal(res.headers.get('location'), '/sub/');
  });

  it('answers 404 for a directory without an index file and for a file URL with a trailing slash', async () => {
    assert.equal((await request(port, '/no-index/')).status, 404);
    assert.equal((await request(port, '/hello.txt/')).status, 404);
  });

  it('refuses `..` and `.` segments with 400', async () => {
    const targets = ['/../outside/secret.txt', '/sub/../../outside/secret.txt', '/..', '/sub/..', '/./hello.txt'];
    for (const target of targets) {
      const res = await request(port, target);
      assert.equal(res.status, 400, target);
      assert.ok(!res.body.toString().includes(secretText), target);
    }
  });

  it('refuses percent-encoded dots with 400', async () => {
    const targets = [
      '/%2e%2e/outside/secret.txt',
      '/%2E%2E/outside/secret.txt',
      '/.%2e/outside/secret.txt',
      '/%2e./outside/secret.txt',
      '/sub/%2e%2e/%2e%2e/outside/secret.txt',
      '/%2e/hello.txt',
    ];
    for (const target of targets) {
      const res = await request(port, target);
      assert.equal(res.status, 400, target);
      assert.ok(!res.body.toString().includes(secretText), target);
    }
  });

  it('refuses percent-encoded slashes and backslashes with 400', async () => {
    const targets = [
      '/..%2foutside%2fsecret.txt',
      '/sub%2F..%2F..%2Foutside%2Fsecret.txt',
      '/..%5coutside%5csecret.txt',
      '/sub%5C..%5Chello.txt',
      '/sub%2findex.html',
    ];
    for (const target of targets) {
      const res = await request(port, target);
      assert.equal(res.status, 400, target);
      assert.ok(!res.body.toString().includes(secretText), target);
    }
  });

  it('refuses raw backslashes with 400', async () => {
    for (const target of ['/..\\outside\\secret.txt', '/sub\\index.html']) {
      const res = await request(port, target);
      assert.equal(res.status, 400, target);
      assert.ok(!res.body.toString().includes(secretText), target);
    }
  });

  it('refuses NUL bytes, raw or percent-encoded, with 400', async () => {
    const encoded = await request(port, '/hello.txt%00.html');
    assert.equal(encoded.status, 400);
    // A raw NUL may be rejected by Node's parser before the handler runs; either way it is a 400.
    const rawHead = 'GET /hello.txt\0.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
    const raw = parseResponse(await rawExchange(port, rawHead));
    assert.equal(raw.status, 400);
  });

  it('refuses malformed percent-encoding with 400', async () => {
    for (const target of ['/%zz', '/hello%', '/hello%2', '/%e9.txt', '/%c0%ae%c0%ae/outside/secret.txt']) {
      assert.equal((await request(port, target)).status, 400, target);
    }
  });

  it('answers 404 for symlinks whose real path is outside the root', async () => {
    for (const target of ['/link-out.txt', '/link-out-dir/secret.txt', '/link-out-dir/', '/link-sibling.txt']) {
      const res = await request(port, target);
      assert.equal(res.status, 404, target);
      assert.ok(!res.body.toString().includes(secretText), target);
    }
  });

  it('serves a symlink whose real path is inside the root', async () => {
    const res = await request(port, '/link-in.txt');
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), 'hello world\n');
  });

  it('answers 404 for dotfiles, dot directories and symlinks that lead to them', async () => {
    const targets = [
      '/.secret',
      '/%2esecret',
      '/.hidden/file.txt',
      '/.hidden/',
      '/sub/.secret',
      '/link-to-dotfile.txt',
      '/.alias/index.html',
    ];
    for (const target of targets) {
      const res = await request(port, target);
      assert.equal(res.status, 404, target);
      assert.ok(!res.body.toString().includes(secretText), target);
    }
  });

  it('answers 404 for a FIFO instead of blocking on it', async (t) => {
    const fifoPath = path.join(rootDir, 'pipe.txt');
    if (spawnSync('mkfifo', [fifoPath]).status !== 0) {
      t.skip('mkfifo is not available');
      return;
    }
    t.after(() => fsp.rm(fifoPath, { force: true }));
    assert.equal((await request(port, '/pipe.txt')).status, 404);
  });

  it('drops the connection when the file shrinks mid-stream instead of ending the body short', async (t) => {
    const shrinkingPath = path.join(rootDir, 'shrinking.bin');
    const fullLength = 32 * 1024 * 1024; // more than the loopback socket buffers hold while the client is paused
    await fsp.writeFile(shrinkingPath, Buffer.alloc(fullLength, 0x61));
    t.after(() => fsp.rm(shrinkingPath, { force: true }));

    const socket = net.connect(port, '127.0.0.1');
    t.after(() => socket.destroy());
    const chunks: Buffer[] = [];
    let firstChunk: () => void = () => undefined;
    const gotFirstChunk = new Promise<void>((resolve) => (firstChunk = resolve));
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.on('error', () => undefined); // a reset is an acceptable way to be dropped
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      firstChunk();
    });
    // Keep-alive on purpose: ending short would leave this client waiting forever for the rest.
    socket.write('GET /shrinking.bin HTTP/1.1\r\nHost: x\r\n\r\n');
    await gotFirstChunk;
    socket.pause();
    await sleep(100);
    await fsp.truncate(shrinkingPath, 0);
    socket.resume();
    // Well inside the server's keep-alive timeout, so only a deliberate drop closes the socket this soon.
    const stillOpen = sleep(3_000, undefined, { ref: false }).then(() => 'still open');
    const outcome = await Promise.race([closed.then(() => 'closed'), stillOpen]);
    assert.equal(outcome, 'closed');

    const res = parseResponse(Buffer.concat(chunks));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-length'), String(fullLength));
    assert.ok(res.body.length < fullLength, `got all ${res.body.length} bytes`);
    // The server survived and still serves.
    assert.equal((await request(port, '/hello.txt')).status, 200);
  });

  it('survives a client that disconnects mid-body', async () => {
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.on('error', reject);
      socket.once('data', () => socket.destroy());
      socket.on('close', () => resolve());
      socket.write('GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n');
    });
    await sleep(50);
    assert.equal((await request(port, '/hello.txt')).status, 200);
  });

  it('never rejected from handle in any of the requests above', () => {
    assert.deepEqual(rejections, []);
  });
});

describe('StaticFiles options and checkRoot', () => {
  let baseDir = '';

  before(async () => {
    baseDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'switchyard-static-root-'));
    await fsp.mkdir(path.join(baseDir, 'site'));
    await fsp.writeFile(path.join(baseDir, 'site', 'home.htm'), 'home');
    await fsp.writeFile(path.join(baseDir, 'file.txt'), 'not a directory');
  });

  after(async () => {
    if (baseDir !== '') await fsp.rm(baseDir, { recursive: true, force: true });
  });

  /** Serves `files` on an ephemeral port for the duration of the test. */
  async function listen(t: { after(fn: () => Promise<void>): void }, files: StaticFiles): Promise<number> {
    const server = http.createServer((req, res) => void files.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    return (server.address() as AddressInfo).port;
  }

  it('resolves checkRoot for an existing directory', async () => {
    await StaticFiles.checkRoot(path.join(baseDir, 'site'));
  });

  it('rejects checkRoot with a one-line message naming a missing root', async () => {
    const missing = path.join(baseDir, 'nope');
    await assert.rejects(StaticFiles.checkRoot(missing), (error: Error) => {
      assert.equal(error.message, `static root ${missing} does not exist`);
      return true;
    });
  });

  it('rejects checkRoot with a one-line message when the root is a file', async () => {
    const file = path.join(baseDir, 'file.txt');
    await assert.rejects(StaticFiles.checkRoot(file), (error: Error) => {
      assert.equal(error.message, `static root ${file} is not a directory`);
      return true;
    });
  });

  it('throws TypeError for an empty root or an indexFile that is not a plain file name', () => {
    assert.throws(() => new StaticFiles({ root: '' }), TypeError);
    for (const indexFile of ['', '.', '..', 'a/index.html', 'a\\index.html', 'index\0.html']) {
      assert.throws(() => new StaticFiles({ root: baseDir, indexFile }), TypeError, JSON.stringify(indexFile));
    }
  });

  it('throws TypeError for a cacheControl that is not a header value or flags that are not booleans', () => {
    for (const cacheControl of ['no-cache\r\nSet-Cookie: a=b', 'max-age=1\n', 'x\0']) {
      assert.throws(() => new StaticFiles({ root: baseDir, cacheControl }), TypeError, JSON.stringify(cacheControl));
    }
    const loose = { root: baseDir, directoryListing: 'yes', precompressed: 1 } as unknown as StaticFilesOptions;
    assert.throws(() => new StaticFiles({ ...loose, precompressed: true }), TypeError);
    assert.throws(() => new StaticFiles({ ...loose, directoryListing: false }), TypeError);
    // Every option may be left out or given as undefined, which means its default.
    new StaticFiles({ root: baseDir, indexFile: undefined, cacheControl: undefined, directoryListing: undefined, precompressed: undefined });
  });

  it('serves the configured indexFile for a directory URL', async (t) => {
    const port = await listen(t, new StaticFiles({ root: path.join(baseDir, 'site'), indexFile: 'home.htm' }));
    const res = await request(port, '/');
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), 'home');
  });

  it('answers 404 while the root is missing and serves it once it exists', async (t) => {
    const lateRoot = path.join(baseDir, 'late');
    const port = await listen(t, new StaticFiles({ root: lateRoot }));
    assert.equal((await request(port, '/')).status, 404);
    await fsp.mkdir(lateRoot);
    await fsp.writeFile(path.join(lateRoot, 'index.html'), 'late');
    assert.equal((await request(port, '/')).body.toString(), 'late');
  });
});
