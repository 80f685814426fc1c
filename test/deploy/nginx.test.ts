// switchyard serve behind the real Debian nginx, configured with docs/deploy.md's nginx blocks (copied out of the
// page; ports, certificate paths and proxy_read_timeout substituted): static files, echo, broadcast, headers,
// idle tunnels kept open by pings and cut without them, TLS termination, what the doc's lines are for, and
// --trust-proxy loopback putting the client nginx names in X-Forwarded-For into the access log.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { needPeer, nginxMissing } from '../_support/peers.js';
import { startCliServer, type RunningServer } from '../_support/cli-server.js';
import { makeCertificate } from '../config/_certificates.js';
import { startNginx, withoutLine } from './_proxies.js';
import {
  deployment, describeCommonChecks, expectEcho, expectRefusal, httpGet, indexHtml, openClient, shortIdleSeconds, startAll,
  stepMs, type ProxyKind,
} from './_suite.js';

/** Waits until the server's output (its access log) matches `pattern`; fails with the output when it does not. */
async function untilLogged(server: RunningServer, pattern: RegExp, what: string): Promise<void> {
  const deadline = Date.now() + stepMs;
  while (!pattern.test(server.output())) {
    if (Date.now() > deadline) assert.fail(`${what}: no line matching ${pattern} in switchyard's output:\n${server.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

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

  it('with --trust-proxy loopback logs the client from X-Forwarded-For for HTTP and WebSocket; without it, nginx\'s 127.0.0.1', { timeout: 20_000 }, async (t) => {
    if (!needPeer(t, nginxMissing())) return;
    const stops: Array<() => Promise<void>> = [];
    t.after(async () => {
      for (const stop of stops.reverse()) {
        try { await stop(); } catch { /* keep stopping the rest */ }
      }
    });
    const serve = (...extra: string[]) => startCliServer([env().root, '--echo', '/echo', '--ping-interval-ms', '0', ...extra]);
    const [trusting, untrusting] = await startAll([serve('--trust-proxy', 'loopback'), serve()], (server) => stops.push(() => server.stop()));
    const [trustedProxy, untrustedProxy] = await startAll([
      startNginx({ upstreamPort: trusting!.port, readTimeoutSeconds: 60 }),
      startNginx({ upstreamPort: untrusting!.port, readTimeoutSeconds: 60 }),
    ], (proxy) => stops.push(() => proxy.stop()));
    // The client claims an address; nginx's $proxy_add_x_forwarded_for appends the one it saw (127.0.0.1, this
    // test), which loopback trusts and skips, so the claim is what a trusting switchyard logs.
    const claimed = { 'X-Forwarded-For': '203.0.113.7' };
    for (const proxy of [trustedProxy!, untrustedProxy!]) {
      const page = await httpGet(`${proxy.httpUrl}/`, { headers: claimed });
      assert.equal(page.status, 200, `GET / through nginx: ${page.status} ${page.body}\n${proxy.output()}`);
      const client = await openClient(t, `${proxy.wsUrl}/echo`, { headers: claimed });
      await expectEcho(client, 'who am I', 'the echo through nginx');
      client.socket.close(1000);
      await client.closedWithin(stepMs);
    }
    await untilLogged(trusting!, /^203\.0\.113\.7 - - \[[^\]]+\] "GET \/ HTTP\/1\.1" 200 /m, 'the HTTP line with --trust-proxy loopback');
    await untilLogged(trusting!, /^ws-open 203\.0\.113\.7 \[[^\]]+\] "\/echo" route=\/echo /m, 'the ws-open line with --trust-proxy loopback');
    await untilLogged(trusting!, /^ws-close 203\.0\.113\.7 \[[^\]]+\] "\/echo" route=\/echo .* code=1000 /m, 'the ws-close line with --trust-proxy loopback');
    await untilLogged(untrusting!, /^127\.0\.0\.1 - - \[[^\]]+\] "GET \/ HTTP\/1\.1" 200 /m, 'the HTTP line without --trust-proxy');
    await untilLogged(untrusting!, /^ws-open 127\.0\.0\.1 \[[^\]]+\] "\/echo" route=\/echo /m, 'the ws-open line without --trust-proxy');
    await untilLogged(untrusting!, /^ws-close 127\.0\.0\.1 /m, 'the ws-close line without --trust-proxy');
    assert.doesNotMatch(untrusting!.output(), /203\.0\.113\.7/, 'without --trust-proxy a client\'s X-Forwarded-For is never logged');
    assert.doesNotMatch(trusting!.output(), /^(ws-open |ws-close )?127\.0\.0\.1 /m, 'with --trust-proxy loopback nginx\'s own address is not logged as the client');
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
