// createServer(): one node:http server on one port for static files and WebSocket routes. Upgrades are
// checked by the protocol core's handshake and handed to a WebSocket; everything else goes to the files.
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { acceptServerHandshake, rejection, renderResponse } from '../protocol/handshake.js';
import { CloseCode } from '../protocol/constants.js';
import { StaticFiles } from '../http/static-files.js';
import { TopicBroker } from '../pubsub/broker.js';
import { TimerSweep, sweepResolutionFor } from '../transport/timers.js';
import { WebSocket, type WebSocketHandlers, type WebSocketPolicy } from '../transport/websocket.js';
import { DEFAULT_POLICY, checkInteger, resolvePolicy, type WebSocketPolicyOptions } from '../transport/policy.js';
import { DEFAULT_HANDSHAKE_TIMEOUT_MS, type ServerOptions } from './options.js';

export interface WebSocketRoute<Data = unknown> extends WebSocketHandlers<Data>, WebSocketPolicyOptions {
  /** Subprotocols this route speaks, in order of preference; only one the client offered is selected. */
  protocols?: readonly string[];
}

export interface ListenOptions {
  port?: number;
  host?: string;
}

interface ResolvedRoute {
  readonly handlers: WebSocketHandlers<any>;
  readonly policy: WebSocketPolicy;
  readonly protocols: readonly string[];
}

export class Switchyard {
  readonly httpServer: HttpServer;
  readonly #routes = new Map<string, ResolvedRoute>();
  readonly #policy: WebSocketPolicy;
  readonly #staticFiles: StaticFiles | undefined;
  readonly #broker = new TopicBroker<WebSocket<any>>();
  readonly #connections = new Set<WebSocket<any>>();
  readonly #sweep: TimerSweep;
  /** Sockets whose upgrade we refused, kept until the peer has read the answer and gone. */
  readonly #refusedSockets = new Set<Socket>();
  #closing: Promise<void> | undefined;

  constructor(options: ServerOptions = {}) {
    this.#policy = resolvePolicy(DEFAULT_POLICY, options);
    const handshakeTimeoutMs = checkInteger('handshakeTimeoutMs', options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS, 1);
    this.#sweep = new TimerSweep(sweepResolutionFor([this.#policy.pingIntervalMs, this.#policy.idleTimeoutMs, this.#policy.closeTimeoutMs]));
    if (options.root !== undefined) this.#staticFiles = new StaticFiles({ root: options.root });
    this.httpServer = createHttpServer({
      // Node drops a client whose request head is not complete in time (408), checking on this interval.
      headersTimeout: handshakeTimeoutMs,
      requestTimeout: Math.max(handshakeTimeoutMs, 300_000),
      connectionsCheckingInterval: Math.min(1000, Math.max(10, Math.floor(handshakeTimeoutMs / 4))),
    });
    this.httpServer.on('request', (req, res) => this.#onRequest(req, res));
    this.httpServer.on('upgrade', (req, socket, head) => this.#onUpgrade(req, socket, head));
  }

  /** Adds a WebSocket route at an exact path. */
  websocket<Data = undefined>(path: string, route: WebSocketRoute<Data>): this {
    if (!path.startsWith('/')) throw new TypeError(`route path must start with "/" (got ${JSON.stringify(path)})`);
    if (this.#routes.has(path)) throw new TypeError(`a WebSocket route for ${path} exists already`);
    const { protocols = [], ...rest } = route;
    const policy = resolvePolicy(this.#policy, rest);
    this.#sweep.requireResolution(sweepResolutionFor([policy.pingIntervalMs, policy.idleTimeoutMs, policy.closeTimeoutMs]));
    const handlers = this.#trackingHandlers(route as WebSocketHandlers<any>);
    this.#routes.set(path, { handlers, policy, protocols: [...protocols] });
    return this;
  }

  /** Sends a message to every connection subscribed to `topic`, encoding it once. */
  publish(topic: string, data: string | Uint8Array, isBinary?: boolean): number {
    return this.#broker.publish(topic, data, isBinary);
  }

  /** Open WebSocket connections across all routes. */
  get connectionCount(): number {
    return this.#connections.size;
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
   * Stops accepting, closes every WebSocket with 1001, waits for them up to the close timeout (then drops
   * them), and resolves when the server is fully closed.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutDown();
    return this.#closing;
  }

  async #shutDown(): Promise<void> {
    const server = this.httpServer;
    const stopped = new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
    server.closeIdleConnections();
    for (const socket of this.#refusedSockets) socket.destroy();
    const open = [...this.#connections];
    const closed = open.map((ws) => new Promise<void>((resolve) => closeWaiters.set(ws, resolve)));
    for (const ws of open) {
      try {
        ws.close(CloseCode.GoingAway, 'server shutting down');
      } catch {
        ws.terminate();
      }
    }
    const deadline = setTimeout(() => {
      for (const ws of this.#connections) ws.terminate();
      server.closeAllConnections();
    }, this.#policy.closeTimeoutMs);
    await Promise.all(closed);
    server.closeAllConnections();
    await stopped;
    clearTimeout(deadline);
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    const path = pathOf(req.url);
    if (path !== undefined && this.#routes.has(path)) {
      // RFC 6455 §4.2.2 / RFC 7231 §6.5.15: a WebSocket endpoint asked for plain HTTP.
      res.writeHead(426, { 'Content-Type': 'text/plain; charset=utf-8', Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Version': '13' });
      res.end('this path speaks WebSocket: send an Upgrade request\n');
      return;
    }
    if (this.#staticFiles !== undefined) {
      void this.#staticFiles.handle(req, res);
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
    res.end('not found\n');
  }

  #onUpgrade(req: IncomingMessage, duplex: Duplex, head: Buffer): void {
    const socket = duplex as Socket;
    // Until a WebSocket owns the socket, an error on it (a reset mid-handshake) must not become uncaught.
    socket.on('error', ignoreError);
    const path = pathOf(req.url);
    const route = path === undefined ? undefined : this.#routes.get(path);
    if (route === undefined || this.#closing !== undefined) {
      const status = route === undefined ? 404 : 503;
      this.#refuse(socket, renderResponse(rejection(status, route === undefined ? 'no WebSocket route at this path' : 'server shutting down')));
      return;
    }
    const result = acceptServerHandshake({ method: req.method ?? '', httpVersion: req.httpVersion, headers: req.headers }, { protocols: route.protocols });
    if (!result.accepted) {
      this.#refuse(socket, renderResponse(result.response));
      return;
    }
    socket.write(renderResponse(result.response));
    socket.off('error', ignoreError);
    const ws = new WebSocket<any>({
      socket, role: 'server', policy: route.policy, handlers: route.handlers,
      sweep: this.#sweep, protocol: result.protocol, url: req.url ?? '/', data: undefined, broker: this.#broker,
    });
    this.#connections.add(ws);
    ws.start(head);
  }

  /** Answers an upgrade we refuse and closes; a peer that never reads is dropped after the close timeout. */
  #refuse(socket: Socket, response: string): void {
    if (socket.destroyed) return;
    this.#refusedSockets.add(socket);
    socket.once('close', () => this.#refusedSockets.delete(socket));
    socket.end(response);
    socket.setTimeout(this.#policy.closeTimeoutMs, () => socket.destroy());
  }

  /** Wraps a route's close handler so the server knows when each connection is gone. */
  #trackingHandlers(handlers: WebSocketHandlers<any>): WebSocketHandlers<any> {
    const connections = this.#connections;
    const userClose = handlers.close;
    return {
      ...handlers,
      close(ws, code, reason, wasClean) {
        connections.delete(ws);
        try {
          userClose?.call(handlers, ws, code, reason, wasClean);
        } finally {
          closeWaiters.get(ws)?.();
          closeWaiters.delete(ws);
        }
      },
    };
  }
}

const closeWaiters = new WeakMap<WebSocket<any>, () => void>();

function ignoreError(): void {}

/** The path part of a request target; undefined when it is not origin-form. */
function pathOf(url: string | undefined): string | undefined {
  if (url === undefined || !url.startsWith('/')) return undefined;
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

export function createServer(options: ServerOptions = {}): Switchyard {
  return new Switchyard(options);
}
