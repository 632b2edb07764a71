/**
 * Exactly-once publish across client retries (Send.idempotency_key, src/node/idempotency.ts):
 * three nodes on the seeded virtual network with 2% loss, every key published through one
 * node and retried through another; and what a restart inside the window does
 * (docs/design.md, "Exactly-once publish": the replica covers one restart, not two).
 */
import { status } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import test from 'ava';
import type { SendResponse, WireDelivery } from '../../../src/api';
import { systemClock } from '../../../src/common';
import { rendezvousOwner, rendezvousPair } from '../../../src/node';
import { VirtualNetwork } from '../../../src/transport';
import type { TestNode } from '../../helpers/node';
import { openSubscription, startTestNode, unary, waitFor, withClients } from '../../helpers/node';
import { startVirtualApp, virtualNode, VIRTUAL_PEER_PORT } from '../../helpers/virtual-node';
import { waitFor as waitUntil } from '../../helpers/wait';
import {
  ADMIN_TOKEN,
  ORDERS_TOKEN,
  TOKENS_YAML,
  startSecureNode,
  tempDir,
  writeTokens,
} from '../security/helpers';

const IDS = ['ia', 'ib', 'ic'];
const HOSTS = ['10.0.1.1', '10.0.1.2', '10.0.1.3'];

/** Every node lists the two others (the members keys are hashed over). */
async function listPeers(nodes: TestNode[]): Promise<void> {
  for (let i = 0; i < nodes.length; i++) {
    for (let j = 0; j < nodes.length; j++) {
      if (i === j) continue;
      await unary(nodes[i].clients.peers, 'PutPeer', {
        id: IDS[j],
        addresses: [`${HOSTS[j]}:${VIRTUAL_PEER_PORT}`],
      });
    }
  }
}

/** Resolves once every node other than `subscriberNode` routes `topic` to it. */
async function interestReached(nodes: TestNode[], subscriberNode: number, topic: string) {
  await waitFor(
    () =>
      nodes.every(
        (n, i) =>
          i === subscriberNode ||
          n.server.node.interest
            .plan(topic, () => false)
            .some(p => p.peerId === IDS[subscriberNode])
      ),
    30_000,
    'interest on every node'
  );
}

function send(
  node: TestNode,
  topic: string,
  key: string,
  payload: string,
  deadlineMs = 30_000
): Promise<SendResponse> {
  return unary<SendResponse>(
    node.clients.messenger,
    'Send',
    { message: { topic, payload: Buffer.from(payload) }, ack: 'DELIVERED', idempotencyKey: key },
    deadlineMs
  );
}

/**
 * send(), asked again while the key's owner "did not answer" (UNAVAILABLE, nothing
 * delivered), as a client retries: just after a node restarts, the first call to it may
 * leave on the link to its previous run, which the new run closes.
 */
async function sendRetrying(
  node: TestNode,
  topic: string,
  key: string,
  payload: string
): Promise<SendResponse> {
  let result: SendResponse | undefined;
  await waitUntil(
    `a Send of ${key} the owner answers`,
    async () => {
      try {
        result = await send(node, topic, key, payload, 10_000);
        return true;
      } catch (err) {
        const e = err as ServiceError;
        if (e.code === status.UNAVAILABLE && /did not answer/.test(e.details ?? '')) return false;
        throw err;
      }
    },
    30_000
  );
  return result as SendResponse;
}

/** Deliveries per payload. */
function countByPayload(items: WireDelivery[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const d of items) {
    const k = d.message.payload.toString();
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
}

async function runWithConcurrency<T>(
  n: number,
  limit: number,
  f: (i: number) => Promise<T>
): Promise<T[]> {
  const out = new Array<T>(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await f(i);
      }
    })
  );
  return out;
}

test('2% loss: 1,000 keys each retried through a different node are delivered once; the retry is a duplicate with the original id', async t => {
  const seed = Number(process.env.MESHWIRE_TEST_SEED ?? 20261205);
  t.log(`virtual network seed ${seed}`);
  const net = new VirtualNetwork({
    seed,
    clock: systemClock,
    defaults: { lossRate: 0.02, delayMs: [0, 1] },
  });
  const nodes: TestNode[] = [];
  try {
    for (let i = 0; i < 3; i++) nodes.push(await virtualNode(net, IDS[i], HOSTS[i]));
    await listPeers(nodes);
    const sub = await openSubscription(nodes[2].clients.messenger, {
      topics: ['idem.>'],
      maxBatch: 256,
      bufferSize: 65536,
    });
    await interestReached(nodes, 2, 'idem.x');

    const N = 1000;
    const owners = new Map<string, number>();
    const results = await runWithConcurrency(N, 32, async i => {
      const key = `order-${i}`;
      const owner = rendezvousOwner(key, IDS) as string;
      owners.set(owner, (owners.get(owner) ?? 0) + 1);
      const first = await send(nodes[i % 3], 'idem.x', key, key);
      const retry = await send(nodes[(i + 1) % 3], 'idem.x', key, key);
      return { key, first, retry };
    });
    t.log(`keys per owner: ${JSON.stringify(Object.fromEntries(owners))}`);
    for (const { key, first, retry } of results) {
      if (
        first.duplicate ||
        !retry.duplicate ||
        retry.id !== first.id ||
        first.delivered !== 1 ||
        retry.delivered !== 1
      ) {
        t.fail(`${key}: first ${JSON.stringify(first)}, retry ${JSON.stringify(retry)}`);
        return;
      }
    }
    t.pass(
      'every first ack new with delivered 1, every retry duplicate with the same id and count'
    );

    // Both at once through two nodes: one delivers, the other waits for it and is the duplicate.
    const M = 200;
    const pairs = await runWithConcurrency(M, 20, async i => {
      const key = `both-${i}`;
      return Promise.all([
        send(nodes[i % 3], 'idem.x', key, key),
        send(nodes[(i + 2) % 3], 'idem.x', key, key),
      ]);
    });
    for (const [x, y] of pairs) {
      if (x.duplicate === y.duplicate || x.id !== y.id) {
        t.fail(`concurrent pair: ${JSON.stringify(x)} ${JSON.stringify(y)}`);
        return;
      }
    }

    await waitFor(() => sub.state.items.length >= N + M, 30_000, 'every key delivered');
    // Anything delivered twice would arrive within the settle time.
    await new Promise(r => setTimeout(r, 1000));
    const counts = countByPayload(sub.state.items);
    t.is(counts.size, N + M);
    t.deepEqual(
      [...counts].filter(([, n]) => n !== 1),
      [],
      'every key delivered exactly once'
    );
    t.true(net.drops.total() > 0, 'the network really dropped packets');

    const claims = nodes.map(n => n.server.node.idempotency.counts);
    type Counts = (typeof claims)[number];
    const sum = (key: keyof Counts) => claims.reduce((a, c) => a + c[key], 0);
    // [counter, its sum over the three nodes, why]
    const sums: Array<[keyof Counts, number, string]> = [
      ['accepted', N + M, 'each key accepted once, at its owner'],
      ['duplicatesReturned', N + M, 'each retry or concurrent twin is a duplicate'],
      ['completionsLost', 0, 'no completion lost'],
      ['replicated', N + M, 'every ack copied to its replica'],
      ['replicaRecords', N + M, 'every replica took its copy'],
      ['lookups', N + M, 'all nodes are in their first window: each new key looked up'],
      ['recovered', 0, 'nothing to recover: no node restarted'],
    ];
    for (const [key, expected, why] of sums) t.is(sum(key), expected, `${key}: ${why}`);
    t.true(sum('claimsForwarded') > N, 'claims went to other nodes');
    sub.stream.cancel();
  } finally {
    for (const n of nodes) await n.close();
  }
});

test('restart inside the window: an owner restarted alone recovers its keys from their replica (duplicate); while it is down they are UNAVAILABLE; an owner restarted with the replica has forgotten them', async t => {
  const net = new VirtualNetwork({ seed: 7, clock: systemClock });
  const nodes: TestNode[] = [];
  const restart = async (i: number) => {
    await nodes[i].close();
    nodes[i] = withClients(await startVirtualApp(net, IDS[i], HOSTS[i]));
  };
  try {
    for (let i = 0; i < 3; i++) nodes.push(await virtualNode(net, IDS[i], HOSTS[i]));
    await listPeers(nodes);
    const sub = await openSubscription(nodes[0].clients.messenger, { topics: ['restart.>'] });
    await interestReached(nodes, 0, 'restart.x');
    // Keys that ic keeps: one with its replica on ia, one with its replica on ib.
    const keyWith = (owner: string, replica: string) => {
      for (let i = 0; ; i++) {
        const [o, r] = rendezvousPair(`k-${i}`, IDS);
        if (o === owner && r === replica) return `k-${i}`;
      }
    };
    const replicaA = keyWith('ic', 'ia');
    const replicaB = keyWith('ic', 'ib');
    const firstA = await send(nodes[0], 'restart.x', replicaA, 'a1');
    const firstB = await send(nodes[0], 'restart.x', replicaB, 'b1');
    t.false(firstA.duplicate);
    t.false(firstB.duplicate);

    await nodes[2].close();
    const down = await t.throwsAsync<ServiceError>(
      send(nodes[1], 'restart.x', replicaA, 'a-down', 10_000)
    );
    t.is(down?.code, status.UNAVAILABLE);
    t.regex(
      down?.details ?? '',
      /node "ic", which keeps idempotency_key "k-\d+", did not answer .*nothing was delivered: retry/
    );

    nodes[2] = withClients(await startVirtualApp(net, 'ic', HOSTS[2]));
    await listPeers(nodes);
    // ic restarted alone: it asks ia, the replica, and answers duplicate.
    const retryA = await sendRetrying(nodes[1], 'restart.x', replicaA, 'a2');
    t.true(retryA.duplicate, 'recovered from the replica');
    t.is(retryA.id, firstA.id);
    t.is(nodes[2].server.node.idempotency.counts.recovered, 1);

    // ic and ib (replicaB's replica) both restart: the documented loss, delivered again.
    await restart(2);
    await restart(1);
    await listPeers(nodes);
    // The restarted nodes route to ia's subscriber again before b2 is sent.
    await interestReached(nodes, 0, 'restart.x');
    const retryB = await sendRetrying(nodes[1], 'restart.x', replicaB, 'b2');
    t.false(retryB.duplicate);
    t.not(retryB.id, firstB.id);
    const again = await sendRetrying(nodes[0], 'restart.x', replicaB, 'b3');
    t.true(again.duplicate, 'and the new record dedups from then on');
    t.is(again.id, retryB.id);
    await waitFor(() => sub.state.items.length >= 3, 10_000, 'deliveries');
    await new Promise(r => setTimeout(r, 300));
    t.deepEqual(
      sub.state.items.map(d => d.message.payload.toString()).sort(),
      ['a1', 'b1', 'b2'],
      'a-down, a2 and b3 were not delivered'
    );
    sub.stream.cancel();
  } finally {
    for (const n of nodes) await n.close();
  }
});

test('bad keys and a full store: exact statuses, counted', async t => {
  const a = await startTestNode({ nodeId: 'solo', idempotencyMaxKeys: 3 });
  try {
    const long = 'k'.repeat(257);
    const err = await t.throwsAsync<ServiceError>(send(a, 'x.y', long, 'p'));
    t.is(err?.code, status.INVALID_ARGUMENT);
    t.is(err?.details, 'send: idempotency_key is 257 bytes; at most 256 bytes are allowed');
    // 86 three-byte characters are 258 bytes
    const wide = await t.throwsAsync<ServiceError>(send(a, 'x.y', '\u20ac'.repeat(86), 'p'));
    t.is(wide?.details, 'send: idempotency_key is 258 bytes; at most 256 bytes are allowed');
    const ok = await send(a, 'x.y', 'k'.repeat(256), 'p');
    t.false(ok.duplicate);
    t.is(a.server.node.idempotency.refusals.key_too_long, 2);
    // An empty key is no key: two Sends, two ids, nothing kept.
    const e1 = await send(a, 'x.y', '', 'p');
    const e2 = await send(a, 'x.y', '', 'p');
    t.false(e1.duplicate || e2.duplicate);
    t.not(e1.id, e2.id);
    t.is(a.server.node.idempotency.store.size, 1);
    await send(a, 'x.y', 'second', 'p');
    await send(a, 'x.y', 'third', 'p');
    const full = await t.throwsAsync<ServiceError>(send(a, 'x.y', 'fourth', 'p'));
    t.is(full?.code, status.RESOURCE_EXHAUSTED);
    t.is(
      full?.details,
      'send: node "solo", which keeps idempotency_key "fourth", holds idempotencyMaxKeys keys within their window; nothing was delivered: retry later'
    );
    t.is(a.server.node.idempotency.refusals.store_full, 1);
    t.true((await send(a, 'x.y', 'third', 'p')).duplicate, 'keys already kept still answer');
  } finally {
    await a.close();
  }
});

test('with auth, each token has a key space of its own: the same key from two tokens is two Sends; a retry with the same token is the duplicate', async t => {
  const node = await startSecureNode({ authTokensFile: writeTokens(tempDir(), TOKENS_YAML) });
  try {
    const admin = node.clients({ token: ADMIN_TOKEN });
    const orders = node.clients({ token: ORDERS_TOKEN });
    const sendAs = (c: typeof admin) =>
      unary<SendResponse>(c.messenger, 'Send', {
        message: { topic: 'shared.x', payload: Buffer.from('p') },
        idempotencyKey: 'same-key',
      });
    const fromAdmin = await sendAs(admin);
    const fromOrders = await sendAs(orders);
    t.false(fromAdmin.duplicate);
    t.false(fromOrders.duplicate, 'another token: not a duplicate, and no id leaks');
    t.not(fromOrders.id, fromAdmin.id);
    const retry = await sendAs(orders);
    t.true(retry.duplicate);
    t.is(retry.id, fromOrders.id);
  } finally {
    await node.close();
  }
});
