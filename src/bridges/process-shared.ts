// Shared mode of the process bridge: one long-running program for a whole route, started with the first
// connection and stopped after the last one leaves. Its output goes to every connection (each message
// encoded once); every connection's messages go to its stdin, optionally tagged with the connection id.
import type { WebSocket } from '../transport/websocket.js';
import { CloseCode, ReadyState } from '../protocol/constants.js';
import { PublishedMessage } from '../pubsub/published-message.js';
import { DEFAULT_CHILD_PATH, SWITCHYARD_VERSION, envValue } from './cgi-env.js';
import { BridgedChild, describeExit, type ChildOutcome } from './process-child.js';
import { createOutput, encodeInput, type FramedOutput } from './process-framing.js';
import type { ResolvedProcessOptions } from './process-bridge.js';

let nextSharedId = 1;

export class SharedProcess {
  readonly #options: ResolvedProcessOptions;
  /** The topic the slow-consumer policy sees (keep-latest keeps the newest output line per connection). */
  readonly #topic = `switchyard.process-bridge.${nextSharedId++}`;
  readonly #label: string;
  readonly #connections = new Set<WebSocket<any>>();
  /** Pieces of a message under way per connection (messagePiece), written whole so lines never interleave. */
  readonly #pieces = new Map<WebSocket<any>, Buffer[]>();
  #child: BridgedChild | undefined;
  #output: FramedOutput | undefined;
  /** Every connection's reading is paused while the program's stdin is full. */
  #inputPaused = false;

  constructor(options: ResolvedProcessOptions) {
    this.#options = options;
    this.#label = `shared ${options.command[0]}`;
  }

  join(ws: WebSocket<any>): void {
    this.#connections.add(ws);
    if (this.#child === undefined) this.#start();
    if (this.#inputPaused) ws.pause();
  }

  leave(ws: WebSocket<any>): void {
    this.#pieces.delete(ws);
    if (!this.#connections.delete(ws)) return;
    if (this.#connections.size > 0 || this.#child === undefined) return;
    // The last one left: stop the program; whatever it still writes is dropped.
    const child = this.#child;
    this.#child = undefined;
    this.#output = undefined;
    this.#inputPaused = false;
    child.stop();
  }

  message(ws: WebSocket<any>, data: Buffer): void {
    const child = this.#child;
    if (child === undefined || !this.#connections.has(ws)) return;
    const tag = this.#options.tagMessages ? `${ws.id} ` : undefined;
    if (!child.writeAll(encodeInput(this.#options.framing, data, tag)) && !this.#inputPaused) {
      this.#inputPaused = true;
      for (const connection of this.#connections) connection.pause();
    }
  }

  messagePiece(ws: WebSocket<any>, piece: Buffer, isLast: boolean): void {
    let pieces = this.#pieces.get(ws);
    if (pieces === undefined) this.#pieces.set(ws, (pieces = []));
    pieces.push(Buffer.from(piece));
    if (!isLast) return;
    this.#pieces.delete(ws);
    this.message(ws, Buffer.concat(pieces));
  }

  #start(): void {
    const options = this.#options;
    const env: Record<string, string> = { PATH: DEFAULT_CHILD_PATH };
    for (const name of options.passEnv) {
      const value = process.env[name];
      if (value !== undefined) env[name] = envValue(value);
    }
    Object.assign(env, {
      SERVER_SOFTWARE: `switchyard/${SWITCHYARD_VERSION}`, SWITCHYARD_SHARED: '1',
      ...(options.lineBuffered && { PYTHONUNBUFFERED: '1' }),
      ...options.env,
    });
    const output = createOutput(options.framing, options, {
      send: (data, isBinary) => { if (this.#output === output) this.#broadcast(data, isBinary); },
      tooLarge: (reason) => { if (this.#child === child) this.#ended(child, CloseCode.MessageTooBig, reason); },
      stderrLine: (line) => options.log?.(`${this.#label} pid ${child.pid ?? '-'} stderr: ${line}`),
    });
    const child: BridgedChild = new BridgedChild({
      argv: options.command, env, lineBuffered: options.lineBuffered, graceMs: options.killGraceMs,
      label: this.#label, log: options.log, ...(options.cwd !== undefined && { cwd: options.cwd }),
    }, {
      stdout: (chunk) => { if (this.#child === child) output.stdout(chunk); },
      stderr: (chunk) => output.stderr(chunk),
      stdinDrain: () => { if (this.#child === child) this.#resumeInput(); },
      closed: (outcome) => {
        if (this.#child !== child) return;
        output.end();
        this.#ended(child, CloseCode.InternalError, closeReason(outcome));
      },
    });
    this.#child = child;
    this.#output = output;
  }

  /**
   * The program ended (or broke the framing): every connection is closed with `code`, and the next
   * connection starts a fresh program.
   */
  #ended(child: BridgedChild, code: number, reason: string): void {
    this.#child = undefined;
    this.#output = undefined;
    this.#resumeInput();
    child.stop();
    const connections = [...this.#connections];
    this.#connections.clear();
    this.#pieces.clear();
    for (const ws of connections) if (ws.readyState === ReadyState.Open) ws.close(code, reason);
  }

  #resumeInput(): void {
    if (!this.#inputPaused) return;
    this.#inputPaused = false;
    for (const ws of this.#connections) ws.resume();
  }

  /**
   * One message to every connection, encoded once. A slow connection is never allowed to stall the program
   * for everyone: its own slow-consumer policy (maxBackpressureBytes) closes it or drops for it instead.
   */
  #broadcast(data: Buffer | string, isBinary: boolean): void {
    if (this.#connections.size === 0) return;
    const message = new PublishedMessage(data, isBinary);
    for (const ws of this.#connections) {
      if (ws.readyState === ReadyState.Open) ws.sendPublished(message, this.#topic);
    }
  }
}

function closeReason(outcome: ChildOutcome): string {
  switch (outcome.kind) {
    case 'not-started': return `cannot start: ${outcome.code}`;
    case 'signaled': return `shared process ended: ${describeExit(null, outcome.signal)}`;
    case 'exited': return `shared process ended: ${describeExit(outcome.code, null)}`;
  }
}
