// CGI/1.1 (RFC 3875) for plain HTTP requests: an HttpHandler that finds the script a request names under one
// directory (cgi-path.ts), runs it with the request's meta-variables (cgi-env.ts) and body, parses its header
// block (cgi-response.ts) and streams its body to the client with backpressure (cgi-process.ts runs it).
import { STATUS_CODES, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import * as path from 'node:path';
import { requestClient } from '../http/client-address.js';
import type { Params } from '../http/router.js';
import type { HttpHandler } from '../server/requests.js';
import { buildCgiEnvironment, checkEnvName, checkEnvRecord, type CgiRequestInfo } from './cgi-env.js';
import { CgiScriptResolver, splitMount, underMount } from './cgi-path.js';
import { CgiProcess, describeOutcome, printable, type CgiOutcome } from './cgi-process.js';
import { CgiHeaderParser, type CgiResponseHead } from './cgi-response.js';

export interface CgiOptions {
  /** The cgi-bin directory: every executable regular file in it (and below it) can be run by a request. */
  directory: string;
  /**
   * How long the script may go without progress (no request body taken, no output read, no client drain):
   * before its headers that answers 504, after them the response is cut; either way the script's process
   * group gets SIGTERM, then SIGKILL. Default 30 000 ms.
   */
  timeoutMs?: number;
  /** Variables copied from the server's environment when set there (PATH among them replaces the default). */
  passEnv?: readonly string[];
  /** Variables set for every script, over the CGI meta-variables. */
  env?: Readonly<Record<string, string>>;
  /** Header bytes the script may print before the blank line; more answers 502. Default 65 536. */
  maxHeaderBytes?: number;
  /** Largest request body, declared or (for a chunked one, which is held in memory) received; more answers 413. Default 16 MiB. */
  maxBodyBytes?: number;
  /** One line per script stderr line and per failed run (502/504, killed, non-zero exit). Default: dropped. */
  log?: (line: string) => void;
}

export const CGI_DEFAULTS = {
  timeoutMs: 30_000,
  maxHeaderBytes: 64 * 1024,
  maxBodyBytes: 16 * 1024 * 1024,
} as const;

/** Between SIGTERM and SIGKILL. */
const KILL_GRACE_MS = 2000;
/** Local redirects (RFC 3875 §6.2.2) followed for one request before it is answered 502. */
const MAX_LOCAL_REDIRECTS = 10;
/** Limits for the command line built from an indexed query (RFC 3875 §4.4). */
const MAX_SEARCH_WORDS = 64;
const MAX_SEARCH_BYTES = 4096;

interface CgiSettings {
  readonly timeoutMs: number;
  readonly maxHeaderBytes: number;
  readonly maxBodyBytes: number;
  readonly passEnv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly log: (line: string) => void;
}

type RequestBody =
  | { readonly kind: 'none' }
  /** A chunked body, read whole (RFC 3875 §4.2 needs CONTENT_LENGTH before the script starts). */
  | { readonly kind: 'buffered'; readonly bytes: Buffer }
  /** A body with a Content-Length, streamed from the socket to stdin. */
  | { readonly kind: 'stream'; readonly byteLength: number };

/**
 * Runs CGI scripts from `options.directory`. Mount it on a wildcard route: `app.all('/cgi-bin/*', cgiHandler(...))`;
 * `/cgi-bin/app.cgi/extra?x=1` runs `app.cgi` with SCRIPT_NAME `/cgi-bin/app.cgi`, PATH_INFO `/extra`,
 * QUERY_STRING `x=1`. Throws TypeError/RangeError for bad options.
 */
export function cgiHandler(options: CgiOptions): HttpHandler {
  const settings = resolveSettings(options);
  const resolver = new CgiScriptResolver(options.directory);
  return (req: IncomingMessage, res: ServerResponse, params: Params): Promise<void> =>
    new CgiExchange(settings, resolver, req, res).start(params['*']);
}

function resolveSettings(options: CgiOptions): CgiSettings {
  if (options === null || typeof options !== 'object') throw new TypeError('cgiHandler: options must be an object');
  if (typeof options.directory !== 'string' || options.directory === '') throw new TypeError('cgiHandler: directory must be a non-empty path');
  const passEnv = options.passEnv ?? [];
  if (!Array.isArray(passEnv)) throw new TypeError('cgiHandler: passEnv must be an array of variable names');
  for (const name of passEnv) checkEnvName(name, 'cgiHandler: passEnv entry');
  const log = options.log ?? ((): void => {});
  if (typeof log !== 'function') throw new TypeError('cgiHandler: log must be a function');
  return {
    timeoutMs: checkInteger('timeoutMs', options.timeoutMs ?? CGI_DEFAULTS.timeoutMs, 1),
    maxHeaderBytes: checkInteger('maxHeaderBytes', options.maxHeaderBytes ?? CGI_DEFAULTS.maxHeaderBytes, 1),
    maxBodyBytes: checkInteger('maxBodyBytes', options.maxBodyBytes ?? CGI_DEFAULTS.maxBodyBytes, 0),
    passEnv: [...passEnv],
    env: { ...checkEnvRecord(options.env ?? {}, 'cgiHandler: env') },
    log: (line) => {
      try { log(line); } catch { /* a failing logger must not take a request down */ }
    },
  };
}

function checkInteger(name: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw new TypeError(`cgiHandler: ${name} must be an integer (got ${String(value)})`);
  if (value < min) throw new RangeError(`cgiHandler: ${name} must be at least ${min} (got ${value})`);
  return value;
}

/** One request: resolving, the body, the script run(s) (more than one after a local redirect) and the response. */
class CgiExchange {
  readonly #settings: CgiSettings;
  readonly #resolver: CgiScriptResolver;
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #isHead: boolean;
  /** Runs not yet closed; all are stopped if the client goes away. */
  readonly #runs = new Set<CgiProcess>();
  #clientGone = false;
  #redirects = 0;
  /** Stops streaming the request body into the current script (and ends its stdin). */
  #detachBody: (() => void) | undefined;

  constructor(settings: CgiSettings, resolver: CgiScriptResolver, req: IncomingMessage, res: ServerResponse) {
    this.#settings = settings;
    this.#resolver = resolver;
    this.#req = req;
    this.#res = res;
    this.#isHead = req.method === 'HEAD';
    res.once('close', () => {
      if (res.writableFinished) return;
      // The client disconnected (or the response was cut): nobody reads what the scripts write any more.
      this.#clientGone = true;
      for (const run of this.#runs) run.stop();
    });
  }

  /** Answers the request; never rejects (an unexpected fault answers 500 or cuts the response). */
  async start(wildcard: string | undefined): Promise<void> {
    try {
      await this.#begin(wildcard);
    } catch (error) {
      this.#settings.log(`cgi ${printable(this.#req.url ?? '')}: internal error: ${printable(String((error as Error)?.message ?? error))}`);
      this.#fail(500);
    }
  }

  async #begin(wildcard: string | undefined): Promise<void> {
    const url = this.#req.url ?? '/';
    const { rawPath } = splitUrl(url);
    if (!rawPath.startsWith('/') || rawPath.includes('\\')) return this.#sendStatus(400);
    const mount = splitMount(rawPath, wildcard);
    if (mount === undefined) return this.#sendStatus(400);

    const lookup = await this.#resolver.resolve(mount.mountPath, mount.rawSegments);
    if (lookup.kind === 'refused') return this.#sendStatus(lookup.status);

    const body = await this.#readBody();
    if (body === undefined) return; // answered (413) or the client left
    this.#run(mount.mountPath, lookup.realPath, lookup.scriptName, lookup.pathInfo, this.#req.method ?? 'GET', url, body);
  }

  /**
   * RFC 3875 §4.2: the script gets exactly CONTENT_LENGTH bytes. A Content-Length body is streamed; a chunked
   * one (no length until it ends) is read whole first, up to maxBodyBytes, rather than refused with 411: every
   * browser `fetch()` with a stream body and many HTTP/1.1 clients send chunked.
   */
  async #readBody(): Promise<RequestBody | undefined> {
    const req = this.#req;
    const max = this.#settings.maxBodyBytes;
    if (req.headers['transfer-encoding'] !== undefined) {
      const chunks: Buffer[] = [];
      let received = 0;
      const outcome = await new Promise<'ok' | 'too-large' | 'gone'>((resolve) => {
        const onData = (chunk: Buffer): void => {
          received += chunk.length;
          if (received > max) {
            cleanup();
            resolve('too-large');
            return;
          }
          chunks.push(chunk);
        };
        const onEnd = (): void => { cleanup(); resolve('ok'); };
        const onGone = (): void => { cleanup(); resolve('gone'); };
        const cleanup = (): void => {
          req.off('data', onData);
          req.off('end', onEnd);
          req.off('close', onGone);
          req.off('error', onGone);
        };
        req.on('data', onData);
        req.on('end', onEnd);
        req.on('close', onGone);
        req.on('error', onGone);
      });
      if (outcome === 'too-large') {
        this.#refuseBody();
        return undefined;
      }
      if (outcome === 'gone' || this.#clientGone) return undefined;
      return { kind: 'buffered', bytes: Buffer.concat(chunks, received) };
    }
    const declared = req.headers['content-length'];
    if (declared === undefined) return { kind: 'none' };
    // node's parser has already refused a malformed or conflicting Content-Length with 400.
    const byteLength = Number(declared);
    if (byteLength > max) {
      this.#refuseBody();
      return undefined;
    }
    return { kind: 'stream', byteLength };
  }

  /** 413, closing the connection afterwards so node does not read the rest of a body we refused. */
  #refuseBody(): void {
    // node discards what the client still sends; the connection closes once the answer is out.
    this.#sendStatus(413, { Connection: 'close' });
  }

  #run(mountPath: string, realPath: string, scriptName: string, pathInfo: string, method: string, url: string, body: RequestBody): void {
    if (this.#clientGone) return;
    const req = this.#req;
    const res = this.#res;
    const settings = this.#settings;
    const label = `cgi ${printable(scriptName)}`;
    const { query } = splitUrl(url);
    const socket = req.socket;
    const contentType = req.headers['content-type'];
    // The server's view of the client (trustProxy): the peer, or the client behind a trusted proxy.
    const client = requestClient(req);
    const info: CgiRequestInfo = {
      method, url, scriptName, pathInfo, headers: req.headers,
      remoteAddress: client.address, remotePort: client.forwarded ? undefined : (client.port ?? 0),
      localAddress: socket.localAddress ?? '', localPort: socket.localPort ?? 0,
      serverName: '', secure: client.protocol === 'https',
    };
    if (body.kind !== 'none') {
      info.contentLength = body.kind === 'buffered' ? body.bytes.length : body.byteLength;
      if (contentType !== undefined) info.contentType = contentType;
    }
    const env = buildCgiEnvironment(info, { passEnv: settings.passEnv, env: settings.env });

    const parser = new CgiHeaderParser(settings.maxHeaderBytes);
    /** Set once the run has answered (or given up on answering): later output is read and dropped. */
    let outcome: 'streaming' | 'discarding' | undefined;
    /** Why the run failed, for the log line written when it has closed (with all of its stderr). */
    let failure: string | undefined;
    let head: CgiResponseHead | undefined;
    let bodyBytesLeft = Number.POSITIVE_INFINITY;
    let waitingForDrain = false;

    // (Called only from the run's events, which start after `run` is assigned.)
    const giveUp = (status: 502 | 504): void => {
      outcome = 'discarding';
      run.stop();
      this.#fail(status);
    };

    const writeBody = (chunk: Buffer): void => {
      if (this.#isHead || head === undefined || noBodyStatus(head.status) || res.destroyed) return;
      let piece = chunk;
      if (piece.length > bodyBytesLeft) {
        // More than the script's own Content-Length: sending it would corrupt the connection's next response.
        failure ??= 'output longer than its Content-Length (extra bytes dropped)';
        piece = piece.subarray(0, bodyBytesLeft);
      }
      if (piece.length === 0) return;
      bodyBytesLeft -= piece.length;
      if (!res.write(piece) && !waitingForDrain) {
        // Backpressure: stop reading stdout, so the pipe fills and the script blocks in write() instead of
        // our memory filling up with what a slow client has not taken yet.
        waitingForDrain = true;
        run.pauseOutput();
        res.once('drain', () => {
          waitingForDrain = false;
          run.touch();
          if (outcome === 'streaming') run.resumeOutput();
        });
      }
    };

    const onHead = (parsedHead: CgiResponseHead, rest: Buffer): void => {
      if (parsedHead.kind === 'local-redirect') {
        outcome = 'discarding';
        run.resumeOutput();
        this.#localRedirect(mountPath, parsedHead.location ?? '/', label);
        return;
      }
      if (res.headersSent || res.destroyed) {
        outcome = 'discarding';
        return;
      }
      head = parsedHead;
      bodyBytesLeft = parsedHead.contentLength ?? Number.POSITIVE_INFINITY;
      try {
        res.writeHead(parsedHead.status, parsedHead.statusText ?? STATUS_CODES[parsedHead.status] ?? '', headerObject(parsedHead));
      } catch (error) {
        failure = `response headers refused: ${printable(String((error as Error)?.message ?? error))}`;
        giveUp(502);
        return;
      }
      outcome = 'streaming';
      if (rest.length > 0) writeBody(rest);
      // A script that prints its headers and then takes its time (a progress page, server-sent events): the
      // client gets the headers now, not with the first body byte.
      else res.flushHeaders();
    };

    let run: CgiProcess;
    try {
      run = new CgiProcess({
        file: realPath, args: searchWords(method, query), cwd: path.dirname(realPath), env,
        timeoutMs: settings.timeoutMs, killGraceMs: KILL_GRACE_MS,
        stderrLine: (line) => settings.log(`${label}: ${line}`),
      }, {
        stdout: (chunk) => {
          if (outcome === 'discarding') return;
          if (outcome === 'streaming') {
            writeBody(chunk);
            return;
          }
          const parsed = parser.push(chunk);
          if (parsed.state === 'more') return;
          if (parsed.state === 'error') {
            failure = `malformed response headers: ${parsed.reason}`;
            giveUp(502);
            return;
          }
          onHead(parsed.head, parsed.body);
        },
        stdoutEnd: () => {
          if (outcome !== 'streaming') return; // before the head: decided when the run closes
          outcome = 'discarding';
          if (res.destroyed) return;
          if (head?.contentLength !== undefined && bodyBytesLeft > 0 && !this.#isHead && !noBodyStatus(head.status)) {
            failure = `output ended ${bodyBytesLeft} bytes short of its Content-Length`;
            res.destroy();
            return;
          }
          res.end();
        },
        timedOut: () => {
          failure = `no progress for ${settings.timeoutMs} ms`;
          if (outcome === undefined) giveUp(504);
          else if (outcome === 'streaming') {
            outcome = 'discarding';
            res.destroy();
          }
        },
        closed: (ended: CgiOutcome) => {
          this.#runs.delete(run);
          if (outcome === undefined && !this.#clientGone) {
            // The script closed stdout (normally: exited) before finishing its header block.
            const parsed = parser.end();
            failure = parsed.state === 'error' ? parsed.reason : 'no response';
            giveUp(502);
          }
          const status = describeOutcome(ended);
          if (failure !== undefined) {
            const tail = run.stderrTail;
            settings.log(`${label}: ${failure} (${status})${tail === '' ? '' : `; stderr: ${tail}`}`);
          } else if (this.#clientGone) {
            settings.log(`${label}: client disconnected (${status})`);
          } else if (ended.kind !== 'exited' || ended.code !== 0) {
            settings.log(`${label}: ${status}`);
          }
        },
      });
    } catch (error) {
      settings.log(`${label}: could not start: ${printable(String((error as Error)?.message ?? error))}`);
      this.#fail(502);
      return;
    }
    this.#runs.add(run);
    this.#feedBody(run, body);
  }

  /** Streams a Content-Length body to stdin with backpressure, or writes a buffered one, then EOF. */
  #feedBody(run: CgiProcess, body: RequestBody): void {
    const req = this.#req;
    if (body.kind === 'none') {
      run.endInput();
      return;
    }
    if (body.kind === 'buffered') {
      run.endInput(body.bytes);
      return;
    }
    const onData = (chunk: Buffer): void => {
      if (run.stdinDone) {
        // The script stopped reading (it may answer without the body): discard the rest so the connection can
        // finish the request.
        return;
      }
      if (!run.writeInput(chunk)) {
        req.pause();
        run.onStdinDrain(() => req.resume());
      }
    };
    const stop = (): void => {
      req.off('data', onData);
      req.off('end', stop);
      this.#detachBody = undefined;
      run.endInput();
      // Whatever is left is not the script's any more: let node read and drop it.
      req.resume();
    };
    this.#detachBody = stop;
    req.on('data', onData);
    req.on('end', stop);
  }

  /**
   * RFC 3875 §6.2.2: the script named a local path, so the server answers as it would have for that URL. A
   * path under this mount runs that script here (as GET — HEAD stays HEAD — without the request body, as Apache
   * does); any other path is outside what a handler can dispatch to, so the client is sent there with 302
   * (lighttpd's default for every local redirect).
   */
  #localRedirect(mountPath: string, location: string, label: string): void {
    if (this.#clientGone || this.#res.headersSent) return;
    this.#redirects++;
    if (this.#redirects > MAX_LOCAL_REDIRECTS) {
      this.#settings.log(`${label}: more than ${MAX_LOCAL_REDIRECTS} local redirects`);
      this.#fail(502);
      return;
    }
    // The body (if any) belonged to the first script; stop feeding it and let node discard the rest.
    this.#detachBody?.();
    const { rawPath } = splitUrl(location);
    const segments = rawPath.includes('\\') ? undefined : underMount(mountPath, rawPath);
    if (segments === undefined) {
      this.#sendStatus(302, { Location: location });
      return;
    }
    void this.#resolver.resolve(mountPath, segments).then((lookup) => {
      if (this.#clientGone) return;
      if (lookup.kind === 'refused') {
        this.#sendStatus(lookup.status);
        return;
      }
      const method = this.#isHead ? 'HEAD' : 'GET';
      this.#run(mountPath, lookup.realPath, lookup.scriptName, lookup.pathInfo, method, location, { kind: 'none' });
    }).catch(() => this.#fail(500));
  }

  /** Answers with an error status if nothing has been sent yet, else cuts the response. */
  #fail(status: number): void {
    if (this.#res.headersSent) {
      this.#res.destroy();
      return;
    }
    this.#sendStatus(status);
  }

  #sendStatus(status: number, headers: OutgoingHttpHeaders = {}): void {
    const res = this.#res;
    if (res.headersSent || res.destroyed) return;
    const body = `${status} ${STATUS_CODES[status] ?? ''}\n`;
    res.writeHead(status, {
      ...headers,
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Length': Buffer.byteLength(body),
      'X-Content-Type-Options': 'nosniff',
    });
    res.end(this.#isHead ? undefined : body);
  }
}

/** The script's fields as node wants them: one key per name (first spelling kept), repeated ones as arrays. */
function headerObject(head: CgiResponseHead): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  const keyOf = new Map<string, string>();
  for (const [name, value] of head.fields) {
    const lower = name.toLowerCase();
    const key = keyOf.get(lower);
    if (key === undefined) {
      keyOf.set(lower, name);
      headers[name] = value;
    } else {
      const previous = headers[key];
      headers[key] = Array.isArray(previous) ? [...previous, value] : [String(previous), value];
    }
  }
  return headers;
}

/** RFC 9110 §6.4.1: 204 and 304 never have content (node drops writes for them). */
function noBodyStatus(status: number): boolean {
  return status === 204 || status === 304;
}

function splitUrl(url: string): { rawPath: string; query: string } {
  const queryAt = url.indexOf('?');
  return queryAt === -1 ? { rawPath: url, query: '' } : { rawPath: url.slice(0, queryAt), query: url.slice(queryAt + 1) };
}

/**
 * RFC 3875 §4.4: for an indexed query (GET or HEAD, a query with no unencoded `=`) the words, split on `+` and
 * decoded, SHOULD become the command line; if any word cannot be represented the server MUST NOT generate any.
 * We also treat a word that starts with `-` as not representable: it would be read as an option, the hole
 * behind CVE-2012-1823 (`php-cgi?-s` printed the source).
 */
function searchWords(method: string, query: string): string[] {
  if ((method !== 'GET' && method !== 'HEAD') || query === '' || query.includes('=')) return [];
  const words: string[] = [];
  let bytes = 0;
  for (const raw of query.split('+')) {
    let word: string;
    try {
      word = decodeURIComponent(raw);
    } catch {
      return [];
    }
    bytes += Buffer.byteLength(word) + 1;
    // search-word = 1*schar: an empty word (`a++b`) is not one either.
    if (word === '' || word.includes('\0') || word.startsWith('-') || words.length >= MAX_SEARCH_WORDS || bytes > MAX_SEARCH_BYTES) return [];
    words.push(word);
  }
  return words;
}
