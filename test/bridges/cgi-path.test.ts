// Tests for finding the script a request names (src/bridges/cgi-path.ts): the mount/wildcard split on raw
// segments, SCRIPT_NAME/PATH_INFO, and every way a path could reach outside the cgi-bin directory, which must
// give 400 (hostile or malformed) or 404 (hidden or nothing runnable), never a script. Also end to end over raw
// sockets, since fetch would normalise the hostile paths away.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { CgiScriptResolver, splitMount, underMount, type ScriptLookup } from '../../src/bridges/cgi-path.js';
import { makeCgiBin, request, startCgiServer } from './cgi-fixtures/harness.js';

const ok = '#!/bin/sh\necho "Content-Type: text/plain"\necho\necho "ran $SCRIPT_NAME"\n';

describe('splitMount', () => {
  it('splits at the start of the wildcard, keeping raw segments under it', () => {
    assert.deepEqual(splitMount('/cgi-bin/app.cgi/extra/path', 'app.cgi/extra/path'), { mountPath: '/cgi-bin', rawSegments: ['app.cgi', 'extra', 'path'] });
    assert.deepEqual(splitMount('/a/b/cgi/x.cgi/', 'x.cgi/'), { mountPath: '/a/b/cgi', rawSegments: ['x.cgi', ''] });
  });

  it('works from raw segments when the wildcard holds a decoded %2F', () => {
    assert.deepEqual(splitMount('/cgi-bin/a%2Fb.cgi', 'a/b.cgi'), { mountPath: '/cgi-bin', rawSegments: ['a%2Fb.cgi'] });
  });

  it('an empty wildcard: everything is the mount, a trailing slash included', () => {
    assert.deepEqual(splitMount('/cgi-bin', ''), { mountPath: '/cgi-bin', rawSegments: [] });
    assert.deepEqual(splitMount('/cgi-bin/', ''), { mountPath: '/cgi-bin', rawSegments: [] });
    assert.deepEqual(splitMount('/cgi-bin/x', undefined), { mountPath: '/cgi-bin/x', rawSegments: [] });
  });

  it('a mount at the root', () => {
    assert.deepEqual(splitMount('/app.cgi/x', 'app.cgi/x'), { mountPath: '', rawSegments: ['app.cgi', 'x'] });
  });

  it('decodes the mount path; undefined when no tail decodes to the wildcard', () => {
    assert.deepEqual(splitMount('/c%67i/x.cgi', 'x.cgi'), { mountPath: '/cgi', rawSegments: ['x.cgi'] });
    assert.equal(splitMount('/cgi-bin/x.cgi', 'y.cgi'), undefined);
  });
});

describe('underMount', () => {
  it('gives the raw segments under the mount, or undefined outside it', () => {
    assert.deepEqual(underMount('/cgi-bin', '/cgi-bin/a.cgi/x'), ['a.cgi', 'x']);
    assert.deepEqual(underMount('/cgi-bin', '/cgi-bin'), []);
    assert.equal(underMount('/cgi-bin', '/static/a.html'), undefined);
    assert.equal(underMount('/cgi-bin', '/cgi-binary/a.cgi'), undefined);
    assert.deepEqual(underMount('', '/a.cgi'), ['a.cgi']);
  });
});

describe('CgiScriptResolver', () => {
  async function setUp(t: import('node:test').TestContext): Promise<{ resolver: CgiScriptResolver; directory: string; resolve: (segments: string[]) => Promise<ScriptLookup> }> {
    const directory = await makeCgiBin(t, {
      'app.cgi': ok,
      'sub/deep.cgi': ok,
      'plain.txt': { text: 'not executable', mode: 0o644 },
      '.hidden.cgi': ok,
      '.private/inside.cgi': ok,
    });
    const outside = path.join(path.dirname(directory), 'outside.cgi');
    await fsp.writeFile(outside, ok, { mode: 0o755 });
    await fsp.symlink(outside, path.join(directory, 'escape.cgi'));
    await fsp.symlink('..', path.join(directory, 'up'));
    await fsp.symlink('app.cgi', path.join(directory, 'alias.cgi'));
    await fsp.symlink('.hidden.cgi', path.join(directory, 'to-hidden.cgi'));
    await fsp.symlink('/nonexistent/x', path.join(directory, 'broken.cgi'));
    const resolver = new CgiScriptResolver(directory);
    return { resolver, directory, resolve: (segments) => resolver.resolve('/cgi-bin', segments) };
  }

  it('finds the script and splits SCRIPT_NAME and PATH_INFO (decoded; empty segments and a trailing slash kept)', async (t) => {
    const { resolve, directory } = await setUp(t);
    const real = await fsp.realpath(directory);
    assert.deepEqual(await resolve(['app.cgi']), { kind: 'script', realPath: path.join(real, 'app.cgi'), scriptName: '/cgi-bin/app.cgi', pathInfo: '' });
    assert.deepEqual(await resolve(['app.cgi', 'extra', 'path']), { kind: 'script', realPath: path.join(real, 'app.cgi'), scriptName: '/cgi-bin/app.cgi', pathInfo: '/extra/path' });
    assert.deepEqual(await resolve(['app.cgi', '']), { kind: 'script', realPath: path.join(real, 'app.cgi'), scriptName: '/cgi-bin/app.cgi', pathInfo: '/' });
    assert.deepEqual(await resolve(['sub', 'deep.cgi', 'a%20b', '', 'c']), { kind: 'script', realPath: path.join(real, 'sub', 'deep.cgi'), scriptName: '/cgi-bin/sub/deep.cgi', pathInfo: '/a b//c' });
    assert.equal((await resolve(['%61pp.cgi'])).kind, 'script', 'an encoded name is the same name');
    // PATH_INFO may name dotfiles: it is the script's business, not a file we open.
    assert.deepEqual(await resolve(['app.cgi', '.well-known', 'x']), { kind: 'script', realPath: path.join(real, 'app.cgi'), scriptName: '/cgi-bin/app.cgi', pathInfo: '/.well-known/x' });
  });

  it('a symlink inside the directory to a script inside it runs that script, under the requested name', async (t) => {
    const { resolve, directory } = await setUp(t);
    assert.deepEqual(await resolve(['alias.cgi', 'x']), { kind: 'script', realPath: path.join(await fsp.realpath(directory), 'app.cgi'), scriptName: '/cgi-bin/alias.cgi', pathInfo: '/x' });
  });

  const refusals: ReadonlyArray<readonly [string, string[], 400 | 403 | 404]> = [
    ['`..`', ['..', 'outside.cgi'], 400],
    ['`..` in PATH_INFO', ['app.cgi', '..', 'x'], 400],
    ['`.`', ['.', 'app.cgi'], 400],
    ['encoded dots (%2e%2e)', ['%2e%2e', 'outside.cgi'], 400],
    ['mixed-case encoded dots (%2E.)', ['%2E.', 'outside.cgi'], 400],
    ['an encoded slash', ['sub%2Fdeep.cgi'], 400],
    ['an encoded backslash', ['..%5Coutside.cgi'], 400],
    ['a raw backslash', ['..\\outside.cgi'], 400],
    ['an encoded NUL', ['app.cgi%00.txt'], 400],
    ['a malformed escape', ['app%zz.cgi'], 400],
    ['a dotfile script', ['.hidden.cgi'], 404],
    ['an encoded dotfile', ['%2ehidden.cgi'], 404],
    ['a script in a dot directory', ['.private', 'inside.cgi'], 404],
    ['a symlink to a file outside the directory', ['escape.cgi'], 404],
    ['a symlink to the parent directory', ['up', 'outside.cgi'], 404],
    ['a symlink to a dotfile', ['to-hidden.cgi'], 404],
    ['a broken symlink', ['broken.cgi'], 404],
    ['a missing script', ['missing.cgi'], 404],
    ['a file that is not executable', ['plain.txt'], 404],
    ['a path through a file that is not executable', ['plain.txt', 'x'], 404],
    ['a directory', ['sub'], 403],
    ['a directory with a trailing slash', ['sub', ''], 403],
    ['the directory itself', [], 403],
  ];
  for (const [what, segments, status] of refusals) {
    it(`refuses ${what} with ${status}`, async (t) => {
      const { resolve } = await setUp(t);
      const lookup = await resolve(segments);
      assert.equal(lookup.kind, 'refused', JSON.stringify(lookup));
      assert.equal(lookup.kind === 'refused' && lookup.status, status, JSON.stringify(lookup));
    });
  }

  it('a directory that does not exist yet is 404, and found once it is created', async (t) => {
    const base = await makeCgiBin(t, {});
    const later = path.join(base, 'later');
    const resolver = new CgiScriptResolver(later);
    assert.equal((await resolver.resolve('/cgi-bin', ['app.cgi'])).kind, 'refused');
    await fsp.mkdir(later);
    await fsp.writeFile(path.join(later, 'app.cgi'), ok, { mode: 0o755 });
    assert.equal((await resolver.resolve('/cgi-bin', ['app.cgi'])).kind, 'script');
  });
});

describe('cgiHandler: hostile paths end to end (raw requests)', () => {
  it('answers 400/404/403 and never runs anything outside the directory', async (t) => {
    const directory = await makeCgiBin(t, { 'app.cgi': ok, '.hidden.cgi': ok, 'sub/deep.cgi': ok });
    const outside = path.join(path.dirname(directory), 'outside.cgi');
    await fsp.writeFile(outside, '#!/bin/sh\necho "Content-Type: text/plain"\necho\necho ESCAPED\n', { mode: 0o755 });
    await fsp.symlink(outside, path.join(directory, 'escape.cgi'));
    const server = await startCgiServer(t, directory);
    const expectations: ReadonlyArray<readonly [string, number]> = [
      ['/cgi-bin/app.cgi', 200],
      ['/cgi-bin/../outside.cgi', 400],
      ['/cgi-bin/%2e%2e/outside.cgi', 400],
      ['/cgi-bin/sub/..%2f..%2foutside.cgi', 400],
      ['/cgi-bin/app.cgi%00', 400],
      ['/cgi-bin/.hidden.cgi', 404],
      ['/cgi-bin/escape.cgi', 404],
      ['/cgi-bin/missing.cgi', 404],
      ['/cgi-bin/sub', 403],
      ['/cgi-bin/', 403],
      ['/cgi-bin', 403],
    ];
    for (const [target, status] of expectations) {
      const response = await request(server.port, 'GET', target);
      assert.equal(response.status, status, `${target}: ${response.body.toString()}`);
      assert.doesNotMatch(response.body.toString(), /ESCAPED/, target);
    }
  });
});
