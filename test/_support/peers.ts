// Finds the real peers the interop tests run against (Debian packages) and decides what a missing one means:
// a skip that says so under `npm test`, a failure under SWITCHYARD_REQUIRE_PEERS=1 (set by .ci/run).
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import type { TestContext } from 'node:test';

/** Debian's Python: its modules (python3-websockets) belong to /usr/bin/python3, not the pyenv python3 on PATH. */
export const debianPython = '/usr/bin/python3';
export const chromiumPath = '/usr/bin/chromium';

export const peersRequired = process.env['SWITCHYARD_REQUIRE_PEERS'] === '1';

const cache = new Map<string, string | undefined>();

/** Returns undefined when the peer is usable, otherwise why it is not. */
function probe(name: string, check: () => string | undefined): string | undefined {
  if (!cache.has(name)) cache.set(name, check());
  return cache.get(name);
}

export function pythonWebsocketsMissing(): string | undefined {
  return probe('python3-websockets', () => {
    if (!existsSync(debianPython)) return `${debianPython} not found (install Debian python3-websockets)`;
    const result = spawnSync(debianPython, ['-c', 'import websockets, sys; sys.stdout.write(websockets.__version__)'], { encoding: 'utf8' });
    return result.status === 0 ? undefined : 'Python module websockets not importable by /usr/bin/python3 (install Debian python3-websockets)';
  });
}

export function chromiumMissing(): string | undefined {
  return probe('chromium', () => (existsSync(chromiumPath) ? undefined : `${chromiumPath} not found (install Debian chromium)`));
}

/**
 * Call at the start of a test that needs a peer. Returns true when the test may go on; otherwise it has
 * skipped the test (saying which peer is missing) or, when peers are required, thrown.
 */
export function needPeer(t: TestContext, missing: string | undefined): boolean {
  if (missing === undefined) return true;
  if (peersRequired) throw new Error(`required peer missing: ${missing}`);
  t.skip(`peer not installed: ${missing}`);
  return false;
}

/** A program on PATH (or at an absolute path); undefined when found. */
function programMissing(name: string, packageName: string): string | undefined {
  return probe(name, () => {
    const result = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
    return result.status === 0 && result.stdout.trim() !== '' ? undefined : `${name} not found (install Debian ${packageName})`;
  });
}

/** Where a Debian program lives (its absolute path), once programMissing() said it is there. */
export function programPath(name: string): string {
  return spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).stdout.trim();
}

export function nginxMissing(): string | undefined {
  // Debian installs nginx in /usr/sbin, which is not on every user's PATH.
  return existsSync('/usr/sbin/nginx') ? undefined : programMissing('nginx', 'nginx');
}

export function lighttpdMissing(): string | undefined {
  return existsSync('/usr/sbin/lighttpd') ? undefined : programMissing('lighttpd', 'lighttpd');
}

export function apacheMissing(): string | undefined {
  return existsSync('/usr/sbin/apache2') ? undefined : programMissing('apache2', 'apache2');
}

export function websocketdMissing(): string | undefined {
  return programMissing('websocketd', 'websocketd');
}

export function websockifyMissing(): string | undefined {
  return programMissing('websockify', 'websockify');
}

export function tmuxMissing(): string | undefined {
  return programMissing('tmux', 'tmux');
}
