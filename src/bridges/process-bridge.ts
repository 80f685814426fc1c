// The process bridge ("CGI for WebSockets", as websocketd does it): a WebSocket route whose connections each
// talk to a program over its stdin and stdout, or all share one long-running program. This file holds the
// options, their checks and the per-connection session; process-shared.ts the shared mode, process-child.ts
// the child's lifecycle and process-framing.ts the byte formats.
import type { WebSocketRoute } from '../server/server.js';
import type { WebSocket } from '../transport/websocket.js';
import { checkInteger } from '../transport/policy.js';
import { CloseCode, ReadyState } from '../protocol/constants.js';
import { buildCgiEnvironment, checkEnvName, checkEnvRecord, envNameFragment, envValue } from './cgi-env.js';
import { BridgedChild, describeExit, type ChildOutcome } from './process-child.js';
import { PROCESS_FRAMINGS, createOutput, encodeInput, type FramedOutput, type ProcessFraming } from './process-framing.js';
import { SharedProcess } from './process-shared.js';

export { activeProcessCount, allProcessesExited } from './process-child.js';
export type { ProcessFraming } from './process-framing.js';

export interface ProcessBridgeOptions {
  /** The program and its arguments (argv); run directly, never through a shell. */
  command: readonly string[];
  /** How bytes become messages; default 'line'. */
  framing?: ProcessFraming;
  cwd?: string;
  /** Variables copied from the server's environment (nothing else is; PATH defaults to /usr/local/bin:/usr/bin:/bin). */
  passEnv?: readonly string[];
  /** Variables set for the program, over everything else. */
  env?: Readonly<Record<string, string>>;
  /** Most programs running at once for this route: the route's maxConnections, so 503 before the upgrade. 0 = no limit. */
  maxProcesses?: number;
  /** After stdin EOF, SIGTERM the program's process group after this long, SIGKILL after as long again. Default 2000. */
  killGraceMs?: number;
  /** Make programs that buffer stdio flush per line: `stdbuf -oL -eL` when installed, PYTHONUNBUFFERED=1. */
  lineBuffered?: boolean;
  /** One program for the whole route, started with the first connection: output goes to every connection. */
  shared?: boolean;
  /** Shared mode, line and json framing: write each message as "<connection id> <message>". */
  tagMessages?: boolean;
  /** line and json framing: an output line longer than this closes with 1009 (stderr lines are split). Default 1 MiB. */
  maxLineBytes?: number;
  /** length-prefixed framing: a record announced longer than this closes with 1009. Default 16 MiB. */
  maxRecordBytes?: number;
  /** The connection came over TLS: sets HTTPS=on for the program (the route cannot tell by itself). */
  secure?: boolean;
  /** Receives stderr lines and lifecycle events, each tagged with the connection id and pid. */
  log?: (line: string) => void;
}

/** Options checked and filled in. */
export interface ResolvedProcessOptions {
  readonly command: readonly string[];
  readonly framing: ProcessFraming;
  readonly cwd: string | undefined;
  readonly passEnv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly maxProcesses: number;
  readonly killGraceMs: number;
  readonly lineBuffered: boolean;
  readonly shared: boolean;
  readonly tagMessages: boolean;
  readonly maxLineBytes: number;
  readonly maxRecordBytes: number;
  readonly secure: boolean;
  readonly log: ((line: string) => void) | undefined;
}

export const DEFAULT_KILL_GRACE_MS = 2000;
export const DEFAULT_MAX_LINE_BYTES = 1024 * 1024;
export const DEFAULT_MAX_RECORD_BYTES = 16 * 1024 * 1024;

/**
 * A WebSocket route that bridges each connection to a program (or, with `shared`, all of them to one).
 * Spread it into app.websocket() with any policy: `app.websocket('/tail', { ...processBridge(opts), pingIntervalMs })`.
 */
export function processBridge<Data = unknown>(options: ProcessBridgeOptions): WebSocketRoute<Data> {
  const resolved = resolveProcessOptions(options);
  const limit = resolved.maxProcesses > 0 && !resolved.shared ? { maxConnections: resolved.maxProcesses } : {};
  if (resolved.shared) {
    const shared = new SharedProcess(resolved);
    return {
      ...limit,
      open: (ws) => shared.join(ws),
      message: (ws, data) => shared.message(ws, data),
      messagePiece: (ws, piece, _isBinary, isLast) => shared.messagePiece(ws, piece, isLast),
      close: (ws) => shared.leave(ws),
    };
  }
  const sessions = new Map<WebSocket<Data>, ConnectionSession>();
  return {
    ...limit,
    open(ws) {
      sessions.set(ws, new ConnectionSession(ws, resolved));
    },
    message(ws, data) {
      sessions.get(ws)?.message(data);
    },
    messagePiece(ws, piece, _isBinary, isLast) {
      sessions.get(ws)?.messagePiece(piece, isLast);
    },
    drain(ws) {
      sessions.get(ws)?.drain();
    },
    close(ws) {
      sessions.get(ws)?.webSocketClosed();
      sessions.delete(ws);
    },
  };
}

export function resolveProcessOptions(options: ProcessBridgeOptions): ResolvedProcessOptions {
  if (options === null || typeof options !== 'object') throw new TypeError('processBridge() takes an options object');
  const { command } = options;
  if (!Array.isArray(command) || command.length === 0 || !command.every((arg) => typeof arg === 'string' && !arg.includes('\0')) || command[0] === '') {
    throw new TypeError('command must be a non-empty array of strings (the program, then its arguments; no shell)');
  }
  const framing = options.framing ?? 'line';
  if (!PROCESS_FRAMINGS.includes(framing)) throw new RangeError(`framing must be one of ${PROCESS_FRAMINGS.join(', ')} (got ${String(framing)})`);
  if (options.cwd !== undefined && (typeof options.cwd !== 'string' || options.cwd === '')) throw new TypeError('cwd must be a non-empty string');
  const passEnv = options.passEnv ?? [];
  if (!Array.isArray(passEnv)) throw new TypeError('passEnv must be an array of variable names');
  for (const name of passEnv) checkEnvName(name, 'passEnv entry');
  const env = options.env === undefined ? {} : checkEnvRecord(options.env, 'env');
  for (const key of ['lineBuffered', 'shared', 'tagMessages', 'secure'] as const) {
    if (options[key] !== undefined && typeof options[key] !== 'boolean') throw new TypeError(`${key} must be true or false`);
  }
  const shared = options.shared ?? false;
  const tagMessages = options.tagMessages ?? false;
  if (tagMessages && !shared) throw new TypeError('tagMessages applies to shared mode only (set shared: true)');
  if (tagMessages && framing !== 'line' && framing !== 'json') throw new TypeError(`tagMessages needs line or json framing (got ${framing})`);
  if (options.log !== undefined && typeof options.log !== 'function') throw new TypeError('log must be a function');
  return {
    command: [...command], framing, cwd: options.cwd, passEnv: [...passEnv], env: { ...env },
    maxProcesses: checkInteger('maxProcesses', options.maxProcesses ?? 0, 0),
    killGraceMs: checkInteger('killGraceMs', options.killGraceMs ?? DEFAULT_KILL_GRACE_MS, 0),
    lineBuffered: options.lineBuffered ?? false,
    shared, tagMessages,
    maxLineBytes: checkInteger('maxLineBytes', options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES, 1),
    maxRecordBytes: checkInteger('maxRecordBytes', options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES, 1, 0xffff_ffff),
    secure: options.secure ?? false,
    log: options.log,
  };
}

/** Variables every bridged program gets on top of the operator's: PYTHONUNBUFFERED for interactive mode. */
export function interactiveEnv(options: ResolvedProcessOptions): Record<string, string> {
  return options.lineBuffered ? { PYTHONUNBUFFERED: '1' } : {};
}

/** The environment for one connection's program: CGI/1.1 variables plus what the route and the hook know. */
export function connectionEnvironment(ws: WebSocket<any>, options: ResolvedProcessOptions): Record<string, string> {
  const connectionVars: Record<string, string> = { ...interactiveEnv(options), SWITCHYARD_CONNECTION_ID: String(ws.id) };
  // Route parameters (/rooms/:room -> ROUTE_ROOM); the trailing wildcard is ROUTE_WILDCARD (and PATH_INFO).
  for (const [name, value] of Object.entries(ws.params)) {
    connectionVars[name === '*' ? 'ROUTE_WILDCARD' : `ROUTE_${envNameFragment(name)}`] = envValue(value);
  }
  if (ws.protocol !== '') connectionVars['WEBSOCKET_PROTOCOL'] = ws.protocol;
  // What the upgrade hook attached, when it is a flat object: { user: 'alice' } -> SWITCHYARD_DATA_USER=alice.
  const data: unknown = ws.data;
  if (data !== null && typeof data === 'object' && !Array.isArray(data)) {
    const proto = Object.getPrototypeOf(data) as unknown;
    if (proto === Object.prototype || proto === null) {
      for (const [key, value] of Object.entries(data as Record<string, unknown>)) {
        const fragment = envNameFragment(key);
        if (fragment === '') continue;
        if (typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))) {
          connectionVars[`SWITCHYARD_DATA_${fragment}`] = envValue(String(value));
        }
      }
    }
  }
  const { scriptName, pathInfo } = splitScriptPath(ws.url, ws.params['*']);
  // With trustProxy the server may have found the client behind a proxy: its address (without the proxy's
  // port), and whether it used https according to the proxy's X-Forwarded-Proto.
  const client = ws.requestClient;
  return buildCgiEnvironment({
    method: 'GET', url: ws.url, scriptName, pathInfo, headers: ws.headers,
    remoteAddress: ws.remoteAddress, remotePort: client?.forwarded === true ? undefined : ws.remotePort,
    localAddress: ws.localAddress, localPort: ws.localPort,
    serverName: '', secure: client?.protocolForwarded === true ? client.protocol === 'https' : options.secure,
  }, { passEnv: options.passEnv, env: { ...connectionVars, ...options.env } });
}

/**
 * SCRIPT_NAME and PATH_INFO (RFC 3875 §4.1.5, §4.1.13): on a route ending in `*` the wildcard's part is
 * PATH_INFO and what matched before it is SCRIPT_NAME; otherwise the whole (decoded) path is SCRIPT_NAME.
 */
export function splitScriptPath(url: string, wildcard: string | undefined): { scriptName: string; pathInfo: string } {
  const queryAt = url.indexOf('?');
  const rawPath = queryAt === -1 ? url : url.slice(0, queryAt);
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    decoded = rawPath;
  }
  if (wildcard === undefined || wildcard === '' || !decoded.endsWith(wildcard)) {
    return { scriptName: wildcard === '' ? decoded.replace(/\/$/, '') : decoded, pathInfo: '' };
  }
  const scriptName = decoded.slice(0, decoded.length - wildcard.length).replace(/\/$/, '');
  return { scriptName, pathInfo: `/${wildcard}` };
}

/** The close code and reason for a program that ended (RFC 6455 §7.4.1: 1011 for a server-side failure). */
export function closeFor(outcome: ChildOutcome): { code: number; reason: string } {
  switch (outcome.kind) {
    case 'not-started': return { code: CloseCode.InternalError, reason: `cannot start: ${outcome.code}` };
    case 'signaled': return { code: CloseCode.InternalError, reason: describeExit(null, outcome.signal) };
    case 'exited': return outcome.code === 0 ? { code: CloseCode.Normal, reason: '' } : { code: CloseCode.InternalError, reason: describeExit(outcome.code, null) };
  }
}

/** One connection and its program, with backpressure each way. */
class ConnectionSession {
  readonly #ws: WebSocket<any>;
  readonly #options: ResolvedProcessOptions;
  readonly #child: BridgedChild;
  readonly #output: FramedOutput;
  #webSocketClosed = false;
  /** We paused the program's output because send() reported backpressure. */
  #outputPaused = false;
  /** We paused reading the WebSocket because the program's stdin is full. */
  #inputPaused = false;
  /** length-prefixed framing with messagePiece: the pieces of the message under way. */
  #pieces: Buffer[] | undefined;
  /**
   * What this turn of the event loop has for stdin, written at the end of it: the messages of one socket read
   * reach the program in one write (one wake-up and one read for it), not one write per message.
   */
  #pendingInput: Array<Buffer | string> | undefined;
  readonly #flushInputBound = (): void => this.#flushInput();

  constructor(ws: WebSocket<any>, options: ResolvedProcessOptions) {
    this.#ws = ws;
    this.#options = options;
    const label = `#${ws.id}`;
    this.#output = createOutput(options.framing, options, {
      send: (data, isBinary) => this.#send(data, isBinary),
      tooLarge: (reason) => this.#fail(CloseCode.MessageTooBig, reason),
      stderrLine: (line) => options.log?.(`${label} pid ${this.#child.pid ?? '-'} stderr: ${line}`),
    });
    this.#child = new BridgedChild({
      argv: options.command, env: connectionEnvironment(ws, options), lineBuffered: options.lineBuffered,
      graceMs: options.killGraceMs, label, log: options.log, ...(options.cwd !== undefined && { cwd: options.cwd }),
    }, {
      stdout: (chunk) => { if (this.#open) this.#output.stdout(chunk); },
      stderr: (chunk) => this.#output.stderr(chunk),
      stdinDrain: () => this.#stdinDrained(),
      closed: (outcome) => this.#childClosed(outcome),
    });
  }

  get #open(): boolean {
    return !this.#webSocketClosed && this.#ws.readyState === ReadyState.Open;
  }

  message(data: Buffer): void {
    this.#write(encodeInput(this.#options.framing, data, undefined));
  }

  messagePiece(piece: Buffer, isLast: boolean): void {
    const framing = this.#options.framing;
    if (framing === 'length-prefixed') {
      // The length goes first, so the pieces wait (bounded by the route's maxMessageBytes).
      (this.#pieces ??= []).push(Buffer.from(piece));
      if (!isLast) return;
      const whole = Buffer.concat(this.#pieces);
      this.#pieces = undefined;
      this.message(whole);
      return;
    }
    const chunks: Buffer[] = [piece];
    if (isLast && framing !== 'binary') chunks.push(Buffer.from('\n'));
    this.#write(chunks);
  }

  /** Queues `chunks` (a fresh array, adopted) for stdin; see #pendingInput. */
  #write(chunks: Array<Buffer | string>): void {
    if (this.#webSocketClosed) return;
    const pending = this.#pendingInput;
    if (pending !== undefined) {
      for (const chunk of chunks) pending.push(chunk);
      return;
    }
    this.#pendingInput = chunks;
    // After the handler that delivered this message returns: every message of the same read is queued by then.
    process.nextTick(this.#flushInputBound);
  }

  #flushInput(): void {
    const chunks = this.#pendingInput;
    if (chunks === undefined) return;
    this.#pendingInput = undefined;
    if (!this.#child.writeAll(chunks) && !this.#inputPaused && !this.#webSocketClosed) {
      this.#inputPaused = true;
      this.#ws.pause();
    }
  }

  #stdinDrained(): void {
    if (!this.#inputPaused) return;
    this.#inputPaused = false;
    if (!this.#webSocketClosed) this.#ws.resume();
  }

  #send(data: Buffer | string, isBinary: boolean): void {
    if (!this.#open) return;
    const ws = this.#ws;
    const droppedBefore = ws.droppedMessages;
    if (ws.send(data, isBinary)) return;
    if (ws.droppedMessages > droppedBefore) {
      this.#options.log?.(`#${ws.id} pid ${this.#child.pid ?? '-'}: output dropped by the slow-consumer policy`);
    }
    if (!this.#outputPaused && this.#open) {
      this.#outputPaused = true;
      this.#child.pauseOutput();
    }
  }

  drain(): void {
    if (!this.#outputPaused) return;
    this.#outputPaused = false;
    this.#child.resumeOutput();
  }

  #fail(code: number, reason: string): void {
    this.#options.log?.(`#${this.#ws.id} pid ${this.#child.pid ?? '-'}: closing ${code}: ${reason}`);
    if (this.#open) this.#ws.close(code, reason);
    this.#child.stop();
  }

  webSocketClosed(): void {
    if (this.#webSocketClosed) return;
    this.#webSocketClosed = true;
    this.#pieces = undefined;
    // Messages that came before the close still reach the program, ahead of its stdin EOF.
    this.#flushInput();
    this.#child.stop();
  }

  #childClosed(outcome: ChildOutcome): void {
    // Its stdin will never drain now: read the WebSocket again, or the closing handshake could not finish.
    this.#stdinDrained();
    if (!this.#open) return;
    this.#output.end();
    const { code, reason } = closeFor(outcome);
    // Whatever the program wrote is queued before the close frame, so it arrives first.
    if (this.#open) this.#ws.close(code, reason);
  }
}
