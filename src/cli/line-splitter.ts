// Cuts a byte stream (connect's stdin in a pipe) into lines: "\n" ends a line, a "\r" before it is dropped,
// and bytes after the last newline are a line of their own at the end of the stream. Works on bytes, so a
// multi-byte character split across reads stays whole.

export class LineSplitter {
  #partial: Buffer[] = [];

  /** The complete lines in `chunk` (and what was held back before it), without their line ends. */
  push(chunk: Buffer): Buffer[] {
    const lines: Buffer[] = [];
    let start = 0;
    for (let newline = chunk.indexOf(0x0a); newline !== -1; newline = chunk.indexOf(0x0a, start)) {
      let line = chunk.subarray(start, newline);
      if (this.#partial.length > 0) {
        line = Buffer.concat([...this.#partial, line]);
        this.#partial = [];
      }
      lines.push(stripCarriageReturn(line));
      start = newline + 1;
    }
    if (start < chunk.length) this.#partial.push(chunk.subarray(start));
    return lines;
  }

  /** At the end of the stream: the unterminated last line, if there is one. */
  end(): Buffer | undefined {
    if (this.#partial.length === 0) return undefined;
    const line = Buffer.concat(this.#partial);
    this.#partial = [];
    return stripCarriageReturn(line);
  }
}

function stripCarriageReturn(line: Buffer): Buffer {
  return line.length > 0 && line[line.length - 1] === 0x0d ? line.subarray(0, -1) : line;
}
