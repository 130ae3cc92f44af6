/**
 * Builders of plain objects for messages encoded by protobufjs. protobufjs writes every field that
 * is present, even a zero value, while etcd's encoder leaves zero values out; these builders leave
 * zero fields out so the bytes match.
 */
import type { Member } from '../server/membership';
import type { Header } from './kv-wire';

/** A ResponseHeader object with zero fields left out. */
export function headerObject(h: Header): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  if (h.clusterId !== 0n) o.cluster_id = h.clusterId.toString();
  if (h.memberId !== 0n) o.member_id = h.memberId.toString();
  if (h.revision !== 0) o.revision = h.revision;
  if (h.raftTerm !== 0) o.raft_term = h.raftTerm;
  return o;
}

/** An etcdserverpb.Member object. */
export function memberObject(m: Member): Record<string, unknown> {
  const o: Record<string, unknown> = { ID: m.id.toString() };
  if (m.name !== '') o.name = m.name;
  if (m.peerURLs.length > 0) o.peerURLs = m.peerURLs;
  if (m.clientURLs.length > 0) o.clientURLs = m.clientURLs;
  if (m.isLearner) o.isLearner = true;
  return o;
}

/** Copies the entries of `o` whose values are not zero values (0, '', false, empty arrays, 0n strings). */
export function nonZero(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined || v === null || v === 0 || v === '' || v === false || v === '0') continue;
    if (Array.isArray(v) && v.length === 0) continue;
    out[k] = v;
  }
  return out;
}
