// A switchyard server in a process of its own, for tests that kill it with SIGKILL. Run with a port argument
// (0 for any): it listens on 127.0.0.1, prints "listening PORT", then one line per text message received on
// /ingest. Lines are written with writeSync, from inside the message handler: a message is on the pipe before
// the server even parses the next frame, so before the pong to any later ping is queued.
import { writeSync } from 'node:fs';
import { createServer } from '../../src/server/server.js';

const app = createServer({ pingIntervalMs: 0, closeTimeoutMs: 1000 });
app.websocket('/ingest', {
  message(_ws, data) {
    writeSync(1, `${data.toString()}\n`);
  },
});
const { port } = await app.listen({ port: Number(process.argv[2] ?? '0'), host: '127.0.0.1' });
writeSync(1, `listening ${port}\n`);
