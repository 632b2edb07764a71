import { randomBytes } from 'node:crypto';
import test from 'ava';
import type { RudpConnection } from '../../../src/transport';
import { RudpSocket, UdpDriver } from '../../../src/transport';
import { MAX_HALF_OPEN_CONNECTIONS } from '../../../src/transport/constants';
import { waitFor } from '../../helpers/node';
import {
  amplification,
  captureInitials,
  fuzz,
  RecordingSocket,
  SECRET,
  startVictim,
} from './attack';

/** Datagrams per run in `make test`; bench/soak runs the one-million variant. */
const FUZZ_COUNT = Number(process.env.MESHWIRE_FUZZ_COUNT ?? 100_000);
const SEED = Number(process.env.MESHWIRE_FUZZ_SEED ?? 20261123);

test(`fuzz: ${FUZZ_COUNT} random and mutated datagrams are dropped and counted, memory stays bounded, the live connection keeps flowing`, async t => {
  const v = await startVictim();
  const uncaught: unknown[] = [];
  const onUncaught = (e: unknown): void => void uncaught.push(e);
  process.on('uncaughtException', onUncaught);
  try {
    // Some traffic first, so there are DATA packets to mutate and replay.
    const stop = v.pump(1);
    await waitFor(() => v.echoes() >= 64 * 10, 30_000, 'warm-up echoes');
    stop();
    const r = await fuzz(v, FUZZ_COUNT, SEED);
    t.log(`seed ${SEED}: ${JSON.stringify({ ...r, drops: undefined })}`);
    t.log(`drops by reason: ${JSON.stringify(r.drops)}`);
    t.is(r.sent, FUZZ_COUNT);
    t.deepEqual(uncaught, []);
    // Every datagram the node read was dropped and counted (replayed INITIALs open a
    // bounded number of half-open handshakes instead, which is the flood test's subject).
    const halfOpen = v.server.stats().halfOpen;
    t.true(r.received > 0);
    t.true(
      r.dropsAdded + halfOpen >= r.received * 0.99,
      `${r.dropsAdded} + ${halfOpen} vs ${r.received}`
    );
    t.true(r.maxHeapGrowthBytes < 256 * 1024 * 1024, `heap grew ${r.maxHeapGrowthBytes}`);
    t.true(halfOpen <= MAX_HALF_OPEN_CONNECTIONS);
    // The live connection kept its traffic flowing during the attack and still works.
    t.true(r.echoesDuring > 0, 'echoes during the attack');
    const e0 = v.echoes();
    v.conn.write(Buffer.from('after the storm'));
    await waitFor(() => v.echoes() >= e0 + 15, 30_000, 'echo after the attack');
    t.false(v.conn.destroyed);
  } finally {
    process.off('uncaughtException', onUncaught);
    await v.close();
  }
});

test('replay: a captured session replayed from another source opens no connection and delivers nothing', async t => {
  const server = await RudpSocket.bind({ secret: SECRET });
  const tap = new RecordingSocket(await UdpDriver.bind('127.0.0.1', 0));
  const client = await RudpSocket.bind({ secret: SECRET, socket: tap });
  let received = 0;
  const connections: RudpConnection[] = [];
  server.on('connection', (c: RudpConnection) => {
    connections.push(c);
    c.on('data', (d: Buffer) => (received += d.length));
    c.on('error', () => undefined);
  });
  try {
    const conn = await client.connect(server.address(), { timeoutMs: 5000 });
    conn.write(Buffer.alloc(1000, 7));
    await waitFor(() => received === 1000, 30_000, 'first delivery');
    const session = [...tap.sent];
    conn.destroy();
    await waitFor(() => server.stats().connections === 0, 30_000, 'connection gone');
    const before = server.stats();
    // Replay the whole captured session, twice, from a new source port.
    const raw = await UdpDriver.bind('127.0.0.1', 0);
    raw.onMessage(() => undefined);
    for (let k = 0; k < 2; k++)
      for (const d of session) raw.send([d], server.address().port, '127.0.0.1');
    await waitFor(
      () => server.stats().datagramsReceived - before.datagramsReceived >= 2 * session.length,
      10_000,
      'the node to read the replayed datagrams'
    );
    await raw.close();
    const after = server.stats();
    t.is(connections.length, 1, 'no connection accepted from the replay');
    t.is(received, 1000, 'no replayed data delivered');
    const dropped =
      Object.values(after.drops).reduce((a, b) => a + b, 0) -
      Object.values(before.drops).reduce((a, b) => a + b, 0);
    t.true(dropped > 0);
    t.log(`replay drops: ${JSON.stringify(after.drops)}`);
  } finally {
    await client.close();
    await server.close();
  }
});

test('amplification: unauthenticated sources get at most 3x the bytes they sent', async t => {
  const v = await startVictim();
  try {
    const stop = v.pump(1);
    await waitFor(() => v.echoes() >= 64 * 5, 30_000, 'warm-up');
    stop();
    const initials = await captureInitials(50);
    // DATA packets under connection ids the node does not know: answered by a stateless
    // reset, which must be smaller than what triggered it.
    const data = v.tap.sent
      .filter(d => d[0] === 0x03)
      .slice(0, 50)
      .map(d => {
        const c = Buffer.from(d);
        randomBytes(8).copy(c, 1);
        return c;
      });
    // Valid INITIALs (each opens a handshake), replayed DATA (stateless resets) and garbage.
    const rInit = await amplification(v.server.address(), initials, 3000);
    const rData = await amplification(v.server.address(), data, 500);
    const all = {
      bytesIn: rInit.bytesIn + rData.bytesIn,
      bytesOut: rInit.bytesOut + rData.bytesOut,
    };
    const factor = all.bytesOut / all.bytesIn;
    t.log(
      `amplification: INITIAL ${rInit.bytesOut}/${rInit.bytesIn} = ${rInit.factor.toFixed(3)}, DATA ${rData.bytesOut}/${rData.bytesIn} = ${rData.factor.toFixed(3)}, overall ${factor.toFixed(3)}`
    );
    t.true(rInit.bytesOut > 0, 'the handshake is answered (so the measurement means something)');
    t.true(rInit.factor <= 3, `INITIAL factor ${rInit.factor}`);
    t.true(rData.bytesOut > 0, 'stateless resets are sent');
    t.true(rData.factor <= 3, `DATA factor ${rData.factor}`);
    t.true(factor <= 3);
  } finally {
    await v.close();
  }
});

test('handshake flood: thousands of valid INITIALs from many ports keep half-open state bounded', async t => {
  const v = await startVictim();
  try {
    const n = MAX_HALF_OPEN_CONNECTIONS * 3;
    const initials = await captureInitials(n);
    t.is(initials.length, n);
    const heap0 = process.memoryUsage().heapUsed;
    const raws = await Promise.all(
      Array.from({ length: 64 }, () => UdpDriver.bind('127.0.0.1', 0))
    );
    for (const r of raws) r.onMessage(() => undefined);
    const to = v.server.address();
    const received0 = v.server.stats().datagramsReceived;
    let maxHalfOpen = 0;
    for (let i = 0; i < initials.length; i++) {
      raws[i % raws.length].send([initials[i]], to.port, to.host);
      if (i % 100 === 99) {
        await new Promise(r => setImmediate(r));
        maxHalfOpen = Math.max(maxHalfOpen, v.server.stats().halfOpen);
      }
    }
    // Bounded: loopback may drop some of the flood; the rest is read well within this.
    await waitFor(
      () => v.server.stats().datagramsReceived - received0 >= initials.length,
      2000,
      'the node to read the INITIALs'
    ).catch(() => undefined);
    const s = v.server.stats();
    maxHalfOpen = Math.max(maxHalfOpen, s.halfOpen);
    const heapGrowth = process.memoryUsage().heapUsed - heap0;
    t.log(
      `half-open max ${maxHalfOpen}, drops ${JSON.stringify(s.drops)}, heap +${(heapGrowth / 1e6).toFixed(1)} MB`
    );
    t.true(maxHalfOpen <= MAX_HALF_OPEN_CONNECTIONS);
    t.true((s.drops.half_open_limit ?? 0) > 0, 'past the bound, INITIALs are dropped and counted');
    t.true(heapGrowth < 200 * 1024 * 1024);
    // The established connection is unaffected.
    const e0 = v.echoes();
    v.conn.write(Buffer.alloc(100, 3));
    await waitFor(() => v.echoes() >= e0 + 100, 30_000, 'echo during the flood');
    await Promise.all(raws.map(r => r.close()));
  } finally {
    await v.close();
  }
});
