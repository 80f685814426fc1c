// Turns an effective configuration into a server: ServerOptions one-to-one from the config, and one WebSocket
// route per `routes` entry, whose behaviour comes from its kind. Creates the server; does not listen.
import { ConfigError } from '../errors.js';
import { createServer, type Switchyard, type WebSocketRoute } from '../server/server.js';
import { POLICY_FIELDS, type WebSocketPolicy } from '../transport/policy.js';
import type { WebSocket, WebSocketHandlers } from '../transport/websocket.js';
import type { ServerOptions } from '../server/options.js';
import { processBridge } from '../bridges/process-bridge.js';
import { cgiHandler } from '../bridges/cgi.js';
import { parseTcpTarget, tcpBridge } from '../bridges/tcp-bridge.js';
import { proxyHttpHandler, proxyWebSocketRoute } from '../bridges/proxy.js';
import type { HttpHandler } from '../server/requests.js';
import type { WebSocketPolicyOptions } from '../transport/policy.js';
import type { RouteConfig, RouteKind, SwitchyardConfig } from './schema.js';
import type { ConfigResources } from './load.js';
import type { EffectiveConfig } from './merge.js';

/** What the server writes to; the CLI passes stdout (only src/cli prints). */
export interface BuildHooks {
  /** One access-log line, without its newline. */
  writeAccessLogLine(line: string): void;
  /**
   * One line from a bridge (a program's stderr, a failed CGI run, a refused TCP target...), without its
   * newline. The CLI writes them to stderr. Absent: dropped.
   */
  log?(line: string): void;
}

/** What the bridge kinds need besides their route: where their log lines go, and whether the server is TLS. */
export interface BridgeContext {
  readonly log?: (line: string) => void;
  /** The server serves https/wss: programs get HTTPS=on. */
  readonly secure?: boolean;
}

/** ServerOptions for the configuration: the same names, plus the TLS contents and the access-log sink. */
export function serverOptionsFor(config: SwitchyardConfig, resources: ConfigResources, hooks: BuildHooks): ServerOptions {
  const options: ServerOptions = {
    ...config.websocket,
    static: { ...config.static },
    maxConnections: config.maxConnections,
    handshakeTimeoutMs: config.handshakeTimeoutMs,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
  };
  if (config.root !== undefined) options.root = config.root;
  if (resources.tls !== undefined) options.tls = { cert: resources.tls.cert, key: resources.tls.key };
  if (config.accessLog !== 'off') options.accessLog = { format: config.accessLog, write: (line) => hooks.writeAccessLogLine(line) };
  if (config.metricsPath !== undefined) options.metricsPath = config.metricsPath;
  if (config.trustProxy.length > 0) options.trustProxy = [...config.trustProxy];
  return options;
}

/** The request path of a connection's URL (no query): the broadcast kind's topic. */
function requestPath(url: string): string {
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

/** What a route kind adds to the server: a WebSocket route, an HTTP route (any method), or both. */
interface Mount {
  readonly websocket?: { readonly pattern: string; readonly route: WebSocketRoute<any> };
  readonly http?: { readonly pattern: string; readonly handler: HttpHandler };
  /** Releases what the route holds besides connections (a proxy's pooled backend sockets). */
  readonly release?: () => void;
}

type RouteBuilders = { readonly [K in RouteKind]: (app: Switchyard, route: Extract<RouteConfig, { kind: K }>, context: BridgeContext) => Mount };
type Deliver = (ws: WebSocket<undefined>, data: Buffer, isBinary: boolean) => void;

/**
 * `message` and `messagePiece` handlers that both hand `deliver` whole messages. With messagePieceBytes set the
 * server calls messagePiece instead of message; echo and broadcast send whole messages (a WebSocket has no
 * way to send one message in pieces yet), so the pieces are put back together first.
 */
function wholeMessages(deliver: Deliver): Pick<WebSocketHandlers<undefined>, 'message' | 'messagePiece'> {
  const pending = new WeakMap<WebSocket<undefined>, Buffer[]>();
  return {
    message: deliver,
    messagePiece(ws, piece, isBinary, isLast) {
      const earlier = pending.get(ws);
      if (isLast) {
        pending.delete(ws);
        deliver(ws, earlier === undefined ? piece : Buffer.concat([...earlier, piece]), isBinary);
      } else if (earlier === undefined) {
        // Copied: a piece may be a view into a receive buffer that is reused.
        pending.set(ws, [Buffer.from(piece)]);
      } else {
        earlier.push(Buffer.from(piece));
      }
    },
  };
}

/** PREFIX/* for a prefix kind ('/legacy' or '/legacy/' -> '/legacy/*'; '/' -> '/*'), and the prefix without a trailing '/'. */
function prefixPattern(prefix: string): { pattern: string; prefix: string } {
  const bare = prefix.replace(/\/+$/, '');
  return { pattern: `${bare}/*`, prefix: bare };
}

/** The WebSocket policy keys a route sets of its own. */
function routePolicy(route: RouteConfig): WebSocketPolicyOptions {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(POLICY_FIELDS) as Array<keyof WebSocketPolicy>) {
    const value = (route as unknown as Record<string, unknown>)[key];
    if (value !== undefined) out[key] = value;
  }
  return out as WebSocketPolicyOptions;
}

/** The smaller of two connection limits, 0 meaning none. */
function tighterLimit(a: number | undefined, b: number | undefined): number {
  const limits = [a ?? 0, b ?? 0].filter((limit) => limit > 0);
  return limits.length === 0 ? 0 : Math.min(...limits);
}

/** A bridge's route under the configured settings; the bridge's own policy keys (tcp's) win, the limits combine. */
function bridgeRoute(route: RouteConfig, bridge: WebSocketRoute<any>): WebSocketRoute<any> {
  const settings = routeSettings(route);
  const limit = tighterLimit(settings.maxConnections, bridge.maxConnections);
  const combined: WebSocketRoute<any> = { ...settings, ...bridge };
  if (limit > 0) combined.maxConnections = limit;
  else delete combined.maxConnections;
  return combined;
}

/** What each route kind does. A new kind in schema.ts fails to compile until it has a builder. */
const ROUTE_BUILDERS: RouteBuilders = {
  echo: (_app, route) => ({
    websocket: { pattern: route.path, route: { ...routeSettings(route), ...wholeMessages((ws, data, isBinary) => { ws.send(data, isBinary); }) } },
  }),
  broadcast: (app, route) => ({
    websocket: {
      pattern: route.path,
      route: {
        ...routeSettings(route),
        // One topic per request path, so a route such as /rooms/:room broadcasts within each room.
        open(ws) { ws.subscribe(requestPath(ws.url)); },
        ...wholeMessages((ws, data, isBinary) => { app.publish(requestPath(ws.url), data, isBinary); }),
      },
    },
  }),
  exec: (_app, route, context) => {
    const log = context.log;
    const bridge = processBridge({
      command: route.command, framing: route.framing, passEnv: route.passEnv, ...(route.env !== undefined && { env: route.env }),
      ...(route.cwd !== undefined && { cwd: route.cwd }), maxProcesses: route.maxProcesses, killGraceMs: route.killGraceMs,
      lineBuffered: route.lineBuffered, shared: route.shared, tagMessages: route.tagMessages, maxLineBytes: route.maxLineBytes,
      secure: context.secure ?? false,
      ...(log !== undefined && { log: (line: string) => log(`exec ${route.path} ${line}`) }),
    });
    return { websocket: { pattern: route.path, route: bridgeRoute(route, bridge) } };
  },
  tcp: (_app, route, context) => {
    const bridge = tcpBridge({
      ...(route.target !== undefined && { target: parseTcpTarget(route.target) }),
      ...(route.tokenFile !== undefined && { tokenFile: route.tokenFile }),
      ...(route.allow !== undefined && { allow: route.allow }),
      connectTimeoutMs: route.connectTimeoutMs,
      ...(context.log !== undefined && { log: context.log }),
    });
    return { websocket: { pattern: route.path, route: bridgeRoute(route, bridge) } };
  },
  proxy: (_app, route, context) => {
    const { pattern, prefix } = prefixPattern(route.path);
    const options = { target: route.target, prefix, ...(context.log !== undefined && { log: context.log }) };
    const handler = proxyHttpHandler(options);
    const webSocket = proxyWebSocketRoute({ ...options, webSocket: routePolicy(route) });
    return { http: { pattern, handler }, websocket: { pattern, route: bridgeRoute(route, webSocket) }, release: () => handler.close() };
  },
  cgi: (_app, route, context) => {
    const handler = cgiHandler({
      directory: route.directory, timeoutMs: route.timeoutMs, passEnv: route.passEnv, ...(route.env !== undefined && { env: route.env }),
      maxHeaderBytes: route.maxHeaderBytes, maxBodyBytes: route.maxBodyBytes,
      ...(context.log !== undefined && { log: context.log }),
    });
    return { http: { pattern: prefixPattern(route.path).pattern, handler } };
  },
};

/** Route options the server reads besides the handlers: protocols, origins, a connection limit, policy keys. */
type RouteSettings = WebSocketRoute<undefined> & { allowedOrigins?: readonly string[]; maxConnections?: number };

function routeSettings(route: RouteConfig): RouteSettings {
  if (route.kind === 'cgi') return {};
  const settings: RouteSettings = 'protocols' in route ? { protocols: [...route.protocols] } : {};
  if (route.allowedOrigins !== undefined) settings.allowedOrigins = [...route.allowedOrigins];
  if (route.maxConnections > 0) settings.maxConnections = route.maxConnections;
  return { ...settings, ...routePolicy(route) };
}

/** What the bridge routes of each server hold besides connections (released by releaseBridges). */
const releases = new WeakMap<Switchyard, Array<() => void>>();

/** Releases what the configured bridges hold besides connections (a proxy's idle backend sockets); after app.close(). */
export function releaseBridges(app: Switchyard): void {
  for (const release of releases.get(app) ?? []) release();
  releases.delete(app);
}

/** Adds the configured routes to `app`; a route the server (or its bridge) refuses is a ConfigError naming it. */
export function addConfiguredRoutes(app: Switchyard, routes: readonly RouteConfig[], fieldFor: (configPath: string) => string = (p) => p, context: BridgeContext = {}): void {
  routes.forEach((route, index) => {
    const builder = ROUTE_BUILDERS[route.kind] as (app: Switchyard, route: RouteConfig, context: BridgeContext) => Mount;
    try {
      const mount = builder(app, route, context);
      if (mount.http !== undefined) app.all(mount.http.pattern, mount.http.handler);
      if (mount.websocket !== undefined) app.websocket(mount.websocket.pattern, mount.websocket.route);
      if (mount.release !== undefined) {
        const list = releases.get(app) ?? [];
        list.push(mount.release);
        releases.set(app, list);
      }
    } catch (error) {
      if (!(error instanceof TypeError || error instanceof RangeError)) throw error;
      throw new ConfigError(fieldFor(`routes[${index}].path`), error.message, { cause: error });
    }
  });
}

/** Creates (does not start) the server the configuration describes. */
export function buildServer({ config, fieldFor }: EffectiveConfig, resources: ConfigResources, hooks: BuildHooks): Switchyard {
  const app = createServer(serverOptionsFor(config, resources, hooks));
  const log = hooks.log?.bind(hooks);
  addConfiguredRoutes(app, config.routes, fieldFor, { secure: config.tls !== undefined, ...(log !== undefined && { log }) });
  return app;
}
