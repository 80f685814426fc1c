// WebSocket policy: every limit and timer a connection runs under, with its unit, default and check, in one
// table that the server, the client and the config file all read. A resolved policy is shared by reference
// between a route's connections.
import { DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_MESSAGE_BYTES } from '../protocol/constants.js';

export const SLOW_CONSUMER_POLICIES = ['close', 'drop-newest', 'keep-latest'] as const;
/**
 * What happens when a connection's unsent bytes would pass maxBackpressureBytes: `close` fails it with 1008,
 * `drop-newest` drops the message being sent, `keep-latest` keeps only the newest unsent message per topic
 * (direct sends are dropped as with drop-newest). Every drop calls the route's `dropped` handler and counts.
 */
export type SlowConsumerPolicy = (typeof SLOW_CONSUMER_POLICIES)[number];

export interface WebSocketPolicy {
  /** Largest message after reassembly (Appweb LimitWebSocketsMessage); close 1009 above it. */
  maxMessageBytes: number;
  /** Largest single frame (LimitWebSocketsFrame); close 1009 above it, decided from the header. */
  maxFrameBytes: number;
  /** Deliver messages in pieces of at most this many bytes as they arrive (LimitWebSocketsPacket); 0 = whole. */
  messagePieceBytes: number;
  /**
   * Keep-alive ping every this many ms (WebSocketsPing), traffic or not, so proxies never see a quiet tunnel; a
   * peer that sends nothing for a whole interval after an unanswered ping is closed with 1011. 0 = off.
   */
  pingIntervalMs: number;
  /** Close with 1001 after this long without a data message either way (InactivityTimeout); 0 = off. */
  idleTimeoutMs: number;
  /** Close with 1001 once the connection is this old (RequestTimeout); 0 = off. */
  maxLifetimeMs: number;
  /** Drop the transport this long after the closing handshake started if the peer has not finished it. */
  closeTimeoutMs: number;
  /** send() returns false once this many bytes wait to be written: wait for `drain`. */
  backpressureBytes: number;
  /** Hard cap on unsent bytes per connection; past it the slow-consumer policy applies. */
  maxBackpressureBytes: number;
  slowConsumerPolicy: SlowConsumerPolicy;
  /** Accept text messages that are not valid UTF-8 instead of closing with 1007 (IgnoreEncodingErrors). */
  allowInvalidUtf8: boolean;
  /** Accept (server) or offer (client) permessage-deflate, RFC 7692. */
  perMessageDeflate: boolean;
  /** Messages shorter than this are sent uncompressed even when deflate is on. */
  deflateThresholdBytes: number;
  /** zlib compression level for outgoing messages, 0-9. */
  deflateLevel: number;
  /** zlib memLevel, 1-9: memory for each compressor's state. */
  deflateMemLevel: number;
  /** Largest LZ77 window the server compresses with (server_max_window_bits), 9-15. */
  deflateServerMaxWindowBits: number;
  /** Largest LZ77 window asked of the client (client_max_window_bits), 9-15. */
  deflateClientMaxWindowBits: number;
  /** The server resets its compressor after every message (server_no_context_takeover). */
  deflateServerNoContextTakeover: boolean;
  /** Ask the client to reset its compressor after every message (client_no_context_takeover). */
  deflateClientNoContextTakeover: boolean;
}

export type WebSocketPolicyOptions = Partial<WebSocketPolicy>;

type FieldSpec =
  | { kind: 'integer'; min: number; max?: number; unit: string; doc: string }
  | { kind: 'boolean'; doc: string }
  | { kind: 'enum'; values: readonly string[]; doc: string };

/** Every policy knob: its type, lower bound, unit and meaning (the config file and --help read this too). */
export const POLICY_FIELDS: { readonly [K in keyof WebSocketPolicy]: FieldSpec } = {
  maxMessageBytes: { kind: 'integer', min: 1, unit: 'bytes', doc: 'largest message after reassembly (close 1009)' },
  maxFrameBytes: { kind: 'integer', min: 1, unit: 'bytes', doc: 'largest single frame (close 1009)' },
  messagePieceBytes: { kind: 'integer', min: 0, unit: 'bytes', doc: 'deliver messages in pieces of at most N bytes as they arrive; 0 = whole messages' },
  pingIntervalMs: { kind: 'integer', min: 0, unit: 'ms', doc: 'keep-alive ping every N ms; a peer silent for an interval after an unanswered ping is closed 1011; 0 = off' },
  idleTimeoutMs: { kind: 'integer', min: 0, unit: 'ms', doc: 'close 1001 after N ms without messages; 0 = off' },
  maxLifetimeMs: { kind: 'integer', min: 0, unit: 'ms', doc: 'close 1001 once the connection is N ms old; 0 = off' },
  closeTimeoutMs: { kind: 'integer', min: 1, unit: 'ms', doc: 'drop a peer that does not finish the closing handshake' },
  backpressureBytes: { kind: 'integer', min: 0, unit: 'bytes', doc: 'send() returns false above this many unsent bytes' },
  maxBackpressureBytes: { kind: 'integer', min: 1, unit: 'bytes', doc: 'hard cap on unsent bytes; then the slow-consumer policy applies' },
  slowConsumerPolicy: { kind: 'enum', values: SLOW_CONSUMER_POLICIES, doc: 'past maxBackpressureBytes: close (1008), drop-newest, or keep-latest per topic' },
  allowInvalidUtf8: { kind: 'boolean', doc: 'accept invalid UTF-8 in text messages instead of closing with 1007' },
  perMessageDeflate: { kind: 'boolean', doc: 'accept permessage-deflate (RFC 7692) offers' },
  deflateThresholdBytes: { kind: 'integer', min: 0, unit: 'bytes', doc: 'send messages shorter than N bytes uncompressed' },
  deflateLevel: { kind: 'integer', min: 0, max: 9, unit: 'level', doc: 'zlib compression level 0-9' },
  deflateMemLevel: { kind: 'integer', min: 1, max: 9, unit: 'level', doc: 'zlib memLevel 1-9 (memory per compressor)' },
  deflateServerMaxWindowBits: { kind: 'integer', min: 9, max: 15, unit: 'bits', doc: 'largest window the server compresses with (server_max_window_bits)' },
  // 9, not RFC 7692's 8: zlib-based clients (ours, Python's websockets) cannot compress with an 8-bit window.
  deflateClientMaxWindowBits: { kind: 'integer', min: 9, max: 15, unit: 'bits', doc: 'largest window asked of the client (client_max_window_bits)' },
  deflateServerNoContextTakeover: { kind: 'boolean', doc: 'reset the compressor after every message (less memory, shared publish compression)' },
  deflateClientNoContextTakeover: { kind: 'boolean', doc: 'ask the client to reset its compressor after every message' },
};

export const DEFAULT_POLICY: Readonly<WebSocketPolicy> = Object.freeze({
  maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES,
  maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
  messagePieceBytes: 0,
  // On by default: proxies such as nginx cut tunnels that stay quiet for 60 s.
  pingIntervalMs: 30_000,
  idleTimeoutMs: 0,
  maxLifetimeMs: 0,
  closeTimeoutMs: 5_000,
  backpressureBytes: 1024 * 1024,
  maxBackpressureBytes: 16 * 1024 * 1024,
  slowConsumerPolicy: 'close',
  allowInvalidUtf8: false,
  // Off by default, as in ws and uWebSockets: compression costs CPU and memory per connection.
  perMessageDeflate: false,
  deflateThresholdBytes: 1024,
  deflateLevel: 1,
  deflateMemLevel: 8,
  deflateServerMaxWindowBits: 15,
  deflateClientMaxWindowBits: 15,
  deflateServerNoContextTakeover: false,
  deflateClientNoContextTakeover: false,
});

/** Throws RangeError unless `value` is an integer in [min, max] (max defaults to 2^53 - 1). */
export function checkInteger(name: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    throw new RangeError(`${name} must be an integer ${range} (got ${String(value)})`);
  }
  return value;
}

/** Checks one policy value against its field spec; throws RangeError/TypeError naming `name`. */
export function checkPolicyValue(key: keyof WebSocketPolicy, value: unknown, name: string = key): WebSocketPolicy[keyof WebSocketPolicy] {
  const spec = POLICY_FIELDS[key];
  switch (spec.kind) {
    case 'integer':
      return checkInteger(name, value, spec.min, spec.max);
    case 'boolean':
      if (typeof value !== 'boolean') throw new TypeError(`${name} must be true or false (got ${String(value)})`);
      return value;
    case 'enum':
      if (typeof value !== 'string' || !spec.values.includes(value)) {
        throw new RangeError(`${name} must be one of ${spec.values.join(', ')} (got ${String(value)})`);
      }
      return value as SlowConsumerPolicy;
  }
}

/** Merges the policy keys of `options` over `base`, checking each value. Other keys are ignored. */
export function resolvePolicy(base: Readonly<WebSocketPolicy>, options: WebSocketPolicyOptions): WebSocketPolicy {
  const policy: WebSocketPolicy = { ...base };
  for (const key of Object.keys(POLICY_FIELDS) as Array<keyof WebSocketPolicy>) {
    const value = options[key];
    if (value !== undefined) (policy as unknown as Record<string, unknown>)[key] = checkPolicyValue(key, value);
  }
  return policy;
}
