// What tests borrow from the operating system and must check they gave back: ports and file descriptors.
import { readdirSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';

/**
 * A loopback port that was free a moment ago (bound on port 0, read, released): for programs that need a port on
 * their command line, or a target that refuses connections. Whoever uses it retries if someone took it since.
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, host, () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** File descriptors this process has open now (Linux: /proc/self/fd), for leak checks. */
export function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}
