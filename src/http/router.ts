// Maps a request's method and path to the route that handles it: a segment trie (one node per pattern segment)
// with static > parameter > wildcard precedence at every position. Pure: no I/O, generic over what a route
// holds, so the server keeps HTTP handlers and WebSocket routes in separate routers.

/** Route parameters by name; a trailing wildcard is under `'*'`. Values are percent-decoded. */
export type Params = Readonly<Record<string, string>>;

export interface RouteMatch<T> {
  /** What was given to `add()`. */
  value: T;
  params: Params;
  /** The pattern exactly as given to `add()`, e.g. `/rooms/:room` (useful for logs and metrics labels). */
  pattern: string;
}

/** The outcome of `Router.match()`. `allow` is sorted, never contains `'*'`, and has HEAD whenever it has GET. */
export type RouteLookup<T> =
  | { kind: 'found'; match: RouteMatch<T> }
  | { kind: 'method-not-allowed'; allow: string[] }
  | { kind: 'not-found' };

interface Route<T> {
  readonly value: T;
  readonly pattern: string;
  /** One name per parameter position, in path order; `'*'` last for a wildcard pattern. */
  readonly paramNames: readonly string[];
}

class TrieNode<T> {
  staticChildren: Map<string, TrieNode<T>> | undefined = undefined;
  paramChild: TrieNode<T> | undefined = undefined;
  wildcardChild: TrieNode<T> | undefined = undefined;
  /** Routes that end here, by method (`'*'` for any method). */
  routes: Map<string, Route<T>> | undefined = undefined;
}

type PatternSegment =
  | { readonly kind: 'static'; readonly text: string }
  | { readonly kind: 'param'; readonly name: string }
  | { readonly kind: 'wildcard' };

// RFC 9110 §9.1: a method is a token (§5.6.2).
const methodToken = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Parameter names are word characters and hyphens; rejecting anything else catches `:id.json` (which would
// otherwise silently name a parameter "id.json" instead of matching a suffix, which this router does not do).
const paramName = /^[A-Za-z0-9_-]+$/;
const emptyParams: Params = Object.freeze({});

/**
 * Routes by method and path.
 *
 * Patterns start with `/` and are split on `/` into segments:
 * - a static segment matches the same text exactly (case-sensitive). It is compared with the path as received,
 *   still percent-encoded, so write non-ASCII or reserved characters encoded (`/caf%C3%A9`);
 * - `:name` matches any one non-empty segment and exposes it, percent-decoded, as `params.name`;
 * - a final `*` matches zero or more remaining segments and exposes them, joined by `/`, without a leading slash,
 *   percent-decoded, as `params['*']`. So `/files/*` matches `/files/a/b.txt` (`'a/b.txt'`), `/files/` (`''`)
 *   **and `/files` (`''`)**: a wildcard directory also answers for the bare directory name, unless a route for
 *   `/files` itself exists, which is more specific and wins. Because the value is decoded, `%2F` in it becomes
 *   `/` like a real separator: code that needs the segment structure (a proxy forwarding the raw path, a file
 *   server guarding against `..`) must work from the raw path or check the decoded value itself.
 *
 * Matching rules:
 * - at each position a static segment beats a parameter, which beats a wildcard, whatever the insertion order;
 *   when the more specific branch fails further on, the next one is tried (`/a/b/:y` and `/a/:x/c` both exist:
 *   `/a/b/c` and `/a/b/d` go to the first, `/a/z/c` to the second);
 * - a trailing slash is significant (`/a` and `/a/` are different paths), except that `/` is just the root;
 * - an empty segment (`//`, or the one after a trailing slash) never matches a parameter; it matches only an
 *   empty static segment (a pattern that ends in `/`) or a wildcard;
 * - a segment whose percent-escapes are malformed (`%zz`, or bytes that are not UTF-8) never matches a parameter
 *   or wildcard, so such a path is at worst not-found; matching never throws;
 * - the most specific pattern that has a route for the method wins: its exact method first, then (for HEAD
 *   only) its GET route, then its `'*'` route; a less specific pattern is tried only when the more specific one
 *   has none of these. So HEAD is served by a GET route unless an explicit HEAD route is at least as specific;
 * - when some pattern matches the path but none has a route for the method, the result is
 *   `method-not-allowed` with the methods those patterns accept.
 * Methods are case-sensitive tokens (RFC 9110 §9.1); the server passes Node's `req.method` unchanged.
 *
 * Cost: a request visits each trie node at most once (a node sits at one depth, so it is tried against only one
 * path segment), and the common case — static segments and parameters without dead ends — is one map lookup
 * per segment. No regular expression runs per route.
 */
export class Router<T> {
  readonly #root = new TrieNode<T>();

  /**
   * Adds a route. `method` is an HTTP method token (`'GET'`, `'POST'`, ...) or `'*'` for any method.
   * Throws TypeError for a malformed pattern (not starting with `/`, containing `?` or `#`, an empty or invalid
   * parameter name, a repeated parameter name, `*` anywhere but as the whole last segment) and for a duplicate:
   * the same method with the same pattern, where parameters count as the same whatever their names
   * (`/a/:x` duplicates `/a/:y`).
   */
  add(method: string, pattern: string, value: T): void {
    if (typeof method !== 'string' || (method !== '*' && !methodToken.test(method))) {
      throw new TypeError(`route method must be an HTTP method token or '*', got ${JSON.stringify(method)}`);
    }
    const segments = parsePattern(pattern);
    let node = this.#root;
    const paramNames: string[] = [];
    for (const segment of segments) {
      if (segment.kind === 'static') {
        node.staticChildren ??= new Map();
        let child = node.staticChildren.get(segment.text);
        if (child === undefined) {
          child = new TrieNode<T>();
          node.staticChildren.set(segment.text, child);
        }
        node = child;
      } else if (segment.kind === 'param') {
        paramNames.push(segment.name);
        node = node.paramChild ??= new TrieNode<T>();
      } else {
        paramNames.push('*');
        node = node.wildcardChild ??= new TrieNode<T>();
      }
    }
    node.routes ??= new Map();
    const existing = node.routes.get(method);
    if (existing !== undefined) {
      const same = existing.pattern === pattern ? '' : ` (same shape as ${existing.pattern})`;
      throw new TypeError(`duplicate route: ${method} ${pattern}${same}`);
    }
    node.routes.set(method, { value, pattern, paramNames });
  }

  /** Finds the route for a request path (already split from the query; still percent-encoded). Never throws. */
  match(method: string, path: string): RouteLookup<T> {
    const segments = splitPath(path);
    if (segments === undefined) return { kind: 'not-found' };
    const values: string[] = [];
    const refused: TrieNode<T>[] = [];
    const route = this.#find(this.#root, segments, 0, values, method, refused);
    if (route !== undefined) {
      return { kind: 'found', match: { value: route.value, params: buildParams(route.paramNames, values), pattern: route.pattern } };
    }
    if (refused.length === 0) return { kind: 'not-found' };
    const allow = new Set<string>();
    for (const node of refused) {
      for (const routeMethod of node.routes!.keys()) allow.add(routeMethod);
    }
    if (allow.has('GET')) allow.add('HEAD');
    return { kind: 'method-not-allowed', allow: [...allow].sort() };
  }

  /** True when some route's pattern matches the path, for any method. */
  hasPath(path: string): boolean {
    const segments = splitPath(path);
    return segments !== undefined && this.#find(this.#root, segments, 0, [], undefined, undefined) !== undefined;
  }

  /**
   * Depth-first search in precedence order (static, parameter, wildcard), so the first route accepted is the
   * most specific. `values` is a stack of parameter values along the current branch; on success it holds exactly
   * the accepted route's values. `method` undefined accepts any route (hasPath). Nodes whose pattern matched but
   * had no route for the method are collected in `refused` (for the 405 allow list).
   */
  #find(
    node: TrieNode<T>,
    segments: readonly string[],
    index: number,
    values: string[],
    method: string | undefined,
    refused: TrieNode<T>[] | undefined,
  ): Route<T> | undefined {
    if (index === segments.length) {
      if (node.routes !== undefined) {
        const route = pickRoute(node, method, refused);
        if (route !== undefined) return route;
      }
      // A trailing wildcard also matches zero segments: `/files/*` answers `/files` with ''.
      const wildcard = node.wildcardChild;
      if (wildcard !== undefined) {
        values.push('');
        const route = pickRoute(wildcard, method, refused);
        if (route !== undefined) return route;
        values.pop();
      }
      return undefined;
    }

    const segment = segments[index]!;
    const staticChild = node.staticChildren?.get(segment);
    if (staticChild !== undefined) {
      const route = this.#find(staticChild, segments, index + 1, values, method, refused);
      if (route !== undefined) return route;
    }

    const paramChild = node.paramChild;
    if (paramChild !== undefined && segment !== '') {
      const decoded = decodeSegment(segment);
      if (decoded !== undefined) {
        values.push(decoded);
        const route = this.#find(paramChild, segments, index + 1, values, method, refused);
        if (route !== undefined) return route;
        values.pop();
      }
    }

    const wildcard = node.wildcardChild;
    if (wildcard !== undefined) {
      const rest = index === segments.length - 1 ? segment : segments.slice(index).join('/');
      const decoded = decodeSegment(rest);
      if (decoded !== undefined) {
        values.push(decoded);
        const route = pickRoute(wildcard, method, refused);
        if (route !== undefined) return route;
        values.pop();
      }
    }
    return undefined;
  }
}

/** The route a node offers for a method: the exact method, then GET for HEAD, then `'*'`; any for undefined. */
function pickRoute<T>(node: TrieNode<T>, method: string | undefined, refused: TrieNode<T>[] | undefined): Route<T> | undefined {
  const routes = node.routes;
  if (routes === undefined) return undefined;
  if (method === undefined) return routes.values().next().value;
  const route =
    routes.get(method) ?? (method === 'HEAD' ? routes.get('GET') : undefined) ?? routes.get('*');
  if (route === undefined) refused?.push(node);
  return route;
}

/** Splits a path into segments: `/` is none, `/a/` is `['a', '']`. Undefined for a path not starting with `/`. */
function splitPath(path: string): string[] | undefined {
  if (typeof path !== 'string' || path.charCodeAt(0) !== 0x2f /* / */) return undefined;
  return path.length === 1 ? [] : path.slice(1).split('/');
}

function decodeSegment(raw: string): string | undefined {
  if (!raw.includes('%')) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined; // URIError: a malformed escape or bytes that are not UTF-8
  }
}

function buildParams(names: readonly string[], values: readonly string[]): Params {
  if (names.length === 0) return emptyParams;
  const params: Record<string, string> = {};
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    const value = values[i]!;
    // A plain assignment to `__proto__` would set the prototype instead of adding a property.
    if (name === '__proto__') Object.defineProperty(params, name, { value, enumerable: true, writable: true, configurable: true });
    else params[name] = value;
  }
  return params;
}

function parsePattern(pattern: string): PatternSegment[] {
  if (typeof pattern !== 'string' || !pattern.startsWith('/')) {
    throw new TypeError(`route pattern must start with '/', got ${JSON.stringify(pattern)}`);
  }
  if (pattern.includes('?') || pattern.includes('#')) {
    throw new TypeError(`route pattern must not contain '?' or '#' (paths are matched without the query): ${pattern}`);
  }
  const texts = pattern === '/' ? [] : pattern.slice(1).split('/');
  const segments: PatternSegment[] = [];
  const seenNames = new Set<string>();
  for (let i = 0; i < texts.length; i++) {
    const text = texts[i]!;
    if (text.startsWith(':')) {
      const name = text.slice(1);
      if (name === '') throw new TypeError(`route pattern has an empty parameter name: ${pattern}`);
      if (!paramName.test(name)) {
        throw new TypeError(`route parameter names are letters, digits, '_' and '-', got ':${name}' in ${pattern}`);
      }
      if (seenNames.has(name)) throw new TypeError(`route pattern repeats the parameter ':${name}': ${pattern}`);
      seenNames.add(name);
      segments.push({ kind: 'param', name });
    } else if (text === '*') {
      if (i !== texts.length - 1) throw new TypeError(`route pattern may have '*' only as its last segment: ${pattern}`);
      segments.push({ kind: 'wildcard' });
    } else if (text.includes('*')) {
      throw new TypeError(`route pattern may have '*' only as a whole segment (no globs such as '*.png'): ${pattern}`);
    } else {
      segments.push({ kind: 'static', text });
    }
  }
  return segments;
}
