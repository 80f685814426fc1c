// The reverse proxy's options and URL rules, shared by its HTTP and WebSocket halves: checking the options,
// mapping a request path under the mount prefix onto the backend's base path, and rewriting a backend's
// Location under its base back under the prefix.
import type { WebSocketPolicyOptions } from '../transport/policy.js';
import { DEFAULT_POLICY, checkInteger, resolvePolicy } from '../transport/policy.js';

export interface ProxyTlsOptions {
  /** Certificates to trust for an https:// or wss:// backend (PEM), instead of the system's. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Verify the backend's certificate. Default true. */
  rejectUnauthorized?: boolean;
}

export interface ProxyOptions {
  /**
   * The backend: http(s)://host:port/base (ws:// and wss:// are taken as http:// and https://). A request for
   * PREFIX/rest?query goes to base/rest?query. A trailing slash on the base is ignored.
   */
  target: string | URL;
  /** The mount prefix ('/legacy'), stripped before forwarding. '' or '/' forwards every path unchanged. */
  prefix: string;
  /** Backend connect + response-head (or WebSocket handshake) timeout: 504 after it. Default 30 s. */
  timeoutMs?: number;
  /**
   * Trust every peer's X-Forwarded-For / X-Forwarded-Proto / X-Forwarded-Host / Forwarded on this route (another
   * proxy in front of us): append our hop to them. Default false: they are kept only from a peer in the
   * server's `trustProxy`, and replaced otherwise, so a client cannot forge them. Prefer trustProxy, which
   * believes only the proxies it lists.
   */
  trustForwarded?: boolean;
  /** Also send an RFC 7239 `Forwarded` header. Default false (X-Forwarded-* only). */
  forwarded?: boolean;
  /** For an https:// (wss://) backend. */
  tls?: ProxyTlsOptions;
  /**
   * WebSocket policy for both hops (client <-> proxy and proxy <-> backend), e.g. maxMessageBytes or
   * pingIntervalMs; fields left out come from the server (client hop) and connect()'s defaults (backend hop).
   */
  webSocket?: WebSocketPolicyOptions;
  /** Receives one line per failed exchange (502, 504, a backend that broke off). Default: none. */
  log?: (line: string) => void;
}

export const DEFAULT_PROXY_TIMEOUT_MS = 30_000;

/** ProxyOptions checked and normalized. */
export interface ProxySettings {
  /** http(s)://host:port, as URL.origin spells it. */
  readonly origin: string;
  readonly secure: boolean;
  /** The Host header the backend gets (port only when not the scheme's default). */
  readonly host: string;
  /** For node's request(): no IPv6 brackets. */
  readonly hostname: string;
  readonly port: number;
  /** '' or '/base', without a trailing slash. */
  readonly basePath: string;
  /** '' or '/legacy', without a trailing slash. */
  readonly prefix: string;
  readonly timeoutMs: number;
  readonly trustForwarded: boolean;
  readonly forwarded: boolean;
  readonly tls: ProxyTlsOptions;
  readonly webSocket: WebSocketPolicyOptions;
  readonly log: (line: string) => void;
}

/** Checks options; misuse throws TypeError/RangeError naming the option. */
export function resolveProxySettings(options: ProxyOptions): ProxySettings {
  if (options === null || typeof options !== 'object') throw new TypeError('proxy options must be an object');
  let url: URL;
  try {
    url = new URL(options.target);
  } catch (error) {
    throw new TypeError(`proxy target ${JSON.stringify(String(options.target))} is not a URL`, { cause: error });
  }
  const scheme = url.protocol;
  if (!['http:', 'https:', 'ws:', 'wss:'].includes(scheme)) {
    throw new TypeError(`proxy target must be an http://, https://, ws:// or wss:// URL (got ${scheme}//)`);
  }
  if (url.username !== '' || url.password !== '') throw new TypeError('proxy target must not carry credentials');
  if (url.search !== '' || url.hash !== '') throw new TypeError('proxy target must not have a query or fragment');
  const secure = scheme === 'https:' || scheme === 'wss:';
  const port = url.port === '' ? (secure ? 443 : 80) : Number(url.port);
  const origin = `${secure ? 'https:' : 'http:'}//${url.host}`;
  const basePath = url.pathname.replace(/\/+$/, '');

  const prefix = options.prefix;
  if (typeof prefix !== 'string' || (prefix !== '' && !prefix.startsWith('/')) || /[?#]/.test(prefix)) {
    throw new TypeError(`proxy prefix must be '' or a path starting with "/" (got ${JSON.stringify(prefix)})`);
  }
  const timeoutMs = checkInteger('timeoutMs', options.timeoutMs ?? DEFAULT_PROXY_TIMEOUT_MS, 1);
  const webSocket = { ...(options.webSocket ?? {}) };
  resolvePolicy(DEFAULT_POLICY, webSocket); // checks every value now rather than at the first connection
  if (options.log !== undefined && typeof options.log !== 'function') throw new TypeError('proxy log must be a function');
  return {
    origin, secure, host: url.host, hostname: url.hostname.replace(/^\[|\]$/g, ''), port, basePath,
    prefix: prefix.replace(/\/+$/, ''), timeoutMs,
    trustForwarded: options.trustForwarded === true, forwarded: options.forwarded === true,
    tls: { ...(options.tls ?? {}) }, webSocket, log: options.log ?? ignoreLine,
  };
}

function ignoreLine(): void {}

export type MappedTarget =
  | { readonly kind: 'ok'; readonly path: string }
  /** The request path is not under the prefix (the route and the prefix disagree). */
  | { readonly kind: 'outside' }
  /** The rest of the path has a `.` or `..` segment, which could climb out of the base. */
  | { readonly kind: 'dot-segment' };

/**
 * Maps a request target (origin-form, as received) onto the backend: prefix stripped, base prepended, query
 * kept byte for byte. Nothing is decoded or re-encoded, so the backend sees the client's own spelling.
 */
export function mapRequestTarget(requestTarget: string, settings: Pick<ProxySettings, 'prefix' | 'basePath'>): MappedTarget {
  const queryAt = requestTarget.indexOf('?');
  const path = queryAt === -1 ? requestTarget : requestTarget.slice(0, queryAt);
  const query = queryAt === -1 ? '' : requestTarget.slice(queryAt);
  const { prefix, basePath } = settings;
  if (!path.startsWith('/') || (prefix !== '' && path !== prefix && !path.startsWith(`${prefix}/`))) return { kind: 'outside' };
  const rest = path.slice(prefix.length);
  // RFC 3986 §5.2.4 removes dot segments when a URI is resolved, and many backends do it to the path they
  // receive: /legacy/../admin must not reach /admin beside the base. Encoded dots and slashes count too.
  if (hasDotSegment(rest)) return { kind: 'dot-segment' };
  const mapped = basePath + rest;
  return { kind: 'ok', path: (mapped === '' ? '/' : mapped) + query };
}

function hasDotSegment(path: string): boolean {
  for (const segment of path.split(/\/|\\|%2f|%5c/i)) {
    const decoded = segment.replace(/%2e/gi, '.');
    if (decoded === '.' || decoded === '..') return true;
  }
  return false;
}

/**
 * Rewrites a Location (RFC 9110 §10.2.2) that points under the backend's base, whether as an absolute URL on
 * the backend's origin or as an absolute path, to the same place under the prefix, as an absolute path (a
 * URI reference the client resolves against the URL it asked for). Anything else is left alone: relative
 * references already resolve correctly, and other sites are other sites.
 */
export function rewriteLocation(location: string, settings: Pick<ProxySettings, 'origin' | 'prefix' | 'basePath'>): string {
  let path: string;
  if (location.startsWith('/') && !location.startsWith('//')) {
    path = location;
  } else if (/^https?:\/\//i.test(location)) {
    let url: URL;
    try {
      url = new URL(location);
    } catch {
      return location;
    }
    if (url.origin !== settings.origin) return location;
    // The path, query and fragment as the backend wrote them (URL would re-encode them).
    const authorityAt = location.indexOf('//') + 2;
    const pathAt = location.slice(authorityAt).search(/[/?#]/);
    path = pathAt === -1 ? '/' : location.slice(authorityAt + pathAt);
    if (!path.startsWith('/')) path = `/${path}`;
  } else {
    return location;
  }
  const { basePath, prefix } = settings;
  const end = path.search(/[?#]/);
  const pathOnly = end === -1 ? path : path.slice(0, end);
  if (basePath !== '' && pathOnly !== basePath && !pathOnly.startsWith(`${basePath}/`)) return location;
  const rest = path.slice(basePath.length);
  return rest === '' || rest.startsWith('?') || rest.startsWith('#') ? `${prefix === '' ? '/' : prefix}${rest}` : `${prefix}${rest}`;
}
