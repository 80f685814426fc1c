// permessage-deflate negotiation (RFC 7692 §5, §7.1), both roles, as pure functions over header text: the
// server picks the first offer its configuration can honour and answers it; the client builds its offer and
// checks that the answer is a valid response to it. Compression itself lives in src/codec/.
import { HandshakeError } from '../errors.js';
import { isToken } from './header-tokens.js';

export const PERMESSAGE_DEFLATE = 'permessage-deflate';

/** What both sides agreed, in RFC 7692's terms (server_* governs what the server compresses). */
export interface DeflateAgreement {
  /** The server resets its compression context after each message. */
  serverNoContextTakeover: boolean;
  /** The client resets its compression context after each message. */
  clientNoContextTakeover: boolean;
  /** Largest LZ77 window (2^N bytes) the server compresses with: 9..15. */
  serverMaxWindowBits: number;
  /** Largest LZ77 window the client compresses with: 8..15. */
  clientMaxWindowBits: number;
}

/** Our side's wishes; every field optional with the default shown. */
export interface DeflateNegotiationOptions {
  /** Ask to reset our compressor after every message (saves memory, compresses less). Default false. */
  serverNoContextTakeover?: boolean;
  /** Ask the peer to reset its compressor after every message (lets us free our inflater). Default false. */
  clientNoContextTakeover?: boolean;
  /** Largest window the server compresses with, 9-15. Default 15. */
  serverMaxWindowBits?: number;
  /** Largest window we ask the client to compress with, 8-15. Default 15 (no request). */
  clientMaxWindowBits?: number;
}

interface Param {
  name: string;
  value: string | undefined;
}

/** One extension offer or answer: its name and parameters, in order. */
export interface ExtensionElement {
  name: string;
  params: Param[];
}

/**
 * Parses a Sec-WebSocket-Extensions value (RFC 6455 §9.1): `name *( ";" param [ "=" value ] )` elements
 * separated by commas; values may be quoted strings. Returns undefined when the text does not follow the
 * grammar.
 */
export function parseExtensions(header: string | readonly string[] | undefined): ExtensionElement[] | undefined {
  if (header === undefined) return [];
  const text = typeof header === 'string' ? header : header.join(',');
  const elements: ExtensionElement[] = [];
  let position = 0;
  const length = text.length;
  const skipSpace = (): void => { while (position < length && (text[position] === ' ' || text[position] === '\t')) position++; };
  const readToken = (): string => {
    const start = position;
    while (position < length && /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(text[position]!)) position++;
    return text.slice(start, position);
  };
  while (true) {
    skipSpace();
    if (position >= length) break;
    if (text[position] === ',') { position++; continue; }
    const name = readToken();
    if (name === '') return undefined;
    const params: Param[] = [];
    skipSpace();
    while (text[position] === ';') {
      position++;
      skipSpace();
      const paramName = readToken();
      if (paramName === '') return undefined;
      skipSpace();
      let value: string | undefined;
      if (text[position] === '=') {
        position++;
        skipSpace();
        if (text[position] === '"') {
          position++;
          let quoted = '';
          while (position < length && text[position] !== '"') {
            if (text[position] === '\\') position++;
            quoted += text[position] ?? '';
            position++;
          }
          if (text[position] !== '"') return undefined;
          position++;
          // RFC 6455 §9.1: a quoted value must still be a token once unquoted.
          if (!isToken(quoted)) return undefined;
          value = quoted;
        } else {
          value = readToken();
          if (value === '') return undefined;
        }
        skipSpace();
      }
      params.push({ name: paramName.toLowerCase(), value });
    }
    elements.push({ name: name.toLowerCase(), params });
    skipSpace();
    if (position < length && text[position] !== ',') return undefined;
  }
  return elements;
}

const WINDOW_BITS = /^(?:8|9|1[0-5])$/;

interface OfferParams {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number | undefined;
  /** undefined: not offered; true: offered without a value; a number: offered with one. */
  clientMaxWindowBits: number | true | undefined;
}

/** Reads one permessage-deflate element's parameters; undefined when any is unknown, repeated or invalid. */
function readParams(element: ExtensionElement): OfferParams | undefined {
  const result: OfferParams = { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: undefined, clientMaxWindowBits: undefined };
  const seen = new Set<string>();
  for (const { name, value } of element.params) {
    // RFC 7692 §7.1: a parameter appearing twice, an unknown one, or a bad value makes the element invalid.
    if (seen.has(name)) return undefined;
    seen.add(name);
    switch (name) {
      case 'server_no_context_takeover':
        if (value !== undefined) return undefined;
        result.serverNoContextTakeover = true;
        break;
      case 'client_no_context_takeover':
        if (value !== undefined) return undefined;
        result.clientNoContextTakeover = true;
        break;
      case 'server_max_window_bits':
        if (value === undefined || !WINDOW_BITS.test(value)) return undefined;
        result.serverMaxWindowBits = Number(value);
        break;
      case 'client_max_window_bits':
        if (value === undefined) result.clientMaxWindowBits = true;
        else if (!WINDOW_BITS.test(value)) return undefined;
        else result.clientMaxWindowBits = Number(value);
        break;
      default:
        return undefined;
    }
  }
  return result;
}

function checkWindowBits(name: string, value: number | undefined, min: number): number {
  if (value === undefined) return 15;
  if (!Number.isInteger(value) || value < min || value > 15) throw new RangeError(`${name} must be an integer from ${min} to 15 (got ${String(value)})`);
  return value;
}

export interface ServerNegotiation {
  agreement: DeflateAgreement;
  /** The Sec-WebSocket-Extensions value to send back. */
  response: string;
}

/**
 * Server side: takes the client's Sec-WebSocket-Extensions and answers the first permessage-deflate offer we
 * can honour; every other offer is declined by leaving it out. Never throws on the client's text: a malformed
 * header or offer means no compression. Throws RangeError for bad `options`.
 */
export function negotiateDeflateAsServer(header: string | readonly string[] | undefined, options: DeflateNegotiationOptions = {}): ServerNegotiation | undefined {
  // zlib cannot compress raw deflate with an 8-bit window (it silently uses 9), so 9 is our floor.
  const ourServerBits = checkWindowBits('serverMaxWindowBits', options.serverMaxWindowBits, 9);
  const ourClientBits = checkWindowBits('clientMaxWindowBits', options.clientMaxWindowBits, 8);
  const elements = parseExtensions(header);
  if (elements === undefined) return undefined;
  for (const element of elements) {
    if (element.name !== PERMESSAGE_DEFLATE) continue;
    const offer = readParams(element);
    if (offer === undefined) continue;
    // The client limits our window; we can only honour limits of 9 or more.
    if (offer.serverMaxWindowBits !== undefined && offer.serverMaxWindowBits < 9) continue;
    const serverBits = Math.min(ourServerBits, offer.serverMaxWindowBits ?? 15);
    // We may limit the client's window only if it said it supports the parameter (RFC 7692 §7.1.2.2).
    let clientBits = 15;
    let sendClientBits = false;
    if (offer.clientMaxWindowBits !== undefined) {
      clientBits = Math.min(ourClientBits, offer.clientMaxWindowBits === true ? 15 : offer.clientMaxWindowBits);
      sendClientBits = clientBits < 15 || offer.clientMaxWindowBits !== true;
    }
    const agreement: DeflateAgreement = {
      serverNoContextTakeover: offer.serverNoContextTakeover || (options.serverNoContextTakeover ?? false),
      clientNoContextTakeover: offer.clientNoContextTakeover || (options.clientNoContextTakeover ?? false),
      serverMaxWindowBits: serverBits,
      clientMaxWindowBits: clientBits,
    };
    let response = PERMESSAGE_DEFLATE;
    if (agreement.serverNoContextTakeover) response += '; server_no_context_takeover';
    if (agreement.clientNoContextTakeover) response += '; client_no_context_takeover';
    if (offer.serverMaxWindowBits !== undefined || serverBits < 15) response += `; server_max_window_bits=${serverBits}`;
    if (sendClientBits) response += `; client_max_window_bits=${clientBits}`;
    return { agreement, response };
  }
  return undefined;
}

/** Client side: the offer to send (one permessage-deflate element). Throws RangeError for bad `options`. */
export function deflateOffer(options: DeflateNegotiationOptions = {}): string {
  const serverBits = checkWindowBits('serverMaxWindowBits', options.serverMaxWindowBits, 9);
  const clientBits = checkWindowBits('clientMaxWindowBits', options.clientMaxWindowBits, 9);
  let offer = PERMESSAGE_DEFLATE;
  if (options.serverNoContextTakeover) offer += '; server_no_context_takeover';
  if (options.clientNoContextTakeover) offer += '; client_no_context_takeover';
  if (serverBits < 15) offer += `; server_max_window_bits=${serverBits}`;
  // Always say we support client_max_window_bits, so a server that wants a smaller window can ask for it.
  offer += clientBits < 15 ? `; client_max_window_bits=${clientBits}` : '; client_max_window_bits';
  return offer;
}

/**
 * Client side: checks the server's Sec-WebSocket-Extensions against our offer (RFC 7692 §5, §7.1) and returns
 * the agreement, or undefined when the server declined compression. Throws HandshakeError for an answer
 * that is not a valid response to our offer.
 */
export function acceptDeflateResponse(header: string | readonly string[] | undefined, options: DeflateNegotiationOptions = {}, status = 101): DeflateAgreement | undefined {
  const fail = (message: string): never => { throw new HandshakeError('ERR_HANDSHAKE_EXTENSION', status, message); };
  const elements = parseExtensions(header);
  if (elements === undefined) fail('Sec-WebSocket-Extensions in the response is malformed');
  const deflate = elements!.filter((element) => element.name === PERMESSAGE_DEFLATE);
  const other = elements!.find((element) => element.name !== PERMESSAGE_DEFLATE);
  if (other !== undefined) fail(`server accepted extension "${other.name}", which we did not offer`);
  if (deflate.length === 0) return undefined;
  if (deflate.length > 1) fail('server accepted permessage-deflate more than once');
  const answer = readParams(deflate[0]!);
  if (answer === undefined) fail('permessage-deflate response has an unknown, repeated or invalid parameter');
  const offeredServerBits = checkWindowBits('serverMaxWindowBits', options.serverMaxWindowBits, 9);
  const offeredClientBits = checkWindowBits('clientMaxWindowBits', options.clientMaxWindowBits, 9);
  if (options.serverNoContextTakeover && !answer!.serverNoContextTakeover) fail('server ignored our server_no_context_takeover');
  if (answer!.serverMaxWindowBits !== undefined && answer!.serverMaxWindowBits > offeredServerBits) {
    fail(`server_max_window_bits=${answer!.serverMaxWindowBits} is above the ${offeredServerBits} we offered`);
  }
  if (offeredServerBits < 15 && answer!.serverMaxWindowBits === undefined) fail('server did not confirm the server_max_window_bits we offered');
  if (answer!.clientMaxWindowBits === true) fail('client_max_window_bits in a response needs a value');
  const clientBits = answer!.clientMaxWindowBits === undefined ? offeredClientBits : answer!.clientMaxWindowBits;
  if (typeof clientBits === 'number' && clientBits > offeredClientBits) fail(`client_max_window_bits=${clientBits} is above the ${offeredClientBits} we offered`);
  // zlib compresses raw deflate with at least a 9-bit window, so an 8 is a limit we could not keep.
  if (clientBits === 8) fail('server asked for client_max_window_bits=8, which zlib cannot honour');
  return {
    serverNoContextTakeover: answer!.serverNoContextTakeover,
    clientNoContextTakeover: answer!.clientNoContextTakeover || (options.clientNoContextTakeover ?? false),
    serverMaxWindowBits: answer!.serverMaxWindowBits ?? 15,
    clientMaxWindowBits: clientBits as number,
  };
}
