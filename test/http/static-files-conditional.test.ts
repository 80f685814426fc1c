// Tests for StaticFiles' validators, conditional requests (RFC 9110 §13), byte ranges (§14) and Cache-Control,
// over a real node:http server and a temp directory. http.request is used because it adds no Accept-Encoding.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { createStaticFixture, send, type StaticFixture } from './_static-fixtures.js';

/** Everything the server wrote for one raw request, read until it closes: proves what came after the head. */
function rawExchange(port: number, head: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.write(head);
  });
}

const digits = '0123456789'.repeat(10); // 100 bytes: byte i is String(i % 10)
const fileMtime = new Date('2020-01-02T03:04:05.678Z');
const lastModified = 'Thu, 02 Jan 2020 03:04:05 GMT';

describe('StaticFiles conditional requests and ranges', { timeout: 30_000 }, () => {
  let fixture: StaticFixture | undefined;
  let rootDir = '';
  let port = 0;
  const bigFile = randomBytes(2 * 1024 * 1024 + 7);

  before(async () => {
    fixture = await createStaticFixture('switchyard-static-conditional-');
    rootDir = fixture.rootDir;
    await fixture.write('digits.txt', digits);
    await fsp.utimes(path.join(rootDir, 'digits.txt'), fileMtime, fileMtime);
    await fixture.write('empty.txt', '');
    await fixture.write('big.bin', bigFile);
    port = await fixture.listen();
  });

  after(async () => {
    await fixture?.close();
  });

  async function currentEtag(target = '/digits.txt'): Promise<string> {
    const etag = (await send(port, target, {}, 'HEAD')).headers.etag;
    assert.ok(etag !== undefined);
    return etag;
  }

  // ---- validators and Cache-Control ----

  it('sends a strong ETag, Last-Modified, Accept-Ranges: bytes and Cache-Control: no-cache with a file', async () => {
    const res = await send(port, '/digits.txt');
    assert.equal(res.status, 200);
    assert.match(res.headers.etag ?? '', /^"[0-9a-f]+-[0-9a-f]+"$/);
    assert.equal(res.headers['last-modified'], lastModified);
    assert.equal(res.headers['accept-ranges'], 'bytes');
    assert.equal(res.headers['cache-control'], 'no-cache');
    assert.equal(res.body.toString(), digits);
    const head = await send(port, '/digits.txt', {}, 'HEAD');
    assert.equal(head.headers.etag, res.headers.etag);
    assert.equal(head.headers['last-modified'], lastModified);
  });

  it('sends the configured Cache-Control on 200, 206 and 304, and none when it is empty', async () => {
    const immutablePort = await fixture!.listen({ cacheControl: 'public, max-age=31536000, immutable' });
    const full = await send(immutablePort, '/digits.txt');
    assert.equal(full.headers['cache-control'], 'public, max-age=31536000, immutable');
    const partial = await send(immutablePort, '/digits.txt', { Range: 'bytes=0-0' });
    assert.equal(partial.status, 206);
    assert.equal(partial.headers['cache-control'], 'public, max-age=31536000, immutable');
    const notModified = await send(immutablePort, '/digits.txt', { 'If-None-Match': full.headers.etag ?? '' });
    assert.equal(notModified.status, 304);
    assert.equal(notModified.headers['cache-control'], 'public, max-age=31536000, immutable');

    const nonePort = await fixture!.listen({ cacheControl: '' });
    assert.equal((await send(nonePort, '/digits.txt')).headers['cache-control'], undefined);
  });

  it('changes the ETag when the file changes, even at the same size, and serves the new bytes', async (t) => {
    const filePath = path.join(rootDir, 'changing.txt');
    t.after(() => fsp.rm(filePath, { force: true }));
    await fsp.writeFile(filePath, 'version 1');
    await fsp.utimes(filePath, fileMtime, fileMtime);
    const first = await currentEtag('/changing.txt');

    // Same size, same second, different content: the sub-second part of the mtime changes the tag.
    await fsp.writeFile(filePath, 'version 2');
    const later = new Date(fileMtime.getTime() + 1);
    await fsp.utimes(filePath, later, later);
    const second = await currentEtag('/changing.txt');
    assert.notEqual(second, first);

    // Different size, mtime restored: the size changes the tag.
    await fsp.writeFile(filePath, 'version 3, longer');
    await fsp.utimes(filePath, fileMtime, fileMtime);
    const third = await currentEtag('/changing.txt');
    assert.notEqual(third, first);
    assert.notEqual(third, second);

    const res = await send(port, '/changing.txt', { 'If-None-Match': first });
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), 'version 3, longer');
    assert.equal(res.headers.etag, third);
  });

  // ---- If-None-Match ----

  it('answers If-None-Match with the current ETag with 304 and no body', async () => {
    const etag = await currentEtag();
    const res = await send(port, '/digits.txt', { 'If-None-Match': etag });
    assert.equal(res.status, 304);
    assert.equal(res.headers.etag, etag);
    assert.equal(res.headers['last-modified'], lastModified);
    assert.equal(res.headers['cache-control'], 'no-cache');
    assert.equal(res.body.length, 0);
    // On the wire: nothing at all after the head, not even a chunked terminator.
    const raw = await rawExchange(port, `GET /digits.txt HTTP/1.1\r\nHost: x\r\nIf-None-Match: ${etag}\r\nConnection: close\r\n\r\n`);
    assert.match(raw, /^HTTP\/1\.1 304 /);
    assert.equal(raw.slice(raw.indexOf('\r\n\r\n') + 4), '');
  });

  it('answers If-None-Match with a list that holds the ETag, or with *, with 304', async () => {
    const etag = await currentEtag();
    assert.equal((await send(port, '/digits.txt', { 'If-None-Match': `"nope", ${etag}, "other"` })).status, 304);
    assert.equal((await send(port, '/digits.txt', { 'If-None-Match': '*' })).status, 304);
  });

  it('compares If-None-Match weakly: the W/ form of the current ETag also gives 304', async () => {
    const etag = await currentEtag();
    assert.equal((await send(port, '/digits.txt', { 'If-None-Match': `W/${etag}` })).status, 304);
  });

  it('answers an If-None-Match that matches nothing with 200 and the body', async () => {
    const res = await send(port, '/digits.txt', { 'If-None-Match': '"0-0", W/"1-1"' });
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), digits);
  });

  it('answers HEAD with a matching If-None-Match with 304', async () => {
    const res = await send(port, '/digits.txt', { 'If-None-Match': await currentEtag() }, 'HEAD');
    assert.equal(res.status, 304);
  });

  it('answers a matching If-None-Match with 304 even when a Range is present (RFC 9110 §13.2.2 order)', async () => {
    const res = await send(port, '/digits.txt', { 'If-None-Match': await currentEtag(), Range: 'bytes=0-1' });
    assert.equal(res.status, 304);
    assert.equal(res.headers['content-range'], undefined);
  });

  // ---- If-Modified-Since ----

  it('answers If-Modified-Since at or after Last-Modified with 304, at one-second precision', async () => {
    // The file's mtime is 03:04:05.678; an HTTP-date has whole seconds, so 03:04:05 counts as "not modified since".
    assert.equal((await send(port, '/digits.txt', { 'If-Modified-Since': lastModified })).status, 304);
    assert.equal((await send(port, '/digits.txt', { 'If-Modified-Since': 'Fri, 03 Jan 2020 00:00:00 GMT' })).status, 304);
    const older = await send(port, '/digits.txt', { 'If-Modified-Since': 'Thu, 02 Jan 2020 03:04:04 GMT' });
    assert.equal(older.status, 200);
    assert.equal(older.body.toString(), digits);
    const head = await send(port, '/digits.txt', { 'If-Modified-Since': lastModified }, 'HEAD');
    assert.equal(head.status, 304);
    assert.equal(head.headers['last-modified'], lastModified);
  });

  it('accepts If-Modified-Since in the obsolete RFC 850 and asctime forms (RFC 9110 §5.6.7)', async () => {
    assert.equal((await send(port, '/digits.txt', { 'If-Modified-Since': 'Thursday, 02-Jan-20 03:04:05 GMT' })).status, 304);
    assert.equal((await send(port, '/digits.txt', { 'If-Modified-Since': 'Thu Jan  2 03:04:05 2020' })).status, 304);
    assert.equal((await send(port, '/digits.txt', { 'If-Modified-Since': 'Thu Jan  2 03:04:04 2020' })).status, 200);
  });

  it('ignores an unparsable If-Modified-Since and sends 200', async () => {
    const values = [
      'garbage',
      '2030', // Date.parse accepts this; HTTP does not
      '2030-01-01T00:00:00Z',
      'Fri, 31 Feb 2030 00:00:00 GMT', // no such day
      'Fri, 03 Jan 2030 25:00:00 GMT',
      'fri, 03 jan 2030 00:00:00 gmt', // day and month names are case-sensitive
      'Fri, 03 Jan 2030 00:00:00 GMT, Sat, 04 Jan 2030 00:00:00 GMT', // more than one member
    ];
    for (const value of values) {
      const res = await send(port, '/digits.txt', { 'If-Modified-Since': value });
      assert.equal(res.status, 200, value);
      assert.equal(res.body.toString(), digits, value);
    }
  });

  it('ignores If-Modified-Since when If-None-Match is present (RFC 9110 §13.1.3)', async () => {
    const res = await send(port, '/digits.txt', { 'If-None-Match': '"stale"', 'If-Modified-Since': 'Fri, 01 Jan 2100 00:00:00 GMT' });
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), digits);
  });

  // ---- If-Match and If-Unmodified-Since ----

  it('answers an If-Match that does not match strongly with 412, and serves when it matches or is *', async () => {
    const etag = await currentEtag();
    assert.equal((await send(port, '/digits.txt', { 'If-Match': '"other"' })).status, 412);
    assert.equal((await send(port, '/digits.txt', { 'If-Match': `W/${etag}` })).status, 412); // strong comparison
    assert.equal((await send(port, '/digits.txt', { 'If-Match': `"other", ${etag}` })).status, 200);
    assert.equal((await send(port, '/digits.txt', { 'If-Match': '*' })).status, 200);
  });

  it('answers If-Unmodified-Since before Last-Modified with 412, and ignores it under If-Match', async () => {
    assert.equal((await send(port, '/digits.txt', { 'If-Unmodified-Since': 'Wed, 01 Jan 2020 00:00:00 GMT' })).status, 412);
    assert.equal((await send(port, '/digits.txt', { 'If-Unmodified-Since': lastModified })).status, 200);
    const both = await send(port, '/digits.txt', { 'If-Match': '*', 'If-Unmodified-Since': 'Wed, 01 Jan 2020 00:00:00 GMT' });
    assert.equal(both.status, 200);
  });

  // ---- Range ----

  it('serves bytes=a-b as 206 with Content-Range and only those bytes', async () => {
    const res = await send(port, '/digits.txt', { Range: 'bytes=10-19' });
    assert.equal(res.status, 206);
    assert.equal(res.headers['content-range'], 'bytes 10-19/100');
    assert.equal(res.headers['content-length'], '10');
    assert.equal(res.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(res.headers['accept-ranges'], 'bytes');
    assert.ok(res.headers.etag !== undefined && res.headers['last-modified'] === lastModified);
    assert.equal(res.body.toString(), '0123456789');
  });

  it('serves bytes=a- from a to the end of the file', async () => {
    const res = await send(port, '/digits.txt', { Range: 'bytes=95-' });
    assert.equal(res.status, 206);
    assert.equal(res.headers['content-range'], 'bytes 95-99/100');
    assert.equal(res.body.toString(), '56789');
  });

  it('serves bytes=-n as the last n bytes', async () => {
    const res = await send(port, '/digits.txt', { Range: 'bytes=-3' });
    assert.equal(res.status, 206);
    assert.equal(res.headers['content-range'], 'bytes 97-99/100');
    assert.equal(res.body.toString(), '789');
  });

  it('serves a suffix range longer than the file as the whole file with 206', async () => {
    const res = await send(port, '/digits.txt', { Range: 'bytes=-500' });
    assert.equal(res.status, 206);
    assert.equal(res.headers['content-range'], 'bytes 0-99/100');
    assert.equal(res.body.toString(), digits);
  });

  it('clamps a range end past EOF to the last byte', async () => {
    const res = await send(port, '/digits.txt', { Range: 'bytes=98-100000000000000000000' });
    assert.equal(res.status, 206);
    assert.equal(res.headers['content-range'], 'bytes 98-99/100');
    assert.equal(res.body.toString(), '89');
  });

  it('answers an unsatisfiable range with 416 and Content-Range: bytes */size', async () => {
    for (const range of ['bytes=100-', 'bytes=100-200', 'bytes=-0']) {
      const res = await send(port, '/digits.txt', { Range: range });
      assert.equal(res.status, 416, range);
      assert.equal(res.headers['content-range'], 'bytes */100', range);
      assert.ok(!res.body.toString().includes('0123'), range);
    }
    // RFC 9110 §14.1.1: no range of an empty representation is satisfiable.
    const empty = await send(port, '/empty.txt', { Range: 'bytes=0-' });
    assert.equal(empty.status, 416);
    assert.equal(empty.headers['content-range'], 'bytes */0');
  });

  it('ignores bytes=5-2 and sends 200, as RFC 9110 §14.1.1 makes it invalid and §14.2 lets a server ignore it', async () => {
    const res = await send(port, '/digits.txt', { Range: 'bytes=5-2' });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-range'], undefined);
    assert.equal(res.body.toString(), digits);
  });

  it('ignores a malformed Range header or another range unit and sends 200', async () => {
    const values = ['bytes=abc', 'bytes=1-2-3', 'bytes=-', 'bytes=', 'bytes 0-1', '0-1', 'items=0-1', 'bytes=0x1-2', 'bytes=+1-2'];
    for (const value of values) {
      const res = await send(port, '/digits.txt', { Range: value });
      assert.equal(res.status, 200, value);
      assert.equal(res.body.toString(), digits, value);
    }
  });

  it('ignores a Range with several ranges and sends the whole file with 200 (no multipart/byteranges)', async () => {
    for (const value of ['bytes=0-1,5-6', 'bytes=0-1, 200-300', 'bytes=-1,-2']) {
      const res = await send(port, '/digits.txt', { Range: value });
      assert.equal(res.status, 200, value);
      assert.equal(res.headers['content-range'], undefined, value);
      assert.equal(res.body.toString(), digits, value);
    }
  });

  it('reads the range unit case-insensitively and allows empty list elements around one range', async () => {
    for (const value of ['Bytes=0-1', 'bytes=0-1,', 'bytes=, 0-1 ,']) {
      const res = await send(port, '/digits.txt', { Range: value });
      assert.equal(res.status, 206, value);
      assert.equal(res.body.toString(), '01', value);
    }
  });

  it('ignores Range on HEAD and answers 200 with the full length (RFC 9110 §14.2: ranges are defined for GET only)', async () => {
    const res = await send(port, '/digits.txt', { Range: 'bytes=0-9' }, 'HEAD');
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-length'], '100');
    assert.equal(res.headers['accept-ranges'], 'bytes');
    assert.equal(res.headers['content-range'], undefined);
    assert.equal(res.body.length, 0);
  });

  it('streams only the requested range of a multi-megabyte file', async () => {
    const start = 1_000_003;
    const end = 1_900_001;
    const res = await send(port, '/big.bin', { Range: `bytes=${start}-${end}` });
    assert.equal(res.status, 206);
    assert.equal(res.headers['content-range'], `bytes ${start}-${end}/${bigFile.length}`);
    assert.equal(res.headers['content-length'], String(end - start + 1));
    assert.ok(res.body.equals(bigFile.subarray(start, end + 1)));
  });

  // ---- If-Range ----

  it('serves the range when If-Range carries the current ETag, and the whole file for another or a weak one', async () => {
    const etag = await currentEtag();
    const match = await send(port, '/digits.txt', { Range: 'bytes=0-4', 'If-Range': etag });
    assert.equal(match.status, 206);
    assert.equal(match.body.toString(), '01234');
    for (const ifRange of ['"stale"', `W/${etag}`]) {
      const res = await send(port, '/digits.txt', { Range: 'bytes=0-4', 'If-Range': ifRange });
      assert.equal(res.status, 200, ifRange);
      assert.equal(res.body.toString(), digits, ifRange);
    }
  });

  it('serves the range when If-Range carries the exact Last-Modified date, and the whole file otherwise', async () => {
    const match = await send(port, '/digits.txt', { Range: 'bytes=-2', 'If-Range': lastModified });
    assert.equal(match.status, 206);
    assert.equal(match.body.toString(), '89');
    for (const ifRange of ['Fri, 03 Jan 2020 00:00:00 GMT', 'not a date']) {
      const res = await send(port, '/digits.txt', { Range: 'bytes=-2', 'If-Range': ifRange });
      assert.equal(res.status, 200, ifRange);
      assert.equal(res.body.toString(), digits, ifRange);
    }
  });

  it('sends the whole file, not a 416, when If-Range fails for an unsatisfiable range', async () => {
    const res = await send(port, '/digits.txt', { Range: 'bytes=500-', 'If-Range': '"stale"' });
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), digits);
  });
});
