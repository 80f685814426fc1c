// The reverse proxy for WebSocket: the route's upgrade hook opens the backend's WebSocket before answering the
// client (a backend that is down gets the client a 502, never a 101 and then a close), takes the backend's
// subprotocol as ours, then relays messages both ways with backpressure and carries close codes across.
import type { WebSocketRoute } from '../server/server.js';
import type { UpgradeDecision, UpgradeRequest } from '../server/upgrade.js';
import { connect } from '../client/connect.js';
import { HandshakeError } from '../errors.js';
import { CloseCode, ReadyState } from '../protocol/constants.js';
import { isValidWireCloseCode, truncateCloseReason } from '../protocol/close.js';
import { requestClient } from '../http/client-address.js';
import { DEFAULT_POLICY, resolvePolicy, type WebSocketPolicyOptions } from '../transport/policy.js';
import type { WebSocket, WebSocketHandlers } from '../transport/websocket.js';
import { backendHandshakeHeaders, type ClientHop } from './proxy-headers.js';
import { mapRequestTarget, resolveProxySettings, type ProxyOptions } from './proxy-target.js';

/** What a proxied connection carries as `ws.data`. */
export interface ProxyWebSocketData {
  /** The proxy's own WebSocket to the backend (client role). */
  readonly backend: WebSocket<ProxyWebSocketData>;
  /** Where this connection was forwarded: ws(s)://backend/base/rest?query. */
  readonly backendUrl: string;
}

/** One proxied connection's state, shared by its two WebSockets as their `data`. */
class Relay implements ProxyWebSocketData {
  readonly backendUrl: string;
  #backend: WebSocket<ProxyWebSocketData> | undefined;
  /** The client's WebSocket, once the server opened it. */
  client: WebSocket<ProxyWebSocketData> | undefined;
  /** Messages the backend sent before the client's WebSocket opened (only what came with the 101). */
  early: Array<{ data: Buffer; isBinary: boolean }> | undefined;
  /** The backend closed before the client's WebSocket opened: the close the client gets on opening. */
  backendClose: readonly [number, string] | undefined;
  /** The client's connection went away before its WebSocket opened. */
  clientLeft = false;
  /** We stopped reading the backend because the client's side is full; the client's `drain` resumes it. */
  backendPaused = false;
  /** We stopped reading the client because the backend's side is full; the backend's `drain` resumes it. */
  clientPaused = false;
  /** Stops watching the client's socket for a departure during the handshake. */
  stopWatching: (() => void) | undefined;

  constructor(backendUrl: string) {
    this.backendUrl = backendUrl;
  }

  get backend(): WebSocket<ProxyWebSocketData> {
    if (this.#backend === undefined) throw new Error('the backend WebSocket is not open yet');
    return this.#backend;
  }

  set backend(ws: WebSocket<ProxyWebSocketData>) {
    this.#backend = ws;
  }

  get hasBackend(): boolean {
    return this.#backend !== undefined;
  }
}

const relayOf = (ws: WebSocket<ProxyWebSocketData>): Relay => ws.data as Relay;

/**
 * Queues `data` on `to`. Returns false when `to` is over its backpressure limit (the caller pauses the
 * side it read from until `to` drains). Once `to` is closing, messages are dropped: they could not be sent,
 * and pausing the sender would only keep it from reading its own closing handshake.
 */
function relayMessage(to: WebSocket<ProxyWebSocketData>, data: Buffer, isBinary: boolean): boolean {
  if (to.readyState !== ReadyState.Open) return true;
  return to.send(data, isBinary) || to.readyState !== ReadyState.Open;
}

/**
 * The close the backend gets when the client's side ended. RFC 6455 §7.4.1: 1005, 1006 and 1015 are never
 * sent, so "no status" becomes 1000 and a client that vanished becomes 1001 (going away).
 */
export function backendCloseFor(code: number, reason: string): readonly [number, string] {
  if (code === CloseCode.Abnormal || code === CloseCode.TlsHandshake) return [CloseCode.GoingAway, 'client went away'];
  if (code === CloseCode.NoStatus) return [CloseCode.Normal, ''];
  return isValidWireCloseCode(code) ? [code, truncateCloseReason(reason)] : [CloseCode.GoingAway, 'client went away'];
}

/** The close the client gets when the backend's side ended: a backend that vanished is 1014 (bad gateway). */
export function clientCloseFor(code: number, reason: string): readonly [number, string] {
  if (code === CloseCode.Abnormal || code === CloseCode.TlsHandshake) return [CloseCode.BadGateway, 'backend connection lost'];
  if (code === CloseCode.NoStatus) return [CloseCode.Normal, ''];
  return isValidWireCloseCode(code) ? [code, truncateCloseReason(reason)] : [CloseCode.BadGateway, 'backend connection lost'];
}

function closeOpen(ws: WebSocket<ProxyWebSocketData>, [code, reason]: readonly [number, string]): void {
  if (ws.readyState !== ReadyState.Open) return;
  // It may be paused for backpressure: it must read again to see the peer's answer to our close.
  ws.resume();
  ws.close(code, reason);
}

/**
 * Mount with `app.websocket('/legacy/*', proxyWebSocketRoute({ target: 'http://127.0.0.1:9000/app', prefix: '/legacy' }))`.
 * Throws TypeError/RangeError for bad options.
 */
export function proxyWebSocketRoute(options: ProxyOptions): WebSocketRoute<ProxyWebSocketData> {
  const settings = resolveProxySettings(options);
  const hopPolicy = hopPolicyFor(settings.webSocket);
  const scheme = settings.secure ? 'wss:' : 'ws:';
  const log = settings.log;

  const backendHandlers: WebSocketHandlers<ProxyWebSocketData> = {
    message(backend, data, isBinary) {
      const relay = relayOf(backend);
      const client = relay.client;
      if (client === undefined) {
        (relay.early ??= []).push({ data, isBinary });
        return;
      }
      if (!relayMessage(client, data, isBinary)) {
        backend.pause();
        relay.backendPaused = true;
      }
    },
    drain(backend) {
      const relay = relayOf(backend);
      if (relay.clientPaused) {
        relay.clientPaused = false;
        relay.client?.resume();
      }
    },
    close(backend, code, reason) {
      const relay = relayOf(backend);
      const close = clientCloseFor(code, reason);
      if (relay.client === undefined) relay.backendClose = close;
      else closeOpen(relay.client, close);
    },
    error(backend, error) {
      log(`proxy: websocket ${backend.url}: backend error: ${error.message}`);
    },
  };

  const upgrade = async (request: UpgradeRequest): Promise<UpgradeDecision<ProxyWebSocketData>> => {
    const mapped = mapRequestTarget(request.url, settings);
    if (mapped.kind === 'outside') return { status: 404, message: 'not under the proxy prefix' };
    if (mapped.kind === 'dot-segment') return { status: 400, message: 'dot segments in the path' };
    const backendUrl = `${scheme}//${settings.host}${mapped.path}`;
    const relay = new Relay(backendUrl);
    // If the client leaves while we dial, the backend connection must not outlive it.
    const socket = request.request.socket;
    const onClientGone = (): void => {
      relay.clientLeft = true;
      if (relay.hasBackend) closeOpen(relay.backend, [CloseCode.GoingAway, 'client went away']);
    };
    socket.once('close', onClientGone);
    relay.stopWatching = () => socket.off('close', onClientGone);
    const hop: ClientHop = {
      // The peer, not the client the server resolved: each hop appends the address it got the request from.
      remoteAddress: request.peerAddress,
      peerTrusted: requestClient(request.request).peerTrusted,
      secure: (socket as typeof socket & { encrypted?: boolean }).encrypted === true,
      host: request.headers.host, httpVersion: '1.1',
    };
    const origin = request.headers.origin;
    let backend: WebSocket<ProxyWebSocketData>;
    try {
      backend = await connect<ProxyWebSocketData>(backendUrl, {
        ...hopPolicy,
        protocols: [...new Set(request.protocols)],
        ...(origin !== undefined && { origin }),
        headers: backendHandshakeHeaders(request.headers, hop, settings),
        handshakeTimeoutMs: settings.timeoutMs,
        handlers: backendHandlers,
        data: relay,
        ...(settings.tls.rejectUnauthorized !== undefined && { rejectUnauthorized: settings.tls.rejectUnauthorized }),
        ...(settings.tls.ca !== undefined && { ca: settings.tls.ca }),
      });
    } catch (error) {
      relay.stopWatching();
      const refusal = refusalFor(error);
      log(`proxy: websocket ${request.url} -> ${backendUrl}: ${refusal.detail} (${refusal.status})`);
      return { status: refusal.status, message: refusal.message };
    }
    relay.backend = backend;
    if (relay.clientLeft) {
      closeOpen(backend, [CloseCode.GoingAway, 'client went away']);
      return { status: 502, message: 'client went away' };
    }
    // Nothing is read from the backend until the client's WebSocket is open to take it (open() resumes).
    backend.pause();
    return backend.protocol === '' ? { data: relay } : { data: relay, protocol: backend.protocol };
  };

  return {
    ...hopPolicy,
    upgrade,
    open(client) {
      const relay = relayOf(client);
      relay.stopWatching?.();
      relay.stopWatching = undefined;
      relay.client = client;
      const early = relay.early;
      relay.early = undefined;
      for (const message of early ?? []) {
        if (!relayMessage(client, message.data, message.isBinary)) relay.backendPaused = true;
      }
      if (relay.backendClose !== undefined) {
        closeOpen(client, relay.backendClose);
        return;
      }
      if (!relay.backendPaused) relay.backend.resume();
    },
    message(client, data, isBinary) {
      const relay = relayOf(client);
      if (!relayMessage(relay.backend, data, isBinary)) {
        client.pause();
        relay.clientPaused = true;
      }
    },
    drain(client) {
      const relay = relayOf(client);
      if (relay.backendPaused) {
        relay.backendPaused = false;
        relay.backend.resume();
      }
    },
    close(client, code, reason) {
      closeOpen(relayOf(client).backend, backendCloseFor(code, reason));
    },
    error(client, error) {
      log(`proxy: websocket ${client.url}: client error: ${error.message}`);
    },
  };
}

/**
 * The policy both hops run under: the caller's, whole messages (a message is relayed once it is complete),
 * and a slow-consumer cap that the relay's own pausing keeps us under. After send() reports backpressure we
 * stop reading the other side, but what was already read still arrives: at most a message of maxMessageBytes
 * and the rest of one socket read. Past the cap the connection is closed (1008), never silently thinned.
 */
function hopPolicyFor(webSocket: WebSocketPolicyOptions): WebSocketPolicyOptions {
  const policy = resolvePolicy(DEFAULT_POLICY, webSocket);
  const maxBackpressureBytes = webSocket.maxBackpressureBytes
    ?? Math.max(DEFAULT_POLICY.maxBackpressureBytes, policy.backpressureBytes + 2 * policy.maxMessageBytes + 64 * 1024);
  return { ...webSocket, messagePieceBytes: 0, maxBackpressureBytes, slowConsumerPolicy: webSocket.slowConsumerPolicy ?? 'close' };
}

/**
 * Why the backend's WebSocket did not open, as the status the client is refused with: the backend's own
 * refusal when it was a 4xx (401, 403, 404 mean the same through us), 504 when it did not answer in time,
 * 502 for everything else (refused or reset connection, 5xx, a broken handshake).
 */
function refusalFor(error: unknown): { status: number; message: string; detail: string } {
  if (error instanceof HandshakeError) {
    if (error.code === 'ERR_HANDSHAKE_TIMEOUT') return { status: 504, message: 'backend timed out', detail: error.message };
    if (error.code === 'ERR_HANDSHAKE_STATUS' && error.status >= 400 && error.status <= 499) {
      return { status: error.status, message: `backend refused the upgrade (${error.status})`, detail: error.message };
    }
    return { status: 502, message: 'bad gateway', detail: error.message };
  }
  const failure = error as NodeJS.ErrnoException;
  return { status: 502, message: 'bad gateway', detail: `backend unreachable: ${failure?.code ?? failure?.message ?? String(error)}` };
}

