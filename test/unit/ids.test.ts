import { computeClusterId, computeMemberId, idHex, IdGenerator } from '../../src/server/ids';

describe('ids', () => {
  test('a default single member gets the ids etcd gives it', () => {
    // etcd 3.4 started with no flags reports member 8e9e05c52164694d in cluster cdf818194e3a8c32.
    const m = computeMemberId(['http://localhost:2380'], 'etcd-cluster');
    expect(idHex(m)).toBe('8e9e05c52164694d');
    expect(idHex(computeClusterId([m]))).toBe('cdf818194e3a8c32');
  });

  test('peer URL order does not matter', () => {
    const a = computeMemberId(['http://a:1', 'http://b:2'], 't');
    const b = computeMemberId(['http://b:2', 'http://a:1'], 't');
    expect(a).toBe(b);
    expect(computeMemberId(['http://a:1'], 't')).not.toBe(computeMemberId(['http://a:1'], 'u'));
  });

  test('request ids are unique and carry the member prefix', () => {
    const g = new IdGenerator(0x1234_5678_9abc_def0n, 1_700_000_000_000);
    const seen = new Set<bigint>();
    for (let i = 0; i < 1000; i++) {
      const id = g.id();
      expect(id >> 48n).toBe(0xdef0n);
      seen.add(id);
    }
    expect(seen.size).toBe(1000);
  });
});
