// A strict JSON parser (RFC 8259) for config files whose errors say where: line and column of the first bad
// character, and a duplicate key (which JSON.parse silently resolves to the last value) is an error too.
import { ConfigError } from '../errors.js';

/** Where a ConfigError for malformed JSON points: `line 3, column 15`. */
function location(text: string, offset: number): string {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  return `line ${line}, column ${offset - lineStart + 1}`;
}

const ESCAPES: Readonly<Record<string, string>> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

class Parser {
  #offset = 0;
  readonly #text: string;

  constructor(text: string) {
    this.#text = text;
  }

  parseDocument(): unknown {
    // A UTF-8 byte order mark some editors write is not JSON, but harmless.
    if (this.#text.charCodeAt(0) === 0xfeff) this.#offset = 1;
    this.#skipSpace();
    if (this.#offset >= this.#text.length) this.#fail('the file is empty: expected a JSON object');
    const value = this.#value();
    this.#skipSpace();
    if (this.#offset < this.#text.length) this.#fail(`unexpected ${this.#describeHere()} after the end of the JSON value`);
    return value;
  }

  #fail(message: string, offset = this.#offset): never {
    throw new ConfigError(location(this.#text, offset), `invalid JSON: ${message}`);
  }

  #describeHere(): string {
    if (this.#offset >= this.#text.length) return 'end of file';
    const char = this.#text[this.#offset]!;
    return /[\x00-\x1f]/.test(char) ? `control character U+${char.charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()}` : `'${char}'`;
  }

  #skipSpace(): void {
    const text = this.#text;
    while (this.#offset < text.length) {
      const code = text.charCodeAt(this.#offset);
      if (code !== 0x20 && code !== 0x0a && code !== 0x0d && code !== 0x09) break;
      this.#offset++;
    }
  }

  #value(): unknown {
    const text = this.#text;
    const char = text[this.#offset];
    switch (char) {
      case '{': return this.#object();
      case '[': return this.#array();
      case '"': return this.#string();
      case 't': return this.#literal('true', true);
      case 'f': return this.#literal('false', false);
      case 'n': return this.#literal('null', null);
      default: {
        NUMBER.lastIndex = this.#offset;
        const match = char === '-' || (char !== undefined && char >= '0' && char <= '9') ? NUMBER.exec(text) : null;
        if (match === null) {
          if (char === '/') this.#fail('comments are not allowed in JSON');
          if (char === "'") this.#fail('strings take double quotes');
          this.#fail(`expected a value, found ${this.#describeHere()}`);
        }
        this.#offset += match[0].length;
        return Number(match[0]);
      }
    }
  }

  #literal<T>(word: string, value: T): T {
    if (!this.#text.startsWith(word, this.#offset)) this.#fail(`expected a value, found ${this.#describeHere()}`);
    this.#offset += word.length;
    return value;
  }

  #object(): Record<string, unknown> {
    this.#offset++; // {
    const result: Record<string, unknown> = {};
    this.#skipSpace();
    if (this.#text[this.#offset] === '}') {
      this.#offset++;
      return result;
    }
    for (;;) {
      this.#skipSpace();
      const keyOffset = this.#offset;
      if (this.#text[this.#offset] !== '"') {
        this.#fail(this.#text[this.#offset] === '}' ? "trailing comma before '}'" : `expected a key in double quotes, found ${this.#describeHere()}`);
      }
      const key = this.#string();
      if (Object.hasOwn(result, key)) this.#fail(`duplicate key "${key}"`, keyOffset);
      this.#skipSpace();
      if (this.#text[this.#offset] !== ':') this.#fail(`expected ':' after the key "${key}", found ${this.#describeHere()}`);
      this.#offset++;
      this.#skipSpace();
      // defineProperty, so that a "__proto__" key is an ordinary (and then unknown) key, not a prototype.
      Object.defineProperty(result, key, { value: this.#value(), enumerable: true, writable: true, configurable: true });
      this.#skipSpace();
      const next = this.#text[this.#offset];
      if (next === ',') {
        this.#offset++;
        continue;
      }
      if (next === '}') {
        this.#offset++;
        return result;
      }
      this.#fail(`expected ',' or '}' after a value in an object, found ${this.#describeHere()}`);
    }
  }

  #array(): unknown[] {
    this.#offset++; // [
    const result: unknown[] = [];
    this.#skipSpace();
    if (this.#text[this.#offset] === ']') {
      this.#offset++;
      return result;
    }
    for (;;) {
      this.#skipSpace();
      if (this.#text[this.#offset] === ']') this.#fail("trailing comma before ']'");
      result.push(this.#value());
      this.#skipSpace();
      const next = this.#text[this.#offset];
      if (next === ',') {
        this.#offset++;
        continue;
      }
      if (next === ']') {
        this.#offset++;
        return result;
      }
      this.#fail(`expected ',' or ']' after a value in an array, found ${this.#describeHere()}`);
    }
  }

  #string(): string {
    const text = this.#text;
    this.#offset++; // opening quote
    let result = '';
    let runStart = this.#offset;
    for (;;) {
      if (this.#offset >= text.length) this.#fail('unterminated string');
      const code = text.charCodeAt(this.#offset);
      if (code === 0x22) {
        result += text.slice(runStart, this.#offset);
        this.#offset++;
        return result;
      }
      if (code < 0x20) this.#fail(`${this.#describeHere()} inside a string (write it escaped, e.g. \\n)`);
      if (code !== 0x5c) {
        this.#offset++;
        continue;
      }
      result += text.slice(runStart, this.#offset);
      const escape = text[this.#offset + 1];
      if (escape === 'u') {
        const hex = text.slice(this.#offset + 2, this.#offset + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.#fail('\\u must be followed by four hex digits');
        result += String.fromCharCode(parseInt(hex, 16));
        this.#offset += 6;
      } else {
        const decoded = escape === undefined ? undefined : ESCAPES[escape];
        if (decoded === undefined) this.#fail(`invalid escape "\\${escape ?? ''}" in a string`);
        result += decoded;
        this.#offset += 2;
      }
      runStart = this.#offset;
    }
  }
}

/** Parses JSON text; malformed input throws ConfigError whose field is `line L, column C`. */
export function parseJson(text: string): unknown {
  return new Parser(text).parseDocument();
}
