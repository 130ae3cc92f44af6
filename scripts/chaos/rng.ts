/** The seeded random source of a chaos run: the same seed gives the same fault schedule. */
import { SeededRng } from '../../src/raft/rng';

/** A seeded generator with the helpers the runner needs. */
export class Random {
  private readonly rng: SeededRng;

  constructor(seed: number) {
    this.rng = new SeededRng(seed);
  }

  /** A float in [0, 1). */
  float(): number {
    return this.rng.nextFloat();
  }

  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  /** One element of a non-empty list. */
  pick<T>(list: readonly T[]): T {
    if (list.length === 0) throw new Error('pick from an empty list');
    return list[Math.floor(this.float() * list.length)]!;
  }

  /** The list in random order (a copy). */
  shuffle<T>(list: readonly T[]): T[] {
    const out = [...list];
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.float() * (i + 1));
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  }

  /** An independent generator derived from this one (for a concurrent actor). */
  fork(): Random {
    return new Random(this.rng.nextUint32() * 65536 + this.int(0, 65535));
  }
}
