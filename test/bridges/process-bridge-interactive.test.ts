// Interactive mode (lineBuffered): programs that never flush on their own (C stdio, Python print) answer
// line by line only when the bridge makes them line-buffered (stdbuf -oL -eL; PYTHONUNBUFFERED=1). Each case
// first shows the problem (without the option nothing arrives until the program exits), then the fix.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processBridge } from '../../src/bridges/process-bridge.js';
import type { TestClient } from './fixtures/harness.js';
import { fixture, logCollector, openClient, serve, waitFor } from './fixtures/harness.js';

const QUIET_MS = 400;

/** Nothing arrives for `ms` (the program's answer is stuck in its stdio buffer). */
async function assertQuiet(client: TestClient, ms: number, what: string): Promise<void> {
  await assert.rejects(client.events.next(ms, what), /timed out/, `${what}: expected nothing yet, got ${JSON.stringify(client.events.pending)}`);
}

async function runBuffered(t: Parameters<typeof serve>[0], command: string[]): Promise<void> {
  const { url } = await serve(t, '/buffered', processBridge({ command }));
  const client = await openClient(url('/buffered'));
  await assertQuiet(client, QUIET_MS, 'the greeting of a program that does not flush');
  client.ws.send('one');
  await assertQuiet(client, QUIET_MS, 'the answer of a program that does not flush');
  client.ws.send('quit');
  // At exit stdio flushes everything at once.
  assert.equal(await client.text(), 'ready');
  assert.equal(await client.text(), 'echo: one');
  assert.equal((await client.closed()).code, 1000);
}

async function runLineBuffered(t: Parameters<typeof serve>[0], command: string[], logs?: ReturnType<typeof logCollector>): Promise<void> {
  const { url } = await serve(t, '/interactive', processBridge({ command, lineBuffered: true, ...(logs !== undefined && { log: logs.log }) }));
  const client = await openClient(url('/interactive'));
  assert.equal(await client.text('the greeting, flushed at once'), 'ready');
  for (const word of ['one', 'two', 'three']) {
    client.ws.send(word);
    assert.equal(await client.text(`the answer to ${word}`), `echo: ${word}`);
  }
  client.ws.send('quit');
  assert.equal((await client.closed()).code, 1000);
}

describe('processBridge interactive mode: a C program using stdio', () => {
  let program: string | undefined;
  let skipReason: string | undefined;
  let dir: string | undefined;
  before(() => {
    const cc = spawnSync('sh', ['-c', 'command -v cc'], { encoding: 'utf8' });
    if (cc.status !== 0 || cc.stdout.trim() === '') {
      skipReason = 'no C compiler (cc) on PATH';
      return;
    }
    dir = mkdtempSync(join(tmpdir(), 'switchyard-cc-'));
    program = join(dir, 'unbuffered');
    const build = spawnSync(cc.stdout.trim(), ['-O1', '-o', program, fixture('unbuffered.c')], { encoding: 'utf8' });
    if (build.status !== 0) throw new Error(`cc failed: ${build.stderr}`);
  });
  after(() => { if (dir !== undefined) rmSync(dir, { recursive: true, force: true }); });

  it('without lineBuffered its answers wait in its stdio buffer until it exits', async (t) => {
    if (skipReason !== undefined) return t.skip(skipReason);
    await runBuffered(t, [program!]);
  });

  it('with lineBuffered (stdbuf -oL -eL) it answers line by line; stderr reaches the log', async (t) => {
    if (skipReason !== undefined) return t.skip(skipReason);
    if (!existsSync('/usr/bin/stdbuf') && !existsSync('/bin/stdbuf') && !existsSync('/usr/local/bin/stdbuf')) return t.skip('stdbuf (coreutils) not installed');
    const logs = logCollector();
    await runLineBuffered(t, [program!], logs);
    await waitFor(() => logs.lines.filter((line) => /stderr: got \d+ bytes$/.test(line)).length === 3, 3000, 'three stderr lines');
  });
});

describe('processBridge interactive mode: a Python program using print()', () => {
  const python = '/usr/bin/python3';

  it('without lineBuffered its answers wait in its buffer until it exits', async (t) => {
    if (!existsSync(python)) return t.skip(`${python} not installed`);
    await runBuffered(t, [python, fixture('unbuffered.py')]);
  });

  it('with lineBuffered (PYTHONUNBUFFERED=1) it answers line by line', async (t) => {
    if (!existsSync(python)) return t.skip(`${python} not installed`);
    await runLineBuffered(t, [python, fixture('unbuffered.py')]);
  });
});
