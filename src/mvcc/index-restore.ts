/**
 * Rebuilding the key index from the `kv` sublevel when the store opens.
 *
 * Every stored record is read once, in revision order, in large batches (Backend.scan). Only what
 * the index needs is parsed out of a record: the key, create revision, mod revision, version and
 * lease fields of the stored KeyValue (the value is skipped), and the revision from the LevelDB
 * key. No object is made per record.
 *
 * LevelDB keys come as lossy UTF-8 strings (a buffer per key costs more than everything else
 * here), so the revision is recovered from what is exact:
 * - A key that decoded to ASCII throughout is exact: 16 bytes of revision, plus the mark 't' for
 *   a tombstone. It is checked against the record (a tombstone is stored as the bare key, with no
 *   mod revision; a put's mod revision is its main revision).
 * - Otherwise, for a put (a record with a mod revision): the main revision is the mod revision,
 *   and the sub revision is the last 8 characters when they are all ASCII, since then they are
 *   exactly the key's last 8 bytes (see Backend.scan).
 * Records this leaves open (a sub revision with a byte ≥ 0x80, a tombstone whose main revision
 * has one) get their keys read exactly with Backend.exactKeys, along with the records between
 * them, which are checked against what was derived for them.
 *
 * Records are gathered in chunks of parallel arrays; each chunk is sorted by key (then revision)
 * and merged into the sorted key list built so far, so each key's records are applied in revision
 * order and the result can be installed into the B+ tree with one bulk load instead of a lookup
 * and insert per record.
 */
import type { Backend } from '../storage/backend';
import { InvariantError } from '../errors';
import { KeyIndex } from './key-index';
import { decodeKeyValue } from './kv-codec';
import { REV_BYTES, TOMBSTONE_MARK, decodeRevision, encodeRevision } from './revision';

/** Optional logger callback (as the store's). */
type RestoreLog = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

/** The index rebuilt from storage: keys ascending, with their histories. */
export interface RebuiltIndex {
  keys: string[];
  values: KeyIndex[];
  /** The highest main revision of any stored record (0 when there is none). */
  lastMain: number;
  /** Number of records read. */
  records: number;
}

/**
 * Records gathered before they are sorted and merged: at least CHUNK_MIN, and as many as the keys
 * merged so far, so that the merges copy the key list O(log n) times. The arrays start small.
 */
const CHUNK_MIN = 1 << 18;
const CHUNK_INITIAL = 1 << 12;

const TWO32 = 0x1_0000_0000;

function readU64(b: Uint8Array, o: number): number {
  const hi = ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
  const lo = ((b[o + 4]! << 24) | (b[o + 5]! << 16) | (b[o + 6]! << 8) | b[o + 7]!) >>> 0;
  return hi * TWO32 + lo;
}

/** A chunk of parsed records, as parallel arrays. */
class Chunk {
  n = 0;
  readonly keys: string[] = [];
  main: Float64Array<ArrayBuffer>;
  sub: Float64Array<ArrayBuffer>;
  created: Float64Array<ArrayBuffer>;
  version: Float64Array<ArrayBuffer>;
  /** The mod revision field of the record; -1 when absent (a tombstone). */
  mod: Float64Array<ArrayBuffer>;
  tombstone: Uint8Array<ArrayBuffer>;
  /** Non-zero leases by record position. */
  readonly leases = new Map<number, bigint>();

  constructor(public capacity: number) {
    this.main = new Float64Array(capacity);
    this.sub = new Float64Array(capacity);
    this.created = new Float64Array(capacity);
    this.version = new Float64Array(capacity);
    this.mod = new Float64Array(capacity);
    this.tombstone = new Uint8Array(capacity);
  }

  /** Doubles the capacity, keeping the records gathered. */
  grow(): void {
    const cap = this.capacity * 2;
    const f = (a: Float64Array<ArrayBuffer>): Float64Array<ArrayBuffer> => {
      const b = new Float64Array(cap);
      b.set(a.subarray(0, this.n));
      return b;
    };
    this.main = f(this.main);
    this.sub = f(this.sub);
    this.created = f(this.created);
    this.version = f(this.version);
    this.mod = f(this.mod);
    const t = new Uint8Array(cap);
    t.set(this.tombstone.subarray(0, this.n));
    this.tombstone = t;
    this.capacity = cap;
  }

  clear(): void {
    this.n = 0;
    this.keys.length = 0;
    this.leases.clear();
  }
}

/**
 * A number read from a Float64Array, as a small integer when it is one. Numbers kept in the index
 * then stay small integers (stored inline) rather than boxed doubles.
 */
function small(v: number): number {
  return v <= 0x3fffffff ? v | 0 : v;
}

/** Read position of the record parser. */
let pos = 0;

/** Reads an unsigned varint that is a safe integer at `pos`; -1 when truncated or out of range. */
function uvarint(b: Uint8Array, end: number): number {
  let r = 0;
  let mul = 1;
  for (let i = 0; i < 8; i++) {
    if (pos >= end) return -1;
    const c = b[pos++]!;
    r += (c & 0x7f) * mul;
    if (c < 0x80) return Number.isSafeInteger(r) ? r : -1;
    mul *= 0x80;
  }
  return -1;
}

/** Reads a varint as a signed 64-bit integer at `pos`; undefined when malformed. */
function varint64(b: Uint8Array, end: number): bigint | undefined {
  let r = 0n;
  let shift = 0n;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) return undefined;
    const c = b[pos++]!;
    r |= BigInt(c & 0x7f) << shift;
    if (c < 0x80) return BigInt.asIntN(64, r);
    shift += 7n;
  }
  return undefined;
}

/**
 * Parses the fields the index needs out of a stored KeyValue (see kv-codec.ts) into slot `i` of
 * the chunk. Handles the layout the encoder writes (key first, then fields 2 to 6 with one-byte
 * tags); returns false for anything else, which the caller then decodes in full.
 */
function parseFast(v: Buffer, c: Chunk, i: number): boolean {
  const end = v.length;
  if (end < 2 || v[0] !== ((1 << 3) | 2)) return false;
  pos = 1;
  const keyLen = uvarint(v, end);
  if (keyLen < 0 || pos + keyLen > end) return false;
  const key = v.toString('latin1', pos, pos + keyLen);
  pos += keyLen;
  let created = 0;
  let mod = -1;
  let version = 0;
  let lease = 0n;
  while (pos < end) {
    const tag = v[pos++]!;
    switch (tag) {
      case (2 << 3) | 0:
        created = uvarint(v, end);
        if (created < 0) return false;
        break;
      case (3 << 3) | 0:
        mod = uvarint(v, end);
        if (mod < 0) return false;
        break;
      case (4 << 3) | 0:
        version = uvarint(v, end);
        if (version < 0) return false;
        break;
      case (5 << 3) | 2: {
        const n = uvarint(v, end);
        if (n < 0 || pos + n > end) return false;
        pos += n;
        break;
      }
      case (6 << 3) | 0: {
        const l = varint64(v, end);
        if (l === undefined) return false;
        lease = l;
        break;
      }
      default:
        return false;
    }
  }
  c.keys.push(key);
  c.created[i] = created;
  c.mod[i] = mod;
  c.version[i] = version;
  if (lease !== 0n) c.leases.set(i, lease);
  return true;
}

/** Decodes a stored KeyValue in full into slot `i` (throws RangeError on bad input, as reads do). */
function parseFull(v: Buffer, c: Chunk, i: number): void {
  const kv = decodeKeyValue(v);
  c.keys.push(Buffer.from(kv.key.buffer, kv.key.byteOffset, kv.key.byteLength).toString('latin1'));
  c.created[i] = kv.createRevision;
  c.mod[i] = kv.modRevision === 0 ? -1 : kv.modRevision;
  c.version[i] = kv.version;
  if (kv.lease !== 0n) c.leases.set(i, kv.lease);
}

/**
 * Derives the revision of chunk record `i` (whose KeyValue fields are parsed) from its scanned key
 * `s` (see the top of this file) into main/sub/tombstone. Returns false, with main set to -1,
 * when that cannot be done exactly.
 */
function resolveRevision(s: string, prefixLength: number, c: Chunk, i: number): boolean {
  const len = s.length;
  const mod = c.mod[i]!;
  let ascii = true;
  for (let p = prefixLength; p < len; p++) {
    if (s.charCodeAt(p) >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) {
    // Exact: the key's length and every byte are known.
    const tomb = len === prefixLength + REV_BYTES + 1 && s.charCodeAt(len - 1) === TOMBSTONE_MARK;
    if (len !== prefixLength + REV_BYTES && !tomb) return open(c, i);
    const main = readAsciiU64(s, prefixLength);
    if (tomb !== (mod < 0) || (!tomb && main !== mod)) return open(c, i);
    c.main[i] = main;
    c.sub[i] = readAsciiU64(s, prefixLength + 8);
    c.tombstone[i] = tomb ? 1 : 0;
    return true;
  }
  // A tombstone's main revision is only in its key.
  if (mod < 0) return open(c, i);
  const end = len - 8;
  if (end < prefixLength) return open(c, i);
  for (let p = end; p < len; p++) if (s.charCodeAt(p) >= 0x80) return open(c, i);
  c.main[i] = mod;
  c.sub[i] = readAsciiU64(s, end);
  c.tombstone[i] = 0;
  return true;
}

/** Reads 8 big-endian bytes given as characters below 0x80 at `p`. */
function readAsciiU64(s: string, p: number): number {
  const hi = ((s.charCodeAt(p) << 24) | (s.charCodeAt(p + 1) << 16) | (s.charCodeAt(p + 2) << 8) | s.charCodeAt(p + 3)) >>> 0;
  const lo = ((s.charCodeAt(p + 4) << 24) | (s.charCodeAt(p + 5) << 16) | (s.charCodeAt(p + 6) << 8) | s.charCodeAt(p + 7)) >>> 0;
  return hi * TWO32 + lo;
}

function open(c: Chunk, i: number): false {
  c.main[i] = -1;
  return false;
}

/** Builds the sorted key list and histories while records arrive. */
class Builder {
  keys: string[] = [];
  values: KeyIndex[] = [];
  lastMain = 0;
  records = 0;
  private readonly chunk: Chunk;
  private readonly chunkMin: number;

  constructor(
    private readonly backend: Backend,
    private readonly log: RestoreLog,
    sizes: ChunkSizes,
    /** Where the scan starts (undefined: at the first record). */
    private readonly from: Uint8Array | undefined,
  ) {
    this.chunk = new Chunk(sizes.initial ?? CHUNK_INITIAL);
    this.chunkMin = sizes.min ?? CHUNK_MIN;
  }

  /**
   * Adds a batch of scanned entries (keys as from Backend.scan, with a `prefixLength` long
   * sublevel prefix), reading keys exactly first where the scanned ones do not tell the revision.
   */
  async add(entries: [string, Buffer][], prefixLength: number): Promise<void> {
    const c = this.chunk;
    let e = 0;
    while (e < entries.length) {
      if (c.n === c.capacity) {
        if (c.capacity < Math.max(this.chunkMin, this.keys.length)) c.grow();
        else this.flush();
      }
      const from = c.n;
      const take = Math.min(entries.length - e, c.capacity - from);
      let firstOpen = -1;
      let lastOpen = -1;
      for (let k = 0; k < take; k++, e++) {
        const [key, v] = entries[e]!;
        const i = from + k;
        if (!parseFast(v, c, i)) parseFull(v, c, i);
        if (!resolveRevision(key, prefixLength, c, i)) {
          if (firstOpen < 0) firstOpen = i;
          lastOpen = i;
        }
      }
      c.n = from + take;
      if (firstOpen >= 0) await this.readExact(firstOpen, lastOpen);
      for (let i = from; i < c.n; i++) if (c.main[i]! > this.lastMain) this.lastMain = small(c.main[i]!);
      this.noteLast();
    }
    this.records += entries.length;
  }

  /** The exact revision of the last record added (the lower bound for exact reads). */
  private last: Uint8Array | undefined = undefined;

  private noteLast(): void {
    const c = this.chunk;
    const i = c.n - 1;
    if (i >= 0) this.last = encodeRevision(c.main[i]!, c.sub[i]!, c.tombstone[i] === 1);
  }

  /** Reads the exact keys of chunk records `first`..`last`, fills in the open ones and checks the rest. */
  private async readExact(first: number, last: number): Promise<void> {
    const c = this.chunk;
    const after = first > 0 ? encodeRevision(c.main[first - 1]!, c.sub[first - 1]!, c.tombstone[first - 1] === 1) : this.last;
    const keys = await this.backend.exactKeys(this.backend.kv, after, last - first + 1, this.from);
    if (keys.length !== last - first + 1) throw new InvariantError('index restore: the state changed while it was read');
    for (let j = 0; j < keys.length; j++) {
      const k = keys[j]!;
      const i = first + j;
      let tomb: number;
      if (k.length === REV_BYTES) tomb = 0;
      else if (k.length === REV_BYTES + 1 && k[REV_BYTES] === TOMBSTONE_MARK) tomb = 1;
      else {
        decodeRevision(k); // throws the precise error
        throw new Error('bad stored revision');
      }
      const main = readU64(k, 0);
      const sub = readU64(k, 8);
      if (c.main[i]! >= 0) {
        if (c.main[i] !== main || c.sub[i] !== sub || c.tombstone[i] !== tomb) {
          throw new InvariantError(`index restore: record ${main}.${sub} read as ${c.main[i]}.${c.sub[i]}`);
        }
      } else {
        c.main[i] = main;
        c.sub[i] = sub;
        c.tombstone[i] = tomb;
      }
    }
  }

  /** Sorts the gathered records by key (stable) and merges them into the key list. */
  flush(): void {
    const c = this.chunk;
    const n = c.n;
    if (n === 0) return;
    const ck = c.keys;
    const order = new Array<number>(n);
    for (let i = 0; i < n; i++) order[i] = i;
    order.sort((a, b) => {
      const x = ck[a]!;
      const y = ck[b]!;
      return x < y ? -1 : x > y ? 1 : a - b;
    });
    const oldKeys = this.keys;
    const oldValues = this.values;
    const m = oldKeys.length;
    // At most m + n keys; the arrays are cut to size at the end.
    const keys = new Array<string>(m + n);
    const values = new Array<KeyIndex>(m + n);
    let out = 0;
    let j = 0;
    let i = 0;
    while (i < n) {
      const key = ck[order[i]!]!;
      while (j < m && oldKeys[j]! < key) {
        keys[out] = oldKeys[j]!;
        values[out++] = oldValues[j++]!;
      }
      let ki: KeyIndex;
      if (j < m && oldKeys[j] === key) {
        ki = oldValues[j++]!;
      } else {
        ki = new KeyIndex();
      }
      do {
        this.apply(ki, order[i]!);
        i++;
      } while (i < n && ck[order[i]!] === key);
      keys[out] = key;
      values[out++] = ki;
    }
    while (j < m) {
      keys[out] = oldKeys[j]!;
      values[out++] = oldValues[j++]!;
    }
    keys.length = out;
    values.length = out;
    this.keys = keys;
    this.values = values;
    c.clear();
  }

  /** Applies record `r` of the chunk to its key's history. */
  private apply(ki: KeyIndex, r: number): void {
    const c = this.chunk;
    const main = small(c.main[r]!);
    const sub = small(c.sub[r]!);
    if (c.tombstone[r] === 1) {
      if (!ki.tombstone(main, sub)) {
        if (ki.isEmpty()) ki.restoreTombstone(main, sub);
        else this.log('warn', 'tombstone for a key that is not live at restore', { revision: main });
      }
    } else {
      ki.restorePut(main, sub, small(c.created[r]!), small(c.version[r]!));
      ki.lease = c.leases.size === 0 ? 0n : (c.leases.get(r) ?? 0n);
    }
  }
}

/** Chunk sizes (see CHUNK_MIN); tests use small ones. */
export interface ChunkSizes {
  initial?: number;
  min?: number;
}

/** An index the records are applied on top of: the keys (ascending) and histories up to `rev`. */
export interface BaseIndex {
  rev: number;
  keys: string[];
  values: KeyIndex[];
}

/**
 * Reads the `kv` sublevel and rebuilds every key's history. With `base`, only the records after
 * its revision are read, and applied to it (its arrays are taken over); `lastMain` is then at
 * least that revision.
 */
export async function rebuildIndex(backend: Backend, log: RestoreLog, sizes: ChunkSizes = {}, base?: BaseIndex): Promise<RebuiltIndex> {
  const from = base === undefined ? undefined : encodeRevision(base.rev + 1, 0);
  const b = new Builder(backend, log, sizes, from);
  if (base !== undefined) {
    b.keys = base.keys;
    b.values = base.values;
    b.lastMain = base.rev;
  }
  await backend.scan(backend.kv, (entries, prefixBytes) => b.add(entries, prefixBytes), from);
  b.flush();
  return { keys: b.keys, values: b.values, lastMain: b.lastMain, records: b.records };
}
