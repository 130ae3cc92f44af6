/**
 * Cluster membership as the applied log defines it: members (id, name, peer and client URLs,
 * learner flag) and removed ids. Changed only by the applier (conf-change entries and member
 * attribute updates), persisted in the `members` sublevel with the applied batch.
 *
 * Key layout of `members`: "m/" + 8-byte id → JSON member; "r/" + 8-byte id → "" (removed).
 */
import { Backend, BatchOp } from '../storage/backend';

/** One member. */
export interface Member {
  id: bigint;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

/** The JSON form stored in conf-change contexts and in the `members` sublevel. */
interface MemberJson {
  id: string;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

function idKey(prefix: string, id: bigint): Buffer {
  const b = Buffer.alloc(2 + 8);
  b.write(prefix, 0, 'latin1');
  b.writeBigUInt64BE(id, 2);
  return b;
}

/** Encodes a member for a conf-change context. */
export function encodeMember(m: Member): Uint8Array {
  const j: MemberJson = { id: m.id.toString(16), name: m.name, peerURLs: m.peerURLs, clientURLs: m.clientURLs, isLearner: m.isLearner };
  return Buffer.from(JSON.stringify(j));
}

/** Decodes a member from a conf-change context or stored value. Throws on malformed input. */
export function decodeMember(b: Uint8Array): Member {
  const j = JSON.parse(Buffer.from(b).toString('utf8')) as Partial<MemberJson>;
  if (typeof j.id !== 'string') throw new Error('member without id');
  return {
    id: BigInt(`0x${j.id}`),
    name: typeof j.name === 'string' ? j.name : '',
    peerURLs: Array.isArray(j.peerURLs) ? j.peerURLs.map(String) : [],
    clientURLs: Array.isArray(j.clientURLs) ? j.clientURLs.map(String) : [],
    isLearner: j.isLearner === true,
  };
}

/** The member table. */
export class Membership {
  private readonly members = new Map<bigint, Member>();
  private readonly removed = new Set<bigint>();

  constructor(private backend: Backend) {}

  /** Switches to another backend (after a snapshot install) and loads its table. */
  async reload(backend: Backend): Promise<void> {
    this.backend = backend;
    await this.load();
  }

  /** Loads the table from the `members` sublevel. */
  async load(): Promise<void> {
    this.members.clear();
    this.removed.clear();
    for await (const [k, v] of this.backend.members.iterator()) {
      const prefix = Buffer.from(k.subarray(0, 2)).toString('latin1');
      const id = Buffer.from(k.buffer, k.byteOffset + 2, 8).readBigUInt64BE(0);
      if (prefix === 'm/') this.members.set(id, decodeMember(v));
      else if (prefix === 'r/') this.removed.add(id);
    }
  }

  /** Every member, sorted by id. The caller must not mutate them. */
  list(): Member[] {
    return [...this.members.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** A member by id. */
  get(id: bigint): Member | undefined {
    return this.members.get(id);
  }

  /** True when the id was removed from the cluster. */
  isRemoved(id: bigint): boolean {
    return this.removed.has(id);
  }

  /** Adds or replaces a member; returns the writes to add to the applied batch. */
  upsert(m: Member): BatchOp[] {
    m = { id: m.id, name: m.name, peerURLs: m.peerURLs, clientURLs: m.clientURLs, isLearner: m.isLearner };
    this.members.set(m.id, m);
    return [{ type: 'put', sublevel: this.backend.members, key: idKey('m/', m.id), value: encodeMember(m) }];
  }

  /** Removes a member; returns the writes. */
  remove(id: bigint): BatchOp[] {
    this.members.delete(id);
    this.removed.add(id);
    return [
      { type: 'del', sublevel: this.backend.members, key: idKey('m/', id) },
      { type: 'put', sublevel: this.backend.members, key: idKey('r/', id), value: new Uint8Array(0) },
    ];
  }
}
