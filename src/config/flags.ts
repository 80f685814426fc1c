// The `serve` and `demo` command lines, read against the schema's flags into a config layer. Pure: takes the
// arguments and the working directory, returns values or throws ConfigError naming the flag.
import { ConfigError } from '../errors.js';
import { splitArgv, type ArgvFlag } from './argv.js';
import { CONFIG_SCHEMA, routesSchema, type FlagSpec, type LeafSchema, type LeafType, type ObjectSchema, type RouteKind } from './schema.js';
import { checkLeaf, checkListItem, checkRouteKind, describeValue, type ConfigLayer, type RouteLayer } from './validate.js';

/** What a flag does once read. */
type FlagTarget =
  | { readonly to: 'config'; readonly path: readonly string[]; readonly leaf: LeafSchema }
  | { readonly to: 'route-default'; readonly key: 'protocols' | 'allowedOrigins'; readonly leaf: LeafSchema }
  | { readonly to: 'route'; readonly kind: RouteKind }
  /** A key of a kind (`--exec-framing`) for every route that kind's flag adds. */
  | { readonly to: 'kind-default'; readonly kind: RouteKind; readonly key: string; readonly leaf: LeafSchema }
  | { readonly to: 'meta'; readonly key: 'config' | 'printConfig' | 'help' };

export interface FlagDefinition {
  readonly spec: FlagSpec;
  readonly doc: string;
  readonly target: FlagTarget;
  /** For --help: what the flag stands for in the config file ('websocket.maxMessageBytes'), if anything. */
  readonly configKey?: string;
}

const META_FLAGS: readonly FlagDefinition[] = [
  { spec: { name: 'config', arg: 'FILE' }, doc: 'read settings from this JSON file (docs/configuration.md); flags override it', target: { to: 'meta', key: 'config' } },
  { spec: { name: 'print-config' }, doc: 'print the effective configuration (defaults < file < flags) as JSON and exit', target: { to: 'meta', key: 'printConfig' } },
  { spec: { name: 'help' }, doc: 'show this help', target: { to: 'meta', key: 'help' } },
];

/** Every `serve` flag, in --help order, generated from the schema. */
export function serveFlagDefinitions(): FlagDefinition[] {
  const definitions: FlagDefinition[] = [META_FLAGS[0]!, META_FLAGS[1]!];
  const walk = (schema: ObjectSchema, at: readonly string[]): void => {
    for (const [key, node] of Object.entries(schema.fields)) {
      const here = [...at, key];
      if (node.node === 'leaf' && node.flag !== undefined) {
        definitions.push({ spec: node.flag, doc: node.doc, target: { to: 'config', path: here, leaf: node }, configKey: here.join('.') });
      } else if (node.node === 'object') {
        walk(node, here);
      }
    }
  };
  walk(CONFIG_SCHEMA, []);
  const routes = routesSchema();
  for (const [kind, spec] of Object.entries(routes.kinds)) {
    if (spec.flag !== undefined) definitions.push({ spec: spec.flag, doc: `${spec.serves} route: ${spec.doc}`, target: { to: 'route', kind: kind as RouteKind } });
    for (const [key, leafSchema] of Object.entries(spec.fields)) {
      if (leafSchema.flag !== undefined) {
        definitions.push({ spec: leafSchema.flag, doc: leafSchema.doc, target: { to: 'kind-default', kind: kind as RouteKind, key, leaf: leafSchema }, configKey: `routes[kind=${kind}].${key}` });
      }
    }
  }
  for (const key of ['protocols', 'allowedOrigins'] as const) {
    const leafSchema = routes.common[key]!;
    if (leafSchema.flag !== undefined) {
      definitions.push({ spec: leafSchema.flag, doc: leafSchema.doc, target: { to: 'route-default', key, leaf: leafSchema }, configKey: `routes[].${key}` });
    }
  }
  definitions.push(META_FLAGS[2]!);
  return definitions;
}

// ---- reading argv ----

type RawFlag = ArgvFlag<FlagDefinition>;

const SHORT_FLAGS: Readonly<Record<string, string>> = { h: 'help' };

/** Splits arguments into flags (checked against `definitions`) and positionals. */
function tokenize(args: readonly string[], definitions: readonly FlagDefinition[], stopAtPositional = false): { flags: RawFlag[]; positionals: string[] } {
  const byName = new Map(definitions.map((definition) => [definition.spec.name, definition]));
  return splitArgv(args, {
    long: (name) => byName.get(name),
    short: (letters) => byName.get(SHORT_FLAGS[letters] ?? ''),
    names: [...byName.keys()],
    valueName: (definition) => definition.spec.arg,
    takesBooleanText: (definition) => definition.target.to === 'config' || definition.target.to === 'kind-default',
  }, { stopAtPositional });
}

/** A flag's text as the leaf's type: integers and booleans are parsed; anything unparsable is left for checkLeaf to refuse. */
function flagValue(type: LeafType, value: string | true): unknown {
  if (value === true) return true;
  if (type.type === 'integer' && /^-?\d+$/.test(value)) return Number(value);
  if (type.type === 'boolean') return value === 'true' ? true : value === 'false' ? false : value;
  return value;
}

// ---- route flags ----

const SHELL_OPERATORS = new Set(['|', '&', ';', '<', '>', '(', ')', '$', '`']);

/**
 * Splits COMMAND as a shell splits simple words: on unquoted spaces and tabs; '...' keeps everything literally,
 * "..." keeps spaces and takes \" \\ \$ \` escapes, a backslash outside quotes escapes the next character.
 * No variables, globs, pipes or redirections: an unquoted | & ; < > ( ) $ or ` is refused (the program is not
 * run by a shell; write `sh -c '...'` for that). Throws ConfigError naming `flag`.
 */
export function splitCommandLine(text: string, flag: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    if (char === ' ' || char === '\t' || char === '\n') {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (char === "'") {
      const end = text.indexOf("'", i + 1);
      if (end === -1) throw new ConfigError(flag, `unmatched ' in the command (got ${describeValue(text)})`);
      word = (word ?? '') + text.slice(i + 1, end);
      i = end;
    } else if (char === '"') {
      word ??= '';
      let j = i + 1;
      for (; j < text.length && text[j] !== '"'; j++) {
        if (text[j] === '\\' && j + 1 < text.length && '"\\$`'.includes(text[j + 1]!)) j++;
        word += text[j];
      }
      if (j >= text.length) throw new ConfigError(flag, `unmatched " in the command (got ${describeValue(text)})`);
      i = j;
    } else if (char === '\\') {
      if (i + 1 >= text.length) throw new ConfigError(flag, `a command cannot end with a backslash (got ${describeValue(text)})`);
      word = (word ?? '') + text[i + 1]!;
      i++;
    } else if (SHELL_OPERATORS.has(char)) {
      throw new ConfigError(flag, `the command is not run by a shell, so an unquoted ${char} has no meaning here: quote it, or run a shell (sh -c '...') (got ${describeValue(text)})`);
    } else {
      word = (word ?? '') + char;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** A route from `--echo PATH` or, for a kind with a flagValue, `--exec PATH=COMMAND` and the like. */
function routeFromFlag(kind: RouteKind, spec: FlagSpec, name: string, value: string | true, context: { baseDir: string }): RouteLayer {
  const kindSchema = routesSchema().kinds[kind];
  if (kindSchema.flagValue === undefined || value === true) {
    const routePath = checkLeaf({ type: 'string', format: 'route-path' }, value, name, context) as string;
    return { kind, path: routePath } as RouteLayer;
  }
  const equals = value.indexOf('=');
  if (equals === -1) throw new ConfigError(name, `expected ${spec.arg ?? 'PATH=VALUE'} (got ${describeValue(value)})`);
  const routePath = checkLeaf({ type: 'string', format: 'route-path' }, value.slice(0, equals), name, context) as string;
  const rest = value.slice(equals + 1);
  const key = kindSchema.flagValue;
  const leafSchema = kindSchema.fields[key]!;
  const what = spec.arg?.split('=')[1] ?? key;
  if (rest === '') throw new ConfigError(name, `${what} missing after "=" (expected ${spec.arg ?? 'PATH=VALUE'}; got ${describeValue(value)})`);
  const raw = leafSchema.value.type === 'command' ? splitCommandLine(rest, name) : rest;
  if (Array.isArray(raw) && raw.length === 0) throw new ConfigError(name, `${what} missing after "=" (expected ${spec.arg ?? 'PATH=VALUE'}; got ${describeValue(value)})`);
  const route = { kind, path: routePath, [key]: checkLeaf(leafSchema.value, raw, name, context) } as RouteLayer;
  checkRouteKind(kind, route, name, name);
  return route;
}

// ---- serve ----

export interface FlagRoute {
  readonly route: RouteLayer;
  /** The flag that made it: '--echo'. */
  readonly flag: string;
}

export interface FlagLayer {
  /** Top-level, tls and websocket settings given by flags (routes are in `routes`). */
  readonly layer: ConfigLayer;
  /** Routes from --echo / --broadcast, in command-line order. */
  readonly routes: readonly FlagRoute[];
  /** --protocol / --allowed-origin: for every route (from the file or the flags) that lists none of its own. */
  readonly routeDefaults: { protocols?: string[]; allowedOrigins?: string[] };
  /** The flag or argument that set each config path ('root' -> 'ROOT', 'tls.certFile' -> '--tls-cert'). */
  readonly sources: Readonly<Record<string, string>>;
}

export interface ServeInvocation {
  readonly help: boolean;
  readonly printConfig: boolean;
  /** Absolute path of --config, if given. */
  readonly configFile?: string;
  readonly flags: FlagLayer;
}

function getPath(target: Record<string, unknown>, keys: readonly string[]): unknown {
  let node: unknown = target;
  for (const key of keys) node = (node as Record<string, unknown> | undefined)?.[key];
  return node;
}

function setPath(target: Record<string, unknown>, keys: readonly string[], value: unknown): void {
  let node = target;
  for (const key of keys.slice(0, -1)) node = (node[key] ??= {}) as Record<string, unknown>;
  node[keys[keys.length - 1]!] = value;
}

/**
 * Reads `serve`'s arguments (after the word "serve"). Relative paths (ROOT, --config, --tls-cert, --tls-key)
 * resolve against `cwd`. Throws ConfigError naming the flag.
 */
export function parseServeArgs(args: readonly string[], cwd: string): ServeInvocation {
  const { flags, positionals } = tokenize(args, serveFlagDefinitions());
  if (flags.some(({ flag: definition }) => definition.target.to === 'meta' && definition.target.key === 'help')) {
    return { help: true, printConfig: false, flags: { layer: {}, routes: [], routeDefaults: {}, sources: {} } };
  }
  const context = { baseDir: cwd };
  const layer: Record<string, unknown> = {};
  const sources: Record<string, string> = {};
  const routes: FlagRoute[] = [];
  const routeDefaults: { protocols?: string[]; allowedOrigins?: string[] } = {};
  const kindDefaults: Partial<Record<RouteKind, Record<string, unknown>>> = {};
  let printConfig = false;
  let configFile: string | undefined;

  for (const { flag: definition, written: name, value } of flags) {
    const target = definition.target;
    switch (target.to) {
      case 'meta':
        if (target.key === 'printConfig') printConfig = true;
        else configFile = checkLeaf({ type: 'string', format: 'path' }, value, name, context) as string;
        break;
      case 'config':
        applyConfigFlag(layer, sources, definition, target, name, value, context);
        break;
      case 'route-default': {
        const type = target.leaf.value;
        if (type.type !== 'list' || value === true) throw new TypeError(`--${definition.spec.name} is not a list flag`);
        (routeDefaults[target.key] ??= []).push(checkListItem(type.of, value, name));
        break;
      }
      case 'route': {
        const route = routeFromFlag(target.kind, definition.spec, name, value, context);
        const earlier = routes.find((other) => other.route.path === route.path);
        if (earlier !== undefined) throw new ConfigError(name, `route path ${describeValue(route.path)} is given more than once (also ${earlier.flag})`);
        routes.push({ route, flag: name });
        break;
      }
      case 'kind-default':
        (kindDefaults[target.kind] ??= {})[target.key] = checkLeaf(target.leaf.value, flagValue(target.leaf.value, value), name, context);
        break;
    }
  }
  // --exec-framing and the like apply to every route their kind's flag added, wherever they stand.
  for (const [kind, defaults] of Object.entries(kindDefaults)) {
    if (routes.some(({ route }) => route.kind === kind)) continue;
    const kindFlag = routesSchema().kinds[kind as RouteKind].flag?.name ?? kind;
    const first = flags.find(({ flag: definition }) => definition.target.to === 'kind-default' && definition.target.kind === kind)!;
    throw new ConfigError(first.written, `applies to the routes --${kindFlag} adds, and there is none (a config file's ${kind} routes set ${Object.keys(defaults).join(', ')} themselves)`);
  }
  for (const { route, flag } of routes) {
    const defaults = kindDefaults[route.kind];
    if (defaults === undefined) continue;
    Object.assign(route, defaults);
    checkRouteKind(route.kind, route, flag, flag);
  }
  // TLS needs both files; a lone one would silently serve plain http.
  const tls = layer['tls'] as { certFile?: string; keyFile?: string } | undefined;
  if (tls !== undefined && tls.certFile === undefined) throw new ConfigError('--tls-cert', 'required with --tls-key (give both or neither)');
  if (tls !== undefined && tls.keyFile === undefined) throw new ConfigError('--tls-key', 'required with --tls-cert (give both or neither)');

  if (positionals.length > 1) throw new ConfigError('ROOT', `serve takes one ROOT directory (got ${positionals.length}: ${positionals.join(' ')})`);
  if (positionals[0] !== undefined) {
    layer['root'] = checkLeaf({ type: 'string', format: 'path' }, positionals[0], 'ROOT', context);
    sources['root'] = 'ROOT';
  }
  return {
    help: false, printConfig, ...(configFile !== undefined && { configFile }),
    flags: { layer: layer as ConfigLayer, routes, routeDefaults, sources },
  };
}

/** Sets what a flag that maps onto a config field says, in the flag layer; `sources` records which flag set it. */
function applyConfigFlag(
  layer: Record<string, unknown>, sources: Record<string, string>, definition: FlagDefinition,
  target: Extract<FlagDefinition['target'], { to: 'config' }>, name: string, value: string | true, context: { baseDir: string },
): void {
  const type = target.leaf.value;
  if (type.type === 'list' && definition.spec.commaList === true && value !== true) {
    // `--trust-proxy a,b` and `--trust-proxy a --trust-proxy b` build the same list; each item is checked
    // on its own, so the message names the one at fault.
    const earlier = sources[target.path.join('.')] === undefined ? [] : getPath(layer, target.path) as string[];
    const items = value.split(',').map((item) => checkListItem(type.of, item, name, context));
    setPath(layer, target.path, [...earlier, ...items]);
  } else {
    // Repeated (non-repeatable) flags: the last one wins, as with most command lines.
    setPath(layer, target.path, checkLeaf(type, flagValue(type, value), name, context));
  }
  sources[target.path.join('.')] = name;
}

// ---- exec ----

export interface ExecInvocation {
  readonly help: boolean;
  /** Port, host and the one exec route, as a flag layer for mergeConfig(). */
  readonly flags: FlagLayer;
}

/** `switchyard exec`'s own flags: --port, --host, --trust-proxy, --framing, --line-buffered, --shared, --path, --help. */
export function execFlagDefinitions(): FlagDefinition[] {
  const serve = serveFlagDefinitions();
  const byName = (name: string): FlagDefinition => serve.find((definition) => definition.spec.name === name)!;
  const renamed = (name: string, as: string): FlagDefinition => {
    const definition = byName(name);
    const { note: _note, ...spec } = definition.spec;
    return { ...definition, spec: { ...spec, name: as } };
  };
  return [
    byName('port'), byName('host'), byName('trust-proxy'), renamed('exec-framing', 'framing'), renamed('exec-line-buffered', 'line-buffered'), renamed('exec-shared', 'shared'),
    { spec: { name: 'path', arg: 'PATTERN' }, doc: 'serve the program at this route pattern only (default: every path, /*)', target: { to: 'meta', key: 'config' } },
    byName('help'),
  ];
}

/**
 * Reads `exec`'s arguments: `[--port N] [--host H] [--trust-proxy LIST] [--framing F] [--line-buffered] [--shared] [--path P] [--] PROGRAM ARGS...`.
 * Flags end at PROGRAM (or `--`): what follows is the program's own command line, given to it unchanged.
 */
export function parseExecArgs(args: readonly string[], cwd: string): ExecInvocation {
  const { flags, positionals } = tokenize(args, execFlagDefinitions(), true);
  const empty: FlagLayer = { layer: {}, routes: [], routeDefaults: {}, sources: {} };
  if (flags.some(({ flag: definition }) => definition.spec.name === 'help')) return { help: true, flags: empty };
  const context = { baseDir: cwd };
  const layer: Record<string, unknown> = {};
  const sources: Record<string, string> = {};
  let routePath = '/*';
  const route: Record<string, unknown> = { kind: 'exec' };
  for (const { flag: definition, written: name, value } of flags) {
    const target = definition.target;
    if (target.to === 'config') {
      applyConfigFlag(layer, sources, definition, target, name, value, context);
    } else if (target.to === 'kind-default') {
      route[target.key] = checkLeaf(target.leaf.value, flagValue(target.leaf.value, value), name, context);
    } else if (definition.spec.name === 'path') {
      routePath = checkLeaf({ type: 'string', format: 'route-path' }, value, name, context) as string;
    }
  }
  if (positionals.length === 0) throw new ConfigError('exec', 'needs a program to run: switchyard exec [options] -- PROGRAM [ARGS...]');
  route['path'] = routePath;
  route['command'] = checkLeaf({ type: 'command' }, positionals, 'PROGRAM', context);
  checkRouteKind('exec', route, 'exec', 'exec');
  return { help: false, flags: { layer: layer as ConfigLayer, routes: [{ route: route as RouteLayer, flag: 'PROGRAM' }], routeDefaults: {}, sources } };
}

// ---- demo ----

export interface DemoInvocation {
  readonly help: boolean;
  readonly port: number;
  readonly host: string;
}

/** Reads `demo`'s arguments: --port, --host, --help; no positionals. */
export function parseDemoArgs(args: readonly string[]): DemoInvocation {
  const definitions = serveFlagDefinitions().filter((definition) => ['port', 'host', 'help'].includes(definition.spec.name));
  const { flags, positionals } = tokenize(args, definitions);
  let port = 8080;
  let host = '127.0.0.1';
  let help = false;
  for (const { flag: definition, written: name, value } of flags) {
    const target = definition.target;
    if (target.to === 'meta') help = true;
    else if (target.to === 'config' && name === '--port') port = checkLeaf(target.leaf.value, flagValue(target.leaf.value, value), name, { baseDir: '/' }) as number;
    else if (target.to === 'config') host = checkLeaf(target.leaf.value, value, name, { baseDir: '/' }) as string;
  }
  if (!help && positionals.length > 0) throw new ConfigError('demo', `takes no arguments (got ${positionals.join(' ')})`);
  return { help, port, host };
}

