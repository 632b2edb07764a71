/** Test helpers for clusters of real nodes (gRPC + reliable UDP on loopback). */
import type { Client } from '@grpc/grpc-js';
import { formatHostPort } from '../../src/common';
import type { NodeConfig } from '../../src/app';
import type { TestNode } from './node';
import { startTestNode, unary, waitFor } from './node';
import { waitFor as waitUntil } from './wait';

/**
 * Starts `ids.length` nodes, tells each about all the others through PutPeer, and waits
 * until every node is connected to every other: from then on a Subscribe's response
 * headers cover all of them.
 */
export async function startCluster(
  ids: string[],
  overrides: Partial<NodeConfig> = {}
): Promise<TestNode[]> {
  const nodes: TestNode[] = [];
  for (const id of ids) nodes.push(await startTestNode({ nodeId: id, ...overrides }));
  for (const n of nodes) {
    for (const other of nodes) {
      if (other === n) continue;
      await unary(n.clients.peers, 'PutPeer', {
        id: other.server.node.id,
        addresses: [formatHostPort(other.server.node.peerAddress)],
      });
    }
  }
  await waitForConnected(nodes);
  return nodes;
}

interface PeerList {
  peers: Array<{ id: string; state: string }>;
}

/**
 * Waits until the node behind `peers` (a Peers client) lists each of `ids` as 'connected'
 * (ListPeers). A Subscribe's headers cover only the peers connected when it registers.
 */
export async function waitForPeersConnected(
  peers: Client,
  ids: string[],
  timeoutMs = 10_000
): Promise<void> {
  let list: PeerList = { peers: [] };
  const missing = (): string[] =>
    ids.filter(id => !list.peers.some(p => p.id === id && p.state === 'connected'));
  await waitUntil(
    `connected to ${ids.join(', ')}`,
    async () => {
      list = await unary<PeerList>(peers, 'ListPeers', {});
      return missing().length === 0;
    },
    timeoutMs,
    () => `not ${missing().join(', ')} (${list.peers.map(p => `${p.id}=${p.state}`).join(', ')})`
  );
}

/** Waits until every node lists every other as 'connected'; subscribe after this. */
export async function waitForConnected(nodes: TestNode[], timeoutMs = 10_000): Promise<void> {
  for (const n of nodes) {
    const others = nodes.filter(o => o !== n).map(o => o.server.node.id);
    await waitForPeersConnected(n.clients.peers, others, timeoutMs);
  }
}

/** Waits until `node` has learned a peer's interest matching `pattern`. */
export async function waitForInterest(
  node: TestNode,
  peerId: string,
  pattern: string,
  group = ''
): Promise<void> {
  await waitFor(
    () =>
      node.server.node.interest
        .of(peerId)
        .some(i => i.pattern === pattern && i.queueGroup === group),
    10_000,
    `${node.server.node.id} to learn ${peerId}'s interest in ${pattern}`
  );
}

export async function stopAll(nodes: TestNode[]): Promise<void> {
  await Promise.all(nodes.map(n => n.close().catch(() => undefined)));
}
