/**
 * The gateway's JSON mapping: Go's syntax and type errors (texts taken from etcd's gateway answers
 * to the same bodies), Go's base64 rules, proto/camel field names, 64-bit integers as strings,
 * enums by name, zero-field omission and Go's string escaping on output.
 */
import fc from 'fast-check';
import * as protobuf from 'protobufjs';
import {
  GoJsonError,
  JsonStreamDecoder,
  decodeBase64Std,
  goJsonString,
  goTypeName,
  httpStatusFromCode,
  jsonName,
  jsonToMessage,
  messageToJson,
  parseDocument,
} from '../../../src/api/gateway-json';
import { messageType, protoRoot } from '../../../src/api/proto';

/** Decodes a body as the gateway does for a unary call: first JSON value → message → wire → message. */
function decode(typeName: string, body: string): Record<string, unknown> {
  const t = messageType(typeName);
  const d = new JsonStreamDecoder();
  d.push(Buffer.from(body, 'latin1'));
  d.end();
  const v = d.next();
  const plain = v === 'eof' || v === 'more' ? {} : jsonToMessage(t, v);
  return t.decode(t.encode(plain).finish()) as unknown as Record<string, unknown>;
}

/** The Go message for a body, or '' when it decodes. */
function goError(typeName: string, body: string): string {
  try {
    decode(typeName, body);
    return '';
  } catch (err) {
    if (err instanceof GoJsonError) return err.message;
    throw err;
  }
}

/** JSON of a plain object of the given type, through the wire as the gateway does. */
function toJson(typeName: string, obj: Record<string, unknown>): string {
  const t = messageType(typeName);
  return messageToJson(t, t.decode(t.encode(obj).finish()) as unknown as Record<string, unknown>);
}

describe('Go decoder errors', () => {
  it.each([
    ['{bad', "invalid character 'b' looking for beginning of object key string"],
    ['{"key":"Zm9v" "x"}', `invalid character '"' after object key:value pair`],
    ['{"key":"Zm9v",}', "invalid character '}' looking for beginning of object key string"],
    ['{"key" 1}', "invalid character '1' after object key"],
    ['{"key":"Zm9v"', 'unexpected EOF'],
    ['{"key":tru}', "invalid character '}' in literal true (expecting 'e')"],
    ['{"key":"\\x01"}', "invalid character 'x' in string escape code"],
    ['{"key":"a\\q"}', "invalid character 'q' in string escape code"],
    ['{"key":-}', "invalid character '}' in numeric literal"],
    ['{"key":0.}', "invalid character '}' after decimal point in numeric literal"],
    ['{"key":1e}', "invalid character '}' in exponent of numeric literal"],
    ['{"key":"a\u0001"}', "invalid character '\\x01' in string literal"],
    ['{"key":"\\u12G4"}', "invalid character 'G' in \\u hexadecimal character escape"],
    ['{"compare":[{"key":"AA=="} 1]}', "invalid character '1' after array element"],
    ['"str"', 'json: cannot unmarshal string into Go value of type map[string]json.RawMessage'],
    ['5', 'json: cannot unmarshal number into Go value of type map[string]json.RawMessage'],
    ['[1]', 'json: cannot unmarshal array into Go value of type map[string]json.RawMessage'],
    ['{"key":5}', 'json: cannot unmarshal number into Go value of type []uint8'],
    ['{"key":"Zm9v","limit":true}', 'json: cannot unmarshal bool into Go value of type int64'],
    ['{"key":"Zm9v","limit":"abc"}', "invalid character 'a' looking for beginning of value"],
    ['{"key":"Zm9v","limit":""}', 'unexpected end of JSON input'],
    ['{"key":"Zm9v","limit":"1e3"}', 'json: cannot unmarshal number 1e3 into Go value of type int64'],
    ['{"key":"Zm9v","limit":1e3}', 'json: cannot unmarshal number 1e3 into Go value of type int64'],
    ['{"key":"Zm9v","limit":1.5}', 'json: cannot unmarshal number 1.5 into Go value of type int64'],
    ['{"key":"Zm9v","max_mod_revision":99999999999999999999}', 'json: cannot unmarshal number 99999999999999999999 into Go value of type int64'],
    ['{"key":"Zm9v","keys_only":"true"}', 'json: cannot unmarshal string into Go value of type bool'],
    ['{"key":"Zm9v","serializable":1}', 'json: cannot unmarshal number into Go value of type bool'],
    ['{"key":"Zm9v","sort_order":"NOPE"}', 'unknown value "NOPE" for enum etcdserverpb.RangeRequest_SortOrder'],
    ['{"key":"Zm9v","sort_order":"1"}', 'unknown value "1" for enum etcdserverpb.RangeRequest_SortOrder'],
    ['{"key":"Zm9v","sort_order":true}', 'json: cannot unmarshal bool into Go value of type etcdserverpb.RangeRequest_SortOrder'],
    ['{"key":"Zm9"}', 'illegal base64 data at input byte 0'],
    ['{"key":"Zm9v="}', 'illegal base64 data at input byte 4'],
    ['{"key":"Z-9v"}', 'illegal base64 data at input byte 1'],
    ['{"key":"Zm9vYg"}', 'illegal base64 data at input byte 4'],
    ['{"key":"Zm9vYg="}', 'illegal base64 data at input byte 7'],
    ['{"key":"Zm9vYg=x"}', 'illegal base64 data at input byte 6'],
    ['{"key":"Zm9vYmE"}', 'illegal base64 data at input byte 4'],
  ])('%s → %s', (body, message) => {
    expect(goError('etcdserverpb.RangeRequest', body)).toBe(message);
  });

  it('reports type errors inside repeated and nested fields', () => {
    expect(goError('etcdserverpb.TxnRequest', '{"compare":{}}')).toBe('json: cannot unmarshal object into Go value of type []json.RawMessage');
    expect(goError('etcdserverpb.TxnRequest', '{"compare":[5]}')).toBe('json: cannot unmarshal number into Go value of type map[string]json.RawMessage');
    expect(goError('etcdserverpb.LeaseGrantRequest', '{"ID":"-1","TTL":"x1"}')).toBe("invalid character 'x' looking for beginning of value");
    expect(goError('etcdserverpb.MemberRemoveRequest', '{"ID":-1}')).toBe('json: cannot unmarshal number -1 into Go value of type uint64');
  });

  it('accepts what Go accepts', () => {
    for (const body of [
      '',
      '   ',
      'null',
      '{"key":"Zm9v","limit":-1}',
      '{"key":"Zm9v\\n"}',
      '{"key":"Zm9v","sort_order":9}',
      '{"key":"Zm9v","keys_only":null}',
      '{"key":"Zm9v","limit":"-0"}',
      '{"key":"Zm9v","limit":" 1"}',
      '{"key":"Zm9v","bogus":{"deep":[1,2,{"x":null}]}}',
      '{"key":"Zm9v"} trailing garbage is not read',
    ]) {
      expect(goError('etcdserverpb.RangeRequest', body)).toBe('');
    }
  });
});

describe('JSON → message', () => {
  it('takes proto and lowerCamel names; the camel one wins when both are given', () => {
    const a = decode('etcdserverpb.RangeRequest', '{"key":"Zm9v","range_end":"Zm9w","keys_only":true,"sortOrder":"DESCEND","sort_target":3,"revision":"12"}');
    expect(Buffer.from(a.key as Uint8Array).toString()).toBe('foo');
    expect(Buffer.from(a.range_end as Uint8Array).toString()).toBe('fop');
    expect(a.keys_only).toBe(true);
    expect(a.sort_order).toBe(2);
    expect(a.sort_target).toBe(3);
    expect(String(a.revision)).toBe('12');
    const b = decode('etcdserverpb.PutRequest', '{"key":"AA==","prev_kv":false,"prevKv":true}');
    expect(b.prev_kv).toBe(true);
  });

  it('keeps 64-bit precision for numbers and strings', () => {
    const m = decode('etcdserverpb.LeaseGrantRequest', '{"ID":7587862072061227266,"TTL":"9223372036854775807"}');
    expect(String(m.ID)).toBe('7587862072061227266');
    expect(String(m.TTL)).toBe('9223372036854775807');
    const u = decode('etcdserverpb.MemberRemoveRequest', '{"ID":"18446744073709551615"}');
    expect(BigInt.asUintN(64, BigInt(String(u.ID)))).toBe(18446744073709551615n);
  });

  it('fills oneof members and nested messages', () => {
    const m = decode(
      'etcdserverpb.TxnRequest',
      '{"compare":[{"key":"Zm9v","target":"CREATE","create_revision":"0"}],"success":[{"requestPut":{"key":"Zm9v","value":"YmFy"}}],"failure":[{"request_delete_range":{"key":"eA=="}}]}',
    );
    const cmp = (m.compare as Record<string, unknown>[])[0]!;
    expect(cmp.target).toBe(1);
    expect(cmp.target_union).toBe('create_revision');
    const put = (m.success as Record<string, Record<string, unknown>>[])[0]!.request_put!;
    expect(Buffer.from(put.value as Uint8Array).toString()).toBe('bar');
    expect((m.failure as Record<string, unknown>[])[0]!.request).toBe('request_delete_range');
  });

  it('reads repeated enums by name and number', () => {
    const m = decode('etcdserverpb.WatchRequest', '{"create_request":{"key":"AA==","filters":["NODELETE",0]}}');
    expect((m.create_request as Record<string, unknown>).filters).toEqual([1, 0]);
  });
});

describe('message → JSON', () => {
  it('writes proto names in declaration order, int64 as strings, bytes as base64, and leaves zero fields out', () => {
    const json = toJson('etcdserverpb.RangeResponse', {
      header: { cluster_id: '14841639068965178418', member_id: '10276657743932975437', revision: 5, raft_term: 2 },
      kvs: [
        { key: Buffer.from('foo'), create_revision: 3, mod_revision: 5, version: 3, value: Buffer.from('bar') },
        { key: Buffer.from('k'), create_revision: 4, mod_revision: 4, version: 1, value: Buffer.alloc(0), lease: 0 },
      ],
      more: false,
      count: 2,
    });
    expect(json).toBe(
      '{"header":{"cluster_id":"14841639068965178418","member_id":"10276657743932975437","revision":"5","raft_term":"2"},' +
        '"kvs":[{"key":"Zm9v","create_revision":"3","mod_revision":"5","version":"3","value":"YmFy"},' +
        '{"key":"aw==","create_revision":"4","mod_revision":"4","version":"1"}],"count":"2"}',
    );
  });

  it('writes enums by name (zero left out), uint32 and bools as JSON values, empty sub-messages as {}', () => {
    expect(toJson('etcdserverpb.WatchResponse', { header: {}, watch_id: 7, created: true, events: [{ type: 0, kv: { key: Buffer.from('a') } }, { type: 1, kv: {} }] })).toBe(
      '{"header":{},"watch_id":"7","created":true,"events":[{"kv":{"key":"YQ=="}},{"type":"DELETE","kv":{}}]}',
    );
    expect(toJson('etcdserverpb.HashResponse', { hash: 3759257737 })).toBe('{"hash":3759257737}');
    expect(toJson('etcdserverpb.LeaseTimeToLiveResponse', { ID: 5, TTL: -1 })).toBe('{"ID":"5","TTL":"-1"}');
  });

  it('keeps a oneof member at its zero value', () => {
    expect(toJson('etcdserverpb.Compare', { key: Buffer.from('k'), create_revision: 0 })).toBe('{"key":"aw==","create_revision":"0"}');
  });

  it('escapes strings as Go does', () => {
    expect(goJsonString('a"b\\c\n\r\t<>&\u2028\u2029\u0001\u007f é')).toBe('"a\\"b\\\\c\\n\\r\\t\\u003c\\u003e\\u0026\\u2028\\u2029\\u0001\u007f é"');
  });

  it('round-trips any request through JSON and back (bytes, signed and unsigned 64-bit)', () => {
    const t = messageType('etcdserverpb.PutRequest');
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ maxLength: 40 }), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), fc.boolean(), (key, value, lease, prev) => {
        const msg = t.decode(t.encode({ key: Buffer.from(key), value: Buffer.from(value), lease: lease.toString(), prev_kv: prev }).finish());
        const json = messageToJson(t, msg as unknown as Record<string, unknown>);
        const back = t.decode(t.encode(jsonToMessage(t, parseDocument(Buffer.from(json)))).finish()) as unknown as Record<string, unknown>;
        expect(Buffer.from(back.key as Uint8Array)).toEqual(Buffer.from(key));
        expect(Buffer.from(back.value as Uint8Array)).toEqual(Buffer.from(value));
        expect(BigInt(String(back.lease))).toBe(lease);
        expect(back.prev_kv).toBe(prev);
      }),
      { numRuns: 300 },
    );
  });
});

describe('base64 (Go StdEncoding)', () => {
  it('decodes what Node encodes and ignores CR and LF', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const b64 = Buffer.from(bytes).toString('base64');
        expect(decodeBase64Std(Buffer.from(b64))).toEqual(Buffer.from(bytes));
        const spaced = b64.replace(/(.{3})/g, '$1\r\n');
        expect(decodeBase64Std(Buffer.from(spaced))).toEqual(Buffer.from(bytes));
      }),
    );
  });

  it('rejects URL-safe characters, missing padding and trailing data', () => {
    expect(() => decodeBase64Std(Buffer.from('_w=='))).toThrow('illegal base64 data at input byte 0');
    expect(() => decodeBase64Std(Buffer.from('Zg'))).toThrow('illegal base64 data at input byte 0');
    expect(() => decodeBase64Std(Buffer.from('Zg==Zm9v'))).toThrow('illegal base64 data at input byte 4');
    expect(() => decodeBase64Std(Buffer.from('Z==='))).toThrow('illegal base64 data at input byte 1');
  });
});

describe('stream decoder', () => {
  it('splits concatenated values across arbitrary chunk boundaries', () => {
    const text = '{"a":1} {"b":[true,null]}\n"s"12 {"c":{}}';
    fc.assert(
      fc.property(fc.array(fc.nat({ max: text.length }), { maxLength: 6 }), (cuts) => {
        const points = [...new Set(cuts)].sort((x, y) => x - y);
        const d = new JsonStreamDecoder();
        const got: string[] = [];
        let prev = 0;
        const drain = (): void => {
          for (;;) {
            const v = d.next();
            if (v === 'more' || v === 'eof') return;
            got.push(v.kind);
          }
        };
        for (const p of [...points, text.length]) {
          d.push(Buffer.from(text.slice(prev, p)));
          prev = p;
          drain();
        }
        d.end();
        drain();
        expect(d.next()).toBe('eof');
        expect(got).toEqual(['object', 'object', 'string', 'number', 'object']);
      }),
    );
  });

  it('reports a value cut off at the end as unexpected EOF', () => {
    const d = new JsonStreamDecoder();
    d.push(Buffer.from('{"a":1} {"b":'));
    expect(d.next()).not.toBe('more');
    expect(d.next()).toBe('more');
    d.end();
    expect(() => d.next()).toThrow('unexpected EOF');
  });
});

describe('names and statuses', () => {
  it('derives JSON and Go names as protoc does', () => {
    expect(jsonName('create_revision')).toBe('createRevision');
    expect(jsonName('ID')).toBe('ID');
    expect(jsonName('peerURLs')).toBe('peerURLs');
    const root = protoRoot();
    expect(goTypeName(root.lookupEnum('etcdserverpb.RangeRequest.SortOrder'))).toBe('etcdserverpb.RangeRequest_SortOrder');
    expect(goTypeName(root.lookup('mvccpb.Event.EventType') as protobuf.Enum)).toBe('mvccpb.Event_EventType');
  });

  it("maps gRPC codes to grpc-gateway's HTTP statuses", () => {
    const want: Record<number, number> = { 0: 200, 1: 408, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429, 9: 400, 10: 409, 11: 400, 12: 501, 13: 500, 14: 503, 15: 500, 16: 401 };
    for (const [code, status] of Object.entries(want)) expect(httpStatusFromCode(Number(code))).toBe(status);
  });
});
