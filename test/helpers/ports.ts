import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';

/** `n` distinct ports free for both TCP and UDP on 127.0.0.1 (held open together, so none repeats). */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>(resolve => {
          const s = createServer().listen(0, '127.0.0.1', () => resolve(s));
        })
    )
  );
  const ports = servers.map(s => (s.address() as { port: number }).port);
  // Check UDP too: a peer port is a UDP port.
  for (const port of ports) {
    await new Promise<void>((resolve, reject) => {
      const u = createSocket('udp4');
      u.once('error', reject);
      u.bind(port, '127.0.0.1', () => u.close(() => resolve()));
    });
  }
  await Promise.all(servers.map(s => new Promise(resolve => s.close(resolve))));
  return ports;
}
