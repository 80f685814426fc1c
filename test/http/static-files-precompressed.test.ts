// Tests for StaticFiles serving precompressed `.br` / `.gz` siblings: Accept-Encoding negotiation with q-values,
// Content-Encoding, the original Content-Type, Vary, per-encoding ETags, ranges over the encoded bytes, and the
// root and dotfile rules applied to siblings. http.request is used because it neither adds nor decodes encodings.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { brotliCompressSync, brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import { createStaticFixture, send, type StaticFixture } from './_static-fixtures.js';

const script = 'console.log("hello from the original file");\n'.repeat(50);
const scriptBr = brotliCompressSync(script);
const scriptGz = gzipSync(script);
const secretText = 'TOP SECRET, not to be served';

describe('StaticFiles precompressed siblings', { timeout: 30_000 }, () => {
  let fixture: StaticFixture | undefined;
  let port = 0;

  before(async () => {
    fixture = await createStaticFixture('switchyard-static-precompressed-');
    const { rootDir, write } = fixture;
    const outsideDir = path.join(fixture.baseDir, 'outside');
    await fsp.mkdir(outsideDir);

    await write('app.js', script);
    await write('app.js.br', scriptBr);
    await write('app.js.gz', scriptGz);
    await write('style.css', 'body{}');
    await write('style.css.gz', gzipSync('body{}'));
    await write('plain.txt', 'no siblings');
    await write('index.html', '<h1>root</h1>');
    await write('index.html.gz', gzipSync('<h1>root</h1>'));
    await write('.secret', secretText);
    await write('.secret.br', brotliCompressSync(secretText));
    await write('.hidden.br', brotliCompressSync(secretText));
    await fsp.writeFile(path.join(outsideDir, 'leak.br'), brotliCompressSync(secretText));

    // Siblings that must be passed over: one leads outside the root, one to a dotfile, one is a directory.
    await write('outside.txt', 'outside-linked sibling');
    await fsp.symlink(path.join(outsideDir, 'leak.br'), path.join(rootDir, 'outside.txt.br'));
    await write('dotlink.txt', 'dotfile-linked sibling');
    await fsp.symlink('.hidden.br', path.join(rootDir, 'dotlink.txt.br'));
    await write('dir.txt', 'directory sibling');
    await fsp.mkdir(path.join(rootDir, 'dir.txt.br'));
    port = await fixture.listen();
  });

  after(async () => {
    await fixture?.close();
  });

  it('serves the .br sibling with Content-Encoding: br, the original Content-Type and Vary when br is accepted', async () => {
    const res = await send(port, '/app.js', { 'Accept-Encoding': 'gzip, deflate, br' });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-encoding'], 'br');
    assert.equal(res.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(res.headers.vary, 'Accept-Encoding');
    assert.equal(res.headers['content-length'], String(scriptBr.length));
    assert.equal(brotliDecompressSync(res.body).toString(), script);
  });

  it('prefers br when both br and gzip are present and accepted with equal weight', async () => {
    for (const accept of ['gzip, br', 'br;q=0.5, gzip;q=0.5', '*']) {
      assert.equal((await send(port, '/app.js', { 'Accept-Encoding': accept })).headers['content-encoding'], 'br', accept);
    }
  });

  it('honours q-values: gzip when it weighs more than br', async () => {
    const res = await send(port, '/app.js', { 'Accept-Encoding': 'br;q=0.5, gzip;q=0.8' });
    assert.equal(res.headers['content-encoding'], 'gzip');
    assert.equal(gunzipSync(res.body).toString(), script);
  });

  it('treats q=0 as "not acceptable": br;q=0 falls back to gzip, and both at q=0 to the original', async () => {
    assert.equal((await send(port, '/app.js', { 'Accept-Encoding': 'br;q=0, gzip' })).headers['content-encoding'], 'gzip');
    assert.equal((await send(port, '/app.js', { 'Accept-Encoding': 'br;Q=0.000, *' })).headers['content-encoding'], 'gzip');
    const neither = await send(port, '/app.js', { 'Accept-Encoding': 'br;q=0, gzip;q=0' });
    assert.equal(neither.headers['content-encoding'], undefined);
    assert.equal(neither.headers.vary, 'Accept-Encoding');
    assert.equal(neither.body.toString(), script);
    const starZero = await send(port, '/app.js', { 'Accept-Encoding': '*;q=0' });
    assert.equal(starZero.headers['content-encoding'], undefined);
  });

  it('treats x-gzip as gzip and skips members with a malformed q-value', async () => {
    assert.equal((await send(port, '/app.js', { 'Accept-Encoding': 'x-gzip' })).headers['content-encoding'], 'gzip');
    assert.equal((await send(port, '/app.js', { 'Accept-Encoding': 'br;q=2, gzip' })).headers['content-encoding'], 'gzip');
  });

  it('sends the original with Vary: Accept-Encoding when no encoding is accepted or the header is absent', async () => {
    for (const headers of [{}, { 'Accept-Encoding': 'identity' }, { 'Accept-Encoding': '' }, { 'Accept-Encoding': 'deflate' }]) {
      const res = await send(port, '/app.js', headers);
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-encoding'], undefined, JSON.stringify(headers));
      assert.equal(res.headers.vary, 'Accept-Encoding', JSON.stringify(headers));
      assert.equal(res.body.toString(), script);
    }
  });

  it('sends no Vary for a file without siblings', async () => {
    const res = await send(port, '/plain.txt', { 'Accept-Encoding': 'br, gzip' });
    assert.equal(res.headers['content-encoding'], undefined);
    assert.equal(res.headers.vary, undefined);
    assert.equal(res.body.toString(), 'no siblings');
  });

  it('uses only the siblings that exist: a file with just .gz gets gzip when br is preferred', async () => {
    const res = await send(port, '/style.css', { 'Accept-Encoding': 'br, gzip;q=0.1' });
    assert.equal(res.headers['content-encoding'], 'gzip');
    assert.equal(res.headers['content-type'], 'text/css; charset=utf-8');
    assert.equal(gunzipSync(res.body).toString(), 'body{}');
  });

  it('serves the precompressed sibling of a directory index file', async () => {
    const res = await send(port, '/', { 'Accept-Encoding': 'gzip' });
    assert.equal(res.headers['content-encoding'], 'gzip');
    assert.equal(res.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(gunzipSync(res.body).toString(), '<h1>root</h1>');
  });

  it('answers HEAD with the encoded headers and no body', async () => {
    const res = await send(port, '/app.js', { 'Accept-Encoding': 'br' }, 'HEAD');
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-encoding'], 'br');
    assert.equal(res.headers['content-length'], String(scriptBr.length));
    assert.equal(res.body.length, 0);
  });

  it('gives each encoding its own ETag, and If-None-Match gives 304 only for the one that would be sent', async () => {
    const br = await send(port, '/app.js', { 'Accept-Encoding': 'br' });
    const gzip = await send(port, '/app.js', { 'Accept-Encoding': 'gzip' });
    const identity = await send(port, '/app.js');
    const tags = [br.headers.etag, gzip.headers.etag, identity.headers.etag];
    assert.equal(new Set(tags).size, 3, JSON.stringify(tags));
    assert.match(br.headers.etag ?? '', /-br"$/);
    assert.match(gzip.headers.etag ?? '', /-gzip"$/);

    const notModified = await send(port, '/app.js', { 'Accept-Encoding': 'br', 'If-None-Match': br.headers.etag ?? '' });
    assert.equal(notModified.status, 304);
    assert.equal(notModified.headers.etag, br.headers.etag);
    assert.equal(notModified.headers.vary, 'Accept-Encoding');
    const otherEncoding = await send(port, '/app.js', { 'If-None-Match': br.headers.etag ?? '' });
    assert.equal(otherEncoding.status, 200);
    assert.equal(otherEncoding.body.toString(), script);
  });

  it('applies Range to the encoded bytes', async () => {
    const res = await send(port, '/app.js', { 'Accept-Encoding': 'br', Range: 'bytes=2-9' });
    assert.equal(res.status, 206);
    assert.equal(res.headers['content-encoding'], 'br');
    assert.equal(res.headers['content-range'], `bytes 2-9/${scriptBr.length}`);
    assert.ok(res.body.equals(scriptBr.subarray(2, 10)));
    const unsatisfiable = await send(port, '/app.js', { 'Accept-Encoding': 'gzip', Range: `bytes=${scriptGz.length}-` });
    assert.equal(unsatisfiable.status, 416);
    assert.equal(unsatisfiable.headers['content-range'], `bytes */${scriptGz.length}`);
  });

  it('never serves a sibling that leads outside the root or to a dotfile, or that is not a regular file', async () => {
    for (const [target, text] of [
      ['/outside.txt', 'outside-linked sibling'],
      ['/dotlink.txt', 'dotfile-linked sibling'],
      ['/dir.txt', 'directory sibling'],
    ] as const) {
      const res = await send(port, target, { 'Accept-Encoding': 'br' });
      assert.equal(res.status, 200, target);
      assert.equal(res.headers['content-encoding'], undefined, target);
      assert.equal(res.headers.vary, undefined, target);
      assert.equal(res.body.toString(), text, target);
    }
  });

  it('answers 404 for a dotfile even when a .br sibling of it exists', async () => {
    for (const target of ['/.secret', '/.secret.br', '/%2esecret']) {
      const res = await send(port, target, { 'Accept-Encoding': 'br' });
      assert.equal(res.status, 404, target);
      assert.equal(res.headers['content-encoding'], undefined, target);
    }
  });

  it('serves the original and sends no Vary when precompressed is false', async () => {
    const offPort = await fixture!.listen({ precompressed: false });
    const res = await send(offPort, '/app.js', { 'Accept-Encoding': 'br, gzip' });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-encoding'], undefined);
    assert.equal(res.headers.vary, undefined);
    assert.equal(res.body.toString(), script);
  });
});
