// The TCP target of the `tcp-*` bridge benchmarks, its own process so its CPU is charged to neither the bridge nor
// the load generator. Transfers end by counting bytes, never by closing (websockify 0.10 may drop what it had read
// when the target closes). `--mode`: echo (every byte back), sink (reads, and answers with its running byte count),
// source (sends bytes as far as the client's running credit allows).
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { SOURCE_CHUNK } from './bridge-client.js';

const { values } = parseArgs({ options: { mode: { type: 'string', default: 'echo' } } });
const mode = values.mode;
if (mode !== 'echo' && mode !== 'sink' && mode !== 'source') {
  process.stderr.write(`tcp-target: --mode must be echo, sink or source (got ${String(mode)})\n`);
  process.exit(2);
}

function echo(socket: Socket): void {
  socket.on('data', (chunk: Buffer) => {
    if (!socket.write(chunk)) socket.pause();
  });
  socket.on('drain', () => socket.resume());
}

/** Reads everything; after each read, writes the total so far (8 bytes, big-endian): the client's proof of delivery. */
function sink(socket: Socket): void {
  let received = 0;
  socket.on('data', (chunk: Buffer) => {
    received += chunk.length;
    const count = Buffer.allocUnsafe(8);
    count.writeBigUInt64BE(BigInt(received));
    socket.write(count);
  });
}

/** Reads 8-byte big-endian credits (the total the client will take so far) and writes up to the latest one. */
function source(socket: Socket): void {
  let credit = 0;
  let sent = 0;
  let partial: Buffer = Buffer.alloc(0);
  let waitingForDrain = false;
  const pump = (): void => {
    while (sent < credit && !waitingForDrain) {
      const bytes = Math.min(SOURCE_CHUNK.length, credit - sent);
      sent += bytes;
      if (!socket.write(bytes === SOURCE_CHUNK.length ? SOURCE_CHUNK : SOURCE_CHUNK.subarray(0, bytes))) waitingForDrain = true;
    }
  };
  socket.on('drain', () => {
    waitingForDrain = false;
    pump();
  });
  socket.on('data', (chunk: Buffer) => {
    partial = partial.length === 0 ? chunk : Buffer.concat([partial, chunk]);
    while (partial.length >= 8) {
      credit = Math.max(credit, Number(partial.readBigUInt64BE(0)));
      partial = partial.subarray(8);
    }
    pump();
  });
}

const server = createServer({ noDelay: true }, (socket) => {
  socket.on('error', () => {});
  // allowHalfOpen is false: when the bridge half-closes, our side ends once what is queued is written.
  if (mode === 'echo') echo(socket);
  else if (mode === 'sink') sink(socket);
  else source(socket);
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address() as AddressInfo;
  process.stdout.write(`tcp-target (${mode}) listening on ${address.address}:${address.port}\n`);
});
server.on('error', (error) => {
  process.stderr.write(`tcp-target: ${error.message}\n`);
  process.exit(1);
});
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0));
