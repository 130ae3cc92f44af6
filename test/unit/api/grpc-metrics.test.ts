/**
 * gRPC server metrics through a real grpc-js server and client: started and handled counts per
 * method and code for unary and streaming calls, zero series for every method of a registered
 * service, calls refused by the leader guard not counted (etcd's interceptor order), and the final
 * handlers reported through onRegister.
 */
import * as grpc from '@grpc/grpc-js';
import { GRPC_CODE_NAMES, GrpcServerMetrics, grpcCodeName, grpcType } from '../../../src/api/grpc-metrics';
import { bindServer, createGrpcServer } from '../../../src/api/grpc-server';
import { messageType } from '../../../src/api/proto';
import { MetricsRegistry } from '../../../src/server/metrics';

const rangeReq = messageType('etcdserverpb.RangeRequest');
const rangeRes = messageType('etcdserverpb.RangeResponse');
const watchReq = messageType('etcdserverpb.WatchRequest');
const watchRes = messageType('etcdserverpb.WatchResponse');

function enc(t: typeof rangeReq): (v: Record<string, unknown>) => Buffer {
  return (v) => Buffer.from(t.encode(v).finish());
}
function dec(t: typeof rangeReq): (b: Buffer) => Record<string, unknown> {
  return (b) => t.decode(b) as unknown as Record<string, unknown>;
}

describe('grpc server metrics', () => {
  let server: grpc.Server;
  let client: grpc.Client;
  let metrics: GrpcServerMetrics;
  let reg: MetricsRegistry;
  let leader = true;
  const registered = new Map<string, grpc.UntypedHandleCall>();

  beforeAll(async () => {
    reg = new MetricsRegistry();
    metrics = new GrpcServerMetrics(reg);
    server = createGrpcServer(
      {
        'etcdserverpb.KV': {
          Range: ((call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>, cb: grpc.sendUnaryData<unknown>) => {
            const key = Buffer.from(call.request.key as Uint8Array).toString();
            if (key === 'bad') cb({ code: grpc.status.INVALID_ARGUMENT, details: 'etcdserver: key is not provided' });
            else setTimeout(() => cb(null, { count: 1 }), 5);
          }) as grpc.UntypedHandleCall,
        },
        'etcdserverpb.Watch': {
          Watch: ((call: grpc.ServerDuplexStream<Record<string, unknown>, unknown>) => {
            call.on('data', (req: Record<string, unknown>) => {
              const key = Buffer.from(((req.create_request as Record<string, unknown>).key as Uint8Array) ?? []).toString();
              if (key === 'fail') call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'etcdserver: no leader' });
              else if (key === 'end') call.end();
              else call.write({ created: true });
            });
          }) as grpc.UntypedHandleCall,
        },
      },
      {
        maxReceiveBytes: 1 << 20,
        guard: { hasLeader: () => leader, isLearner: () => false, electionMs: 1000 },
        metrics,
        onRegister: (path, h) => registered.set(path, h),
      },
    );
    const port = await bindServer(server, '127.0.0.1', 0);
    client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  });

  afterAll(() => {
    client.close();
    server.forceShutdown();
  });

  function range(key: string, md = new grpc.Metadata()): Promise<grpc.ServiceError | null> {
    return new Promise((resolve) => {
      client.makeUnaryRequest('/etcdserverpb.KV/Range', enc(rangeReq), dec(rangeRes), { key: Buffer.from(key) }, md, (err) => resolve(err));
    });
  }

  function watch(key: string, cancelAfterFirst = false): Promise<number> {
    return new Promise((resolve) => {
      const call = client.makeBidiStreamRequest('/etcdserverpb.Watch/Watch', enc(watchReq), dec(watchRes));
      call.on('data', () => {
        if (cancelAfterFirst) call.cancel();
      });
      call.on('status', (st: grpc.StatusObject) => resolve(st.code));
      call.on('error', () => undefined);
      call.write({ create_request: { key: Buffer.from(key) } });
    });
  }

  const rangeLabels = ['etcdserverpb.KV', 'Range', 'unary'] as const;
  const watchLabels = ['etcdserverpb.Watch', 'Watch', 'bidi_stream'] as const;

  it('exports every method of a registered service at 0, for every code', async () => {
    const text = await reg.render();
    for (const code of GRPC_CODE_NAMES) {
      expect(text).toContain(`grpc_server_handled_total{grpc_code="${code}",grpc_method="Compact",grpc_service="etcdserverpb.KV",grpc_type="unary"} 0`);
    }
    expect(text).toContain('grpc_server_started_total{grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"} 0');
    expect(text).not.toContain('grpc_service="etcdserverpb.Lease"');
    expect(text).toContain('# TYPE grpc_server_handled_total counter');
  });

  it('counts unary calls by code', async () => {
    expect(await range('a')).toBeNull();
    expect((await range('bad'))?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(metrics.startedCount(...rangeLabels)).toBe(2);
    expect(metrics.handledCount(...rangeLabels, 'OK')).toBe(1);
    expect(metrics.handledCount(...rangeLabels, 'InvalidArgument')).toBe(1);
    const text = await reg.render();
    expect(text).toContain('grpc_server_handled_total{grpc_code="InvalidArgument",grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"} 1');
  });

  it('does not count calls the leader guard refuses', async () => {
    leader = false;
    const md = new grpc.Metadata();
    md.set('hasleader', 'true');
    const err = await range('a', md);
    leader = true;
    expect(err?.code).toBe(grpc.status.UNAVAILABLE);
    expect(metrics.startedCount(...rangeLabels)).toBe(2);
  });

  it('counts streams when they end, fail or are cancelled', async () => {
    expect(await watch('end')).toBe(grpc.status.OK);
    expect(await watch('fail')).toBe(grpc.status.UNAVAILABLE);
    expect(await watch('x', true)).toBe(grpc.status.CANCELLED);
    const deadline = Date.now() + 2000;
    while (metrics.handledCount(...watchLabels, 'Canceled') === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(metrics.startedCount(...watchLabels)).toBe(3);
    expect(metrics.handledCount(...watchLabels, 'OK')).toBe(1);
    expect(metrics.handledCount(...watchLabels, 'Unavailable')).toBe(1);
    expect(metrics.handledCount(...watchLabels, 'Canceled')).toBe(1);
  });

  it('reports the final (guarded, counted) handlers', async () => {
    expect([...registered.keys()].sort()).toEqual(['/etcdserverpb.KV/Range', '/etcdserverpb.Watch/Watch']);
    const h = registered.get('/etcdserverpb.KV/Range') as unknown as (call: unknown, cb: (err: unknown) => void) => void;
    const before = metrics.startedCount(...rangeLabels);
    await new Promise<void>((resolve) => h({ request: { key: Buffer.from('a') }, metadata: new grpc.Metadata() }, () => resolve()));
    expect(metrics.startedCount(...rangeLabels)).toBe(before + 1);
  });

  it('names codes and types as grpc-go does', () => {
    expect(grpcCodeName(0)).toBe('OK');
    expect(grpcCodeName(1)).toBe('Canceled');
    expect(grpcCodeName(16)).toBe('Unauthenticated');
    expect(grpcCodeName(99)).toBe('Code(99)');
    expect(grpcType(false, false)).toBe('unary');
    expect(grpcType(true, false)).toBe('client_stream');
    expect(grpcType(false, true)).toBe('server_stream');
    expect(grpcType(true, true)).toBe('bidi_stream');
  });
});
