// The server's options, their defaults and units, and the checks that turn a bad value into a RangeError
// naming the option (the config layer maps those to ConfigError for files and flags).
import { DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_MESSAGE_BYTES } from '../protocol/constants.js';
import type { WebSocketPolicy } from '../transport/websocket.js';

/** Limits and timers for WebSocket connections; set on the server, overridable per route. */
export interface WebSocketPolicyOptions {
  /** Largest message after reassembly (close 1009 above it). Default 16 MiB. */
  maxMessageBytes?: number;
  /** Largest single frame (close 1009 above it). Default 16 MiB. */
  maxFrameBytes?: number;
  /** Keep-alive ping interval; a peer silent for a further interval is dropped. Default 30 s; 0 = off. */
  pingIntervalMs?: number;
  /** Close with 1001 after this long without a data message either way. Default 0 = off. */
  idleTimeoutMs?: number;
  /** How long to wait for the peer to finish a closing handshake before dropping it. Default 5 s. */
  closeTimeoutMs?: number;
  /** send() reports backpressure (returns false) once this many bytes wait to be written. Default 1 MiB. */
  backpressureBytes?: number;
}

export interface ServerOptions extends WebSocketPolicyOptions {
  /** Directory served as static files; none when absent. */
  root?: string;
  /** A client that has not sent its whole request head by then is dropped (408). Default 10 s. */
  handshakeTimeoutMs?: number;
}

export const DEFAULT_POLICY: WebSocketPolicy = {
  maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES,
  maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
  pingIntervalMs: 30_000,
  idleTimeoutMs: 0,
  closeTimeoutMs: 5_000,
  backpressureBytes: 1024 * 1024,
};

export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

const POLICY_KEYS = ['maxMessageBytes', 'maxFrameBytes', 'pingIntervalMs', 'idleTimeoutMs', 'closeTimeoutMs', 'backpressureBytes'] as const;

/** Throws RangeError unless `value` is an integer in [min, 2^53). */
export function checkInteger(name: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`${name} must be an integer >= ${min} (got ${String(value)})`);
  }
  return value;
}

/** Merges `options` over `base`, checking each value. */
export function resolvePolicy(base: WebSocketPolicy, options: WebSocketPolicyOptions): WebSocketPolicy {
  const policy: WebSocketPolicy = { ...base };
  for (const key of POLICY_KEYS) {
    const value = options[key];
    if (value === undefined) continue;
    const min = key === 'maxMessageBytes' || key === 'maxFrameBytes' || key === 'closeTimeoutMs' ? 1 : 0;
    policy[key] = checkInteger(key, value, min);
  }
  return policy;
}
