// The server's options: the WebSocket policy every route starts from, plus what only a server has (files,
// limits on connections, TLS, logs, metrics, shutdown). Each option's unit is in its name.
import type { WebSocketPolicyOptions } from '../transport/policy.js';

export type { WebSocketPolicyOptions } from '../transport/policy.js';

export interface StaticOptions {
  /** Served for a directory. Default "index.html". */
  indexFile?: string;
  /** Cache-Control sent with files. Default "no-cache" (revalidate with ETag / Last-Modified). */
  cacheControl?: string;
  /** List a directory's files when it has no index file. Default false (404). */
  directoryListing?: boolean;
  /** Serve a `.br` or `.gz` sibling when the client accepts that encoding. Default true. */
  precompressed?: boolean;
}

export interface TlsOptions {
  /** PEM certificate chain (contents, not a path). */
  cert: string | Buffer;
  /** PEM private key (contents, not a path). */
  key: string | Buffer;
}

export type AccessLogFormat = 'text' | 'json';

export interface AccessLogOptions {
  format: AccessLogFormat;
  /** Receives one line (no trailing newline) per HTTP request, per WebSocket open and close, and per refused upgrade. */
  write(line: string): void;
}

export interface ServerOptions extends WebSocketPolicyOptions {
  /** Directory served as static files; none when absent. */
  root?: string;
  static?: StaticOptions;
  /** Most WebSocket connections open at once across all routes (LimitWebSockets); 503 beyond. 0 = no limit. */
  maxConnections?: number;
  /** A client that has not sent its whole request head by then is dropped (408). Default 10 s. */
  handshakeTimeoutMs?: number;
  /** On close(), how long open WebSockets get to finish their closing handshake (1001). Default 10 s. */
  shutdownTimeoutMs?: number;
  /** Serve https and wss on the same port. */
  tls?: TlsOptions;
  accessLog?: AccessLogOptions;
  /** Serve Prometheus text metrics at this path (opt-in). */
  metricsPath?: string;
  /**
   * Peers whose X-Forwarded-For / X-Forwarded-Proto are believed (a reverse proxy in front): IP addresses,
   * CIDR ranges ("10.0.0.0/8", "fd00::/8") and "loopback" (127.0.0.0/8 and ::1). The client address in logs,
   * `ws.remoteAddress`, upgrade hooks and the bridges' REMOTE_ADDR then comes from the header. Default: none
   * (the peer is the client and the headers are not read).
   */
  trustProxy?: readonly string[];
}

export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;
