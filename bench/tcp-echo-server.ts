// The reference line: a raw node:net echo. It answers the HTTP upgrade with a fixed 101 (so the same load
// generator drives it) and then writes back every chunk unchanged: no framing, no unmasking, no validation.
// It is the ceiling for a single Node process on this machine, not a target.
import { createServer, type AddressInfo, type Socket } from 'node:net';

const RESPONSE = Buffer.from(
  'HTTP/1.1 101 Switching Protocols\r\n' +
    'Upgrade: websocket\r\n' +
    'Connection: Upgrade\r\n' +
    'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n',
  'latin1',
);
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');

function handle(socket: Socket): void {
  socket.setNoDelay(true);
  socket.on('error', () => {});
  let head: Buffer | undefined;
  const onHead = (chunk: Buffer): void => {
    head = head === undefined ? chunk : Buffer.concat([head, chunk]);
    const end = head.indexOf(HEAD_END);
    if (end === -1) return;
    socket.off('data', onHead);
    socket.on('data', (data: Buffer) => socket.write(data));
    socket.write(RESPONSE);
    if (end + 4 < head.length) socket.write(head.subarray(end + 4));
    head = undefined;
  };
  socket.on('data', onHead);
}

const server = createServer(handle);
server.listen(0, '127.0.0.1', () => {
  const address = server.address() as AddressInfo;
  process.stdout.write(`tcp-echo listening on http://127.0.0.1:${address.port}\n`);
});
server.on('error', (error) => {
  process.stderr.write(`tcp-echo-server: ${error.message}\n`);
  process.exit(1);
});
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0));
