// The upgrade pipeline: from an HTTP Upgrade request to an open WebSocket, or to the refusal the request
// earns: no route 404, broken handshake 400/426, foreign Origin 403, over a connection limit 503, or whatever
// the route's `upgrade` hook decides (sync or async).
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { acceptServerHandshake, offeredProtocols, rejection, renderResponse, type HandshakeResponse } from '../protocol/handshake.js';
import { isToken } from '../protocol/header-tokens.js';
import { negotiateDeflateAsServer, type DeflateAgreement } from '../protocol/deflate-negotiation.js';
import { resolveRequestClient, type PeerSocket, type RequestClient } from '../http/client-address.js';
import type { Params } from '../http/router.js';
import type { WebSocketHandlers, WebSocketPolicy } from '../transport/websocket.js';
import type { HandshakeRejectReason } from './observer.js';

/** What an `upgrade` hook sees of the request. */
export interface UpgradeRequest {
  readonly url: string;
  readonly path: string;
  /** Route parameters, percent-decoded. */
  readonly params: Params;
  readonly query: URLSearchParams;
  readonly headers: IncomingMessage['headers'];
  /** The client's address: the peer's, or with trustProxy the one a trusted proxy named in X-Forwarded-For. */
  readonly remoteAddress: string;
  /** The TCP peer's address (the proxy's, behind one); equal to remoteAddress unless it was forwarded. */
  readonly peerAddress: string;
  /** The subprotocols the client offered, in its order. */
  readonly protocols: readonly string[];
  /** The raw request, for anything else (cookies are in headers.cookie). */
  readonly request: IncomingMessage;
}

/** Accept: nothing, or data to attach (and optionally the subprotocol to select among those offered). */
export interface UpgradeAccept<Data> {
  data?: Data;
  protocol?: string;
}

/** Refuse with an HTTP status (400-599) and a short message. */
export interface UpgradeReject {
  status: number;
  message?: string;
  headers?: Readonly<Record<string, string>>;
}

export type UpgradeDecision<Data> = void | undefined | UpgradeAccept<Data> | UpgradeReject;

export interface WebSocketRouteOptions<Data> {
  /** Subprotocols this route speaks, in order of preference; only one the client offered is selected. */
  protocols?: readonly string[];
  /** Origins allowed to connect (exact match, e.g. "https://example.com"; "*" allows any); others get 403. */
  allowedOrigins?: readonly string[];
  /** Most connections open at once on this route (LimitWebSockets); 503 beyond. 0 = no limit. */
  maxConnections?: number;
  /** Runs before the 101: authenticate, attach data, or refuse. May return a promise. */
  upgrade?(request: UpgradeRequest): UpgradeDecision<Data> | Promise<UpgradeDecision<Data>>;
}

/** A registered WebSocket route, resolved. */
export interface ResolvedRoute {
  readonly pattern: string;
  readonly handlers: WebSocketHandlers<any>;
  readonly policy: WebSocketPolicy;
  readonly protocols: readonly string[];
  readonly allowedOrigins: readonly string[] | undefined;
  readonly maxConnections: number;
  readonly upgrade: WebSocketRouteOptions<any>['upgrade'];
  /** Connections open on this route plus upgrades admitted and still in their hook. */
  openCount: number;
}

export interface Refusal {
  status: number;
  reason: HandshakeRejectReason;
  detail: string;
  headers?: Array<[string, string]>;
}

export type Admission =
  | { accepted: true; protocol: string; data: unknown; response: HandshakeResponse; deflate: DeflateAgreement | undefined }
  | { accepted: false; refusal: Refusal };

/** Checks everything that does not depend on the hook: handshake, Origin, connection limits. */
export function checkUpgrade(req: IncomingMessage, route: ResolvedRoute, serverOpen: number, serverMax: number):
  { refusal: Refusal } | { protocol: string; response: HandshakeResponse; deflate: DeflateAgreement | undefined } {
  const result = acceptServerHandshake({ method: req.method ?? '', httpVersion: req.httpVersion, headers: req.headers }, { protocols: route.protocols });
  if (!result.accepted) {
    const refusal: Refusal = {
      status: result.response.status,
      reason: result.response.status === 426 ? 'version' : 'bad-handshake',
      detail: result.error.message,
    };
    if (result.response.status === 426) refusal.headers = [['Upgrade', 'websocket'], ['Sec-WebSocket-Version', '13']];
    return { refusal };
  }
  const origin = req.headers.origin;
  // Browsers always send Origin; a request without one is not from a page, so Origin checks do not apply.
  if (route.allowedOrigins !== undefined && origin !== undefined && !route.allowedOrigins.includes('*') && !route.allowedOrigins.includes(origin)) {
    return { refusal: { status: 403, reason: 'origin', detail: `origin ${origin} is not allowed` } };
  }
  if (route.maxConnections > 0 && route.openCount >= route.maxConnections) {
    return { refusal: { status: 503, reason: 'route-limit', detail: `route ${route.pattern} has ${route.maxConnections} connections open` } };
  }
  if (serverMax > 0 && serverOpen >= serverMax) {
    return { refusal: { status: 503, reason: 'server-limit', detail: `server has ${serverMax} connections open` } };
  }
  let deflate: DeflateAgreement | undefined;
  const policy = route.policy;
  if (policy.perMessageDeflate) {
    // RFC 7692 §5: answer the first offer we can honour; a malformed or unacceptable offer means no compression.
    const negotiated = negotiateDeflateAsServer(req.headers['sec-websocket-extensions'], {
      serverNoContextTakeover: policy.deflateServerNoContextTakeover,
      clientNoContextTakeover: policy.deflateClientNoContextTakeover,
      serverMaxWindowBits: policy.deflateServerMaxWindowBits,
      clientMaxWindowBits: policy.deflateClientMaxWindowBits,
    });
    if (negotiated !== undefined) {
      deflate = negotiated.agreement;
      result.response.headers.push(['Sec-WebSocket-Extensions', negotiated.response]);
    }
  }
  return { protocol: result.protocol, response: result.response, deflate };
}

/** Runs the route's hook and turns its decision into an admission (the 101 text, with the protocol chosen). */
export async function decideUpgrade(req: IncomingMessage, resolved: RequestClient | undefined, route: ResolvedRoute, path: string, params: Params, protocol: string, response: HandshakeResponse, deflate: DeflateAgreement | undefined): Promise<Admission> {
  if (route.upgrade === undefined) return { accepted: true, protocol, data: undefined, response, deflate };
  // Without trustProxy the server resolved nothing: the peer is the client.
  const client = resolved ?? resolveRequestClient(req.socket as PeerSocket, req.headers);
  const offered = offeredProtocols(req.headers) ?? [];
  const queryAt = (req.url ?? '').indexOf('?');
  const request: UpgradeRequest = {
    url: req.url ?? '/', path, params,
    query: new URLSearchParams(queryAt === -1 ? '' : (req.url ?? '').slice(queryAt + 1)),
    headers: req.headers, remoteAddress: client.address, peerAddress: client.peerAddress, protocols: offered, request: req,
  };
  let decision: UpgradeDecision<unknown>;
  try {
    decision = await route.upgrade(request);
  } catch (error) {
    process.emitWarning(`upgrade hook of ${route.pattern} threw: ${(error as Error)?.stack ?? String(error)}`, 'SwitchyardWarning');
    return { accepted: false, refusal: { status: 500, reason: 'hook-error', detail: 'upgrade hook failed' } };
  }
  if (decision !== undefined && decision !== null && typeof decision === 'object' && 'status' in decision) {
    const valid = Number.isInteger(decision.status) && decision.status >= 400 && decision.status <= 599;
    const refusal: Refusal = {
      status: valid ? decision.status : 500,
      reason: valid ? 'upgrade-hook' : 'hook-error',
      detail: valid ? (decision.message ?? 'refused') : `upgrade hook returned status ${String(decision.status)}`,
    };
    if (decision.headers !== undefined) {
      const headers = Object.entries(decision.headers);
      // Header names must be tokens and values free of CR, LF and NUL, or a hook echoing user input could
      // split the response.
      if (!headers.every(([name, value]) => isToken(name) && typeof value === 'string' && !/[\r\n\0]/.test(value))) {
        process.emitWarning(`upgrade hook of ${route.pattern} returned an invalid response header`, 'SwitchyardWarning');
        return { accepted: false, refusal: { status: 500, reason: 'hook-error', detail: 'upgrade hook returned an invalid header' } };
      }
      refusal.headers = headers;
    }
    return { accepted: false, refusal };
  }
  const accept = (decision ?? {}) as UpgradeAccept<unknown>;
  if (accept.protocol !== undefined && accept.protocol !== protocol) {
    // Only a protocol the client offered may ever be selected (RFC 6455 §4.2.2).
    if (!offered.includes(accept.protocol)) {
      process.emitWarning(`upgrade hook of ${route.pattern} selected "${accept.protocol}", which the client did not offer`, 'SwitchyardWarning');
      return { accepted: false, refusal: { status: 500, reason: 'hook-error', detail: 'upgrade hook selected a protocol the client did not offer' } };
    }
    const headers = response.headers.filter(([name]) => name !== 'Sec-WebSocket-Protocol');
    headers.push(['Sec-WebSocket-Protocol', accept.protocol]);
    response = { ...response, headers };
    protocol = accept.protocol;
  }
  return { accepted: true, protocol, data: accept.data, response, deflate };
}

/** The HTTP text of a refusal. */
export function renderRefusal(refusal: Refusal): string {
  return renderResponse(rejection(refusal.status, refusal.detail, refusal.headers ?? []));
}

/** Answers a refused upgrade and closes; a peer that never reads is dropped after `timeoutMs`. */
export function refuseSocket(socket: Socket, refusal: Refusal, timeoutMs: number, pending: Set<Socket>): void {
  if (socket.destroyed) return;
  pending.add(socket);
  socket.once('close', () => pending.delete(socket));
  socket.end(renderRefusal(refusal));
  socket.setTimeout(timeoutMs, () => socket.destroy());
}
