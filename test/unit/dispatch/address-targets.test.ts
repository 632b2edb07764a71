/**
 * Senders for `target.address` outside the peer directory are bounded (src/dispatch/cluster.ts):
 * retired when idle, capped, restricted to allowed CIDRs, can be turned off, and stop
 * retrying once their queue is empty. All timing runs on a ManualClock.
 */
import type { Duplex } from 'node:stream';
import test from 'ava';
import type { HostPort, Message } from '../../../src/common';
import { CidrSet, ManualClock, UnavailableError, parseCidrList } from '../../../src/common';
import type { AddressTargetLimits, ClusterHandler, Dialer } from '../../../src/dispatch';
import { Cluster } from '../../../src/dispatch';
import { createDuplexPair } from '../../../src/mux';
import { PeerDirectory } from '../../../src/peers';

const msg = (): Message => ({ id: '', topic: 't', payload: Buffer.from('x'), headers: {} });

const handler: ClusterHandler = {
  onMessage: () => 0,
  onRequest: () => Promise.reject(new Error('no')),
  onRespond: () => undefined,
  onPeerCall: () => Promise.reject(new Error('no peer calls in this test')),
  onPeerInterest: () => undefined,
  onPeerGone: () => undefined,
  localInterests: () => [],
};

const flush = () => new Promise(r => setImmediate(r));

interface Rig {
  clock: ManualClock;
  cluster: Cluster;
  directory: PeerDirectory;
  /** Every dial: address and clock time. */
  dials: Array<{ addr: string; at: number; signal?: AbortSignal }>;
}

/** A cluster whose dials fail at once (a dead address), or never settle (`hang`). */
function rig(limits: Partial<AddressTargetLimits> = {}, mode: 'fail' | 'hang' = 'fail'): Rig {
  const clock = new ManualClock();
  const directory = new PeerDirectory();
  const dials: Rig['dials'] = [];
  const dial: Dialer = (addr: HostPort, _timeoutMs: number, signal?: AbortSignal) => {
    dials.push({ addr: `${addr.host}:${addr.port}`, at: clock.now(), signal });
    if (mode === 'hang') {
      return new Promise<Duplex>((_resolve, reject) =>
        signal?.addEventListener('abort', () => reject(new UnavailableError('aborted')))
      );
    }
    return Promise.reject(new UnavailableError('connect timed out'));
  };
  const cluster = new Cluster({
    localId: 'me',
    directory,
    handler,
    dial,
    clock,
    maxMessageBytes: 1024,
    addressTargets: limits,
  });
  return { clock, cluster, directory, dials };
}

const cidrs = (text: string) => new CidrSet(parseCidrList(text));

test('idle address senders are retired after the idle timeout; use postpones it', async t => {
  const { clock, cluster } = rig({ idleTimeoutMs: 1000 }, 'hang');
  for (let i = 1; i <= 3; i++) {
    cluster.enqueue({ address: `127.0.0.${i}:9000` }, msg(), { timeoutMs: 60_000 });
  }
  await flush();
  t.is(cluster.addressSenderCount, 3);
  clock.advance(600);
  cluster.enqueue({ address: '127.0.0.1:9000' }, msg(), { timeoutMs: 60_000 }); // used again
  clock.advance(400); // 1000 ms since the others were used
  t.is(cluster.addressSenderCount, 1);
  t.is(cluster.addressSenderRetirements.get('idle'), 2);
  clock.advance(599);
  t.is(cluster.addressSenderCount, 1);
  clock.advance(1);
  t.is(cluster.addressSenderCount, 0);
  t.is(cluster.addressSenderRetirements.get('idle'), 3);
  // Queued messages of a retired sender are dropped and counted, and nothing is left ticking.
  t.is(cluster.dropCounts().address_sender_retired, 4);
  t.is(clock.pendingTimers, 0);
  cluster.close();
});

test('retiring an address sender aborts its dial in progress', async t => {
  const { clock, cluster, dials } = rig({ idleTimeoutMs: 500 }, 'hang');
  cluster.enqueue({ address: '10.1.1.1:7401' }, msg(), { timeoutMs: 60_000 });
  await flush();
  t.is(dials.length, 1);
  t.false(dials[0].signal?.aborted);
  clock.advance(500);
  t.true(dials[0].signal?.aborted);
  await flush();
  t.is(cluster.addressSenderCount, 0);
  t.is(clock.pendingTimers, 0);
  cluster.close();
});

test('past maxAddressSenders a new address is RESOURCE_EXHAUSTED, counted; known ones still work', async t => {
  const { clock, cluster } = rig({ maxSenders: 2, idleTimeoutMs: 1000 }, 'hang');
  cluster.enqueue({ address: '127.0.0.1:1' }, msg());
  cluster.enqueue({ address: '127.0.0.2:1' }, msg());
  const err = t.throws(() => cluster.enqueue({ address: '127.0.0.3:1' }, msg()));
  t.is(err?.name, 'ResourceExhaustedError');
  t.regex(err?.message ?? '', /maxAddressSenders/);
  t.is(cluster.dropCounts().address_senders_full, 1);
  // An address that already has a sender is not refused.
  t.notThrows(() => cluster.enqueue({ address: '127.0.0.1:1' }, msg()));
  t.is(cluster.addressSenderCount, 2);
  await flush();
  // Once idle ones are retired there is room again.
  clock.advance(1000);
  t.is(cluster.addressSenderCount, 0);
  t.notThrows(() => cluster.enqueue({ address: '127.0.0.3:1' }, msg()));
  t.is(cluster.addressSenderCount, 1);
  cluster.close();
});

test('addressTargetCidrs: IPv4 and IPv6 inside are allowed, outside and host names PERMISSION_DENIED', t => {
  const { cluster } = rig({ allowed: cidrs('10.0.0.0/8,fd00::/8,192.168.1.7') }, 'hang');
  for (const ok of ['10.2.3.4:7401', '[fd00::1]:7401', '192.168.1.7:1', '[::ffff:10.0.0.1]:1']) {
    t.notThrows(() => cluster.enqueue({ address: ok }, msg()), ok);
  }
  for (const bad of ['11.0.0.1:7401', '[fe80::1]:7401', '192.168.1.8:1', 'localhost:7401']) {
    const err = t.throws(() => cluster.enqueue({ address: bad }, msg()), { any: false });
    t.is(err?.name, 'PermissionDeniedError', bad);
    t.regex(err?.message ?? '', /addressTargetCidrs/);
  }
  t.is(cluster.dropCounts().address_not_allowed, 4);
  t.is(cluster.addressSenderCount, 4);
  cluster.close();
});

test('addressTargets off: every target.address is FAILED_PRECONDITION naming the key; peer ids still work', async t => {
  const { cluster, directory, dials } = rig({ enabled: false });
  const err = t.throws(() => cluster.enqueue({ address: '127.0.0.1:7401' }, msg()));
  t.is(err?.name, 'FailedPreconditionError');
  t.regex(err?.message ?? '', /addressTargets/);
  await t.throwsAsync(
    () => cluster.request({ address: '127.0.0.1:7401' }, msg(), { timeoutMs: 100 }),
    {
      name: 'FailedPreconditionError',
    }
  );
  t.is(cluster.dropCounts().address_targets_disabled, 2);
  t.is(dials.length, 0);
  directory.put('b', [{ host: '127.0.0.1', port: 7401 }], 'api');
  t.notThrows(() => cluster.enqueue({ peerId: 'b' }, msg()));
  cluster.close();
});

test('an address sender that keeps failing gives up once its queue is empty; a directory peer keeps retrying', async t => {
  const { clock, cluster, directory, dials } = rig({ idleTimeoutMs: 3_600_000 });
  directory.put('b', [{ host: '10.0.0.2', port: 7401 }], 'api');
  cluster.enqueue({ address: '10.0.0.1:7401' }, msg(), { timeoutMs: 2000 });
  // A request fails at once (unreachable), so only the fire-and-forget message waits.
  await t.throwsAsync(
    () => cluster.request({ address: '10.0.0.1:7401' }, msg(), { timeoutMs: 2000 }),
    {
      name: 'UnavailableError',
    }
  );
  const count = (addr: string) => dials.filter(d => d.addr === addr).length;
  for (let i = 0; i < 60; i++) {
    clock.advance(500);
    await flush();
  }
  // While the message waited (2 s) the sender retried; after it expired, no more dials.
  const byAddress = count('10.0.0.1:7401');
  t.true(byAddress >= 3, `address dials ${byAddress}`);
  t.true(dials.filter(d => d.addr === '10.0.0.1:7401').every(d => d.at <= 2100));
  t.true(count('10.0.0.2:7401') > byAddress, 'the directory peer keeps reconnecting');
  t.is(cluster.dropCounts().ttl_expired, 1);
  t.is(cluster.addressSenderCount, 1, 'given up, not yet idle for an hour');
  // New work for it dials again (its backoff has long passed).
  cluster.enqueue({ address: '10.0.0.1:7401' }, msg(), { timeoutMs: 2000 });
  await flush();
  t.is(count('10.0.0.1:7401'), byAddress + 1);
  cluster.close();
});

test('an address that becomes a directory peer address is no longer an address sender', async t => {
  const { clock, cluster, directory, dials } = rig({ idleTimeoutMs: 1000 });
  cluster.enqueue({ address: '10.0.0.3:7401' }, msg(), { timeoutMs: 100 });
  await flush();
  clock.advance(200);
  await flush();
  t.is(cluster.addressSenderCount, 1);
  const before = dials.length;
  directory.put('c', [{ host: '10.0.0.3', port: 7401 }], 'api');
  t.is(cluster.addressSenderCount, 0);
  for (let i = 0; i < 20; i++) {
    clock.advance(500);
    await flush();
  }
  t.true(dials.length > before + 2, 'it retries forever like any directory peer');
  t.is(cluster.addressSenderRetirements.get('idle'), 0);
  cluster.close();
});

test('a live link with a request awaiting its answer is in use: retired only once idle after the reply', async t => {
  const clock = new ManualClock();
  let answer: ((m: Message) => void) | undefined;
  const far = new Cluster({
    localId: 'far',
    directory: new PeerDirectory(),
    handler: {
      ...handler,
      onRequest: () =>
        new Promise(resolve => (answer = reply => resolve({ reply, responderPeer: 'far' }))),
    },
    dial: () => Promise.reject(new UnavailableError('not used')),
    clock,
    maxMessageBytes: 1024,
    pingIntervalMs: 0,
  });
  const near = new Cluster({
    localId: 'near',
    directory: new PeerDirectory(),
    handler,
    // An in-memory link to `far`, as if its UDP address answered.
    dial: () => {
      const [mine, theirs] = createDuplexPair();
      far.accept(theirs);
      return Promise.resolve(mine);
    },
    clock,
    maxMessageBytes: 1024,
    pingIntervalMs: 0,
    addressTargets: { idleTimeoutMs: 1000 },
  });
  const reply = near.request({ address: '127.0.0.9:7401' }, msg(), { timeoutMs: 60_000 });
  for (let i = 0; i < 20 && !answer; i++) await flush();
  t.truthy(answer, 'the request reached the far node');
  clock.advance(5000); // long past the idle timeout, but the request is outstanding
  t.is(near.addressSenderCount, 1);
  answer?.({ id: 'r', topic: '', payload: Buffer.from('ok'), headers: {} });
  const r = await reply;
  t.is(r.reply.payload.toString(), 'ok');
  t.is(r.responderPeer, 'far');
  // The last sweep (at 5000 ms) saw the request outstanding: idle from then on.
  clock.advance(999);
  t.is(near.addressSenderCount, 1);
  clock.advance(1);
  t.is(near.addressSenderCount, 0);
  t.is(near.addressSenderRetirements.get('idle'), 1);
  near.close();
  far.close();
});
