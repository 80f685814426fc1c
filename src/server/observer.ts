// The events the server reports for operations (access logs, metrics): one record per HTTP request, per
// WebSocket open and close, per refused handshake, plus drop counts. Observers are plain objects with optional
// methods; combineObservers() fans one event out to several and keeps a broken observer from hurting the others.

/** One finished HTTP request (not an upgrade: those become WebSocket records). */
export interface HttpRequestRecord {
  /** The request method as received (e.g. "GET"). */
  method: string;
  /** The request target as received, query included (user-controlled). */
  url: string;
  /** The HTTP version without the "HTTP/" prefix, as node:http gives it (e.g. "1.1"). */
  httpVersion: string;
  /** The status code sent. */
  status: number;
  /** Body bytes written (headers excluded); 0 when there was no body. */
  bytesSent: number;
  /** From the request's arrival to the end of the response. */
  durationMs: number;
  /** The peer's IP address; "" when unknown. */
  remoteAddress: string;
  /** The User-Agent header; "" when absent (user-controlled). */
  userAgent: string;
  /** The Referer header; "" when absent (user-controlled). */
  referer: string;
}

/** A WebSocket whose handshake was accepted (the 101 was written). */
export interface WebSocketOpenRecord {
  /** Unique per server for the life of the process; pairs an open with its close. */
  id: number;
  /**
   * The route's pattern as registered (e.g. "/rooms/:room"), never the request URL: metrics use it as a label,
   * and a label taken from URLs would create one series per distinct URL.
   */
  route: string;
  /** The upgrade request's target, query included (user-controlled). */
  url: string;
  /** The peer's IP address; "" when unknown. */
  remoteAddress: string;
  /** The subprotocol selected; "" when none. */
  protocol: string;
}

/** A WebSocket that is gone: the closing handshake finished, timed out, or the transport dropped. */
export interface WebSocketCloseRecord extends WebSocketOpenRecord {
  /** From the 101 to the transport closing. */
  durationMs: number;
  /** The close code (1005 when the peer sent none, 1006 when the transport dropped without a close frame). */
  code: number;
  /** The close reason (user-controlled when the peer sent it). */
  reason: string;
  /** True when both close frames were exchanged before the transport closed. */
  wasClean: boolean;
  /** Totals for the whole connection (not deltas): data messages and payload bytes received and sent. */
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Messages the slow-consumer policy dropped on this connection, in total. */
  droppedMessages: number;
}

/**
 * Why an upgrade was refused:
 * `no-route` no WebSocket route matches the path; `bad-handshake` the request breaks RFC 6455 §4.2.1;
 * `version` an unsupported Sec-WebSocket-Version; `origin` the Origin is not in the route's allowedOrigins;
 * `route-limit` / `server-limit` the route's or the server's maxConnections is reached; `upgrade-hook` the
 * route's upgrade() hook refused; `hook-error` the hook threw or rejected; `shutting-down` close() has begun.
 */
export type HandshakeRejectReason =
  | 'no-route' | 'bad-handshake' | 'version' | 'origin' | 'route-limit' | 'server-limit'
  | 'upgrade-hook' | 'hook-error' | 'shutting-down';

/** An upgrade request answered with an HTTP error instead of 101. */
export interface HandshakeRejectRecord {
  /** The matched route's pattern; "" when no route matched. */
  route: string;
  /** The upgrade request's target (user-controlled). */
  url: string;
  /** The peer's IP address; "" when unknown. */
  remoteAddress: string;
  /** The HTTP status sent. */
  status: number;
  reason: HandshakeRejectReason;
  /** A human-readable explanation (may quote user-controlled values). */
  detail: string;
}

/**
 * What the server calls as things happen. Every method is optional and is called synchronously on the server's
 * hot path: an observer must be quick and must not throw (wrap several with combineObservers(), which isolates
 * throws). Records are owned by the observer once passed; the server does not reuse them.
 */
export interface ServerObserver {
  /** After an HTTP response has finished (or the connection closed before it did). */
  httpRequest?(record: HttpRequestRecord): void;
  /** After the 101 response was written, before the route's open handler runs. */
  webSocketOpen?(record: WebSocketOpenRecord): void;
  /** Once per opened WebSocket, after its transport closed. */
  webSocketClose?(record: WebSocketCloseRecord): void;
  /** After an upgrade was answered with an HTTP error. */
  handshakeRejected?(record: HandshakeRejectRecord): void;
  /** `count` messages were dropped just now on a connection of `route` (a pattern) by the slow-consumer policy. */
  messageDropped?(route: string, count: number): void;
}

const OBSERVER_METHODS = ['httpRequest', 'webSocketOpen', 'webSocketClose', 'handshakeRejected', 'messageDropped'] as const;
type ObserverMethod = (typeof OBSERVER_METHODS)[number];

/**
 * Calls every observer's method in turn; an observer that throws is isolated (reported once via
 * process.emitWarning, never rethrown).
 *
 * "Once" is per observer: its first throw becomes a `SwitchyardWarning` naming the method, later throws from the
 * same observer are swallowed silently so a broken observer cannot flood the warnings on every request. The
 * other observers are still called, and a throwing observer keeps being called (it may recover).
 *
 * The combined observer only has the methods at least one observer has, so a server that checks
 * `observer.webSocketClose !== undefined` can skip building records nobody wants. Methods are called on their
 * observer (`this` is kept), so class instances such as Metrics work unbound.
 */
export function combineObservers(...observers: ServerObserver[]): ServerObserver {
  const warned = new Set<ServerObserver>();
  const report = (observer: ServerObserver, method: ObserverMethod, error: unknown): void => {
    if (warned.has(observer)) return;
    warned.add(observer);
    const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
    process.emitWarning(`server observer's ${method}() threw (further throws from this observer are not reported): ${detail}`, 'SwitchyardWarning');
  };
  const combined: ServerObserver = {};
  for (const method of OBSERVER_METHODS) {
    const listeners = observers.filter((observer) => typeof observer[method] === 'function');
    if (listeners.length === 0) continue;
    // One loop for every method: the arguments are passed through untouched.
    const fanOut = (...args: unknown[]): void => {
      for (const observer of listeners) {
        try {
          (observer[method] as (...callArgs: unknown[]) => void).apply(observer, args);
        } catch (error) {
          report(observer, method, error);
        }
      }
    };
    (combined as Record<ObserverMethod, (...args: unknown[]) => void>)[method] = fanOut;
  }
  return combined;
}
