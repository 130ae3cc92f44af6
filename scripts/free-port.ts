/**
 * Free TCP ports on 127.0.0.1 for test and benchmark processes.
 *
 * A port is found by listening on port 0 and closing again, so the kernel may offer the same number
 * to two calls in a row (a member's client and peer port, say). Every port this process was given is
 * remembered and never handed out twice.
 */
import * as net from 'node:net';

const given = new Set<number>();

function probe(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** A port on 127.0.0.1 that was free a moment ago and that this process has not been given before. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await probe();
    if (port !== 0 && !given.has(port)) {
      given.add(port);
      return port;
    }
  }
}
