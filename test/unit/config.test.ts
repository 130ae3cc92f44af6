import fc from 'fast-check';
import {
  bindHostFor,
  ConfigError,
  describeFlags,
  envNameForFlag,
  formatInitialCluster,
  helpText,
  parseConfig,
  parseGoDuration,
  parseInitialCluster,
  parseUrl,
  verifyBootstrapCluster,
  VERSION_TEXT,
  type Config,
} from '../../src/server/config';

/** Parses with no environment. */
function cfg(...argv: string[]): Config {
  return parseConfig(argv, {});
}

/** Returns the ConfigError thrown by parsing, failing the test if none is thrown. */
function configError(argv: string[], env: Record<string, string | undefined> = {}): ConfigError {
  try {
    parseConfig(argv, env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(argv)} ${JSON.stringify(env)}`);
}

describe('defaults (etcd 3.5 documented values)', () => {
  const c = cfg();

  test('member and cluster defaults', () => {
    expect(c.action).toBe('run');
    expect(c.name).toBe('default');
    expect(c.dataDir).toBe('default.etcd');
    expect(c.walDir).toBe('');
    expect(c.listenClientUrls).toEqual(['http://localhost:2379']);
    expect(c.advertiseClientUrls).toEqual(['http://localhost:2379']);
    expect(c.listenPeerUrls).toEqual(['http://localhost:2380']);
    expect(c.initialAdvertisePeerUrls).toEqual(['http://localhost:2380']);
    expect(c.listenMetricsUrls).toEqual([]);
    expect(c.initialClusterText).toBe('default=http://localhost:2380');
    expect(c.initialCluster).toEqual([{ name: 'default', peerUrls: ['http://localhost:2380'] }]);
    expect(c.initialClusterState).toBe('new');
    expect(c.initialClusterToken).toBe('etcd-cluster');
    expect(c.strictReconfigCheck).toBe(true);
    expect(c.preVote).toBe(true);
    expect(c.forceNewCluster).toBe(false);
    expect(c.maxLearners).toBe(1);
    expect(c.initialElectionTickAdvance).toBe(true);
  });

  test('limits, timing and logging defaults', () => {
    expect(c.maxRequestBytes).toBe(1572864);
    expect(c.maxTxnOps).toBe(128);
    expect(c.quotaBackendBytes).toBe(0);
    expect(c.quotaBackendBytesEffective).toBe(2 * 1024 * 1024 * 1024);
    expect(c.snapshotCount).toBe(10000);
    expect(c.snapshotCountEffective).toBe(10000);
    expect(c.heartbeatIntervalMs).toBe(100);
    expect(c.electionTimeoutMs).toBe(1000);
    expect(c.logLevel).toBe('info');
    expect(c.logger).toBe('zap');
    expect(c.logOutputs).toEqual(['default']);
    expect(c.debug).toBe(false);
    expect(c.enablePprof).toBe(false);
    expect(c.enableV2).toBe(false);
    expect(c.autoCompactionMode).toBe('periodic');
    expect(c.autoCompactionRetention).toBe('0');
    expect(c.autoCompaction).toEqual({ mode: 'periodic', retentionMs: 0 });
    expect(c.progressNotifyIntervalMs).toBe(10 * 60 * 1000);
    expect(c.experimentalEnableLeaseCheckpoint).toBe(false);
    expect(c.grpcKeepaliveMinTimeMs).toBe(5000);
    expect(c.grpcKeepaliveIntervalMs).toBe(2 * 3600 * 1000);
    expect(c.grpcKeepaliveTimeoutMs).toBe(20000);
    expect(c.clientTls).toEqual({
      certFile: '',
      keyFile: '',
      trustedCaFile: '',
      clientCertAuth: false,
      crlFile: '',
      autoTls: false,
      allowedHostname: '',
      allowedCn: '',
    });
    expect(c.peerTls.clientCertAuth).toBe(false);
    expect(c.warnings).toEqual([]);
    expect(c.explicitFlags).toEqual([]);
  });

  test('derived values match etcd (ticks 10, request timeout 7 s, min lease TTL 2 s)', () => {
    expect(c.electionTicks).toBe(10);
    expect(c.requestTimeoutMs).toBe(7000);
    expect(c.minLeaseTtlSeconds).toBe(2);
    expect(c.listenClient).toEqual([{ host: 'localhost', port: 2379 }]);
    expect(c.listenPeer).toEqual([{ host: 'localhost', port: 2380 }]);
    expect(c.listenMetrics).toEqual([]);
  });

  test('help lists every default the parser uses', () => {
    const help = describeFlags();
    expect(help).toContain(`--name '${c.name}'`);
    expect(help).toContain(`--data-dir '\${name}.etcd'`);
    expect(help).toContain(`--listen-client-urls '${c.listenClientUrls.join(',')}'`);
    expect(help).toContain(`--initial-cluster '${c.initialClusterText}'`);
    expect(help).toContain(`--max-request-bytes '${c.maxRequestBytes}'`);
    expect(help).toContain(`--heartbeat-interval '${c.heartbeatIntervalMs}'`);
    expect(help).toContain(`--election-timeout '${c.electionTimeoutMs}'`);
    expect(help).toContain(`--experimental-watch-progress-notify-interval '10m'`);
  });
});

describe('flag syntax (Go flag package)', () => {
  test.each([
    [['--name=a']],
    [['--name', 'a']],
    [['-name=a']],
    [['-name', 'a']],
  ])('%j sets the name', (argv) => {
    expect(cfg(...argv).name).toBe('a');
  });

  test('a value may start with a dash when given as the next argument', () => {
    expect(cfg('--initial-cluster-token', '-tok').initialClusterToken).toBe('-tok');
  });

  test('an empty value is allowed with =', () => {
    expect(cfg('--wal-dir=').walDir).toBe('');
  });

  test.each([
    [['--enable-pprof'], true],
    [['-enable-pprof'], true],
    [['--enable-pprof=true'], true],
    [['--enable-pprof=1'], true],
    [['--enable-pprof=T'], true],
    [['--enable-pprof=TRUE'], true],
    [['--enable-pprof=false'], false],
    [['--enable-pprof=0'], false],
    [['--enable-pprof=F'], false],
    [['--enable-pprof=False'], false],
  ])('boolean %j → %s', (argv, expected) => {
    expect(cfg(...argv).enablePprof).toBe(expected);
  });

  test('a boolean that defaults to true can be turned off', () => {
    expect(cfg('--pre-vote=false').preVote).toBe(false);
    expect(cfg('--strict-reconfig-check=false').strictReconfigCheck).toBe(false);
  });

  test('a boolean does not take the next argument as its value', () => {
    const err = configError(['--enable-pprof', 'false']);
    expect(err.message).toBe("'false' is not a valid flag. See 'etcd --help'.");
  });

  test('a bad boolean names the flag', () => {
    const err = configError(['--debug=maybe']);
    expect(err.message).toMatch(/^invalid value "maybe" for flag -debug: /);
    expect(err.exitCode).toBe(2);
  });

  test('the last occurrence wins', () => {
    expect(cfg('--name=a', '--name', 'b', '-name=c').name).toBe('c');
    expect(cfg('--enable-pprof', '--enable-pprof=false').enablePprof).toBe(false);
  });

  test('a bad value fails even if a later occurrence is valid', () => {
    expect(configError(['--heartbeat-interval=abc', '--heartbeat-interval=100']).message).toMatch(
      /^invalid value "abc" for flag -heartbeat-interval: /,
    );
  });

  test('unknown flags are named', () => {
    const err = configError(['--xyz']);
    expect(err.message).toBe('unknown flag: --xyz');
    expect(err.exitCode).toBe(2);
    expect(configError(['-xyz=1']).message).toBe('unknown flag: --xyz');
  });

  test('positional arguments are rejected', () => {
    expect(configError(['foo']).message).toBe("'foo' is not a valid flag. See 'etcd --help'.");
    expect(configError(['--name=a', 'foo', '--xyz']).message).toBe("'foo' is not a valid flag. See 'etcd --help'.");
    expect(configError(['-']).message).toBe("'-' is not a valid flag. See 'etcd --help'.");
  });

  test('-- ends the flags', () => {
    expect(cfg('--name=a', '--').name).toBe('a');
    expect(configError(['--', '--name=a']).message).toBe("'--name=a' is not a valid flag. See 'etcd --help'.");
  });

  test.each([['---name=a'], ['-=a'], ['--=a']])('bad syntax %s', (arg) => {
    expect(configError([arg]).message).toBe(`bad flag syntax: ${arg}`);
  });

  test('a missing argument is reported', () => {
    expect(configError(['--name']).message).toBe('flag needs an argument: -name');
  });

  test.each([['-h'], ['--help'], ['-help'], ['--help=false']])('%s asks for help', (arg) => {
    expect(cfg(arg).action).toBe('help');
    expect(cfg('--name=a', arg, '--xyz').action).toBe('help');
  });

  test('a bad flag before --help still fails', () => {
    expect(configError(['--xyz', '--help']).message).toBe('unknown flag: --xyz');
  });

  test('--version skips the environment and validation', () => {
    const c = parseConfig(['--version', '--election-timeout=1'], { ETCD_HEARTBEAT_INTERVAL: 'abc' });
    expect(c.action).toBe('version');
    expect(cfg('--version=false').action).toBe('run');
    expect(configError(['--version', 'x']).message).toBe("'x' is not a valid flag. See 'etcd --help'.");
  });

  test('explicitFlags lists flags set by either source', () => {
    const c = parseConfig(['--name=a'], { ETCD_DATA_DIR: '/d' });
    expect(c.explicitFlags).toEqual(['data-dir', 'name']);
  });

  test('flags etcd no longer supports are accepted with a warning', () => {
    const c = cfg('--snapshot', '--config=x');
    expect(c.warnings).toEqual([
      'flag "-snapshot" is no longer supported - ignoring.',
      'flag "-config" is no longer supported - ignoring.',
    ]);
    expect(configError(['--v', 'x']).message).toBe("'x' is not a valid flag. See 'etcd --help'.");
  });

  test('compatibility flags are accepted, validated and reported as without effect', () => {
    const c = cfg('--max-snapshots=3', '--auth-token', 'jwt', '--experimental-initial-corrupt-check');
    expect(c.warnings).toEqual([
      'flag --max-snapshots is accepted for compatibility and has no effect',
      'flag --auth-token is accepted for compatibility and has no effect',
      'flag --experimental-initial-corrupt-check is accepted for compatibility and has no effect',
    ]);
    expect(configError(['--max-snapshots=x']).message).toMatch(/^invalid value "x" for flag -max-snapshots: /);
  });
});

describe('environment variables', () => {
  test('envNameForFlag follows etcd', () => {
    expect(envNameForFlag('data-dir')).toBe('ETCD_DATA_DIR');
    expect(envNameForFlag('experimental-watch-progress-notify-interval')).toBe('ETCD_EXPERIMENTAL_WATCH_PROGRESS_NOTIFY_INTERVAL');
  });

  test('variables set flags that are not on the command line', () => {
    const c = parseConfig([], {
      ETCD_NAME: 'n1',
      ETCD_DATA_DIR: '/var/lib/etcd',
      ETCD_LISTEN_CLIENT_URLS: 'http://127.0.0.1:12379',
      ETCD_ADVERTISE_CLIENT_URLS: 'http://127.0.0.1:12379',
      ETCD_INITIAL_CLUSTER: 'n1=http://127.0.0.1:12380,n2=http://127.0.0.1:22380',
      ETCD_INITIAL_CLUSTER_STATE: 'existing',
      ETCD_ENABLE_PPROF: 'true',
      ETCD_HEARTBEAT_INTERVAL: '50',
      ETCD_ELECTION_TIMEOUT: '500',
      ETCD_GRPC_KEEPALIVE_TIMEOUT: '1m30s',
    });
    expect(c.name).toBe('n1');
    expect(c.dataDir).toBe('/var/lib/etcd');
    expect(c.listenClient).toEqual([{ host: '127.0.0.1', port: 12379 }]);
    expect(c.initialCluster.map((m) => m.name)).toEqual(['n1', 'n2']);
    expect(c.initialClusterState).toBe('existing');
    expect(c.enablePprof).toBe(true);
    expect(c.heartbeatIntervalMs).toBe(50);
    expect(c.electionTicks).toBe(10);
    expect(c.grpcKeepaliveTimeoutMs).toBe(90000);
    expect(c.warnings).toEqual([]);
  });

  test('empty and undefined variables are ignored', () => {
    const c = parseConfig([], { ETCD_NAME: '', ETCD_DATA_DIR: undefined });
    expect(c.name).toBe('default');
    expect(c.dataDir).toBe('default.etcd');
    expect(c.warnings).toEqual([]);
  });

  test('a variable for a flag also on the command line is an error, as in etcd', () => {
    const err = configError(['--name=b'], { ETCD_NAME: 'a' });
    expect(err.message).toBe(
      'conflicting environment variable "ETCD_NAME" is shadowed by corresponding command-line flag (either unset environment variable or disable flag)',
    );
  });

  test('a bad value in a variable names the variable', () => {
    expect(configError([], { ETCD_HEARTBEAT_INTERVAL: 'abc' }).message).toMatch(/^invalid value "abc" for ETCD_HEARTBEAT_INTERVAL: /);
    const err = configError([], { ETCD_INITIAL_CLUSTER_STATE: 'x' });
    expect(err.message).toBe('invalid value "x" for ETCD_INITIAL_CLUSTER_STATE: valid values are "new", "existing"');
    expect(err.exitCode).toBe(1);
  });

  test('unknown ETCD_ variables give warnings; ETCDCTL_ and known extras do not', () => {
    const c = parseConfig([], {
      ETCD_FOO: '1',
      ETCDCTL_API: '3',
      ETCDCTL_ENDPOINTS: 'http://x:1',
      ETCD_UNSUPPORTED_ARCH: 'arm64',
      PATH: '/bin',
    });
    expect(c.warnings).toEqual(['unrecognized environment variable ETCD_FOO=1']);
  });

  test('ETCD_VERSION is refused with a warning', () => {
    const c = parseConfig([], { ETCD_VERSION: 'true' });
    expect(c.action).toBe('run');
    expect(c.warnings).toEqual(['cannot set special environment variable ETCD_VERSION=true']);
  });

  test('a variable counts as set for the advertise-client-urls rule', () => {
    expect(configError([], { ETCD_LISTEN_CLIENT_URLS: 'http://127.0.0.1:1' }).message).toBe(
      '--advertise-client-urls is required when --listen-client-urls is set explicitly',
    );
  });

  test('boolean variables use Go syntax', () => {
    expect(parseConfig([], { ETCD_PRE_VOTE: 'false' }).preVote).toBe(false);
    expect(parseConfig([], { ETCD_PRE_VOTE: '0' }).preVote).toBe(false);
    expect(configError([], { ETCD_PRE_VOTE: 'no' }).message).toMatch(/^invalid value "no" for ETCD_PRE_VOTE: /);
  });
});

describe('names, data dir and the initial cluster', () => {
  test('the data dir defaults from the name', () => {
    expect(cfg('--name=infra1').dataDir).toBe('infra1.etcd');
    expect(cfg('--name=infra1', '--data-dir=').dataDir).toBe('infra1.etcd');
    expect(cfg('--name=infra1', '--data-dir=/x').dataDir).toBe('/x');
  });

  test('changing only the name re-derives the initial cluster from the advertised peer URLs', () => {
    const c = cfg(
      '--name=infra1',
      '--initial-advertise-peer-urls=http://127.0.0.2:2380,http://127.0.0.1:2380',
      '--listen-peer-urls=http://127.0.0.1:2380',
    );
    expect(c.initialClusterText).toBe('infra1=http://127.0.0.1:2380,infra1=http://127.0.0.2:2380');
    expect(c.initialCluster).toEqual([{ name: 'infra1', peerUrls: ['http://127.0.0.1:2380', 'http://127.0.0.2:2380'] }]);
  });

  test('the rule compares the value, so an explicit default is also re-derived (as in etcd)', () => {
    expect(cfg('--name=x', '--initial-cluster=default=http://localhost:2380').initialClusterText).toBe('x=http://localhost:2380');
  });

  test('an explicit initial cluster is kept', () => {
    const c = cfg('--name=x', '--initial-cluster=x=http://10.0.0.1:2380,y=http://10.0.0.2:2380');
    expect(c.initialCluster).toEqual([
      { name: 'x', peerUrls: ['http://10.0.0.1:2380'] },
      { name: 'y', peerUrls: ['http://10.0.0.2:2380'] },
    ]);
  });

  test('with the default name the initial cluster is not re-derived', () => {
    expect(cfg('--initial-advertise-peer-urls=http://127.0.0.1:2390').initialClusterText).toBe('default=http://localhost:2380');
  });

  test('parseInitialCluster merges names, sorts, and skips empty entries', () => {
    expect(parseInitialCluster('b=http://h:2,a=http://h:3,,b=http://h:1,b=http://h:1')).toEqual([
      { name: 'a', peerUrls: ['http://h:3'] },
      { name: 'b', peerUrls: ['http://h:1', 'http://h:2'] },
    ]);
    expect(parseInitialCluster('')).toEqual([]);
    expect(parseInitialCluster('my%20node=http://h:1')).toEqual([{ name: 'my node', peerUrls: ['http://h:1'] }]);
  });

  test('formatInitialCluster is the inverse of parseInitialCluster on normalised input', () => {
    const text = 'a=http://h:1,a=http://h:2,b=http://[::1]:3';
    expect(formatInitialCluster(parseInitialCluster(text))).toBe(text);
  });

  test.each([
    ['foo', 'invalid --initial-cluster "foo": entry "foo" is not of the form name=url'],
    ['a=b', 'invalid --initial-cluster "a=b": URL scheme must be http or https: b'],
    ['a=http://localhost', 'invalid --initial-cluster "a=http://localhost": URL address does not have the form "host:port": http://localhost'],
    ['=http://h:1', 'invalid --initial-cluster "=http://h:1": entry "=http://h:1" has an empty member name'],
    ['a=http://h:1/p', 'invalid --initial-cluster "a=http://h:1/p": URL must not contain a path: http://h:1/p'],
  ])('malformed initial cluster %s', (value, message) => {
    expect(configError([`--initial-cluster=${value}`]).message).toBe(message);
  });

  test('initial-cluster-state accepts only new and existing', () => {
    expect(cfg('--initial-cluster-state=existing').initialClusterState).toBe('existing');
    const err = configError(['--initial-cluster-state=x']);
    expect(err.message).toBe('invalid value "x" for flag -initial-cluster-state: valid values are "new", "existing"');
    expect(err.exitCode).toBe(2);
  });
});

describe('verifyBootstrapCluster', () => {
  test('accepts the defaults and a consistent cluster', () => {
    expect(() => verifyBootstrapCluster(cfg())).not.toThrow();
    const c = cfg(
      '--name=b',
      '--initial-advertise-peer-urls=http://127.0.0.1:2381',
      '--initial-cluster=a=http://127.0.0.1:2380,b=http://127.0.0.1:2381',
    );
    expect(() => verifyBootstrapCluster(c)).not.toThrow();
  });

  test('localhost and 127.0.0.1 are the same host', () => {
    const c = cfg('--initial-advertise-peer-urls=http://127.0.0.1:2380');
    expect(() => verifyBootstrapCluster(c)).not.toThrow();
  });

  test('duplicate URLs', () => {
    const c = cfg('--initial-cluster=default=http://localhost:2380,a=http://localhost:2380');
    expect(() => verifyBootstrapCluster(c)).toThrow(
      new ConfigError('initial cluster a=http://localhost:2380,default=http://localhost:2380 has duplicate url'),
    );
  });

  test('missing local name', () => {
    const c = cfg('--initial-cluster=a=http://localhost:2380');
    expect(() => verifyBootstrapCluster(c)).toThrow('couldn\'t find local name "default" in the initial cluster configuration');
  });

  test('URLs in the cluster but not advertised', () => {
    const c = cfg('--initial-advertise-peer-urls=http://10.0.0.1:2390');
    expect(() => verifyBootstrapCluster(c)).toThrow(
      '--initial-cluster has default=http://localhost:2380 but missing from --initial-advertise-peer-urls=http://10.0.0.1:2390',
    );
  });

  test('URLs advertised but not in the cluster', () => {
    const c = cfg('--initial-advertise-peer-urls=http://localhost:2380,http://10.0.0.1:2380');
    expect(() => verifyBootstrapCluster(c)).toThrow(
      '--initial-advertise-peer-urls has http://10.0.0.1:2380 but missing from --initial-cluster=default=http://localhost:2380',
    );
  });
});

describe('URLs', () => {
  test('lists are split, normalised, sorted and de-duplicated', () => {
    const c = cfg(
      '--listen-client-urls=http://127.0.0.2:2379, HTTP://127.0.0.1:2379,http://127.0.0.2:2379',
      '--advertise-client-urls=http://b:1,http://a:1',
    );
    expect(c.listenClientUrls).toEqual(['http://127.0.0.1:2379', 'http://127.0.0.2:2379']);
    expect(c.listenClient).toEqual([
      { host: '127.0.0.1', port: 2379 },
      { host: '127.0.0.2', port: 2379 },
    ]);
    expect(c.advertiseClientUrls).toEqual(['http://a:1', 'http://b:1']);
  });

  test('IPv6 and wildcard listen addresses', () => {
    const c = cfg('--listen-peer-urls=http://[::1]:2380,http://0.0.0.0:2381');
    expect(c.listenPeerUrls).toEqual(['http://0.0.0.0:2381', 'http://[::1]:2380']);
    expect(c.listenPeer).toEqual([
      { host: '0.0.0.0', port: 2381 },
      { host: '::1', port: 2380 },
    ]);
  });

  test('metrics URLs', () => {
    expect(cfg('--listen-metrics-urls=http://127.0.0.1:2381').listenMetrics).toEqual([{ host: '127.0.0.1', port: 2381 }]);
  });

  test.each([
    ['foo', 'URL scheme must be http or https: foo'],
    ['ftp://localhost:1', 'URL scheme must be http or https: ftp://localhost:1'],
    ['unix://localhost:1', 'unix socket URLs are not supported: unix://localhost:1'],
    ['http://localhost', 'URL address does not have the form "host:port": http://localhost'],
    ['http://localhost:abc', 'invalid port ":abc" in URL: http://localhost:abc'],
    ['http://localhost:', 'invalid port ":" in URL: http://localhost:'],
    ['http://localhost:70000', 'invalid port ":70000" in URL: http://localhost:70000'],
    ['http://localhost:2379/foo', 'URL must not contain a path: http://localhost:2379/foo'],
    ['http://localhost:2379/', 'URL must not contain a path: http://localhost:2379/'],
    ['http://u@localhost:2379', 'URL must not contain user information: http://u@localhost:2379'],
    ['http://::1:2379', 'IPv6 addresses in URLs must be in brackets: http://::1:2379'],
    ['http://[zz]:2379', 'invalid IPv6 address in URL: http://[zz]:2379'],
    ['', 'no URLs given'],
    ['http://localhost:1,,http://localhost:2', 'empty URL in list "http://localhost:1,,http://localhost:2"'],
  ])('--listen-client-urls=%j is rejected', (value, why) => {
    const err = configError([`--listen-client-urls=${value}`, '--advertise-client-urls=http://x:1']);
    expect(err.message).toBe(`invalid value ${JSON.stringify(value)} for flag -listen-client-urls: ${why}`);
    expect(err.exitCode).toBe(2);
  });

  test.each([['listen-client-urls'], ['listen-peer-urls'], ['listen-metrics-urls']])('https in --%s is not supported yet', (name) => {
    const err = configError([`--${name}=https://127.0.0.1:2379`, '--advertise-client-urls=http://x:1']);
    expect(err.message).toBe(`--${name}: TLS is not supported yet, so https://127.0.0.1:2379 cannot be served; use http://`);
  });

  test('https advertise URLs give a warning', () => {
    expect(cfg('--advertise-client-urls=https://x:1').warnings).toEqual([
      '--advertise-client-urls advertises https://x:1, but TLS is not supported yet',
    ]);
  });

  test('listen URLs must bind an IP address or localhost', () => {
    expect(configError(['--listen-peer-urls=http://foo.example:2380']).message).toBe(
      'expected IP in URL for binding (http://foo.example:2380)',
    );
    expect(configError(['--listen-client-urls=http://:2379', '--advertise-client-urls=http://x:1']).message).toBe(
      'expected IP in URL for binding (http://:2379)',
    );
  });

  test('advertise URLs need a host', () => {
    expect(configError(['--advertise-client-urls=http://:2379']).message).toBe(
      '--advertise-client-urls "http://:2379" must be "host:port" (missing host)',
    );
  });

  test('listen-client-urls without advertise-client-urls', () => {
    expect(configError(['--listen-client-urls=http://127.0.0.1:2379']).message).toBe(
      '--advertise-client-urls is required when --listen-client-urls is set explicitly',
    );
  });

  test('parseUrl returns parts', () => {
    expect(parseUrl(' http://Example.com:80 ')).toEqual({ scheme: 'http', host: 'Example.com', port: 80, text: 'http://Example.com:80' });
    expect(parseUrl('https://[fe80::1]:0')).toEqual({ scheme: 'https', host: 'fe80::1', port: 0, text: 'https://[fe80::1]:0' });
  });

  test('bindHostFor maps localhost only', () => {
    expect(bindHostFor('localhost')).toBe('127.0.0.1');
    expect(bindHostFor('')).toBe('');
    expect(bindHostFor('0.0.0.0')).toBe('0.0.0.0');
    expect(bindHostFor('::1')).toBe('::1');
    expect(bindHostFor('10.1.2.3')).toBe('10.1.2.3');
  });
});

describe('timing validation and derived values', () => {
  test('election timeout at least 5 heartbeats', () => {
    const err = configError(['--election-timeout=100']);
    expect(err.message).toBe('--election-timeout[100ms] should be at least as 5 times as --heartbeat-interval[100ms]');
    expect(err.exitCode).toBe(1);
    expect(cfg('--election-timeout=500').electionTicks).toBe(5);
  });

  test('election timeout at most 50000 ms', () => {
    expect(configError(['--election-timeout=60000', '--heartbeat-interval=1000']).message).toBe(
      '--election-timeout[60000ms] is too long, and should be set less than 50000ms',
    );
    expect(cfg('--election-timeout=50000', '--heartbeat-interval=1000').electionTimeoutMs).toBe(50000);
  });

  test('zero intervals', () => {
    expect(configError(['--heartbeat-interval=0']).message).toBe('--heartbeat-interval must be >0 (set to 0ms)');
    expect(configError(['--election-timeout=0']).message).toBe('--election-timeout must be >0 (set to 0ms)');
  });

  test('negative values are not unsigned integers', () => {
    expect(configError(['--heartbeat-interval=-1']).message).toMatch(/^invalid value "-1" for flag -heartbeat-interval: /);
  });

  test('derived values follow etcd formulas', () => {
    const c = cfg('--heartbeat-interval=300', '--election-timeout=3100');
    expect(c.electionTicks).toBe(10);
    // 5 s + 2 × ticks × tick length (not the raw election timeout).
    expect(c.requestTimeoutMs).toBe(5000 + 2 * 10 * 300);
    // floor(3 × 10 / 2) = 15 ticks × 300 ms = 4.5 s → 5 s.
    expect(c.minLeaseTtlSeconds).toBe(5);
    const d = cfg('--heartbeat-interval=100', '--election-timeout=1500');
    expect(d.minLeaseTtlSeconds).toBe(3); // 22 ticks × 100 ms = 2.2 s → 3 s
    expect(d.requestTimeoutMs).toBe(8000);
  });

  test('durations and renamed flags', () => {
    expect(cfg('--experimental-watch-progress-notify-interval=5s').progressNotifyIntervalMs).toBe(5000);
    expect(cfg('--watch-progress-notify-interval=100ms').progressNotifyIntervalMs).toBe(100);
    const both = cfg('--watch-progress-notify-interval=1s', '--experimental-watch-progress-notify-interval=2s');
    expect(both.progressNotifyIntervalMs).toBe(2000);
    expect(both.warnings).toEqual([
      'both --experimental-watch-progress-notify-interval and --watch-progress-notify-interval are set; using --experimental-watch-progress-notify-interval',
    ]);
    expect(cfg('--experimental-max-learners=3').maxLearners).toBe(3);
    expect(cfg('--max-learners=2').maxLearners).toBe(2);
    expect(cfg('--grpc-keepalive-min-time=1m', '--grpc-keepalive-interval=0', '--grpc-keepalive-timeout=1.5s')).toMatchObject({
      grpcKeepaliveMinTimeMs: 60000,
      grpcKeepaliveIntervalMs: 0,
      grpcKeepaliveTimeoutMs: 1500,
    });
  });

  test('duration flag errors', () => {
    expect(configError(['--grpc-keepalive-min-time=5']).message).toBe(
      'invalid value "5" for flag -grpc-keepalive-min-time: time: missing unit in duration "5"',
    );
    expect(configError(['--grpc-keepalive-timeout=-1s']).message).toBe(
      'invalid value "-1s" for flag -grpc-keepalive-timeout: duration must not be negative',
    );
  });
});

describe('sizes and integers', () => {
  test('Go integer syntax', () => {
    expect(cfg('--max-request-bytes=0x10').maxRequestBytes).toBe(16);
    expect(cfg('--max-request-bytes=017').maxRequestBytes).toBe(15);
    expect(cfg('--max-request-bytes=0o17').maxRequestBytes).toBe(15);
    expect(cfg('--max-request-bytes=0b101').maxRequestBytes).toBe(5);
    expect(cfg('--max-request-bytes=0x_1_0').maxRequestBytes).toBe(16);
    expect(cfg('--max-txn-ops=0').maxTxnOps).toBe(0);
    expect(cfg('--max-request-bytes=1_000').maxRequestBytes).toBe(1000);
    expect(cfg('--max-request-bytes=0_17').maxRequestBytes).toBe(15);
    expect(cfg('--quota-backend-bytes=-0x_10').quotaBackendBytes).toBe(-16);
  });

  test.each([['1e3'], ['-1'], ['+1'], ['_1'], ['1_'], ['1__0'], ['0x'], ['0x_'], ['08'], ['0xg'], ['1.5'], [''], ['99999999999999999999']])(
    'max-request-bytes=%j is rejected',
    (value) => {
      expect(configError([`--max-request-bytes=${value}`]).message).toMatch(
        new RegExp(`^invalid value ${JSON.stringify(value).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} for flag -max-request-bytes: `),
      );
    },
  );

  test('quota: 0 means 2 GiB, negative means none, large gives a warning', () => {
    expect(cfg('--quota-backend-bytes=-5').quotaBackendBytesEffective).toBeNull();
    expect(cfg('--quota-backend-bytes=-5').quotaBackendBytes).toBe(-5);
    expect(cfg('--quota-backend-bytes=1024').quotaBackendBytesEffective).toBe(1024);
    expect(cfg('--quota-backend-bytes=9000000000').warnings).toEqual([
      'backend quota 9000000000 exceeds maximum recommended quota 8589934592',
    ]);
  });

  test('max-request-bytes above 10 MiB gives a warning', () => {
    expect(cfg('--max-request-bytes=20000000').warnings).toEqual(['MaxRequestBytes 20000000 exceeds maximum recommended size 10485760']);
  });

  test('snapshot-count 0 means the default', () => {
    const c = cfg('--snapshot-count=0');
    expect(c.snapshotCount).toBe(0);
    expect(c.snapshotCountEffective).toBe(10000);
    expect(cfg('--snapshot-count=5').snapshotCountEffective).toBe(5);
  });
});

describe('auto compaction', () => {
  test.each([
    [['--auto-compaction-retention=1'], { mode: 'periodic', retentionMs: 3_600_000 }],
    [['--auto-compaction-retention=30m'], { mode: 'periodic', retentionMs: 1_800_000 }],
    [['--auto-compaction-mode=revision', '--auto-compaction-retention=1000'], { mode: 'revision', retentionRevisions: 1000 }],
    [['--auto-compaction-mode='], { mode: 'periodic', retentionMs: 0 }],
  ])('%j', (argv, expected) => {
    expect(cfg(...argv).autoCompaction).toEqual(expected);
  });

  test.each([
    [['--auto-compaction-mode=foo'], 'unknown auto-compaction-mode "foo"'],
    [['--auto-compaction-retention=abc'], 'error parsing CompactionRetention: time: invalid duration "abc"'],
    [['--auto-compaction-retention=-1'], 'error parsing CompactionRetention: time: missing unit in duration "-1"'],
    [['--auto-compaction-retention=-1h'], 'error parsing CompactionRetention: negative retention "-1h"'],
    [
      ['--auto-compaction-mode=revision', '--auto-compaction-retention=1h'],
      'error parsing CompactionRetention: revision retention must be a non-negative integer, got "1h"',
    ],
  ])('%j is rejected', (argv, message) => {
    expect(configError(argv).message).toBe(message);
  });
});

describe('logging flags', () => {
  test('levels', () => {
    for (const level of ['debug', 'info', 'warn', 'error', 'panic', 'fatal'] as const) {
      expect(cfg(`--log-level=${level}`).logLevel).toBe(level);
    }
    expect(configError(['--log-level=verbose']).message).toBe(
      'invalid value "verbose" for flag -log-level: valid values are "debug", "info", "warn", "error", "panic", "fatal"',
    );
  });

  test('logger', () => {
    expect(cfg('--logger=zap').warnings).toEqual([]);
    const c = cfg('--logger=capnslog');
    expect(c.logger).toBe('capnslog');
    expect(c.warnings).toEqual(["Deprecated '--logger=capnslog' flag is set; use '--logger=zap' flag instead"]);
    expect(configError(['--logger=foo']).message).toBe('unknown logger option "foo"');
  });

  test('outputs', () => {
    expect(cfg('--log-outputs=stdout,/tmp/a.log,stdout').logOutputs).toEqual(['/tmp/a.log', 'stdout']);
    expect(configError(['--log-outputs=default,stderr']).message).toBe('multi logoutput for "default" is not supported yet');
    expect(configError(['--log-outputs=stderr,']).message).toBe('invalid value "stderr," for flag -log-outputs: empty item in list');
  });

  test('deprecated --debug forces debug level with warnings', () => {
    const c = cfg('--debug');
    expect(c.debug).toBe(true);
    expect(c.logLevel).toBe('debug');
    expect(c.warnings).toEqual([
      "Deprecated '--debug' flag is set to true (use '--log-level=debug' instead",
      "Deprecated '--debug' flag is set to true with inconsistent '--log-level=info' flag",
    ]);
    expect(cfg('--debug', '--log-level=debug').warnings).toEqual([
      "Deprecated '--debug' flag is set to true (use '--log-level=debug' instead",
    ]);
  });
});

describe('other flags', () => {
  test('plain values', () => {
    const c = cfg(
      '--wal-dir=/wal',
      '--initial-cluster-token=tok',
      '--force-new-cluster',
      '--experimental-enable-lease-checkpoint',
      '--enable-pprof',
      '--initial-election-tick-advance=false',
      '--max-txn-ops=1000',
    );
    expect(c).toMatchObject({
      walDir: '/wal',
      initialClusterToken: 'tok',
      forceNewCluster: true,
      experimentalEnableLeaseCheckpoint: true,
      enablePprof: true,
      initialElectionTickAdvance: false,
      maxTxnOps: 1000,
    });
    // Lease checkpointing is not built: the flag is taken, with a warning.
    expect(c.warnings).toEqual(['flag --experimental-enable-lease-checkpoint is accepted for compatibility and has no effect']);
  });

  test('enable-v2 is accepted with a warning', () => {
    const c = cfg('--enable-v2');
    expect(c.enableV2).toBe(true);
    expect(c.warnings).toEqual(['the v2 API is not supported; --enable-v2 is ignored']);
  });

  test('TLS flags are stored with a warning', () => {
    const c = cfg('--cert-file=/c.pem', '--key-file=/k.pem', '--client-cert-auth', '--peer-trusted-ca-file=/ca.pem', '--peer-cert-allowed-cn=etcd');
    expect(c.clientTls).toMatchObject({ certFile: '/c.pem', keyFile: '/k.pem', clientCertAuth: true });
    expect(c.peerTls).toMatchObject({ trustedCaFile: '/ca.pem', allowedCn: 'etcd' });
    expect(c.warnings).toEqual([
      'TLS is not supported yet; ignoring --cert-file, --key-file, --client-cert-auth, --peer-trusted-ca-file, --peer-cert-allowed-cn',
    ]);
    expect(cfg('--client-cert-auth=false').warnings).toEqual([]);
  });
});

describe('parseGoDuration', () => {
  test.each([
    ['0', 0],
    ['-0', 0],
    ['0s', 0],
    ['5s', 5000],
    ['10m', 600000],
    ['1h30m', 5_400_000],
    ['2h45m30.5s', 9_930_500],
    ['500ms', 500],
    ['1.5h', 5_400_000],
    ['.5s', 500],
    ['1.s', 1000],
    ['1500us', 1.5],
    ['1500\u00b5s', 1.5],
    ['1500\u03bcs', 1.5],
    ['2000000ns', 2],
    ['-1.5m', -90000],
    ['+3s', 3000],
    ['1h1h', 7_200_000],
  ])('%s = %d ms', (text, ms) => {
    expect(parseGoDuration(text)).toBe(ms);
  });

  test.each([
    ['', 'time: invalid duration ""'],
    ['abc', 'time: invalid duration "abc"'],
    ['.', 'time: invalid duration "."'],
    ['-', 'time: invalid duration "-"'],
    ['10', 'time: missing unit in duration "10"'],
    ['1h5', 'time: missing unit in duration "1h5"'],
    ['10x', 'time: unknown unit "x" in duration "10x"'],
    ['1 s', 'time: unknown unit " s" in duration "1 s"'],
    ['3000000h', 'time: invalid duration "3000000h"'],
  ])('%j is rejected', (text, message) => {
    expect(() => parseGoDuration(text)).toThrow(message);
  });

  test('h/m/s/ms compositions parse to their sum', () => {
    fc.assert(
      fc.property(
        fc.nat(1000),
        fc.nat(59),
        fc.nat(59),
        fc.nat(999),
        (h, m, s, ms) => parseGoDuration(`${h}h${m}m${s}s${ms}ms`) === ((h * 60 + m) * 60 + s) * 1000 + ms,
      ),
    );
  });
});

describe('help and version text', () => {
  test('describeFlags lists every flag with its environment variable', () => {
    const text = describeFlags();
    for (const name of [
      'name',
      'data-dir',
      'wal-dir',
      'listen-client-urls',
      'advertise-client-urls',
      'listen-peer-urls',
      'initial-advertise-peer-urls',
      'initial-cluster',
      'initial-cluster-state',
      'initial-cluster-token',
      'max-request-bytes',
      'max-txn-ops',
      'quota-backend-bytes',
      'snapshot-count',
      'heartbeat-interval',
      'election-timeout',
      'log-level',
      'logger',
      'log-outputs',
      'listen-metrics-urls',
      'enable-pprof',
      'auto-compaction-mode',
      'auto-compaction-retention',
      'experimental-watch-progress-notify-interval',
      'watch-progress-notify-interval',
      'max-learners',
      'experimental-enable-lease-checkpoint',
      'grpc-keepalive-min-time',
      'grpc-keepalive-interval',
      'grpc-keepalive-timeout',
      'strict-reconfig-check',
      'pre-vote',
      'force-new-cluster',
      'enable-v2',
      'client-cert-auth',
      'cert-file',
      'key-file',
      'trusted-ca-file',
      'peer-cert-file',
      'peer-key-file',
      'peer-trusted-ca-file',
      'peer-client-cert-auth',
      'debug',
    ]) {
      expect(text).toMatch(new RegExp(`^  --${name} '[^']*'  \\[env ${envNameForFlag(name)}\\]$`, 'm'));
    }
    expect(text).toMatch(/^  --version 'false'$/m);
    expect(text).toContain('--cluster-active-size');
  });

  test('every flag in the help is accepted by the parser', () => {
    const names = [...describeFlags().matchAll(/^ {2}--([a-z0-9-]+) '/gm)].map((m) => m[1] ?? '');
    expect(names.length).toBeGreaterThan(40);
    for (const name of names) {
      if (name === 'version') continue;
      // Parsing the flag with its own default must not report it as unknown.
      const line = describeFlags().split('\n').find((l) => l.startsWith(`  --${name} '`)) ?? '';
      const shown = /'([^']*)'/.exec(line)?.[1] ?? '';
      const value = name === 'data-dir' ? 'x' : shown;
      expect(() => parseConfig([`--${name}=${value}`, ...(name === 'listen-client-urls' ? ['--advertise-client-urls=http://x:1'] : [])], {})).not.toThrow();
    }
  });

  test('helpText includes usage and the flags', () => {
    expect(helpText()).toContain('etcd --version');
    expect(helpText()).toContain(describeFlags());
  });

  test('VERSION_TEXT starts like etcd', () => {
    expect(VERSION_TEXT).toMatch(/^etcd Version: 3\.\d+\.\d+\n/);
  });
});
