// The `switchyard/client` entry: what a program that only dials out needs (connect, the reconnecting client and
// their types), without the server.
export { connect, DEFAULT_HANDSHAKE_TIMEOUT_MS, type ConnectOptions, type ClientTlsOptions } from './connect.js';
export type { WebSocket, WebSocketHandlers, CloseDetails, MessageInboxOptions, ReceivedMessage } from '../transport/websocket.js';
export { SwitchyardError, HandshakeError } from '../errors.js';
export { connectReconnecting, ReconnectingClient, type ReconnectingOptions, type ReconnectingEvents, type ReconnectingState, type OpenInfo } from './reconnecting.js';
export { SendError, SendErrorCode } from './outbox.js';
export { defaultShouldReconnect, RETRYABLE_CLOSE_CODES, type ReconnectFailure } from './reconnect-policy.js';
export { backoffDelayMs, resolveBackoff, type BackoffOptions, type Backoff } from './backoff.js';
