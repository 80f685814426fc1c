// The broadcast peer: a `ws` server in its own process, pure JavaScript (bufferutil and utf-8-validate are kept
// out), that sends every message it receives to every open client, the way ws users broadcast (the loop from the
// ws README: `wss.clients`, `readyState === OPEN`, `client.send(data, { binary: isBinary })`). Every connection,
// whatever its path, is a subscriber, as on switchyard's `--broadcast /chat` route that the bench compares it with.
// Prints `ws listening on http://127.0.0.1:PORT`.
import type { AddressInfo } from 'node:net';

// ws reads these when it is first loaded, so set them before the dynamic import below (a static import would be
// hoisted above this code). The parent sets them too.
process.env['WS_NO_BUFFER_UTIL'] = '1';
process.env['WS_NO_UTF_8_VALIDATE'] = '1';
const { WebSocketServer, WebSocket } = await import('ws');

const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    for (const client of wss.clients) {
      if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
    }
  });
  // A load generator that stops by destroying its sockets causes resets; they are not failures here.
  ws.on('error', () => {});
});

wss.on('listening', () => {
  const address = wss.address() as AddressInfo;
  process.stdout.write(`ws listening on http://127.0.0.1:${address.port}\n`);
});

wss.on('error', (error) => {
  process.stderr.write(`ws-broadcast-server: ${error.message}\n`);
  process.exit(1);
});

// Exit through process.exit so `node --cpu-prof` writes its profile when the bench stops us.
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0));
