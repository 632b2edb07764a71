import test from 'ava';
import { ManualClock } from '../../../src/common';
import type { MeshwireError } from '../../../src/common';
import { FrameType, Mux, createDuplexPair, encodeData, encodeFrame } from '../../../src/mux';
import type { MuxCloseReason } from '../../../src/mux';
import { createStuckDuplex, turns } from './helpers';

const CHANNELS = [
  { id: 1, priority: 1, sendQueueCapacity: 2, maxMessageBytes: 1000 },
  { id: 2, priority: 4, maxMessageBytes: 100 },
];

function pair(clock = new ManualClock(), ping = 0) {
  const [da, db] = createDuplexPair();
  const a = new Mux(da, { channels: CHANNELS, clock, pingIntervalMs: ping, pongTimeoutMs: 50 });
  const b = new Mux(db, { channels: CHANNELS, clock, pingIntervalMs: ping, pongTimeoutMs: 50 });
  return { a, b, da, db, clock };
}

function closeEvent(m: Mux): Promise<[MeshwireError, MuxCloseReason]> {
  return new Promise(resolve => m.once('close', (err, reason) => resolve([err, reason])));
}

test('messages cross, each on its channel', async t => {
  const { a, b } = pair();
  const got: [number, string][] = [];
  b.on('message', (ch, p) => got.push([ch, p.toString()]));
  await a.send(1, Buffer.from('one'));
  t.true(a.trySend(2, Buffer.from('two')));
  await turns();
  t.deepEqual(got.sort(), [
    [1, 'one'],
    [2, 'two'],
  ]);
});

test('send refuses an oversized message or an undeclared channel with InvalidArgumentError', async t => {
  const { a } = pair();
  await t.throwsAsync(a.send(2, Buffer.alloc(101)), { name: 'InvalidArgumentError' });
  await t.throwsAsync(a.send(7, Buffer.alloc(1)), { name: 'InvalidArgumentError' });
  t.throws(() => a.trySend(2, Buffer.alloc(101)), { name: 'InvalidArgumentError' });
});

test('trySend returns false at once when the queue is full; send waits for room', async t => {
  // A duplex nobody reads and with a tiny buffer: the mux stops writing after one frame.
  const sink = createStuckDuplex();
  const m = new Mux(sink.d, { channels: CHANNELS, pingIntervalMs: 0 });
  let accepted = 0;
  for (let i = 0; i < 10 && m.trySend(1, Buffer.alloc(500)); i++) {
    accepted++;
    await turns();
  }
  t.true(accepted < 10, 'the queue filled up');
  t.deepEqual(m.queueDepth(1), { messages: 2, bytes: 1000 }, 'capacity 2 messages');
  t.false(m.trySend(1, Buffer.alloc(1)));
  t.is(m.drops.get('queue_full'), 2);
  let sent = false;
  const p = m.send(1, Buffer.alloc(10)).then(() => (sent = true));
  await turns();
  t.false(sent);
  sink.release(); // the link moves again: room frees up, the waiting sender gets in
  await p;
  t.true(sent);
  m.close();
});

test('a waiting send is rejected with CancelledError when its signal aborts', async t => {
  const sink = createStuckDuplex();
  const m = new Mux(sink.d, { channels: CHANNELS, pingIntervalMs: 0 });
  m.trySend(1, Buffer.alloc(500));
  await turns();
  m.trySend(1, Buffer.alloc(500));
  m.trySend(1, Buffer.alloc(500));
  const ac = new AbortController();
  const p = m.send(1, Buffer.alloc(10), { signal: ac.signal });
  ac.abort();
  await t.throwsAsync(p, { name: 'CancelledError' });
  m.close();
});

test('close rejects waiting senders, counts unsent messages, and tells the peer', async t => {
  const { a, b } = pair();
  const sink = createStuckDuplex();
  const m = new Mux(sink.d, { channels: CHANNELS, pingIntervalMs: 0 });
  m.trySend(1, Buffer.alloc(500));
  await turns();
  m.trySend(1, Buffer.alloc(500));
  m.trySend(1, Buffer.alloc(500));
  const waiting = m.send(1, Buffer.alloc(10));
  m.close('test');
  await t.throwsAsync(waiting, { name: 'ConnectionClosedError' });
  t.is(m.drops.get('unsent_on_close'), 3);
  await t.throwsAsync(m.send(1, Buffer.alloc(1)), { name: 'ConnectionClosedError' });
  t.false(m.trySend(1, Buffer.alloc(1)));

  const closed = closeEvent(b);
  a.close('going away');
  const [err, reason] = await closed;
  t.is(reason, 'peer_closed');
  t.is(err.name, 'ConnectionClosedError');
  t.regex(err.message, /going away/);
});

test('ping/pong keeps a live connection open', async t => {
  const { a, b, clock } = pair(new ManualClock(), 100);
  for (let i = 0; i < 10; i++) {
    clock.advance(100);
    await turns();
    clock.advance(10);
    await turns();
  }
  t.false(a.closed);
  t.false(b.closed);
  t.true(a.stats.pongsReceived >= 5);
  a.close();
});

test('pong timeout closes the connection with a reason when the peer stops answering', async t => {
  const clock = new ManualClock();
  const [da, db] = createDuplexPair();
  db.resume(); // a peer that reads and never answers
  const a = new Mux(da, { channels: CHANNELS, clock, pingIntervalMs: 100, pongTimeoutMs: 50 });
  const closed = closeEvent(a);
  let sendErr: unknown;
  clock.advance(100);
  await turns();
  t.is(a.stats.pingsSent, 1);
  clock.advance(49);
  t.false(a.closed);
  clock.advance(1);
  const [err, reason] = await closed;
  t.is(reason, 'pong_timeout');
  t.is(err.name, 'ConnectionClosedError');
  await a.send(1, Buffer.alloc(1)).catch(e => (sendErr = e));
  t.is((sendErr as Error).name, 'ConnectionClosedError');
  t.is(clock.pendingTimers, 0, 'no timer left behind');
});

const VIOLATIONS: [string, () => Buffer][] = [
  ['unknown frame type', () => Buffer.from('0900000000000000', 'hex')],
  ['undeclared channel', () => encodeData(9, true, Buffer.from('x'))],
  ['message above the channel max', () => encodeData(2, true, Buffer.alloc(101))],
  [
    'fragments adding up above the max',
    () =>
      Buffer.concat([
        encodeData(2, false, Buffer.alloc(60)),
        encodeData(2, true, Buffer.alloc(60)),
      ]),
  ],
  ['bad ping length', () => Buffer.from('010000000000000200', 'hex')],
];

for (const [name, bytes] of VIOLATIONS) {
  test(`protocol violation (${name}) closes cleanly: counted, reported, peer told, nothing thrown`, async t => {
    const [raw, db] = createDuplexPair();
    const m = new Mux(db, { channels: CHANNELS, pingIntervalMs: 0 });
    const fromMux: Buffer[] = [];
    raw.on('data', (c: Buffer) => fromMux.push(c));
    const closed = closeEvent(m);
    t.notThrows(() => raw.write(bytes()));
    const [err, reason] = await closed;
    t.is(reason, 'protocol_error');
    t.is(err.name, 'ProtocolError');
    t.is(m.drops.get('protocol_error'), 1);
    await turns();
    const wire = Buffer.concat(fromMux);
    t.is(wire[0], FrameType.CLOSE, 'a CLOSE frame with the reason went to the peer');
    t.regex(wire.subarray(8).toString(), /protocol error/);
  });
}

test('a throwing message listener is counted and does not break the connection', async t => {
  const { a, b } = pair();
  let n = 0;
  b.on('message', () => {
    n++;
    throw new Error('listener bug');
  });
  await a.send(1, Buffer.from('x'));
  await a.send(1, Buffer.from('y'));
  await turns();
  t.is(n, 2);
  t.is(b.drops.get('listener_error'), 2);
  t.false(b.closed);
});

test('a transport that ends closes the mux with transport_closed', async t => {
  const { a, db } = pair();
  const closed = closeEvent(a);
  db.end();
  const [err, reason] = await closed;
  t.is(reason, 'transport_closed');
  t.is(err.name, 'ConnectionClosedError');
});

test('pongs are answered even while the data queue is full', async t => {
  const clock = new ManualClock();
  const [raw, db] = createDuplexPair();
  const m = new Mux(db, { channels: CHANNELS, clock, pingIntervalMs: 0 });
  const frames: number[] = [];
  raw.on('data', (c: Buffer) => frames.push(c[0]));
  for (let i = 0; i < 2; i++) m.trySend(1, Buffer.alloc(900));
  raw.write(encodeFrame({ type: FrameType.PING, nonce: 5 }));
  await turns();
  // The pong went out first, ahead of the data queued before the ping arrived.
  t.is(frames[0], FrameType.PONG);
  m.close();
});

test('flushed() resolves once everything queued has been handed to the connection', async t => {
  const sink = createStuckDuplex();
  const m = new Mux(sink.d, { channels: CHANNELS, pingIntervalMs: 0 });
  await m.flushed(); // nothing queued
  m.trySend(1, Buffer.alloc(500));
  await turns();
  m.trySend(1, Buffer.alloc(500));
  m.trySend(1, Buffer.alloc(500));
  const waiting = m.send(1, Buffer.alloc(10));
  let done = false;
  const f = m.flushed().then(() => (done = true));
  await turns();
  t.false(done, 'still queued behind a stuck link');
  sink.release();
  await waiting;
  await f;
  t.deepEqual(m.queueDepth(1), { messages: 0, bytes: 0 });
  const stuck2 = createStuckDuplex();
  const m2 = new Mux(stuck2.d, { channels: CHANNELS, pingIntervalMs: 0 });
  m2.trySend(1, Buffer.alloc(500));
  await turns();
  m2.trySend(1, Buffer.alloc(500));
  const f2 = m2.flushed();
  m2.close('shutdown');
  await t.throwsAsync(f2, { name: 'ConnectionClosedError' });
});

test('senders waiting for room keep their order: a small later send never overtakes a large waiting one', async t => {
  const sink = createStuckDuplex();
  const channels = [{ id: 3, sendQueueCapacity: 10, sendQueueBytes: 1000, maxMessageBytes: 1000 }];
  const m = new Mux(sink.d, { channels, pingIntervalMs: 0 });
  m.trySend(3, Buffer.from('x')); // fills the stuck duplex
  await turns();
  m.trySend(3, Buffer.alloc(600, 'A'));
  const big = m.send(3, Buffer.alloc(600, 'B')); // 1200 > 1000 bytes: waits
  const small = m.send(3, Buffer.alloc(10, 'c')); // would fit, but must wait behind B
  await turns();
  t.deepEqual(m.queueDepth(3), { messages: 1, bytes: 600 }, 'c did not jump the queue');
  sink.release();
  await Promise.all([big, small]);
  await m.flushed();
  const order = sink.written.map(b => String.fromCharCode(b[8])).join('');
  t.is(order, 'xABc');
});

test('keepalive: traffic from the peer counts as life even when the pong is late', async t => {
  const clock = new ManualClock();
  const [raw, db] = createDuplexPair();
  const m = new Mux(db, { channels: CHANNELS, clock, pingIntervalMs: 100, pongTimeoutMs: 50 });
  raw.resume();
  clock.advance(100); // ping out
  await turns();
  raw.write(encodeData(1, true, Buffer.from('still here'))); // data, but no pong
  await turns();
  clock.advance(50);
  t.false(m.closed, 'a frame arrived after the ping: the peer is alive');
  clock.advance(100); // next ping
  await turns();
  clock.advance(50); // and this time nothing at all
  t.true(m.closed);
  t.is(m.closeReason, 'pong_timeout');
});

test('a transport already destroyed when the mux is made closes the mux at once (no wait for a timeout)', async t => {
  const [da] = createDuplexPair();
  da.on('error', () => undefined);
  da.destroy(new Error('closed by peer in the handshake turn'));
  await turns();
  const m = new Mux(da, { channels: CHANNELS, clock: new ManualClock(), pingIntervalMs: 0 });
  const [err, reason] = await closeEvent(m);
  t.true(m.closed);
  t.is(reason, 'transport_closed');
  t.is(err.name, 'ConnectionClosedError');
});
