// Serves the files under one root directory for GET and HEAD, and owns the rule that no request ever reads
// outside that root: the URL is checked segment by segment before it touches the file system, and the real path
// (symlinks resolved) is checked again after.
import { Buffer } from 'node:buffer';
import { constants as fsConstants, createReadStream, promises as fsp, type Stats } from 'node:fs';
import * as path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { contentTypeFor } from './mime.js';

export interface StaticFilesOptions {
  /** The directory served at `/`; relative paths resolve against the working directory. */
  root: string;
  /** The file served for a directory URL (one that ends in `/`). Default `index.html`. */
  indexFile?: string;
}

/** Why a URL path was refused before any file system access: 400 for malformed or hostile, 404 for hidden. */
type PathRefusal = { readonly status: 400 | 404 };

interface RequestPath {
  /** Decoded path segments, none empty, none containing a separator, NUL or a leading dot. */
  readonly segments: readonly string[];
  readonly hasTrailingSlash: boolean;
  /** Everything from the `?` on, exactly as received (empty when there is none). */
  readonly search: string;
}

// Codes that mean "nothing servable is there" rather than a fault of ours; EACCES included so a file the
// process may not read looks the same as a missing one instead of revealing that it exists.
const notFoundCodes: ReadonlySet<string> = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'ENAMETOOLONG', 'EACCES', 'EPERM']);

// O_NONBLOCK makes open() return at once on a FIFO (which would otherwise park a libuv thread until a writer
// appears); for a regular file it changes nothing. Windows has no such flag.
const openFlags = fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0);

const allowedMethods = 'GET, HEAD';

export class StaticFiles {
  readonly #root: string;
  readonly #indexFile: string;
  #realRoot: Promise<string> | undefined;

  constructor(options: StaticFilesOptions) {
    if (typeof options.root !== 'string' || options.root === '') {
      throw new TypeError('StaticFiles: root must be a non-empty directory path');
    }
    const indexFile = options.indexFile ?? 'index.html';
    if (!isPlainFileName(indexFile)) {
      throw new TypeError(`StaticFiles: indexFile must be a plain file name, got ${JSON.stringify(indexFile)}`);
    }
    this.#root = path.resolve(options.root);
    this.#indexFile = indexFile;
  }

  /** Resolves when `root` is an existing directory; otherwise rejects with a one-line message naming it. */
  static async checkRoot(root: string): Promise<void> {
    const absolute = path.resolve(root);
    let stats: Stats;
    try {
      stats = await fsp.stat(absolute);
    } catch (error) {
      const code = errorCode(error);
      const why = code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? String(error)})`;
      throw new Error(`static root ${absolute} ${why}`, { cause: error });
    }
    if (!stats.isDirectory()) throw new Error(`static root ${absolute} is not a directory`);
  }

  /** Answers one request completely; never throws or rejects (a failure mid-body destroys the response). */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      await this.#respond(req, res);
    } catch {
      // Something we did not foresee (a file system fault, a header Node refused): answer 500 if nothing has
      // been sent yet, otherwise the response is beyond repair and the connection must not be reused.
      try {
        if (res.headersSent) res.destroy();
        else sendStatus(res, 500, req.method === 'HEAD');
      } catch {
        res.destroy();
      }
    }
  }

  async #respond(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const isHead = req.method === 'HEAD';
    if (req.method !== 'GET' && !isHead) {
      sendStatus(res, 405, false, { Allow: allowedMethods });
      return;
    }

    const requestPath = parseRequestPath(req.url ?? '');
    if ('status' in requestPath) {
      sendStatus(res, requestPath.status, isHead);
      return;
    }

    const realRoot = await this.#resolveRoot();
    if (realRoot === undefined) {
      sendStatus(res, 404, isHead);
      return;
    }

    // Safe to join: every segment is a plain name, so the result cannot climb above the root.
    const requestedPath = path.join(realRoot, ...requestPath.segments);
    const target = await resolveInside(realRoot, requestedPath);
    if (target === undefined) {
      sendStatus(res, 404, isHead);
      return;
    }

    if (target.stats.isDirectory()) {
      if (!requestPath.hasTrailingSlash) {
        // Redirect so relative links in the index page resolve against the directory. The Location is rebuilt
        // from the decoded segments, never copied from the request, so `//evil.example` cannot become a
        // protocol-relative redirect to another host.
        const location = '/' + requestPath.segments.map(encodeURIComponent).join('/') + '/' + requestPath.search;
        sendStatus(res, 301, isHead, { Location: location });
        return;
      }
      const indexPath = path.join(requestedPath, this.#indexFile);
      const index = await resolveInside(realRoot, indexPath);
      if (index === undefined || !index.stats.isFile()) {
        sendStatus(res, 404, isHead);
        return;
      }
      await sendFile(res, index.realPath, contentTypeFor(indexPath), isHead);
      return;
    }

    // A trailing slash names a directory; sockets, FIFOs and devices are never served.
    if (requestPath.hasTrailingSlash || !target.stats.isFile()) {
      sendStatus(res, 404, isHead);
      return;
    }
    // The type follows the name in the URL (as nginx does), not the name a symlink points at.
    await sendFile(res, target.realPath, contentTypeFor(requestedPath), isHead);
  }

  /** The root with symlinks resolved, computed once; a failure is not cached so a root created later works. */
  async #resolveRoot(): Promise<string | undefined> {
    this.#realRoot ??= fsp.realpath(this.#root);
    try {
      return await this.#realRoot;
    } catch {
      this.#realRoot = undefined;
      return undefined;
    }
  }
}

/**
 * Splits a request-target into decoded segments, refusing anything that could name a path outside the root
 * or a hidden file. Checks happen on the decoded segment, so `%2e%2e`, `%2f`, `%5c` and `%00` are caught too.
 */
function parseRequestPath(requestTarget: string): RequestPath | PathRefusal {
  // RFC 9112 §3.2.2: a server MUST accept the absolute-form; only its path matters here.
  const target = requestTarget.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '');
  const queryStart = target.indexOf('?');
  const rawPath = queryStart === -1 ? target : target.slice(0, queryStart);
  const search = queryStart === -1 ? '' : target.slice(queryStart);
  if (!rawPath.startsWith('/') || rawPath.includes('\\')) return { status: 400 };

  const segments: string[] = [];
  let hidden = false;
  for (const rawSegment of rawPath.split('/')) {
    if (rawSegment === '') continue; // leading, trailing and doubled slashes
    let segment: string;
    try {
      segment = decodeURIComponent(rawSegment);
    } catch {
      return { status: 400 }; // malformed percent-encoding, e.g. `%zz` or a lone `%`
    }
    if (segment === '.' || segment === '..' || /[/\\\0]/.test(segment)) return { status: 400 };
    // Keep checking later segments: a hostile one after a dotfile still deserves its 400.
    if (segment.startsWith('.')) hidden = true;
    segments.push(segment);
  }
  if (hidden) return { status: 404 };
  return { segments, hasTrailingSlash: rawPath.endsWith('/'), search };
}

/**
 * Resolves symlinks in `candidate` and returns the real path and its stats only when it lies inside
 * `realRoot` and no part of it below the root is a dotfile (a symlink may point at one under another name).
 */
async function resolveInside(
  realRoot: string,
  candidate: string,
): Promise<{ realPath: string; stats: Stats } | undefined> {
  let realPath: string;
  let stats: Stats;
  try {
    realPath = await fsp.realpath(candidate);
    stats = await fsp.stat(realPath);
  } catch (error) {
    if (notFoundCodes.has(errorCode(error) ?? '')) return undefined;
    throw error;
  }
  if (realPath !== realRoot) {
    // The separator suffix stops /srv/site-private matching a root of /srv/site.
    const rootPrefix = realRoot.endsWith(path.sep) ? realRoot : realRoot + path.sep;
    if (!realPath.startsWith(rootPrefix)) return undefined;
    if (realPath.slice(rootPrefix.length).split(path.sep).some((part) => part.startsWith('.'))) return undefined;
  }
  return { realPath, stats };
}

/** Sends one regular file: headers from the opened file's own size, then the body streamed in chunks. */
async function sendFile(res: ServerResponse, realPath: string, contentType: string, isHead: boolean): Promise<void> {
  let file: fsp.FileHandle;
  try {
    file = await fsp.open(realPath, openFlags);
  } catch (error) {
    if (notFoundCodes.has(errorCode(error) ?? '')) return sendStatus(res, 404, isHead);
    throw error;
  }
  let byteLength: number;
  try {
    // fstat on the open handle, so the length we announce belongs to the file we are about to read even
    // if the path was replaced since resolveInside looked at it.
    const stats = await file.stat();
    if (!stats.isFile()) {
      await file.close();
      return sendStatus(res, 404, isHead);
    }
    byteLength = stats.size;
  } catch (error) {
    await file.close().catch(() => undefined);
    throw error;
  }

  res.writeHead(200, {
    'Content-Type': contentType,
    'Content-Length': byteLength,
    'X-Content-Type-Options': 'nosniff',
  });
  if (isHead || byteLength === 0) {
    await file.close();
    res.end();
    return;
  }

  // `end` is inclusive; capping it means a file that grows while we send never overruns Content-Length.
  const body = createReadStream(realPath, { fd: file, start: 0, end: byteLength - 1 });
  try {
    await pipeline(body, expectByteLength(byteLength), res);
  } catch {
    // A read error, a file that shrank, or a client that went away: pipeline has already destroyed the
    // response (and closed the file); there is nobody left to tell.
    res.destroy();
  }
}

/**
 * Passes bytes through and fails at the end if fewer than `byteLength` went by. Without it a file truncated
 * mid-send would end the response short of its Content-Length, and a keep-alive client would wait forever for
 * the rest; failing makes pipeline destroy the response so the client sees the connection drop instead.
 */
function expectByteLength(byteLength: number): Transform {
  let seenBytes = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
      seenBytes += chunk.length;
      callback(null, chunk);
    },
    flush(callback: TransformCallback): void {
      callback(seenBytes === byteLength ? null : new Error(`file ended after ${seenBytes} of ${byteLength} bytes`));
    },
  });
}

const statusTexts: Readonly<Record<number, string>> = {
  301: 'Moved Permanently',
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  500: 'Internal Server Error',
};

/** Answers with a status and a one-line plain-text body (headers only for HEAD). */
function sendStatus(res: ServerResponse, status: number, isHead: boolean, headers: OutgoingHttpHeaders = {}): void {
  const body = `${status} ${statusTexts[status] ?? ''}\n`;
  res.writeHead(status, {
    ...headers,
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(isHead ? undefined : body);
}

function isPlainFileName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !/[/\\\0]/.test(name);
}

function errorCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string') {
    return error.code;
  }
  return undefined;
}
