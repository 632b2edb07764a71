/**
 * The whole stack (mux + rpc) over the real reliable-UDP transport on loopback, with
 * loss injected under the transport: thousands of concurrent requests, every one
 * answered or failed with a reason, none hanging.
 */
import test from 'ava';
import { isMeshwireError } from '../../../src/common';
import { Mux } from '../../../src/mux';
import { RpcConnection } from '../../../src/rpc';
import type { Envelope } from '../../../src/rpc';
import { RudpSocket, bindUdp } from '../../../src/transport';
import type { DatagramSocket, RemoteInfo } from '../../../src/transport';
import { rng } from '../../unit/mux/helpers';
import { waitFor } from '../../helpers/wait';

const SECRET = Buffer.alloc(32, 9);
const CHANNELS = [
  { id: 0, priority: 1, urgent: true, maxMessageBytes: 64 * 1024 },
  {
    id: 1,
    priority: 4,
    sendQueueCapacity: 8192,
    sendQueueBytes: 256 * 1024 * 1024,
    maxMessageBytes: 1024 * 1024,
  },
];

/** A real UDP socket that loses a seeded fraction of what it sends, or everything once cut. */
class LossySocket implements DatagramSocket {
  get kind(): string {
    return this.inner.kind;
  }
  dropped = 0;
  cut = false;
  constructor(
    private readonly inner: DatagramSocket,
    private readonly rand: () => number,
    private readonly loss: number
  ) {}
  send(parts: Buffer[], port: number, address: string): void {
    if (this.cut || this.rand() < this.loss) {
      this.dropped++;
      return;
    }
    this.inner.send(parts, port, address);
  }
  onMessage(handler: (msg: Buffer, from: RemoteInfo) => void): void {
    this.inner.onMessage(handler);
  }
  address(): { host: string; port: number } {
    return this.inner.address();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

async function setup(
  seed: number,
  loss: number,
  muxInit: { pingIntervalMs?: number; pongTimeoutMs?: number } = {}
) {
  const rand = rng(seed);
  const serverUdp = new LossySocket(
    await bindUdp('127.0.0.1', 0, { maxDatagramSize: 1472 }),
    rand,
    loss
  );
  const clientUdp = new LossySocket(
    await bindUdp('127.0.0.1', 0, { maxDatagramSize: 1472 }),
    rand,
    loss
  );
  const server = await RudpSocket.bind({ socket: serverUdp, secret: SECRET });
  const client = await RudpSocket.bind({ socket: clientUdp, secret: SECRET });
  const serverRpcs: RpcConnection[] = [];
  server.on('connection', conn => {
    const mux = new Mux(conn, { channels: CHANNELS, ...muxInit });
    const rpc = new RpcConnection(mux, { channelId: 1, maxConcurrentHandlers: 8192 });
    rpc.setHandler(async req => {
      // On purpose: handlers finish out of order (0-2 ms), replies must still match up.
      await new Promise(r => setTimeout(r, req.body.length % 3));
      return { body: req.body };
    });
    serverRpcs.push(rpc);
  });
  const conn = await client.connect(
    { host: '127.0.0.1', port: server.address().port },
    { timeoutMs: 10_000 }
  );
  const mux = new Mux(conn, { channels: CHANNELS, ...muxInit });
  const rpc = new RpcConnection(mux, { channelId: 1, maxInFlight: 8192 });
  const close = async () => {
    mux.close('test over');
    await waitFor('the server to see the close', () => server.stats().connections === 0, 5000);
    await client.close();
    await server.close();
  };
  return { rpc, mux, serverUdp, clientUdp, serverRpcs, close };
}

test('3,000 concurrent requests at 2% datagram loss: every one answered, none hanging', async t => {
  t.timeout(90_000);
  const seed = 4242;
  const s = await setup(seed, 0.02);
  const N = 3000;
  const results = await Promise.allSettled(
    Array.from({ length: N }, (_, i) => {
      const body = Buffer.alloc((i * 7919) % 4096, i % 251);
      return s.rpc.request({ op: 1, body }, { timeoutMs: 60_000 }).then((res: Envelope) => {
        if (!res.body.equals(body)) throw new Error(`body of request ${i} came back different`);
      });
    })
  );
  const failed = results
    .filter(r => r.status === 'rejected')
    .map(r => (r as PromiseRejectedResult).reason as Error);
  t.log(
    `seed ${seed}: datagrams dropped ${s.clientUdp.dropped} + ${s.serverUdp.dropped}; failures ${failed.length}`
  );
  t.true(s.clientUdp.dropped + s.serverUdp.dropped > 0, 'loss was really injected');
  t.true(
    failed.every(e => isMeshwireError(e)),
    'any failure carries a reason of our hierarchy'
  );
  t.is(failed.length, 0, `seed ${seed}: ${failed[0]?.message}`);
  t.is(s.rpc.inFlight, 0);
  await s.close();
});

test('a peer that goes silent: every pending request fails with a reason (pong timeout), none hanging', async t => {
  t.timeout(60_000);
  // Generous keepalive timings: the machine running the suite may be heavily loaded.
  const s = await setup(7, 0, { pingIntervalMs: 500, pongTimeoutMs: 1500 });
  let received = 0;
  await waitFor('the server side of the connection', () => s.serverRpcs.length > 0, 10_000);
  for (const r of s.serverRpcs) {
    r.setHandler(() => {
      received++;
      return new Promise(() => {}); // never answers
    });
  }
  const calls = Array.from({ length: 1000 }, () =>
    s.rpc.request({ body: Buffer.alloc(100) }, { timeoutMs: 600_000 })
  );
  const settled = Promise.allSettled(calls);
  // Bounded: the peer may go silent before all arrive (asserted below).
  await waitFor('1000 requests at the handler', () => received >= 1000 || s.mux.closed, 5000).catch(
    () => undefined
  );
  t.true(received > 0, 'requests reached the handler before the peer went silent');
  s.serverUdp.cut = true; // the far side's packets stop coming
  s.clientUdp.cut = true;
  const results = await settled;
  const names = new Set(
    results.map(r => (r.status === 'rejected' ? (r.reason as Error).name : 'fulfilled'))
  );
  t.deepEqual([...names], ['ConnectionClosedError']);
  // Our pong timeout, or the transport's own idle timeout, whichever sees it first.
  t.true(
    ['pong_timeout', 'transport_closed', 'transport_error'].includes(s.mux.closeReason ?? ''),
    `closed by ${s.mux.closeReason}: ${s.mux.closeError?.message}`
  );
  t.is(s.rpc.inFlight, 0);
  await s.close();
});
