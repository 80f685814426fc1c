// What a WebSocket agrees with the code around it: the application's handlers, what the server knows of the
// upgrade request, how the connection is built, and the owner's bookkeeping hooks.
import type { Socket } from 'node:net';
import type { RequestClient } from '../http/client-address.js';
import type { Role } from '../protocol/constants.js';
import type { DeflateAgreement } from '../protocol/deflate-negotiation.js';
import type { TopicBroker } from '../pubsub/broker.js';
import type { TimerSweep } from './timers.js';
import type { WebSocketPolicy } from './policy.js';
import type { WebSocket } from './websocket.js';

export interface WebSocketHandlers<Data = unknown> {
  open?(ws: WebSocket<Data>): void;
  message?(ws: WebSocket<Data>, data: Buffer, isBinary: boolean): void;
  /** The socket's buffer emptied after send() reported backpressure. */
  drain?(ws: WebSocket<Data>): void;
  close?(ws: WebSocket<Data>, code: number, reason: string, wasClean: boolean): void;
  ping?(ws: WebSocket<Data>, data: Buffer): void;
  pong?(ws: WebSocket<Data>, data: Buffer): void;
  /** A protocol violation by the peer or a socket error; `close` follows. */
  error?(ws: WebSocket<Data>, error: Error): void;
  /**
   * With messagePieceBytes set, called instead of `message`: the next piece of a message, in order, each at
   * most that many bytes, the last with isLast (an empty message is one empty last piece).
   */
  messagePiece?(ws: WebSocket<Data>, piece: Buffer, isBinary: boolean, isLast: boolean): void;
  /**
   * The slow-consumer policy did not send a message of `bytes` bytes (published on `topic`, or undefined for
   * a direct send) because unsent bytes would pass maxBackpressureBytes, or because a newer message on the
   * same topic replaced it (keep-latest).
   */
  dropped?(ws: WebSocket<Data>, bytes: number, topic: string | undefined): void;
}

/** What the server knows of the upgrade request, kept on the connection. */
export interface UpgradeRequestInfo {
  /** Route parameters (`/rooms/:room` -> { room }), percent-decoded. */
  params: Readonly<Record<string, string>>;
  /** The request's headers, lower-case names as node parses them. */
  headers: Readonly<Record<string, string | string[] | undefined>>;
  /** Who sent the upgrade, as the server resolved it (with trustProxy, possibly a client behind a proxy). */
  client?: RequestClient;
}


export interface WebSocketInit<Data> {
  socket: Socket;
  role: Role;
  policy: WebSocketPolicy;
  handlers: WebSocketHandlers<Data>;
  sweep: TimerSweep;
  protocol: string;
  url: string;
  data: Data;
  /** Where subscribe()/unsubscribe() register; without one, topics are unavailable. */
  broker?: TopicBroker<WebSocket<any>>;
  request?: UpgradeRequestInfo;
  /** A number unique among the server's connections, for logs. */
  id?: number;
  /** Whoever keeps books on this connection (the server: counts, logs, metrics). */
  owner?: WebSocketOwner;
  /** permessage-deflate as negotiated in the handshake; the codec settings come from the policy. */
  deflate?: DeflateAgreement;
}

/** Bookkeeping hooks, called after the application's own handlers. */
export interface WebSocketOwner {
  closed(ws: WebSocket<any>, code: number, reason: string, wasClean: boolean): void;
  dropped(ws: WebSocket<any>, bytes: number, topic: string | undefined): void;
}
