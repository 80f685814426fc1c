// CGI/1.1 meta-variables (RFC 3875 §4.1) for a program started on behalf of a request: the environment the
// process bridge and the CGI bridge hand their children. Nothing from our own environment reaches the child
// unless the operator lists it, and no request header can set a variable a program trusts (httpoxy).

/** The version SERVER_SOFTWARE reports; test/bridges/cgi-env.test.ts keeps it equal to package.json's. */
export const SWITCHYARD_VERSION = '0.1.0';

/** PATH when the operator passes none through: the system directories only, never the server's own PATH. */
export const DEFAULT_CHILD_PATH = '/usr/local/bin:/usr/bin:/bin';

/** What a gateway knows of the request a program runs for. */
export interface CgiRequestInfo {
  method: string;
  /** Path and query exactly as received (`/rooms/blue?x=1`). */
  url: string;
  /** The part of the path that selected the program (decoded), `''` or starting with `/`. */
  scriptName: string;
  /** The rest of the path after scriptName (decoded), `''` or starting with `/`. */
  pathInfo: string;
  /** Request headers as node parses them (lower-case names; arrays for repeated ones). */
  headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The client's address (with trustProxy, possibly the one a trusted proxy named in X-Forwarded-For). */
  remoteAddress: string;
  /**
   * The client's port; undefined when remoteAddress came from X-Forwarded-For, which carries no port: then
   * REMOTE_PORT is left out rather than pairing the client's address with the proxy's port.
   */
  remotePort: number | undefined;
  localAddress: string;
  localPort: number;
  /** The host the client asked for; buildCgiEnvironment derives it from Host when this is ''. */
  serverName: string;
  /** The client used https: this connection is TLS, or a trusted proxy said so in X-Forwarded-Proto (sets HTTPS=on). */
  secure: boolean;
  contentLength?: number;
  contentType?: string;
}

export interface CgiEnvironmentExtra {
  /** Names of variables copied from process.env when set there (PATH among them replaces the default). */
  passEnv?: readonly string[];
  /** Set last, over everything else: the operator's explicit configuration wins. */
  env?: Readonly<Record<string, string>>;
  /** SERVER_SOFTWARE; default `switchyard/<version>`. */
  serverSoftware?: string;
  /** Also pass Authorization and Proxy-Authorization as HTTP_* (RFC 3875 §4.1.18 says SHOULD NOT; default false). */
  passAuthorization?: boolean;
  /** Where passEnv reads from; default process.env (tests give their own). */
  parentEnv?: Readonly<Record<string, string | undefined>>;
}

/** A portable environment variable name (POSIX: letters, digits, underscore, not starting with a digit). */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Header names that map onto a variable without ambiguity: Apache drops the others (X_Forwarded_For spoofing). */
const CLEAN_HEADER_NAME = /^[A-Za-z0-9-]+$/;
/** Headers that become CGI variables of their own, or must never become HTTP_* ones. */
const HEADERS_NEVER_PASSED = new Set([
  // httpoxy (CVE-2016-5385): a `Proxy:` header would become HTTP_PROXY, which HTTP clients read as their proxy.
  'proxy',
  // RFC 3875 §4.1.18: available as CONTENT_LENGTH / CONTENT_TYPE instead.
  'content-length', 'content-type',
]);
const AUTHORIZATION_HEADERS = new Set(['authorization', 'proxy-authorization']);

/** Throws TypeError unless `name` is a usable environment variable name. */
export function checkEnvName(name: unknown, what: string): string {
  if (typeof name !== 'string' || !ENV_NAME.test(name)) {
    throw new TypeError(`${what} must be an environment variable name (letters, digits, _; got ${JSON.stringify(name)})`);
  }
  return name;
}

/** Throws TypeError unless `env` maps variable names to strings free of NUL (which no environment can hold). */
export function checkEnvRecord(env: unknown, what: string): Readonly<Record<string, string>> {
  if (env === null || typeof env !== 'object' || Array.isArray(env)) throw new TypeError(`${what} must be an object of strings`);
  for (const [name, value] of Object.entries(env)) {
    checkEnvName(name, `${what} key`);
    if (typeof value !== 'string' || value.includes('\0')) throw new TypeError(`${what}.${name} must be a string without NUL`);
  }
  return env as Readonly<Record<string, string>>;
}

/**
 * A value safe to put in an environment: NUL cannot be represented and CR/LF would split naive `env` parsing,
 * so each becomes a space (websocketd does the same for CR/LF).
 */
export function envValue(value: string): string {
  return /[\0\r\n]/.test(value) ? value.replace(/[\0\r\n]/g, ' ') : value;
}

/** A name fragment (route parameter, data key) as an environment variable suffix: upper-case, others -> `_`. */
export function envNameFragment(name: string): string {
  return name.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
}

/** The RFC 3875 §4.1 meta-variables for one request, plus what passEnv and env add. */
export function buildCgiEnvironment(info: CgiRequestInfo, extra: CgiEnvironmentExtra = {}): Record<string, string> {
  const environment: Record<string, string> = { PATH: DEFAULT_CHILD_PATH };
  const parentEnv = extra.parentEnv ?? process.env;
  for (const name of extra.passEnv ?? []) {
    const value = parentEnv[name];
    if (value !== undefined) environment[name] = envValue(value);
  }
  const queryAt = info.url.indexOf('?');
  const hashAt = info.url.indexOf('#');
  const query = queryAt === -1 ? '' : info.url.slice(queryAt + 1, hashAt > queryAt ? hashAt : undefined);
  const remoteAddress = plainAddress(info.remoteAddress);
  Object.assign(environment, {
    GATEWAY_INTERFACE: 'CGI/1.1',
    SERVER_SOFTWARE: extra.serverSoftware ?? `switchyard/${SWITCHYARD_VERSION}`,
    SERVER_NAME: serverNameFor(info),
    SERVER_PORT: String(info.localPort),
    SERVER_PROTOCOL: 'HTTP/1.1',
    REQUEST_METHOD: info.method,
    // Not RFC 3875, but what scripts written for Apache, nginx and websocketd read.
    REQUEST_URI: info.url,
    QUERY_STRING: query,
    SCRIPT_NAME: info.scriptName,
    PATH_INFO: info.pathInfo,
    REMOTE_ADDR: remoteAddress,
    // §4.1.9: the server MAY substitute REMOTE_ADDR when it does not look the name up (we never do).
    REMOTE_HOST: remoteAddress,
  });
  // Not RFC 3875 either; Apache and nginx set it, and scripts that read it must already cope without it.
  if (info.remotePort !== undefined) environment['REMOTE_PORT'] = String(info.remotePort);
  for (const key of ['SERVER_NAME', 'REQUEST_METHOD', 'REQUEST_URI', 'QUERY_STRING', 'SCRIPT_NAME', 'PATH_INFO'] as const) {
    environment[key] = envValue(environment[key]!);
  }
  if (info.secure) environment['HTTPS'] = 'on';
  if (info.contentLength !== undefined) environment['CONTENT_LENGTH'] = String(info.contentLength);
  if (info.contentType !== undefined) environment['CONTENT_TYPE'] = envValue(info.contentType);
  for (const [name, value] of Object.entries(info.headers)) {
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    if (!CLEAN_HEADER_NAME.test(name) || HEADERS_NEVER_PASSED.has(lower)) continue;
    if (AUTHORIZATION_HEADERS.has(lower) && extra.passAuthorization !== true) continue;
    const variable = `HTTP_${lower.toUpperCase().replace(/-/g, '_')}`;
    environment[variable] = envValue(Array.isArray(value) ? value.join(', ') : value);
  }
  for (const [name, value] of Object.entries(extra.env ?? {})) environment[name] = envValue(value);
  return environment;
}

/** SERVER_NAME (§4.1.14): the Host header's name when it is a plausible host, else our own address. */
function serverNameFor(info: CgiRequestInfo): string {
  if (info.serverName !== '') return info.serverName;
  const hostHeader = info.headers['host'];
  const host = Array.isArray(hostHeader) ? hostHeader[0] : hostHeader;
  if (host !== undefined) {
    const match = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::\d*)?$/.exec(host.trim());
    if (match !== null) return match[1]!;
  }
  const local = plainAddress(info.localAddress);
  return local.includes(':') ? `[${local}]` : local;
}

/** `::ffff:127.0.0.1` (an IPv4 peer on a dual-stack socket) as the IPv4 address scripts expect. */
function plainAddress(address: string): string {
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(address) ? address.slice(7) : address;
}
