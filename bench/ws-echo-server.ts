// The peer under test: a `ws` echo server in its own process, pure JavaScript (bufferutil and utf-8-validate are
// kept out), echoing every message with its isBinary flag. Prints `ws listening on http://127.0.0.1:PORT`.
// `--deflate-threshold-bytes N` accepts permessage-deflate with ws's defaults otherwise
// (`perMessageDeflate: { threshold: N }`: zlib level 6, memLevel 8, 15-bit windows, context takeover, 10 zlib jobs
// at a time); without it, no compression, as in the echo scenarios.
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';

// ws reads these when it is first loaded, so set them before the dynamic import below (a static import would be
// hoisted above this code). The parent sets them too.
process.env['WS_NO_BUFFER_UTIL'] = '1';
process.env['WS_NO_UTF_8_VALIDATE'] = '1';
const { WebSocketServer } = await import('ws');

const { values } = parseArgs({ options: { 'deflate-threshold-bytes': { type: 'string' } } });
const threshold = values['deflate-threshold-bytes'];
if (threshold !== undefined && !/^\d+$/.test(threshold)) throw new RangeError('--deflate-threshold-bytes must be a non-negative integer');

const wss = new WebSocketServer({
  port: 0,
  host: '127.0.0.1',
  perMessageDeflate: threshold === undefined ? false : { threshold: Number(threshold) },
});

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    ws.send(data, { binary: isBinary });
  });
  // A load generator that stops by destroying its sockets causes resets; they are not failures here.
  ws.on('error', () => {});
});

wss.on('listening', () => {
  const address = wss.address() as AddressInfo;
  process.stdout.write(`ws listening on http://127.0.0.1:${address.port}\n`);
});

wss.on('error', (error) => {
  process.stderr.write(`ws-echo-server: ${error.message}\n`);
  process.exit(1);
});

// Exit through process.exit so `node --cpu-prof` writes its profile when the bench stops us.
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0));
