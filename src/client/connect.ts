// connect(): the client role. Checks the options, runs the opening handshake (dial.ts), follows redirects when
// asked (redirects.ts), verifies the 101 answer with the protocol core, and returns the same WebSocket type the
// server uses. The reference is docs/client.md.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { HandshakeError } from '../errors.js';
import { createClientHandshake, verifyServerResponse, type ClientHandshake } from '../protocol/handshake.js';
import { acceptDeflateResponse, deflateOffer, type DeflateAgreement, type DeflateNegotiationOptions } from '../protocol/deflate-negotiation.js';
import { TimerSweep, sweepResolutionFor } from '../transport/timers.js';
import { WebSocket, type WebSocketHandlers } from '../transport/websocket.js';
import { checkInboxOptions, type MessageInboxOptions } from '../transport/message-inbox.js';
import { DEFAULT_POLICY, resolvePolicy, type WebSocketPolicy, type WebSocketPolicyOptions } from '../transport/policy.js';
import { parseClientUrl, type ClientTarget } from './client-url.js';
import { dial, type ClientTlsOptions } from './dial.js';
import { headersFor, isRedirectStatus, locationOf, nextHop, type RedirectChain } from './redirects.js';

export type { ClientTlsOptions } from './dial.js';

export interface ConnectOptions<Data = undefined> extends WebSocketPolicyOptions, ClientTlsOptions, MessageInboxOptions {
  /** Subprotocols to offer, in order of preference. */
  protocols?: readonly string[];
  /** Extra request headers. The handshake's own fields (Upgrade, Sec-WebSocket-*) cannot be overridden. */
  headers?: Readonly<Record<string, string>>;
  origin?: string;
  /** Fail unless the 101 answer has arrived by then, counting every redirect on the way. Default 10 s. */
  handshakeTimeoutMs?: number;
  /** Follow up to this many 301/302/303/307/308 answers. Default 0: a redirect rejects with its Location. */
  followRedirects?: number;
  /** Connect over this Unix socket instead of TCP; the URL's host still goes in the Host header (and SNI). */
  socketPath?: string;
  /** Without a `message` handler, messages wait for `ws.messages()` from the start (see docs/client.md). */
  handlers?: WebSocketHandlers<Data>;
  data?: Data;
}

export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

/** A client's defaults: the server's, but no keep-alive pings unless asked for. */
const CLIENT_POLICY: WebSocketPolicy = { ...DEFAULT_POLICY, pingIntervalMs: 0 };

// Client connections share one sweep per resolution, like a server's connections share one.
const sweeps = new Map<number, TimerSweep>();

function sweepFor(policy: WebSocketPolicy): TimerSweep {
  const resolution = sweepResolutionFor([policy.pingIntervalMs, policy.idleTimeoutMs, policy.closeTimeoutMs]);
  let sweep = sweeps.get(resolution);
  if (sweep === undefined) sweeps.set(resolution, (sweep = new TimerSweep(resolution)));
  return sweep;
}

/** Everything connect() works out before dialing; every check that can fail synchronously is made here. */
interface ConnectPlan {
  readonly target: ClientTarget;
  readonly policy: WebSocketPolicy;
  readonly deflateWishes: DeflateNegotiationOptions | undefined;
  readonly handshakeOptions: { protocols?: readonly string[]; origin?: string; extensions?: string };
  readonly headers: Readonly<Record<string, string>>;
  readonly handshakeTimeoutMs: number;
  readonly followRedirects: number;
}

function plan<Data>(url: string | URL, options: ConnectOptions<Data>): ConnectPlan {
  if (options.socketPath !== undefined && (typeof options.socketPath !== 'string' || options.socketPath === '')) {
    throw new TypeError('socketPath must be a non-empty string');
  }
  if (options.servername !== undefined && typeof options.servername !== 'string') throw new TypeError('servername must be a string');
  const target = parseClientUrl(url, options.socketPath);
  if (options.socketPath !== undefined && target.href.includes('+unix:')) {
    throw new TypeError(`${target.href} names its socket already; socketPath goes with a ws:// or wss:// URL`);
  }
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  if (typeof handshakeTimeoutMs !== 'number' || !(handshakeTimeoutMs > 0) || !Number.isFinite(handshakeTimeoutMs)) {
    throw new RangeError(`handshakeTimeoutMs must be a positive number of milliseconds (got ${String(handshakeTimeoutMs)})`);
  }
  const followRedirects = options.followRedirects ?? 0;
  if (!Number.isSafeInteger(followRedirects) || followRedirects < 0) {
    throw new RangeError(`followRedirects must be a whole number, 0 or more (got ${String(followRedirects)})`);
  }
  checkInboxOptions(options);
  const policy = resolvePolicy(CLIENT_POLICY, options);
  let deflateWishes: DeflateNegotiationOptions | undefined;
  if (policy.perMessageDeflate) {
    deflateWishes = {
      serverNoContextTakeover: policy.deflateServerNoContextTakeover,
      clientNoContextTakeover: policy.deflateClientNoContextTakeover,
      serverMaxWindowBits: policy.deflateServerMaxWindowBits,
      clientMaxWindowBits: Math.max(9, policy.deflateClientMaxWindowBits),
    };
  }
  const handshakeOptions = {
    ...(options.protocols !== undefined && { protocols: options.protocols }),
    ...(options.origin !== undefined && { origin: options.origin }),
    ...(deflateWishes !== undefined && { extensions: deflateOffer(deflateWishes) }),
  };
  createClientHandshake(handshakeOptions); // throws TypeError for a subprotocol that is not a token, or repeated
  const headers = options.headers ?? {};
  if (typeof headers !== 'object' || headers === null) throw new TypeError('headers must be an object of header names to string values');
  return { target, policy, deflateWishes, handshakeOptions, headers, handshakeTimeoutMs, followRedirects };
}

/**
 * Opens a WebSocket connection. Resolves once the 101 answer is verified; rejects with TypeError or RangeError
 * for bad arguments (before any I/O), HandshakeError when the server's answer is refused, and SwitchyardError
 * (keeping node's code and its error as `cause`) when the connection itself fails.
 */
export function connect<Data = undefined>(url: string | URL, options: ConnectOptions<Data> = {}): Promise<WebSocket<Data>> {
  let connectPlan: ConnectPlan;
  try {
    connectPlan = plan(url, options);
  } catch (error) {
    return Promise.reject(error);
  }
  const handshakeTimeoutMs = connectPlan.handshakeTimeoutMs;

  return new Promise((resolve, reject) => {
    let settled = false;
    let abandon: (() => void) | undefined;
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      abandon?.();
      reject(error);
    };
    // One deadline for the whole chain of redirects.
    const timer = setTimeout(() => fail(new HandshakeError('ERR_HANDSHAKE_TIMEOUT', 0, `no handshake answer within ${handshakeTimeoutMs} ms`)), handshakeTimeoutMs);

    const attempt = (target: ClientTarget, carried: Readonly<Record<string, string>>, chain: RedirectChain): void => {
      const handshake = createClientHandshake(connectPlan.handshakeOptions);
      const onAnswer = (response: IncomingMessage): void => {
        const status = response.statusCode ?? 0;
        try {
          if (!isRedirectStatus(status)) {
            const location = status >= 300 && status < 400 ? locationOf(response.headers, target) : undefined;
            throw new HandshakeError('ERR_HANDSHAKE_STATUS', status, `server answered ${status} ${response.statusMessage ?? ''}`.trimEnd() + ' instead of 101', {
              headers: response.headers, ...(location !== undefined && { location }),
            });
          }
          const next = nextHop(status, response.statusMessage ?? '', response.headers, target, chain);
          const nextChain = { original: chain.original, remaining: chain.remaining - 1, followed: chain.followed + 1 };
          // Deferred: the answered request is torn down first, and a redirect loop cannot grow the stack.
          setImmediate(() => { if (!settled) attempt(next, headersFor(next, chain, carried), nextChain); });
        } catch (error) {
          fail(error as Error);
        }
      };
      const onUpgrade = (response: IncomingMessage, socket: Socket, head: Buffer): void => {
        let ws: WebSocket<Data>;
        try {
          ws = openWebSocket(connectPlan, options, response, socket, target, handshake);
        } catch (error) {
          socket.destroy();
          fail(error as Error);
          return;
        }
        settled = true;
        clearTimeout(timer);
        resolve(ws);
        ws.start(head);
      };
      try {
        abandon = dial(target, requestHeaders(target, carried, handshake), tlsFor(target, chain, options), { upgrade: onUpgrade, answer: onAnswer, error: fail });
      } catch (error) {
        fail(error as Error);
      }
    };
    const target = connectPlan.target;
    attempt(target, connectPlan.headers, { original: target, remaining: connectPlan.followRedirects, followed: 0 });
  });
}

/** Verifies the 101 answer and makes the WebSocket over its socket (not started yet). Throws HandshakeError. */
function openWebSocket<Data>(made: ConnectPlan, options: ConnectOptions<Data>, response: IncomingMessage, socket: Socket, target: ClientTarget, handshake: ClientHandshake): WebSocket<Data> {
  const { policy, deflateWishes } = made;
  const verified = verifyServerResponse({ status: response.statusCode ?? 0, headers: response.headers }, handshake, {
    protocols: options.protocols ?? [], extensions: deflateWishes === undefined ? [] : ['permessage-deflate'],
  });
  let deflate: DeflateAgreement | undefined;
  if (deflateWishes !== undefined) deflate = acceptDeflateResponse(response.headers['sec-websocket-extensions'], deflateWishes, response.statusCode ?? 0);
  const handlers = options.handlers ?? {};
  const ws = new WebSocket<Data>({
    socket, role: 'client', policy, handlers, sweep: sweepFor(policy),
    protocol: verified.protocol, url: target.href, data: options.data as Data, ...(deflate !== undefined && { deflate }),
  });
  // No message handler: messages wait for ws.messages() from the first one on (none lost before the loop starts).
  if (handlers.message === undefined && handlers.messagePiece === undefined && policy.messagePieceBytes === 0) {
    ws.openInbox(options.inboxHighWaterBytes === undefined ? undefined : { inboxHighWaterBytes: options.inboxHighWaterBytes });
  }
  return ws;
}

/** The TLS options for one hop: an explicit `servername` names the server connect() was given, no other. */
function tlsFor(target: ClientTarget, chain: RedirectChain, options: ClientTlsOptions): ClientTlsOptions {
  if (options.servername === undefined || target.authority === chain.original.authority) return options;
  const { servername: _dropped, ...others } = options;
  return others;
}

/**
 * The request's header fields: the caller's (less any the handshake sets itself), Basic credentials from the
 * URL unless an Authorization field is given, then the handshake's own fields.
 */
function requestHeaders(target: ClientTarget, carried: Readonly<Record<string, string>>, handshake: ClientHandshake): Record<string, string> {
  const own = new Set(Object.keys(handshake.headers).map((name) => name.toLowerCase()));
  const headers: Record<string, string> = {};
  let hasAuthorization = false;
  for (const [name, value] of Object.entries(carried)) {
    const lower = name.toLowerCase();
    if (own.has(lower)) continue;
    if (lower === 'authorization') hasAuthorization = true;
    headers[name] = value;
  }
  if (!hasAuthorization && (target.username !== '' || target.password !== '')) {
    headers['Authorization'] = `Basic ${Buffer.from(`${target.username}:${target.password}`).toString('base64')}`;
  }
  return Object.assign(headers, handshake.headers);
}
