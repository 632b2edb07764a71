import test from 'ava';
import { ManualClock, repeatEvery } from '../../../src/common';

test('repeatEvery ticks once per interval until cancelled, and leaves no timer behind', t => {
  const clock = new ManualClock(0);
  const at: number[] = [];
  const timer = repeatEvery(clock, 100, () => at.push(clock.now()));
  clock.advance(99);
  t.deepEqual(at, [], 'no tick before the first interval');
  clock.advance(251);
  t.deepEqual(at, [100, 200, 300]);
  timer.cancel();
  clock.advance(1000);
  t.deepEqual(at, [100, 200, 300]);
  t.is(clock.pendingTimers, 0);
});

test('repeatEvery cancelled from inside its tick arms no further timer', t => {
  const clock = new ManualClock(0);
  let ticks = 0;
  const timer = repeatEvery(clock, 10, () => {
    ticks++;
    if (ticks === 2) timer.cancel();
  });
  clock.advance(100);
  t.is(ticks, 2);
  t.is(clock.pendingTimers, 0);
});
