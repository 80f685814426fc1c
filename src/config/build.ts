// Turns an effective configuration into a server: ServerOptions one-to-one from the config, and one WebSocket
// route per `routes` entry, whose behaviour comes from its kind. Creates the server; does not listen.
import { ConfigError } from '../errors.js';
import { createServer, type Switchyard, type WebSocketRoute } from '../server/server.js';
import { POLICY_FIELDS, type WebSocketPolicy } from '../transport/policy.js';
import type { WebSocket, WebSocketHandlers } from '../transport/websocket.js';
import type { ServerOptions } from '../server/options.js';
import type { RouteConfig, RouteKind, SwitchyardConfig } from './schema.js';
import type { ConfigResources } from './load.js';
import type { EffectiveConfig } from './merge.js';

/** What the server writes to; the CLI passes stdout (only src/cli prints). */
export interface BuildHooks {
  /** One access-log line, without its newline. */
  writeAccessLogLine(line: string): void;
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
  return options;
}

/** The request path of a connection's URL (no query): the broadcast kind's topic. */
function requestPath(url: string): string {
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

type RouteBuilders = { readonly [K in RouteKind]: (app: Switchyard, route: Extract<RouteConfig, { kind: K }>) => WebSocketHandlers<undefined> };
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

/** What each route kind does with messages. A new kind in schema.ts fails to compile until it has a builder. */
const ROUTE_BUILDERS: RouteBuilders = {
  echo: () => wholeMessages((ws, data, isBinary) => { ws.send(data, isBinary); }),
  broadcast: (app) => ({
    // One topic per request path, so a route such as /rooms/:room broadcasts within each room.
    open(ws) { ws.subscribe(requestPath(ws.url)); },
    ...wholeMessages((ws, data, isBinary) => { app.publish(requestPath(ws.url), data, isBinary); }),
  }),
};

/** Route options the server reads besides the handlers: protocols, origins, a connection limit, policy keys. */
type RouteSettings = WebSocketRoute<undefined> & { allowedOrigins?: readonly string[]; maxConnections?: number };

function routeSettings(route: RouteConfig): RouteSettings {
  const settings: RouteSettings = { protocols: [...route.protocols] };
  if (route.allowedOrigins !== undefined) settings.allowedOrigins = [...route.allowedOrigins];
  if (route.maxConnections > 0) settings.maxConnections = route.maxConnections;
  for (const key of Object.keys(POLICY_FIELDS) as Array<keyof WebSocketPolicy>) {
    if (route[key] !== undefined) (settings as Record<string, unknown>)[key] = route[key];
  }
  return settings;
}

/** Adds the configured routes to `app`; a route the server refuses is a ConfigError naming it. */
export function addConfiguredRoutes(app: Switchyard, routes: readonly RouteConfig[], fieldFor: (configPath: string) => string = (p) => p): void {
  routes.forEach((route, index) => {
    const builder = ROUTE_BUILDERS[route.kind] as (app: Switchyard, route: RouteConfig) => WebSocketHandlers<undefined>;
    const definition: WebSocketRoute<undefined> = { ...routeSettings(route), ...builder(app, route) };
    try {
      app.websocket(route.path, definition);
    } catch (error) {
      if (!(error instanceof TypeError || error instanceof RangeError)) throw error;
      throw new ConfigError(fieldFor(`routes[${index}].path`), error.message, { cause: error });
    }
  });
}

/** Creates (does not start) the server the configuration describes. */
export function buildServer({ config, fieldFor }: EffectiveConfig, resources: ConfigResources, hooks: BuildHooks): Switchyard {
  const app = createServer(serverOptionsFor(config, resources, hooks));
  addConfiguredRoutes(app, config.routes, fieldFor);
  return app;
}
