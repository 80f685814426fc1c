// What connect() dials, parsed from its URL: ws:// and wss:// (http:// and https:// are taken as ws:// and
// wss://, as the WHATWG WebSocket standard and ws do), and ws+unix:// or wss+unix:// for a Unix socket in ws's
// syntax, `ws+unix:///run/app.sock:/path?query` (the socket path, a colon, then the request path).
import { isIP } from 'node:net';

export interface ClientTarget {
  /** The URL as `ws.url` reports it (ws:, wss:, ws+unix: or wss+unix:, never http:). */
  readonly href: string;
  readonly secure: boolean;
  /** The host name or IP address (no brackets); "localhost" for a ws+unix: URL. */
  readonly hostname: string;
  readonly port: number;
  /** Set when the connection goes over a Unix socket instead of TCP. */
  readonly socketPath: string | undefined;
  /** The request target: path and query. */
  readonly path: string;
  /** Who the server is, for the credentials rule on redirects: `host:port`, or `unix:PATH`. */
  readonly authority: string;
  /** User name and password from the URL, percent-decoded ("" when absent). */
  readonly username: string;
  readonly password: string;
}

const UNIX_SCHEMES: Readonly<Record<string, boolean>> = { 'ws+unix:': false, 'wss+unix:': true };
const NETWORK_SCHEMES: Readonly<Record<string, { secure: boolean; ws: string }>> = {
  'ws:': { secure: false, ws: 'ws:' }, 'wss:': { secure: true, ws: 'wss:' },
  'http:': { secure: false, ws: 'ws:' }, 'https:': { secure: true, ws: 'wss:' },
};

/**
 * Parses a URL given to connect() or found in a redirect's Location. `socketPath` (the option) sends a
 * ws:// or wss:// URL's connection over that Unix socket. Throws TypeError for anything else.
 */
export function parseClientUrl(input: string | URL, socketPath?: string): ClientTarget {
  let url: URL;
  try {
    url = new URL(input);
  } catch (error) {
    throw new TypeError(`connect() needs an absolute ws://, wss:// or ws+unix:// URL (got ${JSON.stringify(String(input))})`, { cause: error });
  }
  if (url.hash !== '' || String(input).includes('#')) throw new TypeError('a WebSocket URL must not have a fragment (RFC 6455 §3)');
  const unixSecure = UNIX_SCHEMES[url.protocol];
  if (unixSecure !== undefined) return unixTarget(url, unixSecure);
  const scheme = NETWORK_SCHEMES[url.protocol];
  if (scheme === undefined) {
    throw new TypeError(`connect() takes a ws://, wss://, ws+unix:// or wss+unix:// URL (http:// and https:// are read as ws:// and wss://); got ${url.protocol}//`);
  }
  if (url.protocol !== scheme.ws) url.protocol = scheme.ws;
  const hostname = url.hostname.replace(/^\[|\]$/g, '');
  const port = url.port === '' ? (scheme.secure ? 443 : 80) : Number(url.port);
  return {
    href: url.href, secure: scheme.secure, hostname, port, socketPath,
    path: `${url.pathname}${url.search}`,
    authority: socketPath === undefined ? `${hostname.toLowerCase()}:${port}` : `unix:${socketPath}`,
    username: decodeURIComponent(url.username), password: decodeURIComponent(url.password),
  };
}

function unixTarget(url: URL, secure: boolean): ClientTarget {
  if (url.host !== '') throw new TypeError(`a ${url.protocol}// URL names a socket path, not a host: write ${url.protocol}///path/to.sock:/request-path`);
  if (url.username !== '' || url.password !== '') throw new TypeError(`a ${url.protocol}// URL cannot carry credentials; send an Authorization header`);
  const pathname = url.pathname;
  const colon = pathname.indexOf(':');
  const encodedSocket = colon === -1 ? pathname : pathname.slice(0, colon);
  const requestPath = colon === -1 ? '/' : pathname.slice(colon + 1);
  if (encodedSocket === '' || encodedSocket === '/') throw new TypeError(`${url.href} names no socket path: write ${url.protocol}///path/to.sock:/request-path`);
  if (!requestPath.startsWith('/')) throw new TypeError(`the request path after the socket path must start with "/" (got ${JSON.stringify(requestPath)})`);
  const socketPath = decodeURIComponent(encodedSocket);
  return {
    href: url.href, secure, hostname: 'localhost', port: secure ? 443 : 80, socketPath,
    path: `${requestPath}${url.search}`, authority: `unix:${socketPath}`, username: '', password: '',
  };
}

/** A ws+unix:// or wss+unix:// URL (as opposed to a ws:// URL sent over a socket by the `socketPath` option). */
export function isUnixUrl(target: ClientTarget): boolean {
  return target.href.startsWith('ws+unix:') || target.href.startsWith('wss+unix:');
}

/**
 * Where a redirect's Location leads from `current`, resolved against the current URL. On a ws+unix:// URL a
 * relative Location stays on the same socket; with the `socketPath` option, so does any Location naming the
 * same host and port. Throws TypeError for a Location that is not a URL connect() takes.
 */
export function resolveLocation(location: string, current: ClientTarget): ClientTarget {
  const absolute = /^[a-z][a-z0-9+.-]*:/i.test(location);
  const schemeRelative = /^[/\\]{2}/.test(location);
  try {
    if (isUnixUrl(current)) {
      if (schemeRelative) return parseClientUrl(`${current.secure ? 'wss' : 'ws'}:${location}`);
      if (absolute) {
        const url = new URL(location);
        url.hash = '';
        return parseClientUrl(url);
      }
      const resolved = new URL(location, `http://localhost${current.path}`);
      const scheme = current.secure ? 'wss+unix:' : 'ws+unix:';
      const socket = encodeURI(current.socketPath!).replace(/[:?#]/g, encodeURIComponent);
      return parseClientUrl(`${scheme}${socket.startsWith('/') ? '//' : ''}${socket}:${resolved.pathname}${resolved.search}`);
    }
    const resolved = new URL(location, current.href);
    resolved.hash = ''; // a fragment in Location is for the client's own use (RFC 9110 §10.2.2), never sent
    const next = parseClientUrl(resolved);
    const sameServer = next.socketPath === undefined && next.hostname.toLowerCase() === current.hostname.toLowerCase() && next.port === current.port;
    return current.socketPath !== undefined && sameServer ? parseClientUrl(resolved, current.socketPath) : next;
  } catch (error) {
    if (error instanceof TypeError) throw new TypeError(`the redirect's Location ${JSON.stringify(location)} is not a URL connect() can follow: ${error.message}`, { cause: error });
    throw error;
  }
}

/** SNI carries host names only (RFC 6066 §3): an IP address gets none unless the caller names one. */
export function serverNameFor(target: ClientTarget, servername: string | undefined): string | undefined {
  if (servername !== undefined) return servername;
  return isIP(target.hostname) === 0 ? target.hostname : undefined;
}
