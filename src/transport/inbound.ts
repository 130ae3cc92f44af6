/**
 * Accepted connections: the handshake checks (version, cluster, sender, receiver), refusals,
 * and the incoming message stream. Snapshot connections are handed to SnapshotReceiver.
 */
import type { Socket } from 'node:net';
import { decodeMessage } from '../raft/message-codec';
import { nodeId } from '../raft/types';
import type { NodeId } from '../raft/types';
import type { TransportContext } from './context';
import {
  ConnectionKind,
  decodeHello,
  encodeFrame,
  encodeRefusal,
  FRAME_HEADER_BYTES,
  FrameReader,
  FrameType,
  PROTOCOL_VERSION,
  ProtocolError,
  REFUSAL_REASONS,
  RefusalCode,
} from './frame';
import type { Frame, Hello } from './frame';
import { readFrames } from './framed-socket';
import { hexId } from './options';
import { SnapshotReceiver } from './snapshot-receiver';
import type { SnapshotConsumer } from './snapshot-receiver';

/** What the accepting side needs from the transport besides the shared context. */
export interface InboundHost {
  /** True when `id` is a current peer. */
  isPeer(id: bigint): boolean;
  /** True when `id` was removed from the cluster. */
  isRemoved(id: bigint): boolean;
  /** Records `socket` as the incoming stream of `id` (replacing an older one). */
  adoptStream(id: NodeId, socket: Socket): void;
  /** Counts one refused connection. */
  countRefusal(): void;
  /** The snapshot consumer (`onSnapshot`). */
  consumeSnapshot: SnapshotConsumer;
  /** The answer to a member query (JSON-serializable). */
  membersInfo(): unknown;
  /** Answers one peer request (JSON in, JSON out); rejects with an Error whose message is returned. */
  rpc(from: NodeId, req: unknown): Promise<unknown>;
}

const ignoreError = (): void => undefined;

/** The refusal a handshake earns, or undefined when it is accepted. Checked in etcd's order. */
export function checkHello(h: Hello, ctx: TransportContext, host: InboundHost): RefusalCode | undefined {
  if (h.version !== PROTOCOL_VERSION) return RefusalCode.IncompatibleVersion;
  if (h.clusterId !== BigInt.asUintN(64, ctx.clusterId)) return RefusalCode.ClusterIdMismatch;
  if (host.isRemoved(h.from)) return RefusalCode.MemberRemoved;
  if (!host.isPeer(h.from)) return RefusalCode.SenderNotFound;
  if (h.to !== BigInt.asUintN(64, ctx.memberId)) return RefusalCode.ReceiverMismatch;
  return undefined;
}

/**
 * Takes over a freshly accepted socket: waits (up to the dial timeout) for the Hello frame,
 * refuses or accepts it, then runs the connection as a message stream or a snapshot transfer.
 */
export function acceptConnection(socket: Socket, ctx: TransportContext, host: InboundHost): void {
  socket.on('error', ignoreError);
  ctx.track(socket);
  socket.setNoDelay(true);
  const reader = new FrameReader();
  const timer = setTimeout(() => {
    ctx.log('warn', 'closed peer connection that sent no handshake', { 'remote-addr': socket.remoteAddress });
    socket.destroy();
  }, ctx.dialTimeoutMs);
  const onClose = (): void => clearTimeout(timer);
  socket.once('close', onClose);

  const onData = (chunk: Buffer): void => {
    reader.push(chunk);
    let f: Frame | undefined;
    let hello: Hello;
    try {
      f = reader.next();
      if (f === undefined) return;
      if (f.type !== FrameType.Hello) throw new ProtocolError(`expected a handshake, got frame type ${f.type}`);
      hello = decodeHello(f.payload);
    } catch (err) {
      ctx.log('warn', 'closed peer connection after a protocol error', {
        'remote-addr': socket.remoteAddress,
        error: err instanceof Error ? err.message : String(err),
      });
      clearTimeout(timer);
      socket.destroy();
      return;
    }
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('close', onClose);
    onHello(socket, reader, hello, ctx, host);
  };
  socket.on('data', onData);
}

function onHello(socket: Socket, reader: FrameReader, hello: Hello, ctx: TransportContext, host: InboundHost): void {
  if (hello.kind === ConnectionKind.Query && hello.version === PROTOCOL_VERSION) {
    socket.resume();
    let info: string;
    try {
      info = JSON.stringify(host.membersInfo());
    } catch (err) {
      ctx.log('error', 'could not answer a member query', { error: err instanceof Error ? err.message : String(err) });
      socket.destroy();
      return;
    }
    socket.end(encodeFrame(FrameType.MembersInfo, Buffer.from(info, 'utf8')));
    socket.setTimeout(ctx.dialTimeoutMs, () => socket.destroy());
    return;
  }
  const refusal = checkHello(hello, ctx, host);
  if (refusal !== undefined) {
    host.countRefusal();
    ctx.log('warn', 'rejected connection from remote peer', {
      'local-member-id': hexId(ctx.memberId),
      'local-member-cluster-id': hexId(ctx.clusterId),
      'remote-peer-id': hexId(hello.from),
      'remote-peer-cluster-id': hexId(hello.clusterId),
      'remote-peer-id-to': hexId(hello.to),
      'remote-addr': socket.remoteAddress,
      reason: REFUSAL_REASONS[refusal],
    });
    // Discard whatever else the dialer sends until it closes.
    socket.resume();
    socket.end(encodeRefusal(refusal));
    socket.setTimeout(ctx.dialTimeoutMs, () => socket.destroy());
    return;
  }
  const from = nodeId(hello.from);
  socket.setKeepAlive(true, 5000);
  socket.write(encodeFrame(FrameType.Accept, new Uint8Array(0)));
  if (hello.kind === ConnectionKind.Snapshot) {
    new SnapshotReceiver(socket, reader, from, ctx, host.consumeSnapshot);
    return;
  }
  if (hello.kind === ConnectionKind.Rpc) {
    readFrames(
      socket,
      reader,
      (f) => {
        if (f.type !== FrameType.RpcRequest) {
          socket.destroy();
          return;
        }
        let req: unknown;
        try {
          req = JSON.parse(Buffer.from(f.payload).toString('utf8'));
        } catch {
          socket.destroy();
          return;
        }
        host.rpc(from, req).then(
          (ok) => socket.end(encodeFrame(FrameType.RpcResponse, Buffer.from(JSON.stringify({ ok }), 'utf8'))),
          (err: unknown) =>
            socket.end(encodeFrame(FrameType.RpcResponse, Buffer.from(JSON.stringify({ error: err instanceof Error ? err.message : String(err) }), 'utf8'))),
        );
      },
      () => socket.destroy(),
    );
    return;
  }
  host.adoptStream(from, socket);
  readFrames(
    socket,
    reader,
    (f) => onStreamFrame(socket, from, f, ctx),
    (err) => logStreamError(ctx, from, err.message),
  );
}

function onStreamFrame(socket: Socket, from: NodeId, f: Frame, ctx: TransportContext): void {
  if (f.type !== FrameType.Message) {
    logStreamError(ctx, from, `unexpected frame type ${f.type} on an incoming stream`);
    socket.destroy();
    return;
  }
  let m;
  try {
    // Copy: the payload may be a view into a larger socket chunk that the message's byte fields
    // would otherwise keep alive.
    m = decodeMessage(new Uint8Array(f.payload));
  } catch (err) {
    logStreamError(ctx, from, err instanceof Error ? err.message : String(err));
    socket.destroy();
    return;
  }
  if (m.from !== from || m.to !== ctx.memberId) {
    ctx.log('warn', 'dropped Raft message with mismatched sender or receiver', {
      'local-member-id': hexId(ctx.memberId),
      'remote-peer-id': hexId(from),
      'message-from': hexId(m.from),
      'message-to': hexId(m.to),
    });
    return;
  }
  const c = ctx.counters(from);
  if (c !== undefined) {
    c.receivedMessages++;
    c.receivedBytes += FRAME_HEADER_BYTES + f.payload.length;
  }
  ctx.deliver(m);
}

function logStreamError(ctx: TransportContext, from: NodeId, error: string): void {
  ctx.log('warn', 'closed TCP streaming connection with remote peer', {
    'local-member-id': hexId(ctx.memberId),
    'remote-peer-id': hexId(from),
    error,
  });
}
