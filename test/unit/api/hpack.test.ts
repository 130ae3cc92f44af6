/**
 * HPACK codec: the examples of RFC 7541 Appendix C, decoded and re-encoded byte for byte, the
 * Huffman code, the error cases a decoder must reject, and round trips of random header lists
 * with the encoder's and decoder's dynamic tables compared after every block.
 */
import fc from 'fast-check';
import {
  DynamicTable,
  HeaderField,
  HpackDecoder,
  HpackEncoder,
  HpackError,
  STATIC_TABLE,
  decodeInteger,
  encodeInteger,
} from '../../../src/api/hpack';
import { HuffmanError, huffmanCode, huffmanDecode, huffmanEncode, huffmanEncodedLength } from '../../../src/api/hpack-huffman';

function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ''), 'hex');
}

function pairs(fields: readonly HeaderField[]): [string, string][] {
  return fields.map((f) => [f.name, f.value]);
}

interface Step {
  wire: string;
  fields: [string, string][];
  /** Dynamic table after the block, newest first. */
  table: [string, string][];
  size: number;
}

/** Decodes each step with one decoder and encodes it with one encoder; both must match the RFC. */
function runSeries(steps: Step[], tableSize: number, huffman: boolean): void {
  const dec = new HpackDecoder(tableSize);
  const enc = new HpackEncoder({ maxTableSize: tableSize, huffman });
  for (const step of steps) {
    const wire = hex(step.wire);
    const got = dec.decode(wire);
    expect(pairs(got)).toEqual(step.fields);
    expect(dec.table.list()).toEqual(step.table);
    expect(dec.table.size).toBe(step.size);

    const encoded = enc.encode(step.fields.map(([name, value]) => ({ name, value })));
    expect(encoded.toString('hex')).toBe(wire.toString('hex'));
    expect(enc.table.list()).toEqual(step.table);
    expect(enc.table.size).toBe(step.size);
  }
}

describe('integer representation (RFC 7541 C.1)', () => {
  const cases: [number, number, string][] = [
    [10, 5, '0a'], // C.1.1
    [1337, 5, '1f9a0a'], // C.1.2
    [42, 8, '2a'], // C.1.3
  ];
  test.each(cases)('%d with a %d-bit prefix is %s', (value, prefix, wire) => {
    const out: number[] = [];
    encodeInteger(out, value, prefix, 0);
    expect(Buffer.from(out).toString('hex')).toBe(wire);
    expect(decodeInteger(hex(wire), 0, prefix)).toEqual({ value, next: wire.length / 2 });
  });

  test('flag bits above the prefix are kept on encode and ignored on decode', () => {
    const out: number[] = [];
    encodeInteger(out, 1337, 5, 0xe0);
    expect(Buffer.from(out).toString('hex')).toBe('ff9a0a');
    expect(decodeInteger(Buffer.from(out), 0, 5).value).toBe(1337);
  });

  test('round trip for any prefix and value', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 2 ** 32 - 1 }), (prefix, value) => {
        const out: number[] = [];
        encodeInteger(out, value, prefix, 0);
        expect(decodeInteger(Buffer.from(out), 0, prefix)).toEqual({ value, next: out.length });
      }),
    );
  });

  test('truncated and oversized integers are rejected', () => {
    expect(() => decodeInteger(hex('1f9a'), 0, 5)).toThrow(HpackError);
    expect(() => decodeInteger(hex('1fffffffffff0f'), 0, 5)).toThrow(/overflow/);
  });
});

describe('header field representations (RFC 7541 C.2)', () => {
  test('C.2.1 literal with indexing', () => {
    const wire = hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572');
    const dec = new HpackDecoder();
    expect(dec.decode(wire)).toEqual([{ name: 'custom-key', value: 'custom-header', indexing: 'incremental' }]);
    expect(dec.table.list()).toEqual([['custom-key', 'custom-header']]);
    expect(dec.table.size).toBe(55);
    const enc = new HpackEncoder({ huffman: false });
    expect(enc.encode([{ name: 'custom-key', value: 'custom-header' }]).equals(wire)).toBe(true);
  });

  test('C.2.2 literal without indexing', () => {
    const wire = hex('040c 2f73 616d 706c 652f 7061 7468');
    const dec = new HpackDecoder();
    expect(dec.decode(wire)).toEqual([{ name: ':path', value: '/sample/path', indexing: 'none' }]);
    expect(dec.table.length).toBe(0);
    const enc = new HpackEncoder({ huffman: false });
    expect(enc.encode([{ name: ':path', value: '/sample/path', indexing: 'none' }]).equals(wire)).toBe(true);
    expect(enc.table.length).toBe(0);
  });

  test('C.2.3 literal never indexed', () => {
    const wire = hex('1008 7061 7373 776f 7264 0673 6563 7265 74');
    const dec = new HpackDecoder();
    expect(dec.decode(wire)).toEqual([{ name: 'password', value: 'secret', indexing: 'never' }]);
    expect(dec.table.length).toBe(0);
    const enc = new HpackEncoder({ huffman: false });
    expect(enc.encode([{ name: 'password', value: 'secret', indexing: 'never' }]).equals(wire)).toBe(true);
  });

  test('C.2.4 indexed field', () => {
    const dec = new HpackDecoder();
    expect(pairs(dec.decode(hex('82')))).toEqual([[':method', 'GET']]);
    expect(dec.table.length).toBe(0);
    expect(new HpackEncoder().encode([{ name: ':method', value: 'GET' }]).toString('hex')).toBe('82');
  });
});

const REQUEST_FIELDS: [string, string][][] = [
  [
    [':method', 'GET'],
    [':scheme', 'http'],
    [':path', '/'],
    [':authority', 'www.example.com'],
  ],
  [
    [':method', 'GET'],
    [':scheme', 'http'],
    [':path', '/'],
    [':authority', 'www.example.com'],
    ['cache-control', 'no-cache'],
  ],
  [
    [':method', 'GET'],
    [':scheme', 'https'],
    [':path', '/index.html'],
    [':authority', 'www.example.com'],
    ['custom-key', 'custom-value'],
  ],
];
const REQUEST_TABLES: [string, string][][] = [
  [[':authority', 'www.example.com']],
  [
    ['cache-control', 'no-cache'],
    [':authority', 'www.example.com'],
  ],
  [
    ['custom-key', 'custom-value'],
    ['cache-control', 'no-cache'],
    [':authority', 'www.example.com'],
  ],
];
const REQUEST_SIZES = [57, 110, 164];

test('C.3 requests without Huffman coding', () => {
  const wires = [
    '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
    '8286 84be 5808 6e6f 2d63 6163 6865',
    '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
  ];
  runSeries(
    wires.map((wire, i) => ({ wire, fields: REQUEST_FIELDS[i]!, table: REQUEST_TABLES[i]!, size: REQUEST_SIZES[i]! })),
    4096,
    false,
  );
});

test('C.4 requests with Huffman coding', () => {
  const wires = [
    '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff',
    '8286 84be 5886 a8eb 1064 9cbf',
    '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
  ];
  runSeries(
    wires.map((wire, i) => ({ wire, fields: REQUEST_FIELDS[i]!, table: REQUEST_TABLES[i]!, size: REQUEST_SIZES[i]! })),
    4096,
    true,
  );
});

const DATE1 = 'Mon, 21 Oct 2013 20:13:21 GMT';
const DATE2 = 'Mon, 21 Oct 2013 20:13:22 GMT';
const LOCATION = 'https://www.example.com';
const COOKIE = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';
const RESPONSE_FIELDS: [string, string][][] = [
  [
    [':status', '302'],
    ['cache-control', 'private'],
    ['date', DATE1],
    ['location', LOCATION],
  ],
  [
    [':status', '307'],
    ['cache-control', 'private'],
    ['date', DATE1],
    ['location', LOCATION],
  ],
  [
    [':status', '200'],
    ['cache-control', 'private'],
    ['date', DATE2],
    ['location', LOCATION],
    ['content-encoding', 'gzip'],
    ['set-cookie', COOKIE],
  ],
];
const RESPONSE_TABLES: [string, string][][] = [
  [
    ['location', LOCATION],
    ['date', DATE1],
    ['cache-control', 'private'],
    [':status', '302'],
  ],
  [
    [':status', '307'],
    ['location', LOCATION],
    ['date', DATE1],
    ['cache-control', 'private'],
  ],
  [
    ['set-cookie', COOKIE],
    ['content-encoding', 'gzip'],
    ['date', DATE2],
  ],
];
const RESPONSE_SIZES = [222, 222, 215];

test('C.5 responses without Huffman coding (table size 256, with evictions)', () => {
  const wires = [
    `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
     2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
     6c65 2e63 6f6d`,
    '4803 3330 37c1 c0bf',
    `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
     54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
     5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
     3d31`,
  ];
  runSeries(
    wires.map((wire, i) => ({ wire, fields: RESPONSE_FIELDS[i]!, table: RESPONSE_TABLES[i]!, size: RESPONSE_SIZES[i]! })),
    256,
    false,
  );
});

test('C.6 responses with Huffman coding (table size 256, with evictions)', () => {
  const wires = [
    `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
     2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`,
    '4883 640e ffc1 c0bf',
    `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
     77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
     9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
  ];
  runSeries(
    wires.map((wire, i) => ({ wire, fields: RESPONSE_FIELDS[i]!, table: RESPONSE_TABLES[i]!, size: RESPONSE_SIZES[i]! })),
    256,
    true,
  );
});

describe('static table (RFC 7541 Appendix A)', () => {
  test('has 61 entries at the published indexes', () => {
    expect(STATIC_TABLE).toHaveLength(61);
    expect(STATIC_TABLE[0]).toEqual([':authority', '']);
    expect(STATIC_TABLE[15]).toEqual(['accept-encoding', 'gzip, deflate']);
    expect(STATIC_TABLE[30]).toEqual(['content-type', '']);
    expect(STATIC_TABLE[57]).toEqual(['user-agent', '']);
    expect(STATIC_TABLE[60]).toEqual(['www-authenticate', '']);
  });
});

describe('Huffman code (RFC 7541 Appendix B)', () => {
  test('codes of some symbols match the published table', () => {
    expect(huffmanCode(0x30)).toEqual({ code: 0x0, bits: 5 }); // '0'
    expect(huffmanCode(0x20)).toEqual({ code: 0x14, bits: 6 }); // ' '
    expect(huffmanCode(0x61)).toEqual({ code: 0x3, bits: 5 }); // 'a'
    expect(huffmanCode(0x3a)).toEqual({ code: 0x5c, bits: 7 }); // ':'
    expect(huffmanCode(0x00)).toEqual({ code: 0x1ff8, bits: 13 });
    expect(huffmanCode(0x0a)).toEqual({ code: 0x3ffffffc, bits: 30 }); // '\n'
    expect(huffmanCode(0xff)).toEqual({ code: 0x3ffffee, bits: 26 });
    expect(huffmanCode(256)).toEqual({ code: 0x3fffffff, bits: 30 }); // EOS
  });

  test('is a complete prefix code (Kraft sum exactly 1)', () => {
    let sum = 0;
    for (let s = 0; s <= 256; s++) sum += 2 ** -huffmanCode(s).bits;
    expect(sum).toBe(1);
  });

  test('encodes the RFC example strings', () => {
    expect(huffmanEncode(Buffer.from('www.example.com')).toString('hex')).toBe('f1e3c2e5f23a6ba0ab90f4ff');
    expect(huffmanEncode(Buffer.from('no-cache')).toString('hex')).toBe('a8eb10649cbf');
    expect(huffmanEncode(Buffer.from('302')).toString('hex')).toBe('6402');
  });

  test('round trip of arbitrary octets', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (data) => {
        const enc = huffmanEncode(data);
        expect(enc.length).toBe(huffmanEncodedLength(data));
        expect(Buffer.from(huffmanDecode(enc)).equals(Buffer.from(data))).toBe(true);
      }),
    );
  });

  test('rejects EOS in the data, padding over 7 bits and padding that is not all ones', () => {
    // EOS (30 one bits) followed by padding.
    expect(() => huffmanDecode(hex('ffffffff'))).toThrow(HuffmanError);
    // 'a' (00011) + 11 bits of ones: padding longer than 7 bits.
    expect(() => huffmanDecode(hex('1fff'))).toThrow(/longer than 7 bits/);
    // 'a' (00011) + 000 padding.
    expect(() => huffmanDecode(hex('18'))).toThrow(/prefix of EOS/);
    // Valid: 'a' + 111.
    expect(huffmanDecode(hex('1f')).toString()).toBe('a');
  });
});

describe('decoder errors', () => {
  test.each([
    ['index 0', '80'],
    ['index past the static table with an empty dynamic table', 'be'],
    ['literal naming a missing index', '7e0161'],
    ['string longer than the block', '400a6375'],
    ['Huffman string with bad padding', '418118'],
    ['size update above the limit', '3fe21f'],
    ['size update after a field', '8220'],
  ])('%s', (_name, wire) => {
    expect(() => new HpackDecoder(4096).decode(hex(wire))).toThrow(HpackError);
  });

  test('a header list above the size bound is rejected (indexed fields amplify)', () => {
    const enc = new HpackEncoder({ huffman: false });
    const big = { name: 'x-big', value: 'v'.repeat(3000) };
    const first = enc.encode([big]);
    // 40 one-octet references to the 3 KiB entry: about 120 KiB once decoded.
    const bomb = Buffer.alloc(40, 0x80 | 62);
    const dec = new HpackDecoder(4096, 64 * 1024);
    expect(dec.decode(first)).toHaveLength(1);
    expect(() => dec.decode(bomb)).toThrow(/header list larger than 65536 octets/);
    const roomy = new HpackDecoder(4096, 200 * 1024);
    roomy.decode(first);
    expect(roomy.decode(bomb)).toHaveLength(40);
  });

  test('size updates at the start of a block shrink and evict', () => {
    const dec = new HpackDecoder(4096);
    dec.decode(hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572'));
    expect(dec.table.length).toBe(1);
    expect(pairs(dec.decode(hex('20 3f e1 1f 82')))).toEqual([[':method', 'GET']]);
    expect(dec.table.length).toBe(0);
    expect(dec.table.maxSize).toBe(4096);
  });
});

describe('encoder', () => {
  test('announces table size changes at the next block, smallest first', () => {
    const enc = new HpackEncoder();
    enc.encode([{ name: 'x-a', value: '1' }]);
    enc.setMaxTableSize(0);
    enc.setMaxTableSize(100);
    const block = enc.encode([{ name: ':method', value: 'GET' }]);
    expect(block.toString('hex')).toBe('20' + '3f45' + '82');
    const dec = new HpackDecoder(4096);
    dec.decode(new HpackEncoder().encode([{ name: 'x-a', value: '1' }]));
    dec.decode(block);
    expect(dec.table.maxSize).toBe(100);
    expect(dec.table.length).toBe(0);
  });

  test('an entry larger than the table is sent without indexing', () => {
    const enc = new HpackEncoder({ maxTableSize: 64 });
    const block = enc.encode([{ name: 'x-long', value: 'y'.repeat(40) }]);
    expect((block[0] ?? 0) & 0xf0).toBe(0x00);
    expect(enc.table.length).toBe(0);
  });

  test('reuses dynamic entries by index once added', () => {
    const enc = new HpackEncoder();
    enc.encode([{ name: ':authority', value: '127.0.0.1:2379' }]);
    expect(enc.encode([{ name: ':authority', value: '127.0.0.1:2379' }]).toString('hex')).toBe('be');
  });
});

test('dynamic table evicts oldest first and keeps size ≤ max', () => {
  const t = new DynamicTable(100);
  t.add('a', '1'); // 34
  t.add('b', '2'); // 68
  t.add('c', '3'); // 102 > 100: evict a
  expect(t.list()).toEqual([
    ['c', '3'],
    ['b', '2'],
  ]);
  expect(t.size).toBe(68);
  expect(t.findName('a')).toBe(0);
  expect(t.findPair('b', '2')).toBe(2);
  t.add('big', 'x'.repeat(100));
  expect(t.length).toBe(0);
  expect(t.size).toBe(0);
});

describe('encoder → decoder round trip', () => {
  const nameArb = fc.constantFrom(':authority', ':path', ':method', 'content-type', 'te', 'grpc-timeout', 'x-a', 'x-b', 'user-agent');
  const valueArb = fc.oneof(
    fc.constantFrom('', 'GET', '/', 'application/grpc', 'trailers', 'http://127.0.0.1:2379'),
    fc.string({ maxLength: 40, unit: 'binary' }).map((s) => Buffer.from(s, 'utf8').toString('latin1')),
  );
  const fieldArb = fc.record({
    name: nameArb,
    value: valueArb,
    indexing: fc.constantFrom<'incremental' | 'none' | 'never'>('incremental', 'incremental', 'none', 'never'),
  });
  const stepArb = fc.record({
    fields: fc.array(fieldArb, { maxLength: 12 }),
    resize: fc.option(fc.integer({ min: 0, max: 4096 }), { freq: 5 }),
  });

  test('decoded fields equal the input and both tables agree after every block', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 25 }), fc.boolean(), fc.integer({ min: 64, max: 4096 }), (steps, huffman, size) => {
        const enc = new HpackEncoder({ maxTableSize: size, huffman });
        const dec = new HpackDecoder(4096);
        dec.table.setMaxSize(size);
        for (const s of steps) {
          if (s.resize !== null) enc.setMaxTableSize(s.resize);
          const got = dec.decode(enc.encode(s.fields));
          expect(pairs(got)).toEqual(pairs(s.fields));
          got.forEach((g, i) => {
            const want = s.fields[i]?.indexing;
            // An entry that cannot fit the table is sent without indexing; everything else keeps its representation.
            if (want === 'incremental') expect(['incremental', 'none']).toContain(g.indexing);
            else expect(g.indexing).toBe(want);
          });
          expect(dec.table.list()).toEqual(enc.table.list());
          expect(dec.table.size).toBe(enc.table.size);
          expect(dec.table.size).toBeLessThanOrEqual(dec.table.maxSize);
        }
      }),
      { numRuns: 200 },
    );
  });
});
