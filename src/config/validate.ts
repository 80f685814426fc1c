// Checks values against the schema and turns them into a typed config layer. Pure (no I/O): every failure is
// a ConfigError naming the field path (`routes[1].maxMessageBytes`) or the flag (`--max-message-bytes`).
import * as path from 'node:path';
import { ConfigError } from '../errors.js';
import { closestName } from './suggest.js';
import {
  CONFIG_SCHEMA, routeFields, routesSchema,
  type AccessLogSetting, type LeafSchema, type LeafType, type ListItemFormat, type ObjectSchema, type RouteConfig,
  type RouteKind, type StaticConfig, type StringFormat, type TlsFilesConfig,
} from './schema.js';
import type { WebSocketPolicyOptions } from '../transport/policy.js';
import { describeTarget, parseTcpTarget } from '../bridges/tcp-bridge.js';
import { trustProxyEntryError } from '../http/client-address.js';

/** A route as one layer gives it: every key but `kind` and `path` may be left to the defaults (or, if required, is checked). */
export type RouteLayer = {
  [K in RouteKind]: { kind: K; path: string } & Partial<Omit<Extract<RouteConfig, { kind: K }>, 'kind' | 'path'>> & { protocols?: string[]; maxConnections?: number; allowedOrigins?: string[] }
}[RouteKind];

/** What one source (the file, or the flags) sets; merged over the defaults by merge.ts. */
export interface ConfigLayer {
  host?: string;
  port?: number;
  root?: string;
  static?: Partial<StaticConfig>;
  maxConnections?: number;
  handshakeTimeoutMs?: number;
  shutdownTimeoutMs?: number;
  tls?: TlsFilesConfig;
  accessLog?: AccessLogSetting;
  metricsPath?: string;
  trustProxy?: string[];
  websocket?: WebSocketPolicyOptions;
  routes?: RouteLayer[];
}

/** Joins a field path: ('routes[1]', 'path') -> 'routes[1].path'. */
export function fieldPath(parent: string, key: string): string {
  return parent === '' ? key : `${parent}.${key}`;
}

/** A value as it appears in a message: JSON, shortened. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const prototype = Object.getPrototypeOf(value) as unknown;
  return prototype === Object.prototype || prototype === null;
}

// RFC 7230 §3.2.6: token = 1*tchar (RFC 6455 §4.1 requires subprotocol names to be tokens).
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// RFC 9110 §5.5: field values are visible characters, spaces and tabs; no CR, LF or other controls.
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const CONTROL_OR_SPACE = /[\x00-\x20\x7f]/;

/** Where relative `path` values resolve from: the config file's directory, or the working directory for flags. */
export interface CheckContext {
  readonly baseDir: string;
}

function fail(field: string, message: string): never {
  throw new ConfigError(field, message);
}

function checkString(format: StringFormat, value: unknown, field: string, context: CheckContext): string {
  if (typeof value !== 'string') fail(field, `must be a string (got ${describeValue(value)})`);
  switch (format) {
    case 'path':
      if (value === '' || value.includes('\0')) fail(field, `must be a file system path (got ${describeValue(value)})`);
      return path.resolve(context.baseDir, value);
    case 'host':
      if (value === '' || CONTROL_OR_SPACE.test(value)) fail(field, `must be a host name or address (got ${describeValue(value)})`);
      return value;
    case 'url-path':
    case 'route-path':
      if (!value.startsWith('/')) fail(field, `must start with "/" (got ${describeValue(value)})`);
      if (CONTROL_OR_SPACE.test(value) || value.includes('?') || value.includes('#')) {
        fail(field, `must be a URL path without spaces, "?" or "#" (got ${describeValue(value)})`);
      }
      return value;
    case 'file-name':
      if (value === '' || value === '.' || value === '..' || /[/\\\0]/.test(value)) fail(field, `must be a plain file name (got ${describeValue(value)})`);
      return value;
    case 'header-value':
      if (!HEADER_VALUE.test(value)) fail(field, `must be a valid HTTP header value (got ${describeValue(value)})`);
      return value;
    case 'tcp-target':
      return checkTcpTarget(value, field, context);
    case 'http-url':
      return checkHttpUrl(value, field);
  }
}

/** "host:port", "[v6]:port" or "unix:/path" (a relative socket path resolved), in describeTarget() form. */
function checkTcpTarget(value: string, field: string, context: CheckContext): string {
  let target;
  try {
    target = parseTcpTarget(value, field);
  } catch {
    const port = /:(\d+)$/.exec(value)?.[1];
    if (!value.startsWith('unix:') && port !== undefined && (Number(port) < 1 || Number(port) > 65535)) {
      fail(field, `port must be from 1 to 65535 (got ${describeValue(value)})`);
    }
    fail(field, `must be HOST:PORT, [IPv6]:PORT or unix:/PATH (got ${describeValue(value)})`);
  }
  if ('path' in target) return `unix:${path.resolve(context.baseDir, target.path)}`;
  return describeTarget(target);
}

/** An http:// or https:// URL with no credentials, query or fragment; returned as given (without a trailing '/' on the path). */
function checkHttpUrl(value: string, field: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    fail(field, `must be an http:// or https:// URL (got ${describeValue(value)})`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') fail(field, `must be an http:// or https:// URL (got ${describeValue(value)})`);
  if (url.username !== '' || url.password !== '') fail(field, `must not carry a user name or password (got ${describeValue(value)})`);
  if (url.search !== '' || url.hash !== '' || value.includes('?') || value.includes('#')) fail(field, `must not have a query or fragment (got ${describeValue(value)})`);
  return value;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * A program and its arguments: an array of non-empty strings, or one string split on whitespace (no quoting;
 * use the array form for an argument with spaces). A program path with a "/" in it that is not absolute resolves
 * against the base directory; a bare name is left to be looked up on PATH.
 */
function checkCommand(value: unknown, field: string, context: CheckContext): string[] {
  let argv: unknown[];
  if (typeof value === 'string') argv = value.split(/\s+/).filter((word) => word !== '');
  else if (Array.isArray(value)) argv = value;
  else fail(field, `must be an array of strings (the program, then its arguments) or a string (got ${describeValue(value)})`);
  if (argv.length === 0) fail(field, `must name a program (got ${describeValue(value)})`);
  argv.forEach((arg, index) => {
    if (typeof arg !== 'string' || arg.includes('\0') || (index === 0 && arg === '')) {
      fail(`${field}${typeof value === 'string' || field.startsWith('-') ? '' : `[${index}]`}`, `must be a ${index === 0 ? 'non-empty ' : ''}string without NUL (got ${describeValue(arg)})`);
    }
  });
  const words = argv as string[];
  const program = words[0]!;
  return [program.includes('/') ? path.resolve(context.baseDir, program) : program, ...words.slice(1)];
}

function checkEnv(value: unknown, field: string): Record<string, string> {
  if (!isPlainObject(value)) fail(field, `must be an object of variable names to strings (got ${describeValue(value)})`);
  const out: Record<string, string> = {};
  for (const [name, text] of Object.entries(value)) {
    if (!ENV_NAME.test(name)) fail(`${field}.${name}`, 'must be an environment variable name (letters, digits and _, not starting with a digit)');
    if (typeof text !== 'string' || text.includes('\0')) fail(`${field}.${name}`, `must be a string without NUL (got ${describeValue(text)})`);
    out[name] = text;
  }
  return out;
}

/** Checks one item of a list value (a subprotocol token, an origin). */
export function checkListItem(format: ListItemFormat, value: unknown, field: string, context: CheckContext = { baseDir: '/' }): string {
  if (typeof value !== 'string') fail(field, `must be a string (got ${describeValue(value)})`);
  if (format === 'env-name') {
    if (!ENV_NAME.test(value)) fail(field, `must be an environment variable name (letters, digits and _, not starting with a digit; got ${describeValue(value)})`);
    return value;
  }
  if (format === 'tcp-target') return checkTcpTarget(value, field, context);
  if (format === 'proxy-address') {
    const error = trustProxyEntryError(value);
    if (error !== undefined) fail(field, error);
    return value.trim();
  }
  if (format === 'token') {
    if (!TOKEN.test(value)) fail(field, `must be a token: letters, digits and !#$%&'*+-.^_\`|~ (got ${describeValue(value)})`);
    return value;
  }
  // '*' is any origin; 'null' is what browsers send from file:// pages and sandboxed frames (RFC 6454 §7.3).
  if (value === '*' || value === 'null') return value;
  // Browsers send the serialized origin (RFC 6454 §6.2): lower-case scheme and host, no default port, no path.
  let origin: string | undefined;
  try {
    const url = new URL(value);
    if (url.protocol === 'http:' || url.protocol === 'https:') origin = url.origin;
  } catch {
    origin = undefined;
  }
  if (origin === undefined) fail(field, `must be an http(s) origin such as "https://example.com", or "*" (got ${describeValue(value)})`);
  if (origin !== value) fail(field, `must be written as browsers send it: ${describeValue(origin)} (got ${describeValue(value)})`);
  return value;
}

/** Checks (and for paths, resolves) one value; throws ConfigError naming `field`. */
export function checkLeaf(type: LeafType, value: unknown, field: string, context: CheckContext): unknown {
  switch (type.type) {
    case 'integer': {
      const max = type.max ?? Number.MAX_SAFE_INTEGER;
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < type.min || value > max) {
        fail(field, type.max === undefined ? `must be an integer >= ${type.min} (got ${describeValue(value)})`
          : `must be an integer from ${type.min} to ${type.max} (got ${describeValue(value)})`);
      }
      return value;
    }
    case 'boolean':
      if (typeof value !== 'boolean') fail(field, `must be true or false (got ${describeValue(value)})`);
      return value;
    case 'enum': {
      if (typeof value !== 'string' || !type.values.includes(value)) {
        const guess = typeof value === 'string' ? closestName(value, type.values) : undefined;
        fail(field, `must be one of ${type.values.join(', ')} (got ${describeValue(value)}${guess === undefined ? '' : `; did you mean "${guess}"?`})`);
      }
      return value;
    }
    case 'string':
      return checkString(type.format, value, field, context);
    case 'list':
      if (!Array.isArray(value)) fail(field, `must be an array of strings (got ${describeValue(value)})`);
      return value.map((item: unknown, index) => checkListItem(type.of, item, `${field}[${index}]`, context));
    case 'command':
      return checkCommand(value, field, context);
    case 'env':
      return checkEnv(value, field);
  }
}

function unknownKey(field: string, key: string, known: readonly string[]): never {
  const guess = closestName(key, known);
  fail(field, guess === undefined ? `unknown key (known keys: ${known.join(', ')})` : `unknown key (did you mean "${guess}"?)`);
}

function checkObject(schema: ObjectSchema, value: unknown, field: string, context: CheckContext): Record<string, unknown> {
  if (!isPlainObject(value)) fail(field === '' ? '(top level)' : field, `must be an object (got ${describeValue(value)})`);
  const known = Object.keys(schema.fields);
  const given: Record<string, unknown> = {};
  // In the file's order, so the first mistake in the file is the one reported.
  for (const [key, child] of Object.entries(value)) {
    // Own keys only: "constructor" or "__proto__" must not find Object.prototype's members.
    const node = Object.hasOwn(schema.fields, key) ? schema.fields[key] : undefined;
    const at = fieldPath(field, key);
    if (node === undefined) unknownKey(at, key, known);
    if (node.node === 'leaf') given[key] = checkLeaf(node.value, child, at, context);
    else if (node.node === 'object') given[key] = checkObject(node, child, at, context);
    else given[key] = checkRoutes(child, at, context);
  }
  if (schema.presence === 'optional') {
    for (const key of known) if (given[key] === undefined) fail(fieldPath(field, key), `required when ${field} is given`);
  }
  // Schema order, so printed configs read the same whatever order the file used.
  return Object.fromEntries(known.filter((key) => given[key] !== undefined).map((key) => [key, given[key]]));
}

/** Checks one route object (the file's `routes[i]`, or a route built from a flag). */
export function checkRoute(value: unknown, field: string, context: CheckContext): RouteLayer {
  if (!isPlainObject(value)) fail(field, `must be an object (got ${describeValue(value)})`);
  const kinds = Object.keys(routesSchema().kinds);
  const kind = value['kind'];
  if (kind === undefined) fail(`${field}.kind`, `required (one of ${kinds.join(', ')})`);
  if (typeof kind !== 'string' || !kinds.includes(kind)) {
    const guess = typeof kind === 'string' ? closestName(kind, kinds) : undefined;
    fail(`${field}.kind`, `unknown route kind ${describeValue(kind)}${guess === undefined ? '' : ` (did you mean "${guess}"?)`}; known kinds: ${kinds.join(', ')}`);
  }
  const fields = routeFields(kind as RouteKind);
  const known = Object.keys(fields);
  const given: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value)) {
    const leafSchema: LeafSchema | undefined = Object.hasOwn(fields, key) ? fields[key] : undefined;
    if (leafSchema === undefined) {
      const spec = routesSchema().kinds[kind as RouteKind];
      if (spec.without !== undefined && Object.hasOwn({ ...routesSchema().common, ...routesSchema().policy }, key)) {
        fail(`${field}.${key}`, `not a key of a ${kind} route (${spec.withoutWhy ?? 'it does not apply'})`);
      }
      unknownKey(`${field}.${key}`, key, known);
    }
    given[key] = checkLeaf(leafSchema.value, child, `${field}.${key}`, context);
  }
  if (given['path'] === undefined) fail(`${field}.path`, 'required');
  checkRouteKind(kind as RouteKind, given, field);
  return Object.fromEntries(known.filter((key) => given[key] !== undefined).map((key) => [key, given[key]])) as RouteLayer;
}

/**
 * The rules of one kind that span keys: required keys, a prefix path, tcp's target-or-tokenFile, and exec's
 * tagMessages. `field` is 'routes[2]' (or, for a route from a flag, the flag itself, which has given the path
 * and the flag's value).
 */
export function checkRouteKind(kind: RouteKind, route: Readonly<Record<string, unknown>>, field: string, flag?: string): void {
  const spec = routesSchema().kinds[kind];
  const at = (key: string): string => flag ?? `${field}.${key}`;
  for (const key of spec.required ?? []) {
    if (route[key] === undefined) fail(at(key), `required for a route of kind "${kind}"`);
  }
  const routePath = route['path'];
  if (spec.prefix === true && typeof routePath === 'string' && /(^|\/)[:*]/.test(routePath)) {
    fail(at('path'), `a ${kind} route's path is a prefix: no :parameters or * (it serves the path and everything under it; got ${describeValue(routePath)})`);
  }
  if (kind === 'tcp' && (route['target'] === undefined) === (route['tokenFile'] === undefined)) {
    fail(route['target'] === undefined ? at('target') : at('tokenFile'), 'give exactly one of target and tokenFile');
  }
  if (kind === 'exec' && route['tagMessages'] === true) {
    if (route['shared'] !== true) fail(at('tagMessages'), 'applies to shared mode only (set shared: true)');
    const framing = route['framing'] ?? 'line';
    if (framing !== 'line' && framing !== 'json') fail(at('tagMessages'), `needs line or json framing (got ${describeValue(framing)})`);
  }
}

function checkRoutes(value: unknown, field: string, context: CheckContext): RouteLayer[] {
  if (!Array.isArray(value)) fail(field, `must be an array of routes (got ${describeValue(value)})`);
  const routes = value.map((item: unknown, index) => checkRoute(item, `${field}[${index}]`, context));
  const seen = new Map<string, number>();
  routes.forEach((route, index) => {
    const first = seen.get(route.path);
    if (first !== undefined) fail(`${field}[${index}].path`, `duplicate route path ${describeValue(route.path)} (also ${field}[${first}].path)`);
    seen.set(route.path, index);
  });
  return routes;
}

/**
 * Checks a parsed config file against the schema. Relative paths (root, tls.certFile, tls.keyFile) resolve
 * against `baseDir`, the config file's directory.
 */
export function validateConfig(json: unknown, baseDir: string): ConfigLayer {
  return checkObject(CONFIG_SCHEMA, json, '', { baseDir }) as ConfigLayer;
}
