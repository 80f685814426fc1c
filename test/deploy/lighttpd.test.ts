// switchyard serve behind the real Debian lighttpd, configured with docs/deploy.md's lighttpd block (copied out of
// the page; ports and the two idle timeouts substituted): static files, echo, broadcast, headers, idle tunnels
// kept open by pings and cut by either idle timeout without them, and a WebSocket over HTTP/2 (RFC 8441).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import { lighttpdMissing, needPeer } from '../_support/peers.js';
import { Opcode, parseServerFrames, text } from '../_support/frames.js';
import { withTimeout } from '../interop/_wait.js';
import { startLighttpd } from './_proxies.js';
import { deployment, describeCommonChecks, shortIdleSeconds, stepMs, type ProxyKind } from './_suite.js';

// lighttpd checks its idle timers once a second and cuts when one is exceeded: about a second after the limit.
const cutWindowMs = [shortIdleSeconds * 1000 - 500, shortIdleSeconds * 1000 + 3_500] as const;

const lighttpd: ProxyKind = {
  name: 'lighttpd',
  missing: lighttpdMissing,
  startAsDocumented: (upstreamPort) => startLighttpd({ upstreamPort, maxReadIdleSeconds: 60, maxWriteIdleSeconds: 360 }),
  startShortTimeouts: (upstreamPort) =>
    startLighttpd({ upstreamPort, maxReadIdleSeconds: shortIdleSeconds, maxWriteIdleSeconds: shortIdleSeconds }),
  controls: [
    {
      label: `server.max-read-idle = ${shortIdleSeconds} alone`,
      start: (upstreamPort) => startLighttpd({ upstreamPort, maxReadIdleSeconds: shortIdleSeconds, maxWriteIdleSeconds: 360 }),
      cutWindowMs,
    },
    {
      label: `server.max-write-idle = ${shortIdleSeconds} alone`,
      start: (upstreamPort) => startLighttpd({ upstreamPort, maxReadIdleSeconds: 60, maxWriteIdleSeconds: shortIdleSeconds }),
      cutWindowMs,
    },
  ],
};

describe('switchyard serve behind lighttpd (docs/deploy.md)', () => {
  const env = deployment(lighttpd);
  describeCommonChecks(lighttpd, env);

  it('carries a WebSocket over HTTP/2 (RFC 8441 extended CONNECT) to switchyard as an HTTP/1.1 upgrade', { timeout: 20_000 }, async (t) => {
    if (!needPeer(t, lighttpdMissing())) return;
    const session = http2.connect(env().proxy.httpUrl); // h2c with prior knowledge, as Debian's config enables
    t.after(() => { session.destroy(); });
    session.on('error', () => {});
    const settings = await withTimeout(
      new Promise<http2.Settings>((resolve) => session.once('remoteSettings', resolve)), stepMs, 'lighttpd\'s HTTP/2 settings',
    );
    assert.equal(settings.enableConnectProtocol, true, 'lighttpd did not offer SETTINGS_ENABLE_CONNECT_PROTOCOL');

    const stream = session.request({
      ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'http', ':path': '/echo',
      ':authority': `127.0.0.1:${env().proxy.port}`, 'sec-websocket-version': '13',
    });
    stream.on('error', () => {});
    const headers = await withTimeout(
      new Promise<http2.IncomingHttpHeaders>((resolve) => stream.once('response', resolve)), stepMs, 'the extended CONNECT response',
    );
    assert.equal(headers[':status'], 200, `extended CONNECT answered ${headers[':status']}`);

    let received = Buffer.alloc(0);
    const echoed = withTimeout(new Promise<Buffer>((resolve) => {
      stream.on('data', (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        const { frames } = parseServerFrames(received);
        const frame = frames.find((f) => f.opcode === Opcode.text);
        if (frame) resolve(frame.payload);
      });
    }), stepMs, 'the echo over the HTTP/2 stream');
    stream.write(text('over HTTP/2 \u2713'));
    assert.equal((await echoed).toString('utf8'), 'over HTTP/2 \u2713');
  });
});
