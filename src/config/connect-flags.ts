// The `switchyard connect URL` command line: its flags, their defaults and units, and the checks that turn
// argv into a ConnectInvocation. Pure (files named by --ca/--cert/--key are read by the command, not here):
// throws ConfigError naming the flag (or URL) for anything wrong.
import { isIP } from 'node:net';
import { parseClientUrl } from '../client/client-url.js';
import { ConfigError } from '../errors.js';
import { splitArgv, type ArgvFlag } from './argv.js';
import { checkLeaf, checkListItem, describeValue } from './validate.js';

export const BINARY_FORMATS = ['hex', 'base64'] as const;
/** How a binary message is written out: hex digits or base64. */
export type BinaryFormat = (typeof BINARY_FORMATS)[number];

/**
 * The passphrase of an encrypted --key comes from this environment variable, not from a flag: a flag's value is
 * visible to every user in `ps` and is kept in shell history.
 */
export const KEY_PASSPHRASE_ENV = 'SWITCHYARD_KEY_PASSPHRASE';

export interface ConnectInvocation {
  readonly help: boolean;
  /** ws://, wss://, http://, https://, ws+unix: or wss+unix: (as given; connect() reads http: as ws:); '' with help. */
  readonly url: string;
  /** --protocol: subprotocols offered, in order of preference. */
  readonly protocols: readonly string[];
  /** -H 'Name: value': extra request headers (a repeated name is joined with ", ", RFC 9110 §5.3). */
  readonly headers: Readonly<Record<string, string>>;
  readonly origin?: string;
  /** --insecure: do not verify the wss:// server's certificate. */
  readonly insecure: boolean;
  /** --ca FILE: trust the certificates in FILE (PEM) instead of Node's built-in roots. */
  readonly caFile?: string;
  /** --cert FILE and --key FILE (always both): a client certificate chain and its private key (PEM). */
  readonly certFile?: string;
  readonly keyFile?: string;
  /** From SWITCHYARD_KEY_PASSPHRASE (only with --key): unlocks an encrypted key. */
  readonly passphrase?: string;
  /** --servername NAME: the SNI name, and the name the server's certificate is checked against. */
  readonly servername?: string;
  /** --follow-redirects N: follow up to N 301/302/303/307/308 answers to the handshake; 0 refuses them. */
  readonly followRedirects: number;
  readonly showBinary: BinaryFormat;
  /** --execute: messages to send (in order) instead of reading stdin; then wait for `replies` replies. */
  readonly execute: readonly string[];
  readonly replies: number;
  readonly replyTimeoutMs: number;
  /** Keep-alive pings every N ms; 0 = none. */
  readonly pingIntervalMs: number;
  /** --deflate: offer permessage-deflate (RFC 7692). */
  readonly deflate: boolean;
  readonly maxMessageBytes: number;
  readonly handshakeTimeoutMs: number;
  /** After our close frame, how long to wait for the peer's before dropping the connection. */
  readonly closeTimeoutMs: number;
}

export interface ConnectFlag {
  /** Without dashes: 'protocol'. */
  readonly name: string;
  /** A one-letter alias: 'H' for -H. */
  readonly short?: string;
  /** What the value looks like in --help; absent for a switch. */
  readonly arg?: string;
  readonly repeatable?: boolean;
  readonly unit?: string;
  readonly default?: string | number;
  readonly doc: string;
}

export const CONNECT_DEFAULTS = {
  showBinary: 'hex',
  replies: 1,
  replyTimeoutMs: 10_000,
  pingIntervalMs: 0,
  maxMessageBytes: 16 * 1024 * 1024,
  handshakeTimeoutMs: 10_000,
  closeTimeoutMs: 5_000,
  followRedirects: 0,
} as const satisfies Partial<ConnectInvocation>;

/** Every `connect` flag, in --help order. */
export const CONNECT_FLAGS: readonly ConnectFlag[] = [
  { name: 'protocol', arg: 'NAME', repeatable: true, doc: 'offer this subprotocol (Sec-WebSocket-Protocol); the server picks one' },
  { name: 'header', short: 'H', arg: "'NAME: VALUE'", repeatable: true, doc: 'add a request header to the handshake' },
  { name: 'origin', arg: 'ORIGIN', doc: 'send this Origin header (as a browser page from ORIGIN would)' },
  { name: 'insecure', doc: 'for wss://: do not verify the server\'s certificate (self-signed test servers)' },
  { name: 'ca', arg: 'FILE', doc: 'for wss://: trust the certificates in FILE (PEM) instead of the built-in roots' },
  { name: 'cert', arg: 'FILE', doc: 'present this client certificate (PEM, goes with --key) to a server that asks for one' },
  { name: 'key', arg: 'FILE', doc: `the client certificate's private key (PEM); an encrypted key's passphrase is read from $${KEY_PASSPHRASE_ENV}` },
  { name: 'servername', arg: 'NAME', doc: 'for wss://: send NAME as SNI and check the certificate against it (default: the URL\'s host)' },
  { name: 'follow-redirects', arg: 'N', unit: 'redirects', default: CONNECT_DEFAULTS.followRedirects, doc: 'follow up to N redirects (301, 302, 303, 307, 308) of the handshake; 0 refuses them' },
  { name: 'show-binary', arg: 'hex|base64', default: CONNECT_DEFAULTS.showBinary, doc: 'how binary messages are written out' },
  { name: 'execute', short: 'x', arg: 'MSG', repeatable: true, doc: 'send MSG instead of reading stdin, print the replies, close and exit' },
  { name: 'replies', arg: 'N', unit: 'messages', default: CONNECT_DEFAULTS.replies, doc: 'with --execute: close after printing N messages; 0 closes right after sending' },
  { name: 'reply-timeout-ms', arg: 'N', unit: 'ms', default: CONNECT_DEFAULTS.replyTimeoutMs, doc: 'with --execute: fewer than --replies messages by then closes and exits 1' },
  { name: 'ping-interval-ms', arg: 'N', unit: 'ms', default: CONNECT_DEFAULTS.pingIntervalMs, doc: 'keep-alive ping every N ms; a server silent for an interval after an unanswered ping is dropped; 0 = off' },
  { name: 'ping-interval', arg: 'DURATION', doc: 'the same with a unit: 30s, 1.5s or 500ms' },
  { name: 'deflate', doc: 'offer permessage-deflate compression (RFC 7692)' },
  { name: 'max-message-bytes', arg: 'N', unit: 'bytes', default: CONNECT_DEFAULTS.maxMessageBytes, doc: 'largest message accepted; a larger one closes with 1009' },
  { name: 'handshake-timeout-ms', arg: 'N', unit: 'ms', default: CONNECT_DEFAULTS.handshakeTimeoutMs, doc: 'give up if the server has not answered the handshake by then' },
  { name: 'close-timeout-ms', arg: 'N', unit: 'ms', default: CONNECT_DEFAULTS.closeTimeoutMs, doc: 'after sending a close, wait this long for the server\'s before dropping the connection' },
  { name: 'help', short: 'h', doc: 'show this help' },
];

/**
 * Request headers that the handshake itself writes (RFC 6455 §4.1) or that another flag owns: -H may not set
 * them, since a second value would break the handshake or silently lose to the real one.
 */
const RESERVED_HEADERS: Readonly<Record<string, string>> = {
  'connection': 'it is part of the WebSocket handshake',
  'upgrade': 'it is part of the WebSocket handshake',
  'sec-websocket-key': 'it is part of the WebSocket handshake',
  'sec-websocket-version': 'it is part of the WebSocket handshake',
  'sec-websocket-accept': 'it is part of the WebSocket handshake',
  'sec-websocket-protocol': 'use --protocol NAME',
  'sec-websocket-extensions': 'use --deflate',
  'origin': 'use --origin ORIGIN',
  'content-length': 'a handshake request has no body',
  'transfer-encoding': 'a handshake request has no body',
};

// RFC 9110 §5.1: a field name is a token.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Splits the arguments into flags and positionals: --name value, --name=value, -H value, -Hvalue, `--` ends flags. */
function tokenize(args: readonly string[]): { flags: ArgvFlag<ConnectFlag>[]; positionals: string[] } {
  return splitArgv(args, {
    long: (name) => CONNECT_FLAGS.find((candidate) => candidate.name === name),
    short: (letter) => CONNECT_FLAGS.find((candidate) => candidate.short === letter),
    names: CONNECT_FLAGS.map((flag) => flag.name),
    valueName: (flag) => flag.arg,
  }, { attachedShortValues: true });
}

function integer(value: string, written: string, min: number, unit?: string): number {
  const parsed = /^-?\d+$/.test(value) ? Number(value) : value;
  return checkLeaf({ type: 'integer', min, ...(unit !== undefined && { unit }) }, parsed, written, { baseDir: '/' }) as number;
}

/** "30s", "1.5s", "500ms" -> milliseconds. A bare number is refused: seconds or milliseconds is a guess. */
export function parseDuration(value: string, written: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s)$/.exec(value.trim());
  if (match === null) {
    const bare = /^\d+(?:\.\d+)?$/.test(value.trim());
    throw new ConfigError(written, bare
      ? `needs a unit: ${value}s or ${value}ms (or use --ping-interval-ms N) (got ${describeValue(value)})`
      : `must be a duration such as 30s or 500ms (got ${describeValue(value)})`);
  }
  const ms = Number(match[1]) * (match[2] === 's' ? 1000 : 1);
  if (!Number.isSafeInteger(Math.round(ms))) throw new ConfigError(written, `is too long (got ${describeValue(value)})`);
  return Math.round(ms);
}

/** "Name: value" -> [name, value], checked (RFC 9110 §5.1, §5.5) and not one the handshake owns. */
export function parseHeader(value: string, written: string): [string, string] {
  const colon = value.indexOf(':');
  if (colon === -1) throw new ConfigError(written, `must be "Name: value" (got ${describeValue(value)})`);
  const name = value.slice(0, colon).trim();
  const fieldValue = value.slice(colon + 1).trim();
  if (!TOKEN.test(name)) throw new ConfigError(written, `the header name must be a token: letters, digits and !#$%&'*+-.^_\`|~ (got ${describeValue(value)})`);
  const reserved = RESERVED_HEADERS[name.toLowerCase()];
  if (reserved !== undefined) throw new ConfigError(written, `cannot set ${name}: ${reserved}`);
  checkLeaf({ type: 'string', format: 'header-value' }, fieldValue, written, { baseDir: '/' });
  return [name, fieldValue];
}

const URL_FORMS = 'a ws://, wss:// (or http://, https://) URL such as ws://127.0.0.1:8080/echo, or ws+unix:///path/to.sock:/path';

/**
 * A URL connect() takes, checked with the client's own parser so that the CLI refuses exactly what connect()
 * would (before connecting, as a usage error): ws:, wss:, http: and https: (read as ws: and wss:, as connect()
 * and browsers do), ws+unix: and wss+unix:; no fragment (RFC 6455 §3). Returned as given.
 */
export function checkConnectUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError('URL', `must be ${URL_FORMS} (got ${describeValue(value)})`);
  }
  if (!/^(wss?|https?|wss?\+unix):$/.test(url.protocol)) throw new ConfigError('URL', `must be ${URL_FORMS} (got ${describeValue(value)})`);
  // RFC 6455 §3: fragment identifiers are meaningless in WebSocket URIs and MUST NOT be used.
  if (url.hash !== '' || value.includes('#')) throw new ConfigError('URL', `must not have a #fragment (RFC 6455 §3) (got ${describeValue(value)})`);
  try {
    parseClientUrl(value);
  } catch (error) {
    throw new ConfigError('URL', `${(error as Error).message} (got ${describeValue(value)})`);
  }
  return value;
}

// A DNS name as SNI carries it (RFC 6066 §3): labels of letters, digits, "-" and "_" (seen in internal names).
const SERVER_NAME = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$/;

/** --servername: a host name; not an IP address, which SNI cannot carry (RFC 6066 §3). */
export function checkServerName(value: string, written: string): string {
  if (isIP(value.replace(/^\[|\]$/g, '')) !== 0) {
    throw new ConfigError(written, `must be a host name, not an IP address: SNI carries names only (RFC 6066 §3), and a wss://IP URL is checked against that IP already (got ${describeValue(value)})`);
  }
  if (!SERVER_NAME.test(value) || value.length > 253) throw new ConfigError(written, `must be a host name such as api.example.com (got ${describeValue(value)})`);
  return value;
}

/** A file name flag's value: not empty (the file itself is read, and its errors reported, by the command). */
function fileName(value: string, written: string, what: string): string {
  if (value === '' || value.includes('\0')) throw new ConfigError(written, `needs the path of ${what} (got ${describeValue(value)})`);
  return value;
}

const HELP: ConnectInvocation = {
  help: true, url: '', protocols: [], headers: {}, insecure: false, followRedirects: CONNECT_DEFAULTS.followRedirects,
  showBinary: CONNECT_DEFAULTS.showBinary, execute: [],
  replies: CONNECT_DEFAULTS.replies, replyTimeoutMs: CONNECT_DEFAULTS.replyTimeoutMs, pingIntervalMs: CONNECT_DEFAULTS.pingIntervalMs,
  deflate: false, maxMessageBytes: CONNECT_DEFAULTS.maxMessageBytes, handshakeTimeoutMs: CONNECT_DEFAULTS.handshakeTimeoutMs,
  closeTimeoutMs: CONNECT_DEFAULTS.closeTimeoutMs,
};

/**
 * Reads `connect`'s arguments (after the word "connect"). `env` is where SWITCHYARD_KEY_PASSPHRASE is looked up
 * (the command passes process.env). Throws ConfigError naming the flag, or URL.
 */
export function parseConnectArgs(args: readonly string[], env: Readonly<Record<string, string | undefined>> = {}): ConnectInvocation {
  const { flags, positionals } = tokenize(args);
  if (flags.some(({ flag }) => flag.name === 'help')) return HELP;
  const protocols: string[] = [];
  const headers: Record<string, string> = {};
  const execute: string[] = [];
  let origin: string | undefined;
  let insecure = false;
  let deflate = false;
  let showBinary: BinaryFormat = CONNECT_DEFAULTS.showBinary;
  let replies: number = CONNECT_DEFAULTS.replies;
  let replyTimeoutMs: number = CONNECT_DEFAULTS.replyTimeoutMs;
  let pingIntervalMs: number = CONNECT_DEFAULTS.pingIntervalMs;
  let maxMessageBytes: number = CONNECT_DEFAULTS.maxMessageBytes;
  let handshakeTimeoutMs: number = CONNECT_DEFAULTS.handshakeTimeoutMs;
  let closeTimeoutMs: number = CONNECT_DEFAULTS.closeTimeoutMs;
  let followRedirects: number = CONNECT_DEFAULTS.followRedirects;
  const files: { ca?: string; cert?: string; key?: string } = {};
  let servername: string | undefined;
  const executeOnly: string[] = [];

  for (const { flag, written, value } of flags) {
    // Switches first; every other flag has a string value (tokenize() made sure).
    if (value === true) {
      if (flag.name === 'insecure') insecure = true;
      else if (flag.name === 'deflate') deflate = true;
      continue;
    }
    switch (flag.name) {
      case 'protocol':
        if (protocols.includes(value)) throw new ConfigError(written, `offers ${describeValue(value)} twice`);
        protocols.push(checkListItem('token', value, written));
        break;
      case 'header': {
        const [name, fieldValue] = parseHeader(value, written);
        const existing = Object.keys(headers).find((key) => key.toLowerCase() === name.toLowerCase());
        if (existing === undefined) headers[name] = fieldValue;
        else headers[existing] = `${headers[existing]}, ${fieldValue}`;
        break;
      }
      case 'origin':
        origin = checkLeaf({ type: 'string', format: 'header-value' }, value, written, { baseDir: '/' }) as string;
        if (origin === '') throw new ConfigError(written, 'must not be empty');
        break;
      case 'show-binary':
        showBinary = checkLeaf({ type: 'enum', values: BINARY_FORMATS }, value, written, { baseDir: '/' }) as BinaryFormat;
        break;
      case 'execute':
        execute.push(value);
        break;
      case 'replies':
        replies = integer(value, written, 0, 'messages');
        executeOnly.push(written);
        break;
      case 'reply-timeout-ms':
        replyTimeoutMs = integer(value, written, 1, 'ms');
        executeOnly.push(written);
        break;
      case 'ping-interval-ms':
        pingIntervalMs = integer(value, written, 0, 'ms');
        break;
      case 'ping-interval':
        pingIntervalMs = parseDuration(value, written);
        break;
      case 'max-message-bytes':
        maxMessageBytes = integer(value, written, 1, 'bytes');
        break;
      case 'handshake-timeout-ms':
        handshakeTimeoutMs = integer(value, written, 1, 'ms');
        break;
      case 'close-timeout-ms':
        closeTimeoutMs = integer(value, written, 1, 'ms');
        break;
      case 'follow-redirects':
        followRedirects = integer(value, written, 0, 'redirects');
        break;
      case 'ca':
        files.ca = fileName(value, written, 'a PEM file of trusted certificates');
        break;
      case 'cert':
        files.cert = fileName(value, written, 'a PEM client certificate');
        break;
      case 'key':
        files.key = fileName(value, written, 'a PEM private key');
        break;
      case 'servername':
        servername = checkServerName(value, written);
        break;
    }
  }
  // A certificate without its key cannot be presented, and a key alone is nothing to present.
  if (files.cert !== undefined && files.key === undefined) throw new ConfigError('--cert', 'needs --key FILE too (the certificate\'s private key; the same file if it holds both)');
  if (files.key !== undefined && files.cert === undefined) throw new ConfigError('--key', 'needs --cert FILE too (the client certificate the key belongs to)');
  // Read only for a key (a variable left set in the environment is not an error); empty counts as unset.
  const passphrase = files.key === undefined || env[KEY_PASSPHRASE_ENV] === '' ? undefined : env[KEY_PASSPHRASE_ENV];
  if (execute.length === 0 && executeOnly.length > 0) throw new ConfigError(executeOnly[0]!, 'applies only with --execute MSG');
  if (positionals.length === 0) throw new ConfigError('URL', 'missing: switchyard connect URL [options], e.g. switchyard connect ws://127.0.0.1:8080/echo');
  if (positionals.length > 1) throw new ConfigError('URL', `connect takes one URL (got ${positionals.length}: ${positionals.join(' ')})`);
  return {
    help: false, url: checkConnectUrl(positionals[0]!), protocols, headers, ...(origin !== undefined && { origin }), insecure,
    ...(files.ca !== undefined && { caFile: files.ca }),
    ...(files.cert !== undefined && { certFile: files.cert }),
    ...(files.key !== undefined && { keyFile: files.key }),
    ...(passphrase !== undefined && { passphrase }),
    ...(servername !== undefined && { servername }),
    followRedirects, showBinary, execute, replies, replyTimeoutMs, pingIntervalMs, deflate, maxMessageBytes, handshakeTimeoutMs, closeTimeoutMs,
  };
}
