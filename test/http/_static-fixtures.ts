// What the StaticFiles tests share: a temp directory whose root/ they fill, node:http servers serving it with
// StaticFiles, and a plain http.request (no Accept-Encoding added, no encoding decoded) to ask them.
import { Buffer } from 'node:buffer';
import { promises as fsp } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { StaticFiles, type StaticFilesOptions } from '../../src/http/static-files.js';

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** One request to 127.0.0.1:`port` on a fresh connection; resolves with the whole response. */
export function send(port: number, target: string, headers: http.OutgoingHttpHeaders = {}, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: target, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

export interface StaticFixture {
  /** The temp directory: room beside the root for files that must not be served. */
  readonly baseDir: string;
  /** `baseDir`/root, created empty: what the servers serve. */
  readonly rootDir: string;
  /** Writes a file at `name`, a path relative to rootDir. */
  write(name: string, data: string | Uint8Array): Promise<void>;
  /** Starts another server on 127.0.0.1 serving rootDir with these options; resolves with its port. */
  listen(options?: Omit<StaticFilesOptions, 'root'>): Promise<number>;
  /** Closes every server started and removes the temp directory. */
  close(): Promise<void>;
}

/** Makes a temp directory named `prefix`... with an empty root/ in it (call in `before`, close() in `after`). */
export async function createStaticFixture(prefix: string): Promise<StaticFixture> {
  const baseDir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  const rootDir = path.join(baseDir, 'root');
  await fsp.mkdir(rootDir);
  const servers: http.Server[] = [];
  return {
    baseDir,
    rootDir,
    write: (name, data) => fsp.writeFile(path.join(rootDir, name), data),
    async listen(options = {}) {
      const files = new StaticFiles({ root: rootDir, ...options });
      const server = http.createServer((req, res) => void files.handle(req, res));
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return (server.address() as AddressInfo).port;
    },
    async close() {
      for (const server of servers) {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
      await fsp.rm(baseDir, { recursive: true, force: true });
    },
  };
}
