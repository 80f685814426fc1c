// Prometheus metrics: a ServerObserver that counts connections, traffic, closes, refused handshakes, drops and
// HTTP requests, and renders them in the Prometheus text exposition format 0.0.4. Every label has a bounded
// set of values (route patterns, known methods, status codes, close-code classes), so series cannot grow with
// what clients send.
import type {
  HandshakeRejectRecord, HttpRequestRecord, ServerObserver, WebSocketCloseRecord, WebSocketOpenRecord,
} from './observer.js';

/** The Content-Type to serve render()'s output with. */
export const contentType = 'text/plain; version=0.0.4; charset=utf-8';

/** Upper bounds (seconds) of switchyard_http_request_duration_seconds, as the Prometheus clients' defaults. */
export const DEFAULT_DURATION_BUCKETS_SECONDS: readonly number[] = Object.freeze([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);

export interface MetricsOptions {
  /** Histogram bucket upper bounds in seconds, ascending, finite; +Inf is added. */
  durationBucketsSeconds?: readonly number[];
  /** process_start_time_seconds. Default: the process's time origin (performance.timeOrigin). */
  startTimeSeconds?: number;
  /** process_resident_memory_bytes, read at each render(). Default `() => process.memoryUsage().rss`. */
  residentMemoryBytes?: () => number;
}

/** Methods counted under their own name; anything else is "other" (a client can send any token). */
const KNOWN_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'CONNECT', 'TRACE']);

type Labels = readonly string[];

/** One metric family: its name, help, type, label names and series (keyed by the rendered label set). */
class Family {
  readonly series = new Map<string, { labels: string; value: number }>();
  constructor(readonly name: string, readonly type: 'counter' | 'gauge', readonly help: string, readonly labelNames: Labels) {}

  add(labelValues: Labels, amount: number): void {
    if (!(amount > 0) && this.type === 'counter') return; // counters never go down; NaN is ignored too
    const labels = renderLabels(this.labelNames, labelValues);
    const entry = this.series.get(labels);
    if (entry === undefined) this.series.set(labels, { labels, value: amount });
    else entry.value += amount;
  }

  /** Creates the series at 0 when missing (a gauge that went back to 0 keeps its series). */
  touch(labelValues: Labels): void {
    const labels = renderLabels(this.labelNames, labelValues);
    if (!this.series.has(labels)) this.series.set(labels, { labels, value: 0 });
  }

  render(out: string[]): void {
    header(out, this.name, this.type, this.help);
    for (const entry of [...this.series.values()].sort(bySeriesLabels)) out.push(`${this.name}${entry.labels} ${formatValue(entry.value)}`);
  }
}

/** A connection the observer saw open, and the traffic already counted for it through addTraffic(). */
interface OpenConnection {
  readonly route: string;
  messagesIn: number;
  bytesIn: number;
  messagesOut: number;
  bytesOut: number;
}

/**
 * Counts what the server reports and renders it for Prometheus. Route labels are the route patterns the server
 * passes in its records (e.g. "/rooms/:room"), never request URLs, so there is one series per registered
 * route.
 *
 * Traffic (messages and bytes each way) is counted from each connection's close record, which carries the
 * connection's totals. A server that also wants live numbers for long-lived connections calls addTraffic()
 * with the deltas since its last report for that connection and the connection's id; the close record then
 * adds only what has not been counted yet, so nothing is counted twice.
 *
 * Dropped messages are counted from messageDropped() only; a close record's droppedMessages (the connection's
 * total, for the access log) is not added again.
 */
export class Metrics implements ServerObserver {
  readonly #connectionsOpen = new Family('switchyard_websocket_open_connections', 'gauge', 'WebSocket connections open now.', ['route']);
  readonly #connectionsTotal = new Family('switchyard_websocket_connections_total', 'counter', 'WebSocket connections accepted (101 sent).', ['route']);
  readonly #messagesReceived = new Family('switchyard_websocket_messages_received_total', 'counter', 'WebSocket data messages received.', ['route']);
  readonly #messagesSent = new Family('switchyard_websocket_messages_sent_total', 'counter', 'WebSocket data messages sent.', ['route']);
  readonly #bytesReceived = new Family('switchyard_websocket_received_bytes_total', 'counter', 'WebSocket message payload bytes received.', ['route']);
  readonly #bytesSent = new Family('switchyard_websocket_sent_bytes_total', 'counter', 'WebSocket message payload bytes sent.', ['route']);
  readonly #closes = new Family('switchyard_websocket_closes_total', 'counter',
    'WebSocket connections closed, by close code (3000-3999 as "3xxx", 4000-4999 as "4xxx", unexpected codes as "other").', ['route', 'code']);
  readonly #dropped = new Family('switchyard_websocket_messages_dropped_total', 'counter', 'WebSocket messages dropped by the slow-consumer policy.', ['route']);
  readonly #rejected = new Family('switchyard_handshakes_rejected_total', 'counter', 'WebSocket upgrade requests refused, by reason.', ['reason']);
  readonly #httpRequests = new Family('switchyard_http_requests_total', 'counter',
    'HTTP requests answered (upgrades excluded), by method (unknown methods as "other") and status code.', ['method', 'status']);
  readonly #families: readonly Family[] = [
    this.#connectionsOpen, this.#connectionsTotal, this.#messagesReceived, this.#messagesSent, this.#bytesReceived,
    this.#bytesSent, this.#closes, this.#dropped, this.#rejected, this.#httpRequests,
  ];

  readonly #bucketBoundsSeconds: readonly number[];
  readonly #bucketCounts: number[];
  /** Kept in milliseconds (usually whole numbers, so the sum stays exact) and divided at render. */
  #durationSumMs = 0;
  #durationCount = 0;

  readonly #startTimeSeconds: number;
  readonly #residentMemoryBytes: () => number;
  readonly #open = new Map<number, OpenConnection>();

  constructor(options: MetricsOptions = {}) {
    const bounds = options.durationBucketsSeconds ?? DEFAULT_DURATION_BUCKETS_SECONDS;
    bounds.forEach((bound, index) => {
      if (typeof bound !== 'number' || !Number.isFinite(bound)) throw new RangeError(`durationBucketsSeconds[${index}] must be a finite number (got ${String(bound)})`);
      if (index > 0 && !(bound > bounds[index - 1]!)) throw new RangeError('durationBucketsSeconds must be strictly ascending');
    });
    this.#bucketBoundsSeconds = [...bounds];
    this.#bucketCounts = new Array<number>(bounds.length).fill(0);
    this.#startTimeSeconds = options.startTimeSeconds ?? performance.timeOrigin / 1000;
    this.#residentMemoryBytes = options.residentMemoryBytes ?? (() => process.memoryUsage().rss);
  }

  httpRequest(record: HttpRequestRecord): void {
    this.#httpRequests.add([methodLabel(record.method), statusLabel(record.status)], 1);
    const ms = Math.max(0, record.durationMs);
    if (!Number.isFinite(ms)) return;
    const seconds = ms / 1000;
    // Per-bucket counts here; render() makes them cumulative.
    const bucket = this.#bucketBoundsSeconds.findIndex((bound) => seconds <= bound);
    if (bucket !== -1) this.#bucketCounts[bucket]! += 1;
    this.#durationSumMs += ms;
    this.#durationCount += 1;
  }

  webSocketOpen(record: WebSocketOpenRecord): void {
    this.#open.set(record.id, { route: record.route, messagesIn: 0, bytesIn: 0, messagesOut: 0, bytesOut: 0 });
    this.#connectionsOpen.add([record.route], 1);
    this.#connectionsTotal.add([record.route], 1);
    this.#touchRoute(record.route);
  }

  webSocketClose(record: WebSocketCloseRecord): void {
    const open = this.#open.get(record.id);
    this.#open.delete(record.id);
    // A close whose open was never seen (the observer came later) was never counted as open either.
    if (open !== undefined) this.#connectionsOpen.add([open.route], -1);
    else this.#touchRoute(record.route);
    const route = record.route;
    this.#closes.add([route, closeCodeLabel(record.code)], 1);
    this.#countTraffic(route,
      record.messagesIn - (open?.messagesIn ?? 0), record.bytesIn - (open?.bytesIn ?? 0),
      record.messagesOut - (open?.messagesOut ?? 0), record.bytesOut - (open?.bytesOut ?? 0));
  }

  handshakeRejected(record: HandshakeRejectRecord): void {
    this.#rejected.add([record.reason], 1);
  }

  messageDropped(route: string, count: number): void {
    this.#dropped.add([route], count);
  }

  /**
   * Counts traffic on a live connection now instead of at its close: the amounts are deltas since the last call
   * for this connection. With `connectionId` (the open record's id) they are remembered and subtracted from
   * that connection's close record, so they are never counted twice; omit it only for traffic no close record
   * will include.
   */
  addTraffic(route: string, messagesIn: number, bytesIn: number, messagesOut: number, bytesOut: number, connectionId?: number): void {
    const open = connectionId === undefined ? undefined : this.#open.get(connectionId);
    if (open !== undefined) {
      open.messagesIn += positive(messagesIn);
      open.bytesIn += positive(bytesIn);
      open.messagesOut += positive(messagesOut);
      open.bytesOut += positive(bytesOut);
    }
    this.#countTraffic(route, messagesIn, bytesIn, messagesOut, bytesOut);
  }

  /** Every metric in the Prometheus text exposition format 0.0.4, ending with a newline. */
  render(): string {
    const out: string[] = [];
    for (const family of this.#families) family.render(out);

    const histogram = 'switchyard_http_request_duration_seconds';
    header(out, histogram, 'histogram', 'Time from an HTTP request\'s arrival to the end of its response.');
    let cumulative = 0;
    this.#bucketBoundsSeconds.forEach((bound, index) => {
      cumulative += this.#bucketCounts[index]!;
      out.push(`${histogram}_bucket{le="${formatValue(bound)}"} ${cumulative}`);
    });
    out.push(`${histogram}_bucket{le="+Inf"} ${this.#durationCount}`);
    out.push(`${histogram}_sum ${formatValue(this.#durationSumMs / 1000)}`);
    out.push(`${histogram}_count ${this.#durationCount}`);

    header(out, 'process_start_time_seconds', 'gauge', 'Start time of the process since unix epoch in seconds.');
    out.push(`process_start_time_seconds ${formatValue(this.#startTimeSeconds)}`);
    header(out, 'process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes.');
    out.push(`process_resident_memory_bytes ${formatValue(this.#residentMemoryBytes())}`);
    return `${out.join('\n')}\n`;
  }

  /** Creates a route's per-route series at 0, so rate() sees a route from its first connection on. */
  #touchRoute(route: string): void {
    for (const family of [this.#connectionsOpen, this.#connectionsTotal, this.#messagesReceived, this.#messagesSent,
      this.#bytesReceived, this.#bytesSent, this.#dropped]) family.touch([route]);
  }

  #countTraffic(route: string, messagesIn: number, bytesIn: number, messagesOut: number, bytesOut: number): void {
    this.#messagesReceived.add([route], messagesIn);
    this.#bytesReceived.add([route], bytesIn);
    this.#messagesSent.add([route], messagesOut);
    this.#bytesSent.add([route], bytesOut);
  }
}

// ---- labels and values ----

function methodLabel(method: string): string {
  return KNOWN_METHODS.has(method) ? method : 'other';
}

function statusLabel(status: number): string {
  return Number.isInteger(status) && status >= 100 && status <= 999 ? String(status) : 'other';
}

/**
 * Close codes from RFC 6455 §7.4.1 and the IANA registry (1000-2999) keep their number; the application ranges
 * are collapsed to one series each because a client chooses those freely (3000-3999 registered for libraries,
 * 4000-4999 private use) and would otherwise create up to 2,000 series per route.
 */
function closeCodeLabel(code: number): string {
  if (!Number.isInteger(code)) return 'other';
  if (code >= 1000 && code <= 2999) return String(code);
  if (code >= 3000 && code <= 3999) return '3xxx';
  if (code >= 4000 && code <= 4999) return '4xxx';
  return 'other';
}

function positive(n: number): number {
  return n > 0 ? n : 0;
}

/** `{a="x",b="y"}`, or "" for no labels. Label values escape `\`, `"` and newline, as the format requires. */
function renderLabels(names: Labels, values: Labels): string {
  if (names.length === 0) return '';
  return `{${names.map((name, index) => `${name}="${escapeLabelValue(values[index] ?? '')}"`).join(',')}}`;
}

export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (char) => (char === '\n' ? '\\n' : `\\${char}`));
}

/** HELP text escapes `\` and newline (not `"`). */
function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (char) => (char === '\n' ? '\\n' : '\\\\'));
}

function header(out: string[], name: string, type: string, help: string): void {
  out.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

function bySeriesLabels(a: { labels: string }, b: { labels: string }): number {
  return a.labels < b.labels ? -1 : a.labels > b.labels ? 1 : 0;
}
