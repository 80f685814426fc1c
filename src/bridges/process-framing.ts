// How a bridged program's bytes become WebSocket messages and back, per framing: lines, raw bytes,
// 4-byte big-endian length-prefixed records, or lines wrapped as JSON with the stream they came from.
// Pure over buffers: the session decides what happens to a message and when to stop reading.
import { isUtf8 } from 'node:buffer';

export const PROCESS_FRAMINGS = ['line', 'binary', 'length-prefixed', 'json'] as const;
export type ProcessFraming = (typeof PROCESS_FRAMINGS)[number];

/** Where decoded output goes. */
export interface OutputTarget {
  send(data: Buffer | string, isBinary: boolean): void;
  /** The program wrote a line or record over the limit: close with 1009 (RFC 6455 §7.4.1, "too big"). */
  tooLarge(reason: string): void;
  /** A line the program wrote on stderr (already without its line ending). */
  stderrLine(line: string): void;
}

export interface FramedOutput {
  stdout(chunk: Buffer): void;
  stderr(chunk: Buffer): void;
  /** The program closed its output: a last line without a newline is still delivered. */
  end(): void;
}

export interface OutputLimits {
  maxLineBytes: number;
  maxRecordBytes: number;
}

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;
const NEWLINE_BUFFER = Buffer.from('\n');

/** Splits a byte stream into lines (LF or CRLF endings removed), holding at most `maxLineBytes` of a partial line. */
export class LineSplitter {
  readonly #maxLineBytes: number;
  readonly #onLine: (line: Buffer) => void;
  /** Called once when a line passes the limit; returning true splits it there instead of stopping. */
  readonly #onTooLong: () => boolean;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #stopped = false;

  constructor(maxLineBytes: number, onLine: (line: Buffer) => void, onTooLong: () => boolean) {
    this.#maxLineBytes = maxLineBytes;
    this.#onLine = onLine;
    this.#onTooLong = onTooLong;
  }

  push(chunk: Buffer): void {
    let start = 0;
    while (!this.#stopped && start < chunk.length) {
      const newlineAt = chunk.indexOf(NEWLINE, start);
      const end = newlineAt === -1 ? chunk.length : newlineAt;
      if (this.#pendingBytes + (end - start) > this.#maxLineBytes) {
        // Cut what fits; a splitter that may not split stops here for good.
        const fits = this.#maxLineBytes - this.#pendingBytes;
        if (!this.#onTooLong()) {
          this.#stopped = true;
          this.#pending = [];
          this.#pendingBytes = 0;
          return;
        }
        this.#pending.push(chunk.subarray(start, start + fits));
        this.#pendingBytes += fits;
        this.#emitPending(false);
        start += fits;
        continue;
      }
      if (newlineAt === -1) {
        this.#pending.push(chunk.subarray(start));
        this.#pendingBytes += chunk.length - start;
        return;
      }
      if (this.#pendingBytes === 0) {
        this.#onLine(withoutCarriageReturn(chunk.subarray(start, end)));
      } else {
        this.#pending.push(chunk.subarray(start, end));
        this.#emitPending(true);
      }
      start = end + 1;
    }
  }

  /** Delivers a last line that had no newline. */
  end(): void {
    if (!this.#stopped && this.#pendingBytes > 0) this.#emitPending(true);
  }

  #emitPending(trim: boolean): void {
    const line = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending, this.#pendingBytes);
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#onLine(trim ? withoutCarriageReturn(line) : line);
  }
}

function withoutCarriageReturn(line: Buffer): Buffer {
  return line.length > 0 && line[line.length - 1] === CARRIAGE_RETURN ? line.subarray(0, line.length - 1) : line;
}

/** Reads 4-byte big-endian length + payload records; a length over `maxRecordBytes` stops it. */
export class RecordReader {
  readonly #maxRecordBytes: number;
  readonly #onRecord: (record: Buffer) => void;
  readonly #onTooLarge: (length: number) => void;
  readonly #header = Buffer.alloc(4);
  #headerBytes = 0;
  /** Payload bytes the current record still needs; -1 while reading a header. */
  #needed = -1;
  #parts: Buffer[] = [];
  #partBytes = 0;
  #stopped = false;

  constructor(maxRecordBytes: number, onRecord: (record: Buffer) => void, onTooLarge: (length: number) => void) {
    this.#maxRecordBytes = maxRecordBytes;
    this.#onRecord = onRecord;
    this.#onTooLarge = onTooLarge;
  }

  push(chunk: Buffer): void {
    let offset = 0;
    while (!this.#stopped && offset < chunk.length) {
      if (this.#needed === -1) {
        const take = Math.min(4 - this.#headerBytes, chunk.length - offset);
        chunk.copy(this.#header, this.#headerBytes, offset, offset + take);
        this.#headerBytes += take;
        offset += take;
        if (this.#headerBytes < 4) return;
        const length = this.#header.readUInt32BE(0);
        this.#headerBytes = 0;
        if (length > this.#maxRecordBytes) {
          this.#stopped = true;
          this.#onTooLarge(length);
          return;
        }
        this.#needed = length;
        if (length === 0) this.#finish();
        continue;
      }
      const take = Math.min(this.#needed - this.#partBytes, chunk.length - offset);
      this.#parts.push(chunk.subarray(offset, offset + take));
      this.#partBytes += take;
      offset += take;
      if (this.#partBytes === this.#needed) this.#finish();
    }
  }

  /** Bytes of an unfinished record (header or payload) held when the stream ended. */
  get partialBytes(): number {
    return this.#needed === -1 ? this.#headerBytes : 4 + this.#partBytes;
  }

  #finish(): void {
    const record = this.#parts.length === 1 ? this.#parts[0]! : Buffer.concat(this.#parts, this.#partBytes);
    this.#parts = [];
    this.#partBytes = 0;
    this.#needed = -1;
    this.#onRecord(record);
  }
}

/** A line as a text message: bytes that are not UTF-8 are replaced by U+FFFD, so the frame stays valid. */
function lineAsText(line: Buffer): Buffer | string {
  return isUtf8(line) ? line : line.toString('utf8');
}

/** The decoder for one child's stdout and stderr under `framing`. */
export function createOutput(framing: ProcessFraming, limits: OutputLimits, target: OutputTarget): FramedOutput {
  // stderr is always read as lines for the log (and, with json framing, forwarded); an over-long stderr line
  // is split, never fatal.
  const stderrLines = new LineSplitter(limits.maxLineBytes, (line) => {
    const text = line.toString('utf8');
    target.stderrLine(text);
    if (framing === 'json') target.send(JSON.stringify({ stream: 'stderr', data: text }), false);
  }, () => true);
  const stderr = (chunk: Buffer): void => stderrLines.push(chunk);
  switch (framing) {
    case 'binary':
      return { stdout: (chunk) => target.send(chunk, true), stderr, end: () => stderrLines.end() };
    case 'length-prefixed': {
      const reader = new RecordReader(limits.maxRecordBytes, (record) => target.send(record, true),
        (length) => target.tooLarge(`record of ${length} bytes over ${limits.maxRecordBytes}`));
      return { stdout: (chunk) => reader.push(chunk), stderr, end: () => stderrLines.end() };
    }
    case 'line':
    case 'json': {
      const onLine = framing === 'line'
        ? (line: Buffer) => target.send(lineAsText(line), false)
        : (line: Buffer) => target.send(JSON.stringify({ stream: 'stdout', data: line.toString('utf8') }), false);
      const lines = new LineSplitter(limits.maxLineBytes, onLine, () => {
        target.tooLarge(`line over ${limits.maxLineBytes} bytes`);
        return false;
      });
      return {
        stdout: (chunk) => lines.push(chunk),
        stderr,
        end: () => { lines.end(); stderrLines.end(); },
      };
    }
  }
}

/** What to write on the program's stdin for one whole message (with an optional tag in front). */
export function encodeInput(framing: ProcessFraming, data: Buffer, tag: string | undefined): Array<Buffer | string> {
  switch (framing) {
    case 'binary':
      return [data];
    case 'length-prefixed': {
      const header = Buffer.allocUnsafe(4);
      header.writeUInt32BE(data.length, 0);
      return [header, data];
    }
    case 'line':
    case 'json':
      return tag === undefined ? [data, NEWLINE_BUFFER] : [tag, data, NEWLINE_BUFFER];
  }
}
