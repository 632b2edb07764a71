/**
 * The idempotency service without a network: nodes wired by in-memory calls, a manual
 * clock. Owner, replica, restart inside and after the window, pending Sends.
 */
import test from 'ava';
import { ManualClock, UnavailableError } from '../../../src/common';
import type { IdempotencyCall, SendResult } from '../../../src/node';
import { Idempotency, rendezvousPair } from '../../../src/node';

const IDS = ['a', 'b', 'c'];
const WINDOW = 120_000;

class Cluster {
  readonly nodes = new Map<string, Idempotency>();
  readonly down = new Set<string>();
  /** Every call between nodes: "from>to:call". */
  readonly calls: string[] = [];
  constructor(readonly clock: ManualClock) {
    for (const id of IDS) this.start(id);
  }
  /** A new instance of node `id` (a restart: empty records, started now). */
  start(id: string): Idempotency {
    const node = new Idempotency({
      localId: id,
      clock: this.clock,
      windowMs: WINDOW,
      maxKeys: 1000,
      peers: {
        members: () => IDS,
        call: (peerId: string, call: IdempotencyCall, body: Buffer, timeoutMs: number) => {
          this.calls.push(`${id}>${peerId}:${call}`);
          const peer = this.nodes.get(peerId);
          if (!peer || this.down.has(peerId)) {
            return Promise.reject(new UnavailableError(`${peerId} is down`));
          }
          return peer.onPeerCall(call, Buffer.from(body), timeoutMs, id);
        },
      },
    });
    this.nodes.set(id, node);
    this.down.delete(id);
    return node;
  }
  node(id: string): Idempotency {
    return this.nodes.get(id) as Idempotency;
  }
}

/** A key whose owner and replica are as given. */
function keyWith(owner: string, replica: string): string {
  for (let i = 0; ; i++) {
    const [o, r] = rendezvousPair(`key-${i}`, IDS);
    if (o === owner && r === replica) return `key-${i}`;
  }
}

let nextId = 0;
/** A deliver() that counts and succeeds with a fresh id. */
function deliverer(): { deliver: () => SendResult; count: () => number } {
  let n = 0;
  return {
    deliver: () => ({ id: `m${nextId++}`, delivered: ++n > 0 ? 1 : 0 }),
    count: () => n,
  };
}
const acked = (r: SendResult) => r.delivered;

test('a retry through another node is a duplicate with the original ack; the record is on owner and replica', async t => {
  const c = new Cluster(new ManualClock(0));
  const key = keyWith('c', 'b');
  const d = deliverer();
  const first = await c.node('a').publish(key, 5000, d.deliver, acked);
  const retry = await c.node('b').publish(key, 5000, d.deliver, acked);
  t.false(first.duplicate);
  t.deepEqual(retry, { id: first.id, delivered: 1, duplicate: true });
  t.is(d.count(), 1);
  t.is(c.node('c').store.size, 1, 'owner');
  t.is(c.node('b').store.size, 1, 'replica');
  t.is(c.node('a').store.size, 0);
  t.is(c.node('c').counts.replicated, 1);
  t.is(c.node('b').counts.replicaRecords, 1);
});

test('published through the replica of its key: it keeps the copy itself and the owner sends none', async t => {
  const clock = new ManualClock(0);
  const c = new Cluster(clock);
  clock.advance(WINDOW); // past the first window: no lookups at the replica
  const key = keyWith('c', 'b');
  const d = deliverer();
  const first = await c.node('b').publish(key, 5000, d.deliver, acked);
  t.deepEqual(c.calls, ['b>c:claim', 'b>c:complete'], 'no REPLICATE round trip');
  t.is(c.node('b').store.size, 1, 'the replica holds the record');
  t.is(c.node('c').counts.replicated, 1, 'counted by the owner as copied');
  t.is(c.node('b').counts.replicaRecords, 1);
  // The restart of the owner still recovers the key from the replica's own copy.
  c.start('c');
  const retry = await c.node('a').publish(key, 5000, d.deliver, acked);
  t.deepEqual(retry, { id: first.id, delivered: 1, duplicate: true });
  t.is(d.count(), 1);
});

test('a completion that says the replica holds the record is believed only from the replica', async t => {
  const clock = new ManualClock(0);
  const c = new Cluster(clock);
  clock.advance(WINDOW); // past the first window: no lookups at the replica
  const key = keyWith('c', 'b');
  const owner = c.node('c');
  const claimed = await owner.claim(key, 'tok', 10_000, 0);
  t.deepEqual(claimed, { kind: 'new' });
  // Node a claims (wrongly) to be the replica: the owner copies the record to b anyway.
  await owner.complete(
    { key, token: 'tok', ok: true, id: 'm', delivered: 1, replicaHeld: true },
    'a'
  );
  t.deepEqual(c.calls, ['c>b:replicate']);
  t.is(c.node('b').store.size, 1);
  t.is(owner.counts.replicated, 1);
});

test('an owner restarted inside the window recovers the key from its replica; one restarted with its replica has forgotten it', async t => {
  const clock = new ManualClock(0);
  const c = new Cluster(clock);
  const k1 = keyWith('c', 'b');
  const k2 = keyWith('c', 'a');
  const d = deliverer();
  const first1 = await c.node('a').publish(k1, 5000, d.deliver, acked);
  const first2 = await c.node('b').publish(k2, 5000, d.deliver, acked);
  clock.advance(60_000);
  c.down.add('c');
  await t.throwsAsync(c.node('a').publish(k1, 5000, d.deliver, acked), {
    instanceOf: UnavailableError,
    message: new RegExp(`node "c", which keeps idempotency_key "${k1}", did not answer`),
  });
  const restarted = c.start('c');
  const retry1 = await c.node('a').publish(k1, 5000, d.deliver, acked);
  t.deepEqual(retry1, { id: first1.id, delivered: 1, duplicate: true }, 'recovered from b');
  t.is(restarted.counts.recovered, 1);
  // Now the replica of k2 restarts too: nothing remembers k2 any more.
  c.start('a');
  const retry2 = await c.node('b').publish(k2, 5000, d.deliver, acked);
  t.false(retry2.duplicate, 'owner and replica both restarted: delivered again');
  t.not(retry2.id, first2.id);
  t.is(d.count(), 3);
});

test('a recently started owner whose replica is down refuses (nothing delivered); after one window it no longer asks', async t => {
  const clock = new ManualClock(0);
  const c = new Cluster(clock);
  const key = keyWith('c', 'b');
  const d = deliverer();
  c.down.add('b');
  const err = await t.throwsAsync(c.node('a').publish(key, 5000, d.deliver, acked), {
    instanceOf: UnavailableError,
  });
  t.is(
    err?.message,
    `send: node "c", which keeps idempotency_key "${key}", restarted recently and could not ask node "b" whether the key was already accepted; nothing was delivered: retry`
  );
  t.is(c.node('a').refusals.replica_unreachable, 1);
  t.is(d.count(), 0);
  clock.advance(WINDOW);
  t.false(c.node('c').recentlyStarted);
  const ok = await c.node('a').publish(key, 5000, d.deliver, acked);
  t.false(ok.duplicate);
  t.is(c.node('c').counts.lookups, 1, 'only the first claim looked up');
  t.is(c.node('c').counts.replicationsFailed, 1, 'the replica is down: kept on the owner');
});

test('a retry while the original is pending waits for it: duplicate when it succeeds, delivers when it failed', async t => {
  const clock = new ManualClock(0);
  const c = new Cluster(clock);
  clock.advance(WINDOW); // past the first window: no lookups
  const key = keyWith('c', 'a');
  let finish!: (r: SendResult) => void;
  const slow = c
    .node('a')
    .publish(key, 5000, () => new Promise<SendResult>(resolve => (finish = resolve)), acked);
  await new Promise(r => setImmediate(r));
  const d = deliverer();
  const retry = c.node('b').publish(key, 5000, d.deliver, acked);
  await new Promise(r => setImmediate(r));
  t.is(c.node('c').waitingClaims, 1);
  finish({ id: 'orig', delivered: 2 });
  t.deepEqual(await slow, { id: 'orig', delivered: 2, duplicate: false });
  t.deepEqual(await retry, { id: 'orig', delivered: 2, duplicate: true });
  t.is(d.count(), 0);

  const key2 = keyWith('c', 'b');
  let fail!: (err: Error) => void;
  const failing = c
    .node('a')
    .publish(key2, 5000, () => new Promise<SendResult>((_, reject) => (fail = reject)), acked);
  await new Promise(r => setImmediate(r));
  const retry2 = c.node('b').publish(key2, 5000, d.deliver, acked);
  await new Promise(r => setImmediate(r));
  fail(new UnavailableError('peer gone'));
  await t.throwsAsync(failing, { message: 'peer gone' });
  const r2 = await retry2;
  t.false(r2.duplicate, 'the original failed: the waiting retry delivers');
  t.is(d.count(), 1);
});

test('a retry still pending at its deadline is UNAVAILABLE; the wait is bounded by the clock', async t => {
  const clock = new ManualClock(0);
  const c = new Cluster(clock);
  clock.advance(WINDOW);
  const key = keyWith('b', 'a');
  void c.node('a').publish(key, 60_000, () => new Promise<SendResult>(() => undefined), acked);
  await new Promise(r => setImmediate(r));
  const retry = c.node('c').publish(key, 2000, deliverer().deliver, acked);
  await new Promise(r => setImmediate(r));
  clock.advance(2000);
  await t.throwsAsync(retry, {
    instanceOf: UnavailableError,
    message: `send: a Send with idempotency_key "${key}" is still in progress; nothing was delivered: retry to get its ack`,
  });
  t.is(c.node('b').waitingClaims, 0);
});
