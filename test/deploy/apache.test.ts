// switchyard serve behind the real Debian Apache httpd 2.4 (mod_proxy_http with upgrade=websocket), configured with
// docs/deploy.md's Apache block (copied out of the page; ports substituted, `Timeout` set in the frame around it):
// static files, echo, broadcast, headers, and idle tunnels kept open by pings and cut by the timeout without them.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { apacheMissing, needPeer } from '../_support/peers.js';
import { startApache, substitute } from './_proxies.js';
import { deployment, describeCommonChecks, expectEcho, idleMs, openClient, shortIdleSeconds, type ProxyKind } from './_suite.js';

const apache: ProxyKind = {
  name: 'Apache httpd',
  missing: apacheMissing,
  startAsDocumented: (upstreamPort) => startApache({ upstreamPort, timeoutSeconds: 300 }),
  startShortTimeouts: (upstreamPort) => startApache({ upstreamPort, timeoutSeconds: shortIdleSeconds }),
  controls: [{
    label: `Timeout ${shortIdleSeconds}`,
    start: (upstreamPort) => startApache({ upstreamPort, timeoutSeconds: shortIdleSeconds }),
    cutWindowMs: [shortIdleSeconds * 1000 - 500, shortIdleSeconds * 1000 + 2_500],
  }],
};

describe('switchyard serve behind Apache httpd (docs/deploy.md)', () => {
  const env = deployment(apache);
  describeCommonChecks(apache, env);

  it(`a ProxyPass timeout=${shortIdleSeconds} below the server's Timeout does not shorten an idle tunnel (as the doc says)`, { timeout: 30_000 }, async (t) => {
    if (!needPeer(t, apacheMissing())) return;
    const proxy = await startApache({
      upstreamPort: env().quietServer.port, timeoutSeconds: 60,
      edit: (site) => substitute(site, 'upgrade=websocket', `upgrade=websocket timeout=${shortIdleSeconds}`, 'apache'),
    });
    t.after(() => proxy.stop());
    const client = await openClient(t, `${proxy.wsUrl}/echo`);
    await expectEcho(client, 'before the quiet period', 'the echo before the quiet period');
    const closed = await client.closedWithin(idleMs);
    assert.equal(closed, undefined, `the tunnel closed with ${closed?.code}: timeout=${shortIdleSeconds} did shorten it\n${proxy.output()}`);
    await expectEcho(client, 'after the quiet period', 'the echo after the quiet period');
  });
});
