// WebSocket policy: the limits and timers a connection runs under, their defaults and units, and the checks
// that turn a bad value into a RangeError naming the option. Shared by reference between a route's connections.
import { DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_MESSAGE_BYTES } from '../protocol/constants.js';

/** Per-route settings, shared by reference between that route's connections. */
export interface WebSocketPolicy {
  maxFrameBytes: number;
  maxMessageBytes: number;
  /** Send a ping after this long without hearing from the peer; fail if the next interval passes in silence. 0 = off. */
  pingIntervalMs: number;
  /** Close with 1001 after this long without a data message either way. 0 = off. */
  idleTimeoutMs: number;
  /** Drop the transport this long after the closing handshake started if the peer has not finished it. */
  closeTimeoutMs: number;
  /** send() returns false once this many bytes wait to be written. */
  backpressureBytes: number;
}

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

export const DEFAULT_POLICY: WebSocketPolicy = {
  maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES,
  maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
  pingIntervalMs: 30_000,
  idleTimeoutMs: 0,
  closeTimeoutMs: 5_000,
  backpressureBytes: 1024 * 1024,
};

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
