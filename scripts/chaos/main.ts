/**
 * `npm run chaos -- --members 3|5 --duration 60s --seed N --faults kill,pause,partition,...
 * [--target ours|etcd] [--clients N] [--keys N] [--watchers N] [--timeout 3s] [--dir DIR] [--keep-data]`
 *
 * Runs a fault-injection campaign against a local cluster and checks the recorded histories.
 * Exits 0 when no anomaly was found, 1 when some was, 2 on a usage or setup error.
 */
import { FAULT_KINDS } from './faults';
import type { FaultKind } from './faults';
import { runChaos } from './run';
import type { ChaosOptions } from './run';

/** Parses "60s", "2m", "1500ms" or a plain number of seconds into milliseconds. */
export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s.trim());
  if (m === null) throw new Error(`bad duration "${s}"`);
  const n = Number(m[1]);
  switch (m[2]) {
    case 'ms':
      return n;
    case 'm':
      return n * 60000;
    case 'h':
      return n * 3600000;
    default:
      return n * 1000;
  }
}

/** Parses the command line (after the script name) into run options. */
export function parseArgs(argv: readonly string[]): ChaosOptions {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument "${a}"`);
    const eq = a.indexOf('=');
    if (eq > 0) flags.set(a.slice(2, eq), a.slice(eq + 1));
    else if (a === '--keep-data') flags.set('keep-data', 'true');
    else {
      const v = argv[i + 1];
      if (v === undefined) throw new Error(`${a} needs a value`);
      flags.set(a.slice(2), v);
      i++;
    }
  }
  const known = new Set(['members', 'duration', 'seed', 'faults', 'target', 'clients', 'keys', 'watchers', 'timeout', 'dir', 'keep-data']);
  for (const k of flags.keys()) if (!known.has(k)) throw new Error(`unknown flag --${k}`);
  const members = Number(flags.get('members') ?? '3');
  if (!Number.isInteger(members) || members < 1 || members > 7) throw new Error('--members must be 1..7');
  const target = flags.get('target') ?? 'ours';
  if (target !== 'ours' && target !== 'etcd') throw new Error('--target must be ours or etcd');
  const seedText = flags.get('seed');
  const seed = seedText === undefined ? Math.floor(Math.random() * 1e9) : Number(seedText);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new Error('--seed must be a non-negative integer');
  const faultText = flags.get('faults') ?? 'kill,pause,partition';
  const faults = (faultText === 'all' ? [...FAULT_KINDS] : faultText === 'none' ? [] : faultText.split(',').map((f) => f.trim())) as FaultKind[];
  for (const f of faults) if (!(FAULT_KINDS as readonly string[]).includes(f)) throw new Error(`unknown fault "${f}" (known: ${FAULT_KINDS.join(', ')}, all, none)`);
  const num = (k: string): number | undefined => {
    const v = flags.get(k);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${k} must be a non-negative integer`);
    return n;
  };
  const clients = num('clients');
  const keys = num('keys');
  const watchers = num('watchers');
  const dir = flags.get('dir');
  const timeout = flags.get('timeout');
  const durationMs = parseDuration(flags.get('duration') ?? '60s');
  const command = `npm run chaos -- --target ${target} --members ${members} --duration ${Math.round(durationMs / 1000)}s --seed ${seed} --faults ${faults.length === 0 ? 'none' : faults.join(',')}${clients !== undefined ? ` --clients ${clients}` : ''}${keys !== undefined ? ` --keys ${keys}` : ''}${watchers !== undefined ? ` --watchers ${watchers}` : ''}${timeout !== undefined ? ` --timeout ${timeout}` : ''}`;
  return {
    target,
    members,
    durationMs,
    seed,
    faults,
    ...(clients !== undefined ? { clients } : {}),
    ...(keys !== undefined && keys > 0 ? { keys } : {}),
    ...(watchers !== undefined ? { watchers } : {}),
    ...(timeout !== undefined ? { timeoutMs: parseDuration(timeout) } : {}),
    ...(dir !== undefined ? { dir } : {}),
    ...(flags.has('keep-data') ? { keepData: true } : {}),
    command,
  };
}

async function main(): Promise<number> {
  let options: ChaosOptions;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`chaos: ${e instanceof Error ? e.message : String(e)}\n`);
    return 2;
  }
  process.stdout.write(`seed ${options.seed} (rerun: ${options.command})\n`);
  try {
    const r = await runChaos({ ...options, log: (l) => process.stdout.write(l + '\n') });
    process.stdout.write('\n' + r.summary + '\n');
    return r.anomalies.length === 0 ? 0 : 1;
  } catch (e) {
    process.stderr.write(`chaos: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return 2;
  }
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`chaos: ${String(e)}\n`);
      process.exit(2);
    },
  );
}
