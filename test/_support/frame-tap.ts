// A transparent TCP relay between a WebSocket client and a server that records the frames flowing each way,
// so an interop test can SEE what real peers put on the wire (RSV1 on compressed messages, fragmentation,
// masking) instead of only seeing that messages arrived. Bytes pass through unchanged and at once; parsing
// happens beside the relay. Independent of src/.
import { Buffer } from 'node:buffer';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { parseHead } from './_wire.js';

/** Who sent a frame. */
export type Sender = 'client' | 'server';

export interface TappedFrame {
  readonly from: Sender;
  readonly fin: boolean;
  readonly rsv1: boolean;
  readonly rsv2: boolean;
  readonly rsv3: boolean;
  readonly opcode: number;
  readonly masked: boolean;
  /** Payload length from the header. */
  readonly length: number;
}

export interface TappedConnection {
  readonly id: number;
  /** The client's request head (up to the blank line), once complete. */
  requestHead: string | undefined;
  /** The server's response head, once complete. */
  responseHead: string | undefined;
  statusCode: number | undefined;
  /** The request's path, e.g. /echo. */
  path: string | undefined;
  /** Lower-case header names; repeated headers joined with ', '. */
  readonly requestHeaders: Map<string, string>;
  readonly responseHeaders: Map<string, string>;
  /** Frames in the order their headers passed the tap (per direction in order; across directions as seen). */
  readonly frames: TappedFrame[];
  /** Anything malformed: a masked server frame, an unmasked client frame, an unparseable head. */
  readonly problems: string[];
  closed: boolean;
}

export interface FrameTap {
  readonly host: string;
  readonly port: number;
  /** ws://host:port — point clients here instead of at the server. */
  readonly wsUrl: string;
  /** http://host:port */
  readonly httpUrl: string;
  /** Every connection relayed so far, oldest first. */
  readonly connections: readonly TappedConnection[];
  /** The upgraded (101) connections, optionally only those for `path`. */
  websockets(path?: string): TappedConnection[];
  /** Resolves once `check` returns a value other than undefined (re-checked on every frame), or rejects naming `what`. */
  waitFor<T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T>;
  close(): Promise<void>;
}

/** Parses the frames of one direction incrementally, keeping only headers (payload bytes are skipped, not held). */
class FrameScanner {
  readonly #from: Sender;
  readonly #onFrame: (frame: TappedFrame) => void;
  #header = Buffer.alloc(0);
  /** Payload bytes of the current frame still to skip. */
  #skip = 0;

  constructor(from: Sender, onFrame: (frame: TappedFrame) => void) {
    this.#from = from;
    this.#onFrame = onFrame;
  }

  push(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.#skip > 0) {
        const step = Math.min(this.#skip, chunk.length - offset);
        this.#skip -= step;
        offset += step;
        continue;
      }
      // Collect header bytes: 2, then the extended length, then the mask.
      const needed = this.#headerLength();
      const take = Math.min(needed - this.#header.length, chunk.length - offset);
      this.#header = Buffer.concat([this.#header, chunk.subarray(offset, offset + take)]);
      offset += take;
      if (this.#header.length < this.#headerLength()) continue;
      this.#emit();
    }
  }

  /** Header length as far as the bytes so far tell (at least 2). */
  #headerLength(): number {
    if (this.#header.length < 2) return 2;
    const len7 = this.#header[1]! & 0x7f;
    const masked = (this.#header[1]! & 0x80) !== 0;
    return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (masked ? 4 : 0);
  }

  #emit(): void {
    const header = this.#header;
    this.#header = Buffer.alloc(0);
    const len7 = header[1]! & 0x7f;
    const length = len7 === 126 ? header.readUInt16BE(2) : len7 === 127 ? Number(header.readBigUInt64BE(2)) : len7;
    const b0 = header[0]!;
    this.#onFrame({
      from: this.#from,
      fin: (b0 & 0x80) !== 0,
      rsv1: (b0 & 0x40) !== 0,
      rsv2: (b0 & 0x20) !== 0,
      rsv3: (b0 & 0x10) !== 0,
      opcode: b0 & 0x0f,
      masked: (header[1]! & 0x80) !== 0,
      length,
    });
    this.#skip = length;
  }
}

/** Starts a relay on 127.0.0.1:0 that forwards every connection to `target`. */
export async function startFrameTap(target: { readonly host: string; readonly port: number }): Promise<FrameTap> {
  const connections: TappedConnection[] = [];
  const sockets = new Set<Socket>();
  const listeners = new Set<() => void>();
  const notify = (): void => { for (const listener of [...listeners]) listener(); };
  let nextId = 1;

  const server: Server = createServer({ allowHalfOpen: true }, (downstream) => {
    const upstream = connect({ host: target.host, port: target.port, allowHalfOpen: true });
    sockets.add(downstream);
    sockets.add(upstream);
    downstream.setNoDelay(true);
    upstream.setNoDelay(true);
    const record: TappedConnection = {
      id: nextId++, requestHead: undefined, responseHead: undefined, statusCode: undefined, path: undefined,
      requestHeaders: new Map(), responseHeaders: new Map(), frames: [], problems: [], closed: false,
    };
    connections.push(record);

    const onFrame = (frame: TappedFrame): void => {
      // RFC 6455 §5.1: clients mask every frame, servers none.
      if (frame.from === 'client' && !frame.masked) record.problems.push(`unmasked client frame (opcode ${frame.opcode})`);
      if (frame.from === 'server' && frame.masked) record.problems.push(`masked server frame (opcode ${frame.opcode})`);
      record.frames.push(frame);
      notify();
    };
    const clientFrames = new FrameScanner('client', onFrame);
    const serverFrames = new FrameScanner('server', onFrame);
    // Each direction: the HTTP head first, then frames once the server answered 101. Client bytes after its
    // request head wait in `pendingClient` until the response says whether they are frames.
    let requestBuffer = Buffer.alloc(0);
    let responseBuffer = Buffer.alloc(0);
    let pendingClient: Buffer[] = [];
    let mode: 'head' | 'frames' | 'passthrough' = 'head';

    const onClientBytes = (chunk: Buffer): void => {
      if (mode === 'passthrough') return;
      if (mode === 'frames') { clientFrames.push(chunk); return; }
      if (record.requestHead === undefined) {
        requestBuffer = Buffer.concat([requestBuffer, chunk]);
        const end = requestBuffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        record.requestHead = requestBuffer.subarray(0, end).toString('latin1');
        const { firstLine, headers } = parseHead(record.requestHead, false);
        record.path = firstLine.split(' ')[1];
        for (const [name, value] of headers) record.requestHeaders.set(name, value);
        const rest = requestBuffer.subarray(end + 4);
        requestBuffer = Buffer.alloc(0);
        if (rest.length > 0) pendingClient.push(Buffer.from(rest));
        notify();
        return;
      }
      pendingClient.push(chunk);
    };

    const onServerBytes = (chunk: Buffer): void => {
      if (mode === 'passthrough') return;
      if (mode === 'frames') { serverFrames.push(chunk); return; }
      responseBuffer = Buffer.concat([responseBuffer, chunk]);
      const end = responseBuffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      record.responseHead = responseBuffer.subarray(0, end).toString('latin1');
      const { firstLine, headers } = parseHead(record.responseHead, false);
      record.statusCode = Number(/^HTTP\/\d\.\d (\d{3})/.exec(firstLine)?.[1] ?? 0);
      for (const [name, value] of headers) record.responseHeaders.set(name, value);
      const rest = responseBuffer.subarray(end + 4);
      responseBuffer = Buffer.alloc(0);
      if (record.statusCode === 101) {
        mode = 'frames';
        for (const pending of pendingClient) clientFrames.push(pending);
        if (rest.length > 0) serverFrames.push(Buffer.from(rest));
      } else {
        // Plain HTTP (a page, a refused upgrade): relay without looking further.
        mode = 'passthrough';
      }
      pendingClient = [];
      notify();
    };

    downstream.on('data', onClientBytes);
    upstream.on('data', onServerBytes);
    downstream.pipe(upstream);
    upstream.pipe(downstream);
    const finish = (): void => {
      if (record.closed) return;
      if (downstream.destroyed && upstream.destroyed) {
        record.closed = true;
        sockets.delete(downstream);
        sockets.delete(upstream);
        notify();
      }
    };
    // A reset on one side resets the other; a clean end is passed on by pipe().
    downstream.on('error', () => upstream.destroy());
    upstream.on('error', () => downstream.destroy());
    downstream.on('close', () => { if (!upstream.writableEnded) upstream.end(); upstream.once('close', finish); finish(); setTimeout(() => upstream.destroy(), 2000).unref(); });
    upstream.on('close', () => { if (!downstream.writableEnded) downstream.end(); downstream.once('close', finish); finish(); setTimeout(() => downstream.destroy(), 2000).unref(); });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  const waitFor = <T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> => new Promise<T>((resolve, reject) => {
    const listener = (): void => {
      let value: T | undefined;
      try {
        value = check();
      } catch (error) {
        done();
        reject(error as Error);
        return;
      }
      if (value !== undefined) {
        done();
        resolve(value);
      }
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`frame tap: timed out after ${timeoutMs} ms waiting for ${what}; saw ${describeTap(connections)}`));
    }, timeoutMs);
    function done(): void {
      clearTimeout(timer);
      listeners.delete(listener);
    }
    listeners.add(listener);
    listener();
  });

  return {
    host: '127.0.0.1',
    port,
    wsUrl: `ws://127.0.0.1:${port}`,
    httpUrl: `http://127.0.0.1:${port}`,
    connections,
    websockets: (path) => connections.filter((c) => c.statusCode === 101 && (path === undefined || c.path === path || c.path?.startsWith(`${path}?`) === true)),
    waitFor,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface DirectionSummary {
  /** Data messages (a first frame and its continuations count once). */
  readonly messages: number;
  /** Data messages whose first frame had RSV1. */
  readonly compressedMessages: number;
  readonly dataFrames: number;
  readonly controlFrames: number;
  /** Frames that broke RFC 7692 §6.1: RSV1 on a continuation or control frame, or RSV2/RSV3 set. */
  readonly misplacedRsv: readonly string[];
  /** Payload bytes of every data frame (compressed sizes where compressed). */
  readonly dataBytes: number;
}

const opcodeName = (opcode: number): string => ({ 0: 'continuation', 1: 'text', 2: 'binary', 8: 'close', 9: 'ping', 10: 'pong' } as Record<number, string>)[opcode] ?? `opcode ${opcode}`;

/** Counts what one sender put on the wire of a connection. */
export function summarize(connection: TappedConnection, from: Sender): DirectionSummary {
  let messages = 0;
  let compressedMessages = 0;
  let dataFrames = 0;
  let controlFrames = 0;
  let dataBytes = 0;
  const misplacedRsv: string[] = [];
  connection.frames.filter((frame) => frame.from === from).forEach((frame, index) => {
    if (frame.rsv2 || frame.rsv3) misplacedRsv.push(`frame ${index} (${opcodeName(frame.opcode)}) has RSV2/RSV3`);
    if (frame.opcode >= 8) {
      controlFrames++;
      if (frame.rsv1) misplacedRsv.push(`frame ${index} (${opcodeName(frame.opcode)}) is a control frame with RSV1`);
      return;
    }
    dataFrames++;
    dataBytes += frame.length;
    if (frame.opcode === 0) {
      if (frame.rsv1) misplacedRsv.push(`frame ${index} is a continuation frame with RSV1`);
      return;
    }
    messages++;
    if (frame.rsv1) compressedMessages++;
  });
  return { messages, compressedMessages, dataFrames, controlFrames, misplacedRsv, dataBytes };
}

export interface TappedMessage {
  readonly opcode: number;
  /** RSV1 on its first frame: sent compressed. */
  readonly compressed: boolean;
  readonly frames: number;
  /** Payload bytes on the wire (compressed size when compressed). */
  readonly wireBytes: number;
}

/** The data messages one sender put on the wire, in order (a first frame and its continuations are one). */
export function tappedMessages(connection: TappedConnection, from: Sender): TappedMessage[] {
  const messages: Array<{ opcode: number; compressed: boolean; frames: number; wireBytes: number }> = [];
  for (const frame of connection.frames) {
    if (frame.from !== from || frame.opcode >= 8) continue;
    const last = messages.at(-1);
    if (frame.opcode === 0 && last !== undefined) {
      last.frames++;
      last.wireBytes += frame.length;
    } else {
      messages.push({ opcode: frame.opcode, compressed: frame.rsv1, frames: 1, wireBytes: frame.length });
    }
  }
  return messages;
}

/** One line per connection, for assertion messages. */
export function describeTap(connections: readonly TappedConnection[]): string {
  if (connections.length === 0) return 'no connections';
  return connections.map((c) => {
    const frames = c.frames.map((f) => `${f.from[0]}:${opcodeName(f.opcode)}${f.rsv1 ? '+rsv1' : ''}${f.fin ? '' : '(fin=0)'}/${f.length}`);
    const shown = frames.length > 40 ? [...frames.slice(0, 20), `... ${frames.length - 40} more ...`, ...frames.slice(-20)] : frames;
    return `#${c.id} ${c.path ?? '?'} ${c.statusCode ?? 'no response'} ext=${JSON.stringify(c.responseHeaders.get('sec-websocket-extensions') ?? '')} [${shown.join(' ')}]${c.problems.length > 0 ? ` problems: ${c.problems.join('; ')}` : ''}`;
  }).join('\n');
}
