/**
 * The whole mux + rpc stack over kernel TCP on loopback: thousands of concurrent
 * requests, each answered or failed with a reason, none left hanging.
 */
import { createServer, connect } from 'node:net';
import type { Server, Socket } from 'node:net';
import test from 'ava';
import { InvalidArgumentError } from '../../../src/common';
import { Mux } from '../../../src/mux';
import { RpcConnection } from '../../../src/rpc';
import type { Envelope } from '../../../src/rpc';
import { waitFor } from '../../helpers/wait';

const CHANNELS = [
  { id: 0, priority: 1, urgent: true, maxMessageBytes: 64 * 1024 },
  // Queues sized for the test's burst (5,000 requests of up to 16 KB at once).
  {
    id: 1,
    priority: 4,
    sendQueueCapacity: 8192,
    sendQueueBytes: 256 * 1024 * 1024,
    maxMessageBytes: 1024 * 1024,
  },
];

async function listen(onConn: (s: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer(onConn);
  await new Promise<void>(r => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  return { server, port: typeof addr === 'object' && addr ? addr.port : 0 };
}

async function dial(port: number): Promise<Socket> {
  const s = connect({ host: '127.0.0.1', port });
  s.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  return s;
}

test('5,000 concurrent requests over TCP: every one answered or failed with a reason', async t => {
  t.timeout(60_000);
  const serverSockets: Socket[] = [];
  const { server, port } = await listen(sock => {
    serverSockets.push(sock);
    sock.setNoDelay(true);
    const mux = new Mux(sock, { channels: CHANNELS });
    const rpc = new RpcConnection(mux, { channelId: 1, maxConcurrentHandlers: 8192 });
    rpc.setHandler(async req => {
      if (req.op === 13) throw new InvalidArgumentError('op 13 is refused');
      // On purpose: handlers finish out of order (0-2 ms), replies must still match up.
      await new Promise(r => setTimeout(r, req.body.length % 3));
      return { body: req.body, headers: { seen: req.headers.traceparent ?? '' } };
    });
  });
  const mux = new Mux(await dial(port), { channels: CHANNELS });
  const rpc = new RpcConnection(mux, { channelId: 1, maxInFlight: 8192 });
  const N = 5000;
  const results = await Promise.allSettled(
    Array.from({ length: N }, (_, i) => {
      const body = Buffer.alloc((i * 7919) % 16_384, i % 251);
      return rpc
        .request(
          { op: i % 50 === 0 ? 13 : 1, body, headers: { traceparent: `00-${i}` } },
          { timeoutMs: 30_000 }
        )
        .then((res: Envelope) => {
          if (!res.body.equals(body)) throw new Error(`body of request ${i} came back different`);
          if (res.headers.seen !== `00-${i}`) throw new Error(`headers of request ${i} lost`);
          return i;
        });
    })
  );
  const ok = results.filter(r => r.status === 'fulfilled').length;
  const failed = results
    .filter(r => r.status === 'rejected')
    .map(r => (r as PromiseRejectedResult).reason as Error);
  t.is(ok + failed.length, N);
  const reasons = [...new Set(failed.map(e => `${e.name}: ${e.message}`))].slice(0, 5).join('; ');
  t.is(failed.length, N / 50, `exactly the refused ones failed: ${reasons}`);
  t.true(failed.every(e => e.name === 'InvalidArgumentError'));
  t.is(rpc.inFlight, 0);
  mux.close('done');
  server.close();
  for (const s of serverSockets) s.destroy();
});

test('a connection reset mid-flight fails every pending request at once with ConnectionClosedError', async t => {
  t.timeout(30_000);
  const serverSockets: Socket[] = [];
  let received = 0;
  const { server, port } = await listen(sock => {
    serverSockets.push(sock);
    const mux = new Mux(sock, { channels: CHANNELS });
    const rpc = new RpcConnection(mux, { channelId: 1, maxConcurrentHandlers: 8192 });
    rpc.setHandler(() => {
      received++;
      return new Promise(() => {}); // never answers
    });
  });
  const mux = new Mux(await dial(port), { channels: CHANNELS });
  const rpc = new RpcConnection(mux, { channelId: 1, maxInFlight: 4096 });
  const calls = Array.from({ length: 2000 }, () =>
    rpc.request({ body: Buffer.alloc(64) }, { timeoutMs: 600_000 })
  );
  await waitFor('2000 requests at the handler', () => received >= 2000, 2000);
  t.is(received, 2000);
  serverSockets[0].destroy(); // the peer vanishes
  const results = await Promise.allSettled(calls);
  t.true(
    results.every(
      r => r.status === 'rejected' && (r.reason as Error).name === 'ConnectionClosedError'
    )
  );
  t.is(rpc.inFlight, 0);
  t.true(mux.closed);
  server.close();
});
