/**
 * The server command itself: flags, environment, default data dir, clean shutdown.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SERVER_JS, etcdctl, freePort, run, startMember, stopAll, stopMember, tmpDir } from './harness';

afterAll(stopAll);

test('a bad flag gets a clear message and a non-zero exit', async () => {
  const r = await run(process.execPath, [SERVER_JS, '--no-such-flag']);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toContain('no-such-flag');
  const e = await run(process.execPath, [SERVER_JS, '--heartbeat-interval', '100', '--election-timeout', '200']);
  expect(e.code).not.toBe(0);
  expect(e.stderr).toContain('election-timeout');
});

test('--version and --help answer without starting', async () => {
  const v = await run(process.execPath, [SERVER_JS, '--version']);
  expect(v.code).toBe(0);
  expect(v.stdout).toMatch(/etcd Version: 3\.\d+\.\d+/);
  const h = await run(process.execPath, [SERVER_JS, '--help']);
  expect(h.code).toBe(0);
  expect(h.stdout).toContain('--listen-client-urls');
});

test('ETCD_* variables configure the server; default data dir is <name>.etcd in the working dir', async () => {
  const cwd = tmpDir('cmd-');
  const port = await freePort();
  const peer = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const { spawn } = await import('node:child_process');
  const p = spawn(process.execPath, [SERVER_JS], {
    cwd,
    env: {
      ...process.env,
      ETCD_NAME: 'envnode',
      ETCD_LISTEN_CLIENT_URLS: url,
      ETCD_ADVERTISE_CLIENT_URLS: url,
      ETCD_LISTEN_PEER_URLS: `http://127.0.0.1:${peer}`,
      ETCD_INITIAL_ADVERTISE_PEER_URLS: `http://127.0.0.1:${peer}`,
    },
    stdio: 'ignore',
  });
  try {
    let ok = false;
    for (let i = 0; i < 100 && !ok; i++) {
      ok = (await etcdctl(`127.0.0.1:${port}`, ['put', 'a', 'b'])).code === 0;
      if (!ok) await new Promise((r) => setTimeout(r, 100));
    }
    expect(ok).toBe(true);
    expect(fs.existsSync(path.join(cwd, 'envnode.etcd', 'member'))).toBe(true);
  } finally {
    p.kill('SIGKILL');
  }
});

test('SIGTERM and SIGINT shut down cleanly and the data is there after restart', async () => {
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    const m = await startMember();
    expect((await etcdctl(m, ['put', 'k', sig])).code).toBe(0);
    expect(await stopMember(m, sig)).toBe(0);
    const again = await startMember({ name: m.name, dataDir: m.dataDir, clientPort: m.clientPort, peerPort: m.peerPort });
    expect((await etcdctl(again, ['get', 'k', '--print-value-only'])).stdout).toBe(`${sig}\n`);
    await stopMember(again);
  }
}, 60000);
