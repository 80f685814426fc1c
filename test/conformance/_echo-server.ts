// The `switchyard serve --echo /echo` that a conformance file runs its cases against: started before the file's
// tests, every raw client closed after each test, the server stopped after the last.
import { after, afterEach, before } from 'node:test';
import { startCliServer, type RunningServer } from '../_support/cli-server.js';
import { closeAllClients, echoServerArgs } from '../_support/raw-client.js';

/** Registers the file's hooks; `started` receives the server once it listens. */
export function useEchoServer(started: (server: RunningServer) => void): void {
  let server: RunningServer | undefined;
  before(async () => {
    server = await startCliServer(echoServerArgs);
    started(server);
  });
  afterEach(closeAllClients);
  after(async () => {
    closeAllClients();
    await server?.stop();
  });
}
