import type { Duplex } from 'node:stream';
import test from 'ava';
import type { Message } from '../../../src/common';
import { ManualClock, UnavailableError } from '../../../src/common';
import type { LinkHandler, SenderItem } from '../../../src/dispatch';
import { ALL_SUBSCRIBERS, PeerSender } from '../../../src/dispatch';

const msg: Message = { id: '1', topic: 't', payload: Buffer.from('x'), headers: {} };
const handler: LinkHandler = {
  localId: 'me',
  instanceId: 'i1',
  onRespond: () => undefined,
  onPeerCall: () => Promise.reject(new Error('no peer calls in this test')),
  onHello: () => undefined,
  onInterest: () => undefined,
  onMessage: () => 0,
  onRequest: () => Promise.reject(new Error('no')),
};

function item(kind: 'message' | 'request', clock: ManualClock, ttl = 1000) {
  const outcome: { ok?: unknown; err?: Error } = {};
  const base = {
    message: msg,
    expiresAt: clock.now() + ttl,
    bytes: 65,
    reject: (e: Error) => (outcome.err = e),
  };
  const it: SenderItem =
    kind === 'message'
      ? {
          kind,
          scope: ALL_SUBSCRIBERS,
          wantCount: false,
          seq: 0,
          ...base,
          resolve: (n: number) => (outcome.ok = n),
        }
      : { kind, ...base, resolve: r => (outcome.ok = r) };
  return { it, outcome };
}

const flush = () => new Promise(r => setImmediate(r));

test('an unreachable peer: waiting callers fail fast, fire-and-forget waits until its TTL, backoff grows', async t => {
  const clock = new ManualClock();
  const attempts: number[] = [];
  const sender = new PeerSender({
    address: { host: '10.9.9.9', port: 1 },
    expectedId: 'b',
    dial: () => {
      attempts.push(clock.now());
      return Promise.reject(new UnavailableError('connect timed out'));
    },
    handler,
    clock,
    maxMessageBytes: 1024,
    random: () => 1,
  });
  const fire = item('message', clock, 1000);
  sender.submit(fire.it);
  await flush();
  t.is(sender.state, 'backoff');
  t.is(sender.queued, 1, 'fire-and-forget stays queued');
  const req = item('request', clock);
  const err = t.throws(() => sender.submit(req.it));
  t.is(err?.name, 'UnavailableError');
  t.regex(err?.message ?? '', /unreachable: connect timed out/);
  // Retries back off: 100, 200, 400 ms (jitter fixed at the top of the range).
  for (let i = 0; i < 3; i++) {
    clock.advance(1000);
    await flush();
  }
  t.true(attempts.length >= 3);
  const gaps = attempts.slice(1).map((a, i) => a - attempts[i]);
  t.true(gaps[1] >= gaps[0], `gaps ${gaps}`);
  t.is(fire.outcome.err?.name, 'DeadlineExceededError');
  t.is(sender.drops.get('ttl_expired'), 1);
  t.is(sender.drops.get('peer_unreachable'), 1);
  sender.close();
  t.is(sender.state, 'closed');
});

test('a full sender queue refuses at once with RESOURCE_EXHAUSTED, counted', async t => {
  const clock = new ManualClock();
  const sender = new PeerSender({
    address: { host: '10.9.9.9', port: 1 },
    expectedId: 'b',
    dial: () => new Promise<Duplex>(() => undefined), // connecting forever
    handler,
    clock,
    maxMessageBytes: 1024,
    queueCapacity: 3,
  });
  for (let i = 0; i < 3; i++) sender.submit(item('message', clock).it);
  const err = t.throws(() => sender.submit(item('message', clock).it));
  t.is(err?.name, 'ResourceExhaustedError');
  t.is(sender.drops.get('sender_queue_full'), 1);
  sender.close();
  t.is(sender.drops.get('shutdown'), 3);
});

test('retryForever false: after a failure with nothing queued the sender gives up; new work dials again after its backoff', async t => {
  const clock = new ManualClock();
  const attempts: number[] = [];
  const sender = new PeerSender({
    address: { host: '10.9.9.9', port: 1 },
    expectedId: '',
    dial: () => {
      attempts.push(clock.now());
      return Promise.reject(new UnavailableError('connect timed out'));
    },
    handler,
    clock,
    maxMessageBytes: 1024,
    random: () => 1,
    backoffBaseMs: 1000,
    retryForever: false,
  });
  const req = item('request', clock);
  sender.submit(req.it);
  await flush();
  t.is(req.outcome.err?.name, 'UnavailableError');
  t.true(sender.gaveUp, 'nothing queued: no retry');
  // Within its backoff (1 s) a waiting caller fails fast, without a dial.
  const within = t.throws(() => sender.submit(item('request', clock).it));
  t.is(within?.name, 'UnavailableError');
  clock.advance(60_000);
  await flush();
  t.is(attempts.length, 1, 'no retries while given up');
  t.is(clock.pendingTimers, 0);
  sender.submit(item('message', clock, 5000).it);
  await flush();
  t.is(attempts.length, 2, 'backoff long passed: a new attempt at once');
  t.is(sender.state, 'backoff');
  t.false(sender.gaveUp, 'a queued message keeps it retrying until its TTL');
  const early = t.throws(() => sender.submit(item('request', clock).it));
  t.is(early?.name, 'UnavailableError');
  for (let i = 0; i < 20; i++) {
    clock.advance(500);
    await flush();
  }
  t.true(attempts.length > 2);
  t.true(sender.gaveUp, 'the message expired: it gave up again');
  const n = attempts.length;
  clock.advance(60_000);
  await flush();
  t.is(attempts.length, n);
  t.is(sender.drops.get('ttl_expired'), 1);
  sender.close();
});
