/** Dialing a peer: connect to its URLs in order and complete the handshake. */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { decodeRefusal, encodeHello, FrameReader, FrameType, ProtocolError } from './frame';
import type { Frame, Hello, Refusal } from './frame';
import type { PeerAddress } from './peer-url';

/** The result of a dial. On `accepted` the caller owns the (paused) socket and its reader. */
export type DialOutcome =
  | { kind: 'accepted'; socket: Socket; reader: FrameReader; address: PeerAddress }
  | { kind: 'refused'; refusal: Refusal; address: PeerAddress }
  | { kind: 'failed'; error: Error };

/** How to dial. */
export interface DialOptions {
  /** Time allowed per address to connect and receive the handshake answer, in ms. */
  timeoutMs: number;
  /** Called with every socket created, before any I/O (for tracking by the transport). */
  track(socket: Socket): void;
  /** Aborting destroys the socket being dialed; the dial then resolves as failed. */
  signal: AbortSignal;
}

const ignoreError = (): void => undefined;

/**
 * Tries `addresses` in order until one accepts the handshake `hello`. A refusal ends the dial
 * (every address leads to the same member). Never rejects: failures resolve as `failed` with
 * the last error. The accepted socket is paused, keeps a no-op 'error' listener (errors surface
 * as 'close'), and `reader` may already hold frames that followed the acceptance.
 */
export async function dialPeer(addresses: readonly PeerAddress[], hello: Hello, opts: DialOptions): Promise<DialOutcome> {
  const frame = encodeHello(hello);
  let last: DialOutcome = { kind: 'failed', error: new Error('no usable peer URL') };
  for (const address of addresses) {
    if (opts.signal.aborted) return { kind: 'failed', error: new Error('dial aborted') };
    last = await dialOnce(address, frame, opts);
    if (last.kind !== 'failed') return last;
  }
  return last;
}

function dialOnce(address: PeerAddress, helloFrame: Buffer, opts: DialOptions): Promise<DialOutcome> {
  return new Promise<DialOutcome>((resolve) => {
    const socket = connect({ host: address.host, port: address.port });
    socket.on('error', ignoreError);
    opts.track(socket);
    const reader = new FrameReader();
    let settled = false;

    const finish = (outcome: DialOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal.removeEventListener('abort', onAbort);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      if (outcome.kind === 'accepted') socket.pause();
      else socket.destroy();
      resolve(outcome);
    };
    const fail = (error: Error): void => finish({ kind: 'failed', error });
    const onAbort = (): void => fail(new Error('dial aborted'));
    const onError = (err: Error): void => fail(err);
    const onClose = (): void => fail(new Error(`connection to ${address.url} closed during handshake`));
    const onFrame = (f: Frame): void => {
      if (f.type === FrameType.Accept) {
        finish({ kind: 'accepted', socket, reader, address });
      } else if (f.type === FrameType.Reject) {
        finish({ kind: 'refused', refusal: decodeRefusal(f.payload), address });
      } else {
        throw new ProtocolError(`unexpected frame type ${f.type} during handshake`);
      }
    };
    const onData = (chunk: Buffer): void => {
      reader.push(chunk);
      try {
        const f = reader.next();
        if (f !== undefined) onFrame(f);
      } catch (err) {
        fail(err instanceof Error ? err : new Error(String(err)));
      }
    };

    const timer = setTimeout(() => fail(new Error(`handshake with ${address.url} timed out`)), opts.timeoutMs);
    opts.signal.addEventListener('abort', onAbort);
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.once('connect', () => {
      socket.setNoDelay(true);
      socket.write(helloFrame);
    });
    if (opts.signal.aborted) onAbort();
  });
}
