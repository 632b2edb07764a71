import test from 'ava';
import type { Message } from '../../../src/common';
import { DeadlineExceededError, ManualClock } from '../../../src/common';
import { ReplyTable, Router } from '../../../src/node';
import { replyTokenKey } from '../../../src/node/reply-table';

const msg = (topic: string, body = 'x'): Message => ({
  id: '',
  topic,
  payload: Buffer.from(body),
  headers: {},
});

test('plain subscribers each get every matching message', t => {
  const r = new Router();
  const a = r.subscribe({ patterns: ['orders.>'], bufferSize: 10 });
  const b = r.subscribe({ patterns: ['orders.*.created'], bufferSize: 10 });
  const c = r.subscribe({ patterns: ['billing.>'], bufferSize: 10 });
  t.is(r.publish(msg('orders.eu.created'), 'n'), 2);
  t.is(a.buffered, 1);
  t.is(b.buffered, 1);
  t.is(c.buffered, 0);
});

test('a queue group gets each message once, spread over members', t => {
  const r = new Router();
  const members = [0, 1, 2].map(() =>
    r.subscribe({ patterns: ['jobs.>'], queueGroup: 'w', bufferSize: 100 })
  );
  const plain = r.subscribe({ patterns: ['jobs.>'], bufferSize: 100 });
  for (let i = 0; i < 30; i++) t.is(r.publish(msg('jobs.x'), 'n'), 2);
  t.is(plain.buffered, 30);
  t.deepEqual(
    members.map(m => m.buffered),
    [10, 10, 10]
  );
});

test('queue group prefers members with buffer room', t => {
  const r = new Router();
  const small = r.subscribe({ patterns: ['q'], queueGroup: 'g', bufferSize: 1 });
  const big = r.subscribe({ patterns: ['q'], queueGroup: 'g', bufferSize: 100 });
  for (let i = 0; i < 10; i++) r.publish(msg('q'), 'n');
  t.is(small.buffered, 1);
  t.is(big.buffered, 9);
  t.is(small.drops.total() + big.drops.total(), 0);
});

test('DROP_OLDEST keeps the newest and counts drops', t => {
  const r = new Router();
  const s = r.subscribe({ patterns: ['t'], bufferSize: 3, maxBatch: 10, policy: 'DROP_OLDEST' });
  for (let i = 0; i < 5; i++) r.publish(msg('t', String(i)), 'n');
  const batch = s.take();
  t.deepEqual(
    batch?.deliveries.map(d => d.message.payload.toString()),
    ['2', '3', '4']
  );
  t.is(batch?.dropped, 2);
  t.is(s.drops.get('slow_consumer_drop_oldest'), 2);
});

test('DROP_NEWEST keeps the oldest and counts drops', t => {
  const r = new Router();
  const s = r.subscribe({ patterns: ['t'], bufferSize: 3, maxBatch: 10, policy: 'DROP_NEWEST' });
  for (let i = 0; i < 5; i++) r.publish(msg('t', String(i)), 'n');
  t.deepEqual(
    s.take()?.deliveries.map(d => d.message.payload.toString()),
    ['0', '1', '2']
  );
  t.is(s.drops.get('slow_consumer_drop_newest'), 2);
});

test('CLOSE ends the subscription with a SlowConsumerError naming it', t => {
  const r = new Router();
  const s = r.subscribe({ patterns: ['t'], bufferSize: 2, policy: 'CLOSE' });
  let closedWith: Error | null = null;
  s.onClose(err => (closedWith = err));
  for (let i = 0; i < 3; i++) r.publish(msg('t'), 'n');
  t.true(s.closed);
  const err = closedWith as Error | null;
  t.is(err?.name, 'SlowConsumerError');
  t.true(err?.message.includes(s.id));
  t.is(r.subscriptionCount, 0);
  t.is(r.publish(msg('t'), 'n'), 0);
});

test('max_batch bounds each take', t => {
  const r = new Router();
  const s = r.subscribe({ patterns: ['t'], bufferSize: 100, maxBatch: 4 });
  for (let i = 0; i < 10; i++) r.publish(msg('t'), 'n');
  t.deepEqual(
    [
      s.take()?.deliveries.length,
      s.take()?.deliveries.length,
      s.take()?.deliveries.length,
      s.take(),
    ],
    [4, 4, 2, undefined]
  );
});

test('a request goes to exactly one subscriber', t => {
  const r = new Router();
  const subs = [0, 1].map(() => r.subscribe({ patterns: ['svc.>'], bufferSize: 10 }));
  for (let i = 0; i < 4; i++) t.true(r.deliverRequest(msg('svc.a'), 'n', `tok${i}`));
  t.is(subs[0].buffered + subs[1].buffered, 4);
  t.is(subs[0].buffered, 2);
  t.false(r.deliverRequest(msg('other'), 'n', 'x'));
});

test('interest events follow the first subscriber and the last unsubscribe', t => {
  const r = new Router();
  const events: string[] = [];
  r.on('interest', (added, removed) => {
    for (const a of added) events.push(`+${a.pattern}/${a.queueGroup}`);
    for (const x of removed) events.push(`-${x.pattern}/${x.queueGroup}`);
  });
  const a = r.subscribe({ patterns: ['a.>'], bufferSize: 1 });
  const b = r.subscribe({ patterns: ['a.>'], bufferSize: 1 });
  const g = r.subscribe({ patterns: ['a.>'], queueGroup: 'g', bufferSize: 1 });
  a.close();
  b.close();
  g.close();
  t.deepEqual(events, ['+a.>/', '+a.>/g', '-a.>/', '-a.>/g']);
  t.deepEqual(r.interests(), []);
});

test('reply table: reply, timeout, cancel, unknown token and close leave nothing behind, and say why', async t => {
  const clock = new ManualClock();
  const table = new ReplyTable(clock, 'node-b');
  const ok = table.register(100, () => new DeadlineExceededError('timeout'), 'orders.get');
  const late = table.register(100, () => new DeadlineExceededError('timeout'));
  const cancelled = table.register(100, () => new DeadlineExceededError('timeout'));
  const closed = table.register(1000, () => new DeadlineExceededError('timeout'));
  t.not(ok.token, late.token);
  const parsed = table.parse(ok.token);
  t.is(parsed?.issuer, 'node-b');
  const reply = msg('');
  t.true(table.resolve(parsed!.opaque, { reply, responderPeer: 'p' }));
  t.is((await ok.promise).responderPeer, 'p');
  t.is(reply.topic, 'orders.get', 'a reply without a topic gets the request topic');
  t.is(table.resolve(parsed!.opaque, { reply: msg('r'), responderPeer: 'p' }), 'already answered');
  cancelled.cancel(new Error('gone'));
  await t.throwsAsync(cancelled.promise, { message: 'gone' });
  t.is(
    table.resolve(table.parse(cancelled.token)!.opaque, { reply: msg('r'), responderPeer: 'p' }),
    'cancelled'
  );
  clock.advance(100);
  const err = await t.throwsAsync(late.promise);
  t.is(err?.name, 'DeadlineExceededError');
  t.is(
    table.resolve(table.parse(late.token)!.opaque, { reply: msg('r'), responderPeer: 'p' }),
    'timed out'
  );
  t.is(table.resolve('never-issued', { reply: msg('r'), responderPeer: 'p' }), 'unknown');
  t.is(table.drops.get('unknown_or_expired_token'), 4);
  table.closeAll(new Error('bye'));
  await t.throwsAsync(closed.promise, { message: 'bye' });
  t.is(
    table.resolve(table.parse(closed.token)!.opaque, { reply: msg('r'), responderPeer: 'p' }),
    'node stopped'
  );
  t.is(table.size, 0);
  t.is(clock.pendingTimers, 0);
});

test('reply tokens: any node with the cluster key can verify them; forged, altered or foreign ones fail', t => {
  const clock = new ManualClock();
  const key = replyTokenKey(Buffer.from('cluster secret one'));
  const b = new ReplyTable(clock, 'node-b', key);
  const c = new ReplyTable(clock, 'node-c', key);
  const other = new ReplyTable(clock, 'node-b', replyTokenKey(Buffer.from('another cluster')));
  const { token, promise } = b.register(1000, () => new DeadlineExceededError('timeout'));
  promise.catch(() => undefined);
  t.deepEqual(c.parse(token), b.parse(token), 'another node of the cluster reads the issuer');
  t.is(c.parse(token)?.issuer, 'node-b');
  t.is(other.parse(token), undefined, 'a token of another cluster');
  const [issuer, opaque, mac] = token.split('~');
  t.is(c.parse(`node-x~${opaque}~${mac}`), undefined, 'issuer changed');
  t.is(c.parse(`${issuer}~x${opaque}~${mac}`), undefined, 'the run prefix changed');
  // The MAC covers the issuer and its run; the rest of the opaque id is unguessable, so a
  // changed one verifies but names no request there.
  const guessed = c.parse(`${issuer}~${opaque}x~${mac}`);
  t.is(guessed?.issuer, 'node-b');
  t.is(b.resolve(guessed!.opaque, { reply: msg('r'), responderPeer: 'p' }), 'unknown');
  t.is(c.parse(`${issuer}~${opaque}`), undefined, 'no MAC');
  t.is(c.parse(`${issuer}~${opaque}~${mac}~x`), undefined, 'extra part');
  t.is(c.parse('garbage'), undefined);
  t.is(c.parse(''), undefined);
  b.closeAll(new Error('done'));
});

test('reply table: why a request is gone is remembered for the latest 8192, oldest forgotten first', async t => {
  const clock = new ManualClock();
  const table = new ReplyTable(clock, 'node-b');
  const remembered = 8192;
  const opaques: string[] = [];
  for (let i = 0; i < remembered + 3; i++) {
    const r = table.register(100, () => new DeadlineExceededError('timeout'));
    const opaque = table.parse(r.token)!.opaque;
    opaques.push(opaque);
    t.true(table.resolve(opaque, { reply: msg('r'), responderPeer: 'p' }));
    await r.promise;
  }
  const again = (opaque: string) => table.resolve(opaque, { reply: msg('r'), responderPeer: 'p' });
  // The first three were forgotten to make room; every later one is still known.
  for (let i = 0; i < 3; i++) t.is(again(opaques[i]), 'unknown');
  t.is(again(opaques[3]), 'already answered');
  t.is(again(opaques[opaques.length - 1]), 'already answered');
});
