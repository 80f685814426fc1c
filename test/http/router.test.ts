// Tests for Router: pattern syntax and its errors, static > parameter > wildcard precedence with backtracking,
// decoding, trailing slashes, methods (405 allow lists, HEAD fallback, '*'), and a seeded property test that
// compares the trie against a naive matcher that tries every route.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Router, type RouteLookup } from '../../src/http/router.js';
import { seededRandom } from '../_support/recorder.js';

function routerOf(routes: ReadonlyArray<readonly [string, string]>): Router<string> {
  const router = new Router<string>();
  for (const [method, pattern] of routes) router.add(method, pattern, `${method} ${pattern}`);
  return router;
}

/** The matched route's value (`METHOD pattern`) and params, or the failure kind. */
function found(router: Router<string>, method: string, path: string): { value: string; params: Record<string, string> } {
  const result = router.match(method, path);
  assert.equal(result.kind, 'found', `${method} ${path} should be found, got ${JSON.stringify(result)}`);
  if (result.kind !== 'found') throw new Error('unreachable');
  return { value: result.match.value, params: { ...result.match.params } };
}

function kindOf(router: Router<string>, method: string, path: string): RouteLookup<string>['kind'] {
  return router.match(method, path).kind;
}

describe('Router', () => {
  describe('patterns', () => {
    it('matches static segments exactly and returns the pattern and value given to add', () => {
      const router = routerOf([['GET', '/'], ['GET', '/a'], ['GET', '/a/b']]);
      assert.deepEqual(router.match('GET', '/a/b'), {
        kind: 'found',
        match: { value: 'GET /a/b', params: {}, pattern: '/a/b' },
      });
      assert.equal(found(router, 'GET', '/').value, 'GET /');
      assert.equal(found(router, 'GET', '/a').value, 'GET /a');
      assert.equal(kindOf(router, 'GET', '/a/b/c'), 'not-found');
      assert.equal(kindOf(router, 'GET', '/b'), 'not-found');
    });

    it('is case-sensitive', () => {
      const router = routerOf([['GET', '/Users/:id']]);
      assert.equal(kindOf(router, 'GET', '/users/1'), 'not-found');
      assert.deepEqual(found(router, 'GET', '/Users/Bob').params, { id: 'Bob' });
    });

    it('exposes each parameter by name, one segment each', () => {
      const router = routerOf([['GET', '/rooms/:room/members/:member-id']]);
      assert.deepEqual(found(router, 'GET', '/rooms/lobby/members/42').params, { room: 'lobby', 'member-id': '42' });
      assert.equal(kindOf(router, 'GET', '/rooms/lobby/members'), 'not-found');
      assert.equal(kindOf(router, 'GET', '/rooms/lobby/members/42/x'), 'not-found');
    });

    it('treats a trailing slash as significant', () => {
      const router = routerOf([['GET', '/a'], ['GET', '/b/'], ['GET', '/p/:x']]);
      assert.equal(found(router, 'GET', '/a').value, 'GET /a');
      assert.equal(kindOf(router, 'GET', '/a/'), 'not-found');
      assert.equal(found(router, 'GET', '/b/').value, 'GET /b/');
      assert.equal(kindOf(router, 'GET', '/b'), 'not-found');
      assert.equal(kindOf(router, 'GET', '/p/1/'), 'not-found');
    });

    it('treats the root / as the empty path, not as one empty segment', () => {
      const router = routerOf([['GET', '/'], ['GET', '/:x']]);
      assert.deepEqual(found(router, 'GET', '/'), { value: 'GET /', params: {} });
      const paramsOnly = routerOf([['GET', '/:x']]);
      assert.equal(kindOf(paramsOnly, 'GET', '/'), 'not-found');
      assert.equal(paramsOnly.hasPath('/'), false);
    });

    it('never matches an empty segment with a parameter', () => {
      const router = routerOf([['GET', '/a/:x/b'], ['GET', '/c/:x']]);
      assert.equal(kindOf(router, 'GET', '/a//b'), 'not-found');
      assert.equal(kindOf(router, 'GET', '/c/'), 'not-found');
      assert.equal(kindOf(router, 'GET', '//'), 'not-found');
    });

    it('matches an empty static segment only where the pattern has one', () => {
      const router = routerOf([['GET', '/a//b']]);
      assert.equal(found(router, 'GET', '/a//b').value, 'GET /a//b');
      assert.equal(kindOf(router, 'GET', '/a/b'), 'not-found');
    });

    it('compares static segments with the path as received, still percent-encoded', () => {
      const router = routerOf([['GET', '/caf%C3%A9']]);
      assert.equal(found(router, 'GET', '/caf%C3%A9').value, 'GET /caf%C3%A9');
      assert.equal(kindOf(router, 'GET', '/café'), 'not-found');
      assert.equal(kindOf(router, 'GET', '/caf%c3%a9'), 'not-found');
    });

    it('returns not-found for a path that does not start with /', () => {
      const router = routerOf([['*', '/*'], ['GET', '/']]);
      assert.equal(kindOf(router, 'GET', ''), 'not-found');
      assert.equal(kindOf(router, 'OPTIONS', '*'), 'not-found');
      assert.equal(kindOf(router, 'GET', 'http://example.com/'), 'not-found');
      assert.equal(router.hasPath('a'), false);
    });
  });

  describe('wildcard', () => {
    it('exposes the remaining segments as params["*"] without a leading slash', () => {
      const router = routerOf([['GET', '/files/*']]);
      assert.deepEqual(found(router, 'GET', '/files/a/b.txt').params, { '*': 'a/b.txt' });
      assert.deepEqual(found(router, 'GET', '/files/a').params, { '*': 'a' });
      assert.deepEqual(found(router, 'GET', '/files/a/').params, { '*': 'a/' });
      assert.deepEqual(found(router, 'GET', '/files//x').params, { '*': '/x' });
    });

    it('gives "" for the directory with a trailing slash', () => {
      const router = routerOf([['GET', '/files/*']]);
      assert.deepEqual(found(router, 'GET', '/files/').params, { '*': '' });
    });

    it('also matches the bare directory name without a slash, with ""', () => {
      const router = routerOf([['GET', '/files/*']]);
      assert.deepEqual(found(router, 'GET', '/files').params, { '*': '' });
      assert.equal(router.hasPath('/files'), true);
      assert.equal(kindOf(router, 'GET', '/filesx'), 'not-found');
      assert.equal(kindOf(router, 'GET', '/'), 'not-found');
    });

    it('loses to an exact route for the bare directory name', () => {
      const router = routerOf([['GET', '/files/*'], ['GET', '/files']]);
      assert.equal(found(router, 'GET', '/files').value, 'GET /files');
      assert.equal(found(router, 'GET', '/files/').value, 'GET /files/*');
    });

    it('at the root matches every path, with / giving ""', () => {
      const router = routerOf([['GET', '/*']]);
      assert.deepEqual(found(router, 'GET', '/').params, { '*': '' });
      assert.deepEqual(found(router, 'GET', '/a/b/c').params, { '*': 'a/b/c' });
    });

    it('combines with parameters before it', () => {
      const router = routerOf([['GET', '/u/:user/files/*']]);
      assert.deepEqual(found(router, 'GET', '/u/ann/files/x/y').params, { user: 'ann', '*': 'x/y' });
      assert.deepEqual(found(router, 'GET', '/u/ann/files').params, { user: 'ann', '*': '' });
    });

    it('percent-decodes the remainder, so %2F becomes a slash', () => {
      const router = routerOf([['GET', '/files/*']]);
      assert.deepEqual(found(router, 'GET', '/files/a%20b/c%2Fd').params, { '*': 'a b/c/d' });
    });
  });

  describe('precedence', () => {
    it('prefers static over parameter over wildcard whatever the insertion order', () => {
      const patterns = ['/a/b', '/a/:x', '/a/*'];
      const orders = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
      for (const order of orders) {
        const router = routerOf(order.map((i) => ['GET', patterns[i]!] as const));
        assert.equal(found(router, 'GET', '/a/b').value, 'GET /a/b', `order ${order.join()}`);
        assert.deepEqual(found(router, 'GET', '/a/c'), { value: 'GET /a/:x', params: { x: 'c' } }, `order ${order.join()}`);
        assert.deepEqual(found(router, 'GET', '/a/c/d'), { value: 'GET /a/*', params: { '*': 'c/d' } }, `order ${order.join()}`);
        assert.deepEqual(found(router, 'GET', '/a'), { value: 'GET /a/*', params: { '*': '' } }, `order ${order.join()}`);
      }
    });

    it('backtracks from a static branch that fails deeper to the parameter branch', () => {
      for (const routes of [
        [['GET', '/a/:x/c'], ['GET', '/a/b/:y']],
        [['GET', '/a/b/:y'], ['GET', '/a/:x/c']],
      ] as const) {
        const router = routerOf(routes);
        assert.deepEqual(found(router, 'GET', '/a/b/c'), { value: 'GET /a/b/:y', params: { y: 'c' } });
        assert.deepEqual(found(router, 'GET', '/a/b/d'), { value: 'GET /a/b/:y', params: { y: 'd' } });
        assert.deepEqual(found(router, 'GET', '/a/z/c'), { value: 'GET /a/:x/c', params: { x: 'z' } });
        assert.equal(kindOf(router, 'GET', '/a/z/d'), 'not-found');
      }
    });

    it('backtracks to the wildcard, dropping parameter values from the abandoned branch', () => {
      const router = routerOf([['GET', '/a/:x/:y/end'], ['GET', '/a/:x/static'], ['GET', '/a/*']]);
      assert.deepEqual(found(router, 'GET', '/a/1/2/end'), { value: 'GET /a/:x/:y/end', params: { x: '1', y: '2' } });
      assert.deepEqual(found(router, 'GET', '/a/1/2/other'), { value: 'GET /a/*', params: { '*': '1/2/other' } });
      assert.deepEqual(found(router, 'GET', '/a/1/static'), { value: 'GET /a/:x/static', params: { x: '1' } });
    });

    it('prefers a deeper wildcard behind a static segment to a shallower one', () => {
      const router = routerOf([['GET', '/*'], ['GET', '/a/*'], ['GET', '/a/b/*']]);
      assert.deepEqual(found(router, 'GET', '/a/b/c').params, { '*': 'c' });
      assert.deepEqual(found(router, 'GET', '/a/x').params, { '*': 'x' });
      assert.deepEqual(found(router, 'GET', '/x').params, { '*': 'x' });
    });

    it('uses the parameter name of the route that matched when shapes share a node', () => {
      const router = routerOf([['GET', '/u/:id'], ['POST', '/u/:name']]);
      assert.deepEqual(found(router, 'GET', '/u/1').params, { id: '1' });
      assert.deepEqual(found(router, 'POST', '/u/1').params, { name: '1' });
    });
  });

  describe('decoding', () => {
    it('percent-decodes parameter values', () => {
      const router = routerOf([['GET', '/p/:x']]);
      assert.deepEqual(found(router, 'GET', '/p/caf%C3%A9').params, { x: 'café' });
      assert.deepEqual(found(router, 'GET', '/p/a%20b').params, { x: 'a b' });
      assert.deepEqual(found(router, 'GET', '/p/a%2Fb').params, { x: 'a/b' });
      assert.deepEqual(found(router, 'GET', '/p/a+b').params, { x: 'a+b' }, '+ is not a space in a path');
    });

    it('gives not-found, never a throw, for a malformed escape', () => {
      const router = routerOf([['GET', '/p/:x'], ['GET', '/files/*']]);
      for (const path of ['/p/%', '/p/%zz', '/p/a%2', '/p/%C3', '/p/%FF', '/files/a/%zz', '/files/%E0%A4']) {
        assert.deepEqual(router.match('GET', path), { kind: 'not-found' }, path);
        assert.equal(router.hasPath(path), false, path);
      }
    });

    it('falls back to a less specific route when a parameter cannot be decoded', () => {
      const router = routerOf([['GET', '/p/:x'], ['GET', '/p/%zz']]);
      assert.equal(found(router, 'GET', '/p/%zz').value, 'GET /p/%zz');
      assert.equal(kindOf(router, 'GET', '/p/%zy'), 'not-found');
    });

    it('keeps a parameter named __proto__ as an own property', () => {
      const router = routerOf([['GET', '/p/:__proto__']]);
      const result = router.match('GET', '/p/x');
      assert.equal(result.kind, 'found');
      if (result.kind !== 'found') return;
      assert.equal(Object.getPrototypeOf(result.match.params), Object.prototype);
      assert.deepEqual(Object.entries(result.match.params), [['__proto__', 'x']]);
    });
  });

  describe('methods', () => {
    it('answers method-not-allowed with a sorted allow list when the path matches under other methods', () => {
      const router = routerOf([['POST', '/a'], ['DELETE', '/a'], ['PUT', '/a']]);
      assert.deepEqual(router.match('GET', '/a'), { kind: 'method-not-allowed', allow: ['DELETE', 'POST', 'PUT'] });
    });

    it('lists HEAD when GET is allowed', () => {
      const router = routerOf([['GET', '/a'], ['POST', '/a']]);
      assert.deepEqual(router.match('PATCH', '/a'), { kind: 'method-not-allowed', allow: ['GET', 'HEAD', 'POST'] });
    });

    it('collects the allow list from every pattern that matches the path', () => {
      const router = routerOf([['GET', '/u/me'], ['DELETE', '/u/:id'], ['PUT', '/*'], ['POST', '/x/:id']]);
      assert.deepEqual(router.match('PATCH', '/u/me'), { kind: 'method-not-allowed', allow: ['DELETE', 'GET', 'HEAD', 'PUT'] });
    });

    it('tries a less specific pattern when the most specific has no route for the method', () => {
      const router = routerOf([['GET', '/u/me'], ['DELETE', '/u/:id']]);
      assert.deepEqual(found(router, 'DELETE', '/u/me'), { value: 'DELETE /u/:id', params: { id: 'me' } });
      assert.equal(found(router, 'GET', '/u/me').value, 'GET /u/me');
      assert.deepEqual(router.match('GET', '/u/you'), { kind: 'method-not-allowed', allow: ['DELETE'] });
    });

    it('serves HEAD from the GET route when no HEAD route exists', () => {
      const router = routerOf([['GET', '/a']]);
      assert.equal(found(router, 'HEAD', '/a').value, 'GET /a');
    });

    it('serves HEAD from an explicit HEAD route when one exists', () => {
      const router = routerOf([['GET', '/a'], ['HEAD', '/a']]);
      assert.equal(found(router, 'HEAD', '/a').value, 'HEAD /a');
      assert.equal(found(router, 'GET', '/a').value, 'GET /a');
    });

    it('serves HEAD from the most specific pattern\'s GET route before a less specific HEAD route', () => {
      const router = routerOf([['GET', '/a/b'], ['HEAD', '/a/:x']]);
      assert.equal(found(router, 'HEAD', '/a/b').value, 'GET /a/b');
      assert.equal(found(router, 'HEAD', '/a/c').value, 'HEAD /a/:x');
    });

    it('does not serve GET from a HEAD route', () => {
      const router = routerOf([['HEAD', '/a']]);
      assert.deepEqual(router.match('GET', '/a'), { kind: 'method-not-allowed', allow: ['HEAD'] });
    });

    it('lets a * route match any method, after the exact method and after GET for HEAD', () => {
      const router = routerOf([['*', '/a'], ['GET', '/a']]);
      assert.equal(found(router, 'POST', '/a').value, '* /a');
      assert.equal(found(router, 'BREW', '/a').value, '* /a');
      assert.equal(found(router, 'GET', '/a').value, 'GET /a');
      assert.equal(found(router, 'HEAD', '/a').value, 'GET /a');
      const anyOnly = routerOf([['*', '/b/:x']]);
      assert.deepEqual(found(anyOnly, 'HEAD', '/b/1'), { value: '* /b/:x', params: { x: '1' } });
    });

    it('prefers a more specific pattern\'s * route to a less specific pattern\'s exact route', () => {
      const router = routerOf([['*', '/a/b'], ['GET', '/a/:x']]);
      assert.equal(found(router, 'GET', '/a/b').value, '* /a/b');
    });

    it('treats methods as case-sensitive', () => {
      const router = routerOf([['GET', '/a']]);
      assert.deepEqual(router.match('get', '/a'), { kind: 'method-not-allowed', allow: ['GET', 'HEAD'] });
    });

    it('says not-found, not method-not-allowed, when no pattern matches the path', () => {
      const router = routerOf([['POST', '/a']]);
      assert.deepEqual(router.match('GET', '/b'), { kind: 'not-found' });
    });
  });

  describe('hasPath', () => {
    it('is true when some route matches the path under any method', () => {
      const router = routerOf([['POST', '/a/:x'], ['DELETE', '/f/*']]);
      assert.equal(router.hasPath('/a/1'), true);
      assert.equal(router.hasPath('/f/x/y'), true);
      assert.equal(router.hasPath('/f'), true);
      assert.equal(router.hasPath('/a'), false);
      assert.equal(router.hasPath('/a/1/2'), false);
      assert.equal(router.hasPath('/a/'), false);
    });

    it('is false for an empty router', () => {
      const router = new Router<string>();
      assert.equal(router.hasPath('/'), false);
      assert.deepEqual(router.match('GET', '/'), { kind: 'not-found' });
    });
  });

  describe('add', () => {
    it('throws TypeError for a duplicate method and pattern', () => {
      const router = routerOf([['GET', '/a/:x']]);
      assert.throws(() => router.add('GET', '/a/:x', 'again'), { name: 'TypeError', message: /duplicate route: GET \/a\/:x/ });
    });

    it('counts differently named parameters at the same position as the same pattern', () => {
      const router = routerOf([['GET', '/a/:x/c']]);
      assert.throws(() => router.add('GET', '/a/:y/c', 'again'), { name: 'TypeError', message: /same shape as \/a\/:x\/c/ });
      const wildcard = routerOf([['*', '/f/*']]);
      assert.throws(() => wildcard.add('*', '/f/*', 'again'), TypeError);
    });

    it('allows the same pattern under different methods, including *', () => {
      const router = routerOf([['GET', '/a'], ['POST', '/a'], ['*', '/a'], ['HEAD', '/a']]);
      assert.equal(found(router, 'POST', '/a').value, 'POST /a');
    });

    it('keeps the first route when a duplicate is refused', () => {
      const router = routerOf([['GET', '/a/:x']]);
      assert.throws(() => router.add('GET', '/a/:y', 'again'));
      assert.deepEqual(found(router, 'GET', '/a/1'), { value: 'GET /a/:x', params: { x: '1' } });
    });

    it('throws TypeError for malformed patterns', () => {
      const router = new Router<string>();
      const malformed: ReadonlyArray<readonly [string, RegExp]> = [
        ['', /must start with '\/'/],
        ['a/b', /must start with '\/'/],
        ['*', /must start with '\/'/],
        ['/a/:', /empty parameter name/],
        ['/:/b', /empty parameter name/],
        ['/:x/:x', /repeats the parameter ':x'/],
        ['/a/:id/b/:id', /repeats the parameter ':id'/],
        ['/*/a', /only as its last segment/],
        ['/a/*/', /only as its last segment/],
        ['/a/*.png', /only as a whole segment/],
        ['/a/:id.json', /parameter names are/],
        ['/a/:*', /parameter names are/],
        ['/a?b=1', /must not contain '\?' or '#'/],
        ['/a#top', /must not contain '\?' or '#'/],
      ];
      for (const [pattern, message] of malformed) {
        assert.throws(() => router.add('GET', pattern, pattern), { name: 'TypeError', message }, JSON.stringify(pattern));
      }
      assert.equal(router.hasPath('/a/b'), false, 'a refused pattern leaves no route behind');
    });

    it('throws TypeError for a method that is not a token or *', () => {
      const router = new Router<string>();
      for (const method of ['', 'GE T', 'GET\n', 'GÉT']) {
        assert.throws(() => router.add(method, '/a', 'x'), TypeError, JSON.stringify(method));
      }
    });
  });

  describe('against a naive matcher', () => {
    it('agrees on random routes and paths (seeded)', () => {
      const random = seededRandom(0x5eed_2024);
      const pick = <V>(items: readonly V[]): V => items[Math.floor(random() * items.length)]!;
      const staticTexts = ['a', 'b', 'c', ''];
      const pathTexts = ['a', 'b', 'c', '', 'x', '%41', '%zz', 'a%20b', '%C3%A9', '%2F'];
      const methods = ['GET', 'POST', 'HEAD', '*'];
      const requestMethods = ['GET', 'POST', 'HEAD', 'PUT'];
      let compared = 0;
      let foundCount = 0;
      let notAllowedCount = 0;
      for (let round = 0; round < 300; round++) {
        const router = new Router<number>();
        const reference: ReferenceRoute[] = [];
        const routeCount = 1 + Math.floor(random() * 12);
        for (let r = 0; r < routeCount; r++) {
          const length = Math.floor(random() * 4);
          const segments: string[] = [];
          for (let s = 0; s < length; s++) {
            const roll = random();
            if (roll < 0.55) segments.push(pick(staticTexts));
            else if (roll < 0.85) segments.push(`:p${s}${pick(['', 'n'])}`);
            else if (s === length - 1) segments.push('*');
            else segments.push(pick(staticTexts));
          }
          const pattern = '/' + segments.join('/');
          const method = pick(methods);
          const route: ReferenceRoute = { method, pattern, segments: pattern === '/' ? [] : segments, value: r };
          const duplicate = reference.some((other) => other.method === method && shapeOf(other) === shapeOf(route));
          if (duplicate) {
            assert.throws(() => router.add(method, pattern, r), TypeError, `${method} ${pattern} is a duplicate`);
          } else {
            router.add(method, pattern, r);
            reference.push(route);
          }
        }
        for (let q = 0; q < 40; q++) {
          const length = Math.floor(random() * 5);
          const path = length === 0 ? '/' : '/' + Array.from({ length }, () => pick(pathTexts)).join('/');
          const method = pick(requestMethods);
          const expected = referenceMatch(reference, method, path);
          const actual = router.match(method, path);
          const context = `round ${round}: ${method} ${path} against ${reference.map((route) => `${route.method} ${route.pattern}`).join(', ')}`;
          assert.deepEqual(normalize(actual), expected, context);
          assert.equal(router.hasPath(path), reference.some((route) => matchPattern(route.segments, path) !== undefined), context);
          compared++;
          if (actual.kind === 'found') foundCount++;
          if (actual.kind === 'method-not-allowed') notAllowedCount++;
        }
      }
      assert.equal(compared, 12_000);
      // The generator must exercise every outcome, or the agreement says little.
      assert.ok(foundCount > 1000, `found ${foundCount}`);
      assert.ok(notAllowedCount > 100, `method-not-allowed ${notAllowedCount}`);
    });
  });
});

// ---- the naive matcher: try every route, rank by specificity ----

interface ReferenceRoute {
  method: string;
  pattern: string;
  segments: string[];
  value: number;
}

type Normalized =
  | { kind: 'found'; value: number; params: Record<string, string>; pattern: string }
  | { kind: 'method-not-allowed'; allow: string[] }
  | { kind: 'not-found' };

function normalize(result: RouteLookup<number>): Normalized {
  if (result.kind !== 'found') return result;
  return { kind: 'found', value: result.match.value, params: { ...result.match.params }, pattern: result.match.pattern };
}

function shapeOf(route: ReferenceRoute): string {
  return route.segments.map((segment) => (segment.startsWith(':') ? ':' : segment === '*' ? '*' : `=${segment}`)).join('/');
}

function tryDecode(raw: string): string | undefined {
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

/** Matches one pattern against a path: its params plus a rank (0 static, 1 param, 2 wildcard per segment). */
function matchPattern(pattern: readonly string[], path: string): { params: Record<string, string>; rank: number[] } | undefined {
  const segments = path === '/' ? [] : path.slice(1).split('/');
  const params: Record<string, string> = {};
  const rank: number[] = [];
  for (let i = 0; i < pattern.length; i++) {
    const part = pattern[i]!;
    if (part === '*') {
      const rest = tryDecode(segments.slice(i).join('/'));
      if (rest === undefined) return undefined;
      params['*'] = rest;
      rank.push(2);
      return { params, rank };
    }
    const segment = segments[i];
    if (segment === undefined) return undefined;
    if (part.startsWith(':')) {
      const value = segment === '' ? undefined : tryDecode(segment);
      if (value === undefined) return undefined;
      params[part.slice(1)] = value;
      rank.push(1);
    } else {
      if (part !== segment) return undefined;
      rank.push(0);
    }
  }
  return segments.length === pattern.length ? { params, rank } : undefined;
}

/** Lexicographic on the ranks, a proper prefix first (an exact pattern beats the same one with a final `*`). */
function compareRanks(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!;
  }
  return a.length - b.length;
}

function referenceMatch(routes: readonly ReferenceRoute[], method: string, path: string): Normalized {
  const matching = routes
    .map((route) => ({ route, result: matchPattern(route.segments, path) }))
    .filter((entry): entry is { route: ReferenceRoute; result: NonNullable<ReturnType<typeof matchPattern>> } => entry.result !== undefined);
  if (matching.length === 0) return { kind: 'not-found' };
  // Group by shape (routes of one shape share a trie node), most specific shape first.
  const shapes = [...new Set(matching.map((entry) => shapeOf(entry.route)))];
  const rankOf = (shape: string) => matching.find((entry) => shapeOf(entry.route) === shape)!.result.rank;
  shapes.sort((a, b) => compareRanks(rankOf(a), rankOf(b)));
  for (const shape of shapes) {
    const here = matching.filter((entry) => shapeOf(entry.route) === shape);
    const chosen =
      here.find((entry) => entry.route.method === method) ??
      (method === 'HEAD' ? here.find((entry) => entry.route.method === 'GET') : undefined) ??
      here.find((entry) => entry.route.method === '*');
    if (chosen !== undefined) {
      return { kind: 'found', value: chosen.route.value, params: chosen.result.params, pattern: chosen.route.pattern };
    }
  }
  const allow = new Set(matching.map((entry) => entry.route.method));
  if (allow.has('GET')) allow.add('HEAD');
  return { kind: 'method-not-allowed', allow: [...allow].sort() };
}

