/**
 * Dual-stack: a node listening on [::] (UDP peers and gRPC) talks to a peer that addresses
 * it by IPv4 (127.0.0.1) and to one that addresses it by IPv6 ([::1]), in both
 * directions, and serves gRPC clients over both families.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import type { DeliveryBatch, SendResponse, WireDelivery } from '../../../src/api';
import { createClients } from '../../../src/api';
import type { HostPort } from '../../../src/common';
import type { TestNode } from '../../helpers/node';
import { collect, serverStream, startTestNode, unary, waitFor } from '../../helpers/node';
import { stopAll } from '../../helpers/cluster';

const dir = mkdtempSync(join(tmpdir(), 'mw-dual-'));
const secret = join(dir, 'cluster-secret');
writeFileSync(secret, 'dual-stack test cluster secret\n');

const any6: HostPort = { host: '::', port: 0 };
const nodes: TestNode[] = [];
test.afterEach.always(async () => {
  await stopAll(nodes);
  nodes.length = 0;
});

async function subscribe(node: TestNode, topics: string[]) {
  const router = node.server.node.router;
  const before = [...router.subscriptions()].length;
  const stream = serverStream<DeliveryBatch>(node.clients.messenger, 'Subscribe', { topics });
  const state = collect<WireDelivery>(stream);
  await waitFor(() => [...router.subscriptions()].length > before || state.error !== undefined);
  return { stream, state };
}

async function putPeer(from: TestNode, id: string, address: string): Promise<void> {
  await unary(from.clients.peers, 'PutPeer', { id, addresses: [address] });
}

async function sendDelivered(from: TestNode, peerId: string, topic: string): Promise<number> {
  const res = await unary<SendResponse>(from.clients.messenger, 'Send', {
    target: { peerId },
    message: { topic, payload: Buffer.from(topic) },
    ack: 'DELIVERED',
  });
  return res.delivered;
}

const dualStack = test.macro(async (t, udpDriver: 'auto' | 'dgram') => {
  const a = await startTestNode({
    udpDriver,
    nodeId: 'dual-a',
    grpcListen: any6,
    peerListen: any6,
    clusterSecretFile: secret,
  });
  nodes.push(a);
  const b = await startTestNode({ udpDriver, nodeId: 'v4-b', clusterSecretFile: secret });
  nodes.push(b);
  const c = await startTestNode({
    udpDriver,
    nodeId: 'v6-c',
    grpcListen: { host: '::1', port: 0 },
    peerListen: { host: '::1', port: 0 },
    clusterSecretFile: secret,
  });
  nodes.push(c);
  const pa = a.server.node.peerAddress;
  t.is(pa.host, '::', 'bound to the IPv6 wildcard');

  await putPeer(b, 'dual-a', `127.0.0.1:${pa.port}`);
  await putPeer(c, 'dual-a', `[::1]:${pa.port}`);
  await putPeer(a, 'v4-b', `127.0.0.1:${b.server.node.peerAddress.port}`);
  await putPeer(a, 'v6-c', `[::1]:${c.server.node.peerAddress.port}`);

  const onA = await subscribe(a, ['to-a.>']);
  t.is(await sendDelivered(b, 'dual-a', 'to-a.from-v4'), 1, 'IPv4 peer -> [::] node');
  t.is(await sendDelivered(c, 'dual-a', 'to-a.from-v6'), 1, 'IPv6 peer -> [::] node');
  await waitFor(() => onA.state.items.length === 2, 10_000, 'two deliveries on dual-a');
  t.deepEqual(onA.state.items.map(d => d.sourcePeer).sort(), ['v4-b', 'v6-c']);

  const onB = await subscribe(b, ['to-b']);
  const onC = await subscribe(c, ['to-c']);
  t.is(await sendDelivered(a, 'v4-b', 'to-b'), 1, '[::] node -> IPv4 peer');
  t.is(await sendDelivered(a, 'v6-c', 'to-c'), 1, '[::] node -> IPv6 peer');
  await waitFor(() => onB.state.items.length === 1 && onC.state.items.length === 1, 10_000);
  t.is(onB.state.items[0].sourcePeer, 'dual-a');
  t.is(onC.state.items[0].sourcePeer, 'dual-a');
  for (const s of [onA, onB, onC]) s.stream.cancel();

  // gRPC bound on [::] accepts clients over IPv4 and IPv6.
  for (const host of ['127.0.0.1', '[::1]']) {
    const clients = createClients(`${host}:${a.server.grpcPort}`);
    try {
      const peers = await unary<{ peers: { id: string }[] }>(clients.peers, 'ListPeers', {});
      // the directory lists the node itself too
      t.deepEqual(peers.peers.map(p => p.id).sort(), ['dual-a', 'v4-b', 'v6-c'], host);
    } finally {
      clients.close();
    }
  }
});

test.serial(
  'a node on [::] peers with 127.0.0.1 and [::1] in both directions; gRPC on [::] answers both families',
  dualStack,
  'auto'
);
test.serial('the same on the node:dgram UDP driver', dualStack, 'dgram');
