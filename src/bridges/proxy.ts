// The reverse proxy for plain HTTP: a route handler that streams a request under the mount prefix to the
// backend (keep-alive agent) and the answer back, both ways with backpressure; 502 when the backend cannot be
// reached or breaks off, 504 when it is silent too long. The WebSocket half is in proxy-websocket.ts.
import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { pipeline } from 'node:stream';
import { requestClient } from '../http/client-address.js';
import type { HttpHandler } from '../server/requests.js';
import { backendRequestHeaders, clientResponseHeaders, type ClientHop } from './proxy-headers.js';
import { mapRequestTarget, resolveProxySettings, type ProxyOptions, type ProxySettings } from './proxy-target.js';

export { proxyWebSocketRoute, type ProxyWebSocketData } from './proxy-websocket.js';
export { DEFAULT_PROXY_TIMEOUT_MS, type ProxyOptions, type ProxyTlsOptions } from './proxy-target.js';

/** An HttpHandler that also owns a pool of keep-alive connections to the backend. */
export interface ProxyHttpHandler extends HttpHandler {
  /**
   * Destroys every pooled connection to the backend, idle or in use (call it after app.close(), which waits for
   * the exchanges in flight); a request after it opens a new connection.
   */
  close(): void;
}

/**
 * Idle pooled connections are dropped after this long: below node's default server keepAliveTimeout (5 s),
 * so we close first rather than send a request on a connection the backend is closing. A backend's
 * `Keep-Alive: timeout=N` hint shortens it further.
 */
const IDLE_BACKEND_SOCKET_MS = 4_000;

/** RFC 9110 §9.2.2: methods whose request may be sent again after a failure. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** Methods node would send with chunked framing when given no Content-Length. */
const BODYLESS_BY_DEFAULT = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT']);

/**
 * Mount with `app.all('/legacy/*', proxyHttpHandler({ target: 'http://127.0.0.1:9000/app', prefix: '/legacy' }))`.
 * Throws TypeError/RangeError for bad options.
 */
export function proxyHttpHandler(options: ProxyOptions): ProxyHttpHandler {
  const settings = resolveProxySettings(options);
  const agentOptions = { keepAlive: true, timeout: IDLE_BACKEND_SOCKET_MS, scheduling: 'lifo' as const };
  const agent = settings.secure
    ? new HttpsAgent({
      ...agentOptions, rejectUnauthorized: settings.tls.rejectUnauthorized ?? true,
      ...(settings.tls.ca !== undefined && { ca: settings.tls.ca }),
    })
    : new HttpAgent(agentOptions);
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    forward(settings, agent, req, res);
  };
  return Object.assign(handle, { close: () => agent.destroy() });
}

function forward(settings: ProxySettings, agent: HttpAgent, req: IncomingMessage, res: ServerResponse): void {
  const method = req.method ?? 'GET';
  const mapped = mapRequestTarget(req.url ?? '/', settings);
  if (mapped.kind !== 'ok') {
    if (mapped.kind === 'outside') answer(res, 404, 'not found\n');
    else answer(res, 400, 'bad request: dot segments in the path\n');
    req.resume();
    return;
  }
  const backendUrl = `${settings.origin}${mapped.path}`;
  const describe = `${method} ${req.url ?? ''} -> ${backendUrl}`;
  const transferEncoding = req.headers['transfer-encoding'];
  if (transferEncoding !== undefined && transferEncoding.trim().toLowerCase() !== 'chunked') {
    // RFC 9112 §6.1: node removed only the chunked framing; another coding would reach the backend unannounced.
    answer(res, 501, 'transfer coding not implemented\n', true);
    req.resume();
    return;
  }
  const contentLength = req.headers['content-length'];
  const hasBody = transferEncoding !== undefined || (contentLength !== undefined && contentLength !== '0');
  const hop: ClientHop = {
    remoteAddress: req.socket.remoteAddress ?? '',
    peerTrusted: requestClient(req).peerTrusted,
    secure: (req.socket as Socket & { encrypted?: boolean }).encrypted === true,
    host: req.headers.host,
    httpVersion: req.httpVersion === '1.0' ? '1.0' : '1.1',
  };
  const headers = backendRequestHeaders(req.rawHeaders, req.headers, hop, settings);
  // We removed the client's framing with the hop-by-hop fields: say how this request's body is framed.
  if (transferEncoding !== undefined) headers.push('Transfer-Encoding', 'chunked');
  else if (contentLength === undefined && !BODYLESS_BY_DEFAULT.has(method)) headers.push('Content-Length', '0');

  let clientGone = false;
  let finished = false;
  let current: ClientRequest | undefined;
  req.on('error', ignoreError);
  res.on('close', () => {
    if (res.writableFinished || finished) return;
    // The client left: abort the backend exchange too, whatever stage it is at.
    clientGone = true;
    current?.destroy();
  });

  const fail = (status: 502 | 504, detail: string): void => {
    if (finished) return;
    finished = true;
    if (clientGone) return;
    settings.log(`proxy: ${describe}: ${detail} (${res.headersSent ? 'response cut short' : status})`);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    // A body still arriving is read and dropped, so that the client can read the answer; Connection: close
    // because the rest of it is not worth waiting for on a kept-alive connection.
    if (hasBody && !req.complete) {
      req.unpipe();
      req.resume();
    }
    answer(res, status, status === 502 ? 'bad gateway\n' : 'gateway timeout\n', hasBody && !req.complete);
  };

  const relay = (backendResponse: IncomingMessage): void => {
    const transferEncoding = backendResponse.headers['transfer-encoding'];
    if (transferEncoding !== undefined && transferEncoding.trim().toLowerCase() !== 'chunked') {
      backendResponse.destroy();
      fail(502, `backend used transfer coding ${JSON.stringify(transferEncoding)}`);
      return;
    }
    try {
      res.writeHead(backendResponse.statusCode ?? 502, backendResponse.statusMessage,
        clientResponseHeaders(backendResponse.rawHeaders, backendResponse.headers, settings));
    } catch (error) {
      backendResponse.destroy();
      fail(502, `backend response not relayable: ${(error as Error).message}`);
      return;
    }
    // pipeline() carries backpressure (a slow client stops reading the backend's socket) and tears both down
    // if either fails: a client that leaves aborts the backend's response; a backend that breaks off cuts the
    // client's response short (a truncated body must not look complete).
    pipeline(backendResponse, res, (error) => {
      if (error !== undefined && error !== null && !clientGone && !finished) {
        settings.log(`proxy: ${describe}: backend broke off the response: ${(error as NodeJS.ErrnoException).code ?? error.message}`);
      }
      finished = true;
    });
  };

  const send = (attempt: number): void => {
    // (node's https agent derives the TLS server name from the host, and leaves it out for an IP address)
    const requestOptions = { agent, host: settings.hostname, port: settings.port, method, path: mapped.path, headers };
    const backendRequest = settings.secure ? httpsRequest(requestOptions) : httpRequest(requestOptions);
    current = backendRequest;
    let answered = false;
    let timedOut = false;
    let connected = false;
    // Connect + response-head timeout, measured from the last sign of progress (connected, a body chunk
    // passed on, the body finished), so that a long upload that keeps moving is not cut off.
    let waiting = true;
    const timer = setTimeout(() => {
      stopWaiting();
      timedOut = true;
      backendRequest.destroy();
      fail(504, `no response within ${settings.timeoutMs} ms`);
    }, settings.timeoutMs);
    // refresh() re-arms a timer that already fired: progress counts only while we wait for the response head.
    const progress = (): void => { if (waiting) timer.refresh(); };
    const stopWaiting = (): void => {
      waiting = false;
      clearTimeout(timer);
      req.off('data', progress);
    };
    backendRequest.on('socket', (socket: Socket) => {
      if (!socket.connecting) {
        connected = true;
        return;
      }
      socket.once('connect', () => {
        connected = true;
        progress();
      });
    });
    backendRequest.on('finish', progress);
    backendRequest.on('error', (error: NodeJS.ErrnoException) => {
      stopWaiting();
      if (timedOut || clientGone) return;
      if (answered) {
        // The response already began (pipeline() below sees the failure if it is cut short); a body the
        // backend stopped reading is drained so the client's connection stays usable.
        if (hasBody && !req.complete) {
          req.unpipe(backendRequest);
          req.resume();
        }
        return;
      }
      // A pooled connection the backend closed as we reused it: an idempotent request without a body is
      // safe to send again (RFC 9110 §9.2.2), once.
      if (attempt === 0 && backendRequest.reusedSocket && !hasBody && IDEMPOTENT.has(method) && (error.code === 'ECONNRESET' || error.code === 'EPIPE')) {
        send(1);
        return;
      }
      const code = error.code ?? error.message;
      fail(502, connected ? `backend dropped the connection: ${code}` : `backend unreachable: ${code}`);
    });
    backendRequest.on('response', (backendResponse: IncomingMessage) => {
      answered = true;
      stopWaiting();
      relay(backendResponse);
    });
    if (!hasBody) {
      backendRequest.end();
      return;
    }
    req.on('data', progress);
    // pipe(), not pipeline(): a failed backend request must not destroy the client's request, or the client
    // would get a reset instead of our 502.
    req.pipe(backendRequest);
  };
  send(0);
}

function answer(res: ServerResponse, status: number, text: string, closeConnection = false): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text),
    ...(closeConnection && { Connection: 'close' }),
  });
  res.end(text);
}

function ignoreError(): void {}
