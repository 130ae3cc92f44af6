/**
 * A description of the machine a benchmark ran on: cores, CPU model, memory, load, and how many
 * 4 KiB append + fdatasync rounds per second the temp directory's disk sustains (the figure that
 * bounds a single client's write rate for both servers).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** What `describeMachine` reports. */
export interface MachineInfo {
  hostname: string;
  /** Logical CPUs available to this process. */
  nproc: number;
  cpuModel: string;
  memoryBytes: number;
  platform: string;
  kernel: string;
  node: string;
  /** 1, 5 and 15 minute load averages when the description was taken. */
  loadAverage: number[];
  /** Directory whose file system was measured (data dirs are created there too). */
  syncDir: string;
  /** fdatasync rounds per second: append 4 KiB, fdatasync, repeat. */
  fdatasyncPerSec: number;
}

/**
 * Appends 4 KiB and calls fdatasync, `rounds` times or until `maxMs` passed, in a fresh file
 * under `dir`; returns rounds per second. The file is removed afterwards.
 */
export function measureFdatasync(dir: string, rounds = 2000, maxMs = 3000): number {
  const d = fs.mkdtempSync(path.join(dir, 'bench-fsync-'));
  const file = path.join(d, 'probe');
  const fd = fs.openSync(file, 'a');
  const block = Buffer.alloc(4096, 0x5a);
  try {
    // One unmeasured round so that file creation is not part of the figure.
    fs.writeSync(fd, block);
    fs.fdatasyncSync(fd);
    const t0 = performance.now();
    let n = 0;
    while (n < rounds && performance.now() - t0 < maxMs) {
      fs.writeSync(fd, block);
      fs.fdatasyncSync(fd);
      n += 1;
    }
    return (n * 1000) / (performance.now() - t0);
  } finally {
    fs.closeSync(fd);
    fs.rmSync(d, { recursive: true, force: true });
  }
}

/** Describes this machine, measuring the fdatasync rate under `syncDir` (default: the OS temp dir). */
export function describeMachine(syncDir = os.tmpdir()): MachineInfo {
  const cpus = os.cpus();
  return {
    hostname: os.hostname(),
    nproc: typeof os.availableParallelism === 'function' ? os.availableParallelism() : cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    memoryBytes: os.totalmem(),
    platform: `${os.type()} ${os.arch()}`,
    kernel: os.release(),
    node: process.version,
    loadAverage: os.loadavg(),
    syncDir,
    fdatasyncPerSec: measureFdatasync(syncDir),
  };
}
