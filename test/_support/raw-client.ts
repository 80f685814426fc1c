// A byte-level WebSocket client for conformance tests: a plain `net` socket, a handshake that can be broken on
// purpose, and frame reads through the independent parser in frames.ts. Never uses src/.
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import assert from 'node:assert/strict';
import type { RunningServer } from './cli-server.js';
import { Opcode, close as closeFrame, describeFrame, text, type ServerFrame } from './frames.js';
import { FrameInbox, parseHead, readResponseHead, sendBytes } from './_wire.js';

export interface HttpResponseHead {
  readonly httpVersion: string;
  readonly statusCode: number;
  readonly statusText: string;
  /** Lower-case names; repeated fields joined with ', '. */
  readonly headers: ReadonlyMap<string, string>;
  /** The response head as received, up to and including the blank line. */
  readonly raw: string;
}

export interface HandshakeOptions {
  /** Default '/echo'. */
  readonly path?: string;
  /** Default 'GET'. */
  readonly method?: string;
  /** Default 'HTTP/1.1'. */
  readonly httpVersion?: string;
  /** Overrides of the default request headers (names case-insensitive); null removes a default one. */
  readonly headers?: Readonly<Record<string, string | null>>;
  /** Send exactly these bytes as the request instead of building one. */
  readonly rawRequest?: string;
  /** How long to wait for the response head. Default 3000 ms. */
  readonly timeoutMs?: number;
}

export interface CloseResult {
  /** undefined when the close frame had no payload (RFC 6455 §7.1.5: then the code is "1005, no status"). */
  readonly code: number | undefined;
  readonly reason: string;
  readonly reasonBytes: Buffer;
  /** Whether the server closed the TCP connection before the deadline. */
  readonly tcpClosed: boolean;
  /** Frames the server sent after its close frame (RFC 6455 §5.5.1: there must be none). */
  readonly framesAfterClose: readonly ServerFrame[];
}

export interface DataMessage {
  readonly opcode: number;
  readonly payload: Buffer;
  readonly frameCount: number;
}

const defaultTimeoutMs = 3000;

function defaultHeaders(host: string, port: number): Record<string, string> {
  return {
    Host: `${host}:${port}`,
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
    'Sec-WebSocket-Version': '13',
  };
}

export function buildRequest(host: string, port: number, options: HandshakeOptions): string {
  const headers = new Map<string, [string, string]>();
  for (const [name, value] of Object.entries(defaultHeaders(host, port))) headers.set(name.toLowerCase(), [name, value]);
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    if (value === null) headers.delete(name.toLowerCase());
    else headers.set(name.toLowerCase(), [name, value]);
  }
  const lines = [`${options.method ?? 'GET'} ${options.path ?? '/echo'} ${options.httpVersion ?? 'HTTP/1.1'}`];
  for (const [name, value] of headers.values()) lines.push(`${name}: ${value}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

function parseResponseHead(raw: string): HttpResponseHead {
  const { firstLine, headers } = parseHead(raw, true);
  const statusLine = /^(HTTP\/\d\.\d) (\d{3})(?: (.*))?$/.exec(firstLine);
  if (!statusLine) throw new Error(`malformed HTTP status line: ${JSON.stringify(firstLine)}`);
  return { httpVersion: statusLine[1]!, statusCode: Number(statusLine[2]), statusText: statusLine[3] ?? '', headers, raw };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class RawClient {
  readonly socket: Socket;
  /** The request bytes sent (useful in failure messages). */
  readonly request: string;
  readonly response: HttpResponseHead;
  /** Resolves once the TCP connection is fully closed (either side). */
  readonly closed: Promise<void>;
  /** Bytes after the response head when the response was not 101 (the error body). */
  body: Buffer = Buffer.alloc(0);

  readonly #inbox: FrameInbox;

  /** Use openRawClient(). */
  constructor(socket: Socket, request: string, response: HttpResponseHead, leftover: Buffer, closed: Promise<void>, alreadyClosed: boolean) {
    this.socket = socket;
    this.request = request;
    this.response = response;
    this.closed = closed;
    const inbox = (this.#inbox = new FrameInbox({ tcpClosed: alreadyClosed }));
    const upgraded = response.statusCode === 101;
    socket.on('data', (chunk: Buffer) => {
      if (upgraded) inbox.push(chunk);
      else this.body = Buffer.concat([this.body, chunk]);
    });
    socket.on('error', (error) => inbox.noteSocketError(error));
    void closed.then(() => inbox.noteTcpClosed());
    if (leftover.length > 0) {
      if (upgraded) inbox.push(leftover);
      else this.body = Buffer.from(leftover);
    }
    socket.resume();
  }

  /** Whether the TCP connection has closed. */
  get tcpClosed(): boolean { return this.#inbox.tcpClosed; }
  /** The socket error seen, if any (ECONNRESET, EPIPE...). */
  get socketError(): Error | undefined { return this.#inbox.socketError; }
  /** Every frame received so far, in order, including those already taken. */
  get receivedFrames(): readonly ServerFrame[] { return this.#inbox.received; }

  /** Writes bytes; resolves when written (or when the write failed because the server closed). */
  send(bytes: Uint8Array): Promise<void> {
    return sendBytes(this.socket, bytes);
  }

  /**
   * Writes bytes in pieces of the given sizes (the last size repeats), pausing `delayMs` between pieces so the
   * server sees separate TCP reads (Nagle is off).
   */
  async sendInPieces(bytes: Uint8Array, sizes: number | readonly number[], delayMs = 5): Promise<void> {
    const sizeList = typeof sizes === 'number' ? [sizes] : sizes;
    if (sizeList.length === 0 || sizeList.some((size) => !Number.isInteger(size) || size <= 0)) throw new RangeError('piece sizes must be positive integers');
    let offset = 0;
    let index = 0;
    while (offset < bytes.length) {
      const size = sizeList[Math.min(index, sizeList.length - 1)]!;
      index++;
      await this.send(bytes.subarray(offset, offset + size));
      offset += size;
      if (offset < bytes.length) await sleep(delayMs);
    }
  }

  /** The next frame from the server. Checks the rules every server frame must follow (§5.1, §5.2). */
  async nextFrame(timeoutMs = defaultTimeoutMs): Promise<ServerFrame> {
    const frame = await this.#inbox.take(timeoutMs);
    // RFC 6455 §5.1: "A server MUST NOT mask any frames that it sends to the client."
    assert.equal(frame.masked, false, `server sent a masked frame: ${describeFrame(frame)}`);
    // RFC 6455 §5.2: RSV bits MUST be 0 unless an extension is negotiated (none is, here).
    assert.equal(frame.rsv, 0, `server set RSV bits without an extension: ${describeFrame(frame)}`);
    // RFC 6455 §5.2: "the minimal number of bytes MUST be used to encode the length".
    assert.ok(frame.minimalLength, `server used a non-minimal ${frame.lengthEncoding}-bit length: ${describeFrame(frame)}`);
    return frame;
  }

  /** The next complete data message (reassembling fragments); fails on any control frame in between. */
  async nextMessage(timeoutMs = defaultTimeoutMs): Promise<DataMessage> {
    const deadline = Date.now() + timeoutMs;
    const parts: Buffer[] = [];
    let opcode: number | undefined;
    while (true) {
      const frame = await this.nextFrame(Math.max(1, deadline - Date.now()));
      if (frame.opcode >= 8) {
        throw new assert.AssertionError({ message: `expected a data message, got ${describeFrame(frame)}`, actual: describeFrame(frame), expected: 'data frame' });
      }
      if (opcode === undefined) {
        assert.notEqual(frame.opcode, Opcode.continuation, `server sent a continuation frame with no message started: ${describeFrame(frame)}`);
        opcode = frame.opcode;
      } else {
        assert.equal(frame.opcode, Opcode.continuation, `server started a new message inside a fragmented one: ${describeFrame(frame)}`);
      }
      parts.push(frame.payload);
      if (frame.fin) return { opcode, payload: Buffer.concat(parts), frameCount: parts.length };
    }
  }

  /**
   * Waits for the server's close frame and then for the server to close TCP. A data or control frame before the
   * close frame is an assertion failure (take expected frames first with nextFrame/nextMessage). Does not answer
   * the close frame: after failing a connection the server MUST NOT wait for one (§7.1.7), and after a
   * client-initiated close the server's close frame is itself the answer.
   */
  async expectClose(timeoutMs = defaultTimeoutMs): Promise<CloseResult> {
    const deadline = Date.now() + timeoutMs;
    let frame: ServerFrame;
    try {
      frame = await this.nextFrame(timeoutMs);
    } catch (error) {
      throw new assert.AssertionError({ message: `expected a close frame: ${(error as Error).message}`, actual: undefined, expected: 'close frame' });
    }
    if (frame.opcode !== Opcode.close) {
      throw new assert.AssertionError({ message: `expected a close frame, got ${describeFrame(frame)}`, actual: describeFrame(frame), expected: 'close frame' });
    }
    // RFC 6455 §5.5: control frames MUST NOT be fragmented.
    assert.equal(frame.fin, true, `server fragmented its close frame: ${describeFrame(frame)}`);
    // RFC 6455 §5.5.1: a body, when present, starts with a 2-byte code.
    assert.notEqual(frame.payload.length, 1, 'server sent a close frame with a 1-byte payload');
    const inbox = this.#inbox;
    while (!inbox.tcpClosed && (await inbox.waitForChange(deadline))) { /* wait for the TCP close */ }
    const code = frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : undefined;
    const reasonBytes = Buffer.from(frame.payload.subarray(2));
    return {
      code,
      reason: reasonBytes.toString('utf8'),
      reasonBytes,
      tcpClosed: inbox.tcpClosed,
      framesAfterClose: inbox.pending.splice(0),
    };
  }

  /** Asserts that no frame arrives for `ms` milliseconds. */
  async expectSilence(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    const inbox = this.#inbox;
    while (inbox.pending.length === 0 && (await inbox.waitForChange(deadline))) { /* keep waiting */ }
    const frame = inbox.pending[0];
    if (frame !== undefined) assert.fail(`expected no frame, got ${describeFrame(frame)}`);
  }

  /** Frames not yet taken. */
  get pendingFrames(): readonly ServerFrame[] { return this.#inbox.pending; }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Opens a TCP connection, sends a handshake request and resolves once the response head is read. */
export async function openRawClient(port: number, host = '127.0.0.1', options: HandshakeOptions = {}): Promise<RawClient> {
  const request = options.rawRequest ?? buildRequest(host, port, options);
  const socket = connect({ port, host });
  socket.setNoDelay(true);
  let tcpClosed = false;
  const closed = new Promise<void>((resolve) => socket.once('close', () => { tcpClosed = true; resolve(); }));
  socket.on('error', () => { /* recorded by RawClient; 'close' follows */ });
  try {
    // readResponseHead leaves the socket paused: it holds further bytes until RawClient listens.
    const { head, leftover } = await readResponseHead(socket, request, options.timeoutMs ?? defaultTimeoutMs);
    return new RawClient(socket, request, parseResponseHead(head), leftover, closed, tcpClosed);
  } catch (error) {
    socket.destroy();
    throw error;
  }
}

/** Clients opened through the helpers below, destroyed by closeAllClients() (call it in afterEach). */
const openClients = new Set<RawClient>();

/** Opens a WebSocket to `path` (default /echo) and asserts the 101 response. */
export async function connectWebSocket(server: RunningServer, path = '/echo', options: HandshakeOptions = {}): Promise<RawClient> {
  const client = await openRawClient(server.port, server.host, { ...options, path });
  openClients.add(client);
  void client.closed.then(() => openClients.delete(client));
  assert.equal(client.response.statusCode, 101, `expected 101 Switching Protocols, got:\n${client.response.raw}`);
  return client;
}

/** Opens a raw HTTP exchange that is expected not to upgrade (tracked for cleanup like connectWebSocket). */
export async function openTracked(server: RunningServer, options: HandshakeOptions): Promise<RawClient> {
  const client = await openRawClient(server.port, server.host, options);
  openClients.add(client);
  void client.closed.then(() => openClients.delete(client));
  return client;
}

export function closeAllClients(): void {
  for (const client of openClients) client.destroy();
  openClients.clear();
}

/** Proves the server process is alive and still echoing: one text round trip and a clean close on a new connection. */
export async function assertServerStillEchoes(server: RunningServer, path = '/echo'): Promise<void> {
  const client = await connectWebSocket(server, path);
  try {
    await client.send(text('still alive'));
    const message = await client.nextMessage();
    assert.equal(message.opcode, Opcode.text);
    assert.equal(message.payload.toString('utf8'), 'still alive');
    await client.send(closeFrame(1000));
    const result = await client.expectClose();
    assert.equal(result.tcpClosed, true, 'server did not close TCP after the close handshake');
  } finally {
    client.destroy();
  }
}

/**
 * Asserts that the server failed the connection (RFC 6455 §7.1.7): a close frame with one of `codes`, no frame
 * after it, and the TCP connection closed by the server without waiting for our close frame; then proves that
 * another connection still works.
 */
export async function expectFailure(client: RawClient, server: RunningServer, codes: number | readonly number[], timeoutMs = defaultTimeoutMs): Promise<CloseResult> {
  const expected = typeof codes === 'number' ? [codes] : codes;
  const result = await client.expectClose(timeoutMs);
  assert.ok(
    result.code !== undefined && expected.includes(result.code),
    `expected close code ${expected.join(' or ')}, got ${result.code ?? 'none (empty close payload)'} reason ${JSON.stringify(result.reason)}`,
  );
  assert.deepEqual(result.framesAfterClose.map(describeFrame), [], 'server sent frames after its close frame (§5.5.1)');
  assert.equal(result.tcpClosed, true, `server sent close ${result.code} but did not close the TCP connection within ${timeoutMs} ms (§7.1.7 / §7.1.1)`);
  client.destroy();
  await assertServerStillEchoes(server);
  return result;
}

/** Sends a message and asserts the echo has the same type and bytes. */
export async function assertEcho(client: RawClient, frames: Uint8Array, opcode: number, payload: Uint8Array, timeoutMs = defaultTimeoutMs): Promise<void> {
  await client.send(frames);
  const message = await client.nextMessage(timeoutMs);
  assert.equal(message.opcode, opcode, `echo has opcode ${message.opcode}, expected ${opcode}`);
  assert.ok(Buffer.from(payload).equals(message.payload), `echo payload differs: ${message.payload.length} bytes received, ${payload.length} sent`);
}

/** Common server arguments: an echo route and no keep-alive pings (so no unexpected server frames). */
export const echoServerArgs: readonly string[] = ['--echo', '/echo', '--ping-interval-ms', '0'];
