// `switchyard connect URL` on a real terminal (issue 6, items 3 and 4): the CLI runs in a tmux pane (Debian
// tmux, a tmux server of its own per test), keys go in with `send-keys` and the screen comes back with
// `capture-pane`. Proves the prompt, messages printed above a partly typed line without breaking it,
// /ping, /binary, /close, Ctrl-D, Ctrl-C and the exit status. Skipped when tmux is missing (fails under
// SWITCHYARD_REQUIRE_PEERS=1).
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cleanupStack, sleep, waitFor } from '../_support/cleanup.js';
import { cliPath } from '../_support/cli-server.js';
import { needPeer, tmuxMissing } from '../_support/peers.js';
import type { WebSocket } from '../../src/transport/websocket.js';
import { startEmbedded } from './_connect.js';

/** A tmux server of our own (its socket in a fresh temporary directory) with one detached window running `command`; killed in t.after. */
class TmuxPane {
  readonly #socketDir = mkdtempSync(path.join(os.tmpdir(), 'switchyard-tmux-'));
  readonly #socketPath = path.join(this.#socketDir, 'socket');

  constructor(t: TestContext, command: string, size = { columns: 100, rows: 30 }) {
    t.after(() => {
      this.#tmux(['kill-server'], false);
      rmSync(this.#socketDir, { recursive: true, force: true });
    });
    this.#tmux(['new-session', '-d', '-s', 'main', '-x', String(size.columns), '-y', String(size.rows), command]);
  }

  #tmux(args: readonly string[], check = true): string {
    // -f /dev/null: no user configuration; the pane is plain.
    const result = spawnSync('tmux', ['-S', this.#socketPath, '-f', '/dev/null', ...args], { encoding: 'utf8', timeout: 5000 });
    if (check && result.status !== 0) throw new Error(`tmux ${args.join(' ')} failed (${result.status}): ${result.stderr}`);
    return result.stdout;
  }

  /** Types text literally (no key names). */
  type(text: string): void {
    this.#tmux(['send-keys', '-t', 'main', '-l', text]);
  }

  /** Presses keys by name: Enter, C-d, C-c, Left. */
  press(...keys: string[]): void {
    this.#tmux(['send-keys', '-t', 'main', ...keys]);
  }

  /** The visible screen, wrapped lines joined (-J), without trailing blank lines. */
  screen(): string {
    return this.#tmux(['capture-pane', '-p', '-J', '-t', 'main']).replace(/\s+$/, '');
  }

  lines(): string[] {
    return this.screen().split('\n').map((line) => line.trimEnd());
  }

  /** Until the last line is the empty prompt ("> ", its trailing space trimmed). */
  async waitForPrompt(): Promise<void> {
    try {
      await waitFor(() => this.lines().at(-1) === '>', 10_000, 'the prompt');
    } catch (error) {
      throw new Error(`${(error as Error).message}; the screen:\n${this.screen()}`);
    }
  }

  async waitForText(text: string | RegExp, what = String(text)): Promise<void> {
    const seen = (): boolean => (typeof text === 'string' ? this.screen().includes(text) : text.test(this.screen()));
    try {
      await waitFor(seen, 10_000, what);
    } catch (error) {
      throw new Error(`${(error as Error).message}; the screen:\n${this.screen()}`);
    }
  }
}

/** The command a pane runs: the CLI, then its exit status on the screen, then a pause to read it. */
function connectCommand(url: string, ...args: string[]): string {
  const quoted = [process.execPath, cliPath, 'connect', url, ...args].map((word) => `'${word.replace(/'/g, "'\\''")}'`).join(' ');
  return `${quoted}; echo "[exit $?]"; sleep 600`;
}

interface Received { text: string; isBinary: boolean }

/** A route that records what arrives, echoes it, and lets the test push messages to the open connection. */
async function startChatServer(defer: (cleanup: () => unknown) => void, options: { tickMs?: number } = {}): Promise<{
  url: string; received: Received[]; sockets: WebSocket[]; closes: Array<{ code: number; reason: string }>;
}> {
  const received: Received[] = [];
  const sockets: WebSocket[] = [];
  const closes: Array<{ code: number; reason: string }> = [];
  const timers: NodeJS.Timeout[] = [];
  defer(() => { for (const timer of timers) clearInterval(timer); });
  const { wsUrl } = await startEmbedded(defer, (app) => app.websocket('/chat', {
    open(ws) {
      sockets.push(ws);
      if (options.tickMs !== undefined) {
        let tick = 0;
        timers.push(setInterval(() => ws.send(`tick ${++tick}`), options.tickMs));
      }
    },
    message(ws, data, isBinary) {
      received.push({ text: isBinary ? data.toString('hex') : data.toString(), isBinary });
      ws.send(data, isBinary);
    },
    close(_ws, code, reason) {
      closes.push({ code, reason });
      for (const timer of timers) clearInterval(timer);
    },
  }));
  return { url: `${wsUrl}/chat`, received, sockets, closes };
}

describe('switchyard connect on a terminal (tmux)', () => {
  it('echoes typed lines; a message pushed while a line is half typed is printed above it and the line survives', async (t) => {
    if (!needPeer(t, tmuxMissing())) return;
    const defer = cleanupStack(t);
    const server = await startChatServer(defer);
    const pane = new TmuxPane(t, connectCommand(server.url));
    await pane.waitForText('* connected to ws://127.0.0.1:', 'the connected line');
    await pane.waitForPrompt();

    pane.type('hello there');
    pane.press('Enter');
    await pane.waitForText('< hello there');
    assert.deepEqual(server.received, [{ text: 'hello there', isBinary: false }]);

    pane.type('hel');
    await waitFor(() => pane.lines().at(-1) === '> hel', 5000, 'the partly typed line');
    server.sockets[0]!.send('pushed while typing');
    await pane.waitForText('< pushed while typing');
    const lines = pane.lines();
    assert.equal(lines.at(-1), '> hel', `the typed text is redrawn below the pushed message:\n${pane.screen()}`);
    assert.equal(lines.at(-2), '< pushed while typing');
    pane.type('lo');
    pane.press('Enter');
    await waitFor(() => server.received.length === 2, 5000, 'the second message');
    assert.deepEqual(server.received[1], { text: 'hello', isBinary: false });
    await pane.waitForText('< hello\n');
  });

  it('keeps typing intact while a server pushes on a timer', async (t) => {
    if (!needPeer(t, tmuxMissing())) return;
    const defer = cleanupStack(t);
    const server = await startChatServer(defer, { tickMs: 60 });
    const pane = new TmuxPane(t, connectCommand(server.url));
    await pane.waitForText('< tick 1');
    // One key at a time, ticks printed in between.
    for (const key of 'typed between ticks') {
      pane.type(key);
      await sleep(25);
    }
    pane.press('Enter');
    await waitFor(() => server.received.length === 1, 5000, 'the typed message');
    assert.deepEqual(server.received[0], { text: 'typed between ticks', isBinary: false });
    const screen = pane.screen();
    assert.match(screen, /^> typed between ticks$/m);
    assert.ok((screen.match(/^< tick \d+$/gm) ?? []).length >= 5, `ticks were printed while typing:\n${screen}`);
  });

  it('/ping shows the pong, /binary 68 69 sends "hi" as binary, /close 4001 bye exits 1 with the code on stderr', async (t) => {
    if (!needPeer(t, tmuxMissing())) return;
    const defer = cleanupStack(t);
    const server = await startChatServer(defer);
    const pane = new TmuxPane(t, connectCommand(server.url));
    await pane.waitForPrompt();

    pane.type('/ping');
    pane.press('Enter');
    await pane.waitForText(/^\* pong \(\d+ ms\)$/m, 'the pong');

    pane.type('/binary 68 69');
    pane.press('Enter');
    await pane.waitForText('< [binary 2 bytes] 6869');
    assert.deepEqual(server.received, [{ text: '6869', isBinary: true }]);

    pane.type('/nonsense');
    pane.press('Enter');
    await pane.waitForText('* unknown command /nonsense');
    pane.type('//nonsense');
    pane.press('Enter');
    await pane.waitForText('< /nonsense');
    assert.deepEqual(server.received.at(-1), { text: '/nonsense', isBinary: false });

    pane.type('/close 4001 bye');
    pane.press('Enter');
    await pane.waitForText('[exit 1]');
    assert.match(pane.screen(), /^switchyard: connection closed with 4001 "bye"$/m);
    await waitFor(() => server.closes.length === 1, 3000, 'the server to see the close');
    assert.deepEqual(server.closes[0], { code: 4001, reason: 'bye' });
  });

  it('Ctrl-D closes with 1000 and exits 0; the prompt is gone', async (t) => {
    if (!needPeer(t, tmuxMissing())) return;
    const defer = cleanupStack(t);
    const server = await startChatServer(defer);
    const pane = new TmuxPane(t, connectCommand(server.url));
    await pane.waitForPrompt();
    pane.press('C-d');
    await pane.waitForText('[exit 0]');
    const lines = pane.lines();
    assert.equal(lines.at(-2), '* connection closed (1000 "")');
    assert.ok(!lines.some((line) => line === '>'), `no prompt left behind:\n${pane.screen()}`);
    await waitFor(() => server.closes.length === 1, 3000, 'the server to see the close');
    assert.deepEqual(server.closes, [{ code: 1000, reason: '' }]);
  });

  it('Ctrl-C closes with 1000 and exits 0', async (t) => {
    if (!needPeer(t, tmuxMissing())) return;
    const defer = cleanupStack(t);
    const server = await startChatServer(defer);
    const pane = new TmuxPane(t, connectCommand(server.url));
    await pane.waitForPrompt();
    pane.type('half a line');
    pane.press('C-c');
    await pane.waitForText('[exit 0]');
    assert.match(pane.screen(), /^\* closing \(Ctrl-C again to quit at once\)$/m);
    await waitFor(() => server.closes.length === 1, 3000, 'the server to see the close');
    assert.deepEqual(server.closes, [{ code: 1000, reason: '' }]);
    assert.deepEqual(server.received, []);
  });

  it('a server close with 4000 ends the session: exit 1, code and reason on stderr', async (t) => {
    if (!needPeer(t, tmuxMissing())) return;
    const defer = cleanupStack(t);
    const server = await startChatServer(defer);
    const pane = new TmuxPane(t, connectCommand(server.url));
    await pane.waitForPrompt();
    pane.type('unsent');
    server.sockets[0]!.close(4000, 'server says bye');
    await pane.waitForText('[exit 1]');
    assert.match(pane.screen(), /^switchyard: connection closed with 4000 "server says bye"$/m);
  });
});
