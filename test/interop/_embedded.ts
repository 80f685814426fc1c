// An embedded switchyard app (createServer from src/server/server.ts) for interop tests that need behaviour the
// CLI cannot configure: a selected subprotocol, a server-initiated close, and the server's view of a close.
import { createServer } from '../../src/server/server.js';
import { AsyncQueue, withTimeout } from './_wait.js';

export interface ServerSideClose {
  readonly code: number;
  readonly reason: string;
  readonly wasClean: boolean;
}

export interface EmbeddedApp {
  readonly httpUrl: string;
  readonly wsUrl: string;
  /** What the close handler of the route at `path` was called with, connection by connection. */
  nextServerClose(path: string, timeoutMs: number): Promise<ServerSideClose>;
  close(): Promise<void>;
}

/** listen() may resolve with an AddressInfo or a URL string; the port is what the tests need. */
function portOf(address: unknown): number {
  if (typeof address === 'object' && address !== null && 'port' in address && typeof address.port === 'number') return address.port;
  if (typeof address === 'string') return Number(new URL(address).port);
  throw new Error(`app.listen() resolved with ${JSON.stringify(address)}: no port in it`);
}

/**
 * Routes:
 *   /echo    protocols ['chat.v1']; echoes every message, same type
 *   /closer  echoes, except that the message "bye" makes the server close with 4000 "done by server"
 *   /chat    protocols ['chat.v1']; echoes (a second path whose close the test observes)
 * Every route records what its close handler saw.
 */
export async function startEmbeddedApp(root?: string): Promise<EmbeddedApp> {
  const app = createServer(root === undefined ? {} : { root });
  const closes = new Map<string, AsyncQueue<ServerSideClose>>();
  const closesOn = (path: string): AsyncQueue<ServerSideClose> => {
    let queue = closes.get(path);
    if (!queue) closes.set(path, (queue = new AsyncQueue<ServerSideClose>()));
    return queue;
  };
  for (const path of ['/echo', '/chat']) {
    app.websocket(path, {
      protocols: ['chat.v1'],
      message(ws, data, isBinary) { ws.send(data, isBinary); },
      close(_ws, code, reason, wasClean) { closesOn(path).push({ code, reason, wasClean }); },
    });
  }
  app.websocket('/closer', {
    message(ws, data, isBinary) {
      if (!isBinary && data.toString('utf8') === 'bye') ws.close(4000, 'done by server');
      else ws.send(data, isBinary);
    },
    close(_ws, code, reason, wasClean) { closesOn('/closer').push({ code, reason, wasClean }); },
  });
  const port = portOf(await withTimeout(Promise.resolve(app.listen({ port: 0, host: '127.0.0.1' })), 5_000, 'app.listen()'));
  return {
    httpUrl: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    nextServerClose: (path, timeoutMs) => closesOn(path).next(timeoutMs, `the server's close handler on ${path}`),
    close: () => withTimeout(Promise.resolve(app.close()), 5_000, 'app.close()'),
  };
}
