// Which failures the reconnecting client retries: the default answer for every close code and dialing error,
// and the shape of a failure as hooks and events see it. Pure; no I/O.
import { HandshakeError } from '../errors.js';
import { CloseCode } from '../protocol/constants.js';

/** Why a connection attempt failed or a connection ended. */
export type ReconnectFailure =
  /** connect() failed: a network error, a handshake refusal or timeout, a TLS error. */
  | { readonly kind: 'error'; readonly error: Error }
  /** An open connection ended; `code` is 1006 when it ended without a close frame (RFC 6455 §7.1.5). */
  | { readonly kind: 'close'; readonly code: number; readonly reason: string; readonly wasClean: boolean; readonly error?: Error };

/**
 * Close codes worth another connection: the server is going away or restarting (1001, 1012), overloaded
 * (1013), a gateway failed (1014), an internal error (1011), or the connection died without a close
 * frame (1006) or ended without a code (1005). The others repeat themselves on a new connection: 1000 means
 * the server finished the conversation on purpose, 1002/1003/1007/1009/1010 mean the two sides disagree on
 * the protocol or the data, 1008 is a policy refusal, and 4000–4999 are the application's own (it knows
 * which of them are transient: pass shouldReconnect).
 */
export const RETRYABLE_CLOSE_CODES: ReadonlySet<number> = new Set<number>([
  CloseCode.GoingAway, CloseCode.NoStatus, CloseCode.Abnormal, CloseCode.InternalError,
  CloseCode.ServiceRestart, CloseCode.TryAgainLater, CloseCode.BadGateway,
]);

/** HTTP answers to the opening handshake that may succeed later: timeout, rate limit, server errors. */
export function isRetryableHandshakeStatus(status: number): boolean {
  if (status === 408 || status === 429) return true;
  // 501 Not Implemented and 505 HTTP Version Not Supported will not change on their own.
  return status >= 500 && status <= 599 && status !== 501 && status !== 505;
}

// Certificate and TLS configuration errors (node and OpenSSL codes): the next attempt meets the same certificate.
const TLS_ERROR = /^ERR_(TLS|SSL|OSSL)_|CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/;

/**
 * The default rule: retry network errors, handshake timeouts and retryable statuses, and the close codes in
 * RETRYABLE_CLOSE_CODES; give up on misuse (TypeError, RangeError), TLS certificate errors, other handshake
 * refusals (401, 403, 404, a wrong accept key or subprotocol) and the other close codes.
 */
export function defaultShouldReconnect(failure: ReconnectFailure): boolean {
  if (failure.kind === 'close') return RETRYABLE_CLOSE_CODES.has(failure.code);
  const error = failure.error;
  if (error instanceof TypeError || error instanceof RangeError) return false;
  if (error instanceof HandshakeError) {
    if (error.code === 'ERR_HANDSHAKE_TIMEOUT') return true;
    if (error.code === 'ERR_HANDSHAKE_STATUS') return isRetryableHandshakeStatus(error.status);
    return false;
  }
  const code = (error as NodeJS.ErrnoException).code;
  if (typeof code === 'string' && TLS_ERROR.test(code)) return false;
  return true;
}

/**
 * How long a refused handshake asked us to wait: its Retry-After header (RFC 9110 §10.2.3: seconds, or an
 * HTTP date) on a 429 or 503 answer, in ms; undefined when there is none or it cannot be read.
 */
export function retryAfterMs(failure: ReconnectFailure, nowMs: number = Date.now()): number | undefined {
  if (failure.kind !== 'error' || !(failure.error instanceof HandshakeError)) return undefined;
  const { status, headers } = failure.error;
  if ((status !== 429 && status !== 503) || headers === undefined) return undefined;
  const raw = headers['retry-after'];
  const value = (Array.isArray(raw) ? raw[0] : raw)?.trim();
  if (value === undefined || value === '') return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  // An HTTP date names its day and month ("Sun, 06 Nov 1994 08:49:37 GMT"); bare numbers like "-1" are not dates.
  const dateMs = /[a-z]/i.test(value) ? Date.parse(value) : Number.NaN;
  return Number.isNaN(dateMs) ? undefined : Math.max(0, dateMs - nowMs);
}

/** One line for logs and error messages. */
export function describeFailure(failure: ReconnectFailure): string {
  if (failure.kind === 'error') return failure.error.message;
  const reason = failure.reason === '' ? '' : ` (${failure.reason})`;
  return `connection closed with ${failure.code}${reason}${failure.wasClean ? '' : ', not cleanly'}`;
}
