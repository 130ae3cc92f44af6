/**
 * The lessor on a real LevelDB backend with an injected clock: grant and revoke, leader-only
 * expiry, a new leader's extension, and a deadline heap that stays bounded under renewals.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Lessor } from '../../../src/lease/lessor';
import { Backend } from '../../../src/storage/backend';

describe('Lessor', () => {
  let dir: string;
  let backend: Backend;
  let now: number;
  let lessor: Lessor;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lessor-'));
    backend = await Backend.open(path.join(dir, 'db'));
    now = 1_000_000;
    lessor = new Lessor(backend, 2, () => now);
  });
  afterEach(async () => {
    await backend.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('grant raises the TTL to the minimum; a second grant of the id fails; revoke returns the keys', () => {
    expect(lessor.grant(1n, 1).ttl).toBe(2);
    expect(() => lessor.grant(1n, 5)).toThrow('etcdserver: lease already exists');
    lessor.onAttach('b', 0n, 1n);
    lessor.onAttach('a', 0n, 1n);
    expect(lessor.revoke(1n).keys).toEqual(['a', 'b']);
    expect(() => lessor.revoke(1n)).toThrow('etcdserver: requested lease not found');
  });

  test('only a leader expires leases; a new leader extends every deadline first', () => {
    lessor.grant(1n, 10);
    now += 60_000;
    expect(lessor.takeExpired(10)).toEqual([]);
    lessor.promote(1000);
    now += 10_500;
    expect(lessor.takeExpired(10)).toEqual([]);
    expect(lessor.remaining(1n)).toBe(0);
    now += 600;
    expect(lessor.takeExpired(10)).toEqual([1n]);
    // Being revoked: not handed out twice, and a keep-alive gets TTL 0.
    expect(lessor.takeExpired(10)).toEqual([]);
    expect(lessor.renew(1n)).toBe(0);
  });

  test('renewals keep the deadline heap bounded and the right lease expires', () => {
    lessor.promote(0);
    for (let id = 1n; id <= 10n; id++) lessor.grant(id, 60);
    let ttls = 0;
    for (let i = 0; i < 30_000; i++) {
      now += 1;
      ttls += lessor.renew(BigInt(1 + (i % 9)));
    }
    expect(ttls).toBe(30_000 * 60);
    expect(lessor.heapSize).toBeLessThanOrEqual(2 * 10 + 1024 + 1);
    // Lease 10 was never renewed; the others were renewed within the last 30 s.
    now += 30_001;
    expect(lessor.takeExpired(10)).toEqual([10n]);
    now += 60_000;
    expect(lessor.takeExpired(20).sort()).toEqual([1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n, 9n]);
  });
});
