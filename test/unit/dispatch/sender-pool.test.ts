/**
 * SenderPool (src/dispatch/sender-pool.ts): one sender per address, shared by directory
 * peers through references, address senders bounded and retired when idle. Senders dial
 * forever-pending connections; time runs on a ManualClock.
 */
import type { Duplex } from 'node:stream';
import test from 'ava';
import type { HostPort } from '../../../src/common';
import {
  CidrSet,
  DropCounter,
  DropLedger,
  ManualClock,
  UnavailableError,
  parseCidrList,
} from '../../../src/common';
import type { AddressTargetLimits, AddressTargetRefusal, LinkHandler } from '../../../src/dispatch';
import { ALL_SUBSCRIBERS, PeerSender, SenderPool } from '../../../src/dispatch';

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

interface Rig {
  clock: ManualClock;
  pool: SenderPool;
  drops: DropCounter<AddressTargetRefusal>;
  ledger: DropLedger;
  /** Every sender created: address, expected id, retryForever. */
  created: Array<{ key: string; expectedId: string; retryForever: boolean }>;
}

function rig(limits: Partial<AddressTargetLimits> = {}): Rig {
  const clock = new ManualClock();
  const ledger = new DropLedger({ clock });
  const drops = new DropCounter<AddressTargetRefusal>('cluster', ledger);
  const created: Rig['created'] = [];
  const hang = (_a: HostPort, _t: number, signal?: AbortSignal): Promise<Duplex> =>
    new Promise((_resolve, reject) =>
      signal?.addEventListener('abort', () => reject(new UnavailableError('aborted')))
    );
  const pool = new SenderPool({
    localId: 'me',
    clock,
    limits,
    drops,
    create: (address, expectedId, retryForever) => {
      created.push({ key: `${address.host}:${address.port}`, expectedId, retryForever });
      return new PeerSender({
        address,
        expectedId,
        dial: hang,
        handler,
        clock,
        maxMessageBytes: 1024,
        retryForever,
        drops: ledger,
      });
    },
  });
  return { clock, pool, drops, ledger, created };
}

const at = (host: string, port = 7401): HostPort => ({ host, port });

test('directory peers share the sender at one address; the last reference closes it', t => {
  const { pool, created } = rig();
  const [a] = pool.syncPeer('a', [at('10.0.0.1')]);
  const [b] = pool.syncPeer('b', [at('10.0.0.1')]);
  t.is(a, b, 'one sender per address');
  t.is(created.length, 1);
  t.deepEqual(created[0], { key: '10.0.0.1:7401', expectedId: 'a', retryForever: true });
  pool.removePeer('a');
  t.not(a?.state, 'closed', 'b still uses it');
  t.is(a?.expectedId, 'b', 'future dials expect a peer that still uses it');
  pool.removePeer('b');
  t.is(a?.state, 'closed');
  t.deepEqual([...pool.senders()], []);
  pool.close();
});

test('syncPeer keeps the senders of addresses kept and closes those of addresses gone', t => {
  const { pool } = rig();
  const first = pool.syncPeer('a', [at('10.0.0.1'), at('10.0.0.2')]);
  const again = pool.syncPeer('a', [at('10.0.0.2'), at('10.0.0.3')]);
  t.is(again[0], first[1], 'the kept address keeps its sender');
  t.is(first[0]?.state, 'closed', 'the address that left is closed');
  t.is(pool.peerSenders('a'), again);
  t.is([...pool.senders()].length, 2);
  pool.close();
  t.true(again.every(s => s.state === 'closed'));
});

test('address senders: one per address, capped, retired once idle (clock injected)', t => {
  const { clock, pool, ledger, created } = rig({ maxSenders: 2, idleTimeoutMs: 1000 });
  const s1 = pool.forAddress('127.0.0.1:1');
  t.is(pool.forAddress('127.0.0.1:1'), s1, 'an address reuses its sender');
  pool.forAddress('127.0.0.2:1');
  t.is(created[0]?.retryForever, false, 'address senders do not retry once empty');
  t.is(pool.addressSenderCount, 2);
  const err = t.throws(() => pool.forAddress('127.0.0.3:1'));
  t.is(err?.name, 'ResourceExhaustedError');
  t.is(
    err?.message,
    'node me already has 2 senders for address targets, the most allowed (maxAddressSenders); one is retired after 1000 ms unused (addressSenderIdleMs); retry later, or add the node as a peer (PutPeer) and send by peer_id'
  );
  t.is(ledger.get('cluster', 'address_senders_full'), 1);
  clock.advance(600);
  pool.forAddress('127.0.0.1:1'); // used again: its idle time starts over
  clock.advance(400);
  t.is(pool.addressSenderCount, 1);
  t.is(pool.retirements.get('idle'), 1);
  clock.advance(600);
  t.is(pool.addressSenderCount, 0);
  t.is(s1.state, 'closed');
  t.is(pool.retirements.get('idle'), 2);
  t.is(clock.pendingTimers, 0, 'nothing left ticking');
  t.notThrows(() => pool.forAddress('127.0.0.3:1'), 'room again');
  pool.close();
  t.is(clock.pendingTimers, 0);
});

test('an address sender whose address joins the directory becomes the peer’s, unbounded', t => {
  const { clock, pool } = rig({ maxSenders: 1, idleTimeoutMs: 1000 });
  const s = pool.forAddress('10.0.0.9:7401');
  t.is(pool.addressSenderCount, 1);
  const [peer] = pool.syncPeer('nine', [at('10.0.0.9')]);
  t.is(peer, s);
  t.is(s.expectedId, 'nine');
  t.is(pool.addressSenderCount, 0, 'no longer counted against maxSenders');
  t.is(pool.forAddress('10.0.0.9:7401'), s, 'address targets still use it');
  clock.advance(5000);
  t.not(s.state, 'closed', 'not retired when idle');
  t.is(pool.retirements.get('idle'), 0);
  pool.removePeer('nine');
  t.is(s.state, 'closed');
  pool.close();
});

test('address targets off or outside addressTargetCidrs are refused and counted', t => {
  const off = rig({ enabled: false });
  const e1 = t.throws(() => off.pool.forAddress('10.0.0.1:1'));
  t.is(e1?.name, 'FailedPreconditionError');
  t.is(off.drops.get('address_targets_disabled'), 1);
  const narrow = rig({ allowed: new CidrSet(parseCidrList('10.0.0.0/8')) });
  t.notThrows(() => narrow.pool.forAddress('10.1.2.3:1'));
  for (const bad of ['11.0.0.1:1', 'localhost:1']) {
    const err = t.throws(() => narrow.pool.forAddress(bad));
    t.is(err?.name, 'PermissionDeniedError', bad);
  }
  t.is(narrow.drops.get('address_not_allowed'), 2);
  t.is(narrow.created.length, 1);
  off.pool.close();
  narrow.pool.close();
});

test('drops of retired senders stay in the ledger', t => {
  const { clock, pool, ledger } = rig({ idleTimeoutMs: 1000 });
  const s = pool.forAddress('127.0.0.1:1');
  s.submit({
    kind: 'message',
    message: { id: '', topic: 't', payload: Buffer.from('x'), headers: {} },
    scope: ALL_SUBSCRIBERS,
    wantCount: false,
    seq: 0,
    expiresAt: clock.now() + 60_000,
    bytes: 65,
    resolve: () => undefined,
    reject: () => undefined,
  });
  clock.advance(1000);
  t.is(s.state, 'closed');
  t.is(s.drops.get('address_sender_retired'), 1);
  t.deepEqual(ledger.snapshot(['peer_sender']), { address_sender_retired: 1 });
  pool.close();
});
