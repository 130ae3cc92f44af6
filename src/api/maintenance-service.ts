/**
 * The etcdserverpb.Maintenance service: Status, Alarm, Defragment, Hash, HashKV, Snapshot,
 * MoveLeader. (Downgrade answers UNIMPLEMENTED.)
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ETCD_COMPAT_VERSION } from '../server/config';
import type { EtcdServer } from '../server/etcd-server';
import { AlarmType } from '../server/alarms';
import type { AlarmResult } from '../server/requests';
import { unary } from './handlers';
import type { Handlers } from './grpc-server';
import type { WireMessage } from './kv-wire';
import { Int64, toNum, toUBig } from './proto';
import { toStatus } from './status';
import { headerObject, nonZero } from './wire-objects';

/** Chunk size of the Snapshot stream (etcd sends 32 KiB pieces). */
const SNAPSHOT_CHUNK = 32 * 1024;

function alarmObjects(list: { memberId: bigint; alarm: number }[]): Record<string, unknown>[] {
  return list.map((a) => nonZero({ memberID: a.memberId.toString(), alarm: a.alarm }));
}

/** etcd's text for an alarm in Status.errors. */
export function alarmText(a: { memberId: bigint; alarm: number }): string {
  return `memberID:${a.memberId} alarm:${AlarmType[a.alarm] ?? a.alarm} `;
}

/** Builds the Maintenance handlers. */
export function maintenanceHandlers(s: EtcdServer): Handlers {
  const header = (): Record<string, unknown> => headerObject(s.header());
  return {
    Status: unary(async () => {
      const st = s.raftStatus();
      return {
        header: header(),
        ...nonZero({
          version: ETCD_COMPAT_VERSION,
          dbSize: s.dbSize,
          leader: st.lead.toString(),
          raftIndex: st.commit,
          raftTerm: st.term,
          raftAppliedIndex: s.appliedIndex,
          dbSizeInUse: s.dbSize,
          isLearner: s.isLearner(),
          storageVersion: ETCD_COMPAT_VERSION.replace(/\.\d+$/, '.0'),
          dbSizeQuota: s.opts.quotaBytes ?? 0,
        }),
        ...(s.alarms.all().length > 0 ? { errors: s.alarms.all().map(alarmText) } : {}),
      };
    }),
    Alarm: unary(async (m) => {
      const action = toNum(m.action as Int64);
      const memberId = toUBig(m.memberID as Int64);
      const alarm = toNum(m.alarm as Int64);
      if (action === 0) {
        await s.linearizableBarrier();
        const list = s.alarms.all().filter((a) => (memberId === 0n || a.memberId === memberId) && (alarm === 0 || a.alarm === alarm));
        return { header: header(), alarms: alarmObjects(list) };
      }
      const r = (await s.write({ kind: 'alarm', action: action === 1 ? 'activate' : 'deactivate', memberId, alarm })) as AlarmResult;
      return { header: header(), alarms: alarmObjects(r.alarms) };
    }),
    Defragment: unary(async () => {
      await s.defragment();
      return { header: header() };
    }),
    Hash: unary(async () => {
      const hash = await s.hashAll();
      return { header: header(), ...nonZero({ hash }) };
    }),
    HashKV: unary(async (m) => {
      const r = await s.hashKV(toNum(m.revision as Int64));
      return { header: header(), ...nonZero({ hash: r.hash, compact_revision: r.compactRev, hash_revision: r.hashRev }) };
    }),
    Snapshot: (call: grpc.ServerWritableStream<WireMessage, unknown>) => {
      const file = path.join(os.tmpdir(), `etcd-ts-snapshot-${process.pid}-${Date.now()}.db`);
      const run = async (): Promise<void> => {
        const { size, sha256 } = await s.snapshotToFile(file);
        const fh = await fs.promises.open(file, 'r');
        try {
          let sent = 0;
          const buf = Buffer.alloc(SNAPSHOT_CHUNK);
          while (sent < size) {
            const { bytesRead } = await fh.read(buf, 0, Math.min(SNAPSHOT_CHUNK, size - sent), sent);
            if (bytesRead === 0) throw new Error('snapshot file shrank while streaming');
            sent += bytesRead;
            const ok = call.write({ header: header(), ...nonZero({ remaining_bytes: size - sent }), blob: Buffer.from(buf.subarray(0, bytesRead)), version: ETCD_COMPAT_VERSION });
            if (!ok) await new Promise((r) => call.once('drain', r));
            if (call.cancelled) return;
          }
          call.write({ header: header(), blob: sha256, version: ETCD_COMPAT_VERSION });
        } finally {
          await fh.close();
        }
        call.end();
      };
      run()
        .catch((err: unknown) => call.emit('error', toStatus(err)))
        .finally(() => fs.rm(file, { force: true }, () => undefined));
    },
    MoveLeader: unary(async (m) => {
      await s.moveLeader(toUBig(m.targetID as Int64));
      return { header: header() };
    }),
  };
}
