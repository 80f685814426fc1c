// The package's main entry: the server, the client and the types an application touches.
export { createServer, Switchyard, type WebSocketRoute, type ListenOptions } from './server/server.js';
export type { ServerOptions, WebSocketPolicyOptions } from './server/options.js';
// Who sent a request (the client behind a trusted proxy, with trustProxy): for HTTP handlers.
export { requestClient, type RequestClient } from './http/client-address.js';
export { WebSocket, type WebSocketHandlers, type CloseDetails, type ReceivedMessage, type MessageInboxOptions } from './transport/websocket.js';
export { connect, type ConnectOptions, type ClientTlsOptions } from './client/connect.js';
export { SwitchyardError, ProtocolError, HandshakeError, ConfigError, type HandshakeErrorOptions } from './errors.js';
export { CloseCode, ReadyState } from './protocol/constants.js';
// The bridges: programs (websocketd), CGI/1.1, TCP (websockify) and a reverse proxy.
export {
  processBridge, activeProcessCount, allProcessesExited,
  type ProcessBridgeOptions, type ProcessFraming,
} from './bridges/process-bridge.js';
export { cgiHandler, CGI_DEFAULTS, type CgiOptions } from './bridges/cgi.js';
export { tcpBridge, parseTcpTarget, type TcpBridgeOptions, type TcpBridgeRoute, type TcpBridgeConnection, type TcpTarget } from './bridges/tcp-bridge.js';
export { proxyHttpHandler, proxyWebSocketRoute, type ProxyHttpHandler, type ProxyOptions, type ProxyTlsOptions, type ProxyWebSocketData } from './bridges/proxy.js';
// The reconnecting client (docs/client-reconnecting.md).
export { connectReconnecting, ReconnectingClient, type ReconnectingOptions, type ReconnectingEvents, type ReconnectingState, type OpenInfo } from './client/reconnecting.js';
export { SendError, SendErrorCode } from './client/outbox.js';
export { defaultShouldReconnect, RETRYABLE_CLOSE_CODES, type ReconnectFailure } from './client/reconnect-policy.js';
export { backoffDelayMs, resolveBackoff, type BackoffOptions, type Backoff } from './client/backoff.js';
