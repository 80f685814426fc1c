// Unit tests for Metrics (src/server/metrics.ts): the exact exposition text after a sequence of records, label
// escaping, cumulative histogram buckets, the gauge going up and down, traffic never counted twice, and a small
// checker for the Prometheus text format 0.0.4 that every render must pass.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_DURATION_BUCKETS_SECONDS, Metrics, contentType, escapeLabelValue } from '../../src/server/metrics.js';
import type { HttpRequestRecord, WebSocketCloseRecord, WebSocketOpenRecord } from '../../src/server/observer.js';

// ---- a small exposition-format checker ----

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
const VALUE = '(?:[+-]?Inf|NaN|[+-]?(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][+-]?\\d+)?)';
const SAMPLE = new RegExp(`^(${NAME})(\\{(?:${LABEL}(?:,${LABEL})*)?\\})? (${VALUE})$`);
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

interface Sample { name: string; labels: Map<string, string>; value: number }
interface ParsedFamily { name: string; type: string; help: string; samples: Sample[] }

function parseLabels(text: string | undefined): Map<string, string> {
  const labels = new Map<string, string>();
  if (text === undefined) return labels;
  for (const match of text.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"/g)) {
    assert.ok(!labels.has(match[1]!), `label ${match[1]} repeated in ${text}`);
    labels.set(match[1]!, match[2]!.replace(/\\(.)/g, (_, char: string) => (char === 'n' ? '\n' : char)));
  }
  return labels;
}

function parseValue(text: string): number {
  if (/^\+?Inf$/.test(text)) return Infinity;
  if (text === '-Inf') return -Infinity;
  return Number(text);
}

/** Which family a sample belongs to: its own name, or a histogram's name for _bucket/_sum/_count. */
function familyOf(sampleName: string, families: Map<string, ParsedFamily>): ParsedFamily | undefined {
  const own = families.get(sampleName);
  if (own !== undefined && own.type !== 'histogram') return own;
  const base = /^(.*)_(bucket|sum|count)$/.exec(sampleName)?.[1];
  const histogram = base === undefined ? undefined : families.get(base);
  return histogram?.type === 'histogram' ? histogram : undefined;
}

/**
 * Checks text against the 0.0.4 format: ends with a newline, every line a comment or `name{labels} value`,
 * HELP then TYPE once per family before its samples, a family's samples together, no duplicate series, and
 * histograms with ascending cumulative buckets ending in +Inf equal to _count.
 */
function checkExposition(text: string): Map<string, ParsedFamily> {
  assert.ok(text.endsWith('\n'), 'exposition ends with a newline');
  const families = new Map<string, ParsedFamily>();
  const seriesSeen = new Set<string>();
  let current: ParsedFamily | undefined;
  for (const line of text.slice(0, -1).split('\n')) {
    const help = /^# HELP (\S+) (.*)$/.exec(line);
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (help !== null) {
      assert.match(help[1]!, new RegExp(`^${NAME}$`));
      assert.ok(!families.has(help[1]!), `HELP for ${help[1]} twice`);
      current = { name: help[1]!, type: '', help: help[2]!, samples: [] };
      families.set(current.name, current);
      continue;
    }
    if (type !== null) {
      assert.equal(type[1], current?.name, `TYPE ${type[1]} must follow its HELP`);
      assert.equal(current!.type, '', `TYPE for ${type[1]} twice`);
      assert.ok(TYPES.has(type[2]!), `unknown type ${type[2]}`);
      current!.type = type[2]!;
      continue;
    }
    assert.ok(!line.startsWith('#') && line !== '', `unexpected line ${JSON.stringify(line)}`);
    const sample = SAMPLE.exec(line);
    assert.ok(sample !== null, `not a sample line: ${JSON.stringify(line)}`);
    const family = familyOf(sample[1]!, families);
    assert.ok(family !== undefined && family.type !== '', `${sample[1]} has no HELP/TYPE before it`);
    assert.equal(family, current, `${sample[1]} is not with the rest of its family`);
    const labels = parseLabels(sample[2]);
    const key = `${sample[1]}${JSON.stringify([...labels].sort())}`;
    assert.ok(!seriesSeen.has(key), `duplicate series ${line}`);
    seriesSeen.add(key);
    family.samples.push({ name: sample[1]!, labels, value: parseValue(sample[3]!) });
  }
  for (const family of families.values()) {
    if (family.type !== 'histogram') continue;
    const buckets = family.samples.filter((s) => s.name === `${family.name}_bucket`);
    const bounds = buckets.map((s) => parseValue(s.labels.get('le') ?? 'missing'));
    assert.equal(bounds.at(-1), Infinity, `${family.name} ends with le="+Inf"`);
    for (let i = 1; i < buckets.length; i += 1) {
      assert.ok(bounds[i]! > bounds[i - 1]!, `${family.name} buckets ascend`);
      assert.ok(buckets[i]!.value >= buckets[i - 1]!.value, `${family.name} buckets are cumulative`);
    }
    const count = family.samples.find((s) => s.name === `${family.name}_count`);
    assert.equal(count?.value, buckets.at(-1)?.value, `${family.name}_count equals the +Inf bucket`);
    assert.ok(family.samples.some((s) => s.name === `${family.name}_sum`), `${family.name}_sum present`);
  }
  return families;
}

function valueOf(families: Map<string, ParsedFamily>, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const family of families.values()) {
    for (const sample of family.samples) {
      if (sample.name !== name || sample.labels.size !== Object.keys(labels).length) continue;
      if (Object.entries(labels).every(([key, value]) => sample.labels.get(key) === value)) return sample.value;
    }
  }
  return undefined;
}

// ---- fixtures ----

const fixed = (): Metrics => new Metrics({ startTimeSeconds: 1_795_000_000.25, residentMemoryBytes: () => 52_428_800 });

function openRecord(id: number, route = '/chat'): WebSocketOpenRecord {
  return { id, route, url: `${route}?n=${id}`, remoteAddress: '127.0.0.1', protocol: '' };
}

function closeRecord(id: number, route = '/chat', overrides: Partial<WebSocketCloseRecord> = {}): WebSocketCloseRecord {
  return {
    ...openRecord(id, route), durationMs: 1000, code: 1000, reason: '', wasClean: true,
    messagesIn: 3, messagesOut: 5, bytesIn: 120, bytesOut: 400, droppedMessages: 0, ...overrides,
  };
}

function httpRecord(method: string, status: number, durationMs: number): HttpRequestRecord {
  return { method, url: '/', httpVersion: '1.1', status, bytesSent: 10, durationMs, remoteAddress: '127.0.0.1', userAgent: '', referer: '' };
}

// ---- tests ----

describe('Metrics.render', () => {
  it('renders the exact series after a sequence of records', () => {
    const metrics = fixed();
    metrics.webSocketOpen(openRecord(1));
    metrics.webSocketOpen(openRecord(2));
    metrics.webSocketOpen(openRecord(3, '/rooms/:room'));
    metrics.webSocketClose(closeRecord(1));
    metrics.webSocketClose(closeRecord(3, '/rooms/:room', { code: 4001, wasClean: false, messagesIn: 1, bytesIn: 7, messagesOut: 0, bytesOut: 0 }));
    metrics.messageDropped('/chat', 2);
    metrics.handshakeRejected({ route: '/chat', url: '/chat', remoteAddress: '127.0.0.1', status: 403, reason: 'origin', detail: '' });
    metrics.handshakeRejected({ route: '', url: '/x', remoteAddress: '127.0.0.1', status: 404, reason: 'no-route', detail: '' });
    metrics.handshakeRejected({ route: '', url: '/y', remoteAddress: '127.0.0.1', status: 404, reason: 'no-route', detail: '' });
    metrics.httpRequest(httpRecord('GET', 200, 3));
    metrics.httpRequest(httpRecord('GET', 200, 40));
    metrics.httpRequest(httpRecord('BREW', 405, 250));
    metrics.httpRequest(httpRecord('POST', 201, 20_000));

    const expected = `# HELP switchyard_websocket_open_connections WebSocket connections open now.
# TYPE switchyard_websocket_open_connections gauge
switchyard_websocket_open_connections{route="/chat"} 1
switchyard_websocket_open_connections{route="/rooms/:room"} 0
# HELP switchyard_websocket_connections_total WebSocket connections accepted (101 sent).
# TYPE switchyard_websocket_connections_total counter
switchyard_websocket_connections_total{route="/chat"} 2
switchyard_websocket_connections_total{route="/rooms/:room"} 1
# HELP switchyard_websocket_messages_received_total WebSocket data messages received.
# TYPE switchyard_websocket_messages_received_total counter
switchyard_websocket_messages_received_total{route="/chat"} 3
switchyard_websocket_messages_received_total{route="/rooms/:room"} 1
# HELP switchyard_websocket_messages_sent_total WebSocket data messages sent.
# TYPE switchyard_websocket_messages_sent_total counter
switchyard_websocket_messages_sent_total{route="/chat"} 5
switchyard_websocket_messages_sent_total{route="/rooms/:room"} 0
# HELP switchyard_websocket_received_bytes_total WebSocket message payload bytes received.
# TYPE switchyard_websocket_received_bytes_total counter
switchyard_websocket_received_bytes_total{route="/chat"} 120
switchyard_websocket_received_bytes_total{route="/rooms/:room"} 7
# HELP switchyard_websocket_sent_bytes_total WebSocket message payload bytes sent.
# TYPE switchyard_websocket_sent_bytes_total counter
switchyard_websocket_sent_bytes_total{route="/chat"} 400
switchyard_websocket_sent_bytes_total{route="/rooms/:room"} 0
# HELP switchyard_websocket_closes_total WebSocket connections closed, by close code (3000-3999 as "3xxx", 4000-4999 as "4xxx", unexpected codes as "other").
# TYPE switchyard_websocket_closes_total counter
switchyard_websocket_closes_total{route="/chat",code="1000"} 1
switchyard_websocket_closes_total{route="/rooms/:room",code="4xxx"} 1
# HELP switchyard_websocket_messages_dropped_total WebSocket messages dropped by the slow-consumer policy.
# TYPE switchyard_websocket_messages_dropped_total counter
switchyard_websocket_messages_dropped_total{route="/chat"} 2
switchyard_websocket_messages_dropped_total{route="/rooms/:room"} 0
# HELP switchyard_handshakes_rejected_total WebSocket upgrade requests refused, by reason.
# TYPE switchyard_handshakes_rejected_total counter
switchyard_handshakes_rejected_total{reason="no-route"} 2
switchyard_handshakes_rejected_total{reason="origin"} 1
# HELP switchyard_http_requests_total HTTP requests answered (upgrades excluded), by method (unknown methods as "other") and status code.
# TYPE switchyard_http_requests_total counter
switchyard_http_requests_total{method="GET",status="200"} 2
switchyard_http_requests_total{method="POST",status="201"} 1
switchyard_http_requests_total{method="other",status="405"} 1
# HELP switchyard_http_request_duration_seconds Time from an HTTP request's arrival to the end of its response.
# TYPE switchyard_http_request_duration_seconds histogram
switchyard_http_request_duration_seconds_bucket{le="0.005"} 1
switchyard_http_request_duration_seconds_bucket{le="0.01"} 1
switchyard_http_request_duration_seconds_bucket{le="0.025"} 1
switchyard_http_request_duration_seconds_bucket{le="0.05"} 2
switchyard_http_request_duration_seconds_bucket{le="0.1"} 2
switchyard_http_request_duration_seconds_bucket{le="0.25"} 3
switchyard_http_request_duration_seconds_bucket{le="0.5"} 3
switchyard_http_request_duration_seconds_bucket{le="1"} 3
switchyard_http_request_duration_seconds_bucket{le="2.5"} 3
switchyard_http_request_duration_seconds_bucket{le="5"} 3
switchyard_http_request_duration_seconds_bucket{le="10"} 3
switchyard_http_request_duration_seconds_bucket{le="+Inf"} 4
switchyard_http_request_duration_seconds_sum 20.293
switchyard_http_request_duration_seconds_count 4
# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.
# TYPE process_start_time_seconds gauge
process_start_time_seconds 1795000000.25
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 52428800
`;
    const text = metrics.render();
    assert.equal(text, expected);
    checkExposition(text);
  });

  it('renders every family with HELP and TYPE before anything was recorded', () => {
    const families = checkExposition(new Metrics().render());
    assert.equal(families.size, 13);
    assert.equal(valueOf(families, 'switchyard_http_request_duration_seconds_count'), 0);
    assert.equal(valueOf(families, 'switchyard_http_request_duration_seconds_bucket', { le: '+Inf' }), 0);
    assert.ok(valueOf(families, 'process_resident_memory_bytes')! > 0);
    const start = valueOf(families, 'process_start_time_seconds')!;
    assert.ok(start > 1_600_000_000 && start <= Date.now() / 1000);
  });

  it('serves the 0.0.4 content type', () => {
    assert.equal(contentType, 'text/plain; version=0.0.4; charset=utf-8');
  });
});

describe('Metrics label escaping', () => {
  it('escapes backslash, double quote and newline in label values', () => {
    assert.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
    const metrics = fixed();
    const route = '/we"ird\\route\n';
    metrics.webSocketOpen(openRecord(1, route));
    const text = metrics.render();
    assert.match(text, /^switchyard_websocket_open_connections\{route="\/we\\"ird\\\\route\\n"\} 1$/m);
    const families = checkExposition(text);
    assert.equal(valueOf(families, 'switchyard_websocket_open_connections', { route }), 1);
  });
});

describe('Metrics connections gauge', () => {
  it('goes up on open and down on close, per route, and keeps the series at 0', () => {
    const metrics = fixed();
    const open = (): number | undefined => valueOf(checkExposition(metrics.render()), 'switchyard_websocket_open_connections', { route: '/chat' });
    metrics.webSocketOpen(openRecord(1));
    metrics.webSocketOpen(openRecord(2));
    assert.equal(open(), 2);
    metrics.webSocketClose(closeRecord(2));
    assert.equal(open(), 1);
    metrics.webSocketClose(closeRecord(1));
    assert.equal(open(), 0);
    assert.equal(valueOf(checkExposition(metrics.render()), 'switchyard_websocket_connections_total', { route: '/chat' }), 2);
  });

  it('does not go below 0 for a close whose open it never saw, or for a second close', () => {
    const metrics = fixed();
    metrics.webSocketOpen(openRecord(1));
    metrics.webSocketClose(closeRecord(1));
    metrics.webSocketClose(closeRecord(1));
    metrics.webSocketClose(closeRecord(99));
    const families = checkExposition(metrics.render());
    assert.equal(valueOf(families, 'switchyard_websocket_open_connections', { route: '/chat' }), 0);
    assert.equal(valueOf(families, 'switchyard_websocket_closes_total', { route: '/chat', code: '1000' }), 3);
  });
});

describe('Metrics traffic', () => {
  it('counts live deltas from addTraffic once: the close record adds only the rest', () => {
    const metrics = fixed();
    metrics.webSocketOpen(openRecord(1));
    metrics.addTraffic('/chat', 2, 80, 1, 100, 1);
    metrics.addTraffic('/chat', 1, 40, 0, 0, 1);
    let families = checkExposition(metrics.render());
    assert.equal(valueOf(families, 'switchyard_websocket_messages_received_total', { route: '/chat' }), 3);
    assert.equal(valueOf(families, 'switchyard_websocket_received_bytes_total', { route: '/chat' }), 120);
    assert.equal(valueOf(families, 'switchyard_websocket_sent_bytes_total', { route: '/chat' }), 100);
    metrics.webSocketClose(closeRecord(1)); // totals: in 3 msg / 120 B, out 5 msg / 400 B
    families = checkExposition(metrics.render());
    assert.equal(valueOf(families, 'switchyard_websocket_messages_received_total', { route: '/chat' }), 3);
    assert.equal(valueOf(families, 'switchyard_websocket_received_bytes_total', { route: '/chat' }), 120);
    assert.equal(valueOf(families, 'switchyard_websocket_messages_sent_total', { route: '/chat' }), 5);
    assert.equal(valueOf(families, 'switchyard_websocket_sent_bytes_total', { route: '/chat' }), 400);
  });

  it('never lets a counter go down, whatever the records say', () => {
    const metrics = fixed();
    metrics.webSocketOpen(openRecord(1));
    metrics.addTraffic('/chat', 10, 1000, 10, 1000, 1);
    metrics.webSocketClose(closeRecord(1)); // smaller totals than already reported
    metrics.addTraffic('/chat', -5, -5, Number.NaN, -1);
    metrics.messageDropped('/chat', -3);
    const families = checkExposition(metrics.render());
    assert.equal(valueOf(families, 'switchyard_websocket_messages_received_total', { route: '/chat' }), 10);
    assert.equal(valueOf(families, 'switchyard_websocket_sent_bytes_total', { route: '/chat' }), 1000);
    assert.equal(valueOf(families, 'switchyard_websocket_messages_dropped_total', { route: '/chat' }), 0);
  });

  it('counts drops from messageDropped only, not again from the close record', () => {
    const metrics = fixed();
    metrics.webSocketOpen(openRecord(1));
    metrics.messageDropped('/chat', 4);
    metrics.webSocketClose(closeRecord(1, '/chat', { droppedMessages: 4 }));
    assert.equal(valueOf(checkExposition(metrics.render()), 'switchyard_websocket_messages_dropped_total', { route: '/chat' }), 4);
  });
});

describe('Metrics label bounds', () => {
  it('keeps registered close codes, collapses application ranges and odd codes', () => {
    const metrics = fixed();
    const codes = [1000, 1001, 1006, 1011, 3000, 3999, 4000, 4321, 4999, 999, 5000, 1000.5];
    codes.forEach((code, index) => metrics.webSocketClose(closeRecord(index, '/chat', { code })));
    const families = checkExposition(metrics.render());
    const labels = families.get('switchyard_websocket_closes_total')!.samples.map((s) => `${s.labels.get('code')}=${s.value}`);
    assert.deepEqual(labels, ['1000=1', '1001=1', '1006=1', '1011=1', '3xxx=2', '4xxx=3', 'other=3']);
  });

  it('normalises unknown or lower-case methods to "other" and keeps exact status codes', () => {
    const metrics = fixed();
    for (const method of ['GET', 'HEAD', 'OPTIONS', 'get', 'PROPFIND', 'X'.repeat(100)]) metrics.httpRequest(httpRecord(method, 200, 1));
    metrics.httpRequest(httpRecord('GET', 404, 1));
    const families = checkExposition(metrics.render());
    const series = families.get('switchyard_http_requests_total')!.samples.map((s) => `${s.labels.get('method')} ${s.labels.get('status')} ${s.value}`);
    assert.deepEqual(series, ['GET 200 1', 'GET 404 1', 'HEAD 200 1', 'OPTIONS 200 1', 'other 200 3']);
  });
});

describe('Metrics duration histogram', () => {
  it('counts a duration on a bucket boundary in that bucket, cumulatively, with +Inf, _sum and _count', () => {
    const metrics = new Metrics({ durationBucketsSeconds: [0.1, 1], startTimeSeconds: 0, residentMemoryBytes: () => 0 });
    for (const ms of [100, 100.0001, 1000, 1500, 0]) metrics.httpRequest(httpRecord('GET', 200, ms));
    const text = metrics.render();
    assert.match(text, /^switchyard_http_request_duration_seconds_bucket\{le="0.1"\} 2\n.*le="1"\} 4\n.*le="\+Inf"\} 5\n.*_sum 2.7000001\n.*_count 5$/m);
    checkExposition(text);
  });

  it('uses the default buckets and rejects bad ones', () => {
    assert.deepEqual(DEFAULT_DURATION_BUCKETS_SECONDS, [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);
    assert.throws(() => new Metrics({ durationBucketsSeconds: [1, 0.5] }), RangeError);
    assert.throws(() => new Metrics({ durationBucketsSeconds: [0.1, Infinity] }), RangeError);
  });
});

describe('the exposition checker', () => {
  it('rejects malformed text', () => {
    const good = '# HELP a_total x\n# TYPE a_total counter\na_total{r="1"} 1\n';
    checkExposition(good);
    assert.throws(() => checkExposition(good.slice(0, -1)));
    assert.throws(() => checkExposition('a_total 1\n'));
    assert.throws(() => checkExposition(`${good}a_total{r="1"} 2\n`));
    assert.throws(() => checkExposition('# HELP a x\n# TYPE a gauge\na{r="un"escaped"} 1\n'));
    assert.throws(() => checkExposition('# HELP a x\n# TYPE a gauge\na{r="1"} one\n'));
    assert.throws(() => checkExposition('# HELP h x\n# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'));
  });
});
