// The WebSocket <-> TCP bridge (what websockify does): every WebSocket on the route gets its own TCP or Unix
// socket connection to a fixed target or to one named by `?token=` in a websockify token file; bytes flow both
// ways unchanged, each direction's buffer is bounded by pausing the other side, and either side's end ends both.
import * as net from 'node:net';
import { CloseCode, ReadyState } from '../protocol/constants.js';
import { truncateCloseReason } from '../protocol/close.js';
import { checkInteger } from '../transport/policy.js';
import type { WebSocket } from '../transport/websocket.js';
import type { WebSocketRoute } from '../server/server.js';
import type { UpgradeDecision, UpgradeRequest } from '../server/upgrade.js';
import { AllowList, TokenFile, checkTarget, describeTarget, type TcpTarget } from './tcp-targets.js';

export { describeTarget, parseTcpTarget, parseTokenFile, type TcpTarget } from './tcp-targets.js';

export interface TcpBridgeOptions {
  /** The one target every connection goes to. Give this or `tokenFile`, not both. */
  target?: TcpTarget;
  /**
   * Token mode: each connection names its target with `?token=NAME`, looked up in this file (or directory of
   * files) in websockify's format, `NAME: host:port` or `NAME: unix_socket:/path` per line. Re-read when it
   * changes. A missing or unknown token is refused with 404 before the upgrade.
   */
  tokenFile?: string;
  /** Targets connections may reach ("host:port", "[::1]:port", "unix:/path"); others are refused with 403. */
  allow?: readonly string[];
  /** How long connecting to the target may take before the WebSocket is closed with 1011. Default 10 s. */
  connectTimeoutMs?: number;
  /**
   * Most bytes held for either direction before the sending side is paused: TCP bytes waiting to go out on the
   * WebSocket (then the target is not read), and WebSocket bytes waiting to go to the target (then the client
   * is not read). Default 1 MiB.
   */
  maxBufferedBytes?: number;
  /** After the WebSocket closed, how long the target gets to read what is left and close before it is dropped. Default 5 s. */
  closeGraceMs?: number;
  /** How to open the connection to a target (default `net.connect`); e.g. `tls.connect` for a TLS target. */
  createConnection?: (target: TcpTarget) => net.Socket;
  /** Receives one line per refusal, connection, failure and close. Default: no logging. */
  log?: (line: string) => void;
}

/** One bridged connection, as `connections()` reports it. */
export interface TcpBridgeConnection {
  readonly ws: WebSocket<unknown>;
  /** describeTarget() form: "host:port" or "unix:/path". */
  readonly target: string;
  /** 'binary' (also for no subprotocol) or 'base64'. */
  readonly mode: 'binary' | 'base64';
  readonly connected: boolean;
  /** Bytes written to the target so far, and read from it. */
  readonly bytesToTarget: number;
  readonly bytesFromTarget: number;
  /** Bytes waiting to be written to the target (bounded by maxBufferedBytes plus one read). */
  readonly pendingToTargetBytes: number;
  /** Bytes waiting to be written to the WebSocket client (its bufferedAmount). */
  readonly pendingToClientBytes: number;
}

/** A WebSocket route (pass it to `app.websocket(path, route)`) that also lists its live connections. */
export interface TcpBridgeRoute<Data = unknown> extends WebSocketRoute<Data> {
  connections(): TcpBridgeConnection[];
}

export const TCP_BRIDGE_PROTOCOLS = ['binary', 'base64'] as const;

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_BUFFERED_BYTES = 1024 * 1024;
const DEFAULT_CLOSE_GRACE_MS = 5_000;
/** Client messages reach the target in pieces of at most this size (a multiple of 4, for base64). */
const PIECE_BYTES = 64 * 1024;
/**
 * Room above maxBufferedBytes before the WebSocket's slow-consumer policy would act: the target is paused once
 * send() reports backpressure, so at most one more socket read (64 KiB, 4/3 of that as base64) lands on top.
 */
const SEND_SLACK_BYTES = 1024 * 1024;
const BASE64_BODY = /^[A-Za-z0-9+/]*$/;
const BASE64_FINAL = /^[A-Za-z0-9+/]*={0,2}$/;

interface Settings {
  readonly connectTimeoutMs: number;
  readonly maxBufferedBytes: number;
  readonly closeGraceMs: number;
  readonly createConnection: (target: TcpTarget) => net.Socket;
  readonly log: (line: string) => void;
  readonly links: Set<Link>;
}

/**
 * Builds the route. Binary and text messages from the client are both written to the target as their payload
 * bytes; what the target sends goes to the client as binary messages. With the `base64` subprotocol
 * (websockify's legacy mode) payloads are base64 text both ways.
 */
export function tcpBridge<Data = unknown>(options: TcpBridgeOptions): TcpBridgeRoute<Data> {
  if (typeof options !== 'object' || options === null) throw new TypeError('tcpBridge() takes an options object');
  if ((options.target === undefined) === (options.tokenFile === undefined)) {
    throw new TypeError('tcpBridge() needs exactly one of `target` and `tokenFile`');
  }
  if (options.log !== undefined && typeof options.log !== 'function') throw new TypeError('log must be a function');
  if (options.createConnection !== undefined && typeof options.createConnection !== 'function') {
    throw new TypeError('createConnection must be a function');
  }
  const log = options.log ?? ((): void => {});
  const maxBufferedBytes = checkInteger('maxBufferedBytes', options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES, 1);
  const settings: Settings = {
    connectTimeoutMs: checkInteger('connectTimeoutMs', options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS, 1),
    maxBufferedBytes,
    closeGraceMs: checkInteger('closeGraceMs', options.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS, 0),
    createConnection: options.createConnection ?? ((target) => connectTo(target, maxBufferedBytes)),
    log,
    links: new Set(),
  };
  const allow = options.allow === undefined ? undefined : new AllowList(options.allow);
  const fixed = options.target === undefined ? undefined : checkTarget(options.target, 'target');
  if (fixed !== undefined && allow !== undefined && !allow.allows(fixed)) {
    throw new RangeError(`target ${describeTarget(fixed)} is not in the allow-list`);
  }
  const tokens = options.tokenFile === undefined ? undefined : new TokenFile(options.tokenFile, log);
  const links = new WeakMap<WebSocket<Data>, Link>();
  /** Token mode: the target the upgrade hook resolved, keyed by the request's headers object (ws.headers). */
  const resolved = new WeakMap<object, TcpTarget>();

  const targetFor = (ws: WebSocket<Data>): TcpTarget | undefined => {
    if (fixed !== undefined) return fixed;
    const target = resolved.get(ws.headers);
    if (target !== undefined) return target;
    // A server that copied the headers: the file was read by the hook a moment ago, so the cache answers.
    const cached = tokens?.cached(ws.query.get('token') ?? '');
    return cached !== undefined && (allow === undefined || allow.allows(cached)) ? cached : undefined;
  };

  const route: TcpBridgeRoute<Data> = {
    protocols: TCP_BRIDGE_PROTOCOLS,
    messagePieceBytes: PIECE_BYTES,
    backpressureBytes: maxBufferedBytes,
    maxBackpressureBytes: maxBufferedBytes + SEND_SLACK_BYTES,
    // Dropping a message would corrupt the byte stream; past the hard cap only closing is safe.
    slowConsumerPolicy: 'close',
    open(ws) {
      const target = targetFor(ws);
      if (target === undefined) {
        log(`tcp-bridge: ${ws.remoteAddress} ${pathOf(ws.url)}: no target`);
        ws.close(CloseCode.InternalError, 'no target for this connection');
        return;
      }
      const link = new Link(ws as WebSocket<unknown>, target, ws.protocol === 'base64', settings);
      links.set(ws, link);
      settings.links.add(link);
      link.start();
    },
    messagePiece(ws, piece, isBinary, isLast) {
      links.get(ws)?.fromClient(piece, isBinary, isLast);
    },
    // Used only if someone sets messagePieceBytes to 0 on this route.
    message(ws, data, isBinary) {
      links.get(ws)?.fromClient(data, isBinary, true);
    },
    drain(ws) {
      links.get(ws)?.clientDrained();
    },
    close(ws, code, reason) {
      links.get(ws)?.clientClosed(code, reason);
      links.delete(ws);
    },
    error(ws, error) {
      log(`tcp-bridge: ${ws.remoteAddress} -> ${links.get(ws)?.label ?? '?'}: WebSocket error: ${error.message}`);
    },
    connections: () => [...settings.links].map((link) => link.info()),
  };
  if (tokens !== undefined) {
    route.upgrade = async (request: UpgradeRequest): Promise<UpgradeDecision<Data>> => {
      const refuse = (status: number, message: string, detail: string): UpgradeDecision<Data> => {
        log(`tcp-bridge: refused ${request.remoteAddress} ${request.path}: ${detail} (${status})`);
        return { status, message };
      };
      const token = request.query.get('token');
      if (token === null || token === '') return refuse(404, 'no token', 'no ?token= in the URL');
      let target: TcpTarget | undefined;
      try {
        target = await tokens.lookup(token);
      } catch (error) {
        return refuse(500, 'targets unavailable', `cannot read ${tokens.source}: ${(error as Error).message}`);
      }
      const shown = JSON.stringify(token.length > 64 ? `${token.slice(0, 64)}...` : token);
      if (target === undefined) return refuse(404, 'unknown token', `unknown token ${shown}`);
      if (allow !== undefined && !allow.allows(target)) {
        return refuse(403, 'target not allowed', `token ${shown} names ${describeTarget(target)}, which is not in the allow-list`);
      }
      resolved.set(request.headers, target);
      return undefined;
    };
  }
  return route;
}

/** One WebSocket and its TCP connection. */
class Link {
  readonly ws: WebSocket<unknown>;
  readonly target: TcpTarget;
  readonly label: string;
  readonly base64: boolean;
  bytesToTarget = 0;
  bytesFromTarget = 0;
  readonly #settings: Settings;
  #tcp: net.Socket | undefined;
  #connected = false;
  #tcpEnded = false;
  #tcpClosed = false;
  #tcpError: NodeJS.ErrnoException | undefined;
  #timedOut = false;
  #clientClosed = false;
  /** Nothing more from the client goes to the target (it sent bad base64, or the target is gone). */
  #inputStopped = false;
  /** We paused reading the client because the target is not keeping up. */
  #clientPaused = false;
  #connectTimer: NodeJS.Timeout | undefined;
  #graceTimer: NodeJS.Timeout | undefined;
  /** base64 mode: characters of the current message that did not yet make a 4-character group. */
  #carry = '';

  constructor(ws: WebSocket<unknown>, target: TcpTarget, base64: boolean, settings: Settings) {
    this.ws = ws;
    this.target = target;
    this.label = describeTarget(target);
    this.base64 = base64;
    this.#settings = settings;
  }

  info(): TcpBridgeConnection {
    return {
      ws: this.ws, target: this.label, mode: this.base64 ? 'base64' : 'binary', connected: this.#connected,
      bytesToTarget: this.bytesToTarget, bytesFromTarget: this.bytesFromTarget,
      pendingToTargetBytes: this.#tcp?.writableLength ?? 0, pendingToClientBytes: this.#clientClosed ? 0 : this.ws.bufferedAmount,
    };
  }

  start(): void {
    let tcp: net.Socket;
    try {
      tcp = this.#settings.createConnection(this.target);
    } catch (error) {
      this.#fail(`${this.label}: cannot connect (${(error as Error).message})`);
      return;
    }
    this.#tcp = tcp;
    tcp.setNoDelay(true);
    tcp.on('connect', () => this.#onConnect());
    tcp.on('data', (chunk: Buffer) => this.#onTargetData(chunk));
    tcp.on('end', () => this.#onTargetEnd());
    tcp.on('drain', () => this.#onTargetDrain());
    tcp.on('error', (error: NodeJS.ErrnoException) => { this.#tcpError ??= error; });
    tcp.on('close', () => this.#onTargetClose());
    this.#connectTimer = setTimeout(() => {
      this.#timedOut = true;
      tcp.destroy();
    }, this.#settings.connectTimeoutMs);
  }

  // ---- client -> target ----

  fromClient(piece: Buffer, isBinary: boolean, isLast: boolean): void {
    const tcp = this.#tcp;
    if (this.#inputStopped || tcp === undefined || tcp.destroyed || tcp.writableEnded) return;
    let bytes = piece;
    if (this.base64) {
      if (isBinary) {
        this.#stopInput(CloseCode.UnsupportedData, 'binary message on a base64 connection');
        return;
      }
      const decoded = this.#decodeBase64(piece, isLast);
      if (decoded === undefined) {
        this.#stopInput(CloseCode.InvalidPayload, 'invalid base64');
        return;
      }
      bytes = decoded;
    }
    if (bytes.length === 0) return;
    this.bytesToTarget += bytes.length;
    // Before the connection is up, the socket holds what is written, up to the same bound.
    if (!tcp.write(bytes) && !this.#clientPaused) {
      this.#clientPaused = true;
      this.ws.pause();
    }
  }

  #decodeBase64(piece: Buffer, isLast: boolean): Buffer | undefined {
    const text = this.#carry + piece.toString('latin1');
    const usable = isLast ? text.length : text.length - (text.length % 4);
    this.#carry = isLast ? '' : text.slice(usable);
    const body = text.slice(0, usable);
    if (isLast ? body.length % 4 !== 0 || !BASE64_FINAL.test(body) : !BASE64_BODY.test(body)) return undefined;
    return Buffer.from(body, 'base64');
  }

  #onTargetDrain(): void {
    if (!this.#clientPaused) return;
    this.#clientPaused = false;
    if (!this.#clientClosed) this.ws.resume();
  }

  // ---- target -> client ----

  #onConnect(): void {
    clearTimeout(this.#connectTimer);
    this.#connected = true;
    this.#settings.log(`tcp-bridge: ${this.ws.remoteAddress} -> ${this.label}: connected${this.base64 ? ' (base64)' : ''}`);
  }

  #onTargetData(chunk: Buffer): void {
    if (this.#clientClosed) return; // read and dropped: the target is being given its grace to close
    this.bytesFromTarget += chunk.length;
    const ws = this.ws;
    const below = this.base64 ? ws.send(chunk.toString('base64'), false) : ws.send(chunk, true);
    // false: queued but over maxBufferedBytes (a drain follows), or the WebSocket is closing (nothing to do).
    if (!below && ws.readyState === ReadyState.Open) this.#tcp?.pause();
  }

  clientDrained(): void {
    const tcp = this.#tcp;
    if (tcp !== undefined && !tcp.destroyed) tcp.resume();
  }

  #onTargetEnd(): void {
    this.#tcpEnded = true;
    // What the target sent before its FIN is already queued on the WebSocket; the close frame follows it.
    this.#closeClient(CloseCode.Normal, 'target closed');
  }

  #onTargetClose(): void {
    this.#tcpClosed = true;
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#graceTimer);
    this.#inputStopped = true;
    if (this.#clientClosed) {
      this.#settings.links.delete(this);
      return;
    }
    const error = this.#tcpError;
    if (this.#timedOut) this.#fail(`${this.label}: connect timed out after ${this.#settings.connectTimeoutMs} ms`);
    else if (error !== undefined) this.#fail(this.#connected ? `${this.label}: ${errorName(error)}` : connectFailure(this.label, error));
    else if (!this.#tcpEnded) this.#fail(`${this.label}: connection lost`);
    // else: the target's FIN already closed the client with 1000.
  }

  // ---- closing ----

  clientClosed(code: number, reason: string): void {
    this.#clientClosed = true;
    this.#inputStopped = true;
    const how = reason === '' ? `${code}` : `${code} "${reason}"`;
    this.#settings.log(`tcp-bridge: ${this.ws.remoteAddress} -> ${this.label}: closed ${how}, ${this.bytesToTarget} bytes to target, ${this.bytesFromTarget} from it`);
    const tcp = this.#tcp;
    if (tcp === undefined || this.#tcpClosed) {
      this.#settings.links.delete(this);
      return;
    }
    if (!this.#connected) {
      tcp.destroy();
      return;
    }
    // Half-close: what the client sent is flushed, then FIN; the target's answer is read and dropped until it
    // closes too, or the grace period ends.
    tcp.resume();
    if (!tcp.writableEnded) tcp.end();
    this.#graceTimer = setTimeout(() => tcp.destroy(), this.#settings.closeGraceMs);
    this.#graceTimer.unref();
  }

  #stopInput(code: number, reason: string): void {
    this.#inputStopped = true;
    this.#closeClient(code, reason);
  }

  /** The target failed: 1011 with the cause, and a log line. */
  #fail(reason: string): void {
    this.#settings.log(`tcp-bridge: ${this.ws.remoteAddress} -> ${reason}`);
    this.#closeClient(CloseCode.InternalError, reason);
  }

  #closeClient(code: number, reason: string): void {
    if (this.#clientClosed) return;
    // A paused client could not read the answer to our close frame.
    if (this.#clientPaused) {
      this.#clientPaused = false;
      this.ws.resume();
    }
    try {
      this.ws.close(code, truncateCloseReason(reason));
    } catch {
      this.ws.terminate();
    }
  }
}

/** net.connect with the socket's write buffer sized to the bound, so write() reports backpressure at it. */
function connectTo(target: TcpTarget, writableHighWaterMark: number): net.Socket {
  // Node's Socket passes stream options through; @types/node does not list this one.
  const options: net.NetConnectOpts & { writableHighWaterMark: number } = { ...target, writableHighWaterMark };
  return net.connect(options);
}

function errorName(error: NodeJS.ErrnoException): string {
  return error.code ?? error.message;
}

/** The 1011 reason for a connection that never came up: names the cause (refused, unresolvable, unreachable). */
function connectFailure(label: string, error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case 'ECONNREFUSED': return `${label}: connection refused (ECONNREFUSED)`;
    case 'ENOTFOUND': case 'EAI_AGAIN': case 'EAI_FAIL': case 'EAI_NONAME': return `${label}: cannot resolve host (${error.code})`;
    case 'ENOENT': return `${label}: no such socket (ENOENT)`;
    case 'EHOSTUNREACH': case 'ENETUNREACH': return `${label}: unreachable (${error.code})`;
    case 'ETIMEDOUT': return `${label}: connect timed out (ETIMEDOUT)`;
    default: return `${label}: cannot connect (${errorName(error)})`;
  }
}

function pathOf(url: string): string {
  const at = url.indexOf('?');
  return at === -1 ? url : url.slice(0, at);
}
