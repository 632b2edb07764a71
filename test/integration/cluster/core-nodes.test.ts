/**
 * Nodes without gRPC: the production assembly (src/app) with `grpc: false` and a
 * VirtualNetwork socket under each peer transport, driven through MeshNode itself. The
 * cluster, the transport and the drain are the ones `meshwire serve` runs.
 */
import test from 'ava';
import type { NodeApp } from '../../../src/app';
import { systemClock } from '../../../src/common';
import type { Delivery, Subscription } from '../../../src/node';
import { VirtualNetwork } from '../../../src/transport';
import { startVirtualApp } from '../../helpers/virtual-node';
import { waitFor } from '../../helpers/node';

const HOSTS: Record<string, string> = {
  'core-a': '10.0.2.1',
  'core-b': '10.0.2.2',
  'core-c': '10.0.2.3',
};

/** Every delivery of `sub`, as they arrive. */
function collect(sub: Subscription): Delivery[] {
  const got: Delivery[] = [];
  sub.onReadable(() => {
    for (let b = sub.take(); b; b = sub.take()) got.push(...b.deliveries);
  });
  return got;
}

async function startCore(net: VirtualNetwork): Promise<NodeApp[]> {
  const apps: NodeApp[] = [];
  for (const [id, host] of Object.entries(HOSTS)) {
    apps.push(await startVirtualApp(net, id, host, { grpc: false }));
  }
  for (const app of apps) {
    for (const [id, host] of Object.entries(HOSTS)) {
      if (id !== app.node.id) app.node.putPeer(id, [`${host}:7401`]);
    }
  }
  for (const app of apps) {
    for (const id of Object.keys(HOSTS)) {
      if (id === app.node.id) continue;
      await waitFor(
        () => app.node.cluster?.peerStatus(id).state === 'connected',
        20_000,
        `${app.node.id} connected to ${id}`
      );
    }
  }
  return apps;
}

test('three nodes without gRPC over a lossy virtual network: interest routing, DELIVERED, request/reply, drain', async t => {
  const net = new VirtualNetwork({
    seed: 20261205,
    clock: systemClock,
    defaults: { lossRate: 0.02, delayMs: [0, 2] },
  });
  // The virtual network and the transport's timers do not hold the event loop open, and
  // without gRPC nothing else does: keep it open while packets are in flight.
  const alive = setInterval(() => undefined, 1000);
  const apps = await startCore(net);
  const respondErrors: Error[] = [];
  const [a, b, c] = apps;
  try {
    t.throws(() => a.grpcAddress, { message: /runs without gRPC/ });
    t.deepEqual(
      a.components.map(x => x.name),
      ['datagram socket', 'peer transport', 'static peers', 'cluster', 'dns resolver', 'node']
    );
    const sub = c.node.subscribe({ patterns: ['core.>'] });
    await sub.ready;
    const got = collect(sub);
    const sent = await a.node.send(
      { id: '', topic: 'core.x', payload: Buffer.from('hi'), headers: {} },
      undefined,
      { ack: 'DELIVERED' }
    );
    t.is(sent.delivered, 1);
    await waitFor(() => got.length === 1);
    t.is(got[0].message.payload.toString(), 'hi');
    t.is(got[0].sourcePeer, 'core-a');

    // A request from B answered on C through its reply token.
    const responder = b.node.subscribe({ patterns: ['svc.echo'] });
    await responder.ready;
    responder.onReadable(() => {
      for (let batch = responder.take(); batch; batch = responder.take()) {
        for (const d of batch.deliveries) {
          // C forwards the reply to A, which issued the token. A may get the reply and the
          // test shut A down before C hears A's acknowledgement: that respond then fails
          // with the link's close, which is checked after the shutdown below.
          Promise.resolve(
            c.node.respond(d.replyTo, {
              id: '',
              topic: '',
              payload: Buffer.concat([Buffer.from('echo '), d.message.payload]),
              headers: {},
            })
          ).catch((err: Error) => respondErrors.push(err));
        }
      }
    });
    const reply = await a.node.request(
      { id: '', topic: 'svc.echo', payload: Buffer.from('ping'), headers: {} },
      undefined,
      { timeoutMs: 10_000 }
    );
    t.is(reply.reply.payload.toString(), 'echo ping');
  } finally {
    const results = await Promise.all(apps.map(app => app.shutdown()));
    t.deepEqual(
      results.map(r => r.drained),
      [true, true, true]
    );
    t.deepEqual(
      apps.map(app => app.node.state),
      ['stopped', 'stopped', 'stopped']
    );
    clearInterval(alive);
  }
  // A respond may only have failed because the links closed at shutdown.
  for (const err of respondErrors) t.is(err.name, 'ConnectionClosedError', err.message);
});
