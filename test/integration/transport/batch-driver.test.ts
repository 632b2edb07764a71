/**
 * The batched UDP driver (native/udp_batch.c) on real sockets: what the transport relies on
 * from it (addresses, ordering of a batch, bounded queues, truncation, errors, close), and
 * that a node on it talks to a node on node:dgram.
 */
import test from 'ava';
import { once } from 'node:events';
import { createSocket } from 'node:dgram';
import type { RemoteInfo as DgramRemoteInfo } from 'node:dgram';
import {
  BatchUdpDriver,
  RudpSocket,
  UdpDriver,
  bindUdp,
  selectUdpDriver,
} from '../../../src/transport';
import { DropLedger } from '../../../src/common';
import type { RemoteInfo, RudpConnection } from '../../../src/transport';
import { SECRET, waitFor } from './helpers';

interface Received {
  msg: Buffer;
  from: RemoteInfo;
}

function collect(d: { onMessage(h: (m: Buffer, f: RemoteInfo) => void): void }): Received[] {
  const got: Received[] = [];
  d.onMessage((msg, from) => got.push({ msg, from }));
  return got;
}

test('the batch driver is what auto selects here (make build compiles it)', async t => {
  t.is(selectUdpDriver('auto'), 'batch');
  t.is(selectUdpDriver('dgram'), 'dgram');
  const err = t.throws(() => selectUdpDriver('fast' as 'auto'));
  t.is((err as { code?: string }).code, 'INVALID_ARGUMENT');
  t.regex(err.message, /udpDriver must be one of auto, batch, dgram/);
  // and from the socket, before anything is bound
  await t.throwsAsync(RudpSocket.bind({ udpDriver: 'fast' as 'auto' }), {
    name: 'InvalidArgumentError',
    message: /udpDriver must be one of auto, batch, dgram, not fast/,
  });
});

test('IPv4: a burst arrives whole and in order, each datagram its own buffer, sender address right', async t => {
  const a = await BatchUdpDriver.bind('127.0.0.1', 0, 1472);
  const b = await BatchUdpDriver.bind('127.0.0.1', 0, 1472);
  const got = collect(b);
  const to = b.address();
  // 200 datagrams in one turn: several sendmmsg batches' worth, several receive batches
  for (let i = 0; i < 200; i++) {
    const d = Buffer.alloc(1 + (i % 1400), i & 0xff);
    a.send([d.subarray(0, 1), d.subarray(1)], to.port, to.host);
  }
  await waitFor(() => got.length === 200, 3000);
  // checked after all arrived: later batches reused the receive slots, so this also shows
  // each message is a copy the transport may keep
  for (let i = 0; i < 200; i++) {
    t.is(got[i].msg.length, 1 + (i % 1400));
    t.is(got[i].msg[0], i & 0xff);
    t.is(got[i].msg[got[i].msg.length - 1], i & 0xff);
  }
  t.deepEqual(got[0].from, { address: '127.0.0.1', port: a.address().port });
  t.is(a.stats().sendErrors, 0);
  await a.close();
  await b.close();
});

test('IPv6 and dual stack: ::1 peers, and an IPv4 peer seen as ::ffff:127.0.0.1', async t => {
  const six = await BatchUdpDriver.bind('::', 0, 1472);
  const got = collect(six);
  const v6peer = await BatchUdpDriver.bind('::1', 0, 1472);
  const v4peer = await BatchUdpDriver.bind('127.0.0.1', 0, 1472);
  const port = six.address().port;
  v6peer.send([Buffer.from('six')], port, '::1');
  await waitFor(() => got.length === 1, 2000);
  v4peer.send([Buffer.from('four')], port, '127.0.0.1');
  await waitFor(() => got.length === 2, 2000);
  t.deepEqual(got[0].from, { address: '::1', port: v6peer.address().port });
  t.is(got[0].msg.toString(), 'six');
  t.deepEqual(got[1].from, { address: '::ffff:127.0.0.1', port: v4peer.address().port });
  // and back: the dual-stack socket reaches the IPv4 peer by its plain address
  const back = collect(v4peer);
  six.send([Buffer.from('reply')], got[1].from.port, '127.0.0.1');
  await waitFor(() => back.length === 1, 2000);
  t.is(back[0].msg.toString(), 'reply');
  for (const d of [six, v6peer, v4peer]) await d.close();
});

test('interop with node:dgram in both directions, senders told apart', async t => {
  const batch = await BatchUdpDriver.bind('127.0.0.1', 0, 1472);
  const got = collect(batch);
  const plain = createSocket('udp4');
  await new Promise<void>(r => plain.bind(0, '127.0.0.1', r));
  const other = await BatchUdpDriver.bind('127.0.0.1', 0, 1472);
  const to = batch.address();
  plain.send(Buffer.from('from dgram'), to.port, to.host);
  await waitFor(() => got.length === 1, 2000);
  other.send([Buffer.from('from batch')], to.port, to.host);
  await waitFor(() => got.length === 2, 2000);
  t.is(got[0].from.port, plain.address().port);
  t.is(got[1].from.port, other.address().port);
  t.not(got[0].from, got[1].from);
  const reply = once(plain, 'message') as Promise<[Buffer, DgramRemoteInfo]>;
  batch.send([Buffer.from('to dgram')], plain.address().port, '127.0.0.1');
  const [msg, rinfo] = await reply;
  t.is(msg.toString(), 'to dgram');
  t.is(rinfo.port, to.port);
  plain.close();
  await batch.close();
  await other.close();
});

test('bounded send queue: past 256 datagrams in one turn the rest are dropped and counted', async t => {
  const a = await BatchUdpDriver.bind('127.0.0.1', 0, 1472);
  const b = await BatchUdpDriver.bind('127.0.0.1', 0, 1472);
  const got = collect(b);
  const to = b.address();
  for (let i = 0; i < 300; i++) a.send([Buffer.from([i & 0xff, i >> 8])], to.port, to.host);
  t.is(a.stats().sendQueueFull, 44);
  await waitFor(() => got.length === 256, 3000);
  t.is(got[255].msg.readUInt16LE(0), 255);
  // the next turn has room again
  a.send([Buffer.from('later')], to.port, to.host);
  await waitFor(() => got.length === 257, 2000);
  t.is(got[256].msg.toString(), 'later');
  await a.close();
  await b.close();
});

test('bad sends are counted, not thrown: a name, garbage, an oversized datagram', async t => {
  const a = await BatchUdpDriver.bind('127.0.0.1', 0, 1472);
  const b = await BatchUdpDriver.bind('127.0.0.1', 0, 1472);
  const got = collect(b);
  const to = b.address();
  a.send([Buffer.from('x')], to.port, 'localhost'); // IP literals only
  a.send([Buffer.from('x')], to.port, 'not an address');
  a.send([Buffer.from('x')], 70000, '127.0.0.1');
  a.send([Buffer.alloc(1473)], to.port, to.host);
  t.is(a.stats().sendErrors, 4);
  a.send([Buffer.from('fine')], to.port, to.host);
  await waitFor(() => got.length === 1, 2000);
  t.is(got[0].msg.toString(), 'fine');
  await a.close();
  await b.close();
});

test('a datagram the driver cannot send shows in the socket drops as send_error, through the ledger; connect fails clearly', async t => {
  // an IPv4 socket asked to reach an IPv6 peer: no route for it in this socket family
  const lines: { source: string; reason: string }[] = [];
  const ledger = new DropLedger({
    logger: { debug: obj => lines.push(obj as { source: string; reason: string }) },
  });
  const sock = await RudpSocket.bind({ secret: SECRET, udpDriver: 'batch', drops: ledger });
  const err = await t.throwsAsync(sock.connect({ host: '::1', port: 9 }, { timeoutMs: 200 }));
  t.is(err.name, 'UnavailableError');
  t.regex(err.message, /connect to ::1:9 timed out after 200 ms/);
  const sent = sock.stats().drops.send_error ?? 0;
  t.true(sent >= 1, JSON.stringify(sock.stats().drops));
  // The driver's count is in the ledger (totals, a debug line), and not counted twice.
  t.is(ledger.get('transport.driver', 'send_error'), sent);
  t.is(sock.stats().drops.send_error, sent);
  t.true(lines.some(l => l.source === 'transport.driver' && l.reason === 'send_error'));
  await sock.close();
  ledger.flush();
});

test('an oversized datagram arrives truncated to max + 1, so the transport counts it oversized', async t => {
  const server = await RudpSocket.bind({ secret: SECRET, udpDriver: 'batch' });
  const raw = createSocket('udp4');
  const to = server.address();
  await new Promise<void>(r => raw.send(Buffer.alloc(4000, 3), to.port, to.host, () => r()));
  await waitFor(() => (server.stats().drops.oversized ?? 0) === 1, 2000);
  t.is(server.stats().udpDriver, 'batch');
  raw.close();
  await server.close();
});

test('a host name binds through the batch driver too (resolved first, as node:dgram does)', async t => {
  const d = await bindUdp('localhost', 0, { driver: 'batch', maxDatagramSize: 1472 });
  t.is(d.kind, 'batch');
  t.regex(d.address().host, /^(127\.0\.0\.1|::1)$/);
  await d.close();
  await t.throwsAsync(
    bindUdp('no-such-host.invalid', 0, { driver: 'batch', maxDatagramSize: 1472 })
  );
});

test('binding a port in use fails with EADDRINUSE; close is idempotent and stops delivery', async t => {
  const a = await BatchUdpDriver.bind('127.0.0.1', 0, 1472);
  const err = await t.throwsAsync(BatchUdpDriver.bind('127.0.0.1', a.address().port, 1472));
  t.is((err as { code?: string }).code, 'EADDRINUSE');
  t.regex(err.message, /bind EADDRINUSE/);
  const port = a.address().port;
  await a.close();
  await a.close();
  a.send([Buffer.from('after close')], port, '127.0.0.1'); // a no-op, not a throw
  // the port is free again
  const again = await BatchUdpDriver.bind('127.0.0.1', port, 1472);
  t.is(again.address().port, port);
  await again.close();
});

test('a node on the batch driver and a node on node:dgram: 4 MiB each way, byte for byte', async t => {
  const server = await RudpSocket.bind({ secret: SECRET, udpDriver: 'batch' });
  const client = await RudpSocket.bind({ secret: SECRET, udpDriver: 'dgram' });
  t.is(client.stats().udpDriver, 'dgram');
  server.on('connection', (c: RudpConnection) => c.pipe(c)); // echo
  const conn = await client.connect(server.address(), { timeoutMs: 2000 });
  const payload = Buffer.alloc(4 * 1024 * 1024);
  for (let i = 0; i < payload.length; i += 4) payload.writeUInt32LE(i, i);
  const chunks: Buffer[] = [];
  conn.on('data', (c: Buffer) => chunks.push(c));
  conn.end(payload);
  await once(conn, 'end');
  t.true(Buffer.concat(chunks).equals(payload));
  await client.close();
  await server.close();
});

test('closing a batch socket sends its CLOSE frames first: the peer learns at once', async t => {
  const server = await RudpSocket.bind({ secret: SECRET, udpDriver: 'batch' });
  const client = await RudpSocket.bind({
    secret: SECRET,
    udpDriver: 'batch',
    idleTimeoutMs: 60_000,
  });
  const accepted = once(server, 'connection');
  await client.connect(server.address(), { timeoutMs: 2000 });
  const [sconn] = (await accepted) as [RudpConnection];
  const errored = once(sconn, 'error');
  await client.close();
  const [err] = (await errored) as [Error];
  t.regex(err.message, /closed by peer: socket closed/);
  await server.close();
});

test('UdpDriver reports its kind and counters too', async t => {
  const d = await UdpDriver.bind('127.0.0.1', 0);
  t.is(d.kind, 'dgram');
  t.deepEqual(d.stats(), {
    sendErrors: 0,
    sendQueueFull: 0,
    receiveErrors: 0,
    receiveTruncated: 0,
    sendCalls: 0,
    receiveCalls: 0,
    gsoDatagrams: 0,
  });
  await d.close();
});

test('the batch driver counts its system calls; a burst to one peer leaves in GSO runs when the kernel has UDP_SEGMENT', async t => {
  const rx = await BatchUdpDriver.bind('127.0.0.1', 0, 1472);
  const tx = await BatchUdpDriver.bind('127.0.0.1', 0, 1472);
  const got: Buffer[] = [];
  const all = new Promise<void>(resolve =>
    rx.onMessage(m => {
      got.push(m);
      if (got.length === 100) resolve();
    })
  );
  const port = rx.address().port;
  // 99 full datagrams and a short last one: one GSO run would carry up to 43 of them
  for (let i = 0; i < 100; i++)
    tx.send([Buffer.alloc(i === 99 ? 100 : 1472, i)], port, '127.0.0.1');
  await all;
  t.deepEqual(
    got.map(m => [m.length, m[0]]),
    Array.from({ length: 100 }, (_, i) => [i === 99 ? 100 : 1472, i]),
    'each datagram whole, in order'
  );
  const st = tx.stats();
  t.true(st.sendCalls! >= 1 && st.sendCalls! <= 100);
  t.true(st.gsoDatagrams === 0 || st.gsoDatagrams === 100, `gso ${st.gsoDatagrams}`);
  t.true(rx.stats().receiveCalls! >= 2, 'at most 64 datagrams per recvmmsg');
  await Promise.all([tx.close(), rx.close()]);
});
