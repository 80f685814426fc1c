// Serves the files under one root directory for GET and HEAD, and owns the rule that no request ever reads
// outside that root: the URL is checked segment by segment before it touches the file system, and the real path
// (symlinks resolved) is checked again after. Also: validators and conditional requests (RFC 9110 §8.8, §13),
// single byte ranges (§14), precompressed `.br`/`.gz` siblings, Cache-Control and optional directory listings.
import { Buffer } from 'node:buffer';
import { constants as fsConstants, createReadStream, promises as fsp, type BigIntStats, type Stats } from 'node:fs';
import * as path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { listElements } from '../protocol/header-tokens.js';
import { contentTypeFor } from './mime.js';

export interface StaticFilesOptions {
  /** The directory served at `/`; relative paths resolve against the working directory. */
  root: string;
  /** The file served for a directory URL (one that ends in `/`). Default `index.html`. */
  indexFile?: string | undefined;
  /** Cache-Control sent with every file response (200, 206, 304). Default `no-cache`; `''` sends none. */
  cacheControl?: string | undefined;
  /** Answer a directory URL that has no index file with an HTML listing. Default false (404). */
  directoryListing?: boolean | undefined;
  /** Serve `<file>.br` / `<file>.gz` when the request's Accept-Encoding allows it. Default true. */
  precompressed?: boolean | undefined;
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

/** Content codings we look for as siblings, in the order we prefer them when the client weighs them equally. */
const encodings = ['br', 'gzip'] as const;
type Encoding = (typeof encodings)[number];
const siblingSuffixes: Readonly<Record<Encoding, string>> = { br: '.br', gzip: '.gz' };

/** One file about to be sent: the URL-derived name (for its type and siblings) and where it really is. */
interface FileTarget {
  /** root + URL segments (+ index file): decides the Content-Type and names the siblings. */
  readonly namePath: string;
  readonly realPath: string;
}

/** The bytes chosen to answer with: the file itself or one of its precompressed siblings, opened. */
interface OpenedRepresentation {
  readonly realPath: string;
  readonly file: fsp.FileHandle;
  readonly stats: BigIntStats;
  readonly encoding: Encoding | undefined;
}

/** A satisfiable single range, both ends inclusive, already clamped to the representation. */
interface ByteRange {
  readonly start: number;
  readonly end: number;
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
  readonly #cacheControl: string;
  readonly #directoryListing: boolean;
  readonly #precompressed: boolean;
  #realRoot: Promise<string> | undefined;

  constructor(options: StaticFilesOptions) {
    if (typeof options.root !== 'string' || options.root === '') {
      throw new TypeError('StaticFiles: root must be a non-empty directory path');
    }
    const indexFile = options.indexFile ?? 'index.html';
    if (!isPlainFileName(indexFile)) {
      throw new TypeError(`StaticFiles: indexFile must be a plain file name, got ${JSON.stringify(indexFile)}`);
    }
    const cacheControl = options.cacheControl ?? 'no-cache';
    // RFC 9110 §5.5: a field value holds no CR, LF or NUL; refusing here beats a 500 on every request.
    if (typeof cacheControl !== 'string' || !/^[\t\x20-\x7e\x80-\xff]*$/.test(cacheControl)) {
      throw new TypeError(`StaticFiles: cacheControl must be a header value, got ${JSON.stringify(cacheControl)}`);
    }
    this.#root = path.resolve(options.root);
    this.#indexFile = indexFile;
    this.#cacheControl = cacheControl.trim();
    this.#directoryListing = checkBoolean('directoryListing', options.directoryListing, false);
    this.#precompressed = checkBoolean('precompressed', options.precompressed, true);
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
      if (index !== undefined && index.stats.isFile()) {
        await this.#sendFile(req, res, realRoot, { namePath: indexPath, realPath: index.realPath });
      } else if (this.#directoryListing) {
        await sendListing(res, isHead, realRoot, target.realPath, requestPath.segments);
      } else {
        sendStatus(res, 404, isHead);
      }
      return;
    }

    // A trailing slash names a directory; sockets, FIFOs and devices are never served.
    if (requestPath.hasTrailingSlash || !target.stats.isFile()) {
      sendStatus(res, 404, isHead);
      return;
    }
    // The type follows the name in the URL (as nginx does), not the name a symlink points at.
    await this.#sendFile(req, res, realRoot, { namePath: requestedPath, realPath: target.realPath });
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

  /**
   * Sends one regular file, or a precompressed sibling of it, after the conditional and range headers have had
   * their say. Validators come from the opened file's own fstat, so they describe the bytes we send.
   */
  async #sendFile(req: IncomingMessage, res: ServerResponse, realRoot: string, target: FileTarget): Promise<void> {
    const isHead = req.method === 'HEAD';
    const siblings = this.#precompressed ? await findSiblings(realRoot, target.namePath) : new Map<Encoding, string>();
    const opened = await openRepresentation(target.realPath, siblings, req.headers['accept-encoding']);
    if (opened === undefined) return sendStatus(res, 404, isHead);
    const { file, stats, encoding } = opened;

    const byteLength = Number(stats.size);
    const mtimeSeconds = Math.floor(stats.mtime.getTime() / 1000);
    // Strong, as nginx's and Apache's are: size and nanosecond mtime change whenever a file is rewritten in place
    // (§8.8.3). The coding is part of the tag because each encoding is a different representation.
    const etag = `"${byteLength.toString(16)}-${stats.mtimeNs.toString(16)}${encoding === undefined ? '' : `-${encoding}`}"`;
    const validatorHeaders: OutgoingHttpHeaders = {
      ETag: etag,
      'Last-Modified': new Date(mtimeSeconds * 1000).toUTCString(),
    };
    if (this.#cacheControl !== '') validatorHeaders['Cache-Control'] = this.#cacheControl;
    // Every response for a file that has a sibling varies with Accept-Encoding, including the identity one.
    if (siblings.size > 0) validatorHeaders['Vary'] = 'Accept-Encoding';

    const precondition = evaluatePreconditions(req.headers, etag, mtimeSeconds);
    if (precondition !== 200) {
      await file.close();
      // RFC 9110 §15.4.5: a 304 carries the validators, Cache-Control and Vary a 200 would have had, no body.
      if (precondition === 304) {
        res.writeHead(304, validatorHeaders);
        res.end();
      } else {
        sendStatus(res, precondition, isHead, validatorHeaders);
      }
      return;
    }

    // RFC 9110 §14.2: GET is the only method range handling is defined for, so HEAD ignores Range; and §13.1.5:
    // a failed If-Range means "send the whole representation".
    const rangeHeader = req.method === 'GET' ? req.headers.range : undefined;
    let range = rangeHeader === undefined ? undefined : parseRange(rangeHeader, byteLength);
    // @types/node types If-Range as possibly repeated; repeated, it is not one validator and cannot hold.
    const ifRange = req.headers['if-range'];
    if (range !== undefined && ifRange !== undefined && !ifRangeHolds(String(ifRange), etag, mtimeSeconds)) range = undefined;

    const headers: OutgoingHttpHeaders = {
      'Content-Type': contentTypeFor(target.namePath),
      'X-Content-Type-Options': 'nosniff',
      'Accept-Ranges': 'bytes',
      ...validatorHeaders,
    };
    if (encoding !== undefined) headers['Content-Encoding'] = encoding;

    if (range === 'unsatisfiable') {
      await file.close();
      // RFC 9110 §15.5.17: a 416 SHOULD name the current length in `Content-Range: bytes */length`.
      sendStatus(res, 416, isHead, { ...validatorHeaders, 'Accept-Ranges': 'bytes', 'Content-Range': `bytes */${byteLength}` });
      return;
    }
    const start = range?.start ?? 0;
    const sendLength = range === undefined ? byteLength : range.end - range.start + 1;
    if (range !== undefined) headers['Content-Range'] = `bytes ${range.start}-${range.end}/${byteLength}`;
    headers['Content-Length'] = sendLength;
    res.writeHead(range === undefined ? 200 : 206, headers);
    if (isHead || sendLength === 0) {
      await file.close();
      res.end();
      return;
    }

    // `end` is inclusive; capping it means a file that grows while we send never overruns Content-Length, and a
    // 206 reads only its range from disk.
    const body = createReadStream(opened.realPath, { fd: file, start, end: start + sendLength - 1 });
    try {
      await pipeline(body, expectByteLength(sendLength), res);
    } catch {
      // A read error, a file that shrank, or a client that went away: pipeline has already destroyed the
      // response (and closed the file); there is nobody left to tell.
      res.destroy();
    }
  }
}

function checkBoolean(name: string, value: boolean | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new TypeError(`StaticFiles: ${name} must be a boolean, got ${JSON.stringify(value)}`);
  return value;
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
export async function resolveInside(
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

// ---- precompressed siblings ----

/**
 * The `.br` / `.gz` siblings of `namePath` that are regular files inside the root. They go through the same
 * containment and dotfile check as any request, so a sibling that is a symlink to `../x` or `.secret` is ignored.
 */
async function findSiblings(realRoot: string, namePath: string): Promise<Map<Encoding, string>> {
  const found = new Map<Encoding, string>();
  await Promise.all(encodings.map(async (encoding) => {
    const sibling = await resolveInside(realRoot, namePath + siblingSuffixes[encoding]);
    if (sibling?.stats.isFile()) found.set(encoding, sibling.realPath);
  }));
  return found;
}

/** Opens the most preferred acceptable sibling, falling back to the file itself (also when a sibling vanished). */
async function openRepresentation(
  realPath: string,
  siblings: ReadonlyMap<Encoding, string>,
  acceptEncoding: string | undefined,
): Promise<OpenedRepresentation | undefined> {
  const candidates: Array<{ path: string; encoding: Encoding | undefined }> = [];
  if (siblings.size > 0) {
    for (const encoding of acceptableEncodings(acceptEncoding)) {
      const siblingPath = siblings.get(encoding);
      if (siblingPath !== undefined) candidates.push({ path: siblingPath, encoding });
    }
  }
  candidates.push({ path: realPath, encoding: undefined });
  for (const candidate of candidates) {
    const opened = await openRegularFile(candidate.path);
    if (opened !== undefined) return { ...opened, realPath: candidate.path, encoding: candidate.encoding };
  }
  return undefined;
}

/**
 * The codings among br and gzip that Accept-Encoding allows, most preferred first (RFC 9110 §12.5.3): an
 * explicit entry beats `*`, `q=0` means "not acceptable", equal weights prefer br, and `x-gzip` is gzip
 * (§8.4.1.3). No header means no preference, and we then send identity, as every server does.
 */
function acceptableEncodings(header: string | undefined): Encoding[] {
  if (header === undefined) return [];
  const weights = new Map<string, number>();
  for (const member of listElements(header)) {
    const [rawCoding = '', ...params] = member.split(';');
    const coding = rawCoding.trim().toLowerCase();
    let weight = 1;
    for (const param of params) {
      const match = /^\s*q\s*=\s*(\S*)\s*$/i.exec(param);
      if (match === null) continue;
      // RFC 9110 §12.4.2: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
      weight = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/.test(match[1] ?? '') ? Number(match[1]) : Number.NaN;
    }
    if (Number.isNaN(weight)) continue; // a malformed weight: the member means nothing we can rely on
    weights.set(coding === 'x-gzip' ? 'gzip' : coding, weight);
  }
  const weightOf = (encoding: Encoding): number => weights.get(encoding) ?? weights.get('*') ?? 0;
  return encodings
    .filter((encoding) => weightOf(encoding) > 0)
    .sort((a, b) => weightOf(b) - weightOf(a)); // stable: ties keep br first
}

async function openRegularFile(realPath: string): Promise<{ file: fsp.FileHandle; stats: BigIntStats } | undefined> {
  let file: fsp.FileHandle;
  try {
    file = await fsp.open(realPath, openFlags);
  } catch (error) {
    if (notFoundCodes.has(errorCode(error) ?? '')) return undefined;
    throw error;
  }
  try {
    // fstat on the open handle, so the length we announce belongs to the file we are about to read even
    // if the path was replaced since resolveInside looked at it.
    const stats = await file.stat({ bigint: true });
    if (stats.isFile()) return { file, stats };
    await file.close();
    return undefined;
  } catch (error) {
    await file.close().catch(() => undefined);
    throw error;
  }
}

// ---- conditional requests (RFC 9110 §13) ----

/**
 * RFC 9110 §13.2.2's order: If-Match, else If-Unmodified-Since (412 when false); then If-None-Match, else
 * If-Modified-Since (304 when false, GET and HEAD being the only methods we serve). If-Range is handled with Range.
 */
function evaluatePreconditions(headers: IncomingHttpHeaders, etag: string, mtimeSeconds: number): 200 | 304 | 412 {
  const ifMatch = headers['if-match'];
  if (ifMatch !== undefined) {
    // §13.1.1: strong comparison.
    if (!entityTagListMatches(ifMatch, etag, false)) return 412;
  } else {
    const since = parseHttpDate(headers['if-unmodified-since']);
    if (since !== undefined && mtimeSeconds * 1000 > since) return 412;
  }
  const ifNoneMatch = headers['if-none-match'];
  if (ifNoneMatch !== undefined) {
    // §13.1.2: weak comparison; and If-Modified-Since is ignored whenever If-None-Match is present.
    if (entityTagListMatches(ifNoneMatch, etag, true)) return 304;
  } else {
    // §13.1.3: an invalid date is ignored; the comparison is at the one-second precision of an HTTP-date.
    const since = parseHttpDate(headers['if-modified-since']);
    if (since !== undefined && mtimeSeconds * 1000 <= since) return 304;
  }
  return 200;
}

/**
 * Whether `*` or any entity-tag in the list matches our (strong) `etag`. Weak comparison ignores the `W/`
 * prefix; strong comparison needs both tags strong (§8.8.3.2). Elements that are not entity-tags are skipped.
 */
function entityTagListMatches(value: string, etag: string, weak: boolean): boolean {
  if (value.trim() === '*') return true; // a current representation exists: we are about to send it
  for (const match of value.matchAll(/(W\/)?("[\x21\x23-\x7e\x80-\xff]*")/g)) {
    if (match[2] === etag && (weak || match[1] === undefined)) return true;
  }
  return false;
}

/**
 * RFC 9110 §13.1.5: an entity-tag must match strongly (so a weak one never does); an HTTP-date must match the
 * Last-Modified we would send exactly. Anything else is false, which means: send the whole representation.
 */
function ifRangeHolds(value: string, etag: string, mtimeSeconds: number): boolean {
  const trimmed = value.trim();
  if (trimmed.startsWith('"') || trimmed.startsWith('W/')) return trimmed === etag;
  return parseHttpDate(trimmed) === mtimeSeconds * 1000;
}

const monthNames = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const imfFixdate = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) ([A-Z][a-z]{2}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
const rfc850Date = /^(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day, (\d{2})-([A-Z][a-z]{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
const asctimeDate = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ([A-Z][a-z]{2}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/;

/**
 * Milliseconds since the epoch for an HTTP-date in any of the three forms RFC 9110 §5.6.7 says a recipient
 * MUST accept (IMF-fixdate, RFC 850, asctime); undefined for anything else, including `Date.parse` favourites
 * like `2024` or a list of dates. Not `Date.parse`: it accepts far more than HTTP allows.
 */
function parseHttpDate(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  let day: string | undefined, month: string | undefined, year: number, time: Array<string | undefined>;
  let match = imfFixdate.exec(text);
  if (match !== null) {
    [day, month] = [match[1], match[2]];
    year = Number(match[3]);
    time = match.slice(4, 7);
  } else if ((match = rfc850Date.exec(text)) !== null) {
    [day, month] = [match[1], match[2]];
    // §5.6.7: a two-digit year more than 50 years in the future is the most recent past year with those digits.
    year = 2000 + Number(match[3]);
    if (year > new Date().getUTCFullYear() + 50) year -= 100;
    time = match.slice(4, 7);
  } else if ((match = asctimeDate.exec(text)) !== null) {
    [month, day] = [match[1], match[2]];
    year = Number(match[6]);
    time = match.slice(3, 6);
  } else {
    return undefined;
  }
  const monthIndex = monthNames.indexOf(month ?? '');
  const [hours, minutes, seconds] = time.map(Number) as [number, number, number];
  const dayOfMonth = Number(day);
  if (monthIndex === -1 || hours > 23 || minutes > 59 || seconds > 59) return undefined;
  const date = new Date(Date.UTC(year, monthIndex, dayOfMonth, hours, minutes, seconds));
  // Date.UTC rolls 31 Feb over into March; a real date survives the round trip.
  if (date.getUTCDate() !== dayOfMonth || date.getUTCMonth() !== monthIndex) return undefined;
  return date.getTime();
}

// ---- ranges (RFC 9110 §14) ----

/**
 * One `bytes` range, clamped to `byteLength`; 'unsatisfiable' for a 416; undefined when the header is to be
 * ignored and the whole representation sent with 200. Ignored are: another range unit (§14.2 MUST), a
 * malformed or invalid ranges-specifier such as `bytes=5-2` (§14.1.1 calls a last-pos below the first-pos
 * invalid, and §14.2 lets a server ignore an invalid one; ignoring answers exactly as a server without range
 * support would, which every client handles), and more than one range: we never send multipart/byteranges, as
 * §14.2's "a server MAY ignore the Range header field" allows, because the whole file is always a correct answer.
 */
function parseRange(header: string, byteLength: number): ByteRange | 'unsatisfiable' | undefined {
  const equals = header.indexOf('=');
  if (equals === -1 || header.slice(0, equals).trim().toLowerCase() !== 'bytes') return undefined;
  // range-set = 1#range-spec: a list, so empty elements and whitespace around commas are allowed (§5.6.1).
  const specs = listElements(header.slice(equals + 1));
  if (specs.length !== 1) return undefined;
  const match = /^(\d*)-(\d*)$/.exec(specs[0] ?? '');
  if (match === null) return undefined;
  const [, first = '', last = ''] = match;
  if (first === '') {
    if (last === '') return undefined;
    // suffix-range: the last N bytes; §14.1.1: satisfiable when N > 0 (and the file not empty), longer is the whole.
    const suffixLength = Number(last);
    if (suffixLength === 0 || byteLength === 0) return 'unsatisfiable';
    return { start: Math.max(0, byteLength - suffixLength), end: byteLength - 1 };
  }
  const start = Number(first);
  const end = last === '' ? Number.POSITIVE_INFINITY : Number(last);
  if (end < start) return undefined;
  // §14.1.1: an int-range is satisfiable when first-pos < length; a last-pos past the end is clamped.
  if (start >= byteLength) return 'unsatisfiable';
  return { start, end: Math.min(end, byteLength - 1) };
}

// ---- directory listings ----

interface ListingEntry {
  readonly name: string;
  readonly isDirectory: boolean;
  readonly sizeBytes: number;
}

/**
 * A small HTML page listing the directory: dotfiles, and entries a request could not reach (symlinks that lead
 * outside the root or to a dotfile, broken links, FIFOs and sockets) are left out; directories come first with
 * a trailing slash, then names in code-point order so the page is the same on every machine.
 */
async function sendListing(
  res: ServerResponse,
  isHead: boolean,
  realRoot: string,
  directoryPath: string,
  segments: readonly string[],
): Promise<void> {
  const dirents = await fsp.readdir(directoryPath, { withFileTypes: true });
  const found = await Promise.all(dirents.map(async ({ name }): Promise<ListingEntry | undefined> => {
    // A name the URL parser would refuse (a backslash) could not be requested, so it is not offered.
    if (name.startsWith('.') || name.includes('\\')) return undefined;
    const entry = await resolveInside(realRoot, path.join(directoryPath, name));
    if (entry === undefined || !(entry.stats.isDirectory() || entry.stats.isFile())) return undefined;
    return { name, isDirectory: entry.stats.isDirectory(), sizeBytes: entry.stats.size };
  }));
  const entries = found.filter((entry) => entry !== undefined);
  entries.sort((a, b) => Number(b.isDirectory) - Number(a.isDirectory) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  const title = escapeHtml('Index of /' + segments.map((segment) => segment + '/').join(''));
  const rows = entries.map(({ name, isDirectory, sizeBytes }) => {
    const slash = isDirectory ? '/' : '';
    // `./` keeps a name such as `a:b` from reading as a URL scheme; encodeURIComponent handles ?, #, % and spaces.
    const href = escapeHtml(`./${encodeURIComponent(name)}${slash}`);
    const size = isDirectory ? '-' : String(sizeBytes);
    return `<tr><td><a href="${href}">${escapeHtml(name)}${slash}</a></td><td class="size">${size}</td></tr>`;
  });
  if (segments.length > 0) rows.unshift('<tr><td><a href="../">../</a></td><td class="size"></td></tr>');
  const body = [
    '<!doctype html>',
    `<html><head><meta charset="utf-8"><title>${title}</title>`,
    '<style>body{font-family:system-ui,sans-serif;margin:2em}td{padding:0 2em 0 0}.size{text-align:right}</style>',
    `</head><body><h1>${title}</h1>`,
    '<table><tr><th>Name</th><th class="size">Size (bytes)</th></tr>',
    ...rows,
    '</table></body></html>',
    '',
  ].join('\n');
  res.writeHead(200, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'X-Content-Type-Options': 'nosniff',
    // The page changes whenever a file is added; the configured Cache-Control is for the files themselves.
    'Cache-Control': 'no-cache',
    // Names are escaped; this is a second wall should that ever fail: no script, no external loads.
    'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'",
  });
  res.end(isHead ? undefined : body);
}

const htmlEscapes: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => htmlEscapes[char] ?? char);
}

// ---- response helpers ----

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
  412: 'Precondition Failed',
  416: 'Range Not Satisfiable',
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
