/**
 * The JSON gateway over scripted gRPC handlers: unary answers and errors (status, headers,
 * trailer), request decoding, paths and methods, metadata, the size limit, and streams (framing,
 * requests arriving over time, the first request failing, the end of the body, cancellation).
 */
import * as grpc from '@grpc/grpc-js';
import * as http from 'node:http';
import * as net from 'node:net';
import { Gateway } from '../../../src/api/gateway';
import { httpRequest } from './http-request';

type Obj = Record<string, unknown>;
type UnaryCall = grpc.ServerUnaryCall<Obj, unknown>;
type Duplex = grpc.ServerDuplexStream<Obj, unknown>;

const header = { cluster_id: '1', member_id: '2', revision: 3, raft_term: 4 };
const HEADER_JSON = '{"cluster_id":"1","member_id":"2","revision":"3","raft_term":"4"}';

describe('JSON gateway', () => {
  const methods = new Map<string, grpc.UntypedHandleCall>();
  let server: http.Server;
  let port = 0;
  const seen: { metadata?: grpc.Metadata; cancelled: number; keepAliveEnded: number; watchRequests: Obj[] } = {
    cancelled: 0,
    keepAliveEnded: 0,
    watchRequests: [],
  };

  beforeAll(async () => {
    methods.set('/etcdserverpb.KV/Range', ((call: UnaryCall, cb: grpc.sendUnaryData<unknown>) => {
      seen.metadata = call.metadata;
      const key = Buffer.from(call.request.key as Uint8Array).toString();
      if (key === '') return cb({ code: grpc.status.INVALID_ARGUMENT, details: 'etcdserver: key is not provided' });
      if (key === 'slow') {
        call.on('cancelled', () => seen.cancelled++);
        return undefined;
      }
      if (key === 'gone') return cb({ code: grpc.status.FAILED_PRECONDITION, details: 'etcdserver: lease already exists' });
      if (key === 'unknown') return cb(new Error('raw failure') as grpc.ServiceError);
      return cb(null, {
        header,
        kvs: [{ key: call.request.key, create_revision: 2, mod_revision: 3, version: 1, value: Buffer.from('<v>') }],
        count: Number(call.request.limit ?? 0) + 1,
      });
    }) as grpc.UntypedHandleCall);
    // A pre-encoded answer, as the hot paths return.
    methods.set('/etcdserverpb.KV/Put', ((_call: UnaryCall, cb: grpc.sendUnaryData<unknown>) => {
      cb(null, Buffer.from([0x0a, 0x02, 0x18, 0x07]));
    }) as grpc.UntypedHandleCall);
    methods.set('/etcdserverpb.Lease/LeaseKeepAlive', ((call: Duplex) => {
      let chain = Promise.resolve();
      call.on('data', (m: Obj) => {
        chain = chain.then(async () => {
          await new Promise((r) => setTimeout(r, 5));
          call.write({ header, ID: String(m.ID), TTL: 60 });
        });
      });
      call.on('end', () => {
        seen.keepAliveEnded++;
        void chain.then(() => call.end());
      });
    }) as grpc.UntypedHandleCall);
    methods.set('/etcdserverpb.Watch/Watch', ((call: Duplex) => {
      call.on('data', (m: Obj) => {
        seen.watchRequests.push(m);
        if (m.request_union !== 'create_request') return;
        const cr = m.create_request as Obj;
        const key = Buffer.from(cr.key as Uint8Array).toString();
        if (key === 'fail') call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'etcdserver: no leader' });
        else call.write({ header, watch_id: Number(cr.watch_id ?? 0), created: true });
      });
      call.on('cancelled', () => seen.cancelled++);
    }) as grpc.UntypedHandleCall);
    const gw = new Gateway({ methods, maxRequestBytes: 1024 });
    server = http.createServer((req, res) => {
      const p = new URL(req.url ?? '/', 'http://x').pathname;
      if (!gw.handle(req, res, p)) {
        res.writeHead(418);
        res.end('not the gateway');
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const a = server.address();
    port = typeof a === 'object' && a !== null ? a.port : 0;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  describe('unary', () => {
    it('answers JSON with the gateway headers', async () => {
      const r = await httpRequest(port, 'POST', '/v3/kv/range', '{"key":"Zm9v","limit":"4"}', { 'Grpc-Metadata-Hasleader': 'true', Authorization: 'tok' });
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.headers['grpc-metadata-content-type']).toBe('application/grpc');
      expect(r.text).toBe(`{"header":${HEADER_JSON},"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"3","version":"1","value":"PHY+"}],"count":"5"}`);
      expect(seen.metadata?.get('hasleader')).toEqual(['true']);
      expect(seen.metadata?.get('authorization')).toEqual(['tok']);
    });

    it('decodes pre-encoded answers', async () => {
      const r = await httpRequest(port, 'POST', '/v3/kv/put', '{"key":"AA=="}');
      expect(r.text).toBe('{"header":{"revision":"7"}}');
    });

    it('answers handler errors with the mapped status, the error body and a trailer', async () => {
      let r = await httpRequest(port, 'POST', '/v3/kv/range', '{}');
      expect(r.status).toBe(400);
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.headers.trailer).toBe('Grpc-Trailer-Content-Type');
      expect(r.trailers['grpc-trailer-content-type']).toBe('application/grpc');
      expect(r.text).toBe('{"error":"etcdserver: key is not provided","message":"etcdserver: key is not provided","code":3}');
      r = await httpRequest(port, 'POST', '/v3/kv/range', '{"key":"Z29uZQ=="}');
      expect([r.status, r.text]).toEqual([400, '{"error":"etcdserver: lease already exists","message":"etcdserver: lease already exists","code":9}']);
      r = await httpRequest(port, 'POST', '/v3/kv/range', '{"key":"dW5rbm93bg=="}');
      expect([r.status, r.text]).toEqual([500, '{"error":"raw failure","message":"raw failure","code":2}']);
    });

    it('answers undecodable bodies with 400, code 3 and no trailer', async () => {
      const r = await httpRequest(port, 'POST', '/v3/kv/range', '{"key":5}');
      expect(r.status).toBe(400);
      expect(r.headers.trailer).toBeUndefined();
      expect(r.text).toBe('{"error":"json: cannot unmarshal number into Go value of type []uint8","message":"json: cannot unmarshal number into Go value of type []uint8","code":3}');
    });

    it('refuses requests above the size limit', async () => {
      const r = await httpRequest(port, 'POST', '/v3/kv/range', JSON.stringify({ key: Buffer.alloc(2000).toString('base64') }));
      expect(r.status).toBe(429);
      expect(JSON.parse(r.text)).toMatchObject({ code: 8 });
      expect(r.text).toContain('grpc: received message larger than max');
    });

    it('answers methods without a handler as UNIMPLEMENTED', async () => {
      const r = await httpRequest(port, 'POST', '/v3/maintenance/defragment', '{}');
      expect(r.status).toBe(501);
      expect(JSON.parse(r.text)).toEqual({
        error: 'The server does not implement the method /etcdserverpb.Maintenance/Defragment',
        message: 'The server does not implement the method /etcdserverpb.Maintenance/Defragment',
        code: 12,
      });
    });

    it('cancels the call when the client goes away', async () => {
      const before = seen.cancelled;
      const s = net.connect(port, '127.0.0.1');
      await new Promise((r) => s.once('connect', r));
      const body = '{"key":"c2xvdw=="}';
      s.write(`POST /v3/kv/range HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      await new Promise((r) => setTimeout(r, 50));
      s.destroy();
      const deadline = Date.now() + 2000;
      while (seen.cancelled === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(seen.cancelled).toBe(before + 1);
    });
  });

  it('answers 404 Not Found for unknown gateway paths, 405 for other methods, and leaves other paths alone', async () => {
    let r = await httpRequest(port, 'POST', '/v3/kv/nope', '{}');
    expect([r.status, r.text, r.headers['content-type']]).toEqual([404, 'Not Found\n', 'text/plain; charset=utf-8']);
    r = await httpRequest(port, 'GET', '/v3/kv/range');
    expect([r.status, r.text]).toEqual([405, 'Method Not Allowed\n']);
    r = await httpRequest(port, 'POST', '/v3beta/kv/range', '{}');
    expect([r.status, r.text]).toEqual([418, 'not the gateway']);
  });

  describe('streams', () => {
    it('sends each request as it is decoded and writes one {"result"} line per message; the end of the body ends a keep-alive', async () => {
      const before = seen.keepAliveEnded;
      const r = await httpRequest(port, 'POST', '/v3/lease/keepalive', '{"ID":"5"}\n{"ID":6} {"ID":"7"}');
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.headers['grpc-metadata-content-type']).toBe('application/grpc');
      expect(r.text).toBe([5, 6, 7].map((id) => `{"result":{"header":${HEADER_JSON},"ID":"${id}","TTL":"60"}}\n`).join(''));
      expect(seen.keepAliveEnded).toBe(before + 1);
    });

    it('fails the call when the first request is not valid JSON (code 2, status 500)', async () => {
      const r = await httpRequest(port, 'POST', '/v3/watch', '{bad');
      expect(r.status).toBe(500);
      expect(r.text).toBe(
        `{"error":"invalid character 'b' looking for beginning of object key string","message":"invalid character 'b' looking for beginning of object key string","code":2}`,
      );
    });

    it('ends the stream with a stream error object, with the status when nothing was written', async () => {
      const r = await httpRequest(port, 'POST', '/v3/watch', '{"create_request":{"key":"ZmFpbA=="}}');
      expect(r.status).toBe(503);
      expect(r.text).toBe('{"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}}');
    });

    it('keeps a watch open after the body ends, streams requests that arrive over time, and cancels on disconnect', async () => {
      const before = seen.cancelled;
      seen.watchRequests = [];
      const lines: string[] = [];
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/v3/watch', agent: false });
      const firstLine = new Promise<void>((resolve) => {
        req.on('response', (res) => {
          let buf = '';
          res.on('data', (c: Buffer) => {
            buf += c.toString();
            let i;
            while ((i = buf.indexOf('\n')) >= 0) {
              lines.push(buf.slice(0, i));
              buf = buf.slice(i + 1);
              resolve();
            }
          });
          res.on('error', () => undefined);
        });
      });
      req.on('error', () => undefined);
      req.write('{"create_request":{"key":"YQ==","watch_id":1}}');
      await firstLine;
      req.write('{"create_request":{"key":"Yg==","watch_id":2}} {"progress');
      req.end('_request":{}} {garbage');
      const deadline = Date.now() + 2000;
      while (lines.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(lines).toEqual([1, 2].map((id) => `{"result":{"header":${HEADER_JSON},"watch_id":"${id}","created":true}}`));
      expect(seen.watchRequests.map((m) => m.request_union)).toEqual(['create_request', 'create_request', 'progress_request']);
      await new Promise((r) => setTimeout(r, 50));
      expect(seen.cancelled).toBe(before);
      req.destroy();
      while (seen.cancelled === before && Date.now() < deadline + 2000) await new Promise((r) => setTimeout(r, 10));
      expect(seen.cancelled).toBe(before + 1);
    });
  });
});
