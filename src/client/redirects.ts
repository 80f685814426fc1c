// Following a 3xx answer to the opening handshake (only with followRedirects > 0): which statuses count, where
// the Location leads, which hops are refused (wss to ws, a network server to a Unix socket), and which request
// headers a different server does not get.
import { HandshakeError } from '../errors.js';
import { isUnixUrl, resolveLocation, type ClientTarget } from './client-url.js';

/** RFC 9110 §15.4: the statuses that send the client elsewhere (a WebSocket handshake is always a GET). */
const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

/** Request headers that carry credentials: not sent on to a different server (as browsers and ws do). */
const CREDENTIAL_HEADERS: ReadonlySet<string> = new Set(['authorization', 'cookie', 'proxy-authorization', 'host']);

export type ResponseHeaders = Readonly<Record<string, string | string[] | undefined>>;

export function isRedirectStatus(status: number): boolean {
  return REDIRECT_STATUSES.has(status);
}

/** Where a 3xx answer points, resolved against the URL that was requested; undefined if it has no usable Location. */
export function locationOf(headers: ResponseHeaders, current: ClientTarget): string | undefined {
  const location = headers['location'];
  if (typeof location !== 'string' || location === '') return undefined;
  try {
    return resolveLocation(location, current).href;
  } catch {
    return location;
  }
}

export interface RedirectChain {
  /** The URL given to connect(): credentials go only to its server. */
  readonly original: ClientTarget;
  /** How many redirects may still be followed. */
  readonly remaining: number;
  /** How many were followed so far. */
  readonly followed: number;
}

/**
 * The next hop for a 3xx answer from `current`, or a HandshakeError (thrown) saying why it is not followed:
 * ERR_HANDSHAKE_STATUS when following is off, ERR_TOO_MANY_REDIRECTS past the limit, ERR_REDIRECT_LOCATION
 * without a usable Location, ERR_REDIRECT_DOWNGRADE from a secure URL to an insecure one, and
 * ERR_REDIRECT_UNIX from a network server to a Unix socket.
 */
export function nextHop(status: number, statusText: string, headers: ResponseHeaders, current: ClientTarget, chain: RedirectChain): ClientTarget {
  const raw = headers['location'];
  const answered = `server answered ${status} ${statusText}`.trimEnd();
  const details = { headers, ...(typeof raw === 'string' && { location: locationOf(headers, current) ?? raw }) };
  if (chain.remaining <= 0) {
    if (chain.followed === 0) {
      const where = details.location === undefined ? '' : ` (redirect to ${details.location}; set followRedirects to follow it)`;
      throw new HandshakeError('ERR_HANDSHAKE_STATUS', status, `${answered} instead of 101${where}`, details);
    }
    throw new HandshakeError('ERR_TOO_MANY_REDIRECTS', status, `${answered} after ${chain.followed} redirects already followed (followRedirects is ${chain.followed})`, details);
  }
  if (typeof raw !== 'string' || raw === '') throw new HandshakeError('ERR_REDIRECT_LOCATION', status, `${answered} without a Location header`, details);
  let next: ClientTarget;
  try {
    next = resolveLocation(raw, current);
  } catch (error) {
    throw new HandshakeError('ERR_REDIRECT_LOCATION', status, `${answered}: ${(error as Error).message}`, { ...details, cause: error });
  }
  if (current.secure && !next.secure) {
    throw new HandshakeError('ERR_REDIRECT_DOWNGRADE', status, `${answered} redirecting from ${current.href} to ${next.href}: a redirect may not drop TLS`, details);
  }
  if (current.socketPath === undefined && next.socketPath !== undefined && isUnixUrl(next)) {
    throw new HandshakeError('ERR_REDIRECT_UNIX', status, `${answered} redirecting from ${current.href} to a Unix socket (${next.href}): a network server may not send the client to a local socket`, details);
  }
  return next;
}

/** The headers to send on to `next`: all of them for the original server, none carrying credentials for another. */
export function headersFor(next: ClientTarget, chain: RedirectChain, headers: Readonly<Record<string, string>>): Record<string, string> {
  if (next.authority === chain.original.authority) return { ...headers };
  const kept: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!CREDENTIAL_HEADERS.has(name.toLowerCase())) kept[name] = value;
  }
  return kept;
}
