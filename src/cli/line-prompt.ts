// The terminal prompt of `switchyard connect`: node:readline with a "> " prompt, plus print(), which writes
// lines above the prompt while the user may be half-way through typing one, and then redraws the prompt and
// the partly typed line with the cursor where it was.
import * as readline from 'node:readline';

export interface LinePromptHandlers {
  /** A whole line was entered. */
  line(text: string): void;
  /** Ctrl-D on an empty line (end of input). */
  end(): void;
  /** Ctrl-C. */
  interrupt(): void;
}

export class LinePrompt {
  readonly #rl: readline.Interface;
  readonly #output: NodeJS.WriteStream;
  #closed = false;

  constructor(input: NodeJS.ReadStream, output: NodeJS.WriteStream, handlers: LinePromptHandlers, prompt = '> ') {
    this.#output = output;
    this.#rl = readline.createInterface({ input, output, prompt, terminal: true, historySize: 200 });
    this.#rl.on('line', (text) => {
      handlers.line(text);
      if (!this.#closed) this.#rl.prompt();
    });
    this.#rl.on('SIGINT', () => handlers.interrupt());
    this.#rl.on('close', () => {
      if (this.#closed) return;
      this.#closed = true;
      // Ctrl-D: what is printed from now on starts at the beginning of the (empty) prompt line.
      readline.cursorTo(this.#output, 0);
      readline.clearLine(this.#output, 0);
      handlers.end();
    });
  }

  /** Shows the prompt (once the connection is open). */
  start(): void {
    this.#rl.prompt();
  }

  /**
   * Writes `text` (one or more lines, no trailing newline) above the prompt. The prompt and whatever has been
   * typed are wiped (from the prompt's first row: a typed line longer than the terminal wraps), the text
   * written, and readline redraws them below it: `prompt(true)` keeps the cursor inside the typed text.
   */
  print(text: string): void {
    if (this.#closed) {
      this.#output.write(`${text}\n`);
      return;
    }
    const { rows } = this.#rl.getCursorPos();
    if (rows > 0) readline.moveCursor(this.#output, 0, -rows);
    readline.cursorTo(this.#output, 0);
    readline.clearScreenDown(this.#output);
    this.#output.write(`${text}\n`);
    // Readline's redraw first moves up `prevRows` rows, its own note of how far below the prompt's first row
    // the cursor was. Node 20 does not update it while typing wraps onto a new row, and the cursor now stands
    // on the prompt's first row anyway: 0 is right.
    (this.#rl as unknown as { prevRows?: number }).prevRows = 0;
    this.#rl.prompt(true);
  }

  /** Removes the prompt and gives the terminal back (cooked mode). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    readline.cursorTo(this.#output, 0);
    readline.clearLine(this.#output, 0);
    this.#rl.close();
  }
}
