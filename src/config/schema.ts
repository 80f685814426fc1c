// The config schema: every knob of the config file and the `serve` flags, with its type, unit, default, flag
// and description, in one tree that validation, merging, --help, --print-config and the docs test all walk.
// The WebSocket policy part is generated from POLICY_FIELDS / DEFAULT_POLICY, not restated here.
import { DEFAULT_POLICY, POLICY_FIELDS, type WebSocketPolicy, type WebSocketPolicyOptions } from '../transport/policy.js';
import { DEFAULT_HANDSHAKE_TIMEOUT_MS, DEFAULT_SHUTDOWN_TIMEOUT_MS } from '../server/options.js';

// ---- the effective configuration (what --print-config prints; a valid config file itself) ----

export const ACCESS_LOG_SETTINGS = ['text', 'json', 'off'] as const;
export type AccessLogSetting = (typeof ACCESS_LOG_SETTINGS)[number];

export interface StaticConfig {
  indexFile: string;
  cacheControl: string;
  directoryListing: boolean;
  precompressed: boolean;
}

export interface TlsFilesConfig {
  /** Absolute once loaded (relative paths resolve against the config file's directory). */
  certFile: string;
  keyFile: string;
}

interface RouteConfigBase extends WebSocketPolicyOptions {
  path: string;
  protocols: string[];
  /** Absent: any Origin (or none) is accepted. */
  allowedOrigins?: string[];
  /** 0 = only the server-wide limit applies. */
  maxConnections: number;
}

export interface EchoRouteConfig extends RouteConfigBase { kind: 'echo' }
export interface BroadcastRouteConfig extends RouteConfigBase { kind: 'broadcast' }
/** Discriminated by `kind`; a new kind adds a member here and an entry in ROUTE_KINDS (and a builder). */
export type RouteConfig = EchoRouteConfig | BroadcastRouteConfig;
export type RouteKind = RouteConfig['kind'];

export interface SwitchyardConfig {
  host: string;
  port: number;
  /** Absolute; absent: no static files (every plain HTTP request is 404). */
  root?: string;
  static: StaticConfig;
  maxConnections: number;
  handshakeTimeoutMs: number;
  shutdownTimeoutMs: number;
  tls?: TlsFilesConfig;
  accessLog: AccessLogSetting;
  metricsPath?: string;
  websocket: WebSocketPolicy;
  routes: RouteConfig[];
}

// ---- the schema tree ----

/** How a string is checked (and, for `path`, resolved against the config file's or the working directory). */
export type StringFormat = 'path' | 'url-path' | 'route-path' | 'host' | 'file-name' | 'header-value';
export type ListItemFormat = 'token' | 'origin';

export type LeafType =
  | { readonly type: 'integer'; readonly min: number; readonly max?: number; readonly unit?: string }
  | { readonly type: 'boolean' }
  | { readonly type: 'enum'; readonly values: readonly string[] }
  | { readonly type: 'string'; readonly format: StringFormat }
  | { readonly type: 'list'; readonly of: ListItemFormat };

export interface FlagSpec {
  /** Without the dashes: 'max-message-bytes'. */
  readonly name: string;
  /** What the value looks like in --help ('N', 'PATH'); absent for a boolean flag (no value). */
  readonly arg?: string;
  readonly repeatable?: boolean;
  /** A note for --help when the flag's meaning differs from the config key's (e.g. a default for routes). */
  readonly note?: string;
}

export interface LeafSchema {
  readonly node: 'leaf';
  readonly value: LeafType;
  readonly doc: string;
  /** Absent: the key is optional and has no default (left out of the effective config when not given). */
  readonly default?: string | number | boolean | readonly string[];
  readonly flag?: FlagSpec;
}

export interface ObjectSchema {
  readonly node: 'object';
  readonly doc: string;
  readonly fields: Readonly<Record<string, SchemaNode>>;
  /**
   * 'filled': always present in the effective config, each key from its default unless given.
   * 'optional': absent unless given; when given, every key in it is required, and a later layer replaces it whole.
   */
  readonly presence: 'filled' | 'optional';
}

export interface RouteKindSchema {
  readonly doc: string;
  /** Keys only this kind has (a later `exec` kind adds `command`, ...). */
  readonly fields: Readonly<Record<string, LeafSchema>>;
  /** `--echo PATH` adds a route of this kind at PATH. */
  readonly flag?: FlagSpec;
}

export interface RoutesSchema {
  readonly node: 'routes';
  readonly doc: string;
  /** Keys every route has, besides the WebSocket policy keys (which a route may set to override `websocket`). */
  readonly common: Readonly<Record<string, LeafSchema>>;
  readonly policy: Readonly<Record<string, LeafSchema>>;
  readonly kinds: Readonly<Record<RouteKind, RouteKindSchema>>;
}

export type SchemaNode = LeafSchema | ObjectSchema | RoutesSchema;

const leaf = (value: LeafType, doc: string, extra: { default?: NonNullable<LeafSchema['default']>; flag?: FlagSpec } = {}): LeafSchema =>
  ({ node: 'leaf', value, doc, ...extra });

/** 'maxMessageBytes' -> 'max-message-bytes'. */
export function kebabCase(key: string): string {
  return key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
}

/** Flag names for policy keys that are not simply the kebab-case key. */
const POLICY_FLAG_NAMES: Partial<Record<keyof WebSocketPolicy, string>> = { slowConsumerPolicy: 'slow-consumer', perMessageDeflate: 'deflate' };

function policyLeaf(key: keyof WebSocketPolicy, withDefaultAndFlag: boolean): LeafSchema {
  const spec = POLICY_FIELDS[key];
  const value: LeafType = spec.kind === 'integer' ? { type: 'integer', min: spec.min, ...(spec.max !== undefined && { max: spec.max }), unit: spec.unit }
    : spec.kind === 'boolean' ? { type: 'boolean' }
      : { type: 'enum', values: spec.values };
  if (!withDefaultAndFlag) return leaf(value, spec.doc);
  const flag: FlagSpec = spec.kind === 'boolean' ? { name: POLICY_FLAG_NAMES[key] ?? kebabCase(key) }
    : { name: POLICY_FLAG_NAMES[key] ?? kebabCase(key), arg: spec.kind === 'integer' ? 'N' : spec.values.join('|') };
  return leaf(value, spec.doc, { default: DEFAULT_POLICY[key], flag });
}

const POLICY_KEYS = Object.keys(POLICY_FIELDS) as Array<keyof WebSocketPolicy>;

function policyFields(withDefaultAndFlag: boolean): Record<string, LeafSchema> {
  return Object.fromEntries(POLICY_KEYS.map((key) => [key, policyLeaf(key, withDefaultAndFlag)]));
}

export const ROUTE_KINDS: Readonly<Record<RouteKind, RouteKindSchema>> = {
  echo: {
    doc: 'every message received is sent back unchanged, with its type',
    fields: {},
    flag: { name: 'echo', arg: 'PATH', repeatable: true },
  },
  broadcast: {
    doc: 'every message received is sent to every connection on the same request path, sender included',
    fields: {},
    flag: { name: 'broadcast', arg: 'PATH', repeatable: true },
  },
};

export const CONFIG_SCHEMA: ObjectSchema = {
  node: 'object',
  doc: 'the whole config file',
  presence: 'filled',
  fields: {
    host: leaf({ type: 'string', format: 'host' }, 'address to listen on', { default: '127.0.0.1', flag: { name: 'host', arg: 'H' } }),
    port: leaf({ type: 'integer', min: 0, max: 65535 }, 'TCP port; 0 picks a free one', { default: 8080, flag: { name: 'port', arg: 'N' } }),
    root: leaf({ type: 'string', format: 'path' }, 'directory served as static files (the ROOT argument); none: every plain HTTP request is 404'),
    static: {
      node: 'object',
      doc: 'how files under root are served',
      presence: 'filled',
      fields: {
        indexFile: leaf({ type: 'string', format: 'file-name' }, 'file served for a directory URL', { default: 'index.html' }),
        cacheControl: leaf({ type: 'string', format: 'header-value' }, 'Cache-Control sent with files (revalidated with ETag / Last-Modified)', { default: 'no-cache' }),
        directoryListing: leaf({ type: 'boolean' }, 'list a directory that has no index file (otherwise 404)', { default: false }),
        precompressed: leaf({ type: 'boolean' }, 'serve a .br or .gz sibling when the client accepts that encoding', { default: true }),
      },
    },
    maxConnections: leaf({ type: 'integer', min: 0, unit: 'connections' }, 'most WebSocket connections open at once across all routes (503 beyond); 0 = no limit',
      { default: 0, flag: { name: 'max-connections', arg: 'N' } }),
    handshakeTimeoutMs: leaf({ type: 'integer', min: 1, unit: 'ms' }, 'drop a client that has not sent its whole request head by then (408)',
      { default: DEFAULT_HANDSHAKE_TIMEOUT_MS, flag: { name: 'handshake-timeout-ms', arg: 'N' } }),
    shutdownTimeoutMs: leaf({ type: 'integer', min: 0, unit: 'ms' }, 'on SIGINT/SIGTERM, how long open WebSockets get to finish closing (1001) before they are dropped',
      { default: DEFAULT_SHUTDOWN_TIMEOUT_MS, flag: { name: 'shutdown-timeout-ms', arg: 'N' } }),
    tls: {
      node: 'object',
      doc: 'serve https and wss on the same port (both keys required)',
      presence: 'optional',
      fields: {
        certFile: leaf({ type: 'string', format: 'path' }, 'PEM certificate chain file', { flag: { name: 'tls-cert', arg: 'FILE' } }),
        keyFile: leaf({ type: 'string', format: 'path' }, 'PEM private key file', { flag: { name: 'tls-key', arg: 'FILE' } }),
      },
    },
    accessLog: leaf({ type: 'enum', values: ACCESS_LOG_SETTINGS }, 'one line per HTTP request and per WebSocket open and close, on stdout',
      { default: 'text', flag: { name: 'access-log', arg: ACCESS_LOG_SETTINGS.join('|') } }),
    metricsPath: leaf({ type: 'string', format: 'url-path' }, 'serve Prometheus text metrics at this path; none: no metrics endpoint',
      { flag: { name: 'metrics', arg: 'PATH' } }),
    websocket: {
      node: 'object',
      doc: 'the WebSocket policy every route starts from (a route may override any key)',
      presence: 'filled',
      fields: policyFields(true),
    },
    routes: {
      node: 'routes',
      doc: 'WebSocket routes, each with a kind',
      common: {
        path: leaf({ type: 'string', format: 'route-path' }, 'request path: exact, with :name parameters, or ending in a * wildcard'),
        kind: leaf({ type: 'enum', values: Object.keys(ROUTE_KINDS) }, 'what the route does with messages'),
        protocols: leaf({ type: 'list', of: 'token' }, 'subprotocols the route speaks, in order of preference', {
          default: [],
          flag: { name: 'protocol', arg: 'NAME', repeatable: true, note: 'for every route that lists none of its own' },
        }),
        allowedOrigins: leaf({ type: 'list', of: 'origin' }, 'Origin header values accepted for the upgrade (403 otherwise; "*" = any); absent: any. A client that sends no Origin is accepted', {
          flag: { name: 'allowed-origin', arg: 'ORIGIN', repeatable: true, note: 'for every route that lists none of its own' },
        }),
        maxConnections: leaf({ type: 'integer', min: 0, unit: 'connections' }, 'most connections open at once on this route (503 beyond); 0 = only the server-wide limit',
          { default: 0 }),
      },
      policy: policyFields(false),
      kinds: ROUTE_KINDS,
    },
  },
};

/** Keys a route may have, for its kind. */
export function routeFields(kind: RouteKind): Readonly<Record<string, LeafSchema>> {
  const routes = CONFIG_SCHEMA.fields['routes'] as RoutesSchema;
  return { ...routes.common, ...routes.policy, ...routes.kinds[kind].fields };
}

export function routesSchema(): RoutesSchema {
  return CONFIG_SCHEMA.fields['routes'] as RoutesSchema;
}

/** The effective configuration when nothing is given: every default, no root, no TLS, no routes. */
export function defaultConfig(): SwitchyardConfig {
  return fillDefaults(CONFIG_SCHEMA) as unknown as SwitchyardConfig;
}

function fillDefaults(schema: ObjectSchema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, node] of Object.entries(schema.fields)) {
    if (node.node === 'leaf') {
      if (node.default !== undefined) out[key] = Array.isArray(node.default) ? [...node.default] : node.default;
    } else if (node.node === 'object') {
      if (node.presence === 'filled') out[key] = fillDefaults(node);
    } else {
      out[key] = [];
    }
  }
  return out;
}

/** Every leaf of the schema with its dotted path ('websocket.maxMessageBytes', 'routes[].kind'), in order. */
export function schemaLeaves(): Array<{ path: string; leaf: LeafSchema }> {
  const out: Array<{ path: string; leaf: LeafSchema }> = [];
  const walk = (schema: ObjectSchema, prefix: string): void => {
    for (const [key, node] of Object.entries(schema.fields)) {
      const path = prefix === '' ? key : `${prefix}.${key}`;
      if (node.node === 'leaf') out.push({ path, leaf: node });
      else if (node.node === 'object') walk(node, path);
      else {
        for (const [name, child] of Object.entries({ ...node.common, ...node.policy })) out.push({ path: `${path}[].${name}`, leaf: child });
        for (const [kind, spec] of Object.entries(node.kinds)) {
          for (const [name, child] of Object.entries(spec.fields)) out.push({ path: `${path}[kind=${kind}].${name}`, leaf: child });
        }
      }
    }
  };
  walk(CONFIG_SCHEMA, '');
  return out;
}
