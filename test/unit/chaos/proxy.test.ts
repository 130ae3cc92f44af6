/** The chaos proxy delays bytes without ever reordering them, as TCP would. */
import * as net from 'node:net';
import { FaultProxy } from '../../../scripts/chaos/proxy';
import { freePort } from '../../../scripts/free-port';
import { SeededRng } from '../../../src/raft/rng';
import { ConnectionKind, encodeHello, PROTOCOL_VERSION } from '../../../src/transport/frame';

function seeded(seed: number): () => number {
  const r = new SeededRng(seed);
  return () => r.nextFloat();
}

test('delayed chunks with jitter, and chunks sent after the delay ends, arrive in order', async () => {
  const received: Buffer[] = [];
  const sink = net.createServer((s) => s.on('data', (b: Buffer) => received.push(b)));
  const sinkPort = await freePort();
  await new Promise<void>((r) => sink.listen(sinkPort, '127.0.0.1', r));
  const proxy = new FaultProxy(seeded(7));
  const proxyPort = await freePort();
  await proxy.listen(1, proxyPort, sinkPort);
  proxy.setMemberId('5', 0);
  proxy.setLink(0, 1, { delayMs: 15, jitterMs: 14 });
  const c = net.connect(proxyPort, '127.0.0.1');
  try {
    c.setNoDelay(true);
    await new Promise<void>((r) => c.once('connect', r));
    const hello = Buffer.from(encodeHello({ version: PROTOCOL_VERSION, kind: ConnectionKind.Stream, clusterId: 1n, from: 5n, to: 6n }));
    const sent: Buffer[] = [hello];
    c.write(hello);
    for (let i = 0; i < 400; i++) {
      const b = Buffer.from(`chunk-${i};`);
      sent.push(b);
      c.write(b);
      if (i === 250) proxy.setLink(0, 1, { delayMs: 0, jitterMs: 0 });
      await new Promise((r) => setTimeout(r, i % 10 === 0 ? 2 : 0));
    }
    const want = Buffer.concat(sent);
    const deadline = Date.now() + 5000;
    while (Buffer.concat(received).length < want.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(Buffer.concat(received).toString('latin1')).toBe(want.toString('latin1'));
  } finally {
    c.destroy();
    await proxy.close();
    await new Promise<void>((r) => sink.close(() => r()));
  }
});
