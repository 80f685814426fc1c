// The idle scenario of the load generator: many connections opened and left idle (optionally after one message
// each), and the growth of the server's resident memory per connection.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { OPCODE, FrameCounter, buildMaskedFrame } from './frames.js';
import { readCpuSeconds, readRssKiB } from './proc-stats.js';
import { connectRetries, openMany } from './load-connect.js';
import { acceptAll, messagePlan, verifyEcho } from './load-messages.js';

export interface IdleResult {
  kind: 'idle';
  connections: number;
  rssBeforeKiB: number;
  rssAfterKiB: number;
  kibPerConnection: number;
  openMs: number;
  /** Server CPU time spent per handshake while the connections were opened. */
  serverCpuMicrosPerHandshake: number;
  loadCpuPercent: number;
  /** Connection attempts repeated after ECONNRESET, EADDRNOTAVAIL and the like. */
  connectRetries: number;
  /**
   * With --idle-message: after the reading above, every connection sends one message and gets its echo, then
   * settles again; the RSS then, the growth per connection from rssBeforeKiB, and the server CPU per message.
   */
  afterMessage?: { rssKiB: number; kibPerConnection: number; serverCpuMicrosPerMessage: number; ms: number };
}

export interface IdleOptions {
  host: string;
  port: number;
  path: string;
  serverPid: number;
  connections: number;
  batchSize: number;
  warmupConnections: number;
  settleMs: number;
  /** Negotiate permessage-deflate on every connection (the warm-up echoes a compressed message). */
  deflate: boolean;
  /** Bytes of the compressed JSON message (--deflate). */
  payloadBytes: number;
  variants: number;
  /** After the first reading, one message (and its echo) on every connection, then a second reading. */
  idleMessage: boolean;
}

/** Same warm-up for every server: open a few connections, echo one message on each, close them. */
async function warmUp(options: IdleOptions): Promise<void> {
  if (options.deflate) {
    const plan = messagePlan(options.payloadBytes, false, true, options.variants);
    const opened = await openMany(options.warmupConnections, options.batchSize, options.host, options.port, options.path, plan.offer);
    const checks = acceptAll(plan, opened);
    const sockets = await Promise.all(opened.map((socket, i) => verifyEcho(socket, plan, checks[i]!, i)));
    for (const { socket } of sockets) socket.end();
    return;
  }
  const frame = buildMaskedFrame(Buffer.from('warm-up message'), OPCODE.text);
  const sockets = await openMany(options.warmupConnections, options.batchSize, options.host, options.port, options.path);
  await Promise.all(
    sockets.map(
      ({ socket, leftover }) =>
        new Promise<void>((resolve, reject) => {
          const counter = new FrameCounter(OPCODE.text, 15);
          const onData = (chunk: Buffer): void => {
            if (counter.feed(chunk) > 0) {
              socket.off('data', onData);
              socket.end();
              resolve();
            }
          };
          socket.on('data', onData);
          socket.on('error', reject);
          if (leftover.length > 0) onData(leftover);
          socket.resume();
          socket.write(frame);
        }),
    ),
  );
}

/** Opens many idle connections and reports the growth of the server's resident memory per connection. */
export async function runIdle(options: IdleOptions): Promise<IdleResult> {
  const plan = messagePlan(options.payloadBytes, false, options.deflate, options.variants);
  await warmUp(options);
  await sleep(options.settleMs);
  const rssBeforeKiB = readRssKiB(options.serverPid);
  const cpuBefore = readCpuSeconds(options.serverPid);
  const loadCpuBefore = process.cpuUsage();
  const openStart = performance.now();
  let sockets = await openMany(options.connections, options.batchSize, options.host, options.port, options.path, plan.offer);
  const openMs = performance.now() - openStart;
  const serverCpuSeconds = readCpuSeconds(options.serverPid) - cpuBefore;
  const loadCpu = process.cpuUsage(loadCpuBefore);
  // With --deflate, every answer is checked here: a connection that did not negotiate would not count.
  const checks = acceptAll(plan, sockets);
  let closedEarly = 0;
  const watch = (): void => {
    for (const { socket } of sockets) {
      socket.on('close', () => closedEarly++);
      socket.on('error', () => {});
    }
  };
  const unwatch = (): void => {
    for (const { socket } of sockets) socket.removeAllListeners('close');
  };
  watch();
  await sleep(options.settleMs);
  const rssAfterKiB = readRssKiB(options.serverPid);
  let afterMessage: IdleResult['afterMessage'];
  if (options.idleMessage && closedEarly === 0) {
    // One message and its echo on every connection (compressed both ways with --deflate, so each one's zlib
    // contexts exist where the server keeps them), all at once, then idle again.
    unwatch();
    const cpuBeforeMessages = readCpuSeconds(options.serverPid);
    const messagesStart = performance.now();
    try {
      sockets = await Promise.all(sockets.map((socket, i) => verifyEcho(socket, plan, checks[i]!, i)));
    } catch (error) {
      for (const { socket } of sockets) socket.destroy();
      throw error;
    }
    const ms = performance.now() - messagesStart;
    const serverCpuMicrosPerMessage = ((readCpuSeconds(options.serverPid) - cpuBeforeMessages) * 1e6) / options.connections;
    watch();
    await sleep(options.settleMs);
    const rssKiB = readRssKiB(options.serverPid);
    afterMessage = { rssKiB, kibPerConnection: (rssKiB - rssBeforeKiB) / options.connections, serverCpuMicrosPerMessage, ms };
  }
  unwatch();
  for (const { socket } of sockets) socket.destroy();
  if (closedEarly > 0) throw new Error(`${closedEarly} idle connections were closed by the server`);
  return {
    kind: 'idle',
    connections: options.connections,
    rssBeforeKiB,
    rssAfterKiB,
    kibPerConnection: (rssAfterKiB - rssBeforeKiB) / options.connections,
    openMs,
    serverCpuMicrosPerHandshake: (serverCpuSeconds * 1e6) / options.connections,
    loadCpuPercent: ((loadCpu.user + loadCpu.system) / 1000 / openMs) * 100,
    connectRetries: connectRetries(),
    ...(afterMessage !== undefined && { afterMessage }),
  };
}
