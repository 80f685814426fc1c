// Rewrites the generated reference block in docs/configuration.md from the schema (run after `npm run build`;
// test/config/schema-docs.test.ts fails until the block matches).
import { readFileSync, writeFileSync } from 'node:fs';
import { renderConfigReference } from '../dist/src/config/help.js';

const path = new URL('../docs/configuration.md', import.meta.url);
const start = '<!-- generated from src/config/schema.ts by renderConfigReference(); test/config/schema-docs.test.ts keeps it equal -->\n';
const end = '<!-- end of generated reference -->';
const doc = readFileSync(path, 'utf8');
const from = doc.indexOf(start);
const to = doc.indexOf(end);
if (from === -1 || to < from) throw new Error('docs/configuration.md has lost its generated-reference markers');
writeFileSync(path, doc.slice(0, from + start.length) + renderConfigReference() + doc.slice(to));
