// Unit tests for the access log (src/server/access-log.ts) and combineObservers (src/server/observer.ts): exact
// lines for every event in both formats under a fixed clock, hostile strings that must never put a raw control
// character or line break into a line, and JSON lines that parse back to the records.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createAccessLog, escapeLogText } from '../../src/server/access-log.js';
import { combineObservers, type HandshakeRejectRecord, type HttpRequestRecord, type ServerObserver,
  type WebSocketCloseRecord, type WebSocketOpenRecord } from '../../src/server/observer.js';

const FIXED = new Date(Date.UTC(2026, 10, 21, 11, 30, 22, 5));
const fixedClock = (): Date => FIXED;

function capture(format: 'text' | 'json'): { lines: string[]; log: ServerObserver } {
  const lines: string[] = [];
  return { lines, log: createAccessLog({ format, write: (line) => lines.push(line), now: fixedClock }) };
}

const http: HttpRequestRecord = {
  method: 'GET', url: '/x?y=1', httpVersion: '1.1', status: 200, bytesSent: 1234, durationMs: 12.3456,
  remoteAddress: '127.0.0.1', userAgent: 'curl/8.5.0', referer: 'https://example.com/',
};
const open: WebSocketOpenRecord = { id: 7, route: '/chat', url: '/chat?room=1', remoteAddress: '::1', protocol: 'chat.v1' };
const closed: WebSocketCloseRecord = {
  ...open, durationMs: 1234, code: 1000, reason: 'bye', wasClean: true,
  messagesIn: 3, messagesOut: 5, bytesIn: 120, bytesOut: 400, droppedMessages: 0,
};
const rejected: HandshakeRejectRecord = {
  route: '/chat', url: '/chat', remoteAddress: '10.0.0.2', status: 403, reason: 'origin', detail: 'origin not allowed',
};

/** Every line must be one line of printable text: no C0/C1 control, DEL, or Unicode line separator. */
function assertSafeLine(line: string): void {
  assert.doesNotMatch(line, /[\x00-\x1f\x7f-\x9f\u2028\u2029]/, `unsafe character in ${JSON.stringify(line)}`);
}

describe('createAccessLog (text)', () => {
  it('writes an HTTP request in the Combined Log Format plus the duration', () => {
    const { lines, log } = capture('text');
    log.httpRequest?.(http);
    assert.deepEqual(lines, ['127.0.0.1 - - [21/Nov/2026:11:30:22 +0000] "GET /x?y=1 HTTP/1.1" 200 1234 "https://example.com/" "curl/8.5.0" 12.346ms']);
  });

  it('writes "-" for no body, no referer, no user agent and no address, as CLF does', () => {
    const { lines, log } = capture('text');
    log.httpRequest?.({ ...http, status: 304, bytesSent: 0, referer: '', userAgent: '', remoteAddress: '', durationMs: 0 });
    assert.deepEqual(lines, ['- - - [21/Nov/2026:11:30:22 +0000] "GET /x?y=1 HTTP/1.1" 304 - "-" "-" 0ms']);
  });

  it('pads the date and uses UTC whatever the time zone', () => {
    const lines: string[] = [];
    const log = createAccessLog({ format: 'text', write: (line) => lines.push(line), now: () => new Date(Date.UTC(2027, 0, 2, 3, 4, 5)) });
    log.httpRequest?.(http);
    assert.match(lines[0]!, /\[02\/Jan\/2027:03:04:05 \+0000\]/);
  });

  it('writes a WebSocket open', () => {
    const { lines, log } = capture('text');
    log.webSocketOpen?.(open);
    log.webSocketOpen?.({ ...open, id: 8, protocol: '' });
    assert.deepEqual(lines, [
      'ws-open ::1 [21/Nov/2026:11:30:22 +0000] "/chat?room=1" route=/chat id=7 protocol=chat.v1',
      'ws-open ::1 [21/Nov/2026:11:30:22 +0000] "/chat?room=1" route=/chat id=8 protocol=-',
    ]);
  });

  it('writes a WebSocket close with its traffic, code and reason', () => {
    const { lines, log } = capture('text');
    log.webSocketClose?.(closed);
    log.webSocketClose?.({ ...closed, code: 1006, wasClean: false, reason: '', droppedMessages: 2 });
    assert.deepEqual(lines, [
      'ws-close ::1 [21/Nov/2026:11:30:22 +0000] "/chat?room=1" route=/chat id=7 code=1000 clean=true duration=1234ms in=3msg/120B out=5msg/400B dropped=0 reason="bye"',
      'ws-close ::1 [21/Nov/2026:11:30:22 +0000] "/chat?room=1" route=/chat id=7 code=1006 clean=false duration=1234ms in=3msg/120B out=5msg/400B dropped=2 reason=""',
    ]);
  });

  it('writes a refused handshake, with "-" for no route', () => {
    const { lines, log } = capture('text');
    log.handshakeRejected?.(rejected);
    log.handshakeRejected?.({ ...rejected, route: '', url: '/nope', status: 404, reason: 'no-route', detail: 'no WebSocket route at this path' });
    assert.deepEqual(lines, [
      'ws-reject 10.0.0.2 [21/Nov/2026:11:30:22 +0000] "/chat" route=/chat status=403 reason=origin detail="origin not allowed"',
      'ws-reject 10.0.0.2 [21/Nov/2026:11:30:22 +0000] "/nope" route=- status=404 reason=no-route detail="no WebSocket route at this path"',
    ]);
  });

  it('has no line for messageDropped (the close line carries the count)', () => {
    const { log } = capture('text');
    assert.equal(log.messageDropped, undefined);
  });

  it('escapes newlines, quotes, backslashes and escape sequences in every user-controlled field', () => {
    const { lines, log } = capture('text');
    const hostile = 'a"b\\c\r\nd\x1b[31me\x00\x7f\x85\u2028\u202e';
    log.httpRequest?.({ ...http, url: `/x${hostile}`, userAgent: hostile, referer: hostile, method: 'G\nET' });
    log.webSocketOpen?.({ ...open, url: `/x${hostile}`, protocol: 'p q' });
    log.webSocketClose?.({ ...closed, url: '/x', reason: hostile, route: '/a b' });
    log.handshakeRejected?.({ ...rejected, url: hostile, detail: hostile });
    const escaped = 'a\\"b\\\\c\\x0d\\x0ad\\x1b[31me\\x00\\x7f\\x85\\u2028\\u202e';
    assert.equal(escapeLogText(hostile), escaped);
    assert.deepEqual(lines, [
      `127.0.0.1 - - [21/Nov/2026:11:30:22 +0000] "G\\x0aET /x${escaped} HTTP/1.1" 200 1234 "${escaped}" "${escaped}" 12.346ms`,
      `ws-open ::1 [21/Nov/2026:11:30:22 +0000] "/x${escaped}" route=/chat id=7 protocol="p q"`,
      `ws-close ::1 [21/Nov/2026:11:30:22 +0000] "/x" route="/a b" id=7 code=1000 clean=true duration=1234ms in=3msg/120B out=5msg/400B dropped=0 reason="${escaped}"`,
      `ws-reject 10.0.0.2 [21/Nov/2026:11:30:22 +0000] "${escaped}" route=/chat status=403 reason=origin detail="${escaped}"`,
    ]);
    for (const line of lines) assertSafeLine(line);
  });

  it('escapes every C0 and C1 control character as \\xHH', () => {
    for (let code = 0; code <= 0x9f; code += 1) {
      if (code >= 0x20 && code < 0x7f) continue;
      assert.equal(escapeLogText(`<${String.fromCharCode(code)}>`), `<\\x${code.toString(16).padStart(2, '0')}>`);
    }
    assert.equal(escapeLogText('plain /path?q=1 ü'), 'plain /path?q=1 ü');
  });
});

describe('createAccessLog (json)', () => {
  it('writes one object per event with time, event and the record\'s fields in order', () => {
    const { lines, log } = capture('json');
    log.httpRequest?.(http);
    log.webSocketOpen?.(open);
    log.webSocketClose?.(closed);
    log.handshakeRejected?.(rejected);
    assert.deepEqual(lines, [
      '{"time":"2026-11-21T11:30:22.005Z","event":"http","method":"GET","url":"/x?y=1","httpVersion":"1.1","status":200,"bytesSent":1234,"durationMs":12.346,"remoteAddress":"127.0.0.1","userAgent":"curl/8.5.0","referer":"https://example.com/"}',
      '{"time":"2026-11-21T11:30:22.005Z","event":"ws-open","id":7,"route":"/chat","url":"/chat?room=1","remoteAddress":"::1","protocol":"chat.v1"}',
      '{"time":"2026-11-21T11:30:22.005Z","event":"ws-close","id":7,"route":"/chat","url":"/chat?room=1","remoteAddress":"::1","protocol":"chat.v1","durationMs":1234,"code":1000,"reason":"bye","wasClean":true,"messagesIn":3,"messagesOut":5,"bytesIn":120,"bytesOut":400,"droppedMessages":0}',
      '{"time":"2026-11-21T11:30:22.005Z","event":"ws-reject","route":"/chat","url":"/chat","remoteAddress":"10.0.0.2","status":403,"reason":"origin","detail":"origin not allowed"}',
    ]);
  });

  it('parses back to the records, hostile strings included, one line each', () => {
    const { lines, log } = capture('json');
    const hostile = 'a"b\\c\r\nd\x1b[31me\x00\u2028';
    const record = { ...closed, url: `/x${hostile}`, reason: hostile };
    log.webSocketClose?.(record);
    log.httpRequest?.({ ...http, userAgent: hostile, referer: hostile, durationMs: 5 });
    assert.equal(lines.length, 2);
    for (const line of lines) assert.doesNotMatch(line, /[\x00-\x1f\x7f]/);
    assert.deepEqual(JSON.parse(lines[0]!), { time: FIXED.toISOString(), event: 'ws-close', ...record });
    assert.deepEqual(JSON.parse(lines[1]!), { time: FIXED.toISOString(), event: 'http', ...http, userAgent: hostile, referer: hostile, durationMs: 5 });
  });

  it('copies only the record\'s own fields', () => {
    const { lines, log } = capture('json');
    log.webSocketOpen?.({ ...open, secret: 'x' } as WebSocketOpenRecord);
    assert.equal('secret' in JSON.parse(lines[0]!), false);
  });
});

describe('createAccessLog options', () => {
  it('rejects an unknown format or a missing writer', () => {
    assert.throws(() => createAccessLog({ format: 'xml' as 'text', write: () => {} }), TypeError);
    assert.throws(() => createAccessLog({ format: 'text' } as Parameters<typeof createAccessLog>[0]), TypeError);
  });

  it('uses the real clock by default', () => {
    const lines: string[] = [];
    const before = Date.now();
    createAccessLog({ format: 'json', write: (line) => lines.push(line) }).webSocketOpen?.(open);
    const time = Date.parse((JSON.parse(lines[0]!) as { time: string }).time);
    assert.ok(time >= before && time <= Date.now());
  });
});

describe('combineObservers', () => {
  it('calls each observer in turn with `this` kept, and only has methods someone implements', () => {
    const calls: string[] = [];
    class Counter implements ServerObserver {
      count = 0;
      webSocketOpen(): void { this.count += 1; calls.push('counter'); }
    }
    const counter = new Counter();
    const combined = combineObservers(counter, { webSocketOpen: () => calls.push('plain'), messageDropped: (route, count) => calls.push(`${route}:${count}`) });
    combined.webSocketOpen?.(open);
    combined.messageDropped?.('/chat', 3);
    assert.deepEqual(calls, ['counter', 'plain', '/chat:3']);
    assert.equal(counter.count, 1);
    assert.equal(combined.httpRequest, undefined);
    assert.deepEqual(Object.keys(combineObservers()), []);
  });

  it('isolates an observer that throws and warns once for it', (t) => {
    const warnings: string[] = [];
    // Record instead of printing: the test runner's output stays clean.
    t.mock.method(process, 'emitWarning', (message: string, type: string) => { warnings.push(`${type}: ${message}`); });
    const seen: number[] = [];
    const broken: ServerObserver = { webSocketOpen() { throw new Error('boom'); }, httpRequest() { throw new Error('again'); } };
    const combined = combineObservers(broken, { webSocketOpen: (record) => seen.push(record.id) });
    assert.doesNotThrow(() => combined.webSocketOpen?.(open));
    assert.doesNotThrow(() => combined.webSocketOpen?.({ ...open, id: 8 }));
    assert.doesNotThrow(() => combined.httpRequest?.(http));
    assert.deepEqual(seen, [7, 8]);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /^SwitchyardWarning: server observer's webSocketOpen\(\) threw.*boom/s);
  });
});
