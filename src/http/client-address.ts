// Who sent a request, as far as the server can tell: the TCP peer, or, when the peer is a proxy the operator
// trusts (trustProxy), the client that proxy names in X-Forwarded-For, walked from the right as nginx's
// real_ip_recursive and Apache's mod_remoteip do. A client can write anything into the headers it sends, so they
// are read only from a trusted peer, and only entries added by trusted hops are skipped.
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';

/** How trustProxy entries are explained in errors and docs. */
export const TRUST_PROXY_ENTRY_FORMS = 'an IP address, a CIDR range (10.0.0.0/8, fd00::/8) or "loopback"';

/** `::ffff:127.0.0.1` (an IPv4 peer on a dual-stack socket) as the IPv4 address it stands for. */
function unmapped(address: string): string {
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(address) ? address.slice(7) : address;
}

function familyOf(address: string): 'ipv4' | 'ipv6' | undefined {
  const version = isIP(address);
  return version === 4 ? 'ipv4' : version === 6 ? 'ipv6' : undefined;
}

type ParsedEntry =
  | { readonly kind: 'loopback' }
  | { readonly kind: 'address'; readonly address: string; readonly family: 'ipv4' | 'ipv6' }
  | { readonly kind: 'subnet'; readonly network: string; readonly prefix: number; readonly family: 'ipv4' | 'ipv6' };

/** One trustProxy entry, or why it is not one (the message quotes the entry). */
function parseEntry(entry: unknown): ParsedEntry | { readonly error: string } {
  const shown = JSON.stringify(entry) ?? String(entry);
  if (typeof entry !== 'string') return { error: `must be ${TRUST_PROXY_ENTRY_FORMS} (got ${shown})` };
  const text = entry.trim();
  if (text === 'loopback') return { kind: 'loopback' };
  if (text === '') return { error: `an empty entry is not ${TRUST_PROXY_ENTRY_FORMS} (a stray comma?)` };
  const slash = text.indexOf('/');
  const host = unmapped(slash === -1 ? text : text.slice(0, slash));
  const family = familyOf(host);
  if (family === undefined || host.includes('%')) {
    return { error: `${shown} is not ${TRUST_PROXY_ENTRY_FORMS}` };
  }
  if (slash === -1) return { kind: 'address', address: host, family };
  const prefixText = text.slice(slash + 1);
  let prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : Number.NaN;
  // ::ffff:10.0.0.0/104 is 10.0.0.0/8 written as IPv6: the mapped part starts after 96 bits.
  const mapped = host !== (slash === -1 ? text : text.slice(0, slash));
  if (mapped) prefix -= 96;
  const max = family === 'ipv4' ? 32 : 128;
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) {
    return { error: `${shown}: the prefix length after "/" must be from ${mapped ? 96 : 0} to ${mapped ? 128 : max}` };
  }
  return { kind: 'subnet', network: host, prefix, family };
}

/** undefined when `entry` is a valid trustProxy entry; otherwise a message that names it. */
export function trustProxyEntryError(entry: unknown): string | undefined {
  const parsed = parseEntry(entry);
  return 'error' in parsed ? parsed.error : undefined;
}

/** The set of peers whose X-Forwarded-For and X-Forwarded-Proto are believed. */
export class TrustedProxies {
  readonly #list = new BlockList();
  /** True when nothing is trusted (the default): every request's client is its peer, with no header read. */
  readonly isEmpty: boolean;

  /** Throws TypeError naming the first entry that is not an address, a CIDR range or "loopback". */
  constructor(entries: readonly string[] = []) {
    if (!Array.isArray(entries)) throw new TypeError(`trustProxy must be an array of strings, each ${TRUST_PROXY_ENTRY_FORMS}`);
    for (const entry of entries) {
      const parsed = parseEntry(entry);
      if ('error' in parsed) throw new TypeError(`trustProxy entry ${parsed.error}`);
      if (parsed.kind === 'loopback') {
        this.#list.addSubnet('127.0.0.0', 8, 'ipv4');
        this.#list.addAddress('::1', 'ipv6');
      } else if (parsed.kind === 'address') {
        this.#list.addAddress(parsed.address, parsed.family);
      } else {
        this.#list.addSubnet(parsed.network, parsed.prefix, parsed.family);
      }
    }
    this.isEmpty = entries.length === 0;
  }

  /** Whether `address` (an IP address; IPv4-mapped IPv6 counts as its IPv4 form) is trusted. Anything else is not. */
  has(address: string): boolean {
    if (this.isEmpty) return false;
    const plain = unmapped(address);
    const family = familyOf(plain);
    return family !== undefined && this.#list.check(plain, family);
  }
}

/** What the server can tell about who sent a request and how it reached the first hop. */
export interface RequestClient {
  /** The client's IP address: the peer's, or the one a trusted proxy named in X-Forwarded-For; '' when unknown. */
  readonly address: string;
  /** The TCP peer's address (the proxy's, when `forwarded`); '' when unknown. */
  readonly peerAddress: string;
  /** The peer's port; undefined when `address` came from X-Forwarded-For (the proxy's port says nothing about the client). */
  readonly port: number | undefined;
  /** `address` was taken from X-Forwarded-For. */
  readonly forwarded: boolean;
  /** The peer is in trustProxy (so its X-Forwarded-* headers were read). */
  readonly peerTrusted: boolean;
  /** How the client reached the first hop: a trusted peer's X-Forwarded-Proto, else whether this connection is TLS. */
  readonly protocol: 'http' | 'https';
  /** `protocol` came from X-Forwarded-Proto. */
  readonly protocolForwarded: boolean;
}

/** The parts of a socket the resolution reads (a net.Socket or tls.TLSSocket has them). */
export interface PeerSocket {
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  /** Present (true) on a TLS socket. */
  readonly encrypted?: boolean;
}

/** Every comma-separated item of every line of a header, in order, trimmed. */
function headerItems(value: string | readonly string[] | undefined): string[] {
  if (value === undefined) return [];
  const lines = typeof value === 'string' ? [value] : value;
  const items: string[] = [];
  for (const line of lines) for (const item of line.split(',')) items.push(item.trim());
  return items;
}

/**
 * The client of a request whose peer is `peerAddress`: if the peer is not trusted, the peer. Otherwise
 * X-Forwarded-For is walked from the right, skipping trusted addresses; the first untrusted one is the client, or
 * the leftmost when every entry is trusted. An entry that is not an IP address ends the walk, leaving the last
 * good one: a garbage string is never taken for an address.
 */
export function forwardedClientAddress(peerAddress: string, forwardedFor: string | readonly string[] | undefined, trusted: TrustedProxies): string | undefined {
  if (!trusted.has(peerAddress)) return undefined;
  const entries = headerItems(forwardedFor);
  let client: string | undefined;
  for (let i = entries.length - 1; i >= 0; i--) {
    const entry = entries[i]!;
    if (familyOf(entry) === undefined) break;
    client = entry;
    if (!trusted.has(entry)) break;
  }
  return client;
}

/** A trusted peer's X-Forwarded-Proto: its rightmost value (the hop nearest us), when it is http or https. */
export function forwardedProtocol(peerAddress: string, forwardedProto: string | readonly string[] | undefined, trusted: TrustedProxies): 'http' | 'https' | undefined {
  if (!trusted.has(peerAddress)) return undefined;
  const items = headerItems(forwardedProto);
  const last = items[items.length - 1]?.toLowerCase();
  return last === 'http' || last === 'https' ? last : undefined;
}

const NOBODY_TRUSTED = new TrustedProxies();

/** The client of a request that arrived on `socket` with `headers`, given the trusted proxies. */
export function resolveRequestClient(socket: PeerSocket, headers: IncomingHttpHeaders, trusted: TrustedProxies = NOBODY_TRUSTED): RequestClient {
  const peerAddress = socket.remoteAddress ?? '';
  const peerTrusted = trusted.has(peerAddress);
  const forwardedAddress = peerTrusted ? forwardedClientAddress(peerAddress, headers['x-forwarded-for'], trusted) : undefined;
  const forwardedProto = peerTrusted ? forwardedProtocol(peerAddress, headers['x-forwarded-proto'], trusted) : undefined;
  return {
    address: forwardedAddress ?? peerAddress,
    peerAddress,
    port: forwardedAddress === undefined ? socket.remotePort : undefined,
    forwarded: forwardedAddress !== undefined,
    peerTrusted,
    protocol: forwardedProto ?? (socket.encrypted === true ? 'https' : 'http'),
    protocolForwarded: forwardedProto !== undefined,
  };
}

/** Requests the server resolved with its trustProxy, so that handlers and bridges see the same client. */
const resolved = new WeakMap<IncomingMessage, RequestClient>();

/** Records what the server resolved for `req` (done only when trustProxy is set); returns it. */
export function rememberRequestClient(req: IncomingMessage, client: RequestClient): RequestClient {
  resolved.set(req, client);
  return client;
}

/**
 * The client of a request, as the server that received it resolved it with its trustProxy; for a request the
 * server did not resolve (no trustProxy, or a request from someone else's http.Server), its peer.
 */
export function requestClient(req: IncomingMessage): RequestClient {
  return resolved.get(req) ?? resolveRequestClient(req.socket as PeerSocket, req.headers);
}
