import test from 'ava';
import { SendScheduler, resolveChannels } from '../../../src/mux';

function bytesServed(sched: SendScheduler, fragments: number): Map<number, number> {
  const out = new Map<number, number>();
  for (let i = 0; i < fragments; i++) {
    const f = sched.nextFragment();
    if (!f) break;
    out.set(f.channelId, (out.get(f.channelId) ?? 0) + f.end - f.start);
  }
  return out;
}

test('busy channels share bytes in proportion to priority', t => {
  const chans = resolveChannels([
    { id: 1, priority: 1 },
    { id: 2, priority: 3 },
  ]);
  const s = new SendScheduler(chans, 1000);
  for (let i = 0; i < 500; i++) {
    s.enqueue(1, { data: Buffer.alloc(1000) });
    s.enqueue(2, { data: Buffer.alloc(1000) });
  }
  const got = bytesServed(s, 400);
  const ratio = (got.get(2) ?? 0) / (got.get(1) ?? 1);
  t.true(ratio > 2.8 && ratio < 3.2, `ratio ${ratio}`);
});

test('a channel of large messages is not starved by a channel of many small ones (cometbft#2954)', t => {
  const chans = resolveChannels([
    { id: 1, priority: 1 }, // large messages
    { id: 2, priority: 1 }, // small messages
  ]);
  const s = new SendScheduler(chans, 16 * 1024);
  s.enqueue(1, { data: Buffer.alloc(1024 * 1024) });
  for (let i = 0; i < 1000; i++) s.enqueue(2, { data: Buffer.alloc(100) });
  const got = bytesServed(s, 1000);
  // Equal priority: equal bytes (within a fragment and the per-frame overhead).
  const large = got.get(1) ?? 0;
  const small = got.get(2) ?? 0;
  t.true(large > 0.8 * small, `large ${large} small ${small}`);
  t.true(large < 1.3 * small, `large ${large} small ${small}`);
});

test('an idle channel restarts at the current virtual time: no hoarded credit, no debt', t => {
  const chans = resolveChannels([
    { id: 1, priority: 1 },
    { id: 2, priority: 1 },
  ]);
  const s = new SendScheduler(chans, 100);
  for (let i = 0; i < 100; i++) s.enqueue(1, { data: Buffer.alloc(100) });
  bytesServed(s, 50);
  // Channel 2 wakes up after channel 1 sent 5 KB alone: it alternates with channel 1
  // rather than owning the link for 5 KB.
  for (let i = 0; i < 20; i++) s.enqueue(2, { data: Buffer.alloc(100) });
  const order: number[] = [];
  for (let i = 0; i < 10; i++) order.push(s.nextFragment()?.channelId ?? -1);
  const twos = order.filter(c => c === 2).length;
  t.true(twos >= 4 && twos <= 6, order.join(','));
});

test('urgent channels go before every normal channel', t => {
  const chans = resolveChannels([
    { id: 1, priority: 100 },
    { id: 0, priority: 1, urgent: true },
  ]);
  const s = new SendScheduler(chans, 100);
  for (let i = 0; i < 10; i++) s.enqueue(1, { data: Buffer.alloc(100) });
  s.nextFragment();
  s.enqueue(0, { data: Buffer.alloc(10) });
  t.is(s.nextFragment()?.channelId, 0);
});

test('queues are bounded in messages and in bytes; an empty queue takes any legal message', t => {
  const chans = resolveChannels([
    { id: 1, sendQueueCapacity: 3, sendQueueBytes: 1000, maxMessageBytes: 1000 },
  ]);
  const s = new SendScheduler(chans, 100);
  t.true(s.hasRoom(1, 1000));
  s.enqueue(1, { data: Buffer.alloc(400) });
  s.enqueue(1, { data: Buffer.alloc(400) });
  t.false(s.hasRoom(1, 201));
  t.true(s.hasRoom(1, 200));
  s.enqueue(1, { data: Buffer.alloc(10) });
  t.false(s.hasRoom(1, 1), 'message cap');
  t.deepEqual(s.queueDepth(1), { messages: 3, bytes: 810 });
  t.false(s.hasRoom(7, 1), 'unknown channel');
});

test('descriptor validation names the field', t => {
  t.throws(() => resolveChannels([{ id: 1 }, { id: 1 }]), { name: 'InvalidArgumentError' });
  t.throws(() => resolveChannels([{ id: 70000 }]), { name: 'InvalidArgumentError' });
  t.throws(() => resolveChannels([{ id: 1, priority: 0 }]), { name: 'InvalidArgumentError' });
  t.throws(() => resolveChannels([{ id: 1, maxMessageBytes: 10, sendQueueBytes: 5 }]), {
    name: 'InvalidArgumentError',
  });
});
