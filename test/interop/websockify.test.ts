// Interop (issue 5, item 6): our TCP bridge side by side with websockify (Debian `websockify`), the program it
// replaces. The same VNC-like target (an RFB 003.008 banner, a few MB of deterministic pseudo-random bytes in
// variable-sized writes, then an echo of everything the client sent) is reached through each; the client sees
// the same bytes (same sha256) through both, the target receives the same bytes from both, and both end the
// same way: 1000 when the target closes (websockify 0.10 may drop the last bytes it read before the target's
// FIN; we deliver them all) and 1011 when the target cannot be reached.
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { createServer } from '../../src/server/server.js';
import { connect } from '../../src/client/connect.js';
import { tcpBridge } from '../../src/bridges/tcp-bridge.js';
import { needPeer, programPath, websockifyMissing } from '../_support/peers.js';
import { cleanupStack, sleep } from '../_support/cleanup.js';
import { freePort } from '../_support/resources.js';

const HOST = '127.0.0.1';
const BANNER = Buffer.from('RFB 003.008\n');
const STREAM_BYTES = 4 * 1024 * 1024;
const CLIENT_BYTES = 1024 * 1024;
const TIMEOUT_MS = 60_000;
const testOptions = { timeout: 90_000 } as const;
type Defer = (cleanup: () => unknown) => void;

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/** Deterministic pseudo-random bytes (AES-128-CTR keystream) for a seed. */
function keystream(seed: number, byteCount: number): Buffer {
  return createCipheriv('aes-128-ctr', Buffer.alloc(16, seed), Buffer.alloc(16, 0)).update(Buffer.alloc(byteCount));
}

/** Deterministic sizes in [1, max] (xorshift32), so writes and messages are cut the same way every run. */
function sizes(seed: number, max: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return 1 + (x % max);
  };
}

const STREAM = keystream(1, STREAM_BYTES);
const CLIENT_STREAM = keystream(2, CLIENT_BYTES);

/**
 * An RFB-like target: banner, then STREAM in variable-sized writes (honouring backpressure), then echoes what the
 * client sent (held until the stream is out, so what the client receives does not depend on timing).
 */
interface RfbTarget {
  readonly port: number;
  /** What each connection received, in accept order. */
  readonly received: Buffer[][];
  /** `end`: close once the stream is out, echoing nothing (for the close test). */
  mode: 'echo' | 'end';
}

async function startRfbTarget(defer: Defer): Promise<RfbTarget> {
  const received: Buffer[][] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.setNoDelay(true);
    const mine: Buffer[] = [];
    received.push(mine);
    let streamDone = false;
    let echoed = 0;
    const echo = (): void => {
      const all = Buffer.concat(mine);
      if (all.length > echoed) socket.write(all.subarray(echoed));
      echoed = all.length;
    };
    socket.on('data', (chunk: Buffer) => {
      mine.push(chunk);
      if (streamDone && target.mode === 'echo') echo();
    });
    socket.write(BANNER);
    const nextSize = sizes(7, 32 * 1024);
    let offset = 0;
    const pump = (): void => {
      while (offset < STREAM.length) {
        const end = Math.min(STREAM.length, offset + nextSize());
        const below = socket.write(STREAM.subarray(offset, end));
        offset = end;
        if (!below) {
          socket.once('drain', pump);
          return;
        }
      }
      streamDone = true;
      if (target.mode === 'end') socket.end();
      else echo();
    };
    pump();
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const target: RfbTarget = { port: (server.address() as net.AddressInfo).port, received, mode: 'echo' };
  defer(() => new Promise<void>((resolve) => {
    for (const socket of sockets) socket.destroy();
    server.close(() => resolve());
  }));
  return target;
}

/** Runs `websockify 127.0.0.1:PORT 127.0.0.1:TARGET` in its own process group; stopped (the group, by its PID) on cleanup. */
async function startWebsockify(defer: Defer, targetPort: number): Promise<{ url: string; output: () => string }> {
  const port = await freePort();
  let output = '';
  const child: ChildProcess = spawn(programPath('websockify'), [`${HOST}:${port}`, `${HOST}:${targetPort}`], {
    detached: true, stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  child.stderr?.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  defer(async () => {
    const pid = child.pid;
    if (pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    // websockify forks a process per connection: signal its group (whose id is its PID) so none is left.
    try { process.kill(-pid, 'SIGTERM'); } catch { /* already gone */ }
    const killer = setTimeout(() => { try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ } }, 3000);
    await exited;
    clearTimeout(killer);
  });
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`websockify exited with ${child.exitCode}:\n${output}`);
    const listening = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, HOST, () => { socket.destroy(); resolve(true); });
      socket.on('error', () => resolve(false));
    });
    if (listening) break;
    if (Date.now() > deadline) throw new Error(`websockify did not listen on ${port} within 15 s:\n${output}`);
    await sleep(50);
  }
  return { url: `ws://${HOST}:${port}/`, output: () => output };
}

async function startOurBridge(defer: Defer, targetPort: number): Promise<{ url: string }> {
  const app = createServer({ pingIntervalMs: 0 }).websocket('/vnc', tcpBridge({ target: { host: HOST, port: targetPort } }));
  const { port } = await app.listen({ port: 0, host: HOST });
  defer(() => app.close());
  return { url: `ws://${HOST}:${port}/vnc` };
}

interface Session {
  readonly protocol: string;
  readonly received: Buffer;
  readonly messages: number;
  readonly close: { code: number; reason: string };
}

/**
 * A VNC-like client: waits for the banner, then sends CLIENT_STREAM in variable-sized binary messages (honouring
 * backpressure) while reading; once `expectBytes` arrived it closes with 1000, unless the server closes first.
 */
async function runSession(url: string, protocols: readonly string[] | undefined, expectBytes: number, send: boolean): Promise<Session> {
  const chunks: Buffer[] = [];
  let receivedBytes = 0;
  let messages = 0;
  let bannerSeen: () => void = () => {};
  const banner = new Promise<void>((resolve) => { bannerSeen = resolve; });
  let drained: () => void = () => {};
  let onClose: (close: { code: number; reason: string }) => void = () => {};
  const closed = new Promise<{ code: number; reason: string }>((resolve) => { onClose = resolve; });
  const ws = await connect(url, {
    ...(protocols !== undefined && { protocols }),
    handlers: {
      message(self, data, isBinary) {
        assert.equal(isBinary, true, 'target bytes arrive as binary messages');
        chunks.push(Buffer.from(data));
        messages++;
        receivedBytes += data.length;
        if (receivedBytes >= BANNER.length) bannerSeen();
        if (receivedBytes >= expectBytes && self.readyState === 1) self.close(1000, 'done');
      },
      drain() { drained(); },
      close(_ws, code, reason) { onClose({ code, reason }); },
    },
  });
  try {
    if (send) {
      await banner;
      const nextSize = sizes(11, 20_000);
      for (let offset = 0; offset < CLIENT_STREAM.length;) {
        const end = Math.min(CLIENT_STREAM.length, offset + nextSize());
        const below = ws.send(CLIENT_STREAM.subarray(offset, end), true);
        offset = end;
        if (!below) await new Promise<void>((resolve) => { drained = resolve; });
      }
    }
    let timer: NodeJS.Timeout | undefined;
    const close = await Promise.race([closed, new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no close within ${TIMEOUT_MS} ms (received ${receivedBytes} of ${expectBytes} bytes)`)), TIMEOUT_MS);
    })]).finally(() => clearTimeout(timer));
    return { protocol: ws.protocol, received: Buffer.concat(chunks), messages, close };
  } finally {
    ws.terminate();
  }
}

function skipUnlessWebsockify(t: TestContext): boolean {
  return needPeer(t, websockifyMissing());
}

describe('TCP bridge side by side with websockify', () => {
  for (const protocols of [['binary'], undefined] as const) {
    const label = protocols === undefined ? 'no subprotocol' : 'the binary subprotocol';
    it(`carries the same VNC-like byte stream both ways as websockify does (${label}): same bytes, same sha256`, testOptions, async (t) => {
      if (!skipUnlessWebsockify(t)) return;
      const defer = cleanupStack(t);
      const target = await startRfbTarget(defer);
      const websockify = await startWebsockify(defer, target.port);
      const ours = await startOurBridge(defer, target.port);
      const expected = Buffer.concat([BANNER, STREAM, CLIENT_STREAM]);
      const theirs = await runSession(websockify.url, protocols, expected.length, true).catch((error: Error) => {
        throw new Error(`${error.message}\nwebsockify output:\n${websockify.output()}`);
      });
      const mine = await runSession(ours.url, protocols, expected.length, true);
      t.diagnostic(`websockify: ${theirs.messages} messages; switchyard: ${mine.messages} messages; ${expected.length} bytes each`);
      const wantProtocol = protocols === undefined ? '' : 'binary';
      assert.equal(theirs.protocol, wantProtocol, 'websockify selected');
      assert.equal(mine.protocol, wantProtocol, 'we selected');
      // Target -> client: the same bytes through both, and the bytes the target sent.
      assert.equal(sha256(mine.received), sha256(theirs.received));
      assert.ok(mine.received.equals(theirs.received));
      assert.equal(sha256(mine.received), sha256(expected));
      assert.deepEqual(theirs.close, { code: 1000, reason: 'done' });
      assert.deepEqual(mine.close, { code: 1000, reason: 'done' });
      // Client -> target: each connection delivered exactly what the client sent.
      assert.equal(target.received.length, 2);
      const [viaWebsockify, viaOurs] = target.received.map((parts) => Buffer.concat(parts));
      assert.equal(sha256(viaWebsockify!), sha256(CLIENT_STREAM), 'via websockify');
      assert.equal(sha256(viaOurs!), sha256(CLIENT_STREAM), 'via switchyard');
    });
  }

  it('ends the same way when the target closes: 1000 (we after every byte; websockify may drop the tail)', testOptions, async (t) => {
    if (!skipUnlessWebsockify(t)) return;
    const defer = cleanupStack(t);
    const target = await startRfbTarget(defer);
    target.mode = 'end';
    const websockify = await startWebsockify(defer, target.port);
    const ours = await startOurBridge(defer, target.port);
    const expected = Buffer.concat([BANNER, STREAM]);
    // expectBytes beyond the stream: the client never closes first, so the close is the target's.
    const theirs = await runSession(websockify.url, ['binary'], Infinity, false);
    const mine = await runSession(ours.url, ['binary'], Infinity, false);
    t.diagnostic(`websockify: ${theirs.close.code} "${theirs.close.reason}" after ${theirs.received.length} of ${expected.length} bytes; `
      + `switchyard: ${mine.close.code} "${mine.close.reason}" after ${mine.received.length}`);
    assert.equal(theirs.close.code, 1000);
    assert.equal(mine.close.code, 1000);
    assert.equal(sha256(mine.received), sha256(expected), 'we deliver every byte the target sent before its FIN');
    // websockify 0.10 closes as soon as it reads the target's EOF, dropping what it had read but not yet sent
    // (websocketproxy.py do_proxy): what it delivers is a prefix of the stream, sometimes all of it.
    assert.ok(expected.subarray(0, theirs.received.length).equals(theirs.received), 'websockify delivered a prefix of the stream');
  });

  it('ends the same way when the target cannot be reached: 1011 after the upgrade', testOptions, async (t) => {
    if (!skipUnlessWebsockify(t)) return;
    const defer = cleanupStack(t);
    const deadPort = await freePort();
    const websockify = await startWebsockify(defer, deadPort);
    const ours = await startOurBridge(defer, deadPort);
    const theirs = await runSession(websockify.url, ['binary'], Infinity, false);
    const mine = await runSession(ours.url, ['binary'], Infinity, false);
    t.diagnostic(`websockify: ${theirs.close.code} "${theirs.close.reason}"; switchyard: ${mine.close.code} "${mine.close.reason}"`);
    assert.equal(theirs.close.code, 1011);
    assert.equal(mine.close.code, 1011);
    assert.equal(mine.close.reason, `127.0.0.1:${deadPort}: connection refused (ECONNREFUSED)`);
  });
});
