// Reading comma-separated header values (RFC 7230 §7 lists, §3.2.6 tokens) the way the handshake needs them.

/** Node joins repeated headers with ", " or gives an array; either way, one string per header line. */
export type HeaderValue = string | readonly string[] | undefined;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export function isToken(value: string): boolean {
  return TOKEN.test(value);
}

/** Splits a list header into trimmed, non-empty elements. */
export function listElements(value: HeaderValue): string[] {
  if (value === undefined) return [];
  const lines = typeof value === 'string' ? [value] : value;
  const elements: string[] = [];
  for (const line of lines) {
    for (const part of line.split(',')) {
      const element = part.trim();
      if (element !== '') elements.push(element);
    }
  }
  return elements;
}

/** True when the list contains `token`, compared case-insensitively (RFC 7230 §6.1, §6.7). */
export function listHasToken(value: HeaderValue, token: string): boolean {
  if (value === undefined) return false;
  if (typeof value === 'string') {
    // The common single-element header ("websocket", "Upgrade") is checked without splitting.
    if (value.length === token.length && equalsIgnoringCase(value, token)) return true;
    if (!value.includes(',')) return equalsIgnoringCase(value.trim(), token);
  }
  return listElements(value).some((element) => equalsIgnoringCase(element, token));
}

function equalsIgnoringCase(value: string, token: string): boolean {
  return value === token || (value.length === token.length && value.toLowerCase() === token.toLowerCase());
}

/** The single value of a header that must appear once; undefined when absent or repeated. */
export function singleValue(value: HeaderValue): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') return value.trim();
  return value.length === 1 ? value[0]!.trim() : undefined;
}
