/** Test helpers for clusters of real nodes (gRPC + reliable UDP on loopback). */
import { formatHostPort } from '../../src/common';
import type { NodeConfig } from '../../src/node';
import type { TestNode } from './node';
import { startTestNode, unary, waitFor } from './node';

/** Starts `ids.length` nodes and tells each about all the others through PutPeer. */
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
  return nodes;
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
