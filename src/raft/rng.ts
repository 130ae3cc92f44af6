/**
 * Injected randomness for the core. The core draws only election-timeout jitter from it, so a
 * seeded generator makes a whole cluster run reproducible.
 */

// Module-level aliases: cheaper than a global lookup per call in some embedding contexts.
const imul = Math.imul;
const floor = Math.floor;

/** A source of uniformly distributed integers. */
export interface Rng {
  /** Returns an integer in [0, n). `n` must be a positive safe integer. */
  intn(n: number): number;
}

/**
 * A small, fast, seedable generator: xoshiro128** seeded through splitmix32. Not
 * cryptographically secure. The same seed always yields the same sequence.
 */
export class SeededRng implements Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** `seed` is any number; only its low 32 bits (and, for large values, the next 21) are used. */
  constructor(seed: number) {
    let s = (seed >>> 0) ^ floor(seed / 4294967296);
    const next = (): number => {
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = imul(z ^ (z >>> 16), 0x85ebca6b);
      z = imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
  }

  /** Returns the next 32-bit unsigned integer. */
  nextUint32(): number {
    const result = imul(rotl(imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /** Returns a float in [0, 1) with 32 bits of randomness. */
  nextFloat(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Returns an integer in [0, n). */
  intn(n: number): number {
    return floor(this.nextFloat() * n);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
