// Which header fields the reverse proxy passes on, drops or adds: hop-by-hop fields go nowhere (RFC 9110
// §7.6.1), X-Forwarded-* / Forwarded (RFC 7239) / Via (RFC 9110 §7.6.3) describe the client's hop, Host names
// the backend, and a Location under the backend's base is moved under the prefix.
import type { IncomingHttpHeaders } from 'node:http';
import { rewriteLocation, type ProxySettings } from './proxy-target.js';

/**
 * RFC 9110 §7.6.1: Connection, the fields it lists, and the fields that only make sense for one connection
 * (Keep-Alive, Proxy-Connection, TE, Transfer-Encoding, Upgrade) are not forwarded; Trailer announces trailers
 * we do not forward. Proxy-* fields (and the bare `Proxy` field of the "httpoxy" attacks) are for a proxy, not
 * for the origin server behind us.
 */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy']);

/** The lower-case field names a Connection header lists (RFC 9110 §7.6.1: those are hop-by-hop too). */
export function connectionListed(value: string | string[] | undefined): ReadonlySet<string> {
  const listed = new Set<string>();
  if (value === undefined) return listed;
  for (const item of Array.isArray(value) ? value : [value]) {
    for (const token of item.split(',')) {
      const name = token.trim().toLowerCase();
      if (name !== '') listed.add(name);
    }
  }
  return listed;
}

export function isHopByHop(lowerName: string, listed: ReadonlySet<string>): boolean {
  return HOP_BY_HOP.has(lowerName) || lowerName.startsWith('proxy-') || listed.has(lowerName);
}

/** What we know of the client's hop, for X-Forwarded-*, Forwarded and Via. */
export interface ClientHop {
  /** The TCP peer's address: the hop we append to X-Forwarded-For (the proxy in front of us, if any). */
  readonly remoteAddress: string;
  /**
   * The peer is in the server's trustProxy: its X-Forwarded-* and Forwarded describe the real client, so they
   * are kept and our hop appended. Otherwise they are the client's own claims and are replaced.
   */
  readonly peerTrusted?: boolean;
  /** The client reached us over TLS. */
  readonly secure: boolean;
  /** The Host header the client sent, if any. */
  readonly host: string | undefined;
  /** '1.1' or '1.0': the protocol of the message we received, for Via. */
  readonly httpVersion: string;
}

type ForwardingSettings = Pick<ProxySettings, 'trustForwarded' | 'forwarded'>;

/** Whether the incoming X-Forwarded-* / Forwarded come from a proxy we believe (trustProxy, or trustForwarded for every peer). */
function chainTrusted(hop: ClientHop, settings: ForwardingSettings): boolean {
  return settings.trustForwarded || hop.peerTrusted === true;
}

/** True for a field we write ourselves (so the client's copy is dropped or merged into ours). */
function isManaged(lowerName: string, settings: ForwardingSettings, trusted: boolean): boolean {
  switch (lowerName) {
    case 'x-forwarded-for':
    case 'x-forwarded-proto':
    case 'x-forwarded-host':
    case 'via':
      return true;
    case 'forwarded':
      // Untrusted: a client could claim any address in it, so it is dropped. Trusted: ours is appended to it
      // when we send one, otherwise it goes on unchanged.
      return settings.forwarded || !trusted;
    default:
      return false;
  }
}

/**
 * The fields describing the client's hop. From an untrusted peer (the default), the client's own X-Forwarded-*
 * and Forwarded are replaced: X-Forwarded-For is just the peer, since a chain the client wrote would otherwise
 * reach the backend looking like one proxies built. From a trusted peer (the server's trustProxy, or the
 * route's trustForwarded), our hop is appended to X-Forwarded-For and Forwarded, and X-Forwarded-Proto and
 * X-Forwarded-Host are kept when present, since they describe the original request (the first proxy's), and
 * backends compare them with a single value ("https"). Via always grows by our hop.
 */
export function forwardingHeaders(headers: IncomingHttpHeaders, hop: ClientHop, settings: ForwardingSettings): Array<[string, string]> {
  const trusted = chainTrusted(hop, settings);
  const prior = (name: string): string | undefined => {
    if (!trusted) return undefined;
    const value = joined(headers[name]);
    return value === undefined || value.trim() === '' ? undefined : value;
  };
  const address = clientAddress(hop.remoteAddress);
  const proto = hop.secure ? 'https' : 'http';
  const fields: Array<[string, string]> = [];
  const forwardedFor = prior('x-forwarded-for');
  fields.push(['X-Forwarded-For', forwardedFor === undefined ? address : `${forwardedFor}, ${address}`]);
  fields.push(['X-Forwarded-Proto', prior('x-forwarded-proto') ?? proto]);
  const forwardedHost = prior('x-forwarded-host') ?? hop.host;
  if (forwardedHost !== undefined) fields.push(['X-Forwarded-Host', forwardedHost]);
  if (settings.forwarded) {
    // RFC 7239 §4: for=, host=, proto= pairs; an IPv6 address is bracketed and quoted (§6).
    const node = address === '' ? 'unknown' : address.includes(':') ? `[${address}]` : address;
    let element = `for=${quoteIfNeeded(node)}`;
    if (hop.host !== undefined) element += `;host=${quoteIfNeeded(hop.host)}`;
    element += `;proto=${proto}`;
    const earlier = prior('forwarded');
    fields.push(['Forwarded', earlier === undefined ? element : `${earlier}, ${element}`]);
  }
  // RFC 9110 §7.6.3: a gateway MUST send Via in each inbound request, after any it received.
  const via = joined(headers['via']);
  const ours = `${hop.httpVersion} switchyard`;
  fields.push(['Via', via === undefined || via.trim() === '' ? ours : `${via}, ${ours}`]);
  return fields;
}

/**
 * The request fields for the backend, as a flat [name, value, ...] list in the client's order and spelling:
 * Host is the backend's, hop-by-hop fields and Expect (node already answered 100-continue) are dropped, and
 * the forwarding fields come last.
 */
export function backendRequestHeaders(rawHeaders: readonly string[], headers: IncomingHttpHeaders, hop: ClientHop, settings: ProxySettings): string[] {
  const listed = connectionListed(headers.connection);
  const trusted = chainTrusted(hop, settings);
  const fields: string[] = ['Host', settings.host];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (lower === 'host' || lower === 'expect' || isHopByHop(lower, listed) || isManaged(lower, settings, trusted)) continue;
    fields.push(name, rawHeaders[i + 1]!);
  }
  for (const [name, value] of forwardingHeaders(headers, hop, settings)) fields.push(name, value);
  return fields;
}

/** The backend's response fields for the client, flat: hop-by-hop dropped, Location moved under the prefix. */
export function clientResponseHeaders(rawHeaders: readonly string[], headers: IncomingHttpHeaders, settings: ProxySettings): string[] {
  const listed = connectionListed(headers.connection);
  const fields: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (isHopByHop(lower, listed)) continue;
    const value = rawHeaders[i + 1]!;
    fields.push(name, lower === 'location' ? rewriteLocation(value, settings) : value);
  }
  return fields;
}

/**
 * The opening handshake's fields for the backend's WebSocket (connect() writes Host, Upgrade, Connection and
 * the Sec-WebSocket-* fields of its own, and Origin from its option): the client's end-to-end fields (Cookie,
 * Authorization, User-Agent...) plus the forwarding fields.
 */
export function backendHandshakeHeaders(headers: IncomingHttpHeaders, hop: ClientHop, settings: ProxySettings): Record<string, string> {
  const listed = connectionListed(headers.connection);
  const trusted = chainTrusted(hop, settings);
  const fields: Record<string, string> = {};
  for (const [lower, value] of Object.entries(headers)) {
    if (value === undefined || lower === 'host' || lower === 'origin' || lower.startsWith('sec-websocket-')) continue;
    if (isHopByHop(lower, listed) || isManaged(lower, settings, trusted)) continue;
    const text = joined(value);
    if (text !== undefined) fields[lower] = text;
  }
  for (const [name, value] of forwardingHeaders(headers, hop, settings)) fields[name.toLowerCase()] = value;
  return fields;
}

function joined(value: string | string[] | undefined): string | undefined {
  return value === undefined ? undefined : Array.isArray(value) ? value.join(', ') : value;
}

/** The client's address as X-Forwarded-For writes it: an IPv4-mapped IPv6 address as plain IPv4. */
function clientAddress(remoteAddress: string): string {
  return remoteAddress.startsWith('::ffff:') && remoteAddress.includes('.') ? remoteAddress.slice(7) : remoteAddress;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** RFC 7239 §4: a value is a token or a quoted-string. */
function quoteIfNeeded(value: string): string {
  return TOKEN.test(value) ? value : `"${value.replace(/["\\]/g, '\\$&')}"`;
}
