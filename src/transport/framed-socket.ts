/** Reading frames from a socket once its handshake is done. */
import type { Socket } from 'node:net';
import type { Frame, FrameReader } from './frame';

/**
 * Feeds `socket`'s data through `reader` and calls `onFrame` for each complete frame, starting
 * with frames already buffered in `reader`. Stops at once when the socket is destroyed (also when
 * `onFrame` destroys it). A malformed stream (see FrameReader) calls `onError` and destroys the
 * socket. The socket is resumed if it was paused.
 */
export function readFrames(
  socket: Socket,
  reader: FrameReader,
  onFrame: (f: Frame) => void,
  onError: (err: Error) => void,
): void {
  const drainReader = (): void => {
    for (;;) {
      if (socket.destroyed) return;
      let f: Frame | undefined;
      try {
        f = reader.next();
      } catch (err) {
        onError(err instanceof Error ? err : new Error(String(err)));
        socket.destroy();
        return;
      }
      if (f === undefined) return;
      onFrame(f);
    }
  };
  socket.on('data', (chunk: Buffer) => {
    reader.push(chunk);
    drainReader();
  });
  drainReader();
  if (!socket.destroyed) socket.resume();
}
