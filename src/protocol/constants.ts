// RFC 6455 numbers: opcodes, close codes, the handshake GUID and the connection states.

export const Opcode = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa,
} as const;
export type Opcode = (typeof Opcode)[keyof typeof Opcode];

export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  ProtocolError: 1002,
  UnsupportedData: 1003,
  /** Reserved: means "no status code was present"; never sent in a frame. */
  NoStatus: 1005,
  /** Reserved: means "closed without a close frame"; never sent in a frame. */
  Abnormal: 1006,
  InvalidPayload: 1007,
  PolicyViolation: 1008,
  MessageTooBig: 1009,
  MandatoryExtension: 1010,
  InternalError: 1011,
  ServiceRestart: 1012,
  TryAgainLater: 1013,
  BadGateway: 1014,
  /** Reserved: TLS handshake failure; never sent in a frame. */
  TlsHandshake: 1015,
} as const;

/** RFC 6455 §1.3: concatenated with Sec-WebSocket-Key before hashing. */
export const HANDSHAKE_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** RFC 6455 §5.5: all control frames MUST have a payload length of 125 bytes or less. */
export const MAX_CONTROL_PAYLOAD_BYTES = 125;
/** RFC 6455 §5.5.1: a close payload is a 2-byte code plus the reason, within the 125-byte control limit. */
export const MAX_CLOSE_REASON_BYTES = 123;

export const ReadyState = {
  Connecting: 0,
  Open: 1,
  Closing: 2,
  Closed: 3,
} as const;
export type ReadyState = (typeof ReadyState)[keyof typeof ReadyState];

export type Role = 'server' | 'client';

export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;
