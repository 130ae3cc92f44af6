/**
 * Alarms (NOSPACE, CORRUPT) per member, changed only through applied entries and kept in the `meta`
 * sublevel under "alarm/" + 8-byte member id + 1-byte type.
 */
import type { Backend, BatchOp } from '../storage/backend';

/** etcdserverpb.AlarmType values. */
export enum AlarmType {
  NONE = 0,
  NOSPACE = 1,
  CORRUPT = 2,
}

/** One active alarm. */
export interface Alarm {
  memberId: bigint;
  alarm: AlarmType;
}

const PREFIX = Buffer.from('alarm/', 'latin1');

function key(a: Alarm): Buffer {
  const b = Buffer.alloc(PREFIX.length + 9);
  PREFIX.copy(b);
  b.writeBigUInt64BE(a.memberId, PREFIX.length);
  b[PREFIX.length + 8] = a.alarm;
  return b;
}

/** The alarm table. */
export class Alarms {
  private list: Alarm[] = [];

  constructor(private backend: Backend) {}

  /** Loads the alarms stored in `backend`. */
  async load(backend: Backend): Promise<void> {
    this.backend = backend;
    this.list = [];
    const end = Buffer.from(PREFIX);
    end[end.length - 1]! += 1;
    for await (const k of backend.meta.keys({ gte: PREFIX, lt: end })) {
      const b = Buffer.from(k);
      this.list.push({ memberId: b.readBigUInt64BE(PREFIX.length), alarm: b[PREFIX.length + 8]! as AlarmType });
    }
  }

  /** Every active alarm, ordered by member then type. */
  all(): Alarm[] {
    return [...this.list].sort((a, b) => (a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : a.alarm - b.alarm));
  }

  /** True when some member has this alarm. */
  has(alarm: AlarmType): boolean {
    return this.list.some((a) => a.alarm === alarm);
  }

  /** Activates an alarm; returns the writes (none when already active) and whether it is new. */
  activate(a: Alarm): BatchOp[] {
    if (this.list.some((x) => x.memberId === a.memberId && x.alarm === a.alarm)) return [];
    this.list.push(a);
    return [{ type: 'put', sublevel: this.backend.meta, key: key(a), value: new Uint8Array(0) }];
  }

  /** Deactivates an alarm; returns the writes, or undefined when it was not active. */
  deactivate(a: Alarm): BatchOp[] | undefined {
    const i = this.list.findIndex((x) => x.memberId === a.memberId && x.alarm === a.alarm);
    if (i < 0) return undefined;
    this.list.splice(i, 1);
    return [{ type: 'del', sublevel: this.backend.meta, key: key(a) }];
  }
}
