// The server's options: the WebSocket policy every route starts from, plus what only a server has.
import type { WebSocketPolicyOptions } from '../transport/policy.js';

export type { WebSocketPolicyOptions } from '../transport/policy.js';

export interface ServerOptions extends WebSocketPolicyOptions {
  /** Directory served as static files; none when absent. */
  root?: string;
  /** A client that has not sent its whole request head by then is dropped (408). Default 10 s. */
  handshakeTimeoutMs?: number;
}


export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
