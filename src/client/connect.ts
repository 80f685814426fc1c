// connect(): the client role. Dials ws:// or wss://, sends the opening handshake through node's HTTP client,
// verifies the 101 answer with the protocol core, and returns the same WebSocket type the server uses.
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type Socket } from 'node:net';
import { HandshakeError } from '../errors.js';
import { createClientHandshake, verifyServerResponse } from '../protocol/handshake.js';
import { acceptDeflateResponse, deflateOffer, type DeflateAgreement, type DeflateNegotiationOptions } from '../protocol/deflate-negotiation.js';
import { TimerSweep, sweepResolutionFor } from '../transport/timers.js';
import { WebSocket, type WebSocketHandlers } from '../transport/websocket.js';
import { DEFAULT_POLICY, resolvePolicy, type WebSocketPolicy, type WebSocketPolicyOptions } from '../transport/policy.js';

export interface ConnectOptions<Data = undefined> extends WebSocketPolicyOptions {
  /** Subprotocols to offer, in order of preference. */
  protocols?: readonly string[];
  /** Extra request headers. */
  headers?: Readonly<Record<string, string>>;
  origin?: string;
  /** Fail if the 101 answer has not arrived by then. Default 10 s. */
  handshakeTimeoutMs?: number;
  handlers?: WebSocketHandlers<Data>;
  data?: Data;
  /** For wss://: verify the server's certificate (default true). */
  rejectUnauthorized?: boolean;
  ca?: string | Buffer | Array<string | Buffer>;
}

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

export function connect<Data = undefined>(url: string | URL, options: ConnectOptions<Data> = {}): Promise<WebSocket<Data>> {
  const target = new URL(url);
  if (target.protocol !== 'ws:' && target.protocol !== 'wss:') {
    return Promise.reject(new TypeError(`connect() takes a ws:// or wss:// URL (got ${target.protocol}//)`));
  }
  if (target.hash !== '') return Promise.reject(new TypeError('a WebSocket URL must not have a fragment (RFC 6455 §3)'));
  const secure = target.protocol === 'wss:';
  const handshakeOptions = {
    ...(options.protocols !== undefined && { protocols: options.protocols }),
    ...(options.origin !== undefined && { origin: options.origin }),
  };
  let handshake: ReturnType<typeof createClientHandshake>;
  let policy: WebSocketPolicy;
  let deflateWishes: DeflateNegotiationOptions | undefined;
  try {
    policy = resolvePolicy(CLIENT_POLICY, options);
    if (policy.perMessageDeflate) {
      deflateWishes = {
        serverNoContextTakeover: policy.deflateServerNoContextTakeover,
        clientNoContextTakeover: policy.deflateClientNoContextTakeover,
        serverMaxWindowBits: policy.deflateServerMaxWindowBits,
        clientMaxWindowBits: Math.max(9, policy.deflateClientMaxWindowBits),
      };
    }
    handshake = createClientHandshake({ ...handshakeOptions, ...(deflateWishes !== undefined && { extensions: deflateOffer(deflateWishes) }) });
  } catch (error) {
    return Promise.reject(error);
  }
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? 10_000;

  return new Promise((resolve, reject) => {
    const requestOptions = {
      method: 'GET',
      host: target.hostname.replace(/^\[|\]$/g, ''),
      port: target.port === '' ? (secure ? 443 : 80) : Number(target.port),
      path: `${target.pathname}${target.search}`,
      headers: { ...options.headers, ...handshake.headers },
      ...(secure && {
        // SNI carries host names only (RFC 6066 §3): an IP address gets none.
        ...(isIP(target.hostname.replace(/^\[|\]$/g, '')) === 0 && { servername: target.hostname }),
        rejectUnauthorized: options.rejectUnauthorized ?? true,
        ...(options.ca !== undefined && { ca: options.ca }),
      }),
    };
    const request = secure ? httpsRequest(requestOptions) : httpRequest(requestOptions);
    let settled = false;
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      request.destroy();
      reject(error);
    };
    const timer = setTimeout(() => fail(new HandshakeError('ERR_HANDSHAKE_TIMEOUT', 0, `no handshake answer within ${handshakeTimeoutMs} ms`)), handshakeTimeoutMs);
    request.on('error', fail);
    request.on('response', (response: IncomingMessage) => {
      response.resume();
      fail(new HandshakeError('ERR_HANDSHAKE_STATUS', response.statusCode ?? 0, `server answered ${response.statusCode} ${response.statusMessage ?? ''} instead of 101`.trimEnd()));
    });
    request.on('upgrade', (response: IncomingMessage, socket: Socket, head: Buffer) => {
      if (settled) {
        socket.destroy();
        return;
      }
      let verified;
      let deflate: DeflateAgreement | undefined;
      try {
        verified = verifyServerResponse({ status: response.statusCode ?? 0, headers: response.headers }, handshake, {
          protocols: options.protocols ?? [], extensions: deflateWishes === undefined ? [] : ['permessage-deflate'],
        });
        if (deflateWishes !== undefined) deflate = acceptDeflateResponse(response.headers['sec-websocket-extensions'], deflateWishes, response.statusCode ?? 0);
      } catch (error) {
        socket.destroy();
        fail(error as Error);
        return;
      }
      settled = true;
      clearTimeout(timer);
      const ws = new WebSocket<Data>({
        socket, role: 'client', policy, handlers: options.handlers ?? {}, sweep: sweepFor(policy),
        protocol: verified.protocol, url: target.href, data: options.data as Data, ...(deflate !== undefined && { deflate }),
      });
      resolve(ws);
      ws.start(head);
    });
    request.end();
  });
}
