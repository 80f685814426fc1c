// The package's main entry: the server, the client and the types an application touches.
export { createServer, Switchyard, type WebSocketRoute, type ListenOptions } from './server/server.js';
export type { ServerOptions, WebSocketPolicyOptions } from './server/options.js';
export { WebSocket, type WebSocketHandlers } from './transport/websocket.js';
export { connect, type ConnectOptions } from './client/connect.js';
export { SwitchyardError, ProtocolError, HandshakeError, ConfigError } from './errors.js';
export { CloseCode, ReadyState } from './protocol/constants.js';
