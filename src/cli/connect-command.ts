// `switchyard connect URL`: a WebSocket client for terminals (a prompt), pipes (stdin lines out, messages in as
// stdout lines) and one-shot requests (--execute). Owns the wiring, flow control and exit status; flags are
// read by src/config/connect-flags.ts, the prompt is line-prompt.ts, text formats are message-format.ts.
import { isUtf8 } from 'node:buffer';
import { STATUS_CODES } from 'node:http';
import { connect, type ClientTlsOptions } from '../client/connect.js';
import { isRedirectStatus } from '../client/redirects.js';
import { parseConnectArgs, type ConnectInvocation } from '../config/connect-flags.js';
import { renderConnectUsage } from '../config/help.js';
import { HandshakeError } from '../errors.js';
import { CloseCode, ReadyState } from '../protocol/constants.js';
import type { WebSocket, WebSocketHandlers } from '../transport/websocket.js';
import { loadClientTls } from './connect-tls.js';
import { LinePrompt } from './line-prompt.js';
import { LineSplitter } from './line-splitter.js';
import { describeClose, pipeLine, terminalLine } from './message-format.js';
import { PROMPT_HELP, parsePromptLine } from './prompt-commands.js';

/** Exit status: 0 after a normal close, 1 for everything that went wrong at run time (2 is main.ts's, for usage). */
const EXIT_OK = 0;
const EXIT_FAILURE = 1;
/** A second Ctrl-C: the shell convention for "killed by SIGINT". */
const EXIT_INTERRUPTED = 130;

interface Closed { code: number; reason: string }

type Mode = 'execute' | 'interactive' | 'pipe';

/**
 * Writes to stdout, pausing the WebSocket while stdout is full: a slow reader slows the server, not our memory.
 * While paused nothing is read from the server, its close frame included, so every way out of the wait resumes
 * reading: stdout draining, and stdout breaking (its reader gone: from then on messages are dropped, and the
 * closing handshake that follows needs the server's close frame read).
 */
class Output {
  readonly #stdout = process.stdout;
  /** The connection this output paused, until it resumes it. */
  #paused: WebSocket | undefined;
  #broken = false;
  /** Called once if stdout's reader goes away (EPIPE: `| head -1`). */
  onBroken: (() => void) | undefined;
  readonly #drained = (): void => this.#resume();

  constructor() {
    this.#stdout.on('error', (error: NodeJS.ErrnoException) => {
      if (this.#broken) return;
      this.#broken = true;
      if (error.code !== 'EPIPE') process.stderr.write(`switchyard: cannot write to stdout: ${error.message}\n`);
      // A broken stream never emits 'drain': without this the connection would stay paused, the server's answer
      // to our close unread, until --close-timeout-ms dropped the connection.
      this.#resume();
      this.onBroken?.();
    });
  }

  get broken(): boolean {
    return this.#broken;
  }

  line(text: string, ws: WebSocket): void {
    if (this.#broken) return;
    if (this.#stdout.write(`${text}\n`) || this.#paused !== undefined) return;
    // 'drain' comes from a later tick (never from inside write()), so the listener cannot miss it.
    this.#paused = ws;
    ws.pause();
    this.#stdout.once('drain', this.#drained);
  }

  #resume(): void {
    const ws = this.#paused;
    if (ws === undefined) return;
    this.#paused = undefined;
    this.#stdout.removeListener('drain', this.#drained);
    ws.resume();
  }

  /** Resolves once everything written so far has been handed to the OS. */
  flushed(): Promise<void> {
    return new Promise((resolve) => {
      if (this.#broken || this.#stdout.writableLength === 0) resolve();
      else this.#stdout.write('', () => resolve());
    });
  }
}

/** What a failed dial means, in words: refused, not found, not 101, a redirect not followed, TLS. */
function explainConnectFailure(url: string, error: unknown, followRedirects: number): string {
  const prefix = `cannot connect to ${url}`;
  if (error instanceof HandshakeError) {
    // connect()'s words for these name its option; say the flag instead.
    const answered = `server answered ${error.status} ${STATUS_CODES[error.status] ?? ''}`.trimEnd();
    if (error.code === 'ERR_HANDSHAKE_STATUS' && isRedirectStatus(error.status) && error.location !== undefined) {
      return `${prefix}: ${answered} instead of 101, a redirect to ${error.location} (--follow-redirects N follows up to N redirects)`;
    }
    if (error.code === 'ERR_TOO_MANY_REDIRECTS') {
      const where = error.location === undefined ? '' : ` to ${error.location}`;
      return `${prefix}: ${answered}${where} after ${followRedirects} ${followRedirects === 1 ? 'redirect' : 'redirects'}, the most --follow-redirects ${followRedirects} allows`;
    }
    return `${prefix}: ${error.message}`;
  }
  const failure = error as NodeJS.ErrnoException;
  switch (failure.code) {
    case 'ECONNREFUSED': return `${prefix}: connection refused (is a server listening there?)`;
    case 'ENOTFOUND': case 'EAI_AGAIN': return `${prefix}: cannot resolve the host name`;
    case 'ETIMEDOUT': return `${prefix}: timed out`;
    case 'ECONNRESET': return `${prefix}: the server reset the connection during the handshake`;
    case 'EHOSTUNREACH': case 'ENETUNREACH': return `${prefix}: no route to the host`;
    case 'ENOENT': return `${prefix}: no Unix socket at that path (is a server listening there?)`;
    case 'EACCES': case 'EPERM': return `${prefix}: permission denied`;
  }
  // Node's TLS errors: certificate verification (codes in UPPER_CASE without ERR_) and ERR_TLS_*/ERR_SSL_*.
  const code = failure.code;
  if (typeof code === 'string' && (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code) || code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL'))) {
    let hint = '';
    // The server's alerts about our certificate (or its absence), then our verdicts on the server's.
    if (/ALERT_CERTIFICATE_REQUIRED|ALERT_UNKNOWN_CA|ALERT_BAD_CERTIFICATE/.test(code)) hint = ' (the server wants a client certificate it trusts: --cert FILE --key FILE)';
    else if (/ALTNAME/.test(code)) hint = ' (--servername NAME checks it against another name; --insecure skips certificate verification)';
    else if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)) hint = ' (--ca FILE trusts the server\'s certificate; --insecure skips certificate verification)';
    return `${prefix}: TLS: ${failure.message}${hint}`;
  }
  return `${prefix}: ${failure.message ?? String(error)}`;
}

function modeOf(invocation: ConnectInvocation): Mode {
  if (invocation.execute.length > 0) return 'execute';
  return process.stdin.isTTY === true && process.stdout.isTTY === true ? 'interactive' : 'pipe';
}

/**
 * Runs the command and resolves with the exit status once the connection is closed and stdout flushed.
 * Throws ConfigError (exit 2) for bad arguments before any connection is made.
 */
export async function runConnect(args: readonly string[]): Promise<number> {
  const invocation = parseConnectArgs(args, process.env);
  if (invocation.help) {
    process.stdout.write(renderConnectUsage());
    return EXIT_OK;
  }
  const tls = loadClientTls(invocation);
  return new ConnectSession(invocation, modeOf(invocation), tls).run();
}

class ConnectSession {
  readonly #invocation: ConnectInvocation;
  readonly #mode: Mode;
  readonly #tls: ClientTlsOptions;
  readonly #output = new Output();
  #ws: WebSocket | undefined;
  #prompt: LinePrompt | undefined;
  #closed!: (closed: Closed) => void;
  readonly #whenClosed = new Promise<Closed>((resolve) => { this.#closed = resolve; });
  /** Set when the session should end with 1 whatever the close code (an --execute timeout). */
  #failure: string | undefined;
  /** The last protocol error reported by the connection, said along with the close code. */
  #protocolError: string | undefined;
  #closeStarted = false;
  #interrupts = 0;
  #pingsSent: number[] = [];
  #repliesPrinted = 0;
  /** Pipe mode: stdin is no longer read (the connection is closing or closed); `drain` must not restart it. */
  #stdinStopped = false;

  constructor(invocation: ConnectInvocation, mode: Mode, tls: ClientTlsOptions) {
    this.#invocation = invocation;
    this.#mode = mode;
    this.#tls = tls;
  }

  async run(): Promise<number> {
    const invocation = this.#invocation;
    this.#output.onBroken = () => this.#close(CloseCode.GoingAway, 'output closed');
    this.#onSignals();
    let ws: WebSocket;
    try {
      ws = await connect(invocation.url, {
        protocols: invocation.protocols,
        headers: invocation.headers,
        ...(invocation.origin !== undefined && { origin: invocation.origin }),
        rejectUnauthorized: !invocation.insecure,
        ...this.#tls,
        ...(invocation.servername !== undefined && { servername: invocation.servername }),
        followRedirects: invocation.followRedirects,
        handshakeTimeoutMs: invocation.handshakeTimeoutMs,
        pingIntervalMs: invocation.pingIntervalMs,
        maxMessageBytes: invocation.maxMessageBytes,
        closeTimeoutMs: invocation.closeTimeoutMs,
        perMessageDeflate: invocation.deflate,
        handlers: this.#handlers(),
      });
    } catch (error) {
      if (error instanceof TypeError || error instanceof RangeError) throw error;
      process.stderr.write(`switchyard: ${explainConnectFailure(invocation.url, error, invocation.followRedirects)}\n`);
      return EXIT_FAILURE;
    }
    this.#ws = ws;
    if (this.#mode === 'execute') this.#execute(ws);
    else if (this.#mode === 'interactive') this.#interactive(ws);
    else this.#pipe(ws);
    const closed = await this.#whenClosed;
    return this.#finish(closed);
  }

  #handlers(): WebSocketHandlers<undefined> {
    return {
      // Before connect() resolves: messages that came with the handshake answer are delivered first.
      open: (ws) => { this.#ws = ws; },
      message: (ws, data, isBinary) => this.#message(ws, data, isBinary),
      pong: () => {
        const sentAt = this.#pingsSent.shift();
        if (sentAt !== undefined) this.#status(`pong (${Date.now() - sentAt} ms)`);
      },
      drain: () => { if (this.#mode === 'pipe' && !this.#stdinStopped) process.stdin.resume(); },
      error: (_ws, error) => { this.#protocolError = error.message; },
      close: (_ws, code, reason) => this.#closed({ code, reason }),
    };
  }

  #message(ws: WebSocket, data: Buffer, isBinary: boolean): void {
    const format = this.#invocation.showBinary;
    if (this.#mode === 'interactive') {
      // Before the prompt is up (messages that came with the handshake answer) they are plain lines.
      if (this.#prompt === undefined) this.#output.line(terminalLine(data, isBinary, format), ws);
      else this.#prompt.print(terminalLine(data, isBinary, format));
      return;
    }
    if (this.#mode === 'execute') {
      // Exactly the first N replies: the answer to the request, not whatever the server sends next.
      if (this.#repliesPrinted >= this.#invocation.replies) return;
      this.#repliesPrinted++;
      this.#output.line(pipeLine(data, isBinary, format), ws);
      if (this.#repliesPrinted === this.#invocation.replies) this.#close(CloseCode.Normal, '');
      return;
    }
    this.#output.line(pipeLine(data, isBinary, format), ws);
  }

  /** A status line: above the prompt on a terminal, on stderr otherwise (stdout carries only messages). */
  #status(text: string): void {
    if (this.#prompt !== undefined) this.#prompt.print(`* ${text}`);
    else if (this.#mode === 'interactive') process.stdout.write(`* ${text}\n`);
    else process.stderr.write(`switchyard: ${text}\n`);
  }

  /** Starts the closing handshake once; messages still arriving before the peer's close are printed. */
  #close(code: number, reason: string): void {
    const ws = this.#ws;
    if (this.#closeStarted || ws === undefined) return;
    this.#closeStarted = true;
    if (ws.readyState === ReadyState.Open) ws.close(code, reason);
  }

  #onSignals(): void {
    // Ctrl-C in a pipe (a terminal's arrives through readline): close with 1000; again: exit now.
    const interrupt = (): void => this.#interrupt();
    process.on('SIGINT', interrupt);
    process.on('SIGTERM', interrupt);
  }

  #interrupt(): void {
    this.#interrupts++;
    // A second one, or one during the handshake (there is nothing to close yet): exit now.
    if (this.#interrupts > 1 || this.#ws === undefined) {
      this.#prompt?.close();
      process.stderr.write('switchyard: interrupted\n');
      process.exit(EXIT_INTERRUPTED);
    }
    this.#status('closing (Ctrl-C again to quit at once)');
    this.#close(CloseCode.Normal, '');
  }

  // ---- modes ----

  #execute(ws: WebSocket): void {
    const { execute, replies, replyTimeoutMs } = this.#invocation;
    for (const message of execute) ws.send(message);
    if (replies === 0) {
      this.#close(CloseCode.Normal, '');
      return;
    }
    const timer = setTimeout(() => {
      if (this.#repliesPrinted >= replies || this.#closeStarted) return;
      this.#failure = `timed out after ${replyTimeoutMs} ms with ${this.#repliesPrinted} of ${replies} ${replies === 1 ? 'reply' : 'replies'}`;
      this.#close(CloseCode.Normal, '');
    }, replyTimeoutMs);
    void this.#whenClosed.then(() => clearTimeout(timer));
  }

  #pipe(ws: WebSocket): void {
    const stdin = process.stdin;
    const splitter = new LineSplitter();
    const stop = (): void => {
      this.#stdinStopped = true;
      stdin.pause();
    };
    const send = (line: Buffer): void => {
      if (this.#stdinStopped) return;
      // Lines that are valid UTF-8 go as text; anything else could not be a text message (RFC 6455 §5.6).
      if (ws.send(line, !isUtf8(line))) return;
      if (ws.readyState !== ReadyState.Open) {
        stop();
        return;
      }
      // Over the backpressure limit: read no more until `drain` (the handler resumes stdin).
      stdin.pause();
    };
    stdin.on('data', (chunk: Buffer) => {
      for (const line of splitter.push(chunk)) send(line);
    });
    stdin.on('end', () => {
      const last = splitter.end();
      if (last !== undefined) send(last);
      this.#close(CloseCode.Normal, '');
    });
    stdin.on('error', (error) => {
      process.stderr.write(`switchyard: cannot read stdin: ${error.message}\n`);
      this.#close(CloseCode.Normal, '');
    });
    void this.#whenClosed.then(stop);
  }

  #interactive(ws: WebSocket): void {
    const prompt = new LinePrompt(process.stdin, process.stdout, {
      line: (text) => this.#typed(ws, text),
      end: () => this.#close(CloseCode.Normal, ''),
      interrupt: () => this.#interrupt(),
    });
    this.#prompt = prompt;
    const protocol = ws.protocol === '' ? '' : ` (subprotocol ${ws.protocol})`;
    // ws.url: where the connection ended up (after redirects; http: shown as ws:).
    prompt.print(`* connected to ${ws.url}${protocol}; /help lists commands, Ctrl-D closes`);
    prompt.start();
  }

  #typed(ws: WebSocket, line: string): void {
    if (this.#closeStarted || ws.readyState !== ReadyState.Open) {
      this.#status('the connection is closing; nothing sent');
      return;
    }
    const input = parsePromptLine(line);
    switch (input.kind) {
      case 'text': ws.send(input.text); break;
      case 'binary': ws.send(input.data, true); break;
      case 'ping':
        this.#pingsSent.push(Date.now());
        ws.ping(input.payload);
        break;
      case 'close': this.#close(input.code, input.reason); break;
      case 'help': this.#prompt?.print(PROMPT_HELP); break;
      case 'mistake': this.#status(input.message); break;
    }
  }

  // ---- the end ----

  async #finish({ code, reason }: Closed): Promise<number> {
    const prompt = this.#prompt;
    const normal = code === CloseCode.Normal;
    if (prompt !== undefined) {
      if (normal) prompt.print(`* connection closed (${describeClose(code, reason)})`);
      prompt.close();
    }
    await this.#output.flushed();
    if (this.#output.broken) return EXIT_OK;
    if (this.#failure !== undefined) {
      process.stderr.write(`switchyard: ${this.#failure}\n`);
      return EXIT_FAILURE;
    }
    if (this.#mode === 'execute' && this.#repliesPrinted < this.#invocation.replies) {
      process.stderr.write(`switchyard: connection closed with ${describeClose(code, reason)} after ${this.#repliesPrinted} of ${this.#invocation.replies} replies\n`);
      return EXIT_FAILURE;
    }
    if (normal) return EXIT_OK;
    const why = this.#protocolError === undefined ? '' : ` (${this.#protocolError})`;
    process.stderr.write(`switchyard: connection closed with ${describeClose(code, reason)}${why}\n`);
    return EXIT_FAILURE;
  }
}
