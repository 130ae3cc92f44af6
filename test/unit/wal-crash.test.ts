import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ts from 'typescript';
import { EntryType, NONE } from '../../src/raft/types';
import type { Entry, HardState } from '../../src/raft/types';
import { Wal } from '../../src/storage/wal';

const ROOT = path.resolve(__dirname, '../..');
const dirs: string[] = [];

async function tmpDir(prefix: string): Promise<string> {
  const d = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  dirs.push(d);
  return d;
}

afterAll(async () => {
  for (const d of dirs) await fsp.rm(d, { recursive: true, force: true });
});

/** The payload the crash driver writes for entry `i`; the parent checks it after recovery. */
function payloadFor(i: number): string {
  return `payload-${i}-${'x'.repeat(i % 50)}`;
}

/**
 * Transpiles `entry` and every module it imports by relative path into `outDir`, keeping the
 * layout under the project root, and returns the path of the compiled entry module.
 */
async function transpileClosure(entry: string, outDir: string): Promise<string> {
  const seen = new Set<string>();
  const todo = [path.resolve(ROOT, entry)];
  while (todo.length > 0) {
    const file = todo.pop() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    const src = await fsp.readFile(file, 'utf8');
    const out = ts.transpileModule(src, {
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
      fileName: file,
    });
    const dest = path.join(outDir, path.relative(ROOT, file)).replace(/\.ts$/, '.js');
    await fsp.mkdir(path.dirname(dest), { recursive: true });
    await fsp.writeFile(dest, out.outputText);
    for (const m of src.matchAll(/from\s+'(\.{1,2}\/[^']+)'/g)) todo.push(path.resolve(path.dirname(file), `${m[1] as string}.ts`));
  }
  return path.join(outDir, entry.replace(/\.ts$/, '.js'));
}

const DRIVER = `
const fs = require('node:fs');
const { Wal } = require(process.argv[2]);
const dir = process.argv[3];
function payloadFor(i) { return 'payload-' + i + '-' + 'x'.repeat(i % 50); }
(async () => {
  const { wal, entries } = await Wal.open(dir, { segmentBytes: 4096 });
  let next = entries.length > 0 ? entries[entries.length - 1].index + 1 : 1;
  fs.writeSync(1, 'start ' + next + '\\n');
  let inflight = 0;
  const pump = () => {
    while (inflight < 4) {
      const n = 1 + (next % 7);
      const batch = [];
      for (let k = 0; k < n; k++) batch.push({ term: 1, index: next + k, type: 0, data: Buffer.from(payloadFor(next + k)) });
      const last = next + n - 1;
      next += n;
      inflight++;
      wal.save({ term: 1, vote: 0n, commit: last }, batch, last % 2 === 0).then(
        () => { inflight--; fs.writeSync(1, 'ok ' + last + '\\n'); pump(); },
        (err) => { fs.writeSync(2, String(err) + '\\n'); process.exit(3); },
      );
    }
  };
  pump();
})().catch((err) => { fs.writeSync(2, String(err) + '\\n'); process.exit(2); });
`;

/** Runs the driver until it has acknowledged `acks` saves, then SIGKILLs it; returns the highest acknowledged index. */
function runAndKill(driver: string, walModule: string, dir: string, acks: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [driver, walModule, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let acked = 0;
    let count = 0;
    let pending = '';
    let stderr = '';
    let killed = false;
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      pending += d.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const m = /^ok (\d+)$/.exec(line);
        if (!m) continue;
        const idx = Number(m[1]);
        if (idx <= acked) reject(new Error(`acknowledgements out of order: ${idx} after ${acked}`));
        acked = idx;
        if (++count >= acks && !killed) {
          killed = true;
          child.kill('SIGKILL');
        }
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(acked);
      else reject(new Error(`driver exited with ${String(code)}: ${stderr}`));
    });
  });
}

function checkPrefix(entries: Entry[], atLeast: number): void {
  expect(entries.length).toBeGreaterThanOrEqual(atLeast);
  entries.forEach((e, k) => {
    expect(e.index).toBe(k + 1);
    expect(Buffer.from(e.data).toString()).toBe(payloadFor(e.index));
  });
}

describe('Wal: crashes', () => {
  test('a process killed mid-stream loses nothing it acknowledged, repeatedly', async () => {
    const build = await tmpDir('wal-build-');
    const walModule = await transpileClosure('src/storage/wal.ts', build);
    const driver = path.join(build, 'driver.js');
    await fsp.writeFile(driver, DRIVER);
    const dir = path.join(await tmpDir('wal-crash-'), 'wal');

    let total = 0;
    for (const acks of [150, 37, 260, 5, 90]) {
      const acked = await runAndKill(driver, walModule, dir, acks);
      expect(acked).toBeGreaterThan(total);
      const { wal, entries, hardState } = await Wal.open(dir);
      checkPrefix(entries, acked);
      // The hard state follows its batch's entries, so it never commits past what is on disk.
      expect(hardState.commit).toBeGreaterThanOrEqual(acked);
      expect(hardState.commit).toBeLessThanOrEqual(entries.length);
      total = entries.length;
      await wal.close();
    }
    expect((await fsp.readdir(dir)).filter((n) => n.endsWith('.wal')).length).toBeGreaterThan(3);
  }, 120_000);

  test('cutting the segment at any offset recovers exactly the records that fit before it', async () => {
    const golden = await tmpDir('wal-cut-');
    // Not preallocated, so the file's size marks the end of the last record.
    const { wal } = await Wal.open(golden, { preallocate: false });
    const boundaries: { size: number; lastIndex: number; hs: HardState }[] = [];
    let next = 1;
    for (let b = 0; b < 40; b++) {
      const n = 1 + (b % 5);
      const batch: Entry[] = [];
      for (let k = 0; k < n; k++) batch.push({ term: 1, index: next + k, type: EntryType.Normal, data: new Uint8Array(Buffer.from(payloadFor(next + k))) });
      next += n;
      const hs: HardState = { term: 1, vote: NONE, commit: next - 1 };
      await wal.save(hs, batch, false);
      boundaries.push({ size: (await fsp.stat(path.join(golden, (await fsp.readdir(golden))[0] as string))).size, lastIndex: next - 1, hs });
    }
    await wal.close();
    const name = (await fsp.readdir(golden))[0] as string;
    const full = await fsp.readFile(path.join(golden, name));
    const headerEnd = 30;

    // A deterministic spread of cut points over the whole file, plus every batch boundary.
    const cuts = new Set<number>(boundaries.map((b) => b.size));
    for (let k = 0; k < 150; k++) cuts.add(headerEnd + ((k * 7919) % (full.length - headerEnd)));
    for (const cut of cuts) {
      const dir = await tmpDir('wal-cut-case-');
      await fsp.writeFile(path.join(dir, name), full.subarray(0, cut));
      const done = boundaries.filter((b) => b.size <= cut);
      const straddling = boundaries.find((b) => b.size > cut);
      const r = await Wal.open(dir);
      const minIndex = done.length > 0 ? (done[done.length - 1] as (typeof boundaries)[number]).lastIndex : 0;
      const maxIndex = straddling?.lastIndex ?? minIndex;
      checkPrefix(r.entries, minIndex);
      expect(r.entries.length).toBeLessThanOrEqual(maxIndex);
      const wantHs = done.length > 0 ? (done[done.length - 1] as (typeof boundaries)[number]).hs : { term: 0, vote: NONE, commit: 0 };
      expect(r.hardState).toEqual(wantHs);
      await r.wal.close();
      await fsp.rm(dir, { recursive: true });
    }
  });
});
