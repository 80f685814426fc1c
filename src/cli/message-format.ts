// How `switchyard connect` writes messages and closes as text: one stdout line per message in a pipe, a
// prefixed and escaped line above the prompt on a terminal. Pure (strings in, strings out).
import type { BinaryFormat } from '../config/connect-flags.js';
import { CloseCode } from '../protocol/constants.js';

export function encodeBinary(data: Buffer, format: BinaryFormat): string {
  return data.toString(format);
}

/**
 * A message as one pipe line, without the newline: text exactly as received (a text message that contains
 * newlines spans several lines; a script that needs one line per message sends JSON), binary encoded.
 */
export function pipeLine(data: Buffer, isBinary: boolean, format: BinaryFormat): string {
  return isBinary ? encodeBinary(data, format) : data.toString('utf8');
}

// C0 and C1 controls and DEL, but not tab or newline: a server must not be able to move the cursor, clear the
// screen or retitle the window of whoever is reading its messages.
const CONTROLS = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;

/** Makes text safe to print on a terminal: control characters become visible escapes (\r, \x1b). */
export function escapeControls(text: string): string {
  return text.replace(CONTROLS, (char) => {
    if (char === '\r') return '\\r';
    return `\\x${char.charCodeAt(0).toString(16).padStart(2, '0')}`;
  });
}

/** A message as printed above the prompt: "< text", "< [binary 2 bytes] 6869". */
export function terminalLine(data: Buffer, isBinary: boolean, format: BinaryFormat): string {
  if (isBinary) return `< [binary ${data.length} byte${data.length === 1 ? '' : 's'}] ${encodeBinary(data, format)}`;
  return `< ${escapeControls(data.toString('utf8'))}`;
}

/** `1011 "reason"`, or a word on the codes that never travel in a frame (RFC 6455 §7.4.1). */
export function describeClose(code: number, reason: string): string {
  if (code === CloseCode.Abnormal) return '1006 (abnormal: the connection ended without a close frame)';
  if (code === CloseCode.NoStatus) return '1005 (the close frame had no status code)';
  return `${code} ${JSON.stringify(reason)}`;
}

/** "68 69", "6869", "68:69" -> the bytes; throws RangeError with what is wrong. */
export function parseHexBytes(text: string): Buffer {
  const digits = text.replace(/[\s:]/g, '');
  if (!/^[0-9a-fA-F]*$/.test(digits)) throw new RangeError(`not hex digits: ${JSON.stringify(text)}`);
  if (digits.length % 2 !== 0) throw new RangeError(`an odd number of hex digits (${digits.length}): each byte is two digits`);
  return Buffer.from(digits, 'hex');
}
