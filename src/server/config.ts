/**
 * Server configuration from etcd's command-line flags and `ETCD_*`
 * environment variables.
 *
 * Parsing follows etcd 3.4/3.5 (which uses Go's `flag` package):
 * - `--flag=value`, `--flag value`, `-flag=value` and `-flag value`; a boolean
 *   flag alone means true and takes a value only as `--flag=false`;
 * - a flag given twice keeps the last value; a bad value fails at once;
 * - parsing stops at the first argument that is not a flag, and etcd then
 *   rejects it; `--` ends the flags;
 * - every flag can also come from `ETCD_<NAME>` (upper case, dashes to
 *   underscores); an empty variable is ignored; a variable for a flag that is
 *   also on the command line is an error, as in etcd;
 * - unknown `ETCD_*` variables give a warning.
 *
 * {@link parseConfig} is pure: it reads only its arguments.
 */
import { isIP } from 'node:net';
import { isLogLevel, LOG_LEVELS, type LogLevel } from './logger';

/** The etcd release whose behaviour and API this server reports. */
export const ETCD_COMPAT_VERSION = '3.6.11';

/** This server's own package version. */
export const SERVER_PACKAGE_VERSION = '0.1.0';

/** What `--version` prints (ends with a newline). Lines mirror etcd's `--version` output. */
export const VERSION_TEXT =
  `etcd Version: ${ETCD_COMPAT_VERSION}\n` +
  `Git SHA: Not provided\n` +
  `Server: etcd-ts ${SERVER_PACKAGE_VERSION} (Node.js)\n`;

/**
 * A configuration error. `exitCode` is what etcd exits with: 2 for a flag the
 * flag parser rejects (unknown flag, bad value), 1 for everything found later.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  /** Process exit code etcd uses for this kind of error. */
  readonly exitCode: 1 | 2;

  /** `message` is shown to the operator as is. */
  constructor(message: string, exitCode: 1 | 2 = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

/** A host and port taken from a URL. `host` has no IPv6 brackets; it may be "localhost". */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** A validated http or https URL of the form scheme://host:port. */
export interface ParsedUrl extends HostPort {
  readonly scheme: 'http' | 'https';
  /** Normalised text: lower-case scheme, IPv6 host in brackets, no trailing slash. */
  readonly text: string;
}

/** One member of `--initial-cluster`. `peerUrls` is sorted and holds normalised URL texts. */
export interface InitialClusterMember {
  readonly name: string;
  readonly peerUrls: readonly string[];
}

/** The TLS flags for one side (client or peer). Stored only: TLS is not served yet. */
export interface TlsSettings {
  readonly certFile: string;
  readonly keyFile: string;
  readonly trustedCaFile: string;
  readonly clientCertAuth: boolean;
  readonly crlFile: string;
  readonly autoTls: boolean;
  /** `--client-cert-allowed-hostname` or `--peer-cert-allowed-hostname`. */
  readonly allowedHostname: string;
  /** `--peer-cert-allowed-cn`; always "" on the client side. */
  readonly allowedCn: string;
}

/** Automatic compaction, decoded from `--auto-compaction-mode` and `--auto-compaction-retention`. 0 disables it. */
export type AutoCompaction =
  | { readonly mode: 'periodic'; readonly retentionMs: number }
  | { readonly mode: 'revision'; readonly retentionRevisions: number };

/**
 * The server configuration. Times are in milliseconds unless the name says
 * otherwise; sizes in bytes. URL lists are normalised, sorted and free of
 * duplicates, as etcd keeps them.
 *
 * When `action` is "help" or "version" the other fields hold the defaults and
 * carry no meaning.
 */
export interface Config {
  /** What the process should do. */
  readonly action: 'run' | 'help' | 'version';
  /** Messages to log at warn level once the logger exists, in the order found. */
  readonly warnings: readonly string[];
  /** Names of the flags that were set, on the command line or through the environment, sorted. */
  readonly explicitFlags: readonly string[];

  readonly name: string;
  /** `--data-dir`; "<name>.etcd" when not given or empty. */
  readonly dataDir: string;
  /** `--wal-dir`; "" means the WAL lives inside the data dir. */
  readonly walDir: string;

  readonly listenClientUrls: readonly string[];
  readonly advertiseClientUrls: readonly string[];
  readonly listenPeerUrls: readonly string[];
  readonly initialAdvertisePeerUrls: readonly string[];
  /** Empty when metrics are served only on the client URLs. */
  readonly listenMetricsUrls: readonly string[];
  /** Addresses from `listenClientUrls`, same order. Map hosts with {@link bindHostFor} before binding. */
  readonly listenClient: readonly HostPort[];
  /** Addresses from `listenPeerUrls`, same order. */
  readonly listenPeer: readonly HostPort[];
  /** Addresses from `listenMetricsUrls`, same order. */
  readonly listenMetrics: readonly HostPort[];

  /** `--initial-cluster` after etcd's default rule, as text (members sorted by name). */
  readonly initialClusterText: string;
  /** `--initial-cluster` parsed; members sorted by name; a name listed several times is merged. */
  readonly initialCluster: readonly InitialClusterMember[];
  readonly initialClusterState: 'new' | 'existing';
  readonly initialClusterToken: string;

  readonly maxRequestBytes: number;
  readonly maxTxnOps: number;
  /** As given; 0 means the default quota, a negative value means no quota. */
  readonly quotaBackendBytes: number;
  /** The quota in force: 2 GiB for 0, null (no quota) for a negative value. */
  readonly quotaBackendBytesEffective: number | null;
  /** As given; 0 means the default. */
  readonly snapshotCount: number;
  /** The snapshot trigger in force: 10000 (etcd 3.6's default) for 0. */
  readonly snapshotCountEffective: number;
  /** Log entries kept behind a snapshot (etcd: --experimental-snapshot-catchup-entries). */
  readonly snapshotCatchUpEntries: number;

  /** Raft tick length. */
  readonly heartbeatIntervalMs: number;
  readonly electionTimeoutMs: number;
  /** electionTimeoutMs / heartbeatIntervalMs, rounded down. */
  readonly electionTicks: number;
  /** 5 s + 2 × electionTicks × heartbeatIntervalMs (etcd's request timeout). */
  readonly requestTimeoutMs: number;
  /** Smallest lease TTL granted: ceil(floor(3 × electionTicks / 2) × heartbeatIntervalMs / 1000). */
  readonly minLeaseTtlSeconds: number;
  readonly initialElectionTickAdvance: boolean;
  readonly preVote: boolean;
  readonly strictReconfigCheck: boolean;
  readonly forceNewCluster: boolean;
  readonly maxLearners: number;

  /** Effective level (debug when the deprecated `--debug` is set). */
  readonly logLevel: LogLevel;
  readonly logger: 'zap' | 'capnslog';
  /** Targets for the logger: "default", "stderr", "stdout" or file paths; sorted, no duplicates. */
  readonly logOutputs: readonly string[];
  readonly debug: boolean;

  readonly enablePprof: boolean;
  readonly enableV2: boolean;
  readonly autoCompactionMode: 'periodic' | 'revision';
  /** `--auto-compaction-retention` as given. */
  readonly autoCompactionRetention: string;
  readonly autoCompaction: AutoCompaction;
  /** Interval of watch progress notifications. */
  readonly progressNotifyIntervalMs: number;
  readonly experimentalEnableLeaseCheckpoint: boolean;

  /** Which gRPC server serves clients (--experimental-grpc-engine). */
  readonly grpcEngine: 'native' | 'grpc-js';
  readonly grpcKeepaliveMinTimeMs: number;
  readonly grpcKeepaliveIntervalMs: number;
  readonly grpcKeepaliveTimeoutMs: number;

  readonly clientTls: TlsSettings;
  readonly peerTls: TlsSettings;
}

// ---------------------------------------------------------------------------
// Flag table

type FlagKind = 'string' | 'bool' | 'uint' | 'int' | 'duration' | 'urls' | 'optional-urls' | 'list' | 'choice' | 'ignored';

type FlagGroup =
  | 'Member'
  | 'Clustering'
  | 'Security'
  | 'Auth'
  | 'Profiling and monitoring'
  | 'Logging'
  | 'Experimental'
  | 'Unsafe'
  | 'Deprecated';

/**
 * How a flag is used: `used` flags drive this server; `compat` flags are
 * accepted so etcd command lines keep working but have no effect (a warning
 * says so when one is set); `ignored` flags are the ones etcd itself no
 * longer supports.
 */
type FlagEffect = 'used' | 'compat' | 'ignored';

interface FlagSpec {
  readonly name: string;
  readonly kind: FlagKind;
  /** Default in flag syntax; parsed by the same code as user input. */
  readonly defaultValue: string;
  /** Default as help shows it, when it differs from `defaultValue`. */
  readonly defaultText?: string;
  readonly choices?: readonly string[];
  readonly group: FlagGroup;
  readonly effect: FlagEffect;
  readonly usage: string;
}

function flag(
  group: FlagGroup,
  name: string,
  kind: FlagKind,
  defaultValue: string,
  usage: string,
  extra: { effect?: FlagEffect; choices?: readonly string[]; defaultText?: string } = {},
): FlagSpec {
  return { group, name, kind, defaultValue, usage, effect: extra.effect ?? 'used', choices: extra.choices, defaultText: extra.defaultText };
}

const COMPAT = { effect: 'compat' } as const;

const FLAGS: readonly FlagSpec[] = [
  flag('Member', 'name', 'string', 'default', 'Human-readable name of this member.'),
  flag('Member', 'data-dir', 'string', '', 'Directory for the data.', { defaultText: '${name}.etcd' }),
  flag('Member', 'wal-dir', 'string', '', 'Separate directory for the write-ahead log (empty: inside the data directory).'),
  flag('Member', 'snapshot-count', 'uint', '10000', 'Committed entries between two snapshots (0: the default; 10000 as in etcd 3.6).'),
  flag('Member', 'heartbeat-interval', 'uint', '100', 'Heartbeat interval in milliseconds (the Raft tick).'),
  flag('Member', 'election-timeout', 'uint', '1000', 'Election timeout in milliseconds; at least 5 heartbeats, at most 50000.'),
  flag('Member', 'initial-election-tick-advance', 'bool', 'true', 'Fast-forward election ticks at start so the first election comes sooner.'),
  flag('Member', 'listen-peer-urls', 'urls', 'http://localhost:2380', 'URLs to listen on for peer traffic.'),
  flag('Member', 'listen-client-urls', 'urls', 'http://localhost:2379', 'URLs to listen on for client traffic.'),
  flag('Member', 'max-snapshots', 'uint', '5', 'Snapshot files to keep (no effect here).', COMPAT),
  flag('Member', 'max-wals', 'uint', '5', 'WAL files to keep (no effect here).', COMPAT),
  flag('Member', 'quota-backend-bytes', 'int', '0', 'Backend size that raises the NOSPACE alarm (0: 2 GiB, negative: no quota).'),
  flag('Member', 'max-txn-ops', 'uint', '128', 'Most operations allowed in one transaction.'),
  flag('Member', 'max-request-bytes', 'uint', '1572864', 'Largest client request accepted, in bytes.'),
  flag('Member', 'max-concurrent-streams', 'uint', '4294967295', 'Concurrent streams per client (no effect here).', COMPAT),
  flag('Member', 'grpc-keepalive-min-time', 'duration', '5s', 'Shortest interval a client may ping the server at.'),
  flag('Member', 'grpc-keepalive-interval', 'duration', '2h', 'Interval of server-to-client pings (0 disables them).'),
  flag('Member', 'grpc-keepalive-timeout', 'duration', '20s', 'Time to wait for a ping reply before closing the connection (0 disables).'),

  flag('Clustering', 'initial-advertise-peer-urls', 'urls', 'http://localhost:2380', "This member's peer URLs, advertised to the cluster."),
  flag('Clustering', 'initial-cluster', 'string', 'default=http://localhost:2380', 'Members for bootstrapping: name=peer-url pairs, comma-separated.'),
  flag('Clustering', 'initial-cluster-state', 'choice', 'new', "'new' to bootstrap a new cluster, 'existing' to join one.", {
    choices: ['new', 'existing'],
  }),
  flag('Clustering', 'initial-cluster-token', 'string', 'etcd-cluster', 'Token that makes member and cluster ids unique to this cluster.'),
  flag('Clustering', 'advertise-client-urls', 'urls', 'http://localhost:2379', "This member's client URLs, advertised to clients."),
  flag('Clustering', 'strict-reconfig-check', 'bool', 'true', 'Reject membership changes that would lose quorum.'),
  flag('Clustering', 'pre-vote', 'bool', 'true', 'Run a pre-vote round before an election.'),
  flag('Clustering', 'auto-compaction-retention', 'string', '0', 'Auto compaction retention: hours or a duration (periodic), or revisions (revision); 0 disables.'),
  flag('Clustering', 'auto-compaction-mode', 'string', 'periodic', "How to read auto-compaction-retention: 'periodic' or 'revision'."),
  flag('Clustering', 'enable-v2', 'bool', 'false', 'Serve the v2 API (not supported; ignored).'),
  flag('Clustering', 'max-learners', 'uint', '1', 'Most learners the cluster may hold.'),
  flag('Clustering', 'experimental-max-learners', 'uint', '1', 'Old name of --max-learners.'),
  flag('Member', 'snapshot-catchup-entries', 'uint', '5000', 'Log entries kept behind a snapshot for slow followers.'),
  flag('Member', 'experimental-snapshot-catchup-entries', 'uint', '5000', 'Old name of --snapshot-catchup-entries.'),

  flag('Security', 'cert-file', 'string', '', 'Client TLS certificate file.'),
  flag('Security', 'key-file', 'string', '', 'Client TLS key file.'),
  flag('Security', 'client-cert-auth', 'bool', 'false', 'Require client certificates.'),
  flag('Security', 'client-crl-file', 'string', '', 'Client certificate revocation list.'),
  flag('Security', 'client-cert-allowed-hostname', 'string', '', 'Hostname required in client certificates.'),
  flag('Security', 'trusted-ca-file', 'string', '', 'CA file for client certificates.'),
  flag('Security', 'auto-tls', 'bool', 'false', 'Client TLS with generated certificates.'),
  flag('Security', 'peer-cert-file', 'string', '', 'Peer TLS certificate file.'),
  flag('Security', 'peer-key-file', 'string', '', 'Peer TLS key file.'),
  flag('Security', 'peer-client-cert-auth', 'bool', 'false', 'Require peer certificates.'),
  flag('Security', 'peer-trusted-ca-file', 'string', '', 'CA file for peer certificates.'),
  flag('Security', 'peer-cert-allowed-cn', 'string', '', 'Common name required in peer certificates.'),
  flag('Security', 'peer-cert-allowed-hostname', 'string', '', 'Hostname required in peer certificates.'),
  flag('Security', 'peer-auto-tls', 'bool', 'false', 'Peer TLS with generated certificates.'),
  flag('Security', 'peer-crl-file', 'string', '', 'Peer certificate revocation list.'),
  flag('Security', 'cipher-suites', 'string', '', 'TLS cipher suites (no effect here).', COMPAT),
  flag('Security', 'cors', 'string', '*', 'CORS origins (no effect here).', COMPAT),
  flag('Security', 'host-whitelist', 'string', '*', 'Accepted HTTP Host names (no effect here).', COMPAT),

  flag('Auth', 'auth-token', 'string', 'simple', 'Auth token type (no effect here).', COMPAT),
  flag('Auth', 'bcrypt-cost', 'uint', '10', 'bcrypt cost for passwords (no effect here).', COMPAT),
  flag('Auth', 'auth-token-ttl', 'uint', '300', 'Auth token lifetime in seconds (no effect here).', COMPAT),

  flag('Profiling and monitoring', 'enable-pprof', 'bool', 'false', 'Serve profiling data under /debug/pprof/.'),
  flag('Profiling and monitoring', 'metrics', 'string', 'basic', "Metrics detail, 'basic' or 'extensive' (no effect here).", COMPAT),
  flag('Profiling and monitoring', 'listen-metrics-urls', 'optional-urls', '', 'Extra URLs serving /metrics and /health.'),

  flag('Logging', 'logger', 'string', 'zap', "Logger: 'zap' (JSON lines); 'capnslog' is deprecated."),
  flag('Logging', 'log-outputs', 'list', 'default', "Log targets: 'default', 'stderr', 'stdout' or file paths, comma-separated."),
  flag('Logging', 'log-level', 'choice', 'info', 'Log level: debug, info, warn, error, panic or fatal.', { choices: LOG_LEVELS }),

  flag('Experimental', 'experimental-initial-corrupt-check', 'bool', 'false', 'Check data for corruption at start (no effect here).', COMPAT),
  flag('Experimental', 'experimental-corrupt-check-time', 'duration', '0s', 'Interval of corruption checks (no effect here).', COMPAT),
  flag('Experimental', 'experimental-enable-lease-checkpoint', 'bool', 'false', 'Persist remaining lease TTLs so leader changes do not renew them (no effect here).', COMPAT),
  flag('Experimental', 'experimental-compaction-batch-limit', 'uint', '1000', 'Revisions deleted per compaction batch (no effect here).', COMPAT),
  flag('Experimental', 'experimental-watch-progress-notify-interval', 'duration', '10m', 'Interval of watch progress notifications.'),
  flag('Experimental', 'watch-progress-notify-interval', 'duration', '10m', 'Newer name of --experimental-watch-progress-notify-interval.'),
  flag('Experimental', 'experimental-warning-apply-duration', 'duration', '100ms', 'Apply time that triggers a warning (no effect here).', COMPAT),
  flag('Experimental', 'experimental-grpc-engine', 'choice', 'native', "gRPC server: 'native' (our own HTTP/2 layer) or 'grpc-js'.", {
    choices: ['native', 'grpc-js'],
  }),

  flag('Unsafe', 'force-new-cluster', 'bool', 'false', 'Start as a new one-member cluster from the existing data.'),

  flag('Deprecated', 'debug', 'bool', 'false', 'Debug logging; use --log-level=debug.'),
  flag('Deprecated', 'log-package-levels', 'string', '', 'Per-package log levels of capnslog (no effect here).', COMPAT),
  flag('Deprecated', 'version', 'bool', 'false', 'Print the version and exit.'),
  ...[
    'cluster-active-size',
    'cluster-remove-delay',
    'cluster-sync-interval',
    'config',
    'force',
    'max-result-buffer',
    'max-retry-attempts',
    'peer-heartbeat-interval',
    'peer-election-timeout',
    'retry-interval',
    'snapshot',
    'v',
    'vv',
  ].map((name) => flag('Deprecated', name, 'ignored', '', 'No longer supported; ignored.', { effect: 'ignored' })),
];

const FLAG_BY_NAME: ReadonlyMap<string, FlagSpec> = new Map(FLAGS.map((spec) => [spec.name, spec]));

/** The environment variable etcd reads for flag `name`: ETCD_ + upper case, dashes as underscores. */
export function envNameForFlag(name: string): string {
  return 'ETCD_' + name.toUpperCase().replace(/-/g, '_');
}

/**
 * `ETCD_*` variables that are not flags but are expected in an etcd
 * environment; they are neither used nor reported as unrecognized.
 * (`ETCDCTL_*` variables do not start with `ETCD_` and are never reported.)
 */
export const IGNORED_ENV_VARS: ReadonlySet<string> = new Set(['ETCD_UNSUPPORTED_ARCH']);

/** Flags whose environment variables etcd refuses to read. */
const ENV_EXCLUDED_FLAGS: ReadonlySet<string> = new Set(['version']);

// ---------------------------------------------------------------------------
// Value parsers (Go semantics). Each throws a plain Error whose message is the reason.

function reason(message: string): Error {
  return new Error(message);
}

/** Parses a boolean the way Go's strconv.ParseBool does. */
function parseGoBool(text: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false;
  throw reason('not a boolean (use true or false)');
}

/**
 * Parses an integer the way Go's strconv.ParseInt/ParseUint do with base 0:
 * decimal, 0x hex, 0o or leading-0 octal, 0b binary; single underscores may
 * separate digits (or follow a base prefix). Values beyond the safe integer
 * range are rejected.
 */
function parseGoInteger(text: string, signed: boolean): number {
  const invalid = (): Error => reason(signed ? 'not an integer' : 'not an unsigned integer');
  let s = text;
  let negative = false;
  if (signed && (s.startsWith('-') || s.startsWith('+'))) {
    negative = s.startsWith('-');
    s = s.slice(1);
  }
  if (s.includes('_')) {
    let previousWasDigit = /^0[xXoObB]/.test(s);
    for (const c of previousWasDigit ? s.slice(2) : s) {
      if (c === '_' && !previousWasDigit) throw invalid();
      previousWasDigit = c !== '_';
    }
    if (!previousWasDigit) throw invalid();
    s = s.replace(/_/g, '');
  }
  let base = 10;
  let digits = s;
  if (/^0[xX]/.test(s)) {
    base = 16;
    digits = s.slice(2);
  } else if (/^0[oO]/.test(s)) {
    base = 8;
    digits = s.slice(2);
  } else if (/^0[bB]/.test(s)) {
    base = 2;
    digits = s.slice(2);
  } else if (s.length > 1 && s.startsWith('0')) {
    base = 8;
    digits = s.slice(1);
  }
  const alphabet = '0123456789abcdef'.slice(0, base);
  const lower = digits.toLowerCase();
  if (lower.length === 0 || ![...lower].every((c) => alphabet.includes(c))) throw invalid();
  let value = 0n;
  for (const c of lower) value = value * BigInt(base) + BigInt(alphabet.indexOf(c));
  if (negative) value = -value;
  if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) throw reason('value out of range');
  return Number(value);
}

const DURATION_UNITS_NS: ReadonlyMap<string, bigint> = new Map([
  ['ns', 1n],
  ['us', 1_000n],
  ['\u00b5s', 1_000n],
  ['\u03bcs', 1_000n],
  ['ms', 1_000_000n],
  ['s', 1_000_000_000n],
  ['m', 60_000_000_000n],
  ['h', 3_600_000_000_000n],
]);
const MAX_DURATION_NS = (1n << 63n) - 1n;

/**
 * Parses a Go duration ("300ms", "1.5h", "2h45m", "0") and returns it in
 * milliseconds (fractional below 1 ms). Throws an Error with Go's message
 * (`time: invalid duration "x"`, `time: missing unit in duration "x"`,
 * `time: unknown unit "u" in duration "x"`) on bad input.
 */
export function parseGoDuration(text: string): number {
  const quoted = JSON.stringify(text);
  let s = text;
  let negative = false;
  if (s.startsWith('-') || s.startsWith('+')) {
    negative = s.startsWith('-');
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') throw reason(`time: invalid duration ${quoted}`);
  let totalNs = 0n;
  while (s !== '') {
    const m = /^([0-9]*)(?:\.([0-9]*))?/.exec(s);
    const whole = m?.[1] ?? '';
    const frac = m?.[2];
    if (whole === '' && (frac === undefined || frac === '')) throw reason(`time: invalid duration ${quoted}`);
    s = s.slice((m?.[0] ?? '').length);
    const unitMatch = /^[^0-9.]*/.exec(s);
    const unit = unitMatch?.[0] ?? '';
    if (unit === '') throw reason(`time: missing unit in duration ${quoted}`);
    const unitNs = DURATION_UNITS_NS.get(unit);
    if (unitNs === undefined) throw reason(`time: unknown unit ${JSON.stringify(unit)} in duration ${quoted}`);
    s = s.slice(unit.length);
    let partNs = (whole === '' ? 0n : BigInt(whole)) * unitNs;
    if (frac !== undefined && frac !== '') {
      partNs += (BigInt(frac) * unitNs) / 10n ** BigInt(frac.length);
    }
    totalNs += partNs;
    if (totalNs > MAX_DURATION_NS) throw reason(`time: invalid duration ${quoted}`);
  }
  const ms = Number(totalNs) / 1e6;
  return negative ? -ms : ms;
}

/**
 * Parses one URL as etcd accepts it for listen and advertise flags:
 * `http` or `https`, an explicit port, no path, no user information.
 * Throws an Error naming the problem.
 */
export function parseUrl(input: string): ParsedUrl {
  const s = input.trim();
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(.*)$/s.exec(s);
  const scheme = m?.[1]?.toLowerCase();
  if (m === null || scheme === undefined) throw reason(`URL scheme must be http or https: ${s}`);
  if (scheme === 'unix' || scheme === 'unixs') throw reason(`unix socket URLs are not supported: ${s}`);
  if (scheme !== 'http' && scheme !== 'https') throw reason(`URL scheme must be http or https: ${s}`);
  const rest = m[2] ?? '';
  const cut = rest.search(/[/?#]/);
  const authority = cut < 0 ? rest : rest.slice(0, cut);
  if (cut >= 0) throw reason(`URL must not contain a path: ${s}`);
  if (authority.includes('@')) throw reason(`URL must not contain user information: ${s}`);
  const notHostPort = `URL address does not have the form "host:port": ${s}`;
  let host: string;
  let portText: string;
  if (authority.startsWith('[')) {
    const end = authority.indexOf(']');
    if (end < 0 || authority[end + 1] !== ':') throw reason(notHostPort);
    host = authority.slice(1, end);
    portText = authority.slice(end + 2);
    if (isIP(host) !== 6) throw reason(`invalid IPv6 address in URL: ${s}`);
  } else {
    const colon = authority.lastIndexOf(':');
    if (colon < 0) throw reason(notHostPort);
    host = authority.slice(0, colon);
    portText = authority.slice(colon + 1);
    if (host.includes(':')) throw reason(`IPv6 addresses in URLs must be in brackets: ${s}`);
    if (!/^[A-Za-z0-9._%-]*$/.test(host)) throw reason(`invalid host in URL: ${s}`);
  }
  if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) > 65535) throw reason(`invalid port ${JSON.stringify(':' + portText)} in URL: ${s}`);
  const port = Number(portText);
  const text = `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return { scheme, host, port, text };
}

/** Parses a comma-separated URL list; returns it sorted by text without duplicates (etcd's order). */
function parseUrlList(text: string): ParsedUrl[] {
  const byText = new Map<string, ParsedUrl>();
  for (const part of text.split(',')) {
    if (part.trim() === '') throw reason(text.trim() === '' ? 'no URLs given' : `empty URL in list ${JSON.stringify(text)}`);
    const url = parseUrl(part);
    byText.set(url.text, url);
  }
  return [...byText.values()].sort((a, b) => compareText(a.text, b.text));
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

type FlagValue = string | boolean | number | readonly ParsedUrl[] | readonly string[];

function parseFlagValue(spec: FlagSpec, text: string): FlagValue {
  switch (spec.kind) {
    case 'string':
    case 'ignored':
      return text;
    case 'bool':
      return parseGoBool(text);
    case 'uint':
      return parseGoInteger(text, false);
    case 'int':
      return parseGoInteger(text, true);
    case 'duration': {
      const ms = parseGoDuration(text);
      if (ms < 0) throw reason('duration must not be negative');
      return ms;
    }
    case 'urls':
      return parseUrlList(text);
    case 'optional-urls':
      return text === '' ? [] : parseUrlList(text);
    case 'list': {
      const items = text.split(',');
      if (items.some((item) => item === '')) throw reason('empty item in list');
      return [...new Set(items)].sort(compareText);
    }
    case 'choice': {
      const choices = spec.choices ?? [];
      if (!choices.includes(text)) throw reason(`valid values are ${choices.map((c) => JSON.stringify(c)).join(', ')}`);
      return text;
    }
  }
}

/**
 * Parses `--initial-cluster` text ("name=url,name=url"). Empty entries are
 * skipped; a name given several times collects all its URLs. Members come
 * back sorted by name with sorted, de-duplicated URLs. Throws an Error naming
 * the bad entry.
 */
export function parseInitialCluster(text: string): InitialClusterMember[] {
  const urlsByName = new Map<string, Set<string>>();
  for (const entry of text.split(',')) {
    if (entry === '') continue;
    const eq = entry.indexOf('=');
    if (eq < 0) throw reason(`entry ${JSON.stringify(entry)} is not of the form name=url`);
    const name = decodeQueryPart(entry.slice(0, eq));
    const rawUrl = decodeQueryPart(entry.slice(eq + 1));
    if (name === '') throw reason(`entry ${JSON.stringify(entry)} has an empty member name`);
    const url = parseUrl(rawUrl);
    const set = urlsByName.get(name) ?? new Set<string>();
    set.add(url.text);
    urlsByName.set(name, set);
  }
  return [...urlsByName.entries()]
    .sort(([a], [b]) => compareText(a, b))
    .map(([name, urls]) => ({ name, peerUrls: [...urls].sort(compareText) }));
}

/** Formats members as `--initial-cluster` text: name=url pairs, in the given order. */
export function formatInitialCluster(members: readonly InitialClusterMember[]): string {
  return members.flatMap((m) => m.peerUrls.map((u) => `${m.name}=${u}`)).join(',');
}

function decodeQueryPart(part: string): string {
  try {
    return decodeURIComponent(part.replace(/\+/g, ' '));
  } catch {
    throw reason(`invalid percent-encoding in ${JSON.stringify(part)}`);
  }
}

/** The address to bind for a URL host: "localhost" becomes 127.0.0.1; everything else (including "" and 0.0.0.0) is unchanged. */
export function bindHostFor(host: string): string {
  return host === 'localhost' ? '127.0.0.1' : host;
}

// ---------------------------------------------------------------------------
// Command line and environment

interface ParseState {
  readonly values: Map<string, FlagValue>;
  /** Where each explicitly set flag came from. */
  readonly source: Map<string, 'flag' | 'env'>;
  readonly warnings: string[];
}

function newState(): ParseState {
  const values = new Map<string, FlagValue>();
  for (const spec of FLAGS) values.set(spec.name, parseFlagValue(spec, spec.defaultValue));
  return { values, source: new Map(), warnings: [] };
}

function setFlag(state: ParseState, spec: FlagSpec, text: string, origin: 'flag' | 'env'): void {
  let value: FlagValue;
  try {
    value = parseFlagValue(spec, text);
  } catch (err) {
    const where = origin === 'flag' ? `flag -${spec.name}` : envNameForFlag(spec.name);
    throw new ConfigError(`invalid value ${JSON.stringify(text)} for ${where}: ${(err as Error).message}`, origin === 'flag' ? 2 : 1);
  }
  if (spec.effect === 'ignored') state.warnings.push(`flag "-${spec.name}" is no longer supported - ignoring.`);
  state.values.set(spec.name, value);
  state.source.set(spec.name, origin);
}

const HELP_NAMES: ReadonlySet<string> = new Set(['h', 'help']);

/** Applies the command line; returns 'help' when a help flag stops parsing. */
function applyArgs(state: ParseState, argv: readonly string[]): 'help' | undefined {
  let i = 0;
  while (i < argv.length) {
    const arg = argv[i] ?? '';
    if (arg.length < 2 || !arg.startsWith('-')) break;
    if (arg === '--') {
      i++;
      break;
    }
    const body = arg.slice(arg.startsWith('--') ? 2 : 1);
    if (body === '' || body.startsWith('-') || body.startsWith('=')) throw new ConfigError(`bad flag syntax: ${arg}`, 2);
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    const inline = eq < 0 ? undefined : body.slice(eq + 1);
    i++;
    if (HELP_NAMES.has(name)) return 'help';
    const spec = FLAG_BY_NAME.get(name);
    if (spec === undefined) throw new ConfigError(`unknown flag: --${name}`, 2);
    let text: string;
    if (spec.kind === 'bool' || spec.kind === 'ignored') {
      text = inline ?? 'true';
    } else if (inline !== undefined) {
      text = inline;
    } else if (i < argv.length) {
      text = argv[i] ?? '';
      i++;
    } else {
      throw new ConfigError(`flag needs an argument: -${name}`, 2);
    }
    setFlag(state, spec, text, 'flag');
  }
  const extra = argv[i];
  if (extra !== undefined) throw new ConfigError(`'${extra}' is not a valid flag. See 'etcd --help'.`, 1);
  return undefined;
}

function applyEnv(state: ParseState, env: Readonly<Record<string, string | undefined>>): void {
  const onCommandLine = new Set([...state.source.keys()]);
  const flagEnvNames = new Map<string, FlagSpec>();
  for (const spec of FLAGS) if (!ENV_EXCLUDED_FLAGS.has(spec.name)) flagEnvNames.set(envNameForFlag(spec.name), spec);

  for (const name of [...onCommandLine].sort(compareText)) {
    const key = envNameForFlag(name);
    if (env[key] !== undefined && flagEnvNames.has(key)) {
      throw new ConfigError(
        `conflicting environment variable ${JSON.stringify(key)} is shadowed by corresponding command-line flag (either unset environment variable or disable flag)`,
      );
    }
  }
  for (const [key, spec] of [...flagEnvNames.entries()].sort(([a], [b]) => compareText(a, b))) {
    const text = env[key];
    if (text === undefined || text === '' || onCommandLine.has(spec.name)) continue;
    setFlag(state, spec, text, 'env');
  }
  for (const key of Object.keys(env).sort(compareText)) {
    const text = env[key];
    if (text === undefined || !key.startsWith('ETCD_')) continue;
    if (flagEnvNames.has(key) || IGNORED_ENV_VARS.has(key)) continue;
    if (key === 'ETCD_VERSION') {
      state.warnings.push(`cannot set special environment variable ETCD_VERSION=${text}`);
      continue;
    }
    state.warnings.push(`unrecognized environment variable ${key}=${text}`);
  }
}

// Typed accessors over the value map. A type mismatch is a bug in the flag table.
function valueOf(state: ParseState, name: string): FlagValue {
  const value = state.values.get(name);
  if (value === undefined) throw new Error(`internal: flag ${name} has no value`);
  return value;
}
function str(state: ParseState, name: string): string {
  const v = valueOf(state, name);
  if (typeof v !== 'string') throw new Error(`internal: flag ${name} is not a string`);
  return v;
}
function bool(state: ParseState, name: string): boolean {
  const v = valueOf(state, name);
  if (typeof v !== 'boolean') throw new Error(`internal: flag ${name} is not a boolean`);
  return v;
}
function num(state: ParseState, name: string): number {
  const v = valueOf(state, name);
  if (typeof v !== 'number') throw new Error(`internal: flag ${name} is not a number`);
  return v;
}
function urls(state: ParseState, name: string): readonly ParsedUrl[] {
  const v = valueOf(state, name);
  if (!Array.isArray(v) || v.some((u: unknown) => typeof u === 'string')) throw new Error(`internal: flag ${name} is not a URL list`);
  return v as readonly ParsedUrl[];
}
function list(state: ParseState, name: string): readonly string[] {
  const v = valueOf(state, name);
  if (!Array.isArray(v) || v.some((u: unknown) => typeof u !== 'string')) throw new Error(`internal: flag ${name} is not a list`);
  return v as readonly string[];
}

// ---------------------------------------------------------------------------
// From flag values to Config

const DEFAULT_INITIAL_CLUSTER = 'default=http://localhost:2380';
const DEFAULT_QUOTA_BYTES = 2 * 1024 * 1024 * 1024;
const MAX_RECOMMENDED_QUOTA_BYTES = 8 * 1024 * 1024 * 1024;
const MAX_RECOMMENDED_REQUEST_BYTES = 10 * 1024 * 1024;
const DEFAULT_SNAPSHOT_COUNT = 10000;
const MAX_ELECTION_MS = 50000;
const LISTEN_FLAGS = ['listen-client-urls', 'listen-peer-urls', 'listen-metrics-urls'] as const;
const TLS_FLAGS = [
  'cert-file',
  'key-file',
  'trusted-ca-file',
  'client-crl-file',
  'client-cert-auth',
  'auto-tls',
  'client-cert-allowed-hostname',
  'peer-cert-file',
  'peer-key-file',
  'peer-trusted-ca-file',
  'peer-crl-file',
  'peer-client-cert-auth',
  'peer-auto-tls',
  'peer-cert-allowed-cn',
  'peer-cert-allowed-hostname',
] as const;

function hostPorts(list: readonly ParsedUrl[]): HostPort[] {
  return list.map((u) => ({ host: u.host, port: u.port }));
}

function checkBindUrls(list: readonly ParsedUrl[]): void {
  for (const u of list) {
    if (u.host !== 'localhost' && isIP(u.host) === 0) throw new ConfigError(`expected IP in URL for binding (${u.text})`);
  }
}

function decodeAutoCompaction(mode: 'periodic' | 'revision', retention: string): AutoCompaction {
  // etcd: a non-negative integer is hours (periodic) or revisions; anything else must be a duration.
  if (/^[+-]?[0-9]+$/.test(retention)) {
    const n = Number(retention);
    if (n >= 0 && Number.isSafeInteger(n)) {
      return mode === 'periodic' ? { mode, retentionMs: n * 3_600_000 } : { mode, retentionRevisions: n };
    }
  }
  if (mode === 'revision') {
    throw new ConfigError(`error parsing CompactionRetention: revision retention must be a non-negative integer, got ${JSON.stringify(retention)}`);
  }
  let ms: number;
  try {
    ms = parseGoDuration(retention);
  } catch (err) {
    throw new ConfigError(`error parsing CompactionRetention: ${(err as Error).message}`);
  }
  if (ms < 0) throw new ConfigError(`error parsing CompactionRetention: negative retention ${JSON.stringify(retention)}`);
  return { mode, retentionMs: ms };
}

function tlsSettings(state: ParseState, side: 'client' | 'peer'): TlsSettings {
  const p = side === 'peer' ? 'peer-' : '';
  return {
    certFile: str(state, `${p}cert-file`),
    keyFile: str(state, `${p}key-file`),
    trustedCaFile: str(state, `${p}trusted-ca-file`),
    clientCertAuth: bool(state, `${p}client-cert-auth`),
    crlFile: str(state, side === 'peer' ? 'peer-crl-file' : 'client-crl-file'),
    autoTls: bool(state, `${p}auto-tls`),
    allowedHostname: str(state, side === 'peer' ? 'peer-cert-allowed-hostname' : 'client-cert-allowed-hostname'),
    allowedCn: side === 'peer' ? str(state, 'peer-cert-allowed-cn') : '',
  };
}

function buildConfig(state: ParseState, action: Config['action']): Config {
  const warnings = state.warnings;
  const isSet = (name: string): boolean => state.source.has(name);

  for (const spec of FLAGS) {
    if (spec.effect === 'compat' && isSet(spec.name)) warnings.push(`flag --${spec.name} is accepted for compatibility and has no effect`);
  }

  // Logging (etcd checks it first).
  const loggerName = str(state, 'logger');
  if (loggerName !== 'zap' && loggerName !== 'capnslog') throw new ConfigError(`unknown logger option ${JSON.stringify(loggerName)}`);
  if (loggerName === 'capnslog') warnings.push(`Deprecated '--logger=capnslog' flag is set; use '--logger=zap' flag instead`);
  const logOutputs = list(state, 'log-outputs');
  if (logOutputs.length > 1 && logOutputs.includes('default')) throw new ConfigError(`multi logoutput for "default" is not supported yet`);
  const givenLevel = str(state, 'log-level');
  if (!isLogLevel(givenLevel)) throw new Error(`internal: log level ${givenLevel} passed the choice check`);
  const debug = bool(state, 'debug');
  if (debug) {
    warnings.push(`Deprecated '--debug' flag is set to true (use '--log-level=debug' instead`);
    if (givenLevel !== 'debug') warnings.push(`Deprecated '--debug' flag is set to true with inconsistent '--log-level=${givenLevel}' flag`);
  }

  // URLs.
  for (const name of LISTEN_FLAGS) {
    const https = urls(state, name).find((u) => u.scheme === 'https');
    if (https !== undefined) throw new ConfigError(`--${name}: TLS is not supported yet, so ${https.text} cannot be served; use http://`);
  }
  const listenClient = urls(state, 'listen-client-urls');
  const listenPeer = urls(state, 'listen-peer-urls');
  const listenMetrics = urls(state, 'listen-metrics-urls');
  checkBindUrls(listenPeer);
  checkBindUrls(listenClient);
  checkBindUrls(listenMetrics);
  const advertisePeer = urls(state, 'initial-advertise-peer-urls');
  const advertiseClient = urls(state, 'advertise-client-urls');
  for (const [name, list] of [
    ['initial-advertise-peer-urls', advertisePeer],
    ['advertise-client-urls', advertiseClient],
  ] as const) {
    const empty = list.find((u) => u.host === '');
    if (empty !== undefined) throw new ConfigError(`--${name} ${JSON.stringify(list.map((u) => u.text).join(','))} must be "host:port" (missing host)`);
    const https = list.find((u) => u.scheme === 'https');
    if (https !== undefined) warnings.push(`--${name} advertises ${https.text}, but TLS is not supported yet`);
  }

  // Member and cluster.
  const name = str(state, 'name');
  const dataDir = str(state, 'data-dir') === '' ? `${name}.etcd` : str(state, 'data-dir');
  let initialClusterText = str(state, 'initial-cluster');
  if (name !== 'default' && initialClusterText === DEFAULT_INITIAL_CLUSTER) {
    // etcd: changing only --name re-derives the initial cluster from the advertised peer URLs.
    initialClusterText = advertisePeer.map((u) => `${name}=${u.text}`).join(',');
  }
  let initialCluster: InitialClusterMember[];
  try {
    initialCluster = parseInitialCluster(initialClusterText);
  } catch (err) {
    throw new ConfigError(`invalid --initial-cluster ${JSON.stringify(initialClusterText)}: ${(err as Error).message}`);
  }
  initialClusterText = formatInitialCluster(initialCluster);
  for (const member of initialCluster) {
    if (member.peerUrls.some((u) => u.startsWith('https:'))) warnings.push(`--initial-cluster lists https peer URLs for ${JSON.stringify(member.name)}, but TLS is not supported yet`);
  }

  // Timing.
  const heartbeat = num(state, 'heartbeat-interval');
  const election = num(state, 'election-timeout');
  if (heartbeat <= 0) throw new ConfigError(`--heartbeat-interval must be >0 (set to ${heartbeat}ms)`);
  if (election <= 0) throw new ConfigError(`--election-timeout must be >0 (set to ${election}ms)`);
  if (5 * heartbeat > election) {
    throw new ConfigError(`--election-timeout[${election}ms] should be at least as 5 times as --heartbeat-interval[${heartbeat}ms]`);
  }
  if (election > MAX_ELECTION_MS) {
    throw new ConfigError(`--election-timeout[${election}ms] is too long, and should be set less than ${MAX_ELECTION_MS}ms`);
  }
  const electionTicks = Math.floor(election / heartbeat);

  if (isSet('listen-client-urls') && !isSet('advertise-client-urls')) {
    throw new ConfigError('--advertise-client-urls is required when --listen-client-urls is set explicitly');
  }

  const modeText = str(state, 'auto-compaction-mode');
  if (modeText !== '' && modeText !== 'periodic' && modeText !== 'revision') {
    throw new ConfigError(`unknown auto-compaction-mode ${JSON.stringify(modeText)}`);
  }
  const autoCompactionMode = modeText === 'revision' ? 'revision' : 'periodic';
  const autoCompactionRetention = str(state, 'auto-compaction-retention');
  const autoCompaction = decodeAutoCompaction(autoCompactionMode, autoCompactionRetention);

  // Sizes.
  const quota = num(state, 'quota-backend-bytes');
  const quotaEffective = quota < 0 ? null : quota === 0 ? DEFAULT_QUOTA_BYTES : quota;
  if (quotaEffective !== null && quotaEffective > MAX_RECOMMENDED_QUOTA_BYTES) {
    warnings.push(`backend quota ${quotaEffective} exceeds maximum recommended quota ${MAX_RECOMMENDED_QUOTA_BYTES}`);
  }
  const maxRequestBytes = num(state, 'max-request-bytes');
  if (maxRequestBytes > MAX_RECOMMENDED_REQUEST_BYTES) {
    warnings.push(`MaxRequestBytes ${maxRequestBytes} exceeds maximum recommended size ${MAX_RECOMMENDED_REQUEST_BYTES}`);
  }
  const snapshotCount = num(state, 'snapshot-count');

  // Renamed flags: the experimental spelling wins when set, as in etcd 3.6.
  const pickRenamed = (oldName: string, newName: string): number => {
    if (isSet(oldName) && isSet(newName) && num(state, oldName) !== num(state, newName)) {
      warnings.push(`both --${oldName} and --${newName} are set; using --${oldName}`);
    }
    return isSet(oldName) ? num(state, oldName) : num(state, newName);
  };
  const progressNotifyIntervalMs = pickRenamed('experimental-watch-progress-notify-interval', 'watch-progress-notify-interval');
  const maxLearners = pickRenamed('experimental-max-learners', 'max-learners');
  const snapshotCatchUpEntries = pickRenamed('experimental-snapshot-catchup-entries', 'snapshot-catchup-entries');

  const enableV2 = bool(state, 'enable-v2');
  if (enableV2) warnings.push('the v2 API is not supported; --enable-v2 is ignored');
  const tlsSet = TLS_FLAGS.filter((f) => {
    const v = state.values.get(f);
    return v === true || (typeof v === 'string' && v !== '');
  });
  if (tlsSet.length > 0) warnings.push(`TLS is not supported yet; ignoring ${tlsSet.map((f) => `--${f}`).join(', ')}`);

  return {
    action,
    warnings,
    explicitFlags: [...state.source.keys()].sort(compareText),
    name,
    dataDir,
    walDir: str(state, 'wal-dir'),
    listenClientUrls: listenClient.map((u) => u.text),
    advertiseClientUrls: advertiseClient.map((u) => u.text),
    listenPeerUrls: listenPeer.map((u) => u.text),
    initialAdvertisePeerUrls: advertisePeer.map((u) => u.text),
    listenMetricsUrls: listenMetrics.map((u) => u.text),
    listenClient: hostPorts(listenClient),
    listenPeer: hostPorts(listenPeer),
    listenMetrics: hostPorts(listenMetrics),
    initialClusterText,
    initialCluster,
    initialClusterState: str(state, 'initial-cluster-state') === 'existing' ? 'existing' : 'new',
    initialClusterToken: str(state, 'initial-cluster-token'),
    maxRequestBytes,
    maxTxnOps: num(state, 'max-txn-ops'),
    quotaBackendBytes: quota,
    quotaBackendBytesEffective: quotaEffective,
    snapshotCount,
    snapshotCountEffective: snapshotCount === 0 ? DEFAULT_SNAPSHOT_COUNT : snapshotCount,
    snapshotCatchUpEntries,
    heartbeatIntervalMs: heartbeat,
    electionTimeoutMs: election,
    electionTicks,
    requestTimeoutMs: 5000 + 2 * electionTicks * heartbeat,
    minLeaseTtlSeconds: Math.ceil((Math.floor((3 * electionTicks) / 2) * heartbeat) / 1000),
    initialElectionTickAdvance: bool(state, 'initial-election-tick-advance'),
    preVote: bool(state, 'pre-vote'),
    strictReconfigCheck: bool(state, 'strict-reconfig-check'),
    forceNewCluster: bool(state, 'force-new-cluster'),
    maxLearners,
    logLevel: debug ? 'debug' : givenLevel,
    logger: loggerName,
    logOutputs,
    debug,
    enablePprof: bool(state, 'enable-pprof'),
    enableV2,
    autoCompactionMode,
    autoCompactionRetention,
    autoCompaction,
    progressNotifyIntervalMs,
    experimentalEnableLeaseCheckpoint: bool(state, 'experimental-enable-lease-checkpoint'),
    grpcEngine: str(state, 'experimental-grpc-engine') === 'grpc-js' ? 'grpc-js' : 'native',
    grpcKeepaliveMinTimeMs: num(state, 'grpc-keepalive-min-time'),
    grpcKeepaliveIntervalMs: num(state, 'grpc-keepalive-interval'),
    grpcKeepaliveTimeoutMs: num(state, 'grpc-keepalive-timeout'),
    clientTls: tlsSettings(state, 'client'),
    peerTls: tlsSettings(state, 'peer'),
  };
}

/**
 * Builds the configuration from `argv` (the arguments after the program
 * name) and `env` (normally `process.env`), as etcd does: command line
 * first, then `ETCD_*` variables for flags not on the command line, then
 * defaults. Pure: reads nothing else.
 *
 * `--help`/`-h` returns action "help" (flags before it must parse);
 * `--version` returns action "version" without reading the environment or
 * validating the rest. Throws {@link ConfigError} for an unknown flag, a bad
 * value, a positional argument, an environment variable that conflicts with
 * a flag, or a combination etcd rejects.
 */
export function parseConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): Config {
  const state = newState();
  if (applyArgs(state, argv) === 'help') return buildConfig(newState(), 'help');
  if (bool(state, 'version')) return buildConfig(newState(), 'version');
  applyEnv(state, env);
  return buildConfig(state, 'run');
}

/**
 * Checks, for a member bootstrapping without data, that the initial cluster
 * is consistent with this member, with etcd's messages: no peer URL listed
 * twice, this member's name present, and its URLs there equal to
 * `--initial-advertise-peer-urls` ("localhost" and 127.0.0.1 count as equal;
 * no DNS lookups are made). Throws {@link ConfigError}.
 */
export function verifyBootstrapCluster(config: Config): void {
  const seen = new Set<string>();
  for (const member of config.initialCluster) {
    for (const url of member.peerUrls) {
      if (seen.has(url)) throw new ConfigError(`initial cluster ${formatInitialCluster(config.initialCluster)} has duplicate url`);
      seen.add(url);
    }
  }
  const local = config.initialCluster.find((m) => m.name === config.name);
  if (local === undefined) throw new ConfigError(`couldn't find local name ${JSON.stringify(config.name)} in the initial cluster configuration`);
  const canon = (text: string): string => {
    const u = parseUrl(text);
    const host = bindHostFor(u.host);
    return `${u.scheme}://${host.includes(':') ? `[${host}]` : host}:${u.port}`;
  };
  const clusterUrls = new Set(local.peerUrls.map(canon));
  const advertised = new Set(config.initialAdvertisePeerUrls.map(canon));
  const advertisedText = config.initialAdvertisePeerUrls.join(',');
  const missingFromAdvertise = local.peerUrls.filter((u) => !advertised.has(canon(u)));
  if (missingFromAdvertise.length > 0) {
    throw new ConfigError(
      `--initial-cluster has ${missingFromAdvertise.map((u) => `${config.name}=${u}`).join(',')} but missing from --initial-advertise-peer-urls=${advertisedText}`,
    );
  }
  const missingFromCluster = config.initialAdvertisePeerUrls.filter((u) => !clusterUrls.has(canon(u)));
  if (missingFromCluster.length > 0) {
    throw new ConfigError(
      `--initial-advertise-peer-urls has ${missingFromCluster.join(',')} but missing from --initial-cluster=${formatInitialCluster([local])}`,
    );
  }
}

// ---------------------------------------------------------------------------
// Help

/**
 * Describes every flag, grouped as etcd's help groups them: the flag, its
 * default, the environment variable that sets it and what it does. Ends
 * with a newline.
 */
export function describeFlags(): string {
  const lines: string[] = [];
  let group: FlagGroup | undefined;
  for (const spec of FLAGS) {
    if (spec.effect === 'ignored') continue;
    if (spec.group !== group) {
      group = spec.group;
      if (lines.length > 0) lines.push('');
      lines.push(`${group}:`);
    }
    const shown = spec.defaultText ?? spec.defaultValue;
    const env = ENV_EXCLUDED_FLAGS.has(spec.name) ? '' : `  [env ${envNameForFlag(spec.name)}]`;
    lines.push(`  --${spec.name} '${shown}'${env}`);
    lines.push(`      ${spec.usage}`);
  }
  const ignored = FLAGS.filter((spec) => spec.effect === 'ignored').map((spec) => `--${spec.name}`);
  lines.push('', 'Accepted and ignored (etcd no longer supports them):', `  ${ignored.join(', ')}`);
  return lines.join('\n') + '\n';
}

/** The full `--help` text: usage lines, then {@link describeFlags}. Ends with a newline. */
export function helpText(): string {
  return [
    'Usage:',
    '',
    '  etcd [flags]',
    '      Start a server (etcd-compatible; v3 API only).',
    '',
    '  etcd --version',
    '      Print the version and exit.',
    '',
    '  etcd -h | --help',
    '      Print this help and exit.',
    '',
    'Every flag can also be set through the environment variable shown with it;',
    'a flag on the command line and its variable must not both be set.',
    '',
    describeFlags(),
  ].join('\n');
}
