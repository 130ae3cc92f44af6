/**
 * Randomized simulation runs (see sim.ts). RAFT_SIM_SEEDS=<n> runs n seeds per cluster size
 * (default 1000 × sizes 1, 3, 5 = 3,000 runs); RAFT_SIM_STEPS=<n> changes the steps per run
 * (default 2000); RAFT_SIM_SEED=<s> runs only that seed (to reproduce a failure).
 */
import { SimViolation, defaultSimConfig, runSimulation } from './sim';
import type { SimResult } from './sim';

const seeds = Number(process.env['RAFT_SIM_SEEDS'] ?? '1000');
const steps = Number(process.env['RAFT_SIM_STEPS'] ?? '2000');
const only = process.env['RAFT_SIM_SEED'];

function total(results: SimResult[], k: keyof SimResult): number {
  return results.reduce((acc, r) => acc + r[k], 0);
}

describe('randomized simulation', () => {
  test('the same seed gives the same run', () => {
    const a = runSimulation(defaultSimConfig(12345, 5, 1500));
    const b = runSimulation(defaultSimConfig(12345, 5, 1500));
    const c = runSimulation(defaultSimConfig(12346, 5, 1500));
    expect(a).toEqual(b);
    expect(c.traceHash).not.toBe(a.traceHash);
  });

  for (const members of [1, 3, 5]) {
    test(`safety holds on ${members}-member clusters`, () => {
      const results: SimResult[] = [];
      const list = only !== undefined ? [Number(only)] : Array.from({ length: seeds }, (_, i) => i + 1 + members * 100000);
      for (const seed of list) {
        try {
          results.push(runSimulation(defaultSimConfig(seed, members, steps)));
        } catch (e) {
          if (e instanceof SimViolation) throw new Error(`${e.message} (members ${members}; RAFT_SIM_SEED=${seed})`);
          throw new Error(`seed ${seed}, members ${members}: ${(e as Error).stack ?? String(e)}`);
        }
      }
      // The checks must not be vacuous: across many seeds the runs made progress through every
      // feature (a single harsh seed, as when reproducing, may legitimately make little).
      if (list.length < 20) return;
      expect(total(results, 'committed')).toBeGreaterThan(list.length * 50);
      expect(total(results, 'elections')).toBeGreaterThan(list.length);
      expect(total(results, 'readsServed')).toBeGreaterThan(list.length * 5);
      if (members > 1) {
        expect(total(results, 'snapshotsRestored')).toBeGreaterThan(0);
        expect(total(results, 'confChangesApplied')).toBeGreaterThan(0);
        expect(total(results, 'crashes')).toBeGreaterThan(0);
      }
    });
  }
});
