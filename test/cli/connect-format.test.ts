// The pure pieces of `switchyard connect`: how messages and closes are written (pipe lines, escaped terminal
// lines), what a line typed at the prompt means (/ping, /binary, /close, /help, //), and how stdin bytes
// are cut into lines.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { describeClose, escapeControls, parseHexBytes, pipeLine, terminalLine } from '../../src/cli/message-format.js';
import { parsePromptLine } from '../../src/cli/prompt-commands.js';
import { LineSplitter } from '../../src/cli/line-splitter.js';

describe('message-format', () => {
  it('writes text as received and binary as hex or base64 in a pipe', () => {
    assert.equal(pipeLine(Buffer.from('héllo\nworld'), false, 'hex'), 'héllo\nworld');
    assert.equal(pipeLine(Buffer.from('hi'), true, 'hex'), '6869');
    assert.equal(pipeLine(Buffer.from('hi'), true, 'base64'), 'aGk=');
    assert.equal(pipeLine(Buffer.alloc(0), true, 'hex'), '');
  });

  it('prefixes terminal lines with "< ", says the size of binary messages, and escapes control characters', () => {
    assert.equal(terminalLine(Buffer.from('hello'), false, 'hex'), '< hello');
    assert.equal(terminalLine(Buffer.from([0x68, 0x69]), true, 'hex'), '< [binary 2 bytes] 6869');
    assert.equal(terminalLine(Buffer.from([0xff]), true, 'base64'), '< [binary 1 byte] /w==');
    // A server must not be able to clear the screen or move the cursor of whoever reads its messages.
    assert.equal(terminalLine(Buffer.from('a\x1b[2Jb\rc\x07\td\ne'), false, 'hex'), '< a\\x1b[2Jb\\rc\\x07\td\ne');
    assert.equal(escapeControls('\x7f\u009b'), '\\x7f\\x9b');
  });

  it('describes close codes, with words for 1005 and 1006', () => {
    assert.equal(describeClose(4000, 'go away'), '4000 "go away"');
    assert.equal(describeClose(1000, ''), '1000 ""');
    assert.match(describeClose(1006, ''), /^1006 \(abnormal/);
    assert.match(describeClose(1005, ''), /^1005 \(.*no status code/);
  });

  it('reads hex bytes with or without spaces or colons, and refuses anything else', () => {
    assert.deepEqual(parseHexBytes('68 69'), Buffer.from('hi'));
    assert.deepEqual(parseHexBytes('6869'), Buffer.from('hi'));
    assert.deepEqual(parseHexBytes('DE:AD:be:ef'), Buffer.from([0xde, 0xad, 0xbe, 0xef]));
    assert.deepEqual(parseHexBytes(''), Buffer.alloc(0));
    assert.throws(() => parseHexBytes('6g'), /not hex digits/);
    assert.throws(() => parseHexBytes('686'), /odd number of hex digits/);
  });
});

describe('parsePromptLine', () => {
  it('sends ordinary lines as text, and //x as the text "/x"', () => {
    assert.deepEqual(parsePromptLine('hello'), { kind: 'text', text: 'hello' });
    assert.deepEqual(parsePromptLine(''), { kind: 'text', text: '' });
    assert.deepEqual(parsePromptLine('//close'), { kind: 'text', text: '/close' });
  });

  it('/ping [TEXT] (at most 125 bytes, RFC 6455 §5.5)', () => {
    assert.deepEqual(parsePromptLine('/ping'), { kind: 'ping', payload: Buffer.alloc(0) });
    assert.deepEqual(parsePromptLine('/ping are you there'), { kind: 'ping', payload: Buffer.from('are you there') });
    assert.equal(parsePromptLine(`/ping ${'x'.repeat(126)}`).kind, 'mistake');
  });

  it('/binary HEX', () => {
    assert.deepEqual(parsePromptLine('/binary 68 69'), { kind: 'binary', data: Buffer.from('hi') });
    const mistake = parsePromptLine('/binary hello');
    assert.equal(mistake.kind, 'mistake');
    assert.match((mistake as { message: string }).message, /^\/binary: not hex digits/);
  });

  it('/close [CODE] [REASON]: 1000 by default; only codes that may be sent; reasons up to 123 bytes', () => {
    assert.deepEqual(parsePromptLine('/close'), { kind: 'close', code: 1000, reason: '' });
    assert.deepEqual(parsePromptLine('/close 4001 bye now'), { kind: 'close', code: 4001, reason: 'bye now' });
    assert.deepEqual(parsePromptLine('/close 1001'), { kind: 'close', code: 1001, reason: '' });
    for (const bad of ['/close 1006', '/close 1005 x', '/close 999', '/close 5000', '/close bye']) {
      assert.match((parsePromptLine(bad) as { message: string }).message, /may be sent: use 1000-1003, 1007-1014 or 3000-4999/, bad);
    }
    assert.match((parsePromptLine(`/close 4000 ${'r'.repeat(124)}`) as { message: string }).message, /124 bytes; at most 123/);
  });

  it('/help, and a word for an unknown command', () => {
    assert.deepEqual(parsePromptLine('/help'), { kind: 'help' });
    const unknown = parsePromptLine('/quit now');
    assert.equal(unknown.kind, 'mistake');
    assert.match((unknown as { message: string }).message, /unknown command \/quit .*\/\/quit now/);
  });
});

describe('LineSplitter', () => {
  const text = (lines: Buffer[]): string[] => lines.map((line) => line.toString());

  it('cuts at \\n, drops a \\r before it, keeps empty lines, and gives the unterminated rest at the end', () => {
    const splitter = new LineSplitter();
    assert.deepEqual(text(splitter.push(Buffer.from('a\r\n\nb'))), ['a', '']);
    assert.deepEqual(text(splitter.push(Buffer.from('c\nd'))), ['bc']);
    assert.equal(splitter.end()?.toString(), 'd');
    assert.equal(splitter.end(), undefined);
  });

  it('gives nothing extra for input that ends with a newline', () => {
    const splitter = new LineSplitter();
    assert.deepEqual(text(splitter.push(Buffer.from('a\nb\n'))), ['a', 'b']);
    assert.equal(splitter.end(), undefined);
  });

  it('keeps a multi-byte character whole when a read splits it', () => {
    const bytes = Buffer.from('é\n');
    const splitter = new LineSplitter();
    assert.deepEqual(splitter.push(bytes.subarray(0, 1)), []);
    assert.deepEqual(text(splitter.push(bytes.subarray(1))), ['é']);
  });
});
