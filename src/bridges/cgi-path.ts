// Finds the CGI script a request names (RFC 3875 §3.3, §4.1.5, §4.1.13) and owns the rule that no request runs
// anything outside the cgi-bin directory: the URL is checked segment by segment before it touches the file
// system (as src/http/static-files.ts does), and every step of the walk is checked again with symlinks resolved.
import { constants as fsConstants, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { resolveInside } from '../http/static-files.js';

/** Where the mount ends and the part under it begins, in raw (still percent-encoded) path segments. */
export interface MountedPath {
  /** The mount point, decoded, without a trailing slash: `/cgi-bin` (`''` when mounted at the root). */
  readonly mountPath: string;
  /** The raw segments under the mount (`app.cgi/x/` gives `['app.cgi', 'x', '']`). */
  readonly rawSegments: readonly string[];
}

export type ScriptLookup =
  | {
    readonly kind: 'script';
    /** The script's real path (symlinks resolved), inside the directory: what is executed. */
    readonly realPath: string;
    /** SCRIPT_NAME: the mount plus the decoded segments that named the script (§4.1.13). */
    readonly scriptName: string;
    /** PATH_INFO: decoded, `''` or starting with `/` (§4.1.5); empty segments and a trailing slash kept. */
    readonly pathInfo: string;
  }
  /** 400: malformed or hostile (`..`, `.`, an encoded `/` or `\`, NUL, a bad escape); 403: a directory; 404: nothing runnable. */
  | { readonly kind: 'refused'; readonly status: 400 | 403 | 404; readonly why: string };

/**
 * Splits a request's raw path into the mount and what lies under it, given the router's decoded wildcard value
 * (`params['*']`). The router decodes the wildcard, so `%2F` in it reads like a separator; working from the raw
 * segments instead keeps the structure the client sent. The split is the one whose raw tail decodes to the
 * wildcard: each extra segment adds at least a `/`, so at most one tail matches. With no wildcard (a route
 * without `*`), the whole path is the mount.
 */
export function splitMount(rawPath: string, wildcard: string | undefined): MountedPath | undefined {
  const raw = rawPath.split('/').slice(1); // drop the empty segment before the leading slash
  let start = raw.length;
  if (wildcard !== undefined && wildcard !== '') {
    start = -1;
    for (let k = raw.length - 1; k >= 0; k--) {
      const tail = decodeSegment(raw.slice(k).join('/'));
      if (tail === wildcard) { start = k; break; }
      if (tail === undefined || tail.length > wildcard.length) break;
    }
    if (start === -1) return undefined;
  }
  const mountSegments: string[] = [];
  for (const segment of raw.slice(0, start)) {
    const decoded = decodeSegment(segment);
    if (decoded === undefined) return undefined;
    mountSegments.push(decoded);
  }
  let mountPath = mountSegments.length === 0 ? '' : '/' + mountSegments.join('/');
  // `/cgi-bin/` with an empty wildcard: the trailing slash belongs to the mount, not to a script.
  while (mountPath.endsWith('/')) mountPath = mountPath.slice(0, -1);
  return { mountPath, rawSegments: raw.slice(start) };
}

/** The raw segments under the mount for a local path such as `/cgi-bin/app.cgi/x` (a local redirect), if under it. */
export function underMount(mountPath: string, rawPath: string): readonly string[] | undefined {
  const raw = rawPath.split('/').slice(1);
  const mount = mountPath === '' ? [] : mountPath.split('/').slice(1);
  if (raw.length < mount.length) return undefined;
  for (const [index, segment] of mount.entries()) {
    if (decodeSegment(raw[index] ?? '') !== segment) return undefined;
  }
  return raw.slice(mount.length);
}

/**
 * Resolves scripts under one directory. The script is the shortest run of segments that names an executable
 * regular file (RFC 3875 §3.3: "the script-path"); the segments after it are PATH_INFO. Directories on the way
 * are descended; one with nothing after it is refused with 403, as classic servers do for a cgi-bin without an
 * index. Dotfiles (anywhere in the script's path, or as the target of a symlink) are 404, like static files.
 */
export class CgiScriptResolver {
  readonly #directory: string;
  #realDirectory: Promise<string> | undefined;

  constructor(directory: string) {
    this.#directory = path.resolve(directory);
  }

  get directory(): string {
    return this.#directory;
  }

  async resolve(mountPath: string, rawSegments: readonly string[]): Promise<ScriptLookup> {
    // Every segment is checked before any file system access, PATH_INFO included: a script that maps
    // PATH_INFO to files (many do) never sees `..`, and what reaches it is exactly what the URL said.
    const segments: string[] = [];
    for (const raw of rawSegments) {
      if (raw.includes('\\')) return refused(400, 'backslash in path');
      const segment = decodeSegment(raw);
      if (segment === undefined) return refused(400, 'malformed percent-encoding');
      if (segment === '.' || segment === '..') return refused(400, 'dot segment in path');
      if (/[/\\\0]/.test(segment)) return refused(400, 'encoded separator or NUL in path');
      segments.push(segment);
    }

    const realDirectory = await this.#resolveDirectory();
    if (realDirectory === undefined) return refused(404, `CGI directory ${this.#directory} cannot be read`);

    let current = realDirectory;
    const scriptSegments: string[] = [];
    for (const [index, segment] of segments.entries()) {
      if (segment === '') continue; // doubled slashes on the way to the script
      if (segment.startsWith('.')) return refused(404, 'dotfile');
      const entry = await resolveInside(realDirectory, path.join(current, segment));
      if (entry === undefined) return refused(404, 'no such script');
      scriptSegments.push(segment);
      if (entry.stats.isDirectory()) {
        current = entry.realPath;
        continue;
      }
      if (!entry.stats.isFile() || !(await isExecutable(entry.realPath))) return refused(404, 'not an executable regular file');
      const rest = segments.slice(index + 1);
      return {
        kind: 'script',
        realPath: entry.realPath,
        scriptName: `${mountPath}/${scriptSegments.join('/')}`,
        pathInfo: rest.length === 0 ? '' : '/' + rest.join('/'),
      };
    }
    return refused(403, 'a directory names no script');
  }

  /** The directory with symlinks resolved, computed once; a failure is not cached so a directory created later works. */
  async #resolveDirectory(): Promise<string | undefined> {
    this.#realDirectory ??= fsp.realpath(this.#directory);
    try {
      const real = await this.#realDirectory;
      return real;
    } catch {
      this.#realDirectory = undefined;
      return undefined;
    }
  }
}

function refused(status: 400 | 403 | 404, why: string): ScriptLookup {
  return { kind: 'refused', status, why };
}

function decodeSegment(raw: string): string | undefined {
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

async function isExecutable(realPath: string): Promise<boolean> {
  try {
    await fsp.access(realPath, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

