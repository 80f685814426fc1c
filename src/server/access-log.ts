// The access log: a ServerObserver that turns each HTTP request, WebSocket open, WebSocket close and refused
// handshake into one line, in the Combined Log Format family (`text`) or as JSON lines (`json`). Lines never
// contain a raw control character or line break, whatever a client sends.
import type { AccessLogOptions } from './options.js';
import type {
  HandshakeRejectRecord, HttpRequestRecord, ServerObserver, WebSocketCloseRecord, WebSocketOpenRecord,
} from './observer.js';

export interface AccessLogWriterOptions extends AccessLogOptions {
  /** The clock stamped on each line; tests pass a fixed one. Default `() => new Date()`. */
  now?: () => Date;
}

/** The `event` field of a JSON line, also the first word of a `text` WebSocket line. */
export type AccessLogEvent = 'http' | 'ws-open' | 'ws-close' | 'ws-reject';

/**
 * Returns an observer that writes one line (no trailing newline) per HTTP request, WebSocket open, WebSocket
 * close and refused handshake to `options.write`. Timestamps are in UTC and taken when the line is written (for
 * HTTP, when the response finished, as nginx's $time_local; subtract the duration for the arrival time).
 *
 * text:
 * ```
 * 127.0.0.1 - - [21/Nov/2026:11:30:22 +0000] "GET /x HTTP/1.1" 200 1234 "https://ref/" "curl/8.5" 12ms
 * ws-open 127.0.0.1 [21/Nov/2026:11:30:22 +0000] "/chat?room=1" route=/chat id=7 protocol=chat.v1
 * ws-close 127.0.0.1 [21/Nov/2026:11:30:23 +0000] "/chat?room=1" route=/chat id=7 code=1000 clean=true duration=1234ms in=3msg/120B out=5msg/400B dropped=0 reason="bye"
 * ws-reject 127.0.0.1 [21/Nov/2026:11:30:24 +0000] "/chat" route=/chat status=403 reason=origin detail="origin not allowed"
 * ```
 * json: `{"time":"2026-11-21T11:30:22.000Z","event":"http", ...the record's fields}`.
 */
export function createAccessLog(options: AccessLogWriterOptions): ServerObserver {
  const { format, write } = options;
  if (format !== 'text' && format !== 'json') throw new TypeError(`accessLog.format must be "text" or "json" (got ${JSON.stringify(format)})`);
  if (typeof write !== 'function') throw new TypeError('accessLog.write must be a function');
  const now = options.now ?? (() => new Date());
  if (typeof now !== 'function') throw new TypeError('accessLog.now must be a function');

  if (format === 'json') {
    const line = (event: AccessLogEvent, fields: Record<string, unknown>): void => {
      write(JSON.stringify({ time: now().toISOString(), event, ...fields }));
    };
    return {
      httpRequest: (r) => line('http', httpFields(r)),
      webSocketOpen: (r) => line('ws-open', openFields(r)),
      webSocketClose: (r) => line('ws-close', closeFields(r)),
      handshakeRejected: (r) => line('ws-reject', rejectFields(r)),
    };
  }
  return {
    httpRequest: (r) => write(formatHttpText(r, now())),
    webSocketOpen: (r) => write(formatOpenText(r, now())),
    webSocketClose: (r) => write(formatCloseText(r, now())),
    handshakeRejected: (r) => write(formatRejectText(r, now())),
  };
}

// ---- text lines ----

/** `%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"` (Apache's combined format) plus ` <duration>ms`. */
export function formatHttpText(r: HttpRequestRecord, time: Date): string {
  const version = /^HTTP\//i.test(r.httpVersion) ? r.httpVersion : `HTTP/${r.httpVersion}`;
  // CLF writes "-" for a response with no body, and for an absent header.
  const bytes = r.bytesSent > 0 ? String(r.bytesSent) : '-';
  return `${bare(r.remoteAddress)} - - [${clfTime(time)}] "${escapeLogText(`${r.method} ${r.url} ${version}`)}" `
    + `${r.status} ${bytes} "${escapeLogText(dash(r.referer))}" "${escapeLogText(dash(r.userAgent))}" ${formatMs(r.durationMs)}ms`;
}

export function formatOpenText(r: WebSocketOpenRecord, time: Date): string {
  return `${wsHead('ws-open', r, time)} protocol=${bare(r.protocol)}`;
}

export function formatCloseText(r: WebSocketCloseRecord, time: Date): string {
  return `${wsHead('ws-close', r, time)} code=${r.code} clean=${r.wasClean} duration=${formatMs(r.durationMs)}ms`
    + ` in=${r.messagesIn}msg/${r.bytesIn}B out=${r.messagesOut}msg/${r.bytesOut}B dropped=${r.droppedMessages}`
    + ` reason="${escapeLogText(r.reason)}"`;
}

export function formatRejectText(r: HandshakeRejectRecord, time: Date): string {
  return `ws-reject ${bare(r.remoteAddress)} [${clfTime(time)}] "${escapeLogText(r.url)}" route=${bare(r.route)}`
    + ` status=${r.status} reason=${bare(r.reason)} detail="${escapeLogText(r.detail)}"`;
}

function wsHead(event: AccessLogEvent, r: WebSocketOpenRecord, time: Date): string {
  return `${event} ${bare(r.remoteAddress)} [${clfTime(time)}] "${escapeLogText(r.url)}" route=${bare(r.route)} id=${r.id}`;
}

// ---- JSON lines: the record's fields in a fixed order, copied by name so nothing else leaks in ----

function httpFields(r: HttpRequestRecord): Record<string, unknown> {
  return {
    method: r.method, url: r.url, httpVersion: r.httpVersion, status: r.status, bytesSent: r.bytesSent,
    durationMs: roundMs(r.durationMs), remoteAddress: r.remoteAddress, userAgent: r.userAgent, referer: r.referer,
  };
}

function openFields(r: WebSocketOpenRecord): Record<string, unknown> {
  return { id: r.id, route: r.route, url: r.url, remoteAddress: r.remoteAddress, protocol: r.protocol };
}

function closeFields(r: WebSocketCloseRecord): Record<string, unknown> {
  return {
    ...openFields(r), durationMs: roundMs(r.durationMs), code: r.code, reason: r.reason, wasClean: r.wasClean,
    messagesIn: r.messagesIn, messagesOut: r.messagesOut, bytesIn: r.bytesIn, bytesOut: r.bytesOut,
    droppedMessages: r.droppedMessages,
  };
}

function rejectFields(r: HandshakeRejectRecord): Record<string, unknown> {
  return { route: r.route, url: r.url, remoteAddress: r.remoteAddress, status: r.status, reason: r.reason, detail: r.detail };
}

// ---- escaping and formatting ----

/**
 * Characters that never reach a text line raw: C0 controls (newlines included), DEL, C1 controls, the Unicode
 * line and paragraph separators, bidirectional overrides and isolates (which can make a line read differently
 * from what it holds), and `"` and `\` (which would end or confuse a quoted field).
 */
const UNSAFE = /[\x00-\x1f\x7f-\x9f"\\\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const HAS_UNSAFE = new RegExp(UNSAFE.source);

/**
 * Escapes a user-controlled string for a quoted field, as Apache's mod_log_config does: `"` and `\` get a
 * backslash, control characters become `\xHH`; the few unsafe characters above U+00FF become `\uHHHH`.
 */
export function escapeLogText(value: string): string {
  if (!HAS_UNSAFE.test(value)) return value;
  return value.replace(UNSAFE, (char) => {
    if (char === '"' || char === '\\') return `\\${char}`;
    const code = char.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** An unquoted `key=value` value: "-" when empty, quoted and escaped when it holds a space, quote or control. */
function bare(value: string): string {
  if (value === '') return '-';
  return /^[\x21\x23-\x5b\x5d-\x7e]+$/.test(value) ? value : `"${escapeLogText(value)}"`;
}

function dash(value: string): string {
  return value === '' ? '-' : value;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;
const pad2 = (n: number): string => String(n).padStart(2, '0');

/** `21/Nov/2026:11:30:22 +0000`, always UTC. */
export function clfTime(time: Date): string {
  return `${pad2(time.getUTCDate())}/${MONTHS[time.getUTCMonth()]}/${time.getUTCFullYear()}:`
    + `${pad2(time.getUTCHours())}:${pad2(time.getUTCMinutes())}:${pad2(time.getUTCSeconds())} +0000`;
}

/** Milliseconds to at most three decimals (microseconds); a negative or non-finite duration becomes 0. */
function roundMs(ms: number): number {
  return Number.isFinite(ms) && ms > 0 ? Math.round(ms * 1000) / 1000 : 0;
}

function formatMs(ms: number): string {
  return String(roundMs(ms));
}
