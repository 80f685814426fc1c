// The error types every layer throws or reports. Each carries a stable string `code` that tests and callers
// match on instead of the message text.

export class SwitchyardError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SwitchyardError';
    this.code = code;
  }
}

/** A peer broke RFC 6455 (or a limit); `closeCode` is what we send in our close frame. */
export class ProtocolError extends SwitchyardError {
  readonly closeCode: number;
  constructor(code: string, closeCode: number, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'ProtocolError';
    this.closeCode = closeCode;
  }
}

/** An opening handshake we refuse (server role) or a response we reject (client role). */
export class HandshakeError extends SwitchyardError {
  /** The HTTP status a server answers with; on the client, the status the server sent (or 0). */
  readonly status: number;
  /** Client role: the response's headers (lower-case names) when the server answered, else undefined. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>> | undefined;
  /** Client role, a redirect: its Location resolved against the URL that was requested. */
  readonly location: string | undefined;
  constructor(code: string, status: number, message: string, options?: HandshakeErrorOptions) {
    super(code, message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HandshakeError';
    this.status = status;
    this.headers = options?.headers;
    this.location = options?.location;
  }
}

export interface HandshakeErrorOptions {
  cause?: unknown;
  headers?: Readonly<Record<string, string | string[] | undefined>>;
  location?: string;
}

/** Bad configuration; `field` names the option, flag or config path at fault. */
export class ConfigError extends SwitchyardError {
  readonly field: string;
  constructor(field: string, message: string, options?: { cause?: unknown }) {
    super('ERR_CONFIG', `${field}: ${message}`, options);
    this.name = 'ConfigError';
    this.field = field;
  }
}
