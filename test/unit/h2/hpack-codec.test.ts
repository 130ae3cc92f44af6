/**
 * The native server's HPACK pieces: the request decoder must agree with the reference decoder
 * (src/api/hpack.ts) on every block, table size updates and errors included; the response
 * encoder's blocks must decode to the intended fields with the client's table in step, also
 * across table size changes, and its cached blocks must be the short indexed forms.
 */
import fc from 'fast-check';
import { HeaderField, HpackDecoder, HpackEncoder, HpackError } from '../../../src/api/hpack';
import { HeaderBlockDecoder, ResponseHeaderEncoder } from '../../../src/api/h2/hpack-codec';

function decodeAll(d: HeaderBlockDecoder, block: Buffer): [string, string][] {
  d.decode(block, 0, block.length, 10000);
  const out: [string, string][] = [];
  for (let i = 0; i < d.count; i++) out.push([d.names[i]!, d.values[i]!]);
  return out;
}

describe('HeaderBlockDecoder', () => {
  test('RFC 7541 C.4 (requests with Huffman coding), one decoder for the three blocks', () => {
    const d = new HeaderBlockDecoder();
    const blocks = [
      '828684418cf1e3c2e5f23a6ba0ab90f4ff',
      '828684be5886a8eb10649cbf',
      '828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf',
    ];
    expect(decodeAll(d, Buffer.from(blocks[0]!, 'hex'))).toEqual([
      [':method', 'GET'],
      [':scheme', 'http'],
      [':path', '/'],
      [':authority', 'www.example.com'],
    ]);
    expect(decodeAll(d, Buffer.from(blocks[1]!, 'hex'))).toEqual([
      [':method', 'GET'],
      [':scheme', 'http'],
      [':path', '/'],
      [':authority', 'www.example.com'],
      ['cache-control', 'no-cache'],
    ]);
    expect(decodeAll(d, Buffer.from(blocks[2]!, 'hex'))).toEqual([
      [':method', 'GET'],
      [':scheme', 'https'],
      [':path', '/index.html'],
      [':authority', 'www.example.com'],
      ['custom-key', 'custom-value'],
    ]);
    expect(d.tableLength).toBe(3);
    expect(d.size).toBe(164);
  });

  test('agrees with the reference decoder on random header lists and table sizes', () => {
    const nameArb = fc.constantFrom(':authority', ':path', ':method', 'content-type', 'te', 'grpc-timeout', 'x-a', 'x-b', 'user-agent', 'hasleader');
    const valueArb = fc.oneof(fc.constantFrom('', 'POST', '/', 'application/grpc', 'trailers', 'true'), fc.string({ maxLength: 40 }), fc.string({ minLength: 100, maxLength: 400 }));
    const fieldArb = fc.record({ name: nameArb, value: valueArb, indexing: fc.constantFrom('incremental' as const, 'none' as const, 'never' as const) });
    const stepArb = fc.record({ fields: fc.array(fieldArb, { maxLength: 12 }), resize: fc.option(fc.integer({ min: 0, max: 4096 }), { nil: undefined }) });
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 1, maxLength: 20 }), fc.boolean(), (steps, huffman) => {
        const enc = new HpackEncoder({ huffman });
        const ref = new HpackDecoder();
        const mine = new HeaderBlockDecoder();
        for (const step of steps) {
          if (step.resize !== undefined) enc.setMaxTableSize(step.resize);
          const block = enc.encode(step.fields as HeaderField[]);
          const want = ref.decode(block).map((f) => [f.name, f.value]);
          expect(decodeAll(mine, block)).toEqual(want);
          expect(mine.size).toBe(ref.table.size);
          expect(mine.tableLength).toBe(ref.table.length);
        }
      }),
      { numRuns: 200 },
    );
  });

  test('decodes a block in the middle of a larger buffer', () => {
    const enc = new HpackEncoder();
    const block = enc.encode([
      { name: ':path', value: '/a/b' },
      { name: 'x-k', value: 'v' },
    ]);
    const buf = Buffer.concat([Buffer.from([1, 2, 3]), block, Buffer.from([0x80, 0x80])]);
    const d = new HeaderBlockDecoder();
    d.decode(buf, 3, 3 + block.length, 10);
    expect([d.names.slice(0, d.count), d.values.slice(0, d.count)]).toEqual([
      [':path', 'x-k'],
      ['/a/b', 'v'],
    ]);
  });

  test.each([
    ['index 0', '80'],
    ['an index beyond the tables', 'ff00'],
    ['a size update above the limit', '3fe21f'],
    ['a size update after a field', '8220'],
    ['a truncated integer', '7f'],
    ['a string longer than the block', '4005616263'],
    ['a Huffman string with EOS', '4081ff0161'],
  ])('rejects %s', (_name, wire) => {
    const d = new HeaderBlockDecoder();
    const b = Buffer.from(wire, 'hex');
    expect(() => d.decode(b, 0, b.length, 100)).toThrow(HpackError);
  });

  test('rejects more fields than allowed', () => {
    const d = new HeaderBlockDecoder();
    const b = Buffer.from('828282', 'hex');
    expect(() => d.decode(b, 0, b.length, 2)).toThrow(/more than 2 header fields/);
  });
});

describe('ResponseHeaderEncoder', () => {
  test('the common blocks shrink to indexed fields and are reused', () => {
    const e = new ResponseHeaderEncoder();
    const dec = new HpackDecoder();
    const h1 = e.responseHeaders();
    expect(dec.decode(h1).map((f) => [f.name, f.value])).toEqual([
      [':status', '200'],
      ['content-type', 'application/grpc'],
    ]);
    const t1 = e.trailers(0, '');
    expect(dec.decode(t1).map((f) => [f.name, f.value])).toEqual([['grpc-status', '0']]);
    const h2 = e.responseHeaders();
    const t2 = e.trailers(0, '');
    expect(h2.toString('hex')).toBe('88bf'); // content-type is now the second newest entry (63)
    expect(t2.toString('hex')).toBe('be');
    expect(e.responseHeaders()).toBe(h2);
    expect(e.trailers(0, '')).toBe(t2);
    expect(dec.decode(h2).map((f) => f.value)).toEqual(['200', 'application/grpc']);
    expect(dec.decode(t2).map((f) => f.value)).toEqual(['0']);
  });

  test('random sequences of blocks and table size changes stay in step with a client decoder', () => {
    const opArb = fc.oneof(
      fc.constant({ op: 'headers' as const }),
      fc.record({ op: fc.constant('trailers' as const), code: fc.integer({ min: 0, max: 16 }), msg: fc.constantFrom('', 'etcdserver: key not found', 'x%C3%BC') }),
      fc.record({ op: fc.constant('only' as const), code: fc.integer({ min: 0, max: 16 }), http: fc.constantFrom(200, 415) }),
      fc.record({ op: fc.constant('resize' as const), size: fc.constantFrom(0, 40, 64, 100, 4096, 65536) }),
    );
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), (ops) => {
        const e = new ResponseHeaderEncoder();
        const dec = new HpackDecoder(65536);
        let pendingResize = false;
        let current = 4096;
        for (const o of ops) {
          if (o.op === 'resize') {
            e.setPeerTableSize(o.size);
            const size = Math.min(o.size, 4096);
            if (size !== current || pendingResize) pendingResize = true;
            current = size;
            continue;
          }
          let block: Buffer;
          let want: [string, string][];
          if (o.op === 'headers') {
            block = e.responseHeaders();
            want = [
              [':status', '200'],
              ['content-type', 'application/grpc'],
            ];
          } else if (o.op === 'trailers') {
            block = e.trailers(o.code, o.msg);
            want = [['grpc-status', String(o.code)]];
            if (o.msg !== '') want.push(['grpc-message', o.msg]);
          } else {
            block = e.trailersOnly(o.code, 'm', o.http);
            want = [
              [':status', String(o.http)],
              ['content-type', 'application/grpc'],
              ['grpc-status', String(o.code)],
              ['grpc-message', 'm'],
            ];
          }
          if (pendingResize) {
            expect((block[0]! & 0xe0) === 0x20).toBe(true);
            pendingResize = false;
          }
          expect(dec.decode(block).map((f) => [f.name, f.value])).toEqual(want);
          expect(dec.table.size).toBeLessThanOrEqual(4096);
          expect(dec.table.length).toBe(e.tableLength);
        }
      }),
      { numRuns: 300 },
    );
  });
});
