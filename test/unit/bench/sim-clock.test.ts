/**
 * The simulator's virtual clock (bench/sim/sim-clock.ts) and plot (bench/sim/svg.ts): timers
 * fire in time order (ties in the order set), cancelled ones never, the heap survives
 * compaction, deferred work runs at the instant it was deferred, and waitFor stops early.
 */
import test from 'ava';
import { SimClock } from '../../../bench/sim/sim-clock';
import { scaleChart } from '../../../bench/sim/svg';

test('timers fire in time order, ties in the order they were set; cancelled ones never', async t => {
  const clock = new SimClock();
  const fired: string[] = [];
  clock.setTimer(30, () => fired.push('c'));
  clock.setTimer(10, () => fired.push('a'));
  clock.setTimer(10, () => fired.push('b'));
  const gone = clock.setTimer(20, () => fired.push('never'));
  gone.cancel();
  gone.cancel();
  await clock.advance(25);
  t.deepEqual(fired, ['a', 'b']);
  t.is(clock.now(), 25);
  await clock.advance(10);
  t.deepEqual(fired, ['a', 'b', 'c']);
  t.is(clock.pendingTimers, 0);
});

test('work deferred with setImmediate by a timer runs before the clock moves on', async t => {
  const clock = new SimClock();
  const seenAt: number[] = [];
  clock.setTimer(5, () => setImmediate(() => seenAt.push(clock.now())));
  clock.setTimer(50, () => undefined);
  await clock.advance(100);
  t.deepEqual(seenAt, [5]);
});

test('many re-armed timers: compaction keeps the order and the live ones', async t => {
  const clock = new SimClock();
  const fired: number[] = [];
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 1000; i++) clock.setTimer(1000 + i, () => fired.push(i)).cancel();
  }
  for (let i = 0; i < 100; i++) clock.setTimer(500 - i, () => fired.push(i));
  t.is(clock.pendingTimers, 100);
  await clock.advance(2000);
  t.deepEqual(
    fired,
    Array.from({ length: 100 }, (_, k) => 99 - k)
  );
});

test('waitFor stops at the instant the condition holds, or after maxMs', async t => {
  const clock = new SimClock();
  let flag = false;
  clock.setTimer(40, () => (flag = true));
  t.true(await clock.waitFor(() => flag, 1000));
  t.is(clock.now(), 40);
  t.false(await clock.waitFor(() => false, 100, 10));
  t.is(clock.now(), 140);
});

test('the scale plot is an SVG with one line per figure', t => {
  const svg = scaleChart([
    {
      nodes: 4,
      heapMbPerNode: 0.3,
      keepalivePpsPerNode: 18,
      connectionsPerNode: 6,
      interestConvergeP99Ms: 5,
    },
    {
      nodes: 16,
      heapMbPerNode: 0.8,
      keepalivePpsPerNode: 97,
      connectionsPerNode: 30,
      interestConvergeP99Ms: 15,
    },
  ]);
  t.true(svg.startsWith('<svg'));
  t.is(svg.match(/<polyline/g)?.length, 4);
  t.false(svg.includes('NaN'));
});
