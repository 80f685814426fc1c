// Keeps docs/architecture.md's layer table true: reads the table from the doc itself, parses every src/**/*.ts
// with the TypeScript compiler, and checks that each module imports only its own layer or a lower one (`import
// type` is exempt), that node built-ins stay in the layers allowed to use them, that only src/cli/** touches
// process.argv, process.exit or prints, and that no runtime import cycle exists among src modules.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

// ---- locating the checkout (this file runs from dist/test/) ----

function findRepoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest) && existsSync(path.join(dir, 'src')) && existsSync(path.join(dir, 'docs', 'architecture.md'))) {
      const name = (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name;
      if (name === 'switchyard') return dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('could not find the switchyard checkout above this test file');
    dir = parent;
  }
}

const repoRoot = findRepoRoot();

// ---- the layer table ----

interface Layer {
  /** 0 for L0 ... 6 for L6. */
  readonly level: number;
  readonly name: string;
  /** 'src/protocol/**' (a folder) or 'src/errors.ts' (one file). */
  readonly patterns: readonly string[];
  /** Node built-ins this layer adds (base names: 'fs', 'timers'...). */
  readonly builtins: readonly string[];
}

/** Parses the table under "## Layers" in docs/architecture.md. */
function parseLayerTable(markdown: string): Layer[] {
  const section = /^## Layers\b([\s\S]*?)(?=^## )/m.exec(markdown)?.[1];
  if (section === undefined) throw new Error('docs/architecture.md has no "## Layers" section');
  const layers: Layer[] = [];
  for (const line of section.split('\n')) {
    const cells = line.split('|').slice(1, -1).map((cell) => cell.trim());
    const levelMatch = /^L(\d+)\s+(.*)$/.exec(cells[0] ?? '');
    if (levelMatch === null) continue;
    const ticked = (cell: string | undefined): string[] => [...(cell ?? '').matchAll(/`([^`]+)`/g)].map((match) => match[1]!);
    const patterns = ticked(cells[1]).filter((token) => token.startsWith('src/'));
    const builtins = [
      ...ticked(cells[2]).filter((token) => token.startsWith('node:')).map((token) => token.slice('node:'.length).split('/')[0]!),
      ...(/\btimers\b/.test((cells[2] ?? '').replace(/`[^`]*`/g, '')) ? ['timers'] : []),
    ];
    layers.push({ level: Number(levelMatch[1]), name: `L${levelMatch[1]} ${levelMatch[2]!.trim()}`, patterns, builtins });
  }
  return layers;
}

/**
 * Modules the table does not list, with the level they are checked at and why. src/index.ts is the package's
 * main entry: it re-exports the server, client and types, so it sits above the server (L4) and nothing in src
 * may import it except the CLI.
 */
const UNLISTED_MODULES: Readonly<Record<string, { level: number; name: string }>> = {
  'src/index.ts': { level: 5.5, name: 'package entry (re-exports; not in the layer table)' },
};

function layerOf(file: string, layers: readonly Layer[]): { level: number; name: string } | undefined {
  const matches = layers.filter((layer) => layer.patterns.some((pattern) =>
    pattern.endsWith('/**') ? file.startsWith(pattern.slice(0, -2)) : file === pattern));
  if (matches.length > 1) throw new Error(`${file} matches more than one layer: ${matches.map((layer) => layer.name).join(', ')}`);
  return matches[0] ?? UNLISTED_MODULES[file];
}

// ---- reading modules ----

interface ImportRecord {
  /** As written: '../server/server.js', 'node:http'. */
  readonly specifier: string;
  /** Whole-statement `import type` / `export type ... from`: erased at run time. */
  readonly typeOnly: boolean;
  readonly line: number;
}

interface GlobalUse {
  readonly what: string;
  readonly line: number;
}

interface ModuleFacts {
  readonly imports: ImportRecord[];
  /** process.argv, process.exit, console.*, process.stdout/stderr.write. */
  readonly cliOnlyUses: GlobalUse[];
}

const CLI_ONLY_PROCESS_MEMBERS = new Set(['argv', 'exit']);
const PRINTING_STREAMS = new Set(['stdout', 'stderr']);

function readModule(fileName: string, sourceText: string): ModuleFacts {
  const source = ts.createSourceFile(fileName, sourceText, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const imports: ImportRecord[] = [];
  const cliOnlyUses: GlobalUse[] = [];
  const lineOf = (node: ts.Node): number => source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
  const memberName = (node: ts.Expression): string | undefined => {
    if (ts.isPropertyAccessExpression(node)) return node.name.text;
    if (ts.isElementAccessExpression(node) && ts.isStringLiteralLike(node.argumentExpression)) return node.argumentExpression.text;
    return undefined;
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      // Under verbatimModuleSyntax, `import { type A } from 'x'` still leaves `import {} from 'x'`: only a
      // whole-statement `import type` is erased.
      imports.push({ specifier: node.moduleSpecifier.text, typeOnly: node.importClause?.isTypeOnly === true, line: lineOf(node) });
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier !== undefined && ts.isStringLiteral(node.moduleSpecifier)) {
      imports.push({ specifier: node.moduleSpecifier.text, typeOnly: node.isTypeOnly, line: lineOf(node) });
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)
      && ts.isStringLiteral(node.moduleReference.expression)) {
      imports.push({ specifier: node.moduleReference.expression.text, typeOnly: node.isTypeOnly, line: lineOf(node) });
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const argument = node.arguments[0];
      if (argument !== undefined && ts.isStringLiteralLike(argument)) imports.push({ specifier: argument.text, typeOnly: false, line: lineOf(node) });
      else imports.push({ specifier: '<computed dynamic import>', typeOnly: false, line: lineOf(node) });
    } else if (ts.isPropertyAccessExpression(node) || ts.isElementAccessExpression(node)) {
      const member = memberName(node);
      const target = node.expression;
      if (ts.isIdentifier(target) && target.text === 'console') {
        cliOnlyUses.push({ what: `console.${member ?? '[...]'}`, line: lineOf(node) });
      } else if (ts.isIdentifier(target) && target.text === 'process' && member !== undefined && CLI_ONLY_PROCESS_MEMBERS.has(member)) {
        cliOnlyUses.push({ what: `process.${member}`, line: lineOf(node) });
      } else if (member === 'write' && (ts.isPropertyAccessExpression(target) || ts.isElementAccessExpression(target))
        && ts.isIdentifier(target.expression) && target.expression.text === 'process') {
        const stream = memberName(target);
        if (stream !== undefined && PRINTING_STREAMS.has(stream)) cliOnlyUses.push({ what: `process.${stream}.write`, line: lineOf(node) });
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  // `import { argv, exit, stdout } from 'node:process'` reaches the same globals by another name.
  for (const statement of source.statements) {
    if (!ts.isImportDeclaration(statement) || !ts.isStringLiteral(statement.moduleSpecifier)) continue;
    if (statement.moduleSpecifier.text !== 'node:process' || statement.importClause?.isTypeOnly) continue;
    const bindings = statement.importClause?.namedBindings;
    if (bindings !== undefined && ts.isNamedImports(bindings)) {
      for (const element of bindings.elements) {
        const imported = (element.propertyName ?? element.name).text;
        if (CLI_ONLY_PROCESS_MEMBERS.has(imported) || PRINTING_STREAMS.has(imported)) {
          cliOnlyUses.push({ what: `${imported} from 'node:process'`, line: lineOf(element) });
        }
      }
    }
  }
  return { imports, cliOnlyUses };
}

// ---- the rules ----

interface SrcModule {
  /** Repo-relative with forward slashes: 'src/server/server.ts'. */
  readonly file: string;
  readonly facts: ModuleFacts;
}

interface CheckResult {
  readonly violations: string[];
  /** Runtime (non-type) import edges between src modules. */
  readonly graph: Map<string, string[]>;
}

/** Resolves a relative specifier to a repo-relative .ts path ('./x.js' -> 'src/dir/x.ts'). */
function resolveRelative(fromFile: string, specifier: string): string {
  const joined = path.posix.normalize(path.posix.join(path.posix.dirname(fromFile), specifier));
  return joined.replace(/\.js$/, '.ts');
}

function checkModules(modules: readonly SrcModule[], layers: readonly Layer[]): CheckResult {
  const violations: string[] = [];
  const graph = new Map<string, string[]>();
  const known = new Set(modules.map((module) => module.file));
  // A built-in belongs to the lowest layer that lists it; L0 may use only its own list.
  const builtinOwner = new Map<string, Layer>();
  for (const layer of [...layers].sort((a, b) => a.level - b.level)) {
    for (const builtin of layer.builtins) if (!builtinOwner.has(builtin)) builtinOwner.set(builtin, layer);
  }
  const coreLayer = layers.find((layer) => layer.level === 0);

  for (const { file, facts } of modules) {
    const layer = layerOf(file, layers);
    if (layer === undefined) {
      violations.push(`${file} is in no layer of the table in docs/architecture.md: add its folder to the table`);
      continue;
    }
    const edges: string[] = [];
    graph.set(file, edges);
    for (const record of facts.imports) {
      const where = `${file}:${record.line} imports '${record.specifier}'`;
      if (record.specifier.startsWith('.')) {
        const target = resolveRelative(file, record.specifier);
        if (!known.has(target)) {
          violations.push(`${where}, which resolves to ${target}, not a module in src/ (relative imports end in .js and stay inside src/)`);
          continue;
        }
        if (record.typeOnly) continue;
        edges.push(target);
        const targetLayer = layerOf(target, layers);
        if (targetLayer !== undefined && targetLayer.level > layer.level) {
          violations.push(`${where} (${targetLayer.name}) but ${file} is in ${layer.name}: a module imports only its own layer or a lower one (use \`import type\` for types)`);
        }
      } else if (record.specifier.startsWith('node:')) {
        if (record.typeOnly) continue;
        const builtin = record.specifier.slice('node:'.length).split('/')[0]!;
        if (layer.level === 0) {
          if (!coreLayer?.builtins.includes(builtin)) {
            violations.push(`${where}, but ${file} is in ${layer.name}, which may use only ${coreLayer?.builtins.map((name) => `node:${name}`).join(' and ')} of the node built-ins`);
          }
          continue;
        }
        const owner = builtinOwner.get(builtin);
        if (owner !== undefined && owner.level > layer.level) {
          violations.push(`${where}, a built-in the table gives to ${owner.name}, but ${file} is in ${layer.name}`);
        }
      } else if (!record.typeOnly) {
        violations.push(`${where}: src imports only relative src modules and node: built-ins (write node:${record.specifier} for a built-in)`);
      }
    }
    if (!file.startsWith('src/cli/')) {
      for (const use of facts.cliOnlyUses) {
        violations.push(`${file}:${use.line} uses ${use.what}: only src/cli/** may read process.argv, call process.exit or print`);
      }
    }
  }
  return { violations, graph };
}

/** Every elementary cycle's first sighting, as 'a -> b -> a' (depth-first search with colouring). */
function findCycles(graph: ReadonlyMap<string, readonly string[]>): string[] {
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const cycles: string[] = [];
  const visit = (node: string): void => {
    state.set(node, 'visiting');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      const nextState = state.get(next);
      if (nextState === 'visiting') cycles.push([...stack.slice(stack.indexOf(next)), next].join(' -> '));
      else if (nextState === undefined) visit(next);
    }
    stack.pop();
    state.set(node, 'done');
  };
  for (const node of [...graph.keys()].sort()) if (!state.has(node)) visit(node);
  return cycles;
}

// ---- the real checkout ----

function listTsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir)) {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) out.push(...listTsFiles(full));
    else if (entry.endsWith('.ts') && !entry.endsWith('.d.ts')) out.push(full);
  }
  return out;
}

function loadCheckout(): { modules: SrcModule[]; layers: Layer[] } {
  const layers = parseLayerTable(readFileSync(path.join(repoRoot, 'docs', 'architecture.md'), 'utf8'));
  const modules = listTsFiles(path.join(repoRoot, 'src')).sort().map((full) => {
    const file = path.relative(repoRoot, full).split(path.sep).join('/');
    return { file, facts: readModule(file, readFileSync(full, 'utf8')) };
  });
  return { modules, layers };
}

const report = (violations: readonly string[]): string => `\n  ${violations.join('\n  ')}\n`;

describe('architecture: the layer table in docs/architecture.md', () => {
  const { modules, layers } = loadCheckout();

  it('is read from the doc: seven layers L0-L6 with folders, L0 limited to node:buffer and node:crypto', () => {
    assert.deepEqual(layers.map((layer) => layer.level), [0, 1, 2, 3, 4, 5, 6]);
    for (const layer of layers) assert.ok(layer.patterns.length > 0, `${layer.name} lists no src/ folder`);
    assert.deepEqual([...layers[0]!.builtins].sort(), ['buffer', 'crypto']);
    assert.ok(modules.length >= 10, `found only ${modules.length} modules under src/`);
    const importCount = modules.reduce((sum, module) => sum + module.facts.imports.length, 0);
    assert.ok(importCount >= 30, `found only ${importCount} imports under src/: is the scanner broken?`);
  });

  it('holds for every src module: imports go to the same layer or lower, built-ins stay in their layers, only the CLI prints or exits', () => {
    const { violations } = checkModules(modules, layers);
    assert.deepEqual(violations, [], `layer rule broken:${report(violations)}`);
  });

  it('has no runtime import cycle among src modules', () => {
    const { graph } = checkModules(modules, layers);
    const cycles = findCycles(graph);
    assert.deepEqual(cycles, [], `import cycles:${report(cycles)}`);
  });
});

describe('architecture checker (proves it would catch a violation)', () => {
  const layers = parseLayerTable(readFileSync(path.join(repoRoot, 'docs', 'architecture.md'), 'utf8'));
  const module = (file: string, text: string): SrcModule => ({ file, facts: readModule(file, text) });
  const existing = [
    module('src/errors.ts', ''),
    module('src/protocol/constants.ts', ''),
    module('src/server/server.ts', ''),
    module('src/transport/websocket.ts', ''),
  ];

  it('flags an upward import and names the file, the import and both layers, but not `import type`', () => {
    const { violations } = checkModules([
      ...existing.filter((entry) => entry.file !== 'src/transport/websocket.ts'),
      module('src/transport/websocket.ts', [
        "import type { Switchyard } from '../server/server.js';",
        "import { createServer } from '../server/server.js';",
        "export { createServer as again } from '../server/server.js';",
      ].join('\n')),
    ], layers);
    assert.equal(violations.length, 2, report(violations));
    assert.match(violations[0]!, /^src\/transport\/websocket\.ts:2 imports '\.\.\/server\/server\.js' \(L4 server\) but .* is in L2 transport/);
    assert.match(violations[1]!, /websocket\.ts:3 imports/);
  });

  it('treats `import { type X }` as a runtime import (verbatimModuleSyntax keeps it)', () => {
    const { violations } = checkModules([...existing.filter((entry) => entry.file !== 'src/protocol/constants.ts'),
      module('src/protocol/constants.ts', "import { type Switchyard } from '../server/server.js';")], layers);
    assert.equal(violations.length, 1, report(violations));
  });

  it('limits L0 to node:buffer and node:crypto and keeps higher-layer built-ins out of lower layers', () => {
    const { violations } = checkModules([
      module('src/errors.ts', "import { Buffer } from 'node:buffer';\nimport { inspect } from 'node:util';\nimport type { Socket } from 'node:net';"),
      module('src/transport/websocket.ts', "import { request } from 'node:http';\nimport { readFile } from 'node:fs/promises';\nimport * as z from 'node:zlib';"),
      module('src/server/server.ts', "import fs from 'fs';"),
    ], layers);
    assert.equal(violations.length, 3, report(violations));
    assert.match(violations[0]!, /src\/errors\.ts:2 imports 'node:util'.*node:buffer and node:crypto/);
    assert.match(violations[1]!, /src\/transport\/websocket\.ts:1 imports 'node:http'.*L3/);
    assert.match(violations[2]!, /src\/server\/server\.ts:1 imports 'fs'/);
  });

  it('flags process.argv, process.exit, console and printing outside src/cli/**, and allows them in it', () => {
    const text = [
      "const args = process.argv.slice(2);",
      "process['exit'](1);",
      "console.log('hi');",
      "process.stdout.write('x');",
      "process.stderr.write('y');",
      "import { argv } from 'node:process';",
      "process.nextTick(() => {}); // allowed anywhere",
      "// process.exit(1) in a comment is fine",
      "const s = 'console.log in a string is fine';",
    ].join('\n');
    const outside = checkModules([module('src/server/server.ts', text)], layers).violations;
    assert.deepEqual(outside.map((violation) => /uses (.*): only/.exec(violation)?.[1]), [
      'process.argv', 'process.exit', 'console.log', 'process.stdout.write', 'process.stderr.write', "argv from 'node:process'",
    ], report(outside));
    const inside = checkModules([...existing, module('src/cli/main.ts', text.replace("import { argv } from 'node:process';", ''))], layers).violations;
    assert.deepEqual(inside, []);
  });

  it('flags a module in no layer and an import of a file that does not exist', () => {
    const { violations } = checkModules([module('src/stray.ts', ''), module('src/server/server.ts', "import { x } from './missing.js';")], layers);
    assert.equal(violations.length, 2, report(violations));
    assert.match(violations[0]!, /src\/stray\.ts is in no layer/);
    assert.match(violations[1]!, /src\/server\/missing\.ts, not a module in src/);
  });

  it('finds import cycles, including through several modules', () => {
    assert.deepEqual(findCycles(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']]])), ['a -> b -> c -> a']);
    assert.deepEqual(findCycles(new Map([['a', ['a']]])), ['a -> a']);
    assert.deepEqual(findCycles(new Map([['a', ['b', 'c']], ['b', ['c']], ['c', []]])), []);
  });
});
