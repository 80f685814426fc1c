// The config schema: every knob of the config file and the `serve` flags, with its type, unit, default, flag
// and description, in one tree that validation, merging, --help, --print-config and the docs test all walk.
// The WebSocket policy part is generated from POLICY_FIELDS / DEFAULT_POLICY, not restated here.
import { DEFAULT_POLICY, POLICY_FIELDS, type WebSocketPolicy, type WebSocketPolicyOptions } from '../transport/policy.js';
import { DEFAULT_HANDSHAKE_TIMEOUT_MS, DEFAULT_SHUTDOWN_TIMEOUT_MS } from '../server/options.js';
import { DEFAULT_KILL_GRACE_MS, DEFAULT_MAX_LINE_BYTES } from '../bridges/process-bridge.js';
import { CGI_DEFAULTS } from '../bridges/cgi.js';

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

/** The process bridge's framings (src/bridges/process-framing.ts). */
export const EXEC_FRAMINGS = ['line', 'binary', 'length-prefixed', 'json'] as const;
export type ExecFraming = (typeof EXEC_FRAMINGS)[number];

/** `exec`: every connection talks to its own program (or, with `shared`, all to one) over stdin and stdout. */
export interface ExecRouteConfig extends RouteConfigBase {
  kind: 'exec';
  /** argv; a relative program path (one with a "/") is absolute once loaded. */
  command: string[];
  framing: ExecFraming;
  passEnv: string[];
  env?: Record<string, string>;
  cwd?: string;
  maxProcesses: number;
  killGraceMs: number;
  lineBuffered: boolean;
  shared: boolean;
  tagMessages: boolean;
  maxLineBytes: number;
}

/** `tcp`: every connection gets its own TCP or Unix socket connection (websockify). No `protocols`: binary and base64. */
export interface TcpRouteConfig extends Omit<RouteConfigBase, 'protocols'> {
  kind: 'tcp';
  /** "host:port", "[v6]:port" or "unix:/absolute/path". Exactly one of target and tokenFile. */
  target?: string;
  tokenFile?: string;
  allow?: string[];
  connectTimeoutMs: number;
}

/** `proxy`: HTTP and WebSocket requests under `path` (a prefix) go to `target`. No `protocols`: the backend's are used. */
export interface ProxyRouteConfig extends Omit<RouteConfigBase, 'protocols'> {
  kind: 'proxy';
  target: string;
}

/** `cgi`: plain HTTP requests under `path` (a prefix) run CGI/1.1 scripts from `directory`. No WebSocket keys. */
export interface CgiRouteConfig {
  kind: 'cgi';
  path: string;
  directory: string;
  timeoutMs: number;
  passEnv: string[];
  env?: Record<string, string>;
  maxHeaderBytes: number;
  maxBodyBytes: number;
}

/** Discriminated by `kind`; a new kind adds a member here and an entry in ROUTE_KINDS (and a builder). */
export type RouteConfig = EchoRouteConfig | BroadcastRouteConfig | ExecRouteConfig | TcpRouteConfig | ProxyRouteConfig | CgiRouteConfig;
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
  /** Peers whose X-Forwarded-For / -Proto are believed: addresses, CIDR ranges, "loopback". Empty: nobody. */
  trustProxy: string[];
  websocket: WebSocketPolicy;
  routes: RouteConfig[];
}

// ---- the schema tree ----

/** How a string is checked (and, for `path`, resolved against the config file's or the working directory). */
export type StringFormat = 'path' | 'url-path' | 'route-path' | 'host' | 'file-name' | 'header-value' | 'tcp-target' | 'http-url';
export type ListItemFormat = 'token' | 'origin' | 'env-name' | 'tcp-target' | 'proxy-address';

export type LeafType =
  | { readonly type: 'integer'; readonly min: number; readonly max?: number; readonly unit?: string }
  | { readonly type: 'boolean' }
  | { readonly type: 'enum'; readonly values: readonly string[] }
  | { readonly type: 'string'; readonly format: StringFormat }
  | { readonly type: 'list'; readonly of: ListItemFormat }
  /** A program and its arguments: an array of strings, or one string split on whitespace (no quoting). */
  | { readonly type: 'command' }
  /** Environment variables: an object of names to string values. */
  | { readonly type: 'env' };

export interface FlagSpec {
  /** Without the dashes: 'max-message-bytes'. */
  readonly name: string;
  /** What the value looks like in --help ('N', 'PATH'); absent for a boolean flag (no value). */
  readonly arg?: string;
  readonly repeatable?: boolean;
  /** A list key's flag takes comma-separated items (`--trust-proxy loopback,10.0.0.0/8`); repeats add to it. */
  readonly commaList?: boolean;
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
  /** Keys only this kind has (`exec` has `command`, ...). A key's `flag` sets it for every route this kind's flag adds. */
  readonly fields: Readonly<Record<string, LeafSchema>>;
  /** `--echo PATH` adds a route of this kind at PATH; with `flagValue`, `--exec PATH=VALUE`. */
  readonly flag?: FlagSpec;
  /** The key of `fields` that the text after "=" in the flag's value sets (`--exec PATH=COMMAND`: 'command'). */
  readonly flagValue?: string;
  /** Keys of `fields` a route of this kind must have. */
  readonly required?: readonly string[];
  /** Common and policy keys this kind does not have ('all' for a plain-HTTP kind: no WebSocket keys at all). */
  readonly without?: readonly string[] | 'all';
  /** Why `without` (for the message when a route sets one of those keys). */
  readonly withoutWhy?: string;
  /** `path` is a mount prefix (no :parameters or *): the kind serves PREFIX and everything under it. */
  readonly prefix?: boolean;
  /** What `path` and the kind serve, for the docs: 'WebSocket', 'HTTP', 'HTTP and WebSocket'. */
  readonly serves: string;
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

const passEnvLeaf = (who: string): LeafSchema => leaf({ type: 'list', of: 'env-name' },
  `names of the server's environment variables ${who} also get (PATH among them replaces the default /usr/local/bin:/usr/bin:/bin)`, { default: [] });
const envLeaf = (who: string): LeafSchema => leaf({ type: 'env' }, `variables set for ${who}, over everything else ({"NAME": "value"})`);

export const ROUTE_KINDS: Readonly<Record<RouteKind, RouteKindSchema>> = {
  echo: {
    doc: 'every message received is sent back unchanged, with its type',
    serves: 'WebSocket',
    fields: {},
    flag: { name: 'echo', arg: 'PATH', repeatable: true },
  },
  broadcast: {
    doc: 'every message received is sent to every connection on the same request path, sender included',
    serves: 'WebSocket',
    fields: {},
    flag: { name: 'broadcast', arg: 'PATH', repeatable: true },
  },
  exec: {
    doc: 'every connection gets its own program (websocketd): messages go to its stdin, its stdout comes back as messages (docs/bridges.md)',
    serves: 'WebSocket',
    fields: {
      command: leaf({ type: 'command' }, 'the program and its arguments: an array, or a string split on whitespace (no quoting, no shell); a relative program path resolves against the config file\'s directory, a bare name is looked up on PATH'),
      framing: leaf({ type: 'enum', values: EXEC_FRAMINGS }, 'how bytes become messages: line, binary, length-prefixed or json',
        { default: 'line', flag: { name: 'exec-framing', arg: EXEC_FRAMINGS.join('|'), note: 'for every --exec route' } }),
      passEnv: passEnvLeaf('programs'),
      env: envLeaf('the program'),
      cwd: leaf({ type: 'string', format: 'path' }, 'working directory of the program; none: the server\'s'),
      maxProcesses: leaf({ type: 'integer', min: 0, unit: 'processes' }, 'programs running at once on this route (503 beyond, before any starts); 0 = no limit', { default: 0 }),
      killGraceMs: leaf({ type: 'integer', min: 0, unit: 'ms' }, 'after stdin EOF, SIGTERM the program\'s process group after this long, SIGKILL after as long again', { default: DEFAULT_KILL_GRACE_MS }),
      lineBuffered: leaf({ type: 'boolean' }, 'make programs that buffer their output flush every line (stdbuf -oL, PYTHONUNBUFFERED=1)',
        { default: false, flag: { name: 'exec-line-buffered', note: 'for every --exec route' } }),
      shared: leaf({ type: 'boolean' }, 'one program for the whole route, started with the first connection; its output goes to every connection',
        { default: false, flag: { name: 'exec-shared', note: 'for every --exec route' } }),
      tagMessages: leaf({ type: 'boolean' }, 'shared mode, line or json framing: write each message to stdin after its connection id and a space', { default: false }),
      maxLineBytes: leaf({ type: 'integer', min: 1, unit: 'bytes' }, 'line and json framing: a longer output line closes the connection with 1009', { default: DEFAULT_MAX_LINE_BYTES }),
    },
    flag: { name: 'exec', arg: 'PATH=COMMAND', repeatable: true },
    flagValue: 'command',
    required: ['command'],
  },
  tcp: {
    doc: 'every connection gets its own TCP or Unix socket connection; bytes flow both ways unchanged (websockify; subprotocols binary and base64)',
    serves: 'WebSocket',
    fields: {
      target: leaf({ type: 'string', format: 'tcp-target' }, 'where every connection goes: "host:port", "[::1]:port" or "unix:/path" (a relative socket path resolves against the config file\'s directory); give this or tokenFile'),
      tokenFile: leaf({ type: 'string', format: 'path' }, 'websockify token file (or directory of them): each connection names its target with ?token=NAME; give this or target'),
      allow: leaf({ type: 'list', of: 'tcp-target' }, 'targets connections may reach ("host:port", "unix:/path"); others are refused (403); absent: any'),
      connectTimeoutMs: leaf({ type: 'integer', min: 1, unit: 'ms' }, 'connecting to the target may take this long, then the connection is closed with 1011', { default: 10_000 }),
    },
    flag: { name: 'tcp', arg: 'PATH=HOST:PORT', repeatable: true, note: 'or PATH=unix:/SOCKET' },
    flagValue: 'target',
    without: ['protocols'],
    withoutWhy: 'its subprotocols are binary and base64',
  },
  proxy: {
    doc: 'reverse proxy: HTTP requests and WebSocket connections for the path prefix and everything under it go to the backend, the prefix replaced by the URL\'s path',
    serves: 'HTTP and WebSocket',
    fields: {
      target: leaf({ type: 'string', format: 'http-url' }, 'the backend: http(s)://host:port/base; PREFIX/rest?query goes to base/rest?query'),
    },
    flag: { name: 'proxy', arg: 'PREFIX=URL', repeatable: true },
    flagValue: 'target',
    required: ['target'],
    without: ['protocols'],
    withoutWhy: 'the backend chooses among the subprotocols the client offers',
    prefix: true,
  },
  cgi: {
    doc: 'CGI/1.1: plain HTTP requests under the path prefix run scripts from a directory, one process per request',
    serves: 'HTTP',
    fields: {
      directory: leaf({ type: 'string', format: 'path' }, 'the cgi-bin: every executable regular file in it (or below it) can be run by a request'),
      timeoutMs: leaf({ type: 'integer', min: 1, unit: 'ms' }, 'how long a script may go without progress: 504 before its headers, a cut response after', { default: CGI_DEFAULTS.timeoutMs }),
      passEnv: passEnvLeaf('scripts'),
      env: envLeaf('every script'),
      maxHeaderBytes: leaf({ type: 'integer', min: 1, unit: 'bytes' }, 'header bytes a script may print before the blank line; more is a 502', { default: CGI_DEFAULTS.maxHeaderBytes }),
      maxBodyBytes: leaf({ type: 'integer', min: 0, unit: 'bytes' }, 'largest request body; more is refused with 413 before the script starts', { default: CGI_DEFAULTS.maxBodyBytes }),
    },
    flag: { name: 'cgi', arg: 'PREFIX=DIR', repeatable: true },
    flagValue: 'directory',
    required: ['directory'],
    without: 'all',
    withoutWhy: 'it serves plain HTTP, so no WebSocket key applies',
    prefix: true,
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
    trustProxy: leaf({ type: 'list', of: 'proxy-address' },
      'peers whose X-Forwarded-For and X-Forwarded-Proto are believed (the reverse proxy in front): IP addresses, CIDR ranges (10.0.0.0/8, fd00::/8) or "loopback"; the client they name is the one logged and passed to hooks and bridges (REMOTE_ADDR); empty: the peer is the client, the headers are ignored',
      { default: [], flag: { name: 'trust-proxy', arg: 'LIST', repeatable: true, commaList: true, note: 'comma-separated' } }),
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
  const spec = routes.kinds[kind];
  const shared = Object.entries({ ...routes.common, ...routes.policy }).filter(([key]) =>
    key === 'path' || key === 'kind' || (spec.without !== 'all' && !(spec.without ?? []).includes(key)));
  return { ...Object.fromEntries(shared), ...spec.fields };
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
