import test from 'ava';
import fc from 'fast-check';
import { ClientLimits, deliveryBytes, MemoryBudget } from '../../../src/api/limits';
import type { Message } from '../../../src/common';
import type { SlowConsumerPolicy } from '../../../src/node';
import { Subscription } from '../../../src/node';

test('ClientLimits: all-or-nothing acquire, idempotent release, entries vanish when empty', t => {
  const l = new ClientLimits({ maxStreamsPerClient: 2, maxSubscriptionsPerClient: 1 });
  const r1 = l.acquire('c', 'streams', 'subscriptions');
  const err = t.throws(() => l.acquire('c', 'streams', 'subscriptions'));
  t.is(err?.name, 'ResourceExhaustedError');
  t.regex(err?.message ?? '', /subscriptions_per_client/);
  t.deepEqual(
    l.usage('c'),
    { streams: 1, subscriptions: 1, inFlight: 0 },
    'nothing taken on refusal'
  );
  const r2 = l.acquire('c', 'streams');
  t.throws(() => l.acquire('c', 'streams'));
  t.notThrows(() => l.acquire('other', 'streams'));
  r1();
  r1();
  t.deepEqual(l.usage('c'), { streams: 1, subscriptions: 0, inFlight: 0 });
  r2();
  t.is(l.clientCount, 1, 'only "other" still holds something');
  t.is(l.rejected.get('subscriptions_per_client'), 1);
  t.is(l.rejected.get('streams_per_client'), 1);
});

const msg = (n: number): Message =>
  ({ id: '', topic: 't', payload: Buffer.alloc(n), headers: {} }) as unknown as Message;

test('MemoryBudget: the accounted bytes always equal the bytes in the buffers', t => {
  fc.assert(
    fc.property(
      fc.constantFrom<SlowConsumerPolicy>('DROP_OLDEST', 'DROP_NEWEST', 'CLOSE'),
      fc.integer({ min: 1, max: 8 }),
      fc.array(
        fc.oneof(
          fc.record({ op: fc.constant('offer' as const), size: fc.integer({ min: 0, max: 3000 }) }),
          fc.record({ op: fc.constant('take' as const), size: fc.constant(0) })
        ),
        { maxLength: 60 }
      ),
      (policy, cap, ops) => {
        const budget = new MemoryBudget(10_000);
        const sub = new Subscription('s', {
          patterns: ['t'],
          bufferSize: cap,
          policy,
          maxBatch: 2,
        });
        budget.track(sub, cap);
        const held: number[] = [];
        for (const o of ops) {
          if (o.op === 'offer') {
            const m = msg(o.size);
            const fits = budget.used + deliveryBytes(m) <= budget.limit;
            const before = sub.buffered;
            const ok = sub.offer({ message: m, sourcePeer: 'p', replyTo: '' });
            if (!fits) {
              if (ok) return false;
            } else if (ok) {
              if (sub.buffered === before) held.shift();
              held.push(deliveryBytes(m));
            }
            if (sub.closed) held.length = 0;
          } else {
            const r = sub.take();
            for (let i = 0; i < (r?.deliveries.length ?? 0); i++) held.shift();
          }
          if (budget.used !== held.reduce((a, b) => a + b, 0)) return false;
          if (budget.used > budget.limit) return false;
        }
        sub.close();
        return budget.used === 0;
      }
    ),
    { numRuns: 500 }
  );
  t.pass();
});

test('MemoryBudget.admit refuses a publish that would not fit', t => {
  const budget = new MemoryBudget(2000);
  const sub = new Subscription('s', { patterns: ['t'], bufferSize: 10 });
  budget.track(sub, 10);
  budget.admit([msg(1000)]);
  t.true(sub.offer({ message: msg(1000), sourcePeer: 'p', replyTo: '' }));
  const err = t.throws(() => budget.admit([msg(1000)]));
  t.is(err?.name, 'ResourceExhaustedError');
  t.regex(err?.message ?? '', /memory_budget.*memoryBudgetBytes/);
  t.is(budget.refused, 1);
  t.false(sub.offer({ message: msg(1000), sourcePeer: 'p', replyTo: '' }));
  t.is(budget.drops.get('memory_budget'), 1);
  sub.take();
  t.is(budget.used, 0);
  t.notThrows(() => budget.admit([msg(1000)]));
});
