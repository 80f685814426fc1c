// The --help text, generated from the schema's flags so that every flag is listed with its unit and default.
import { serveFlagDefinitions, type FlagDefinition } from './flags.js';
import { CONNECT_FLAGS, type ConnectFlag } from './connect-flags.js';
import { routesSchema, schemaLeaves, type LeafSchema } from './schema.js';

function humanBytes(bytes: number): string | undefined {
  for (const [unit, size] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size} ${unit}`;
  }
  return undefined;
}

/** "(bytes, default 16777216 = 16 MiB)", "(ms, default 30000)", "(default text)", or ''. */
function unitAndDefault(leaf: LeafSchema | undefined): string {
  if (leaf === undefined) return '';
  const parts: string[] = [];
  if (leaf.value.type === 'integer' && leaf.value.unit !== undefined) parts.push(leaf.value.unit);
  const value = leaf.default;
  if (value !== undefined && !(Array.isArray(value) && value.length === 0)) {
    const human = leaf.value.type === 'integer' && leaf.value.unit === 'bytes' && typeof value === 'number' ? humanBytes(value) : undefined;
    parts.push(`default ${String(value)}${human === undefined ? '' : ` = ${human}`}`);
  }
  return parts.length === 0 ? '' : ` (${parts.join(', ')})`;
}

function flagLine(definition: FlagDefinition): string {
  const { spec, doc, target } = definition;
  const name = spec.name === 'help' ? '-h, --help' : `--${spec.name}${spec.arg === undefined ? '' : ` ${spec.arg}`}`;
  const leaf = target.to === 'config' || target.to === 'route-default' || target.to === 'kind-default' ? target.leaf : undefined;
  const notes = [spec.note, spec.repeatable ? 'repeatable' : undefined].filter((note) => note !== undefined);
  const text = `${doc}${unitAndDefault(leaf)}${notes.length === 0 ? '' : `; ${notes.join('; ')}`}`;
  return `  ${name.padEnd(32)} ${text}`;
}

function section(title: string, definitions: readonly FlagDefinition[]): string {
  return `${title}\n${definitions.map(flagLine).join('\n')}\n`;
}

/** The whole usage text for `switchyard --help` and `switchyard serve --help`. */
export function renderUsage(): string {
  const all = serveFlagDefinitions();
  const groupOf = (definition: FlagDefinition): 'server' | 'tls' | 'websocket' | 'routes' => {
    if (definition.target.to === 'route' || definition.target.to === 'route-default' || definition.target.to === 'kind-default') return 'routes';
    if (definition.configKey?.startsWith('websocket.')) return 'websocket';
    if (definition.configKey?.startsWith('tls.')) return 'tls';
    return 'server';
  };
  const pick = (group: ReturnType<typeof groupOf>): FlagDefinition[] => all.filter((definition) => groupOf(definition) === group);
  return [
    'Usage:',
    '  switchyard serve [ROOT] [options]       serve files from ROOT and WebSocket routes on one port',
    '  switchyard exec [options] [--] PROGRAM [ARGS...]',
    '                                          serve PROGRAM over WebSockets on every path, as websocketd does:',
    '                                          each connection runs it, messages to its stdin, its stdout lines',
    '                                          back (options: --port N, --host H, --trust-proxy LIST, --framing F,',
    '                                          --line-buffered, --shared, --path PATTERN; see the --exec-* flags',
    '                                          below)',
    '  switchyard demo [--port N] [--host H]   the built-in demo (chat, echo, live readings)',
    '  switchyard connect URL [options]        a WebSocket client: a prompt on a terminal, lines in and out in a',
    '                                          pipe (its options: switchyard connect --help)',
    '',
    'Options for serve. Precedence: defaults < --config file < flags. Every key of the config file is in',
    'docs/configuration.md; relative paths in the file resolve against its directory.',
    '',
    section('Server:', pick('server')),
    section('TLS (give both or neither; then https:// and wss://):', pick('tls')),
    section('WebSocket policy (server-wide; a route in the config file may set its own):', pick('websocket')),
    section('Routes (PATH=VALUE flags split at the first "="; --exec runs COMMAND without a shell: words split on spaces, \'...\' and "..." quote, no | ; > $):', pick('routes')),
  ].join('\n');
}

// ---- connect ----

function connectFlagLine(flag: ConnectFlag): string {
  const name = `${flag.short === undefined ? '' : `-${flag.short}, `}--${flag.name}${flag.arg === undefined ? '' : ` ${flag.arg}`}`;
  const extras = [
    flag.unit, flag.default === undefined ? undefined : `default ${flag.default}${flag.unit === 'bytes' && typeof flag.default === 'number' ? ` = ${humanBytes(flag.default) ?? ''}` : ''}`,
  ].filter((part) => part !== undefined);
  const text = `${flag.doc}${extras.length === 0 ? '' : ` (${extras.join(', ')})`}${flag.repeatable === true ? '; repeatable' : ''}`;
  return `  ${name.padEnd(32)} ${text}`;
}

/** The usage text for `switchyard connect --help`. */
export function renderConnectUsage(): string {
  return [
    'Usage: switchyard connect URL [options]',
    '',
    'A WebSocket client for ws:// and wss:// URLs (http:// and https:// are taken as ws:// and wss://), and for',
    'a Unix socket: ws+unix:///path/to.sock:/request-path (wss+unix: for TLS over the socket).',
    '',
    'On a terminal (stdin and stdout both terminals): a "> " prompt; each line you type is sent as a text',
    'message, and messages are printed above the prompt as they arrive ("< " text, "< [binary N bytes] ..."),',
    'without disturbing the line being typed. Commands at the prompt:',
    '  /ping [TEXT]                     send a ping; the pong is shown with its round-trip time',
    '  /binary HEX                      send bytes as a binary message: /binary 68 69 (or 6869)',
    '  /close [CODE] [REASON]           start the closing handshake (default 1000)',
    '  /help                            list the commands',
    '  //TEXT                           send a message that starts with "/"',
    '  Ctrl-D closes with 1000; Ctrl-C too (twice exits at once).',
    '',
    'In a pipe: every stdin line is sent as a text message (a line that is not UTF-8 as binary), and every',
    'message received is written to stdout followed by a newline: text as it is, binary as hex or base64.',
    'Nothing else goes to stdout. End of stdin sends close 1000; messages arriving until the server\'s close',
    'are still printed.',
    '',
    'Exit status: 0 after a normal close (1000, either side); 1 after any other close, with the code and',
    'reason on stderr, or when the connection fails (refused, not 101, a redirect not followed, TLS); 2 for a',
    'usage error, including a --ca, --cert or --key file that cannot be read or used.',
    '',
    'Options:',
    ...CONNECT_FLAGS.map(connectFlagLine),
    '',
  ].join('\n');
}

// ---- the reference tables in docs/configuration.md (a test keeps the doc equal to this) ----

function typeText(leaf: LeafSchema): string {
  const type = leaf.value;
  switch (type.type) {
    case 'integer': return type.max === undefined ? `integer >= ${type.min}` : `integer ${type.min}-${type.max}`;
    case 'boolean': return 'boolean';
    case 'enum': return type.values.map((value) => `\`${value}\``).join(' \\| ');
    case 'string': return {
      path: 'path', 'url-path': 'URL path', 'route-path': 'route pattern', host: 'host', 'file-name': 'file name', 'header-value': 'string',
      'tcp-target': 'TCP target', 'http-url': 'http(s) URL',
    }[type.format];
    case 'list': return { token: 'list of tokens', origin: 'list of origins', 'env-name': 'list of variable names', 'tcp-target': 'list of TCP targets',
      'proxy-address': 'list of addresses and CIDR ranges' }[type.of];
    case 'command': return 'command';
    case 'env': return 'object of strings';
  }
}

function defaultText(leaf: LeafSchema): string {
  const value = leaf.default;
  if (value === undefined) return '';
  if (Array.isArray(value)) return value.length === 0 ? '`[]`' : `\`${JSON.stringify(value)}\``;
  const human = leaf.value.type === 'integer' && leaf.value.unit === 'bytes' && typeof value === 'number' ? humanBytes(value) : undefined;
  return `\`${JSON.stringify(value)}\`${human === undefined ? '' : ` (${human})`}`;
}

/** Markdown tables of every config key: key, flag, type, unit, default, meaning. */
export function renderConfigReference(): string {
  const flags = new Map<string, string>();
  for (const definition of serveFlagDefinitions()) {
    if (definition.configKey !== undefined) flags.set(definition.configKey, `\`--${definition.spec.name}\``);
  }
  flags.set('root', '`ROOT`');
  for (const [kind, spec] of Object.entries(routesSchema().kinds)) {
    if (spec.flag !== undefined && spec.flagValue !== undefined) flags.set(`routes[kind=${kind}].${spec.flagValue}`, `\`--${spec.flag.name} ${spec.flag.arg ?? ''}\``);
  }
  const header = '| key | flag | type | unit | default | meaning |\n| --- | --- | --- | --- | --- | --- |\n';
  const row = (key: string, leaf: LeafSchema): string => {
    const unit = leaf.value.type === 'integer' ? leaf.value.unit ?? '' : '';
    return `| \`${key}\` | ${flags.get(key) ?? ''} | ${typeText(leaf)} | ${unit} | ${defaultText(leaf)} | ${leaf.doc.replace(/\|/g, '\\|')} |\n`;
  };
  const leaves = schemaLeaves();
  const server = leaves.filter(({ path }) => !path.startsWith('routes'));
  const routes = leaves.filter(({ path }) => path.startsWith('routes[].'));
  return [
    '### Server and WebSocket policy\n\n', header, ...server.map(({ path, leaf }) => row(path, leaf)),
    '\n### Routes (`routes[]`)\n\n',
    'Every route has these keys; the WebSocket policy keys (all `websocket.*` keys) may also be set on a route, ',
    'where they override `websocket` for that route only.\n\n',
    header, ...routes.filter(({ path }) => !Object.hasOwn(routesSchema().policy, path.slice('routes[].'.length))).map(({ path, leaf }) => row(path, leaf)),
    '\n### Route kinds (`routes[].kind`)\n\n',
    '| kind | flag | serves | what it does | keys of its own |\n| --- | --- | --- | --- | --- |\n',
    ...Object.entries(routesSchema().kinds).map(([kind, spec]) => {
      const own = Object.keys(spec.fields).map((key) => `\`${key}\``).join(', ');
      return `| \`${kind}\` | ${spec.flag === undefined ? '' : `\`--${spec.flag.name} ${spec.flag.arg ?? ''}\``} | ${spec.serves} | ${spec.doc} | ${own === '' ? 'none' : own} |\n`;
    }),
    ...Object.entries(routesSchema().kinds).filter(([, spec]) => Object.keys(spec.fields).length > 0).map(([kind, spec]) => {
      const notes = [
        spec.required === undefined ? undefined : `required: ${spec.required.map((key) => `\`${key}\``).join(', ')}`,
        kind === 'tcp' ? 'required: exactly one of `target` and `tokenFile`' : undefined,
        spec.prefix === true ? '`path` is a prefix (no `:name` or `*`): the route serves it and everything under it' : undefined,
        spec.without === 'all' ? 'no WebSocket keys (`protocols`, `allowedOrigins`, `maxConnections`, policy keys): it serves plain HTTP'
          : spec.without === undefined ? undefined : `no ${spec.without.map((key) => `\`${key}\``).join(', ')}`,
      ].filter((note) => note !== undefined);
      return [
        `\n#### \`${kind}\` routes\n\n`,
        notes.length === 0 ? '' : `${notes.join('; ')}.\n\n`,
        header,
        ...Object.entries(spec.fields).map(([key, leaf]) => row(`routes[kind=${kind}].${key}`, leaf).replace(`\`routes[kind=${kind}].${key}\``, `\`${key}\``)),
      ].join('');
    }),
  ].join('');
}
