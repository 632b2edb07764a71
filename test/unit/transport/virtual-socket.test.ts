import test from 'ava';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { RudpSocket, VirtualNetwork } from '../../../src/transport';
import type { RudpConnection } from '../../../src/transport';

// The public API over the seeded virtual network (no real sockets): what users get for their CI.
test('RudpSocket over a lossy, reordering virtual network delivers a stream intact', async t => {
  // The transport's timers are unref'd (a real UDP socket keeps a process alive) and the
  // virtual network has no socket: keep the loop alive, or ava may see an idle process
  // while only a retransmission timer is pending and end the test as "never resolved".
  const keepAlive = setInterval(() => undefined, 1000);
  t.teardown(() => clearInterval(keepAlive));
  const net = new VirtualNetwork({
    seed: 42,
    defaults: { lossRate: 0.05, reorderRate: 0.1, duplicateRate: 0.02, delayMs: [0.5, 2] },
    clock: {
      now: () => performance.now(),
      setTimer: (ms, fn) => {
        const h = setTimeout(fn, ms);
        return { cancel: () => clearTimeout(h) };
      },
    },
  });
  const secret = Buffer.from('virtual-network-secret');
  const server = await RudpSocket.bind({ secret, socket: net.socket('10.0.0.2', 7401) });
  const client = await RudpSocket.bind({ secret, socket: net.socket('10.0.0.1') });
  server.on('connection', (c: RudpConnection) => c.pipe(c));
  const conn = await client.connect({ host: '10.0.0.2', port: 7401 }, { timeoutMs: 3000 });
  const data = randomBytes(300_000);
  const parts: Buffer[] = [];
  conn.on('data', (c: Buffer) => parts.push(c));
  conn.end(data);
  await once(conn, 'end');
  t.true(Buffer.concat(parts).equals(data), 'seed 42');
  t.true(net.drops.get('loss') > 0, 'the network did lose datagrams');
  await client.close();
  await server.close();
  net.stop();
});
