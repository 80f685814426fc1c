// The protocol core's public surface: everything a transport needs to speak RFC 6455 without I/O.
export * from './constants.js';
export * from './close.js';
export * from './frame.js';
export * from './frame-parser.js';
export * from './connection.js';
export * from './handshake.js';
export * from './header-tokens.js';
export * from './utf8.js';
export * from './deflate-negotiation.js';
