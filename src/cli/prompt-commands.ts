// What a line typed at `switchyard connect`'s prompt means: a text message, or a /command (/ping, /binary,
// /close, /help). Pure, so every command's parsing is unit-tested without a terminal.
import { CloseCode, MAX_CLOSE_REASON_BYTES, MAX_CONTROL_PAYLOAD_BYTES } from '../protocol/constants.js';
import { isValidWireCloseCode } from '../protocol/close.js';
import { parseHexBytes } from './message-format.js';

export type PromptInput =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'binary'; readonly data: Buffer }
  | { readonly kind: 'ping'; readonly payload: Buffer }
  | { readonly kind: 'close'; readonly code: number; readonly reason: string }
  | { readonly kind: 'help' }
  /** A command that cannot be carried out as typed; nothing is sent. */
  | { readonly kind: 'mistake'; readonly message: string };

export const PROMPT_HELP = [
  'commands:',
  '  /ping [TEXT]            send a ping (the pong is shown)',
  '  /binary HEX             send bytes as a binary message: /binary 68 69',
  '  /close [CODE] [REASON]  close the connection (default 1000)',
  '  /help                   this list',
  '  //TEXT                  send a text message that starts with "/"',
  '  any other line is sent as a text message; Ctrl-D closes with 1000',
].join('\n');

/** The command word and the rest of the line after one space: "/close 4001 bye now" -> ['close', '4001 bye now']. */
function split(line: string): [string, string] {
  const space = line.search(/\s/);
  return space === -1 ? [line.slice(1), ''] : [line.slice(1, space), line.slice(space + 1).trim()];
}

export function parsePromptLine(line: string): PromptInput {
  if (!line.startsWith('/')) return { kind: 'text', text: line };
  if (line.startsWith('//')) return { kind: 'text', text: line.slice(1) };
  const [command, rest] = split(line);
  switch (command) {
    case 'ping': {
      const payload = Buffer.from(rest);
      // RFC 6455 §5.5: control frames carry at most 125 bytes.
      if (payload.length > MAX_CONTROL_PAYLOAD_BYTES) return { kind: 'mistake', message: `/ping: at most ${MAX_CONTROL_PAYLOAD_BYTES} bytes of text (got ${payload.length})` };
      return { kind: 'ping', payload };
    }
    case 'binary':
      try {
        return { kind: 'binary', data: parseHexBytes(rest) };
      } catch (error) {
        return { kind: 'mistake', message: `/binary: ${(error as Error).message}; write bytes as hex: /binary 68 69` };
      }
    case 'close': {
      if (rest === '') return { kind: 'close', code: CloseCode.Normal, reason: '' };
      const [codeText = '', ...words] = rest.split(/\s+/);
      const reason = rest.slice(codeText.length).trim();
      const code = /^\d+$/.test(codeText) ? Number(codeText) : NaN;
      if (!isValidWireCloseCode(code)) {
        return { kind: 'mistake', message: `/close: ${JSON.stringify(codeText)} is not a code that may be sent: use 1000-1003, 1007-1014 or 3000-4999` };
      }
      if (words.length > 0 && Buffer.byteLength(reason) > MAX_CLOSE_REASON_BYTES) {
        return { kind: 'mistake', message: `/close: the reason is ${Buffer.byteLength(reason)} bytes; at most ${MAX_CLOSE_REASON_BYTES}` };
      }
      return { kind: 'close', code, reason };
    }
    case 'help':
      return { kind: 'help' };
    default:
      return { kind: 'mistake', message: `unknown command /${command} (/help lists them; write //${line.slice(1)} to send the line as text)` };
  }
}
