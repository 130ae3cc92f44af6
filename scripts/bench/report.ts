/**
 * Presenting benchmark results: the comparison rows, the text table printed at the end of a run,
 * and the SVG chart of ours/etcd ratios.
 */

/** Which way a figure is better. */
export type Better = 'higher' | 'lower';

/** One compared figure: a workload's metric measured on etcd and on our server. */
export interface Row {
  /** Stable identifier, e.g. "put-1000c.rps". */
  id: string;
  /** Workload label, e.g. "put, 1,000 clients / 100 conns". */
  workload: string;
  /** Metric label, e.g. "throughput", "p99 latency". */
  metric: string;
  /** Unit of the figures, e.g. "req/s", "ms", "MB". */
  unit: string;
  better: Better;
  /** Median over the runs, or null (n/a) when no run produced a figure. */
  etcd: number | null;
  ours: number | null;
  /** ours / etcd, or null when either is n/a or etcd's is 0. */
  ratio: number | null;
  /** Every run's figure, null for a run that produced none. */
  etcdRuns: (number | null)[];
  oursRuns: (number | null)[];
  /** Optional text shown instead of the number (e.g. "PASS 953 writes/s"). */
  etcdText?: string;
  oursText?: string;
  /** Why a figure is missing or anything else worth knowing. */
  notes: string[];
}

/** ours / etcd, or null when it cannot be formed. */
export function ratioOf(etcd: number | null, ours: number | null): number | null {
  if (etcd === null || ours === null || etcd === 0) return null;
  return ours / etcd;
}

/** Formats a figure with a precision that suits its size. */
export function formatNumber(v: number | null): string {
  if (v === null || !Number.isFinite(v)) return 'n/a';
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toFixed(3);
}

/** The text shown for one side of a row. */
function cell(text: string | undefined, v: number | null, unit: string): string {
  if (text !== undefined) return text;
  return v === null ? 'n/a' : `${formatNumber(v)} ${unit}`;
}

/** Renders the rows as a plain-text table (one line per row, columns padded). */
export function renderTable(rows: readonly Row[]): string {
  const header = ['workload', 'metric', 'etcd', 'ours', 'ours/etcd', 'better'];
  const body = rows.map((r) => [
    r.workload,
    r.metric,
    cell(r.etcdText, r.etcd, r.unit),
    cell(r.oursText, r.ours, r.unit),
    r.ratio === null ? 'n/a' : r.ratio.toFixed(2),
    r.better === 'higher' ? 'higher' : 'lower',
  ]);
  const all = [header, ...body];
  const widths = header.map((_, i) => Math.max(...all.map((line) => line[i]!.length)));
  const fmt = (line: string[]): string =>
    line.map((c, i) => (i >= 2 && i <= 4 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [fmt(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(fmt)].join('\n');
}

/** Renders the rows as a Markdown table (for the README). */
export function renderMarkdown(rows: readonly Row[]): string {
  const lines = ['| workload | metric | etcd | ours | ours/etcd | better |', '|---|---|---:|---:|---:|---|'];
  for (const r of rows) {
    lines.push(`| ${r.workload} | ${r.metric} | ${cell(r.etcdText, r.etcd, r.unit)} | ${cell(r.oursText, r.ours, r.unit)} | ${r.ratio === null ? 'n/a' : r.ratio.toFixed(2)} | ${r.better} |`);
  }
  return lines.join('\n');
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Colours of the metric kinds in the chart. */
const COLOURS: Record<string, string> = { throughput: '#2b6cb0', latency: '#dd6b20', memory: '#38a169', time: '#805ad5' };

function metricKind(r: Row): string {
  if (r.better === 'higher') return 'throughput';
  if (r.unit === 'MB') return 'memory';
  if (r.unit === 's' || /restart/.test(r.id)) return 'time';
  return 'latency';
}

/**
 * Draws the ours/etcd ratio of every row that has one as an SVG bar chart: one group of bars per
 * workload, one bar per metric (colour by kind: throughput, latency, memory, time), on a
 * logarithmic axis with the 1.0 line marked. Rows without a ratio appear as "n/a" labels.
 */
export function renderSvg(rows: readonly Row[], title: string): string {
  const groups: { workload: string; rows: Row[] }[] = [];
  for (const r of rows) {
    const g = groups.find((x) => x.workload === r.workload);
    if (g) g.rows.push(r);
    else groups.push({ workload: r.workload, rows: [r] });
  }
  const bar = 14;
  const gap = 18;
  const left = 70;
  const top = 62;
  const plotH = 300;
  const bottom = 215;
  const widthOf = (g: { rows: Row[] }): number => g.rows.length * bar + gap;
  const plotW = groups.reduce((s, g) => s + widthOf(g), 0) + gap;
  // Room on the right for the last group's slanted label, and for the two lines of heading.
  const W = Math.max(left + plotW + 250, 820);
  const H = top + plotH + bottom;
  const ratios = rows.map((r) => r.ratio).filter((x): x is number => x !== null && x > 0);
  const lo = Math.min(0.1, ...ratios.map((x) => x / 1.2));
  const hi = Math.max(10, ...ratios.map((x) => x * 1.2));
  const y = (v: number): number => top + plotH - ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotH;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${left}" y="20" font-size="14" font-weight="bold">${escapeXml(title)}</text>`);
  out.push(`<text x="${left}" y="34" fill="#555">ours / etcd per metric, log scale. Throughput: above 1.0 means ours is faster.</text>`);
  out.push(`<text x="${left}" y="47" fill="#555">Latency, memory, restart time: below 1.0 means ours is better.</text>`);
  const ticks = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100].filter((t) => t >= lo && t <= hi);
  for (const t of ticks) {
    const yy = y(t).toFixed(1);
    out.push(`<line x1="${left}" x2="${left + plotW}" y1="${yy}" y2="${yy}" stroke="${t === 1 ? '#000' : '#ddd'}" stroke-width="${t === 1 ? 1.5 : 1}"${t === 1 ? ' stroke-dasharray="6 3"' : ''}/>`);
    out.push(`<text x="${left - 6}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end">${t}</text>`);
  }
  out.push(`<text x="${left + plotW + 2}" y="${(y(1) - 4).toFixed(1)}" text-anchor="end" font-weight="bold">1.0</text>`);
  let x = left + gap;
  for (const g of groups) {
    for (const r of g.rows) {
      const colour = COLOURS[metricKind(r)]!;
      if (r.ratio !== null && r.ratio > 0) {
        const y1 = y(r.ratio);
        const y0 = y(1);
        const yTop = Math.min(y0, y1);
        const h = Math.max(1, Math.abs(y1 - y0));
        out.push(`<rect x="${x}" y="${yTop.toFixed(1)}" width="${bar - 2}" height="${h.toFixed(1)}" fill="${colour}"><title>${escapeXml(`${r.workload} — ${r.metric}: ${r.ratio.toFixed(2)} (${r.better} is better)`)}</title></rect>`);
      } else {
        out.push(`<text x="${x + bar / 2}" y="${(y(1) - 4).toFixed(1)}" font-size="8" text-anchor="middle" fill="#999">n/a</text>`);
      }
      x += bar;
    }
    const cx = x - (g.rows.length * bar) / 2;
    const ly = top + plotH + 10;
    out.push(`<text transform="translate(${cx.toFixed(1)},${ly}) rotate(40)" text-anchor="start">${escapeXml(g.workload)}</text>`);
    x += gap;
  }
  let lx = left;
  const ly = H - 14;
  for (const [k, c] of Object.entries(COLOURS)) {
    out.push(`<rect x="${lx}" y="${ly - 9}" width="10" height="10" fill="${c}"/><text x="${lx + 14}" y="${ly}">${k}</text>`);
    lx += 100;
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}
