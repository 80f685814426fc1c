// Tests for contentTypeFor: the extension table, charset on text types, and the octet-stream fallback.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { contentTypeFor } from '../../src/http/mime.js';

describe('contentTypeFor', () => {
  it('gives text types a utf-8 charset', () => {
    const expected: ReadonlyArray<readonly [string, string]> = [
      ['index.html', 'text/html; charset=utf-8'],
      ['style.css', 'text/css; charset=utf-8'],
      ['app.js', 'text/javascript; charset=utf-8'],
      ['module.mjs', 'text/javascript; charset=utf-8'],
      ['data.json', 'application/json; charset=utf-8'],
      ['app.js.map', 'application/json; charset=utf-8'],
      ['notes.txt', 'text/plain; charset=utf-8'],
      ['feed.xml', 'application/xml; charset=utf-8'],
      ['logo.svg', 'image/svg+xml; charset=utf-8'],
      ['table.csv', 'text/csv; charset=utf-8'],
      ['README.md', 'text/markdown; charset=utf-8'],
      ['site.webmanifest', 'application/manifest+json; charset=utf-8'],
      ['app.manifest', 'application/manifest+json; charset=utf-8'],
    ];
    for (const [name, type] of expected) assert.equal(contentTypeFor(name), type, name);
  });

  it('gives binary types no charset', () => {
    const expected: ReadonlyArray<readonly [string, string]> = [
      ['a.png', 'image/png'],
      ['a.jpg', 'image/jpeg'],
      ['a.jpeg', 'image/jpeg'],
      ['a.gif', 'image/gif'],
      ['a.webp', 'image/webp'],
      ['a.avif', 'image/avif'],
      ['favicon.ico', 'image/x-icon'],
      ['a.bmp', 'image/bmp'],
      ['a.woff', 'font/woff'],
      ['a.woff2', 'font/woff2'],
      ['a.ttf', 'font/ttf'],
      ['a.otf', 'font/otf'],
      ['a.wasm', 'application/wasm'],
      ['a.pdf', 'application/pdf'],
      ['a.zip', 'application/zip'],
      ['a.gz', 'application/gzip'],
      ['a.mp3', 'audio/mpeg'],
      ['a.mp4', 'video/mp4'],
      ['a.webm', 'video/webm'],
      ['a.ogg', 'audio/ogg'],
      ['a.wav', 'audio/wav'],
    ];
    for (const [name, type] of expected) assert.equal(contentTypeFor(name), type, name);
  });

  it('covers the web\'s other common types', () => {
    const expected: ReadonlyArray<readonly [string, string]> = [
      ['lib.cjs', 'text/javascript; charset=utf-8'],
      ['data.jsonld', 'application/ld+json; charset=utf-8'],
      ['map.geojson', 'application/geo+json; charset=utf-8'],
      ['page.xhtml', 'application/xhtml+xml; charset=utf-8'],
      ['feed.rss', 'application/rss+xml; charset=utf-8'],
      ['feed.atom', 'application/atom+xml; charset=utf-8'],
      ['scene.gltf', 'model/gltf+json; charset=utf-8'],
      ['scene.glb', 'model/gltf-binary'],
      ['anim.apng', 'image/apng'],
      ['photo.heic', 'image/heic'],
      ['photo.heif', 'image/heif'],
      ['photo.jxl', 'image/jxl'],
      ['song.m4a', 'audio/mp4'],
      ['song.aac', 'audio/aac'],
      ['song.flac', 'audio/flac'],
      ['song.opus', 'audio/opus'],
      ['clip.mov', 'video/quicktime'],
      ['clip.mkv', 'video/x-matroska'],
      ['stream.m3u8', 'application/vnd.apple.mpegurl'],
      ['stream.mpd', 'application/dash+xml; charset=utf-8'],
      ['segment.m4s', 'video/iso.segment'],
      ['font.eot', 'application/vnd.ms-fontobject'],
      ['book.epub', 'application/epub+zip'],
      ['archive.zst', 'application/zstd'],
      ['subtitles.vtt', 'text/vtt; charset=utf-8'],
    ];
    for (const [name, type] of expected) assert.equal(contentTypeFor(name), type, name);
  });

  it('serves .ts as an MPEG transport stream, as nginx does, since HLS segments are what a web server meets', () => {
    assert.equal(contentTypeFor('segment0.ts'), 'video/mp2t');
  });

  it('matches extensions case-insensitively', () => {
    assert.equal(contentTypeFor('INDEX.HTML'), 'text/html; charset=utf-8');
    assert.equal(contentTypeFor('Photo.JpEg'), 'image/jpeg');
  });

  it('uses only the last extension of the file name, not of its directories', () => {
    assert.equal(contentTypeFor('/srv/archive.tar.gz'), 'application/gzip');
    assert.equal(contentTypeFor('/srv/v1.2/README'), 'application/octet-stream');
    assert.equal(contentTypeFor('C:\\site\\v1.2\\page.html'), 'text/html; charset=utf-8');
  });

  it('falls back to application/octet-stream for unknown, missing or dotfile-only extensions', () => {
    assert.equal(contentTypeFor('blob.unknownext'), 'application/octet-stream');
    assert.equal(contentTypeFor('Makefile'), 'application/octet-stream');
    assert.equal(contentTypeFor('.html'), 'application/octet-stream');
    assert.equal(contentTypeFor('trailing.'), 'application/octet-stream');
  });

  it('does not treat Object.prototype names as extensions', () => {
    assert.equal(contentTypeFor('x.constructor'), 'application/octet-stream');
    assert.equal(contentTypeFor('x.__proto__'), 'application/octet-stream');
    assert.equal(contentTypeFor('x.toString'), 'application/octet-stream');
  });
});
