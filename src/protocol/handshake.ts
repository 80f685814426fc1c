// The opening handshake (RFC 6455 §4) for both roles, as pure functions: the server side checks a parsed
// request and returns the response to send (101 or a rejection); the client side builds request headers and
// verifies the server's answer. Nothing here writes to a socket.
import { createHash, randomBytes } from 'node:crypto';
import { HandshakeError } from '../errors.js';
import { HANDSHAKE_GUID } from './constants.js';
import { isToken, listElements, listHasToken, singleValue, type HeaderValue } from './header-tokens.js';

export type RequestHeaders = Readonly<Record<string, HeaderValue>>;

export interface HandshakeRequest {
  method: string;
  /** As node reports it: "1.1", "1.0". */
  httpVersion: string;
  /** Lower-case names, as on node's IncomingMessage.headers. */
  headers: RequestHeaders;
}

export interface HandshakeResponse {
  status: number;
  statusText: string;
  headers: Array<[name: string, value: string]>;
  body: string;
}

export interface ServerHandshakeOptions {
  /** Subprotocols this route speaks, in order of preference. */
  protocols?: readonly string[];
}

export type ServerHandshakeResult =
  | { accepted: true; response: HandshakeResponse; protocol: string }
  | { accepted: false; response: HandshakeResponse; error: HandshakeError };

/** RFC 6455 §4.2.2: base64(SHA-1(key + GUID)). */
export function computeAcceptKey(key: string): string {
  return createHash('sha1').update(key + HANDSHAKE_GUID).digest('base64');
}

const NONE: readonly string[] = Object.freeze([]);

/** RFC 6455 §4.1: the key is a random 16-byte value, base64-encoded (24 characters ending in "=="). */
const KEY_PATTERN = /^[A-Za-z0-9+/]{21}[AQgw]==$/;

export function isValidClientKey(key: string): boolean {
  return KEY_PATTERN.test(key);
}

/** The subprotocols a client offered, in its order; undefined when the header is malformed. */
export function offeredProtocols(headers: RequestHeaders): readonly string[] | undefined {
  const header = headers['sec-websocket-protocol'];
  if (header === undefined) return NONE;
  const offered = listElements(header);
  return offered.every(isToken) ? offered : undefined;
}

/** Checks a request against RFC 6455 §4.2.1 and answers with 101 or the matching rejection. */
export function acceptServerHandshake(request: HandshakeRequest, options: ServerHandshakeOptions = {}): ServerHandshakeResult {
  const headers = request.headers;
  if (request.method !== 'GET') return reject(400, 'ERR_HANDSHAKE_METHOD', 'the opening handshake must be a GET request');
  if (request.httpVersion !== '1.1') return reject(400, 'ERR_HANDSHAKE_HTTP_VERSION', 'the opening handshake needs HTTP/1.1');
  // RFC 6455 §4.2.1 item 2: the request carries a Host header (node's parser lets an upgrade through without one).
  if (headers['host'] === undefined) return reject(400, 'ERR_HANDSHAKE_HOST', 'Host header is missing');
  if (!listHasToken(headers['upgrade'], 'websocket')) return reject(400, 'ERR_HANDSHAKE_UPGRADE', 'Upgrade header must be "websocket"');
  if (!listHasToken(headers['connection'], 'upgrade')) return reject(400, 'ERR_HANDSHAKE_CONNECTION', 'Connection header must include "Upgrade"');
  const version = singleValue(headers['sec-websocket-version']);
  if (version === undefined) return reject(400, 'ERR_HANDSHAKE_VERSION', 'Sec-WebSocket-Version header is missing');
  if (version !== '13') {
    // RFC 6455 §4.2.2: answer an unsupported version with 426 and the versions we speak; RFC 7231 §6.5.15:
    // a 426 MUST carry an Upgrade header.
    return reject(426, 'ERR_HANDSHAKE_VERSION', 'unsupported Sec-WebSocket-Version; this server speaks 13', [['Upgrade', 'websocket'], ['Sec-WebSocket-Version', '13']]);
  }
  const key = singleValue(headers['sec-websocket-key']);
  if (key === undefined || !isValidClientKey(key)) {
    return reject(400, 'ERR_HANDSHAKE_KEY', 'Sec-WebSocket-Key must be the base64 encoding of 16 bytes');
  }
  const offered = offeredProtocols(headers);
  if (offered === undefined) return reject(400, 'ERR_HANDSHAKE_PROTOCOL', 'Sec-WebSocket-Protocol must be a list of tokens');

  // Only a protocol the client offered is ever selected; among those, the route's preference wins.
  let protocol = '';
  if (offered.length > 0 && options.protocols !== undefined) {
    protocol = options.protocols.find((candidate) => offered.includes(candidate)) ?? '';
  }
  const responseHeaders: Array<[string, string]> = [
    ['Upgrade', 'websocket'],
    ['Connection', 'Upgrade'],
    ['Sec-WebSocket-Accept', computeAcceptKey(key)],
  ];
  if (protocol !== '') responseHeaders.push(['Sec-WebSocket-Protocol', protocol]);
  return {
    accepted: true,
    protocol,
    response: { status: 101, statusText: 'Switching Protocols', headers: responseHeaders, body: '' },
  };
}

function reject(status: number, code: string, message: string, extraHeaders: Array<[string, string]> = []): ServerHandshakeResult {
  return { accepted: false, error: new HandshakeError(code, status, message), response: rejection(status, message, extraHeaders) };
}

const STATUS_TEXT: Readonly<Record<number, string>> = {
  101: 'Switching Protocols', 400: 'Bad Request', 401: 'Unauthorized', 402: 'Payment Required', 403: 'Forbidden',
  404: 'Not Found', 405: 'Method Not Allowed', 406: 'Not Acceptable', 407: 'Proxy Authentication Required',
  408: 'Request Timeout', 409: 'Conflict', 410: 'Gone', 411: 'Length Required', 412: 'Precondition Failed',
  413: 'Content Too Large', 414: 'URI Too Long', 415: 'Unsupported Media Type', 421: 'Misdirected Request',
  422: 'Unprocessable Content', 423: 'Locked', 426: 'Upgrade Required', 428: 'Precondition Required',
  429: 'Too Many Requests', 431: 'Request Header Fields Too Large', 451: 'Unavailable For Legal Reasons',
  500: 'Internal Server Error', 501: 'Not Implemented', 502: 'Bad Gateway', 503: 'Service Unavailable',
  504: 'Gateway Timeout', 507: 'Insufficient Storage', 511: 'Network Authentication Required',
};

/** A plain-text error response to write on a socket that will not be upgraded. */
export function rejection(status: number, message: string, extraHeaders: Array<[string, string]> = []): HandshakeResponse {
  const body = `${message}\n`;
  // RFC 9110 §7.8: a response that sends Upgrade lists "upgrade" in Connection too.
  const offersUpgrade = extraHeaders.some(([name]) => name.toLowerCase() === 'upgrade');
  return {
    status,
    statusText: STATUS_TEXT[status] ?? 'Error',
    headers: [
      ['Content-Type', 'text/plain; charset=utf-8'],
      ['Content-Length', String(Buffer.byteLength(body))],
      ['Connection', offersUpgrade ? 'Upgrade, close' : 'close'],
      ...extraHeaders,
    ],
    body,
  };
}

/** Serialises a response as HTTP/1.1 bytes for a raw (upgrade) socket. */
export function renderResponse(response: HandshakeResponse): string {
  let text = `HTTP/1.1 ${response.status} ${response.statusText}\r\n`;
  for (const [name, value] of response.headers) text += `${name}: ${value}\r\n`;
  return `${text}\r\n${response.body}`;
}

// ---- client role ----

export interface ClientHandshakeOptions {
  protocols?: readonly string[];
  extensions?: string;
  origin?: string;
}

export interface ClientHandshake {
  key: string;
  /** Headers to add to the GET request (Host is the HTTP client's business). */
  headers: Record<string, string>;
}

/** Builds the request headers of RFC 6455 §4.1 with a fresh random key. Throws TypeError on a bad protocol name. */
export function createClientHandshake(options: ClientHandshakeOptions = {}): ClientHandshake {
  const key = randomBytes(16).toString('base64');
  const headers: Record<string, string> = {
    Connection: 'Upgrade',
    Upgrade: 'websocket',
    'Sec-WebSocket-Key': key,
    'Sec-WebSocket-Version': '13',
  };
  const protocols = options.protocols ?? [];
  for (const protocol of protocols) {
    if (!isToken(protocol)) throw new TypeError(`subprotocol ${JSON.stringify(protocol)} is not a valid token`);
  }
  if (new Set(protocols).size !== protocols.length) throw new TypeError('subprotocols must be unique');
  if (protocols.length > 0) headers['Sec-WebSocket-Protocol'] = protocols.join(', ');
  if (options.extensions !== undefined) headers['Sec-WebSocket-Extensions'] = options.extensions;
  if (options.origin !== undefined) headers['Origin'] = options.origin;
  return { key, headers };
}

export interface ServerResponse {
  status: number;
  headers: RequestHeaders;
}

export interface VerifiedResponse {
  protocol: string;
  extensions: string[];
}

/**
 * Verifies the server's answer (RFC 6455 §4.1, the client's checks): 101, Upgrade and Connection headers,
 * the accept key, a subprotocol we offered, and no extension we did not offer. Throws HandshakeError.
 */
export function verifyServerResponse(response: ServerResponse, handshake: ClientHandshake, offered: { protocols?: readonly string[]; extensions?: readonly string[] } = {}): VerifiedResponse {
  const headers = response.headers;
  const fail = (code: string, message: string): never => { throw new HandshakeError(code, response.status, message); };
  if (response.status !== 101) fail('ERR_HANDSHAKE_STATUS', `server answered ${response.status} instead of 101`);
  if (!listHasToken(headers['upgrade'], 'websocket')) fail('ERR_HANDSHAKE_UPGRADE', 'response Upgrade header is not "websocket"');
  if (!listHasToken(headers['connection'], 'upgrade')) fail('ERR_HANDSHAKE_CONNECTION', 'response Connection header lacks "Upgrade"');
  if (singleValue(headers['sec-websocket-accept']) !== computeAcceptKey(handshake.key)) {
    fail('ERR_HANDSHAKE_ACCEPT', 'Sec-WebSocket-Accept does not match our key');
  }
  const selected = listElements(headers['sec-websocket-protocol']);
  if (selected.length > 1) fail('ERR_HANDSHAKE_PROTOCOL', 'server selected more than one subprotocol');
  const protocol = selected[0] ?? '';
  if (protocol !== '' && !(offered.protocols ?? []).includes(protocol)) {
    fail('ERR_HANDSHAKE_PROTOCOL', `server selected subprotocol "${protocol}", which we did not offer`);
  }
  const extensions = listElements(headers['sec-websocket-extensions']);
  const offeredExtensionNames = new Set((offered.extensions ?? []).map((name) => name.toLowerCase()));
  for (const extension of extensions) {
    const name = extension.split(';')[0]!.trim().toLowerCase();
    if (!offeredExtensionNames.has(name)) fail('ERR_HANDSHAKE_EXTENSION', `server accepted extension "${name}", which we did not offer`);
  }
  return { protocol, extensions };
}
