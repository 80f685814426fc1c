// The `connect` command line read into a ConnectInvocation (pure, no processes): defaults, every flag, the
// checks with messages naming the flag (or URL), and the usage text listing every flag with its unit.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../src/errors.js';
import { CONNECT_DEFAULTS, CONNECT_FLAGS, KEY_PASSPHRASE_ENV, checkServerName, parseConnectArgs, parseDuration, parseHeader } from '../../src/config/connect-flags.js';
import { renderConnectUsage, renderUsage } from '../../src/config/help.js';

const URL = 'ws://127.0.0.1:8080/echo';

function rejection(args: string[]): ConfigError {
  try {
    parseConnectArgs(args);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error;
  }
  assert.fail(`accepted ${args.join(' ')}`);
}

function assertRejected(args: string[], field: string, message: RegExp): void {
  const error = rejection(args);
  assert.equal(error.field, field, `${args.join(' ')}: ${error.message}`);
  assert.match(error.message, message);
}

describe('parseConnectArgs: values', () => {
  it('gives the defaults for a bare URL', () => {
    assert.deepEqual(parseConnectArgs([URL]), {
      help: false, url: URL, protocols: [], headers: {}, insecure: false, followRedirects: 0, showBinary: 'hex', execute: [],
      replies: 1, replyTimeoutMs: 10_000, pingIntervalMs: 0, deflate: false, maxMessageBytes: 16 * 1024 * 1024,
      handshakeTimeoutMs: 10_000, closeTimeoutMs: 5_000,
    });
  });

  it('reads every flag, before or after the URL, with --name value and --name=value', () => {
    const invocation = parseConnectArgs([
      '--protocol', 'chat.v1', URL, '--protocol=chat.v2', '-H', 'X-Token: abc', "-HX-Other:  two words ", '--header', 'x-token: def',
      '--origin', 'https://example.com', '--insecure', '--show-binary', 'base64', '-x', 'one', '--execute=two', '--replies', '3',
      '--reply-timeout-ms', '250', '--ping-interval-ms', '1500', '--deflate', '--max-message-bytes', '1024', '--handshake-timeout-ms', '700',
      '--close-timeout-ms', '900', '--follow-redirects', '3', '--ca', 'ca.pem', '--cert=client.pem', '--key', 'client-key.pem',
      '--servername', 'api.example.com',
    ], { [KEY_PASSPHRASE_ENV]: 's3cret' });
    assert.deepEqual(invocation, {
      help: false, url: URL, protocols: ['chat.v1', 'chat.v2'], headers: { 'X-Token': 'abc, def', 'X-Other': 'two words' },
      origin: 'https://example.com', insecure: true, caFile: 'ca.pem', certFile: 'client.pem', keyFile: 'client-key.pem',
      passphrase: 's3cret', servername: 'api.example.com', followRedirects: 3, showBinary: 'base64', execute: ['one', 'two'],
      replies: 3, replyTimeoutMs: 250, pingIntervalMs: 1500, deflate: true, maxMessageBytes: 1024, handshakeTimeoutMs: 700, closeTimeoutMs: 900,
    });
  });

  it('takes --ping-interval with a unit (30s, 1.5s, 500ms) and refuses a bare number as ambiguous', () => {
    assert.equal(parseConnectArgs([URL, '--ping-interval', '30s']).pingIntervalMs, 30_000);
    assert.equal(parseConnectArgs([URL, '--ping-interval', '1.5s']).pingIntervalMs, 1_500);
    assert.equal(parseConnectArgs([URL, '--ping-interval=500ms']).pingIntervalMs, 500);
    assert.equal(parseDuration('0s', '--ping-interval'), 0);
    assertRejected([URL, '--ping-interval', '30'], '--ping-interval', /needs a unit: 30s or 30ms/);
    assertRejected([URL, '--ping-interval', 'soon'], '--ping-interval', /duration such as 30s or 500ms/);
  });

  it('--help wins over everything else, even a missing URL or a bad value', () => {
    assert.equal(parseConnectArgs(['--help']).help, true);
    assert.equal(parseConnectArgs(['-h', '--replies', 'x']).help, true);
  });

  it('takes the URL after --, and passes wss:// and ws+unix: URLs on to the client', () => {
    assert.equal(parseConnectArgs(['--', 'wss://example.com/feed?x=1']).url, 'wss://example.com/feed?x=1');
    assert.equal(parseConnectArgs(['ws+unix:/run/app.sock:/chat']).url, 'ws+unix:/run/app.sock:/chat');
    assert.equal(parseConnectArgs(['ws+unix:///run/app.sock:/chat?room=7']).url, 'ws+unix:///run/app.sock:/chat?room=7');
    assert.equal(parseConnectArgs(['wss+unix:///run/app.sock']).url, 'wss+unix:///run/app.sock');
  });

  it('takes http:// and https:// URLs as given (connect() reads them as ws:// and wss://)', () => {
    assert.equal(parseConnectArgs(['http://127.0.0.1:8080/echo']).url, 'http://127.0.0.1:8080/echo');
    assert.equal(parseConnectArgs(['https://example.com/feed']).url, 'https://example.com/feed');
  });

  it('--follow-redirects N: a whole number, 0 (the default) refusing redirects', () => {
    assert.equal(parseConnectArgs([URL, '--follow-redirects', '0']).followRedirects, 0);
    assert.equal(parseConnectArgs([URL, '--follow-redirects=5']).followRedirects, 5);
    assert.equal(CONNECT_DEFAULTS.followRedirects, 0);
  });

  it(`reads the key's passphrase from ${KEY_PASSPHRASE_ENV}, only when --key is given, and not when empty`, () => {
    const tlsArgs = [URL, '--cert', 'c.pem', '--key', 'k.pem'];
    assert.equal(parseConnectArgs(tlsArgs, { [KEY_PASSPHRASE_ENV]: 'pw' }).passphrase, 'pw');
    assert.equal(parseConnectArgs(tlsArgs, { [KEY_PASSPHRASE_ENV]: '' }).passphrase, undefined);
    assert.equal(parseConnectArgs(tlsArgs).passphrase, undefined);
    assert.equal(parseConnectArgs([URL], { [KEY_PASSPHRASE_ENV]: 'pw' }).passphrase, undefined);
    // There is deliberately no flag for it: a flag's value shows in `ps` and in shell history.
    assert.ok(!CONNECT_FLAGS.some((flag) => flag.name.includes('pass')));
  });

  it('--servername: a host name (an IP address cannot be sent as SNI)', () => {
    assert.equal(parseConnectArgs([URL, '--servername', 'localhost']).servername, 'localhost');
    assert.equal(checkServerName('internal_api.corp.example.', '--servername'), 'internal_api.corp.example.');
  });
});

describe('parseConnectArgs: errors name the flag', () => {
  it('refuses an unknown flag with a suggestion', () => {
    assertRejected([URL, '--protocl', 'x'], '--protocl', /unknown flag \(did you mean "--protocol"\?\)/);
    assertRejected([URL, '--show-binay', 'hex'], '--show-binay', /did you mean "--show-binary"/);
    assertRejected([URL, '-Z'], '-Z', /unknown flag/);
  });

  it('refuses a missing URL, two URLs, and URLs that connect() does not take', () => {
    assertRejected([], 'URL', /missing: switchyard connect URL/);
    assertRejected([URL, URL], 'URL', /one URL \(got 2/);
    assertRejected(['ftp://example.com/'], 'URL', /must be a ws:\/\/, wss:\/\/ \(or http:\/\/, https:\/\/\) URL .*or ws\+unix:/);
    assertRejected(['example.com:8080'], 'URL', /must be a ws:\/\/, wss:\/\/ \(or http:\/\/, https:\/\/\) URL/);
    assertRejected(['ws+tcp://example.com/'], 'URL', /must be a ws:\/\/, wss:\/\//);
    assertRejected(['ws://example.com/#top'], 'URL', /#fragment \(RFC 6455 §3\)/);
    assertRejected(['http://example.com/#'], 'URL', /#fragment/);
  });

  it('refuses a ws+unix: URL the client could not use, in the client\'s words', () => {
    assertRejected(['ws+unix://daemon/run/app.sock:/chat'], 'URL', /names a socket path, not a host: write ws\+unix:\/\/\/path\/to\.sock:\/request-path/);
    assertRejected(['ws+unix:///run/app.sock:chat'], 'URL', /request path after the socket path must start with "\/"/);
  });

  it('--cert and --key go together; file flags need a file name', () => {
    assertRejected([URL, '--cert', 'c.pem'], '--cert', /needs --key FILE too/);
    assertRejected([URL, '--key', 'k.pem'], '--key', /needs --cert FILE too/);
    assertRejected([URL, '--ca', ''], '--ca', /needs the path of a PEM file/);
    assertRejected([URL, '--ca'], '--ca', /needs a value \(--ca FILE\)/);
  });

  it('--servername refuses IP addresses and what is not a host name; --follow-redirects refuses negatives', () => {
    assertRejected([URL, '--servername', '127.0.0.1'], '--servername', /not an IP address: SNI carries names only \(RFC 6066 §3\)/);
    assertRejected([URL, '--servername', '::1'], '--servername', /not an IP address/);
    assertRejected([URL, '--servername', 'bad name'], '--servername', /must be a host name such as api\.example\.com/);
    assertRejected([URL, '--servername', 'a..b'], '--servername', /must be a host name/);
    assertRejected([URL, '--follow-redirects', '-1'], '--follow-redirects', /must be an integer >= 0/);
    assertRejected([URL, '--follow-redirects', 'all'], '--follow-redirects', /must be an integer >= 0/);
  });

  it('refuses missing values, values for switches, and bad numbers', () => {
    assertRejected([URL, '--origin'], '--origin', /needs a value \(--origin ORIGIN\)/);
    assertRejected([URL, '--origin', '--insecure'], '--origin', /needs a value/);
    assertRejected([URL, '--insecure=yes'], '--insecure', /takes no value/);
    assertRejected([URL, '--max-message-bytes', '0'], '--max-message-bytes', /must be an integer >= 1 \(got 0\)/);
    assertRejected([URL, '--ping-interval-ms', '-5'], '--ping-interval-ms', /must be an integer >= 0/);
    assertRejected([URL, '--handshake-timeout-ms', '1s'], '--handshake-timeout-ms', /must be an integer >= 1 \(got "1s"\)/);
    assertRejected([URL, '--show-binary', 'hexx'], '--show-binary', /must be one of hex, base64 .*did you mean "hex"/);
  });

  it('refuses --replies and --reply-timeout-ms without --execute', () => {
    assertRejected([URL, '--replies', '2'], '--replies', /applies only with --execute/);
    assertRejected([URL, '--reply-timeout-ms', '100'], '--reply-timeout-ms', /applies only with --execute/);
    assert.equal(parseConnectArgs([URL, '--replies', '0', '-x', 'go']).replies, 0);
  });

  it('refuses subprotocols that are not tokens, or offered twice', () => {
    assertRejected([URL, '--protocol', 'chat v1'], '--protocol', /must be a token/);
    assertRejected([URL, '--protocol', 'a', '--protocol', 'a'], '--protocol', /offers "a" twice/);
  });

  it('-H: needs "Name: value", a token name, a valid value, and no header the handshake or another flag owns', () => {
    assert.deepEqual(parseHeader('Authorization: Bearer x:y', '-H'), ['Authorization', 'Bearer x:y']);
    assert.deepEqual(parseHeader('X-Empty:', '-H'), ['X-Empty', '']);
    assertRejected([URL, '-H', 'no colon'], '-H', /must be "Name: value"/);
    assertRejected([URL, '--header', 'Bad Name: x'], '--header', /header name must be a token/);
    assertRejected([URL, '-H', 'X-A: line\r\nInjected: 1'], '-H', /valid HTTP header value/);
    assertRejected([URL, '-H', 'Origin: https://a.example'], '-H', /cannot set Origin: use --origin ORIGIN/);
    assertRejected([URL, '-H', 'sec-websocket-protocol: chat'], '-H', /use --protocol NAME/);
    assertRejected([URL, '-H', 'Sec-WebSocket-Key: abc'], '-H', /part of the WebSocket handshake/);
    assertRejected([URL, '-H', 'Upgrade: h2c'], '-H', /part of the WebSocket handshake/);
  });

  it('--origin: any header value but empty', () => {
    assert.equal(parseConnectArgs([URL, '--origin', 'null']).origin, 'null');
    assertRejected([URL, '--origin', ''], '--origin', /must not be empty/);
  });
});

describe('connect --help', () => {
  const usage = renderConnectUsage();

  it('lists every flag once, with its unit and default where it has them', () => {
    for (const flag of CONNECT_FLAGS) {
      const lines = usage.split('\n').filter((line) => new RegExp(`^\\s+(-\\w, )?--${flag.name}(?=[\\s=]|$)`).test(line));
      assert.equal(lines.length, 1, `--${flag.name} appears ${lines.length} times`);
    }
    const line = (flag: string): string => usage.split('\n').find((text) => text.includes(`${flag} `)) ?? '';
    assert.match(line('--max-message-bytes'), /\(bytes, default 16777216 = 16 MiB\)/);
    assert.match(line('--reply-timeout-ms'), /\(ms, default 10000\)/);
    assert.match(line('--show-binary'), /\(default hex\)/);
    assert.match(line('-H, --header'), /repeatable/);
    assert.equal(CONNECT_DEFAULTS.closeTimeoutMs, 5000);
  });

  it('describes both modes, the prompt commands and the exit statuses', () => {
    for (const text of ['/ping', '/binary', '/close [CODE] [REASON]', '//TEXT', 'In a pipe', 'Exit status: 0 after a normal close']) {
      assert.ok(usage.includes(text), text);
    }
  });

  it('is pointed to from the main usage', () => {
    assert.match(renderUsage(), /switchyard connect URL \[options\].*\n.*switchyard connect --help/);
  });
});
