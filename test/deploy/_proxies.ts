// Starts the real Debian nginx, Apache httpd and lighttpd on 127.0.0.1 ephemeral ports, configured with the blocks
// docs/deploy.md marks `<!-- deploy-test: NAME -->` (copied out of the doc, only ports, certificate paths and
// timeouts substituted), with every pid, log and temp path inside a temp dir; and stops them by pid.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, promises as fsp, readFileSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { programPath } from '../_support/peers.js';
import { freePort as probeFreePort } from '../_support/resources.js';
import { withTimeout } from '../interop/_wait.js';

export const deployDocPath = fileURLToPath(new URL('../../../docs/deploy.md', import.meta.url));

const startTimeoutMs = 5_000;
const stopGraceMs = 2_000;

/** The fenced block that follows `<!-- deploy-test: NAME -->` in docs/deploy.md, without its fences. */
export function docBlock(name: string): string {
  const doc = readFileSync(deployDocPath, 'utf8');
  const marker = `<!-- deploy-test: ${name} -->`;
  const at = doc.indexOf(marker);
  if (at < 0) throw new Error(`docs/deploy.md has no "${marker}" block`);
  const match = /^[ \t]*```[^\n]*\n([\s\S]*?)^[ \t]*```[ \t]*$/m.exec(doc.slice(at + marker.length));
  if (!match || match.index > 2) throw new Error(`"${marker}" in docs/deploy.md is not directly followed by a fenced block`);
  return match[1]!;
}

/**
 * Replaces `from` (a literal) in a doc block with `to`, and fails when it does not occur exactly once: an edit
 * to docs/deploy.md must not leave the tests quietly running something other than what the page shows.
 */
export function substitute(text: string, from: string, to: string, block: string): string {
  const count = text.split(from).length - 1;
  if (count !== 1) throw new Error(`expected "${from}" exactly once in the ${block} block of docs/deploy.md, found ${count}`);
  return text.replace(from, () => to);
}

/** Removes a whole line containing `needle` (exactly one) from a doc block: for the tests that show a line matters. */
export function withoutLine(text: string, needle: string, block: string): string {
  const lines = text.split('\n');
  const hits = lines.filter((line) => line.includes(needle)).length;
  if (hits !== 1) throw new Error(`expected one line with "${needle}" in the ${block} block of docs/deploy.md, found ${hits}`);
  return lines.filter((line) => !line.includes(needle)).join('\n');
}

/** A port that was free a moment ago (bind :0, read it, close): the caller retries if someone took it since. */
export function freePort(): Promise<number> {
  return withTimeout(probeFreePort(), startTimeoutMs, 'a probe socket to listen');
}

export interface RunningProxy {
  readonly name: string;
  readonly port: number;
  readonly pid: number;
  /** http://127.0.0.1:PORT (https:// for a TLS listener) */
  readonly httpUrl: string;
  /** ws://127.0.0.1:PORT (wss://) */
  readonly wsUrl: string;
  /** Everything the proxy wrote to stdout and stderr (its error log) so far. */
  output(): string;
  /** SIGTERM to its process group, SIGKILL after 2 s; removes its temp dir. Safe to call twice. */
  stop(): Promise<void>;
}

/** Process groups of proxies still running, killed if the test process exits without its after hooks. */
const livePids = new Set<number>();
process.once('exit', () => {
  for (const pid of livePids) {
    try { process.kill(-pid, 'SIGKILL'); } catch { /* already gone */ }
  }
});

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal); // the proxy and its workers: its own process group (detached below)
  } catch {
    try { child.kill(signal); } catch { /* already gone */ }
  }
}

class AddressInUse extends Error {}

/**
 * Spawns `command args` in its own process group and waits for its `ready` log line (printed once it has bound
 * its port, so a foreign listener on a reused port cannot pass for it) and for 127.0.0.1:port to accept.
 */
async function spawnProxy(
  name: string, command: string, args: readonly string[], port: number, dir: string, scheme: 'http' | 'https', ready: RegExp,
): Promise<RunningProxy> {
  const child = spawn(command, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (text: string) => { output += text; });
  child.stderr!.setEncoding('utf8').on('data', (text: string) => { output += text; });
  const exited = once(child, 'exit').catch(() => undefined);
  child.on('error', (error) => { output += `\nspawn error: ${error.message}`; });
  if (child.pid !== undefined) livePids.add(child.pid);
  const running = () => child.exitCode === null && child.signalCode === null;

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      if (running()) {
        signalGroup(child, 'SIGTERM');
        const gone = await withTimeout(exited, stopGraceMs, `${name} to exit after SIGTERM`).then(() => true, () => false);
        if (!gone) {
          signalGroup(child, 'SIGKILL');
          await withTimeout(exited, stopGraceMs, `${name} to exit after SIGKILL`).catch(() => undefined);
        }
      }
      if (child.pid !== undefined) livePids.delete(child.pid);
      await fsp.rm(dir, { recursive: true, force: true });
    })();
    return stopped;
  };

  const deadline = Date.now() + startTimeoutMs;
  for (;;) {
    if (!running() || child.pid === undefined) {
      await stop();
      if (/address already in use/i.test(output)) throw new AddressInUse(output);
      throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}) before listening on ${port}:\n${output}`);
    }
    if (ready.test(output) && await canConnect(port)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${name} did not listen on 127.0.0.1:${port} within ${startTimeoutMs} ms:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  const ws = scheme === 'https' ? 'wss' : 'ws';
  return {
    name, port, pid: child.pid, httpUrl: `${scheme}://127.0.0.1:${port}`, wsUrl: `${ws}://127.0.0.1:${port}`,
    output: () => output, stop,
  };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => { socket.destroy(); resolve(ok); };
    socket.setTimeout(500, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Picks a port, writes the config for it and starts; a port taken between the probe and the bind is retried. */
async function startOnFreePort(start: (port: number, dir: string) => Promise<RunningProxy>, prefix: string): Promise<RunningProxy> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
    // nginx started as root runs its workers as "nobody", which must reach the temp dirs inside this one.
    await fsp.chmod(dir, 0o755);
    try {
      return await start(await freePort(), dir);
    } catch (error) {
      await fsp.rm(dir, { recursive: true, force: true });
      if (!(error instanceof AddressInUse)) throw error;
      lastError = error;
    }
  }
  throw new Error(`could not find a free port for ${prefix}: ${String(lastError)}`);
}

// ---- nginx ----

export interface NginxOptions {
  /** switchyard's port on 127.0.0.1 (replaces the doc's `server 127.0.0.1:8080;`). */
  readonly upstreamPort: number;
  /** Replaces the doc's `proxy_read_timeout 60s;` value. */
  readonly readTimeoutSeconds: number;
  /** Which doc block serves: the plain `listen 80` site, or the TLS one (which needs `tls`). */
  readonly site?: 'nginx-site' | 'nginx-tls';
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
  /** A last edit of the site block (the tests that remove a line to show it matters). */
  readonly edit?: (site: string) => string;
}

export const nginxPath = (): string => (existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : programPath('nginx'));

/** The doc's nginx block for this test: its own port, upstream and timeout; everything else verbatim. */
export function nginxSite(options: NginxOptions, port: number): string {
  const base = docBlock('nginx-site');
  // The doc's `map` and `upstream` are shared by both server blocks; the site is either the whole block as it
  // stands (listen 80 replaced) or those two plus the TLS server block.
  let site: string;
  if ((options.site ?? 'nginx-site') === 'nginx-site') {
    site = substitute(base, 'listen 80;', `listen 127.0.0.1:${port};`, 'nginx-site');
  } else {
    if (!options.tls) throw new Error('the nginx-tls block needs a certificate');
    const serverAt = base.indexOf('\nserver {');
    if (serverAt < 0) throw new Error('the nginx-site block of docs/deploy.md has no server { } block');
    let tls = docBlock('nginx-tls');
    tls = substitute(tls, 'listen 443 ssl http2;', `listen 127.0.0.1:${port} ssl http2;`, 'nginx-tls');
    tls = substitute(tls, '/etc/letsencrypt/live/example.com/fullchain.pem', options.tls.certFile, 'nginx-tls');
    tls = substitute(tls, '/etc/letsencrypt/live/example.com/privkey.pem', options.tls.keyFile, 'nginx-tls');
    site = `${base.slice(0, serverAt)}\n${tls}`;
  }
  site = substitute(site, 'server 127.0.0.1:8080;', `server 127.0.0.1:${options.upstreamPort};`, 'nginx-site');
  site = substitute(site, 'proxy_read_timeout 60s;', `proxy_read_timeout ${options.readTimeoutSeconds}s;`, 'nginx-site');
  return options.edit ? options.edit(site) : site;
}

/**
 * The test-only frame around the doc's block: what Debian's /etc/nginx/nginx.conf provides (the http { } block
 * that includes conf.d), with pid, logs and temp paths in `dir` so nginx runs without touching /etc or /var.
 */
function nginxConf(dir: string, site: string): string {
  const temp = (what: string) => `    ${what}_temp_path ${path.join(dir, 'temp', what)};`;
  return [
    'worker_processes 1;',
    `pid ${path.join(dir, 'nginx.pid')};`,
    'error_log stderr info;', // info: the "upstream timed out ... while proxying upgraded connection" line
    'events { worker_connections 256; }',
    'http {',
    '    access_log off;',
    temp('client_body'), temp('proxy'), temp('fastcgi'), temp('uwsgi'), temp('scgi'),
    '    # ---- docs/deploy.md ----',
    site,
    '}',
    '',
  ].join('\n');
}

export function startNginx(options: NginxOptions): Promise<RunningProxy> {
  return startOnFreePort(async (port, dir) => {
    await fsp.mkdir(path.join(dir, 'temp'));
    await fsp.writeFile(path.join(dir, 'nginx.conf'), nginxConf(dir, nginxSite(options, port)));
    const scheme = options.site === 'nginx-tls' ? 'https' : 'http';
    return spawnProxy('nginx', nginxPath(), ['-p', dir, '-c', 'nginx.conf', '-g', 'daemon off;'], port, dir, scheme,
      /start worker processes/);
  }, 'switchyard-nginx-');
}

// ---- lighttpd ----

export interface LighttpdOptions {
  readonly upstreamPort: number;
  /** Replace the doc's `server.max-read-idle  = 60` and `server.max-write-idle = 360` values. */
  readonly maxReadIdleSeconds: number;
  readonly maxWriteIdleSeconds: number;
}

export const lighttpdPath = (): string => (existsSync('/usr/sbin/lighttpd') ? '/usr/sbin/lighttpd' : programPath('lighttpd'));

export function lighttpdSite(options: LighttpdOptions): string {
  let site = docBlock('lighttpd');
  site = substitute(site, '"port" => 8080', `"port" => ${options.upstreamPort}`, 'lighttpd');
  site = substitute(site, 'server.max-read-idle  = 60', `server.max-read-idle  = ${options.maxReadIdleSeconds}`, 'lighttpd');
  site = substitute(site, 'server.max-write-idle = 360', `server.max-write-idle = ${options.maxWriteIdleSeconds}`, 'lighttpd');
  return site;
}

/**
 * The test-only frame: what Debian's /etc/lighttpd/lighttpd.conf sets before including conf-enabled/ (document
 * root, port, pid file, upload dir, and its HTTP/2 feature flags), pointed into `dir`. No server.errorlog: with
 * -D lighttpd logs to stderr, which the test collects.
 */
function lighttpdConf(dir: string, port: number, site: string): string {
  return [
    `server.document-root = "${path.join(dir, 'htdocs')}"`,
    'server.bind = "127.0.0.1"',
    `server.port = ${port}`,
    `server.pid-file = "${path.join(dir, 'lighttpd.pid')}"`,
    `server.upload-dirs = ( "${path.join(dir, 'uploads')}" )`,
    'server.feature-flags += ("server.h2proto" => "enable")',
    'server.feature-flags += ("server.h2c"     => "enable")',
    '# ---- docs/deploy.md ----',
    site,
    '',
  ].join('\n');
}

export function startLighttpd(options: LighttpdOptions): Promise<RunningProxy> {
  return startOnFreePort(async (port, dir) => {
    await fsp.mkdir(path.join(dir, 'htdocs'));
    await fsp.mkdir(path.join(dir, 'uploads'));
    const confFile = path.join(dir, 'lighttpd.conf');
    await fsp.writeFile(confFile, lighttpdConf(dir, port, lighttpdSite(options)));
    return spawnProxy('lighttpd', lighttpdPath(), ['-D', '-f', confFile], port, dir, 'http', /server started/);
  }, 'switchyard-lighttpd-');
}

// ---- Apache httpd ----

export interface ApacheOptions {
  readonly upstreamPort: number;
  /**
   * The server's `Timeout` in the test frame (Debian's apache2.conf sets 300): a tunnel's idle timeout is the higher
   * of it and the ProxyPass line's, which the doc leaves at its default (`Timeout` again).
   */
  readonly timeoutSeconds: number;
  /** A last edit of the site block (a test that shows what a line does). */
  readonly edit?: (site: string) => string;
}

export const apachePath = (): string => (existsSync('/usr/sbin/apache2') ? '/usr/sbin/apache2' : programPath('apache2'));

export function apacheSite(options: ApacheOptions, port: number): string {
  let site = docBlock('apache');
  const upstream = `http://127.0.0.1:${options.upstreamPort}/`;
  site = substitute(site, '<VirtualHost *:80>', `<VirtualHost 127.0.0.1:${port}>`, 'apache');
  site = substitute(site, 'ProxyPass        / http://127.0.0.1:8080/ upgrade=websocket',
    `ProxyPass        / ${upstream} upgrade=websocket`, 'apache');
  site = substitute(site, 'ProxyPassReverse / http://127.0.0.1:8080/', `ProxyPassReverse / ${upstream}`, 'apache');
  return options.edit ? options.edit(site) : site;
}

/**
 * The test-only frame: what Debian's apache2.conf, ports.conf and `a2enmod proxy proxy_http headers` provide (the
 * event MPM, the modules, Listen, Timeout), with the pid file, mutexes and runtime dir in `dir` and the error log on
 * our stdout, so httpd runs in the foreground without touching /etc or /var.
 */
function apacheConf(dir: string, port: number, timeoutSeconds: number, site: string): string {
  const modules = '/usr/lib/apache2/modules';
  const load = (name: string) => `LoadModule ${name}_module ${modules}/mod_${name}.so`;
  return [
    `ServerRoot "${dir}"`,
    `DefaultRuntimeDir "${dir}"`,
    `PidFile "${path.join(dir, 'apache2.pid')}"`,
    `Mutex file:${dir} default`,
    load('mpm_event'), load('authz_core'), load('proxy'), load('proxy_http'), load('headers'),
    // Started as root, httpd switches its children to this user (Debian's www-data; nobody exists everywhere).
    'User nobody',
    `Group ${process.platform === 'linux' ? 'nogroup' : 'nobody'}`,
    'ServerName 127.0.0.1',
    `Timeout ${timeoutSeconds}`,
    `Listen 127.0.0.1:${port}`,
    // stdio here is a socket, which open("/dev/stderr") refuses (ENXIO): a piped logger inherits it instead.
    'ErrorLog "|/bin/cat"',
    'LogLevel warn proxy:info proxy_http:info',
    'StartServers 1',
    'ServerLimit 1',
    'ThreadsPerChild 64',
    'MaxRequestWorkers 64',
    '# ---- docs/deploy.md ----',
    site,
    '',
  ].join('\n');
}

export function startApache(options: ApacheOptions): Promise<RunningProxy> {
  return startOnFreePort(async (port, dir) => {
    const confFile = path.join(dir, 'apache2.conf');
    await fsp.writeFile(confFile, apacheConf(dir, port, options.timeoutSeconds, apacheSite(options, port)));
    return spawnProxy('apache2', apachePath(), ['-d', dir, '-f', confFile, '-DFOREGROUND'], port, dir, 'http',
      /resuming normal operations/);
  }, 'switchyard-apache-');
}
