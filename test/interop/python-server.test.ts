// Interop: our client (`connect`) against a python-websockets SERVER (Debian python3-websockets), a peer nobody
// here wrote. The server script (python/server.py) reports what it saw, so both ends of each close are checked.
import { pythonWebsocketsMissing } from '../_support/peers.js';
import { startPythonServer } from './_python.js';
import { describeOurClientAgainst, type EchoPeerServer } from './_our-client-suite.js';

async function startPythonEchoPeer(): Promise<EchoPeerServer> {
  const server = await startPythonServer();
  return {
    wsUrl: server.wsUrl,
    async serverSawClose(path, timeoutMs) {
      const event = await server.waitForEvent((e) => e.event === 'close' && e.path === path, timeoutMs, `the close of ${path}`);
      const frame = event['closeReceived'];
      if (frame === null || typeof frame !== 'object' || Array.isArray(frame)) {
        throw new Error(`python server.py received no close frame on ${path}: ${JSON.stringify(event)}`);
      }
      return { code: Number(frame['code']), reason: String(frame['reason']) };
    },
    async serverSawPong(path, timeoutMs) {
      await server.waitForEvent((e) => e.event === 'pong' && e.path === path, timeoutMs, `a pong on ${path}`);
    },
    stop: () => server.stop(),
  };
}

describeOurClientAgainst('a python-websockets server', pythonWebsocketsMissing, startPythonEchoPeer);
