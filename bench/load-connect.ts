// Opening many WebSockets from a load process: in batches, each retried with backoff on transient errors, with a
// count of the retries (reported in the results) and a failure that says how far it got and what to check.
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildHandshakeRequest, openWebSocket, type OpenedSocket } from './frames.js';

export const HANDSHAKE_TIMEOUT_MS = 15_000;

/** Errors worth another attempt: the kernel refused this one connection, not the server as a whole. */
const RETRIABLE_CODES = new Set(['ECONNRESET', 'EADDRNOTAVAIL', 'EAGAIN', 'ETIMEDOUT', 'EPIPE']);
const CONNECT_ATTEMPTS = 5;

let retries = 0;

/** Connection attempts repeated after a retriable error, over the whole process (reported in the results). */
export function connectRetries(): number {
  return retries;
}

/** `open`, retried with backoff (100, 200, 400, 800 ms) on ECONNRESET, EADDRNOTAVAIL and the like. */
async function withRetry<T>(open: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await open();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (attempt >= CONNECT_ATTEMPTS || code === undefined || !RETRIABLE_CODES.has(code)) throw error;
      retries++;
      await sleep(100 * 2 ** (attempt - 1));
    }
  }
}

/**
 * Opens `count` connections, `batchSize` at a time (a whole batch is in the server's accept queue at once, so
 * batches keep it under the SYN backlog), each retried on transient errors. On failure, closes what did open and
 * throws an error that says how far it got and what to check.
 */
export async function openInBatches<T extends { socket: Socket }>(count: number, batchSize: number, open: () => Promise<T>): Promise<T[]> {
  const opened: T[] = [];
  try {
    for (let start = 0; start < count; start += batchSize) {
      const batch: Promise<T>[] = [];
      for (let i = start; i < Math.min(count, start + batchSize); i++) batch.push(withRetry(open));
      // allSettled so that a failure still lets us destroy the sockets that did open.
      const outcomes = await Promise.allSettled(batch);
      for (const outcome of outcomes) if (outcome.status === 'fulfilled') opened.push(outcome.value);
      const failed = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
      if (failed !== undefined) throw explainOpenFailure(failed.reason, opened.length, count);
    }
  } catch (error) {
    for (const { socket } of opened) socket.destroy();
    throw error;
  }
  return opened;
}

export function openMany(count: number, batchSize: number, host: string, port: number, path: string, extensions?: string): Promise<OpenedSocket[]> {
  const request = buildHandshakeRequest(host, port, path, extensions);
  return openInBatches(count, batchSize, () => openWebSocket(host, port, request, HANDSHAKE_TIMEOUT_MS));
}

function explainOpenFailure(reason: unknown, opened: number, wanted: number): Error {
  const error = reason instanceof Error ? reason : new Error(String(reason));
  const code = (error as NodeJS.ErrnoException).code;
  const hint =
    code === 'EMFILE' || code === 'ENFILE'
      ? `this process ran out of file descriptors (ulimit -n is ${OPEN_FILES_LIMIT})`
      : code === 'EADDRNOTAVAIL'
        ? 'no free local port (see /proc/sys/net/ipv4/ip_local_port_range and sockets left in TIME_WAIT: ss -s)'
        : code !== undefined && RETRIABLE_CODES.has(code)
          ? `still failing after ${CONNECT_ATTEMPTS} attempts`
          : 'not retried';
  return new Error(`could not open ${wanted} WebSockets (${opened} open when one failed): ${error.message}; ${hint}`);
}

/** Read at start-up: once descriptors run out, /proc/self/limits cannot be opened any more. */
const OPEN_FILES_LIMIT = ((): string => {
  try {
    return /^Max open files\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
})();
