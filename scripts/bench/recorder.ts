/**
 * Collects the figures of a benchmark run: every run's value per (row, server), notes, and the
 * list of workloads that failed to run. Produces the median rows for the report.
 */
import { Better, ratioOf, Row } from './report';
import { ServerKind } from './servers';
import { median } from './stats';

/** Static description of a row. */
export interface RowDef {
  id: string;
  workload: string;
  metric: string;
  unit: string;
  better: Better;
}

/** One workload that did not run to completion on one server. */
export interface Failure {
  kind: ServerKind;
  workload: string;
  message: string;
}

/** Accumulates figures per row and server, in the order rows were defined. */
export class Recorder {
  private readonly defs: RowDef[] = [];
  private readonly runs = new Map<string, Record<ServerKind, (number | null)[]>>();
  private readonly texts = new Map<string, Partial<Record<ServerKind, string[]>>>();
  private readonly notes = new Map<string, string[]>();
  /** Workloads that failed to run (errors, timeouts, crashes); "n/a" by design is not a failure. */
  readonly failures: Failure[] = [];

  /** Declares a row; declaring the same id again is a no-op. Rows are reported in declaration order. */
  define(def: RowDef): void {
    if (this.runs.has(def.id)) return;
    this.defs.push(def);
    this.runs.set(def.id, { etcd: [], ours: [] });
  }

  /** Records one run's figure (null = this run produced none) and optionally a display text. Throws for an undeclared id. */
  record(kind: ServerKind, id: string, value: number | null, text?: string): void {
    const r = this.runs.get(id);
    if (r === undefined) throw new Error(`row ${id} was not defined`);
    r[kind].push(value !== null && Number.isFinite(value) ? value : null);
    if (text !== undefined) {
      const t = this.texts.get(id) ?? {};
      (t[kind] ??= []).push(text);
      this.texts.set(id, t);
    }
  }

  /** Adds a note to a row (shown in the JSON and under the table), once per distinct text. */
  note(id: string, text: string): void {
    const n = this.notes.get(id) ?? [];
    if (!n.includes(text)) n.push(text);
    this.notes.set(id, n);
  }

  /** Records that a workload failed to run on a server. */
  fail(kind: ServerKind, workload: string, message: string): void {
    this.failures.push({ kind, workload, message });
  }

  /** The rows with medians and ratios, in declaration order. */
  rows(): Row[] {
    return this.defs.map((d) => {
      const r = this.runs.get(d.id)!;
      const etcd = median(r.etcd.filter((x): x is number => x !== null));
      const ours = median(r.ours.filter((x): x is number => x !== null));
      const t = this.texts.get(d.id) ?? {};
      const row: Row = { ...d, etcd, ours, ratio: ratioOf(etcd, ours), etcdRuns: r.etcd, oursRuns: r.ours, notes: this.notes.get(d.id) ?? [] };
      const et = t.etcd;
      const ot = t.ours;
      if (et !== undefined && et.length > 0) row.etcdText = et.join(' / ');
      if (ot !== undefined && ot.length > 0) row.oursText = ot.join(' / ');
      return row;
    });
  }
}
