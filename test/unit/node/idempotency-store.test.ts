import test from 'ava';
import { ManualClock } from '../../../src/common';
import { IdempotencyStore } from '../../../src/node';

const store = (clock: ManualClock, maxKeys = 100, windowMs = 120_000) =>
  new IdempotencyStore({ clock, windowMs, maxKeys });

test('a key is new once; after completion a claim is a duplicate with the original ack', t => {
  const clock = new ManualClock(1000);
  const s = store(clock);
  t.deepEqual(s.claim('k', 't1', 30_000), { kind: 'new' });
  t.deepEqual(s.claim('k', 't2', 30_000), { kind: 'pending' });
  // the holder asking again (its answer was lost) is told new again
  t.deepEqual(s.claim('k', 't1', 30_000), { kind: 'new' });
  t.false(s.complete('k', 't2', 'other', 9), 'only the holder completes');
  t.true(s.complete('k', 't1', 'msg-1', 3));
  t.deepEqual(s.claim('k', 't3', 30_000), { kind: 'duplicate', id: 'msg-1', delivered: 3 });
  t.is(s.counts.accepted, 1);
  t.is(s.counts.duplicates, 1);
  t.is(s.counts.pending, 1);
  t.is(s.size, 1);
});

test('a completed key expires exactly at the window edge (counted from its ack)', t => {
  const clock = new ManualClock(0);
  const s = store(clock, 100, 120_000);
  s.claim('k', 't1', 30_000);
  clock.advance(500);
  s.complete('k', 't1', 'msg-1', 0);
  clock.advance(120_000 - 1);
  t.is(s.claim('k', 't2', 30_000).kind, 'duplicate', '1 ms before the edge');
  clock.advance(1);
  t.deepEqual(s.claim('k', 't2', 30_000), { kind: 'new' }, 'at the edge the key is new');
  t.is(s.counts.expired, 1);
});

test('a released key is new again; a lapsed lease frees the key and is counted', t => {
  const clock = new ManualClock(0);
  const s = store(clock);
  s.claim('k', 't1', 30_000);
  t.true(s.release('k', 't1'));
  t.deepEqual(s.claim('k', 't2', 1000), { kind: 'new' });
  clock.advance(999);
  t.is(s.claim('k', 't3', 1000).kind, 'pending');
  clock.advance(1);
  t.deepEqual(s.claim('k', 't3', 1000), { kind: 'new' }, 'the lease lapsed');
  t.is(s.counts.leasesLapsed, 1);
  t.false(s.complete('k', 't2', 'late', 1), 'the lapsed holder cannot complete any more');
  t.true(s.complete('k', 't3', 'msg-3', 1));
});

test('bounded: a full store refuses new keys (counted) and keeps every record inside its window', t => {
  const clock = new ManualClock(0);
  const s = store(clock, 3, 10_000);
  for (const k of ['a', 'b', 'c']) {
    s.claim(k, k, 1000);
    s.complete(k, k, `id-${k}`, 1);
  }
  t.deepEqual(s.claim('d', 'd', 1000), { kind: 'full' });
  t.is(s.counts.refusedFull, 1);
  t.is(s.size, 3);
  t.is(s.claim('a', 'x', 1000).kind, 'duplicate', 'old records are kept, not evicted');
  clock.advance(10_000);
  t.deepEqual(s.claim('d', 'd', 1000), { kind: 'new' }, 'expired records make room');
  t.is(s.size, 1);
});

test('the lease never outlasts the window', t => {
  const clock = new ManualClock(0);
  const s = store(clock, 10, 5000);
  s.claim('k', 't1', 60_000);
  clock.advance(5000);
  t.deepEqual(s.claim('k', 't2', 60_000), { kind: 'new' });
});
