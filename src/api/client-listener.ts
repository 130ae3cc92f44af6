/**
 * One client port serving gRPC (HTTP/2) and plain HTTP/1.x side by side, told apart by the first
 * bytes of each connection, as etcd does on its client URLs.
 *
 * Per accepted connection:
 * 1. Read until the bytes are known not to start the HTTP/2 client preface → HTTP/1.x: the bytes
 *    are put back (`unshift`) and the socket is given to the HTTP/1 server.
 * 2. On a complete preface, answer at once with an empty SETTINGS frame (grpc-go clients wait for
 *    the server preface before sending a request) and keep reading until the first request's
 *    header block and the client's ACK of that SETTINGS have arrived (see protocol-sniffer.ts).
 * 3. `h2`: the bytes minus that ACK are put back and the raw socket is injected into the gRPC
 *    server: from here on Node's native HTTP/2 stack reads the socket, no JavaScript touches the
 *    bytes. `h2-rewrite` (the request's `:authority` is a URL, as etcdctl 3.4 sends it): the
 *    socket is wrapped in an AuthorityFixStream that rewrites the client's header blocks, and the
 *    wrapper is injected instead.
 *
 * With the native gRPC server (H2GrpcServer, see ./h2) steps 2 and 3 collapse: as soon as the
 * client preface is complete the socket and every octet read so far go to that server, which
 * sends its own SETTINGS and accepts any `:authority`.
 *
 * Bounds: a connection is examined for at most `sniffTimeoutMs` and `maxSniffBytes`; past them a
 * completed preface takes the rewriting path (correct for every client) and anything else goes to
 * the HTTP/1 server, which answers or times it out.
 */
import * as grpc from '@grpc/grpc-js';
import * as http from 'node:http';
import * as net from 'node:net';
import type { Logger } from '../server/logger';
import { AuthorityFixStream } from './h2-authority-fix';
import { emptySettingsFrame } from './h2-frames';
import { H2GrpcServer } from './h2/server';
import { ConnectionSniffer, DEFAULT_MAX_SNIFF_BYTES, SniffVerdict } from './protocol-sniffer';

/** Default time limit for classifying a connection, in ms. */
export const DEFAULT_SNIFF_TIMEOUT_MS = 1000;

/** Default grace period of `stop()`, in ms: open connections are destroyed after it. */
export const DEFAULT_STOP_GRACE_MS = 2000;

/**
 * Answers every HTTP/1.x request as Go's http.NotFound does (etcd's answer for an unknown path):
 * 404, "404 page not found\n", text/plain; charset=utf-8, X-Content-Type-Options: nosniff.
 */
export function notFoundHandler(_req: http.IncomingMessage, res: http.ServerResponse): void {
  const body = '404 page not found\n';
  res.writeHead(404, {
    'Content-Type': 'text/plain; charset=utf-8',
    'X-Content-Type-Options': 'nosniff',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** HTTP/1 servers whose connection tracking was started here. */
const tracked = new WeakSet<http.Server>();

/**
 * Node starts an http.Server's connection tracking (headers and request timeouts, closing idle
 * connections on close) when it emits 'listening'. A server that only receives handed-over
 * sockets never listens, so the event is emitted once for it here.
 */
function startConnectionTracking(server: http.Server): void {
  if (server.listening || tracked.has(server)) return;
  tracked.add(server);
  server.emit('listening');
}

/** Options of a ClientListener. */
export interface ClientListenerOptions {
  /** Address to bind (an IP literal or host name; "0.0.0.0" / "::" for all). */
  host: string;
  /** Port to bind; 0 picks a free one (see `port` after `start()`). */
  port: number;
  /**
   * The gRPC server HTTP/2 connections are injected into: a grpc-js server (through its
   * connection injector) or the native H2GrpcServer.
   */
  grpcServer: grpc.Server | H2GrpcServer;
  /**
   * Who serves HTTP/1.x connections: an http.Server (which needs not listen anywhere; sockets are
   * handed to it with its 'connection' event, and if it is not listening its 'listening' event is
   * emitted once so that Node enforces its timeouts) or a request listener, for which the listener
   * makes and owns an http.Server (closed by `stop()`). Default: `notFoundHandler`.
   */
  http1?: http.Server | http.RequestListener;
  /** Time limit for classifying a connection, in ms (default 1000). */
  sniffTimeoutMs?: number;
  /** Octets examined at most per connection before falling back (default 64 KiB). */
  maxSniffBytes?: number;
  /** Where connection-level events are logged (debug level); default: nowhere. */
  logger?: Logger;
}

/** How many connections went each way since start. */
export interface ClientListenerStats {
  /** Handed to the HTTP/1 server. */
  http1: number;
  /** Injected into the gRPC server as raw sockets. */
  h2: number;
  /** Injected into the gRPC server through the authority-rewriting wrapper. */
  h2Rewritten: number;
  /** Closed or failed by the client before they were classified. */
  abandoned: number;
}

/** Serves one client address: gRPC and HTTP/1.x on the same port. Start with `start()`, end with `stop()`. */
export class ClientListener {
  private readonly opts: ClientListenerOptions;
  private readonly http1: http.Server;
  private readonly ownsHttp1: boolean;
  private readonly sniffTimeoutMs: number;
  private readonly maxSniffBytes: number;
  private injector: grpc.ConnectionInjector | undefined;
  /** The native server when `grpcServer` is one (set while started). */
  private native: H2GrpcServer | undefined;
  /** Connections handed to the native server, for a graceful stop. */
  private readonly nativeConns = new Set<{ shutdown(): void }>();
  private server: net.Server | undefined;
  private boundPort = 0;
  /** Every accepted socket still open. */
  private readonly sockets = new Set<net.Socket>();
  /** Sockets still being classified, with their cleanup. */
  private readonly sniffing = new Map<net.Socket, () => void>();
  private readonly counts: ClientListenerStats = { http1: 0, h2: 0, h2Rewritten: 0, abandoned: 0 };

  /** Creates a listener; nothing is bound until `start()`. */
  constructor(opts: ClientListenerOptions) {
    this.opts = opts;
    const h = opts.http1 ?? notFoundHandler;
    if (h instanceof http.Server) {
      this.http1 = h;
      this.ownsHttp1 = false;
    } else {
      this.http1 = http.createServer(h);
      this.ownsHttp1 = true;
    }
    this.sniffTimeoutMs = opts.sniffTimeoutMs ?? DEFAULT_SNIFF_TIMEOUT_MS;
    this.maxSniffBytes = opts.maxSniffBytes ?? DEFAULT_MAX_SNIFF_BYTES;
  }

  /** The bound port (0 before `start()` resolved). */
  get port(): number {
    return this.boundPort;
  }

  /** Connection counts since start (a copy). */
  get stats(): ClientListenerStats {
    return { ...this.counts };
  }

  /**
   * Binds host:port and starts accepting; resolves with the bound port, rejects with the bind
   * error (e.g. EADDRINUSE). Call once.
   */
  start(): Promise<number> {
    if (this.server !== undefined) return Promise.reject(new Error('client listener already started'));
    const server = net.createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.server = server;
    return new Promise<number>((resolve, reject) => {
      const onError = (err: Error): void => {
        this.server = undefined;
        reject(err);
      };
      server.once('error', onError);
      server.listen(this.opts.port, this.opts.host, () => {
        server.off('error', onError);
        server.on('error', (err) => this.opts.logger?.warn('client listener error', { error: err.message }));
        const addr = server.address();
        this.boundPort = typeof addr === 'object' && addr !== null ? addr.port : this.opts.port;
        const gs = this.opts.grpcServer;
        if (gs instanceof H2GrpcServer) this.native = gs;
        else this.injector = gs.createConnectionInjector(grpc.ServerCredentials.createInsecure());
        startConnectionTracking(this.http1);
        resolve(this.boundPort);
      });
    });
  }

  /**
   * Stops accepting, drops connections still being classified, asks gRPC sessions to finish
   * (GOAWAY) and closes idle HTTP/1 connections; whatever is still open after `graceMs` is
   * destroyed. Resolves when every accepted connection is closed. Safe to call more than once.
   */
  stop(graceMs: number = DEFAULT_STOP_GRACE_MS): Promise<void> {
    const server = this.server;
    if (server === undefined) return Promise.resolve();
    this.server = undefined;
    return new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        for (const s of this.sockets) s.destroy();
      }, graceMs);
      server.close(() => {
        clearTimeout(force);
        resolve();
      });
      for (const [socket, cleanup] of this.sniffing) {
        cleanup();
        socket.destroy();
      }
      this.sniffing.clear();
      const injector = this.injector;
      this.injector = undefined;
      if (injector !== undefined) {
        injector.drain(graceMs);
        injector.destroy();
      }
      this.native = undefined;
      for (const c of this.nativeConns) c.shutdown();
      if (this.ownsHttp1) this.http1.close();
    });
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    const sniffer = new ConnectionSniffer({ maxBytes: this.maxSniffBytes });
    let prefaceSent = false;
    const onData = (chunk: Buffer): void => {
      const verdict = sniffer.push(chunk);
      // The native server sends its own SETTINGS and reads the rest itself.
      if (this.native !== undefined && sniffer.prefaceComplete) return settle('h2');
      if (!prefaceSent && sniffer.prefaceComplete) {
        prefaceSent = true;
        socket.write(emptySettingsFrame());
      }
      if (verdict !== 'pending') settle(verdict);
    };
    const onGone = (): void => {
      cleanup();
      this.counts.abandoned++;
      socket.destroy();
    };
    const timer = setTimeout(() => settle(sniffer.timeout()), this.sniffTimeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onGone);
      socket.off('error', onGone);
      socket.off('close', onGone);
      this.sniffing.delete(socket);
    };
    const settle = (verdict: SniffVerdict): void => {
      cleanup();
      socket.pause();
      this.dispatch(socket, sniffer, verdict);
    };
    this.sniffing.set(socket, cleanup);
    socket.on('data', onData);
    socket.on('end', onGone);
    socket.on('error', onGone);
    socket.on('close', onGone);
  }

  private dispatch(socket: net.Socket, sniffer: ConnectionSniffer, verdict: SniffVerdict): void {
    const injector = this.injector;
    const log = this.opts.logger;
    if (log !== undefined && log.enabled('debug')) {
      log.debug('classified client connection', {
        'remote-addr': socket.remoteAddress,
        protocol: verdict,
        authority: sniffer.authority,
        'sniffed-bytes': sniffer.received,
      });
    }
    const native = this.native;
    if (native !== undefined && (verdict === 'h2' || verdict === 'h2-rewrite')) {
      this.counts.h2++;
      const conn = native.injectConnection(socket, sniffer.bytes());
      this.nativeConns.add(conn);
      socket.once('close', () => this.nativeConns.delete(conn));
      return;
    }
    switch (verdict) {
      case 'http1': {
        this.counts.http1++;
        const bytes = sniffer.bytes();
        if (bytes.length > 0) socket.unshift(bytes);
        this.http1.emit('connection', socket);
        socket.resume();
        return;
      }
      case 'h2': {
        if (injector === undefined) break;
        this.counts.h2++;
        socket.unshift(sniffer.replayForServer());
        injector.injectConnection(socket);
        return;
      }
      case 'h2-rewrite': {
        if (injector === undefined) break;
        this.counts.h2Rewritten++;
        injector.injectConnection(new AuthorityFixStream(socket, sniffer.bytes(), { stripFirstSettingsAck: true }));
        return;
      }
      case 'pending':
        break;
    }
    socket.destroy();
  }
}
