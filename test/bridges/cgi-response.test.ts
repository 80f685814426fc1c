// Unit tests for CgiHeaderParser (src/bridges/cgi-response.ts): RFC 3875 §6 header blocks fed whole and byte by
// byte; the three response kinds; every way output is refused as malformed (502 material), including each way a
// script could try to smuggle a CR or LF into the response head.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { CgiHeaderParser, type CgiParseResult, type CgiResponseHead } from '../../src/bridges/cgi-response.js';

function parseWhole(text: string | Buffer, maxHeaderBytes = 65_536): CgiParseResult {
  return new CgiHeaderParser(maxHeaderBytes).push(Buffer.from(text as string, 'latin1'));
}

/** Feeds one byte at a time; returns the first answer that is not 'more' (with the rest of the bytes as body). */
function parseBytewise(text: string, maxHeaderBytes = 65_536): CgiParseResult {
  const parser = new CgiHeaderParser(maxHeaderBytes);
  const bytes = Buffer.from(text, 'latin1');
  for (let i = 0; i < bytes.length; i++) {
    const result = parser.push(bytes.subarray(i, i + 1));
    if (result.state === 'head') return { ...result, body: Buffer.concat([result.body, bytes.subarray(i + 1)]) };
    if (result.state === 'error') return result;
  }
  return parser.end();
}

function headOf(result: CgiParseResult): { head: CgiResponseHead; body: string } {
  assert.equal(result.state, 'head', JSON.stringify(result));
  if (result.state !== 'head') throw new Error('unreachable');
  return { head: result.head, body: result.body.toString('latin1') };
}

function errorOf(result: CgiParseResult): string {
  assert.equal(result.state, 'error', JSON.stringify(result));
  return result.state === 'error' ? result.reason : '';
}

const both = [['whole', parseWhole], ['byte by byte', parseBytewise]] as const;

describe('CgiHeaderParser: documents (§6.2.1)', () => {
  for (const [how, parse] of both) {
    it(`parses LF-ended lines and keeps the body after the blank line (${how})`, () => {
      const { head, body } = headOf(parse('Content-type: text/html\nX-A: 1\n\n<p>hi</p>\n'));
      assert.equal(head.kind, 'document');
      assert.equal(head.status, 200);
      assert.equal(head.statusText, undefined);
      assert.deepEqual(head.fields, [['Content-type', 'text/html'], ['X-A', '1']]);
      assert.equal(body, '<p>hi</p>\n');
    });

    it(`parses CRLF-ended lines, and a mix (${how})`, () => {
      const { head, body } = headOf(parse('Content-Type: text/plain\r\nX-B:   spaced  \n\r\nbody'));
      assert.deepEqual(head.fields, [['Content-Type', 'text/plain'], ['X-B', 'spaced']]);
      assert.equal(body, 'body');
    });

    it(`takes Status with its reason phrase (${how})`, () => {
      const { head } = headOf(parse('Status: 404 Not Here\nContent-Type: text/plain\n\n'));
      assert.equal(head.status, 404);
      assert.equal(head.statusText, 'Not Here');
      assert.deepEqual(head.fields, [['Content-Type', 'text/plain']], 'Status is not sent as a field');
    });
  }

  it('accepts a Status without a reason phrase, and Status alone (no Content-Type) for a body-less answer', () => {
    const { head } = headOf(parseWhole('Status: 204\n\n'));
    assert.equal(head.status, 204);
    assert.equal(head.statusText, undefined);
  });

  it('folds an obs-fold continuation line into the previous field with one space', () => {
    const { head } = headOf(parseWhole('Content-Type: text/plain\nX-Long: first\n\t second\n\n'));
    assert.deepEqual(head.fields[1], ['X-Long', 'first second']);
  });

  it('drops connection-specific fields: the server frames the response', () => {
    const { head } = headOf(parseWhole('Content-Type: text/plain\nConnection: close\nTransfer-Encoding: chunked\nKeep-Alive: 5\nUpgrade: h2c\nX-Kept: 1\n\n'));
    assert.deepEqual(head.fields, [['Content-Type', 'text/plain'], ['X-Kept', '1']]);
  });

  it('keeps repeated ordinary fields (Set-Cookie) in order', () => {
    const { head } = headOf(parseWhole('Content-Type: text/plain\nSet-Cookie: a=1\nSet-Cookie: b=2\n\n'));
    assert.deepEqual(head.fields.filter(([name]) => name === 'Set-Cookie').map(([, value]) => value), ['a=1', 'b=2']);
  });

  it('takes a Content-Length and keeps it as a field', () => {
    const { head } = headOf(parseWhole('Content-Type: text/plain\nContent-Length: 12\n\n'));
    assert.equal(head.contentLength, 12);
    assert.deepEqual(head.fields[1], ['Content-Length', '12']);
  });

  it('passes bytes above 0x7f through unchanged (latin1 in, latin1 out)', () => {
    const { head } = headOf(parseWhole(Buffer.from('Content-Type: text/plain\nX-Name: caf\xc3\xa9\n\n', 'latin1')));
    assert.equal(Buffer.from(head.fields[1]![1], 'latin1').toString('utf8'), 'café');
  });
});

describe('CgiHeaderParser: redirects (§6.2.2-6.2.4)', () => {
  it('a local path alone is a local redirect', () => {
    const { head } = headOf(parseWhole('Location: /cgi-bin/other.cgi?x=1\n\n'));
    assert.equal(head.kind, 'local-redirect');
    assert.equal(head.location, '/cgi-bin/other.cgi?x=1');
  });

  it('a local path with Status 200 is still a local redirect; other fields are dropped', () => {
    const { head } = headOf(parseWhole('Status: 200 OK\nLocation: /x\nX-Junk: 1\n\n'));
    assert.equal(head.kind, 'local-redirect');
    assert.deepEqual(head.fields, []);
  });

  it('an absolute URI alone is a client redirect with 302', () => {
    const { head } = headOf(parseWhole('Location: https://example.com/a\n\n'));
    assert.equal(head.kind, 'client-redirect');
    assert.equal(head.status, 302);
    assert.deepEqual(head.fields, [['Location', 'https://example.com/a']]);
  });

  it('`//host/path` is not a local path: it would name another host', () => {
    const { head } = headOf(parseWhole('Location: //evil.example/x\n\n'));
    assert.equal(head.kind, 'client-redirect');
  });

  it('an absolute URI with a Status and a document keeps the script\'s status', () => {
    const { head, body } = headOf(parseWhole('Status: 301 Moved\nLocation: https://example.com/b\nContent-Type: text/html\n\n<a>b</a>'));
    assert.equal(head.kind, 'document');
    assert.equal(head.status, 301);
    assert.equal(head.location, 'https://example.com/b');
    assert.equal(body, '<a>b</a>');
  });

  it('a local path with a 3xx Status is passed to the client as that redirect', () => {
    const { head } = headOf(parseWhole('Status: 303 See Other\nLocation: /done\n\n'));
    assert.equal(head.kind, 'document');
    assert.equal(head.status, 303);
  });
});

describe('CgiHeaderParser: malformed output (502)', () => {
  const cases: ReadonlyArray<readonly [string, string, RegExp]> = [
    ['a line without a colon', 'Hello world\n\nbody', /without a colon/],
    ['whitespace before the colon', 'Content-Type : text/plain\n\n', /invalid header name/],
    ['a name that is not a token', 'Content Type: text/plain\n\n', /invalid header name/],
    ['an empty name', ': x\n\n', /invalid header name/],
    ['a bare CR inside a value (response splitting)', 'Content-Type: text/plain\nX-Evil: a\rInjected: yes\n\n', /CR inside/],
    ['a NUL in a value', 'Content-Type: text/plain\nX-Evil: a\0b\n\n', /invalid character/],
    ['another control character in a value', 'Content-Type: text/plain\nX-Evil: a\x1bb\n\n', /invalid character/],
    ['none of Content-Type, Location or Status', 'X-Only: 1\n\nbody', /none of Content-Type, Location or Status/],
    ['Status twice', 'Status: 200 OK\nStatus: 404 No\nContent-Type: text/plain\n\n', /Status appears more than once/],
    ['Content-Type twice', 'Content-Type: a/b\ncontent-type: c/d\n\n', /content-type appears more than once/i],
    ['Location twice', 'Location: /a\nLocation: /b\n\n', /Location appears more than once/],
    ['a non-numeric Status', 'Status: OK\nContent-Type: text/plain\n\n', /invalid Status/],
    ['a 1xx Status (not a final response)', 'Status: 101 Switching Protocols\nContent-Type: text/plain\n\n', /invalid Status/],
    ['a Status above 599', 'Status: 600 Nope\nContent-Type: text/plain\n\n', /invalid Status/],
    ['a non-numeric Content-Length', 'Content-Type: text/plain\nContent-Length: 12, 12\n\n', /invalid Content-Length/],
    ['an empty Location', 'Location:\n\n', /empty Location/],
    ['a continuation line first', ' X: 1\nContent-Type: text/plain\n\n', /first header line starts with whitespace/],
    ['a blank line first (no headers)', '\nbody', /no header lines/],
  ];
  for (const [what, text, reason] of cases) {
    it(`refuses ${what}`, () => {
      assert.match(errorOf(parseWhole(text)), reason);
      assert.match(errorOf(parseBytewise(text)), reason);
    });
  }

  it('refuses a header block longer than maxHeaderBytes, even one that never ends', () => {
    assert.match(errorOf(parseWhole(`Content-Type: text/plain\n${'X-Fill: aaaa\n'.repeat(20)}\n`, 100)), /more than 100 bytes/);
    assert.match(errorOf(parseWhole(`Content-Type: text/plain\nX-Endless: ${'a'.repeat(200)}`, 100)), /more than 100 bytes/);
    const parser = new CgiHeaderParser(1000);
    let result: CgiParseResult = { state: 'more' };
    for (let i = 0; i < 100 && result.state === 'more'; i++) result = parser.push(Buffer.from('X-Filler: 0123456789\n'));
    assert.match(errorOf(result), /more than 1000 bytes/);
  });

  it('counts the blank line in the budget: a block of exactly maxHeaderBytes passes, one byte more does not', () => {
    const block = 'Content-Type: text/plain\n\n';
    assert.equal(parseWhole(block, block.length).state, 'head');
    assert.equal(parseWhole(block, block.length - 1).state, 'error');
  });

  it('end() without output says so; end() mid-headers says the blank line never came', () => {
    assert.match(errorOf(new CgiHeaderParser(100).end()), /no output/);
    const parser = new CgiHeaderParser(100);
    assert.equal(parser.push(Buffer.from('Content-Type: text/plain\n')).state, 'more');
    assert.match(errorOf(parser.end()), /ended before the blank line/);
  });

  it('keeps answering the same result after it decided', () => {
    const parser = new CgiHeaderParser(100);
    assert.equal(parser.push(Buffer.from('nonsense\n\n')).state, 'error');
    assert.equal(parser.push(Buffer.from('Content-Type: text/plain\n\n')).state, 'error');
    assert.equal(parser.end().state, 'error');
  });
});
