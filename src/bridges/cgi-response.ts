// Parses the header block a CGI script writes before its body (RFC 3875 §6): sans-I/O, fed chunks of stdout,
// returning the response to send or the reason the output is not a CGI response. Every field value that comes
// out of here is free of CR, LF and NUL, so nothing a script prints can add a header line or split a response.

/** What the script's headers ask for (§6.2). */
export type CgiResponseKind =
  /** §6.2.1 a document (Content-Type and/or Status), or §6.2.4 a redirect with a document. */
  | 'document'
  /** §6.2.2 a `Location` that is a local path, without another status: the server fetches it itself. */
  | 'local-redirect'
  /** §6.2.3 an absolute `Location` without a Status: answered with 302 Found. */
  | 'client-redirect';

export interface CgiResponseHead {
  readonly kind: CgiResponseKind;
  readonly status: number;
  /** The reason phrase from `Status:`, or undefined for the standard one. */
  readonly statusText: string | undefined;
  /** The fields to send, in the script's order and spelling (Content-Type and Location included, Status not). */
  readonly fields: ReadonlyArray<readonly [name: string, value: string]>;
  readonly location: string | undefined;
  /** A `Content-Length` the script declared; the body is then held to exactly that many bytes. */
  readonly contentLength: number | undefined;
}

export type CgiParseResult =
  | { readonly state: 'more' }
  /** `body` holds the bytes after the blank line that arrived in the same chunk (a view, maybe empty). */
  | { readonly state: 'head'; readonly head: CgiResponseHead; readonly body: Buffer }
  | { readonly state: 'error'; readonly reason: string };

// RFC 9110 §5.1: field-name = token.
const fieldName = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// RFC 9110 §5.5: field values are visible characters, SP, HTAB and obs-text; never CR, LF, NUL or another control.
const fieldValue = /^[\t\x20-\x7e\x80-\xff]*$/;
// Connection-specific fields are the server's business (RFC 9110 §7.6.1); the server frames the body itself.
const hopByHop: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-connection']);
// RFC 3875 §6.3: "each CGI field MUST NOT appear more than once in the response"; Content-Length neither (RFC 9110 §8.6).
const single: ReadonlySet<string> = new Set(['status', 'content-type', 'location', 'content-length']);

/**
 * Collects header lines until the blank line. Lines end in LF or CRLF (scripts written with `echo` send LF); a
 * CR anywhere else, a line with no colon, a field name that is not a token, a value with a control character,
 * a repeated CGI field, or a block longer than `maxHeaderBytes` makes the output malformed.
 */
export class CgiHeaderParser {
  readonly #maxHeaderBytes: number;
  #pending: Buffer = Buffer.alloc(0);
  /** Where to resume looking for LF in #pending. */
  #scanFrom = 0;
  #lines: string[] = [];
  #result: CgiParseResult = { state: 'more' };

  constructor(maxHeaderBytes: number) {
    this.#maxHeaderBytes = maxHeaderBytes;
  }

  /** Feeds stdout bytes; once it has answered 'head' or 'error', it keeps answering that. */
  push(chunk: Buffer): CgiParseResult {
    if (this.#result.state !== 'more') return this.#result;
    const pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    let lineStart = 0;
    for (;;) {
      const newline = pending.indexOf(0x0a, Math.max(lineStart, this.#scanFrom));
      if (newline === -1) break;
      // The budget covers every header byte up to and including the blank line's LF.
      if (this.#consumedBytes + newline + 1 > this.#maxHeaderBytes) return this.#fail(`more than ${this.#maxHeaderBytes} bytes of headers`);
      const end = newline > lineStart && pending[newline - 1] === 0x0d ? newline - 1 : newline;
      // latin1 maps bytes to characters one to one, and node writes header strings back as latin1: the bytes
      // the script sent are the bytes the client gets.
      const line = pending.toString('latin1', lineStart, end);
      lineStart = newline + 1;
      if (line === '') {
        const head = this.#finish();
        if (typeof head === 'string') return this.#fail(head);
        this.#pending = Buffer.alloc(0);
        this.#result = { state: 'head', head, body: pending.subarray(lineStart) };
        return this.#result;
      }
      if (line.includes('\r')) return this.#fail('a CR inside a header line');
      this.#lines.push(line);
    }
    // Keep only the unfinished line (copied, so a big chunk is not retained for a few bytes).
    this.#consumedBytes += lineStart;
    this.#pending = Buffer.from(pending.subarray(lineStart));
    this.#scanFrom = this.#pending.length;
    if (this.#consumedBytes + this.#pending.length > this.#maxHeaderBytes) return this.#fail(`more than ${this.#maxHeaderBytes} bytes of headers`);
    return this.#result;
  }

  /** Header bytes already split into lines. */
  #consumedBytes = 0;

  /** The script's stdout ended; a parser still waiting for the blank line has been given no complete head. */
  end(): CgiParseResult {
    if (this.#result.state !== 'more') return this.#result;
    const empty = this.#consumedBytes === 0 && this.#pending.length === 0 && this.#lines.length === 0;
    return this.#fail(empty ? 'no output' : 'output ended before the blank line that ends the headers');
  }

  #fail(reason: string): CgiParseResult {
    this.#pending = Buffer.alloc(0);
    this.#lines = [];
    this.#result = { state: 'error', reason };
    return this.#result;
  }

  /** Builds the response head from the collected lines, or says why they are not one. */
  #finish(): CgiResponseHead | string {
    // RFC 9112 §5.2 obs-fold: a line that starts with SP or HTAB continues the previous field; replace it with SP.
    const joined: string[] = [];
    for (const line of this.#lines) {
      if (line.startsWith(' ') || line.startsWith('\t')) {
        if (joined.length === 0) return 'the first header line starts with whitespace';
        joined[joined.length - 1] += ' ' + line.trim();
      } else {
        joined.push(line);
      }
    }
    if (joined.length === 0) return 'no header lines before the blank line';

    const fields: Array<readonly [string, string]> = [];
    const seen = new Set<string>();
    let status: number | undefined;
    let statusText: string | undefined;
    let location: string | undefined;
    let contentType: string | undefined;
    let contentLength: number | undefined;
    for (const line of joined) {
      const colon = line.indexOf(':');
      if (colon === -1) return `header line without a colon: ${JSON.stringify(truncate(line))}`;
      const name = line.slice(0, colon);
      // RFC 9112 §5.1: no whitespace is allowed between the field name and the colon.
      if (!fieldName.test(name)) return `invalid header name ${JSON.stringify(truncate(name))}`;
      const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
      if (!fieldValue.test(value)) return `invalid character in the value of ${name}`;
      const lower = name.toLowerCase();
      if (single.has(lower)) {
        if (seen.has(lower)) return `${name} appears more than once`;
        seen.add(lower);
      }
      switch (lower) {
        case 'status': {
          // §6.3.3: Status = "Status:" status-code SP reason-phrase. A final status only: 1xx cannot end a response.
          const match = /^([1-9]\d\d)(?:[ \t]+(.*))?$/.exec(value);
          const code = Number(match?.[1]);
          if (match === null || code < 200 || code > 599) return `invalid Status ${JSON.stringify(truncate(value))}`;
          status = code;
          statusText = match[2] === undefined || match[2] === '' ? undefined : match[2];
          continue;
        }
        case 'location':
          if (value === '') return 'empty Location';
          location = value;
          break;
        case 'content-type':
          contentType = value;
          break;
        case 'content-length':
          if (!/^\d{1,15}$/.test(value)) return `invalid Content-Length ${JSON.stringify(truncate(value))}`;
          contentLength = Number(value);
          break;
        default:
          if (hopByHop.has(lower)) continue;
      }
      fields.push([name, value]);
    }

    if (location !== undefined) {
      // §6.2.2: a local path (not `//authority`) with no other status is fetched by the server itself. Apache
      // does the same when the script also sent other fields; they are dropped with the body.
      const isLocal = location.startsWith('/') && !location.startsWith('//');
      if (isLocal && (status === undefined || status === 200)) {
        return { kind: 'local-redirect', status: 200, statusText: undefined, fields: [], location, contentLength: undefined };
      }
      // §6.2.3: an absolute URI without a Status is a 302; §6.2.4: with one, the script's status stands. A
      // relative reference (neither form, which §6.3.2 does not allow) is passed on the same way: browsers resolve it.
      if (status === undefined) {
        return { kind: 'client-redirect', status: 302, statusText: undefined, fields, location, contentLength };
      }
      return { kind: 'document', status, statusText, fields, location, contentLength };
    }
    // §6.3: at least one CGI field; a document without Content-Type is accepted only with an explicit Status.
    if (contentType === undefined && status === undefined) return 'none of Content-Type, Location or Status';
    return { kind: 'document', status: status ?? 200, statusText, fields, location: undefined, contentLength };
  }
}

function truncate(text: string): string {
  return text.length > 80 ? `${text.slice(0, 80)}...` : text;
}
