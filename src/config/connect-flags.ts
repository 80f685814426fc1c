// The `switchyard connect URL` command line: its flags, their defaults and units, and the checks that turn
// argv into a ConnectInvocation. Pure: throws ConfigError naming the flag (or URL) for anything wrong.
import { ConfigError } from '../errors.js';
import { closestName } from './suggest.js';
import { checkLeaf, checkListItem, describeValue } from './validate.js';

export const BINARY_FORMATS = ['hex', 'base64'] as const;
/** How a binary message is written out: hex digits or base64. */
export type BinaryFormat = (typeof BINARY_FORMATS)[number];

export interface ConnectInvocation {
  readonly help: boolean;
  /** ws:// or wss:// (as given); '' with help. */
  readonly url: string;
  /** --protocol: subprotocols offered, in order of preference. */
  readonly protocols: readonly string[];
  /** -H 'Name: value': extra request headers (a repeated name is joined with ", ", RFC 9110 §5.3). */
  readonly headers: Readonly<Record<string, string>>;
  readonly origin?: string;
  /** --insecure: do not verify the wss:// server's certificate. */
  readonly insecure: boolean;
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
} as const satisfies Partial<ConnectInvocation>;

/** Every `connect` flag, in --help order. */
export const CONNECT_FLAGS: readonly ConnectFlag[] = [
  { name: 'protocol', arg: 'NAME', repeatable: true, doc: 'offer this subprotocol (Sec-WebSocket-Protocol); the server picks one' },
  { name: 'header', short: 'H', arg: "'NAME: VALUE'", repeatable: true, doc: 'add a request header to the handshake' },
  { name: 'origin', arg: 'ORIGIN', doc: 'send this Origin header (as a browser page from ORIGIN would)' },
  { name: 'insecure', doc: 'for wss://: do not verify the server\'s certificate (self-signed test servers)' },
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

interface RawFlag {
  readonly flag: ConnectFlag;
  /** As written, for messages: '-H', '--header'. */
  readonly written: string;
  readonly value: string | true;
}

function suggestion(name: string): string {
  const guess = closestName(name, CONNECT_FLAGS.map((flag) => flag.name));
  return guess === undefined ? '' : ` (did you mean "--${guess}"?)`;
}

/** Splits the arguments into flags and positionals: --name value, --name=value, -H value, -Hvalue, `--` ends flags. */
function tokenize(args: readonly string[]): { flags: RawFlag[]; positionals: string[] } {
  const flags: RawFlag[] = [];
  const positionals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    let flag: ConnectFlag | undefined;
    let written: string;
    let inline: string | undefined;
    if (arg.startsWith('--')) {
      const equals = arg.indexOf('=');
      const name = equals === -1 ? arg.slice(2) : arg.slice(2, equals);
      inline = equals === -1 ? undefined : arg.slice(equals + 1);
      written = `--${name}`;
      flag = CONNECT_FLAGS.find((candidate) => candidate.name === name);
      if (flag === undefined) throw new ConfigError(written, `unknown flag${suggestion(name)}`);
    } else {
      written = arg.slice(0, 2);
      flag = CONNECT_FLAGS.find((candidate) => candidate.short === arg[1]);
      if (flag === undefined) throw new ConfigError(written, `unknown flag${suggestion(arg.slice(1))}`);
      // -H'X: y' (value attached), as curl takes it; a switch takes no attached letters.
      if (arg.length > 2) inline = arg.slice(2);
    }
    if (flag.arg === undefined) {
      if (inline !== undefined) throw new ConfigError(written, `takes no value (got ${describeValue(inline)})`);
      flags.push({ flag, written, value: true });
      continue;
    }
    let value = inline;
    if (value === undefined) {
      const next = args[i + 1];
      // "--origin --insecure" is a missing value, not an origin called "--insecure" (write --execute=--x for that).
      if (next === undefined || next.startsWith('--')) throw new ConfigError(written, `needs a value (${written} ${flag.arg})`);
      value = next;
      i++;
    }
    flags.push({ flag, written, value });
  }
  return { flags, positionals };
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

/** A ws:// or wss:// URL (ws+unix: and wss+unix: are passed on for the client to judge); no fragment. */
export function checkConnectUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError('URL', `must be a ws:// or wss:// URL such as ws://127.0.0.1:8080/echo (got ${describeValue(value)})`);
  }
  if (url.protocol === 'http:' || url.protocol === 'https:') {
    const fixed = `${url.protocol === 'https:' ? 'wss' : 'ws'}:${value.slice(url.protocol.length)}`;
    throw new ConfigError('URL', `must be a ws:// or wss:// URL (got ${describeValue(value)}; did you mean ${describeValue(fixed)}?)`);
  }
  if (!/^wss?(\+[a-z]+)?:$/.test(url.protocol)) throw new ConfigError('URL', `must be a ws:// or wss:// URL (got ${describeValue(value)})`);
  // RFC 6455 §3: fragment identifiers are meaningless in WebSocket URIs and MUST NOT be used.
  if (url.hash !== '' || value.includes('#')) throw new ConfigError('URL', `must not have a #fragment (RFC 6455 §3) (got ${describeValue(value)})`);
  return value;
}

const HELP: ConnectInvocation = {
  help: true, url: '', protocols: [], headers: {}, insecure: false, showBinary: CONNECT_DEFAULTS.showBinary, execute: [],
  replies: CONNECT_DEFAULTS.replies, replyTimeoutMs: CONNECT_DEFAULTS.replyTimeoutMs, pingIntervalMs: CONNECT_DEFAULTS.pingIntervalMs,
  deflate: false, maxMessageBytes: CONNECT_DEFAULTS.maxMessageBytes, handshakeTimeoutMs: CONNECT_DEFAULTS.handshakeTimeoutMs,
  closeTimeoutMs: CONNECT_DEFAULTS.closeTimeoutMs,
};

/** Reads `connect`'s arguments (after the word "connect"). Throws ConfigError naming the flag, or URL. */
export function parseConnectArgs(args: readonly string[]): ConnectInvocation {
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
    }
  }
  if (execute.length === 0 && executeOnly.length > 0) throw new ConfigError(executeOnly[0]!, 'applies only with --execute MSG');
  if (positionals.length === 0) throw new ConfigError('URL', 'missing: switchyard connect URL [options], e.g. switchyard connect ws://127.0.0.1:8080/echo');
  if (positionals.length > 1) throw new ConfigError('URL', `connect takes one URL (got ${positionals.length}: ${positionals.join(' ')})`);
  return {
    help: false, url: checkConnectUrl(positionals[0]!), protocols, headers, ...(origin !== undefined && { origin }), insecure, showBinary,
    execute, replies, replyTimeoutMs, pingIntervalMs, deflate, maxMessageBytes, handshakeTimeoutMs, closeTimeoutMs,
  };
}
