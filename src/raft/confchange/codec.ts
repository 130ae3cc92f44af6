import { DecodeError } from '../errors';
import { nodeId } from '../types';
import type { ConfChange, ConfChangeType } from '../types';

/*
 * Binary layout of a ConfChange in an EntryType.ConfChange entry:
 *   byte 0      format version (1)
 *   byte 1      type: 0 add-node, 1 remove-node, 2 add-learner (etcd's ConfChangeType numbers)
 *   bytes 2..9  node id, unsigned 64-bit big-endian
 *   bytes 10..  context (the rest, possibly empty)
 */

const VERSION = 1;
const TYPE_CODES: Record<ConfChangeType, number> = { 'add-node': 0, 'remove-node': 1, 'add-learner': 2 };
const CODE_TYPES: ConfChangeType[] = ['add-node', 'remove-node', 'add-learner'];

/** Encodes `cc` for an EntryType.ConfChange entry. Returns a new buffer. */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  const ctx = cc.context ?? new Uint8Array(0);
  const out = new Uint8Array(10 + ctx.length);
  out[0] = VERSION;
  out[1] = TYPE_CODES[cc.type];
  new DataView(out.buffer).setBigUint64(2, BigInt.asUintN(64, cc.nodeId), false);
  out.set(ctx, 10);
  return out;
}

/**
 * Decodes what encodeConfChange produced. The context is a copy. Throws DecodeError on a
 * truncated buffer, an unknown version or an unknown type.
 */
export function decodeConfChange(data: Uint8Array): ConfChange {
  if (data.length < 10) throw new DecodeError('conf change too short');
  if (data[0] !== VERSION) throw new DecodeError(`unknown conf change version ${data[0]}`);
  const type = CODE_TYPES[data[1]!];
  if (type === undefined) throw new DecodeError(`unknown conf change type ${data[1]}`);
  const id = new DataView(data.buffer, data.byteOffset, data.byteLength).getBigUint64(2, false);
  const cc: ConfChange = { type, nodeId: nodeId(id) };
  if (data.length > 10) cc.context = data.slice(10);
  return cc;
}
