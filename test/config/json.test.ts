// The config file's JSON parser: the same values as JSON.parse for valid input, and for invalid input a
// ConfigError that points at the line and column of the first bad character.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../src/errors.js';
import { parseJson } from '../../src/config/json.js';

function failure(text: string): ConfigError {
  try {
    parseJson(text);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error;
  }
  assert.fail(`parsed ${JSON.stringify(text)} without an error`);
}

describe('parseJson', () => {
  it('returns what JSON.parse returns for valid documents', () => {
    const documents = [
      '{}', '[]', '{"a":1}', ' {\n\t"a" : [1, -2.5, 3e2, 0, -0, 1E-3, true, false, null, "x"] }\r\n',
      '{"s":"esc \\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\ud83d\\ude00 end"}',
      '{"nested":{"deep":[{"x":[[]]}]}, "empty":""}', '"just a string"', '42', '{"unicode":"héllo ☃"}',
    ];
    for (const text of documents) assert.deepEqual(parseJson(text), JSON.parse(text), text);
  });

  it('ignores a leading byte order mark', () => {
    assert.deepEqual(parseJson('\ufeff{"port": 1}'), { port: 1 });
  });

  it('keeps a "__proto__" key as an own key instead of setting the prototype', () => {
    const value = parseJson('{"__proto__": {"polluted": true}}') as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(value), Object.prototype);
    assert.ok(Object.hasOwn(value, '__proto__'));
    assert.equal((value as { polluted?: unknown }).polluted, undefined);
  });

  it('names line and column of the first bad character', () => {
    const cases: Array<[string, string]> = [
      ['{\n  "port": 9000,\n  "host": "x" "y"\n}', `line 3, column 15: invalid JSON: expected ',' or '}' after a value in an object, found '"'`],
      ['{"a": 1,}', "line 1, column 9: invalid JSON: trailing comma before '}'"],
      ['[1, 2,]', "line 1, column 7: invalid JSON: trailing comma before ']'"],
      ['{"a" 1}', `line 1, column 6: invalid JSON: expected ':' after the key "a", found '1'`],
      ['{a: 1}', `line 1, column 2: invalid JSON: expected a key in double quotes, found 'a'`],
      ['{"a": tru}', "line 1, column 7: invalid JSON: expected a value, found 't'"],
      ["{'a': 1}", `line 1, column 2: invalid JSON: expected a key in double quotes, found '''`],
      ['{"a": \'x\'}', 'line 1, column 7: invalid JSON: strings take double quotes'],
      ['{\n  // note\n  "a": 1\n}', 'line 2, column 3: invalid JSON: expected a key in double quotes, found \'/\''],
      ['{"a": /* x */ 1}', 'line 1, column 7: invalid JSON: comments are not allowed in JSON'],
      ['{"a": "line\nbreak"}', 'line 1, column 12: invalid JSON: control character U+000A inside a string (write it escaped, e.g. \\n)'],
      ['{"a": "\\x"}', 'line 1, column 8: invalid JSON: invalid escape "\\x" in a string'],
      ['{"a": "\\u12"}', 'line 1, column 8: invalid JSON: \\u must be followed by four hex digits'],
      ['{"a": "open', 'line 1, column 12: invalid JSON: unterminated string'],
      ['{"a": 1', 'line 1, column 8: invalid JSON: expected \',\' or \'}\' after a value in an object, found end of file'],
      ['{"a": 01}', "line 1, column 8: invalid JSON: expected ',' or '}' after a value in an object, found '1'"],
      ['{} {}', "line 1, column 4: invalid JSON: unexpected '{' after the end of the JSON value"],
      ['', 'line 1, column 1: invalid JSON: the file is empty: expected a JSON object'],
      ['  \n ', 'line 2, column 2: invalid JSON: the file is empty: expected a JSON object'],
    ];
    for (const [text, message] of cases) {
      const error = failure(text);
      assert.equal(error.message, message, JSON.stringify(text));
      assert.equal(error.code, 'ERR_CONFIG');
      assert.match(error.field, /^line \d+, column \d+$/);
    }
  });

  it('refuses a duplicate key (which JSON.parse would silently resolve to the last value), pointing at the second', () => {
    assert.equal(failure('{\n  "port": 9000,\n  "port": 9001\n}').message, 'line 3, column 3: invalid JSON: duplicate key "port"');
    assert.equal(failure('{"routes": [{"path": "/a", "kind": "echo", "path": "/b"}]}').message, 'line 1, column 44: invalid JSON: duplicate key "path"');
  });
});
