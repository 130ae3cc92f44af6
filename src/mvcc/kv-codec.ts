/**
 * The stored form of a key's revision: an mvccpb.KeyValue in protobuf encoding (fields: 1 key,
 * 2 create_revision, 3 mod_revision, 4 version, 5 value, 6 lease), with zero fields omitted as in
 * proto3. Storing the wire form lets responses reuse it without re-encoding.
 */
import { Reader, Writer } from '../storage/binary';

/** A key-value record as the core sees it. Revisions and version are safe integers; lease is int64. */
export interface KeyValue {
  key: Uint8Array;
  createRevision: number;
  modRevision: number;
  version: number;
  value: Uint8Array;
  lease: bigint;
}

const EMPTY = new Uint8Array(0);

/** Encodes a KeyValue into `w` (after resetting nothing: the caller manages the writer). */
export function writeKeyValue(w: Writer, kv: KeyValue): Writer {
  if (kv.key.length > 0) w.tag(1, 2).bytes(kv.key);
  if (kv.createRevision !== 0) w.tag(2, 0).uvarint(kv.createRevision);
  if (kv.modRevision !== 0) w.tag(3, 0).uvarint(kv.modRevision);
  if (kv.version !== 0) w.tag(4, 0).uvarint(kv.version);
  if (kv.value.length > 0) w.tag(5, 2).bytes(kv.value);
  if (kv.lease !== 0n) w.tag(6, 0).varint64(kv.lease);
  return w;
}

const scratch = new Writer(1024);

/**
 * Encodes a KeyValue to a new byte array of its own (records may stay in the record cache for
 * long; a slice of Node's buffer pool would keep its whole slab alive).
 */
export function encodeKeyValue(kv: KeyValue): Uint8Array {
  return writeKeyValue(scratch.reset(), kv).finish();
}

/** Decodes a stored KeyValue. Byte fields are views into `buf`. Throws RangeError on bad input. */
export function decodeKeyValue(buf: Uint8Array): KeyValue {
  const r = new Reader(buf);
  const kv: KeyValue = { key: EMPTY, createRevision: 0, modRevision: 0, version: 0, value: EMPTY, lease: 0n };
  while (!r.done()) {
    const tag = r.uvarint();
    switch (tag) {
      case (1 << 3) | 2:
        kv.key = r.bytes();
        break;
      case (2 << 3) | 0:
        kv.createRevision = r.safeVarint();
        break;
      case (3 << 3) | 0:
        kv.modRevision = r.safeVarint();
        break;
      case (4 << 3) | 0:
        kv.version = r.safeVarint();
        break;
      case (5 << 3) | 2:
        kv.value = r.bytes();
        break;
      case (6 << 3) | 0:
        kv.lease = r.varint64();
        break;
      default:
        r.skip(tag & 7);
    }
  }
  return kv;
}
