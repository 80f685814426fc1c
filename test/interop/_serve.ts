// A `switchyard serve` shared by the tests of one describe block.
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startCliServer, type RunningServer } from '../_support/cli-server.js';

/**
 * Call inside describe(): starts `switchyard serve ARGS` before the block's tests and stops it after them.
 * Returns url(path), the server's ws:// URL for `path`, which fails the calling test when the server did not start.
 */
export function serveDuringSuite(args: readonly string[]): (path: string) => string {
  let server: RunningServer | undefined;
  before(async () => {
    server = await startCliServer(args);
  });
  after(async () => {
    await server?.stop();
  });
  return (path) => {
    assert.ok(server, 'switchyard serve did not start');
    return `${server.wsUrl}${path}`;
  };
}
