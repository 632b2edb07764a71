/**
 * Subscribe's response headers across nodes on a slow network: three in-process nodes
 * whose peer transport runs over the virtual network with 25 ms one-way delay. The
 * headers of a subscription on C come only once A and B acknowledged its interest, so
 * a Send by interest from A right after them is delivered: a node that sent the headers
 * before the acknowledgements would make A drop the message (no subscriber known yet).
 */
import test from 'ava';
import type { SendResponse } from '../../../src/api';
import { systemClock } from '../../../src/common';
import { VirtualNetwork } from '../../../src/transport';
import { stopAll, waitForConnected } from '../../helpers/cluster';
import type { TestNode } from '../../helpers/node';
import { virtualNode } from '../../helpers/virtual-node';
import { openSubscription, unary, waitFor } from '../../helpers/node';

const ONE_WAY_MS = 25;

const nodes: TestNode[] = [];
test.before(async () => {
  const net = new VirtualNetwork({
    seed: 20261205,
    clock: systemClock,
    defaults: { delayMs: [ONE_WAY_MS, ONE_WAY_MS] },
  });
  const hosts = { 'slow-a': '10.0.1.1', 'slow-b': '10.0.1.2', 'slow-c': '10.0.1.3' };
  for (const [id, host] of Object.entries(hosts)) nodes.push(await virtualNode(net, id, host));
  for (const n of nodes) {
    for (const [id, host] of Object.entries(hosts)) {
      if (id === n.server.node.id) continue;
      await unary(n.clients.peers, 'PutPeer', { id, addresses: [`${host}:7401`] });
    }
  }
  await waitForConnected(nodes, 20_000);
});
test.after.always(() => stopAll(nodes));

test('25 ms links: Subscribe headers on C mean a Send by interest from A is delivered at once (20 fresh topics, no retries)', async t => {
  const [a, , c] = nodes;
  for (let i = 0; i < 20; i++) {
    const topic = `slow.t${i}.x`;
    const sub = await openSubscription(c.clients.messenger, {
      topics: [i % 2 ? `slow.t${i}.>` : topic],
    });
    const res = await unary<SendResponse>(a.clients.messenger, 'Send', {
      message: { topic, payload: Buffer.from(String(i)) },
      ack: 'DELIVERED',
    });
    t.is(res.delivered, 1, `${topic} right after the headers on slow-c`);
    await waitFor(() => sub.state.items.length === 1);
    t.is(sub.state.items[0].message.payload.toString(), String(i));
    sub.stream.cancel();
  }
});
