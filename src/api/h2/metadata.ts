/**
 * Request metadata of one call: the custom header fields a client sent, read the way grpc-js's
 * `Metadata` is read by handlers (`get(key)`, `getMap()`). Keys are lower-case; values of keys
 * ending in "-bin" are base64-decoded into Buffers, others are strings (one character per octet,
 * as Node's HTTP/2 stack gives them).
 */

/** One metadata value. */
export type MetadataValue = string | Buffer;

/** Read-only request metadata over a flat [name0, value0, name1, value1, …] list (latin1 strings). */
export class CallMetadata {
  /** Flat name/value pairs in arrival order; owned by this object. */
  private readonly pairs: string[];

  /** Wraps `pairs` (names lower-case as HTTP/2 requires); the array is taken over, not copied. */
  constructor(pairs: string[]) {
    this.pairs = pairs;
  }

  /** Every value of `key` (case-insensitive), in arrival order; an empty array when absent. */
  get(key: string): MetadataValue[] {
    const k = key.toLowerCase();
    const out: MetadataValue[] = [];
    const p = this.pairs;
    for (let i = 0; i < p.length; i += 2) {
      if (p[i] !== k) continue;
      const v = p[i + 1] as string;
      if (k.endsWith('-bin')) {
        for (const part of v.split(',')) out.push(Buffer.from(part.trim(), 'base64'));
      } else {
        out.push(v);
      }
    }
    return out;
  }

  /** First value of each key (as grpc-js's getMap). */
  getMap(): Record<string, MetadataValue> {
    const out: Record<string, MetadataValue> = {};
    const p = this.pairs;
    for (let i = 0; i < p.length; i += 2) {
      const k = p[i] as string;
      if (k in out) continue;
      const first = this.get(k)[0];
      if (first !== undefined) out[k] = first;
    }
    return out;
  }

  /** Every key with all its values. */
  toJSON(): Record<string, MetadataValue[]> {
    const out: Record<string, MetadataValue[]> = {};
    const p = this.pairs;
    for (let i = 0; i < p.length; i += 2) {
      const k = p[i] as string;
      if (!(k in out)) out[k] = this.get(k);
    }
    return out;
  }
}
