import { parseBenchmarkOutput, parseCheckPerf, parseDatascale } from '../../scripts/bench/parse';
import {
  CHECK_PERF_S_PASS, CHECK_PERF_XL_FAIL, DATASCALE_S_PASS, PUT_ALL_FAILED, PUT_PRECISE, RANGE_DEFAULT,
} from './bench-parse-fixtures';

describe("parseBenchmarkOutput (etcd's benchmark tool)", () => {
  test('reads the summary and every percentile of a --precise run, in ms', () => {
    const s = parseBenchmarkOutput(PUT_PRECISE);
    expect(s.requestsPerSec).toBeCloseTo(854.8941082634394, 9);
    expect(s.totalMs).toBeCloseTo(233.947103, 6);
    expect(s.slowestMs).toBeCloseTo(16.29322, 6);
    expect(s.fastestMs).toBeCloseTo(0.456078, 6);
    expect(s.averageMs).toBeCloseTo(1.1621256950000002, 9);
    expect(s.stddevMs).toBeCloseTo(1.7122933409468605, 9);
    expect(Object.keys(s.percentilesMs)).toEqual(['10', '25', '50', '75', '90', '95', '99']);
    expect(s.percentilesMs['50']).toBeCloseTo(0.730485, 6);
    expect(s.percentilesMs['99']).toBeCloseTo(12.910035, 6);
    expect(s.errors).toEqual({});
  });

  test('reads the default 4-decimal output, with the range banner and a progress bar before it', () => {
    const s = parseBenchmarkOutput(RANGE_DEFAULT);
    expect(s.requestsPerSec).toBeCloseTo(3865.7348, 4);
    expect(s.totalMs).toBeCloseTo(25.9, 6);
    expect(s.percentilesMs['50']).toBeCloseTo(0.2, 6);
    expect(s.percentilesMs['99']).toBeCloseTo(1.1, 6);
    expect(s.percentilesMs['99.9']).toBeUndefined();
  });

  test('a run in which every request failed has no rate but reports the error distribution', () => {
    const s = parseBenchmarkOutput(PUT_ALL_FAILED);
    expect(s.requestsPerSec).toBe(0);
    expect(s.errors).toEqual({ 'etcdserver: request is too large': 20 });
    expect(s.percentilesMs).toEqual({});
  });

  test('percentiles do not leak from the histogram and errors are summed per message', () => {
    const text = PUT_PRECISE.replace('\nResponse time histogram:', '\nError distribution:\n  [3]\tetcdserver: too many requests\n  [2]\tetcdserver: too many requests\n\nResponse time histogram:');
    const s = parseBenchmarkOutput(text);
    expect(s.errors).toEqual({ 'etcdserver: too many requests': 5 });
    expect(s.requestsPerSec).toBeCloseTo(854.8941082634394, 9);
  });

  test('output without a summary is an error', () => {
    expect(() => parseBenchmarkOutput('panic: rpc error: code = Unavailable\n')).toThrow(/no summary/);
    expect(() => parseBenchmarkOutput(PUT_PRECISE.slice(0, PUT_PRECISE.indexOf('Summary:')))).toThrow();
  });
});

describe('parseCheckPerf', () => {
  test('PASS, with the throughput line glued to the last progress bar state', () => {
    expect(CHECK_PERF_S_PASS).toMatch(/%PASS: Throughput is 148 writes\/s/);
    const r = parseCheckPerf(CHECK_PERF_S_PASS);
    expect(r.pass).toBe(true);
    expect(r.writesPerSec).toBe(148);
    expect(r.slowestSec).toBeCloseTo(0.167226, 6);
    expect(r.stddevSec).toBeCloseTo(0.013763, 6);
    expect(r.lines).toEqual(['PASS: Throughput is 148 writes/s', 'PASS: Slowest request took 0.167226s', 'PASS: Stddev is 0.013763s', 'PASS']);
  });

  test('FAIL, with the throughput it did reach', () => {
    const r = parseCheckPerf(CHECK_PERF_XL_FAIL);
    expect(r.pass).toBe(false);
    expect(r.writesPerSec).toBe(3284);
    expect(r.slowestSec).toBeCloseTo(1.415774, 6);
    expect(r.stddevSec).toBeCloseTo(0.16172, 6);
    expect(r.lines[r.lines.length - 1]).toBe('FAIL');
    expect(r.errorLines).toEqual([]);
  });

  test('no verdict is an error', () => {
    expect(() => parseCheckPerf('Error: context deadline exceeded\n')).toThrow(/no PASS or FAIL/);
  });
});

describe('parseDatascale', () => {
  test('PASS gives the memory etcdctl computed from /metrics', () => {
    expect(parseDatascale(DATASCALE_S_PASS)).toEqual({ pass: true, memoryMb: 36.93, failure: null });
  });

  test('a server without /metrics fails before loading anything', () => {
    const r = parseDatascale('FAIL: Could not read process_resident_memory_bytes before the put operations.\n');
    expect(r.pass).toBe(false);
    expect(r.memoryMb).toBeNull();
    expect(r.failure).toMatch(/before the put operations/);
  });
});
