// createServer(): one node:http (or https) server on one port for HTTP routes, static files and WebSocket
// routes. Requests go to the request pipeline (requests.ts), upgrades through the upgrade pipeline
// (upgrade.ts) to a WebSocket; connections are counted, logged and measured here.
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { CloseCode } from '../protocol/constants.js';
import type { HandshakeResponse } from '../protocol/handshake.js';
import type { DeflateAgreement } from '../protocol/deflate-negotiation.js';
import { TrustedProxies, rememberRequestClient, resolveRequestClient, type PeerSocket, type RequestClient } from '../http/client-address.js';
import { Router } from '../http/router.js';
import { StaticFiles } from '../http/static-files.js';
import { TopicBroker } from '../pubsub/broker.js';
import { TimerSweep, sweepResolutionFor } from '../transport/timers.js';
import { WebSocket, type WebSocketHandlers, type WebSocketOwner } from '../transport/websocket.js';
import { DEFAULT_POLICY, checkInteger, resolvePolicy, type WebSocketPolicy, type WebSocketPolicyOptions } from '../transport/policy.js';
import { createAccessLog } from './access-log.js';
import { Metrics } from './metrics.js';
import { combineObservers, type ServerObserver } from './observer.js';
import { DEFAULT_HANDSHAKE_TIMEOUT_MS, DEFAULT_SHUTDOWN_TIMEOUT_MS, type ServerOptions } from './options.js';
import { handleClientError, handleRequest, pathOf, type HttpHandler, type RequestContext } from './requests.js';
import { checkUpgrade, decideUpgrade, refuseSocket, type Refusal, type ResolvedRoute, type WebSocketRouteOptions } from './upgrade.js';

export type { UpgradeRequest, UpgradeDecision, UpgradeAccept, UpgradeReject } from './upgrade.js';
export type { HttpHandler } from './requests.js';

export interface WebSocketRoute<Data = unknown> extends WebSocketHandlers<Data>, WebSocketPolicyOptions, WebSocketRouteOptions<Data> {}

export interface ListenOptions {
  port?: number;
  host?: string;
}

export class Switchyard {
  /** The server listen() uses; attach() adds WebSocket routes to another one instead. */
  readonly httpServer: HttpServer;
  readonly metrics: Metrics | undefined;
  readonly #httpRoutes = new Router<HttpHandler>();
  readonly #webSocketRoutes = new Router<ResolvedRoute>();
  readonly #policy: WebSocketPolicy;
  readonly #maxConnections: number;
  readonly #shutdownTimeoutMs: number;
  readonly #broker = new TopicBroker<WebSocket<any>>();
  readonly #connections = new Set<WebSocket<any>>();
  readonly #routeOf = new WeakMap<WebSocket<any>, ResolvedRoute>();
  readonly #sweep: TimerSweep;
  readonly #observer: ServerObserver | undefined;
  readonly #requestContext: RequestContext;
  readonly #trustedProxies: TrustedProxies;
  /** Sockets whose upgrade we refused, kept until the peer has read the answer and gone. */
  readonly #refusedSockets = new Set<Socket>();
  /** Upgrades admitted and waiting for their hook: they count against the limits. */
  #pendingUpgrades = 0;
  #nextConnectionId = 1;
  #closing: Promise<void> | undefined;

  constructor(options: ServerOptions = {}) {
    this.#policy = resolvePolicy(DEFAULT_POLICY, options);
    const handshakeTimeoutMs = checkInteger('handshakeTimeoutMs', options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS, 1);
    this.#shutdownTimeoutMs = checkInteger('shutdownTimeoutMs', options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS, 0);
    this.#maxConnections = checkInteger('maxConnections', options.maxConnections ?? 0, 0);
    this.#trustedProxies = new TrustedProxies(options.trustProxy ?? []);
    this.#sweep = new TimerSweep(sweepResolutionFor([this.#policy.pingIntervalMs, this.#policy.idleTimeoutMs, this.#policy.maxLifetimeMs, this.#policy.closeTimeoutMs]));
    if (options.metricsPath !== undefined && !options.metricsPath.startsWith('/')) {
      throw new TypeError(`metricsPath must start with "/" (got ${JSON.stringify(options.metricsPath)})`);
    }
    this.metrics = options.metricsPath === undefined ? undefined : new Metrics();
    const observers: ServerObserver[] = [];
    if (options.accessLog !== undefined) observers.push(createAccessLog(options.accessLog));
    if (this.metrics !== undefined) observers.push(this.metrics);
    // Always combined, even when alone: an observer that throws is isolated from the server.
    this.#observer = observers.length === 0 ? undefined : combineObservers(...observers);
    const staticFiles = options.root === undefined ? undefined : new StaticFiles({ root: options.root, ...options.static });
    this.#requestContext = {
      httpRoutes: this.#httpRoutes, webSocketRoutes: this.#webSocketRoutes, staticFiles,
      metrics: this.metrics, metricsPath: options.metricsPath, observer: this.#observer, trustedProxies: this.#trustedProxies,
      collectMetrics: () => this.#reportLiveTraffic(),
    };
    const serverOptions = {
      // Node drops a client whose request head is not complete in time (408), checking on this interval.
      headersTimeout: handshakeTimeoutMs,
      requestTimeout: Math.max(handshakeTimeoutMs, 300_000),
      connectionsCheckingInterval: Math.min(1000, Math.max(10, Math.floor(handshakeTimeoutMs / 4))),
    };
    this.httpServer = options.tls === undefined
      ? createHttpServer(serverOptions)
      : createHttpsServer({ ...serverOptions, cert: options.tls.cert, key: options.tls.key });
    this.httpServer.on('request', (req, res) => handleRequest(this.#requestContext, req, res));
    this.httpServer.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => handleClientError(this.#observer, error, socket as Socket));
    this.attach(this.httpServer);
  }

  /** Adds an HTTP route; `method` '*' takes any method. Handlers get route parameters as their third argument. */
  route(method: string, pattern: string, handler: HttpHandler): this {
    this.#httpRoutes.add(method.toUpperCase(), pattern, handler);
    return this;
  }

  get(pattern: string, handler: HttpHandler): this { return this.route('GET', pattern, handler); }
  post(pattern: string, handler: HttpHandler): this { return this.route('POST', pattern, handler); }
  put(pattern: string, handler: HttpHandler): this { return this.route('PUT', pattern, handler); }
  patch(pattern: string, handler: HttpHandler): this { return this.route('PATCH', pattern, handler); }
  delete(pattern: string, handler: HttpHandler): this { return this.route('DELETE', pattern, handler); }
  all(pattern: string, handler: HttpHandler): this { return this.route('*', pattern, handler); }

  /** Adds a WebSocket route; the pattern takes `:name` parameters and a trailing `*`, as HTTP routes do. */
  websocket<Data = undefined>(pattern: string, route: WebSocketRoute<Data>): this {
    const policy = resolvePolicy(this.#policy, route);
    this.#sweep.requireResolution(sweepResolutionFor([policy.pingIntervalMs, policy.idleTimeoutMs, policy.maxLifetimeMs, policy.closeTimeoutMs]));
    for (const [name, list] of [['protocols', route.protocols], ['allowedOrigins', route.allowedOrigins]] as const) {
      if (list !== undefined && (!Array.isArray(list) || !list.every((item) => typeof item === 'string' && item !== ''))) {
        throw new TypeError(`${name} must be an array of non-empty strings`);
      }
    }
    const resolved: ResolvedRoute = {
      pattern, handlers: route as WebSocketHandlers<any>, policy,
      protocols: [...(route.protocols ?? [])],
      allowedOrigins: route.allowedOrigins === undefined ? undefined : [...route.allowedOrigins],
      maxConnections: checkInteger('maxConnections', route.maxConnections ?? 0, 0),
      upgrade: route.upgrade as WebSocketRouteOptions<any>['upgrade'],
      openCount: 0,
    };
    this.#webSocketRoutes.add('GET', pattern, resolved);
    return this;
  }

  /** Sends a message to every connection subscribed to `topic`, encoding it once; returns how many. */
  publish(topic: string, data: string | Uint8Array, isBinary?: boolean): number {
    return this.#broker.publish(topic, data, isBinary);
  }

  subscriberCount(topic: string): number {
    return this.#broker.subscriberCount(topic);
  }

  /** Open WebSocket connections across all routes. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /** WebSocket connections on the route registered with `pattern`: open ones plus upgrades still in their hook. */
  routeConnectionCount(pattern: string): number {
    const lookup = this.#webSocketRoutes.match('GET', pattern);
    return lookup.kind === 'found' && lookup.match.pattern === pattern ? lookup.match.value.openCount : 0;
  }

  /**
   * Serves this server's WebSocket routes on another http.Server (Express, Fastify...). Upgrades for paths
   * with no route are left to the server's other 'upgrade' listeners, or refused with 404 if it has none.
   */
  attach(server: HttpServer): this {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const path = pathOf(req.url);
      const known = path !== undefined && this.#webSocketRoutes.match('GET', path).kind === 'found';
      if (!known && server !== this.httpServer && server.listenerCount('upgrade') > 1) return;
      this.#onUpgrade(req, socket as Socket, head);
    });
    return this;
  }

  listen(options: ListenOptions = {}): Promise<AddressInfo> {
    const port = options.port ?? 8080;
    const host = options.host ?? '127.0.0.1';
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      this.httpServer.once('error', onError);
      this.httpServer.listen(port, host, () => {
        this.httpServer.off('error', onError);
        resolve(this.httpServer.address() as AddressInfo);
      });
    });
  }

  /**
   * Graceful stop: stops accepting, closes every WebSocket with 1001, waits for them up to shutdownTimeoutMs
   * (then drops them), and resolves when the server is fully closed.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutDown();
    return this.#closing;
  }

  async #shutDown(): Promise<void> {
    const server = this.httpServer;
    const stopped = new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
    for (const socket of this.#refusedSockets) socket.destroy();
    const closed = [...this.#connections].map((ws) => {
      const gone = new Promise<void>((resolve) => this.#closeWaiters.set(ws, resolve));
      try {
        ws.close(CloseCode.GoingAway, 'server shutting down');
      } catch {
        ws.terminate();
      }
      return gone;
    });
    const deadline = setTimeout(() => {
      for (const ws of this.#connections) ws.terminate();
      server.closeAllConnections();
    }, this.#shutdownTimeoutMs);
    // HTTP responses in flight may finish; keep-alive connections are closed as soon as they fall idle.
    const idleSweep = setInterval(() => server.closeIdleConnections(), 50);
    server.closeIdleConnections();
    await Promise.all(closed);
    await stopped;
    clearInterval(idleSweep);
    clearTimeout(deadline);
  }

  readonly #closeWaiters = new WeakMap<WebSocket<any>, () => void>();

  #onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    // Until a WebSocket owns the socket, an error on it (a reset mid-handshake) must not become uncaught.
    socket.on('error', ignoreError);
    // Only with trustProxy is there anything to resolve (and remember, for bridges that take the request through
    // requestClient()); without it the peer is the client, read lazily, so an idle connection holds nothing more.
    const client = this.#trustedProxies.isEmpty ? undefined
      : rememberRequestClient(req, resolveRequestClient(socket as PeerSocket, req.headers, this.#trustedProxies));
    const path = pathOf(req.url);
    const lookup = path === undefined ? undefined : this.#webSocketRoutes.match('GET', path);
    if (this.#closing !== undefined) {
      this.#refuse(req, client, socket, '', { status: 503, reason: 'shutting-down', detail: 'server shutting down' });
      return;
    }
    if (path === undefined || lookup?.kind !== 'found') {
      this.#refuse(req, client, socket, '', { status: 404, reason: 'no-route', detail: 'no WebSocket route at this path' });
      return;
    }
    const { value: route, params } = lookup.match;
    const checked = checkUpgrade(req, route, this.#connections.size + this.#pendingUpgrades, this.#maxConnections);
    if ('refusal' in checked) {
      this.#refuse(req, client, socket, route.pattern, checked.refusal);
      return;
    }
    if (route.upgrade === undefined) {
      // The common case stays synchronous: no promise, no extra tick.
      this.#open(req, client, socket, head, route, params, checked.protocol, undefined, checked.response, checked.deflate);
      return;
    }
    route.openCount++;
    this.#pendingUpgrades++;
    // While the hook runs, read the socket so that a client who leaves (FIN or reset) is noticed and never
    // becomes a connection; bytes that arrive meanwhile are kept for the WebSocket, up to a bound (a client
    // should send nothing before the 101, RFC 6455 §4.1): one that streams more is dropped.
    const early: Buffer[] = [];
    let earlyBytes = 0;
    let left = false;
    const onEarlyData = (chunk: Buffer): void => {
      earlyBytes += chunk.length;
      if (earlyBytes > EARLY_DATA_MAX_BYTES) socket.destroy();
      else early.push(chunk);
    };
    const onLeft = (): void => { left = true; };
    socket.on('data', onEarlyData);
    socket.once('end', onLeft);
    socket.once('close', onLeft);
    void decideUpgrade(req, client, route, path, params, checked.protocol, checked.response, checked.deflate).then((admission) => {
      route.openCount--;
      this.#pendingUpgrades--;
      socket.off('data', onEarlyData);
      socket.off('end', onLeft);
      socket.off('close', onLeft);
      if (left || socket.destroyed) {
        socket.destroy();
        return;
      }
      if (early.length > 0) head = Buffer.concat([head, ...early]);
      if (!admission.accepted) this.#refuse(req, client, socket, route.pattern, admission.refusal);
      else if (this.#closing !== undefined) this.#refuse(req, client, socket, route.pattern, { status: 503, reason: 'shutting-down', detail: 'server shutting down' });
      else this.#open(req, client, socket, head, route, params, admission.protocol, admission.data, admission.response, admission.deflate);
    });
  }

  #open(req: IncomingMessage, client: RequestClient | undefined, socket: Socket, head: Buffer, route: ResolvedRoute, params: Readonly<Record<string, string>>,
    protocol: string, data: unknown, response: HandshakeResponse, deflate: DeflateAgreement | undefined): void {
    socket.write(renderAccept(response));
    socket.off('error', ignoreError);
    const ws = new WebSocket<any>({
      socket, role: 'server', policy: route.policy, handlers: route.handlers, sweep: this.#sweep, protocol,
      url: req.url ?? '/', data, broker: this.#broker, request: { params, headers: req.headers, ...(client !== undefined && { client }) },
      id: this.#nextConnectionId++, owner: this.#owner, ...(deflate !== undefined && { deflate }),
    });
    route.openCount++;
    this.#connections.add(ws);
    this.#routeOf.set(ws, route);
    if (this.#observer?.webSocketOpen !== undefined) {
      this.#observer.webSocketOpen({ id: ws.id, route: route.pattern, url: ws.url, remoteAddress: ws.remoteAddress, protocol });
    }
    ws.start(head);
  }

  readonly #owner: WebSocketOwner = {
    closed: (ws, code, reason, wasClean) => {
      const route = this.#routeOf.get(ws);
      if (route !== undefined) route.openCount--;
      this.#connections.delete(ws);
      this.#closeWaiters.get(ws)?.();
      if (this.#observer?.webSocketClose !== undefined && route !== undefined) {
        this.#observer.webSocketClose({
          id: ws.id, route: route.pattern, url: ws.url, remoteAddress: ws.remoteAddress, protocol: ws.protocol,
          durationMs: Date.now() - ws.openedAtMs, code, reason, wasClean, messagesIn: ws.messagesIn, messagesOut: ws.messagesOut,
          bytesIn: ws.bytesIn, bytesOut: ws.bytesOut, droppedMessages: ws.droppedMessages,
        });
      }
    },
    dropped: (ws) => {
      const route = this.#routeOf.get(ws);
      if (route !== undefined) this.#observer?.messageDropped?.(route.pattern, 1);
    },
  };

  /** Before a scrape: report open connections' traffic so far, so long-lived ones show up before they close. */
  #reportLiveTraffic(): void {
    const metrics = this.metrics;
    if (metrics === undefined) return;
    for (const ws of this.#connections) {
      const route = this.#routeOf.get(ws);
      if (route !== undefined) metrics.addTraffic(route.pattern, ws.messagesIn, ws.bytesIn, ws.messagesOut, ws.bytesOut, ws.id);
    }
  }

  #refuse(req: IncomingMessage, client: RequestClient | undefined, socket: Socket, route: string, refusal: Refusal): void {
    this.#observer?.handshakeRejected?.({
      route, url: req.url ?? '', remoteAddress: client?.address ?? socket.remoteAddress ?? '', status: refusal.status, reason: refusal.reason, detail: refusal.detail,
    });
    refuseSocket(socket, refusal, this.#policy.closeTimeoutMs, this.#refusedSockets);
  }
}

function renderAccept(response: HandshakeResponse): string {
  let text = `HTTP/1.1 ${response.status} ${response.statusText}\r\n`;
  for (const [name, value] of response.headers) text += `${name}: ${value}\r\n`;
  return `${text}\r\n`;
}

function ignoreError(): void {}

/** Bytes a client may send while its upgrade hook runs (before the 101) before it is dropped. */
const EARLY_DATA_MAX_BYTES = 64 * 1024;

export function createServer(options: ServerOptions = {}): Switchyard {
  return new Switchyard(options);
}
