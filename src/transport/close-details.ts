// How a WebSocket's connection ended, kept for after the fact: `ws.closeCode`, `ws.closeReason`,
// `ws.closeWasClean` and the `ws.closed` promise. A connection holds none of this until it closes or someone
// asks for `closed`, so an open, idle connection pays nothing for it.

/** The close as the `close` handler reports it. */
export interface CloseDetails {
  /** The code from the peer's close frame (1005 if it had none), 1006 when there was no closing handshake. */
  readonly code: number;
  readonly reason: string;
  /** Both close frames were exchanged before the transport closed (RFC 6455 §7.1.4). */
  readonly wasClean: boolean;
}

export class CloseRecord {
  /** Undefined until the connection has closed. */
  details: CloseDetails | undefined;
  #promise: Promise<CloseDetails> | undefined;
  #resolve: ((details: CloseDetails) => void) | undefined;

  /** Resolves (never rejects) with the details once the connection has closed; made on first use. */
  get promise(): Promise<CloseDetails> {
    if (this.#promise === undefined) {
      const details = this.details;
      this.#promise = details !== undefined ? Promise.resolve(details) : new Promise((resolve) => { this.#resolve = resolve; });
    }
    return this.#promise;
  }

  settle(details: CloseDetails): void {
    if (this.details !== undefined) return;
    this.details = details;
    const resolve = this.#resolve;
    this.#resolve = undefined;
    resolve?.(details);
  }
}
