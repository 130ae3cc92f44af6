import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createLogger,
  createMemorySink,
  encodeFieldValue,
  isLogLevel,
  LOG_LEVELS,
  nullLogger,
  type LogLevel,
  type Logger,
} from '../../src/server/logger';

const FIXED = new Date('2026-11-25T02:40:00.123Z');

function memoryLogger(level: LogLevel, name?: string): { log: Logger; sink: ReturnType<typeof createMemorySink> } {
  const sink = createMemorySink();
  const log = createLogger({ level, sinks: [sink], now: () => FIXED, name });
  return { log, sink };
}

function logAll(log: Logger): void {
  log.debug('d');
  log.info('i');
  log.warn('w');
  log.error('e');
}

describe('level filtering', () => {
  test.each([
    ['debug', ['d', 'i', 'w', 'e']],
    ['info', ['i', 'w', 'e']],
    ['warn', ['w', 'e']],
    ['error', ['e']],
    ['panic', []],
    ['fatal', []],
  ] as const)('level %s writes %j', (level, expected) => {
    const { log, sink } = memoryLogger(level);
    logAll(log);
    expect(sink.records().map((r) => r['msg'])).toEqual(expected);
    expect(sink.records().map((r) => r['level'])).toEqual(
      expected.map((m) => ({ d: 'debug', i: 'info', w: 'warn', e: 'error' })[m]),
    );
  });

  test('enabled() agrees with filtering', () => {
    const { log } = memoryLogger('warn');
    expect(LOG_LEVELS.map((l) => log.enabled(l))).toEqual([false, false, true, true, true, true]);
  });

  test('children share the level', () => {
    const { log, sink } = memoryLogger('warn');
    logAll(log.child({ a: 1 }));
    expect(sink.records().map((r) => r['msg'])).toEqual(['w', 'e']);
  });

  test('isLogLevel', () => {
    expect(LOG_LEVELS.every(isLogLevel)).toBe(true);
    expect(isLogLevel('verbose')).toBe(false);
    expect(isLogLevel('toString')).toBe(false);
  });
});

describe('record shape', () => {
  test('one JSON object per line in zap key order', () => {
    const { log, sink } = memoryLogger('info');
    log.info('hello', { 'member-id': 5n, n: 3 });
    expect(sink.lines).toEqual(['{"level":"info","ts":"2026-11-25T02:40:00.123Z","msg":"hello","member-id":"5","n":3}']);
  });

  test('name and caller come before msg', () => {
    const { log, sink } = memoryLogger('info', 'raft');
    log.child({ caller: 'raft/node.ts' }).warn('slow', { took: '2s' });
    const line = sink.lines[0] ?? '';
    expect(Object.keys(JSON.parse(line) as object)).toEqual(['level', 'ts', 'logger', 'caller', 'msg', 'took']);
    expect(JSON.parse(line)).toEqual({ level: 'warn', ts: FIXED.toISOString(), logger: 'raft', caller: 'raft/node.ts', msg: 'slow', took: '2s' });
  });

  test('the sink receives newline-terminated lines', () => {
    const written: string[] = [];
    const log = createLogger({ level: 'info', sinks: [{ write: (l) => written.push(l) }], now: () => FIXED });
    log.info('a');
    log.info('b');
    expect(written).toHaveLength(2);
    for (const line of written) {
      expect(line.endsWith('\n')).toBe(true);
      expect(line.slice(0, -1)).not.toContain('\n');
    }
  });

  test('messages and fields with newlines stay on one line', () => {
    const { log, sink } = memoryLogger('info');
    log.info('two\nlines', { v: 'a\nb' });
    expect(sink.lines).toHaveLength(1);
    expect(sink.records()[0]).toMatchObject({ msg: 'two\nlines', v: 'a\nb' });
  });

  test('ts comes from the injected clock on every record', () => {
    let t = 0;
    const sink = createMemorySink();
    const log = createLogger({ level: 'info', sinks: [sink], now: () => new Date(Date.UTC(2026, 0, 1) + t++ * 1000) });
    log.info('a');
    log.info('b');
    expect(sink.records().map((r) => r['ts'])).toEqual(['2026-01-01T00:00:00.000Z', '2026-01-01T00:00:01.000Z']);
  });

  test('child fields are merged, later values win, the parent is unchanged', () => {
    const { log, sink } = memoryLogger('info');
    const a = log.child({ a: 1, b: 1 });
    const b = a.child({ b: 2, c: 2 });
    b.info('x', { c: 3, d: 3 });
    a.info('y');
    log.info('z');
    expect(sink.records()).toEqual([
      { level: 'info', ts: FIXED.toISOString(), msg: 'x', a: 1, b: 2, c: 3, d: 3 },
      { level: 'info', ts: FIXED.toISOString(), msg: 'y', a: 1, b: 1 },
      { level: 'info', ts: FIXED.toISOString(), msg: 'z' },
    ]);
  });

  test('an undefined per-call field removes a bound one', () => {
    const { log, sink } = memoryLogger('info');
    log.child({ a: 1 }).info('x', { a: undefined, b: undefined });
    expect(sink.records()[0]).toEqual({ level: 'info', ts: FIXED.toISOString(), msg: 'x' });
  });

  test('fields named like record keys do not clobber them', () => {
    const { log, sink } = memoryLogger('info');
    log.info('real', { msg: 'fake', level: 'fatal', ts: 1, logger: 'x' });
    expect(sink.records()[0]).toEqual({
      level: 'info',
      ts: FIXED.toISOString(),
      msg: 'real',
      msg_: 'fake',
      level_: 'fatal',
      ts_: 1,
      logger_: 'x',
    });
  });

  test('a non-string caller is an ordinary field', () => {
    const { log, sink } = memoryLogger('info');
    log.info('m', { caller: 7 });
    expect(sink.records()[0]).toEqual({ level: 'info', ts: FIXED.toISOString(), msg: 'm', caller_: 7 });
  });

  test('a field that cannot be encoded still yields a record', () => {
    const { log, sink } = memoryLogger('info');
    const bad = {
      get boom(): string {
        throw new Error('no');
      },
    };
    expect(() => log.info('m', { bad })).not.toThrow();
    expect(sink.records()[0]).toMatchObject({ level: 'info', msg: 'm', logError: 'fields not encodable: no' });
  });

  test('writes to every sink', () => {
    const s1 = createMemorySink();
    const s2 = createMemorySink();
    createLogger({ level: 'info', sinks: [s1, s2] }).info('x');
    expect(s1.lines).toHaveLength(1);
    expect(s2.lines).toEqual(s1.lines);
  });
});

describe('field encoding', () => {
  test('bigint as decimal string, beyond 2^53', () => {
    expect(encodeFieldValue(18446744073709551615n)).toBe('18446744073709551615');
    expect(encodeFieldValue(-3n)).toBe('-3');
  });

  test('bytes: printable text as a string, otherwise base64', () => {
    expect(encodeFieldValue(new TextEncoder().encode('foo/bar'))).toBe('foo/bar');
    expect(encodeFieldValue(Buffer.from('héllo'))).toBe('héllo');
    expect(encodeFieldValue(new Uint8Array([0, 1, 2, 255]))).toBe('AAEC/w==');
    expect(encodeFieldValue(new Uint8Array([0xc3]))).toBe('ww=='); // invalid UTF-8
    expect(encodeFieldValue(new Uint8Array([0x61, 0x1b]))).toBe('YRs='); // control character
    expect(encodeFieldValue(new Uint8Array(0))).toBe('');
    const whole = new Uint8Array([0x00, 0x61, 0x62, 0x00]);
    expect(encodeFieldValue(whole.subarray(1, 3))).toBe('ab');
    expect(encodeFieldValue(new Uint8Array([0xff, 0x00, 0xfe]).subarray(1, 2))).toBe('AA==');
  });

  test('errors, dates, non-finite numbers', () => {
    expect(encodeFieldValue(new Error('disk full'))).toBe('disk full');
    expect(encodeFieldValue(FIXED)).toBe('2026-11-25T02:40:00.123Z');
    expect(encodeFieldValue(NaN)).toBe('NaN');
    expect(encodeFieldValue(-Infinity)).toBe('-Infinity');
    expect(encodeFieldValue(1.5)).toBe(1.5);
  });

  test('containers are encoded recursively', () => {
    expect(encodeFieldValue({ id: 1n, keys: [Buffer.from('a'), undefined], m: new Map([['k', 2n]]), s: new Set([3n]) })).toEqual({
      id: '1',
      keys: ['a', null],
      m: { k: '2' },
      s: ['3'],
    });
  });

  test('cycles are cut, shared objects are not', () => {
    const shared = { x: 1 };
    const cyclic: Record<string, unknown> = { shared, again: shared };
    cyclic['self'] = cyclic;
    expect(encodeFieldValue(cyclic)).toEqual({ shared: { x: 1 }, again: { x: 1 }, self: '[Circular]' });
  });

  test('encoded fields appear in the record', () => {
    const { log, sink } = memoryLogger('debug');
    log.debug('put', { key: Buffer.from('k1'), value: new Uint8Array([0xff]), lease: 7587869453158326532n, err: new Error('x') });
    expect(sink.records()[0]).toMatchObject({ key: 'k1', value: '/w==', lease: '7587869453158326532', err: 'x' });
  });
});

describe('outputs', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'logger-test-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test('a file output is appended to and closed', async () => {
    const path = join(dir, 'etcd.log');
    const first = createLogger({ level: 'info', outputs: [path], now: () => FIXED });
    first.info('one', { n: 1 });
    first.debug('dropped');
    await first.close();
    const second = createLogger({ level: 'info', outputs: [path, path], now: () => FIXED });
    second.warn('two');
    await second.close();
    second.error('after close');
    const lines = readFileSync(path, 'utf8').split('\n');
    expect(lines.pop()).toBe('');
    expect(lines.map((l) => JSON.parse(l) as Record<string, unknown>)).toEqual([
      { level: 'info', ts: FIXED.toISOString(), msg: 'one', n: 1 },
      { level: 'warn', ts: FIXED.toISOString(), msg: 'two' },
    ]);
    expect(second.enabled('error')).toBe(false);
  });

  test('stdout output writes to process.stdout', () => {
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      const log = createLogger({ level: 'info', outputs: ['stdout'], now: () => FIXED });
      log.info('to stdout');
      const calls = spy.mock.calls.map((c) => String(c[0]));
      expect(calls).toEqual([`{"level":"info","ts":"${FIXED.toISOString()}","msg":"to stdout"}\n`]);
    } finally {
      spy.mockRestore();
    }
  });

  test('"default" and "stderr" are the same single target', () => {
    const spy = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const log = createLogger({ level: 'info', outputs: ['default', 'stderr'], now: () => FIXED });
      log.info('once');
      expect(spy.mock.calls.map((c) => String(c[0]))).toEqual([`{"level":"info","ts":"${FIXED.toISOString()}","msg":"once"}\n`]);
      spy.mockClear();
      createLogger({ level: 'info' }).info('default target');
      expect(spy).toHaveBeenCalledTimes(1);
    } finally {
      spy.mockRestore();
    }
  });

  test('an unwritable file is reported once and does not throw', async () => {
    const errSpy = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const log = createLogger({ level: 'info', outputs: [join(dir, 'missing-dir', 'x.log')] });
      log.info('a');
      await new Promise((resolve) => setTimeout(resolve, 50));
      log.info('b');
      await log.close();
      const reports = errSpy.mock.calls.map((c) => String(c[0])).filter((s) => s.includes('missing-dir'));
      expect(reports).toHaveLength(1);
      expect(reports[0]).toMatch(/^log output .*x\.log failed, dropping its records: /);
    } finally {
      errSpy.mockRestore();
    }
  });
});

describe('nullLogger', () => {
  test('drops everything and is its own child', () => {
    expect(() => logAll(nullLogger)).not.toThrow();
    expect(nullLogger.child({ a: 1 })).toBe(nullLogger);
    expect(LOG_LEVELS.some((l) => nullLogger.enabled(l))).toBe(false);
  });
});
