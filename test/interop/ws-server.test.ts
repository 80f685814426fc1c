// Interop: our client (`connect`) against a `ws` WebSocketServer with permessage-deflate off, a peer nobody here
// wrote, through the suite every peer server runs (_our-client-suite.ts). In-process; stopped in the suite's
// after hook. The same client against a ws server WITH compression: deflate-ws.test.ts.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { describeOurClientAgainst, type EchoPeerServer } from './_our-client-suite.js';
import { AsyncQueue, withTimeout } from './_wait.js';

const stepMs = 5_000;

/** A ws WebSocketServer with the paths the shared suite expects (see EchoPeerServer). */
async function startWsEchoPeer(): Promise<EchoPeerServer> {
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    perMessageDeflate: false,
    maxPayload: 1 << 24,
    handleProtocols: (protocols) => (protocols.has('chat.v1') ? 'chat.v1' : false),
  });
  await withTimeout(once(wss, 'listening'), stepMs, 'the ws server to listen');
  // What the server saw, per request path, in connection order: the suite asks about the first connection to a path.
  const closes = new Map<string, AsyncQueue<{ code: number; reason: string }>>();
  const pongs = new Map<string, AsyncQueue<true>>();
  const queue = <T>(map: Map<string, AsyncQueue<T>>, path: string): AsyncQueue<T> => {
    let found = map.get(path);
    if (!found) map.set(path, (found = new AsyncQueue<T>()));
    return found;
  };

  wss.on('connection', (socket, request) => {
    const path = request.url ?? '/';
    socket.on('error', () => {}); // the suite checks what each side saw; a reset is not a crash here
    // ws's close event carries the code and reason the peer's close frame had (1005 for none).
    socket.on('close', (code, reason) => queue(closes, path).push({ code, reason: reason.toString('utf8') }));
    if (path === '/ping-me') {
      socket.once('pong', () => {
        queue(pongs, path).push(true);
        socket.send('pong:ok');
      });
      socket.ping(Buffer.from('server-ping'));
    }
    let closing = false;
    socket.on('message', (data, isBinary) => {
      if (path !== '/server-close') {
        socket.send(data, { binary: isBinary });
      } else if (!closing) {
        closing = true;
        socket.close(4002, 'server bye');
      }
    });
  });

  const port = (wss.address() as AddressInfo).port;
  return {
    wsUrl: `ws://127.0.0.1:${port}`,
    serverSawClose: (path, timeoutMs) => queue(closes, path).next(timeoutMs, `the ws server to see ${path} close`),
    serverSawPong: async (path, timeoutMs) => { await queue(pongs, path).next(timeoutMs, `the ws server to get a pong on ${path}`); },
    stop: async () => {
      for (const client of wss.clients) client.terminate();
      await withTimeout(new Promise<void>((resolve) => wss.close(() => resolve())), stepMs, 'the ws server to close');
    },
  };
}

// The ws package is a devDependency, always installed: nothing to skip.
describeOurClientAgainst('a ws server', () => undefined, startWsEchoPeer);
