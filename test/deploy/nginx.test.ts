// switchyard serve behind the real Debian nginx, configured with docs/deploy.md's nginx blocks (copied out of the
// page; ports, certificate paths and proxy_read_timeout substituted): static files, echo, broadcast, headers,
// idle tunnels kept open by pings and cut without them, TLS termination, and what the doc's lines are for.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { needPeer, nginxMissing } from '../_support/peers.js';
import { makeCertificate } from '../config/_certificates.js';
import { startNginx, withoutLine } from './_proxies.js';
import {
  deployment, describeCommonChecks, expectEcho, expectRefusal, httpGet, indexHtml, openClient, shortIdleSeconds, startAll,
  type ProxyKind,
} from './_suite.js';

const nginx: ProxyKind = {
  name: 'nginx',
  missing: nginxMissing,
  startAsDocumented: (upstreamPort) => startNginx({ upstreamPort, readTimeoutSeconds: 60 }),
  startShortTimeouts: (upstreamPort) => startNginx({ upstreamPort, readTimeoutSeconds: shortIdleSeconds }),
  controls: [{
    label: `proxy_read_timeout ${shortIdleSeconds}s`,
    start: (upstreamPort) => startNginx({ upstreamPort, readTimeoutSeconds: shortIdleSeconds }),
    logLine: /upstream timed out .* while proxying upgraded connection/,
    cutWindowMs: [shortIdleSeconds * 1000 - 500, shortIdleSeconds * 1000 + 2_500],
  }],
};

describe('switchyard serve behind nginx (docs/deploy.md)', () => {
  const env = deployment(nginx);
  describeCommonChecks(nginx, env);

  it('terminates TLS with the doc\'s 443 server block: https page and wss echo reach switchyard', { timeout: 20_000 }, async (t) => {
    if (!needPeer(t, nginxMissing())) return;
    const certificate = await makeCertificate();
    if (!certificate) { t.skip('openssl is not installed: no certificate for the TLS block'); return; }
    t.after(() => fsp.rm(certificate.dir, { recursive: true, force: true }));
    const proxy = await startNginx({
      upstreamPort: env().server.port, readTimeoutSeconds: 60, site: 'nginx-tls',
      tls: { certFile: certificate.certFile, keyFile: certificate.keyFile },
    });
    t.after(() => proxy.stop());
    const page = await httpGet(`${proxy.httpUrl}/`, { ca: certificate.cert });
    assert.equal(page.status, 200, `GET / over https: ${page.status} ${page.body}\n${proxy.output()}`);
    assert.equal(page.body, indexHtml);
    const client = await openClient(t, `${proxy.wsUrl}/echo`, { ca: certificate.cert });
    await expectEcho(client, 'over wss, plain ws behind nginx', 'the echo over wss');
    await expectEcho(client, Buffer.from([0, 255, 1, 254]), 'the binary echo over wss');
  });

  it('without the Upgrade and Connection lines switchyard answers 426; without proxy_http_version 1.1, 400', { timeout: 20_000 }, async (t) => {
    if (!needPeer(t, nginxMissing())) return;
    const upstreamPort = env().server.port;
    const stops: Array<() => Promise<void>> = [];
    t.after(() => Promise.all(stops.map((stop) => stop())));
    const [noUpgradeHeaders, http10] = await startAll([
      startNginx({
        upstreamPort, readTimeoutSeconds: 60,
        edit: (site) => withoutLine(withoutLine(site, 'proxy_set_header Upgrade', 'nginx-site'), 'proxy_set_header Connection', 'nginx-site'),
      }),
      startNginx({ upstreamPort, readTimeoutSeconds: 60, edit: (site) => withoutLine(site, 'proxy_http_version 1.1;', 'nginx-site') }),
    ], (proxy) => stops.push(() => proxy.stop()));
    const missingHeaders = await expectRefusal(`${noUpgradeHeaders!.wsUrl}/echo`);
    assert.equal(missingHeaders.status, 426, `without the header lines: ${missingHeaders.status} ${missingHeaders.body}`);
    const oldHttp = await expectRefusal(`${http10!.wsUrl}/echo`);
    assert.equal(oldHttp.status, 400, `without proxy_http_version 1.1: ${oldHttp.status} ${oldHttp.body}`);
    assert.match(oldHttp.body, /HTTP\/1\.1/);
  });
});
