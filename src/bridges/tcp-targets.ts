// Where the TCP bridge may connect: target specs ("host:port", "[v6]:port", "unix:/path"), the allow-list, and
// websockify's token files (`name: host:port`, `name: unix_socket:/path`), re-read whenever they change.
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** A TCP host and port, or a Unix domain socket path. */
export type TcpTarget = { host: string; port: number } | { path: string };

/** "host:port", "[::1]:port" or "unix:/path": the form logs, allow-lists and parseTcpTarget use. */
export function describeTarget(target: TcpTarget): string {
  if ('path' in target) return `unix:${target.path}`;
  const host = target.host.toLowerCase();
  return host.includes(':') ? `[${host}]:${target.port}` : `${host}:${target.port}`;
}

/** Checks a target object (from options or a parsed spec); throws TypeError/RangeError naming `name`. */
export function checkTarget(target: unknown, name: string): TcpTarget {
  if (typeof target !== 'object' || target === null) throw new TypeError(`${name} must be { host, port } or { path }`);
  const record = target as Record<string, unknown>;
  if ('path' in record) {
    if (typeof record['path'] !== 'string' || record['path'] === '') throw new TypeError(`${name}.path must be a non-empty string`);
    return { path: record['path'] };
  }
  const host = record['host'];
  const port = record['port'];
  if (typeof host !== 'string' || host === '' || /[\s/]/.test(host)) {
    throw new TypeError(`${name}.host must be a host name or address (got ${JSON.stringify(host)})`);
  }
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new RangeError(`${name}.port must be an integer from 1 to 65535 (got ${String(port)})`);
  }
  return { host: host.replace(/^\[(.*)\]$/, '$1'), port };
}

/**
 * Parses "host:port", "[::1]:port" or "unix:/path" (what `--tcp PATH=HOST:PORT` and allow-lists hold).
 * Throws RangeError naming `name` for anything else.
 */
export function parseTcpTarget(spec: string, name = 'target'): TcpTarget {
  if (spec.startsWith('unix:')) {
    const path = spec.slice('unix:'.length);
    if (path === '') throw new RangeError(`${name}: "unix:" needs a socket path (got ${JSON.stringify(spec)})`);
    return { path };
  }
  const colon = spec.lastIndexOf(':');
  const portText = spec.slice(colon + 1);
  if (colon <= 0 || !/^\d{1,5}$/.test(portText)) {
    throw new RangeError(`${name}: expected HOST:PORT or unix:/PATH (got ${JSON.stringify(spec)})`);
  }
  try {
    return checkTarget({ host: spec.slice(0, colon), port: Number(portText) }, name);
  } catch (error) {
    throw new RangeError(`${name}: expected HOST:PORT or unix:/PATH (got ${JSON.stringify(spec)})`, { cause: error });
  }
}

/** Targets a bridge may reach, compared in describeTarget() form (host names compare case-insensitively). */
export class AllowList {
  readonly #allowed: ReadonlySet<string>;

  constructor(entries: readonly string[]) {
    if (!Array.isArray(entries)) throw new TypeError('allow must be an array of "host:port" or "unix:/path" strings');
    this.#allowed = new Set(entries.map((entry, index) => {
      if (typeof entry !== 'string') throw new TypeError(`allow[${index}] must be a string`);
      return describeTarget(parseTcpTarget(entry, `allow[${index}]`));
    }));
  }

  allows(target: TcpTarget): boolean {
    return this.#allowed.has(describeTarget(target));
  }
}

export interface ParsedTokenFile {
  readonly targets: Map<string, TcpTarget>;
  /** One line per line that could not be read, naming the file and line. */
  readonly problems: string[];
}

/**
 * Parses websockify's token file format (its TokenFile plugin): `token: host:port` or `token: unix_socket:/path`
 * per line, split at the first colon followed by white space; blank lines and lines starting with '#' are
 * skipped; a later line for the same token wins.
 */
export function parseTokenFile(text: string, fileName: string, into: Map<string, TcpTarget> = new Map()): ParsedTokenFile {
  const problems: string[] = [];
  const lines = text.split(/\r?\n/);
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const separator = /:\s+/.exec(line);
    const problem = (what: string): void => { problems.push(`${fileName} line ${index + 1}: ${what}`); };
    if (separator === null || separator.index === 0) {
      problem('expected "token: host:port" or "token: unix_socket:/path"');
      continue;
    }
    const token = line.slice(0, separator.index);
    const spec = line.slice(separator.index + separator[0].length).trim();
    if (spec.startsWith('unix_socket:')) {
      const path = spec.slice('unix_socket:'.length);
      if (path === '') problem('unix_socket: needs a path');
      else into.set(token, { path });
      continue;
    }
    try {
      into.set(token, parseTcpTarget(spec, 'target'));
    } catch {
      problem(`expected host:port or unix_socket:/path after "${token}:"`);
    }
  }
  return { targets: into, problems };
}

/**
 * A token file (or a directory of them, read in name order, dot-files skipped) that is parsed again whenever a
 * file's size, mtime, ctime or inode changed, or files came or went: edits take effect on the next connection
 * without a restart. A file that cannot be read makes lookups fail (the caller refuses the upgrade).
 */
export class TokenFile {
  readonly source: string;
  readonly #log: (line: string) => void;
  #signature = '';
  #targets = new Map<string, TcpTarget>();
  #loading: Promise<void> | undefined;

  constructor(source: string, log: (line: string) => void) {
    if (typeof source !== 'string' || source === '') throw new TypeError('tokenFile must be a non-empty path');
    this.source = source;
    this.#log = log;
  }

  /** The target for `token`, after checking the file(s) for changes. Rejects when they cannot be read. */
  async lookup(token: string): Promise<TcpTarget | undefined> {
    // Concurrent upgrades share one check.
    this.#loading ??= this.#refresh().finally(() => { this.#loading = undefined; });
    await this.#loading;
    return this.#targets.get(token);
  }

  /** The target for `token` as last read, without touching the file system. */
  cached(token: string): TcpTarget | undefined {
    return this.#targets.get(token);
  }

  async #refresh(): Promise<void> {
    const info = await stat(this.source);
    let files: string[];
    if (info.isDirectory()) {
      const names = (await readdir(this.source)).filter((name) => !name.startsWith('.')).sort();
      files = names.map((name) => join(this.source, name));
    } else {
      files = [this.source];
    }
    const stats = await Promise.all(files.map(async (file) => ({ file, info: await stat(file) })));
    const regular = stats.filter((entry) => entry.info.isFile());
    const signature = regular.map(({ file, info: s }) => `${file}\0${s.ino}\0${s.size}\0${s.mtimeMs}\0${s.ctimeMs}`).join('\n');
    if (signature === this.#signature) return;
    const targets = new Map<string, TcpTarget>();
    const problems: string[] = [];
    for (const { file } of regular) problems.push(...parseTokenFile(await readFile(file, 'utf8'), file, targets).problems);
    this.#targets = targets;
    this.#signature = signature;
    for (const problem of problems) this.#log(`tcp-bridge: ${problem}`);
    this.#log(`tcp-bridge: read ${targets.size} token${targets.size === 1 ? '' : 's'} from ${this.source}`);
  }
}
