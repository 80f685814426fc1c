// Plain HTTP on the server's port: the metrics endpoint, application routes (405 with Allow for a wrong
// method), 426 for a WebSocket path asked without Upgrade, static files, 404 — each request logged once; and
// the answers to requests node's parser refuses (400, 408, 431).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { rememberRequestClient, resolveRequestClient, type PeerSocket, type TrustedProxies } from '../http/client-address.js';
import type { Params, Router } from '../http/router.js';
import type { StaticFiles } from '../http/static-files.js';
import { contentType as metricsContentType, type Metrics } from './metrics.js';
import type { ServerObserver } from './observer.js';

export type HttpHandler = (req: IncomingMessage, res: ServerResponse, params: Params) => void | Promise<void>;

export interface RequestContext {
  readonly httpRoutes: Router<HttpHandler>;
  readonly webSocketRoutes: { hasPath(path: string): boolean };
  readonly staticFiles: StaticFiles | undefined;
  readonly metrics: Metrics | undefined;
  readonly metricsPath: string | undefined;
  readonly observer: ServerObserver | undefined;
  /** Whose X-Forwarded-For names the client; empty: the peer is the client. */
  readonly trustedProxies: TrustedProxies;
  /** Brings the metrics up to date just before they are rendered. */
  readonly collectMetrics: () => void;
}

/** The path part of a request target; undefined when it is not origin-form. */
export function pathOf(url: string | undefined): string | undefined {
  if (url === undefined || !url.startsWith('/')) return undefined;
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

function sendText(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function handleRequest(context: RequestContext, req: IncomingMessage, res: ServerResponse): void {
  // Resolved once, before any handler runs, so the log, handlers and bridges (requestClient) agree. Without
  // trustProxy nothing is resolved here: the peer is the client, read from the socket when needed.
  const clientAddress = context.trustedProxies.isEmpty ? undefined
    : rememberRequestClient(req, resolveRequestClient(req.socket as PeerSocket, req.headers, context.trustedProxies)).address;
  if (context.observer?.httpRequest !== undefined) logWhenDone(context.observer, req, res, clientAddress);
  const path = pathOf(req.url);
  if (path === undefined) {
    sendText(res, 400, 'request target must be a path\n');
    return;
  }
  if (context.metrics !== undefined && path === context.metricsPath && (req.method === 'GET' || req.method === 'HEAD')) {
    context.collectMetrics();
    const body = context.metrics.render();
    res.writeHead(200, { 'Content-Type': metricsContentType, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
    return;
  }
  const lookup = context.httpRoutes.match(req.method ?? 'GET', path);
  if (lookup.kind === 'found') {
    runHandler(lookup.match.value, req, res, lookup.match.params);
    return;
  }
  if (lookup.kind === 'method-not-allowed') {
    sendText(res, 405, 'method not allowed\n', { Allow: lookup.allow.join(', ') });
    return;
  }
  if (context.webSocketRoutes.hasPath(path)) {
    // RFC 9110 §15.5.22: a WebSocket endpoint asked for plain HTTP; 426 names the protocol to upgrade to.
    sendText(res, 426, 'this path speaks WebSocket: send an Upgrade request\n', { Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Version': '13' });
    return;
  }
  if (context.staticFiles !== undefined) {
    void context.staticFiles.handle(req, res);
    return;
  }
  sendText(res, 404, 'not found\n');
}

function runHandler(handler: HttpHandler, req: IncomingMessage, res: ServerResponse, params: Params): void {
  const fail = (error: unknown): void => {
    process.emitWarning(`HTTP handler for ${req.method} ${req.url} threw: ${(error as Error)?.stack ?? String(error)}`, 'SwitchyardWarning');
    if (!res.headersSent) sendText(res, 500, 'internal server error\n');
    else res.destroy();
  };
  try {
    const result = handler(req, res, params);
    if (result instanceof Promise) result.catch(fail);
  } catch (error) {
    fail(error);
  }
}

/**
 * One access-log record per request, when the response finishes or the connection drops. `clientAddress` is
 * what trustProxy resolved; undefined: the peer's address.
 */
function logWhenDone(observer: ServerObserver, req: IncomingMessage, res: ServerResponse, clientAddress: string | undefined): void {
  const startedAt = performance.now();
  const socket = req.socket;
  const bytesBefore = socket.bytesWritten;
  let logged = false;
  const log = (): void => {
    if (logged) return;
    logged = true;
    observer.httpRequest?.({
      method: req.method ?? '-', url: req.url ?? '-', httpVersion: req.httpVersion, status: res.statusCode,
      bytesSent: Math.max(0, socket.bytesWritten - bytesBefore), durationMs: performance.now() - startedAt,
      remoteAddress: clientAddress ?? socket.remoteAddress ?? '', userAgent: headerText(req.headers['user-agent']), referer: headerText(req.headers['referer']),
    });
  };
  res.once('finish', log);
  res.once('close', log);
}

function headerText(value: string | string[] | undefined): string {
  return value === undefined ? '' : Array.isArray(value) ? value.join(', ') : value;
}

/**
 * Answers a request node's HTTP parser refused (RFC 9110 / RFC 6585 statuses) and logs it once, instead of
 * node's default silent 400.
 */
export function handleClientError(observer: ServerObserver | undefined, error: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const [status, text] =
    error.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large']
    : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request Timeout']
    : [400, 'Bad Request'];
  const body = `${text.toLowerCase()}\n`;
  socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
  socket.setTimeout(5000, () => socket.destroy());
  observer?.httpRequest?.({
    // The request never parsed, so the "URL" names what was wrong with it.
    method: '-', url: `<${error.code ?? 'unparsable request'}>`, httpVersion: '-', status, bytesSent: 0, durationMs: 0,
    // No header was parsed, so there is no X-Forwarded-For to believe even from a trusted proxy: the peer.
    remoteAddress: socket.remoteAddress ?? '', userAgent: '', referer: '',
  });
}
