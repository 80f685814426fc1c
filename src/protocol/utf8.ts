// UTF-8 validation. Whole messages use node's `isUtf8` (native, fast); fragments and payloads that arrive in
// pieces go through `Utf8Validator`, which keeps state between pieces and fails at the first byte that
// can no longer start or continue a well-formed sequence (RFC 6455 §8.1, Unicode Table 3-7).
import { isUtf8 } from 'node:buffer';

export { isUtf8 };

export class Utf8Validator {
  /** Continuation bytes still expected for the current code point. */
  #pending = 0;
  /** Allowed range of the next continuation byte (narrowed after E0, ED, F0, F4 to exclude overlongs,
   * surrogates and code points above U+10FFFF). */
  #lower = 0x80;
  #upper = 0xbf;

  /** Feeds bytes; returns false as soon as they cannot be part of valid UTF-8. */
  write(bytes: Uint8Array, start = 0, end = bytes.length): boolean {
    let pending = this.#pending;
    let lower = this.#lower;
    let upper = this.#upper;
    for (let i = start; i < end; i++) {
      const byte = bytes[i]!;
      if (pending === 0) {
        if (byte < 0x80) continue;
        if (byte < 0xc2) return this.#invalid();
        if (byte < 0xe0) { pending = 1; lower = 0x80; upper = 0xbf; }
        else if (byte < 0xf0) {
          pending = 2;
          lower = byte === 0xe0 ? 0xa0 : 0x80;
          upper = byte === 0xed ? 0x9f : 0xbf;
        } else if (byte < 0xf5) {
          pending = 3;
          lower = byte === 0xf0 ? 0x90 : 0x80;
          upper = byte === 0xf4 ? 0x8f : 0xbf;
        } else return this.#invalid();
      } else {
        if (byte < lower || byte > upper) return this.#invalid();
        pending--;
        lower = 0x80;
        upper = 0xbf;
      }
    }
    this.#pending = pending;
    this.#lower = lower;
    this.#upper = upper;
    return true;
  }

  /** True when everything written so far ends on a code point boundary. */
  get atBoundary(): boolean {
    return this.#pending === 0;
  }

  reset(): void {
    this.#pending = 0;
    this.#lower = 0x80;
    this.#upper = 0xbf;
  }

  #invalid(): false {
    this.reset();
    return false;
  }
}
