// Close frames: which codes may be sent and received (RFC 6455 §7.4), and the payload's encoding.
import { CloseCode, MAX_CLOSE_REASON_BYTES } from './constants.js';

/**
 * True for a code that may appear in a close frame on the wire: 1000-1003, 1007-1014 (the IANA-registered
 * ones, RFC 6455 §7.4.1 and the registry), and 3000-4999 (libraries, frameworks, applications).
 * 1004 is reserved, and 1005, 1006 and 1015 MUST NOT be set in a close frame (§7.4.1).
 */
export function isValidWireCloseCode(code: number): boolean {
  if (!Number.isInteger(code)) return false;
  if (code >= 3000 && code <= 4999) return true;
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014);
}

/** Throws (synchronously, as misuse) when an application passes a code or reason it may not send. */
export function assertSendableClose(code: number, reason: string): number {
  if (!isValidWireCloseCode(code)) {
    throw new RangeError(`close code ${code} may not be sent: use 1000-1003, 1007-1014 or 3000-4999`);
  }
  const reasonBytes = Buffer.byteLength(reason);
  if (reasonBytes > MAX_CLOSE_REASON_BYTES) {
    throw new RangeError(`close reason is ${reasonBytes} bytes; RFC 6455 §5.5 allows at most ${MAX_CLOSE_REASON_BYTES}`);
  }
  return reasonBytes;
}

export function encodeClosePayload(code: number, reason: string): Buffer {
  if (code === CloseCode.NoStatus) return Buffer.alloc(0);
  const payload = Buffer.allocUnsafe(2 + Buffer.byteLength(reason));
  payload.writeUInt16BE(code, 0);
  payload.write(reason, 2);
  return payload;
}

/** Truncates a reason to at most 123 bytes without splitting a UTF-8 sequence. */
export function truncateCloseReason(reason: string): string {
  const bytes = Buffer.from(reason);
  if (bytes.length <= MAX_CLOSE_REASON_BYTES) return reason;
  let end = MAX_CLOSE_REASON_BYTES;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString();
}
