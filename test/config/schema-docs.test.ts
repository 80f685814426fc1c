// The schema is the one source: its WebSocket part is POLICY_FIELDS / DEFAULT_POLICY (not a copy), every key
// is documented, --help lists every flag with its unit and default, and docs/configuration.md holds exactly
// the reference tables the schema generates.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { serveFlagDefinitions } from '../../src/config/flags.js';
import { renderConfigReference, renderUsage } from '../../src/config/help.js';
import { parseConfigText } from '../../src/config/load.js';
import { CONFIG_SCHEMA, routesSchema, schemaLeaves, type ObjectSchema } from '../../src/config/schema.js';
import { DEFAULT_POLICY, POLICY_FIELDS } from '../../src/transport/policy.js';

// This file runs from dist/test/config/.
const docPath = fileURLToPath(new URL('../../../docs/configuration.md', import.meta.url));

describe('CONFIG_SCHEMA', () => {
  it('builds websocket and the route policy keys from POLICY_FIELDS, with DEFAULT_POLICY as defaults', () => {
    const websocket = CONFIG_SCHEMA.fields['websocket'] as ObjectSchema;
    assert.deepEqual(Object.keys(websocket.fields), Object.keys(POLICY_FIELDS));
    assert.deepEqual(Object.keys(routesSchema().policy), Object.keys(POLICY_FIELDS));
    for (const [key, spec] of Object.entries(POLICY_FIELDS)) {
      const leaf = websocket.fields[key];
      assert.ok(leaf?.node === 'leaf');
      assert.equal(leaf.doc, spec.doc, key);
      assert.equal(leaf.default, DEFAULT_POLICY[key as keyof typeof DEFAULT_POLICY], key);
      if (spec.kind === 'integer') {
        assert.deepEqual(leaf.value, { type: 'integer', min: spec.min, ...(spec.max !== undefined && { max: spec.max }), unit: spec.unit }, key);
      }
      if (spec.kind === 'boolean') assert.deepEqual(leaf.value, { type: 'boolean' }, key);
      if (spec.kind === 'enum') assert.deepEqual(leaf.value, { type: 'enum', values: spec.values }, key);
      const routeLeaf = routesSchema().policy[key];
      assert.equal(routeLeaf?.default, undefined, `routes[].${key} has no default of its own: it inherits websocket`);
    }
  });

  it('documents every key, and gives a unit to every integer that is not a port', () => {
    for (const { path, leaf } of schemaLeaves()) {
      assert.ok(leaf.doc.length > 10, `${path} has no description`);
      if (leaf.value.type === 'integer' && path !== 'port') assert.ok(leaf.value.unit !== undefined, `${path} has no unit`);
    }
  });

  it('names every integer with a unit by its unit (…Ms, …Bytes, …Connections, …Processes, …Level, …Bits)', () => {
    const suffix: Record<string, RegExp> = { ms: /Ms$/, bytes: /Bytes$/, connections: /Connections$/, processes: /Processes$/, level: /Level$/, bits: /Bits$/ };
    for (const { path, leaf } of schemaLeaves()) {
      if (leaf.value.type !== 'integer' || leaf.value.unit === undefined) continue;
      const expected = suffix[leaf.value.unit];
      assert.ok(expected !== undefined, `${path} has unit "${leaf.value.unit}", which this test does not know a name suffix for`);
      assert.match(path, expected, path);
    }
  });

  it('carries the upper bound of bounded policy integers (deflate level, memLevel, window bits)', () => {
    const websocket = CONFIG_SCHEMA.fields['websocket'] as ObjectSchema;
    const range = (key: string): unknown => {
      const leaf = websocket.fields[key];
      return leaf?.node === 'leaf' && leaf.value.type === 'integer' ? [leaf.value.min, leaf.value.max] : undefined;
    };
    assert.deepEqual(range('deflateLevel'), [0, 9]);
    assert.deepEqual(range('deflateMemLevel'), [1, 9]);
    assert.deepEqual(range('deflateServerMaxWindowBits'), [9, 15]);
    assert.deepEqual(range('deflateClientMaxWindowBits'), [9, 15]);
    assert.deepEqual(range('maxMessageBytes'), [1, undefined]);
  });
});

describe('--help', () => {
  const usage = renderUsage();

  it('lists every flag once, with --config, --print-config and --help', () => {
    for (const definition of serveFlagDefinitions()) {
      const flag = `--${definition.spec.name}`;
      // A whole flag: "--deflate" must not match the start of "--deflate-level".
      const lines = usage.split('\n').filter((line) => new RegExp(`^\\s+(-h, )?${flag}(?=[\\s=]|$)`).test(line));
      assert.equal(lines.length, 1, `${flag} appears ${lines.length} times`);
    }
  });

  it('shows the unit and default of every value flag that has them', () => {
    const line = (flag: string): string => usage.split('\n').find((text) => new RegExp(`^\\s+${flag}(?=[\\s=]|$)`).test(text)) ?? '';
    assert.match(line('--max-message-bytes'), /\(bytes, default 16777216 = 16 MiB\)/);
    assert.match(line('--ping-interval-ms'), /\(ms, default 30000\)/);
    assert.match(line('--max-connections'), /\(connections, default 0\)/);
    assert.match(line('--shutdown-timeout-ms'), /\(ms, default 10000\)/);
    assert.match(line('--port'), /\(default 8080\)/);
    assert.match(line('--slow-consumer'), /close\|drop-newest\|keep-latest.*\(default close\)/);
    assert.match(line('--access-log'), /text\|json\|off.*\(default text\)/);
    for (const definition of serveFlagDefinitions()) {
      const target = definition.target;
      if (target.to !== 'config' || target.leaf.value.type !== 'integer') continue;
      assert.match(line(`--${definition.spec.name}`), /default \d+/, `--${definition.spec.name} shows its default`);
    }
  });

  it('says which flags repeat and that --protocol / --allowed-origin are route defaults', () => {
    assert.match(usage, /--echo PATH .*repeatable/);
    assert.match(usage, /--protocol NAME .*for every route that lists none of its own; repeatable/);
    assert.match(usage, /--allowed-origin ORIGIN .*repeatable/);
  });
});

describe('docs/configuration.md', () => {
  const doc = readFileSync(docPath, 'utf8');

  it('holds exactly the reference tables generated from the schema', () => {
    const start = '<!-- generated from src/config/schema.ts by renderConfigReference(); test/config/schema-docs.test.ts keeps it equal -->\n';
    const end = '<!-- end of generated reference -->';
    const from = doc.indexOf(start);
    const to = doc.indexOf(end);
    assert.ok(from !== -1 && to > from, 'the generated-reference markers are missing');
    const generated = renderConfigReference();
    assert.equal(doc.slice(from + start.length, to), generated,
      `docs/configuration.md is out of date with the schema; run "npm run docs:config" (or replace the block between the markers) with:\n${generated}`);
  });

  it('has an example config file that is valid', () => {
    const example = /```json\n([\s\S]*?)```/.exec(doc)?.[1];
    assert.ok(example !== undefined, 'no json example');
    const layer = parseConfigText(example, '/srv');
    assert.ok((layer.routes?.length ?? 0) > 0 && layer.tls !== undefined && layer.websocket !== undefined, 'the example shows routes, tls and websocket');
  });

  it('mentions every flag', () => {
    for (const definition of serveFlagDefinitions()) assert.ok(doc.includes(`--${definition.spec.name}`), `--${definition.spec.name}`);
  });
});
