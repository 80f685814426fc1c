// Tests for StaticFiles' optional directory listings: when they appear, what they show and hide, how names are
// escaped and encoded, and that every link in a listing fetches what it names.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { createStaticFixture, send, type StaticFixture } from './_static-fixtures.js';

/** The hrefs and link texts of a listing page, in page order. */
function linksOf(html: string): Array<{ href: string; text: string }> {
  return [...html.matchAll(/<a href="([^"]*)">([^<]*)<\/a>/g)].map((match) => ({ href: match[1] ?? '', text: match[2] ?? '' }));
}

function unescapeHtml(text: string): string {
  return text.replace(/&(amp|lt|gt|quot|#39);/g, (_, name: string) =>
    ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" })[name] ?? '');
}

const awkwardName = `<img src=x onerror=alert(1)>"it's" & more.txt`; // a file name may not hold a slash
const secretText = 'TOP SECRET, outside the root';

describe('StaticFiles directory listings', { timeout: 30_000 }, () => {
  let fixture: StaticFixture | undefined;
  let port = 0;

  before(async () => {
    fixture = await createStaticFixture('switchyard-static-listing-');
    const { rootDir, write } = fixture;
    const outsideDir = path.join(fixture.baseDir, 'outside');
    await fsp.mkdir(path.join(rootDir, 'docs', 'deeper'), { recursive: true });
    await fsp.mkdir(path.join(rootDir, 'assets'));
    await fsp.mkdir(path.join(rootDir, 'with-index'));
    await fsp.mkdir(path.join(rootDir, '.git'));
    await fsp.mkdir(outsideDir);
    await write('b.txt', 'bbbbb');
    await write('a.txt', 'a');
    await write('Z.txt', 'zz');
    await write('a b#?%.txt', 'odd name');
    await write(awkwardName, 'awkward');
    await write('.env', secretText);
    await write('docs/guide.md', '# guide');
    await write('with-index/index.html', '<h1>index wins</h1>');
    await fsp.writeFile(path.join(outsideDir, 'secret.txt'), secretText);
    await fsp.symlink(path.join(outsideDir, 'secret.txt'), path.join(rootDir, 'escape.txt'));
    await fsp.symlink(outsideDir, path.join(rootDir, 'escape-dir'));
    await fsp.symlink('.env', path.join(rootDir, 'env-alias.txt'));
    await fsp.symlink('missing.txt', path.join(rootDir, 'broken.txt'));
    await fsp.symlink('docs', path.join(rootDir, 'docs-alias'));
    port = await fixture.listen({ directoryListing: true });
  });

  after(async () => {
    await fixture?.close();
  });

  it('lists a directory that has no index file as text/html when directoryListing is on', async () => {
    const res = await send(port, '/');
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(res.headers['content-length'], String(res.body.length));
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.match(String(res.headers['content-security-policy']), /default-src 'none'/);
    assert.match(res.body.toString(), /<title>Index of \/<\/title>/);
  });

  it('marks directories with a trailing slash and lists them first, then names in code-point order', async () => {
    const texts = linksOf((await send(port, '/')).body.toString()).map((link) => unescapeHtml(link.text));
    assert.deepEqual(texts, ['assets/', 'docs/', 'docs-alias/', 'with-index/', awkwardName, 'Z.txt', 'a b#?%.txt', 'a.txt', 'b.txt']);
  });

  it('escapes names in the HTML and percent-encodes them in links', async () => {
    const html = (await send(port, '/')).body.toString();
    assert.ok(!html.includes('<img'), 'a raw tag from a file name reached the page');
    assert.ok(html.includes('&lt;img src=x onerror=alert(1)&gt;&quot;it&#39;s&quot; &amp; more.txt'));
    const hrefs = linksOf(html).map((link) => link.href);
    assert.ok(hrefs.includes('./a%20b%23%3F%25.txt'), JSON.stringify(hrefs));
    assert.ok(hrefs.includes(`./${encodeURIComponent(awkwardName).replace(/'/g, '&#39;')}`), JSON.stringify(hrefs));
  });

  it('hides dotfiles and entries a request could not reach: links outside the root, to dotfiles, or broken', async () => {
    const html = (await send(port, '/')).body.toString();
    for (const hidden of ['.env', '.git', 'escape.txt', 'escape-dir', 'env-alias.txt', 'broken.txt']) {
      assert.ok(!html.includes(hidden), `${hidden} is listed`);
    }
    assert.ok(!html.includes(secretText));
  });

  it('shows each file size in bytes and none for directories', async () => {
    const html = (await send(port, '/')).body.toString();
    assert.match(html, /<a href="\.\/b\.txt">b\.txt<\/a><\/td><td class="size">5<\/td>/);
    assert.match(html, /<a href="\.\/Z\.txt">Z\.txt<\/a><\/td><td class="size">2<\/td>/);
    assert.match(html, /<a href="\.\/docs\/">docs\/<\/a><\/td><td class="size">-<\/td>/);
  });

  it('links to the parent directory below the root only', async () => {
    assert.ok(!linksOf((await send(port, '/')).body.toString()).some((link) => link.href === '../'));
    const sub = await send(port, '/docs/');
    assert.equal(sub.status, 200);
    assert.match(sub.body.toString(), /<title>Index of \/docs\/<\/title>/);
    assert.deepEqual(linksOf(sub.body.toString()).map((link) => link.text), ['../', 'deeper/', 'guide.md']);
  });

  it('every link in a listing fetches what it names', async () => {
    for (const { href, text } of linksOf((await send(port, '/')).body.toString())) {
      const target = new URL(unescapeHtml(href), 'http://127.0.0.1/').pathname;
      const res = await send(port, target);
      assert.equal(res.status, 200, `${text} -> ${target}`);
    }
    assert.equal((await send(port, '/a%20b%23%3F%25.txt')).body.toString(), 'odd name');
  });

  it('serves the index file instead of a listing when the directory has one', async () => {
    const res = await send(port, '/with-index/');
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), '<h1>index wins</h1>');
  });

  it('still redirects a directory URL without a trailing slash', async () => {
    const res = await send(port, '/docs');
    assert.equal(res.status, 301);
    assert.equal(res.headers.location, '/docs/');
  });

  it('answers HEAD on a listing with its headers and no body', async () => {
    const get = await send(port, '/docs/');
    const head = await send(port, '/docs/', {}, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(head.headers['content-length'], String(get.body.length));
    assert.equal(head.body.length, 0);
  });

  it('answers 404 for a directory without an index file when directoryListing is off (the default)', async () => {
    const defaultPort = await fixture!.listen({});
    assert.equal((await send(defaultPort, '/')).status, 404);
    assert.equal((await send(defaultPort, '/docs/')).status, 404);
    const offPort = await fixture!.listen({ directoryListing: false });
    assert.equal((await send(offPort, '/docs/')).status, 404);
  });
});
