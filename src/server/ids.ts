/**
 * Member, cluster and request ids, derived the way etcd derives them so that tools print the ids
 * an etcd cluster with the same flags would have.
 *
 * - member id: the first 8 bytes (big-endian) of SHA-1 over the member's sorted peer URLs joined
 *   with nothing, followed by the cluster token;
 * - cluster id: the first 8 bytes of SHA-1 over the sorted member ids, each as 8 big-endian bytes.
 */
import { createHash } from 'node:crypto';

/** The id of a member of a new cluster. */
export function computeMemberId(peerUrls: readonly string[], clusterToken: string, now?: number): bigint {
  const parts = [...peerUrls].sort().join('') + clusterToken;
  let buf = Buffer.from(parts, 'utf8');
  if (now !== undefined) {
    const t = Buffer.alloc(8);
    t.writeBigInt64BE(BigInt(now));
    buf = Buffer.concat([buf, t]);
  }
  return createHash('sha1').update(buf).digest().readBigUInt64BE(0);
}

/** The id of a cluster with the given member ids. */
export function computeClusterId(memberIds: readonly bigint[]): bigint {
  const ids = [...memberIds].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const buf = Buffer.alloc(8 * ids.length);
  ids.forEach((id, i) => buf.writeBigUInt64BE(id, 8 * i));
  return createHash('sha1').update(buf).digest().readBigUInt64BE(0);
}

/** Formats an id as etcd prints it: lowercase hex without leading zeros. */
export function idHex(id: bigint): string {
  return id.toString(16);
}

/**
 * Generates unique request ids for one member: the low 16 bits of the member id in the top 16
 * bits, then the start time in ms (40 bits) shifted left 8, then a counter (as etcd's generator).
 */
export class IdGenerator {
  private next: bigint;
  private readonly prefix: bigint;

  constructor(memberId: bigint, nowMs: number) {
    this.prefix = (memberId & 0xffffn) << 48n;
    this.next = (BigInt(nowMs) & ((1n << 40n) - 1n)) << 8n;
  }

  /** A new id, never returned before by this generator. */
  id(): bigint {
    this.next = (this.next + 1n) & ((1n << 48n) - 1n);
    return this.prefix | this.next;
  }
}
