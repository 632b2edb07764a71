/**
 * Cluster faults in one process: nodes whose peer transport runs over the seeded
 * virtual network (loss, duplication, reordering), and peers that never resolve.
 */
import { status } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import test from 'ava';
import type {
  DeliveryBatch,
  SendResponse,
  SendStreamResponse,
  WireDelivery,
} from '../../../src/api';
import { systemClock } from '../../../src/common';
import type { LinkConditions } from '../../../src/transport';
import { VirtualNetwork } from '../../../src/transport';
import { virtualNode } from '../../helpers/virtual-node';
import {
  bidi,
  collect,
  openSubscription,
  serverStream,
  startTestNode,
  subscribed,
  unary,
  waitFor,
} from '../../helpers/node';

const body = (s: string) => Buffer.from(s);

test('5% loss with duplication and reordering: 10,000 messages arrive exactly once, in order', async t => {
  const lossy: LinkConditions = {
    lossRate: 0.05,
    duplicateRate: 0.02,
    reorderRate: 0.02,
    reorderDelayMs: 2,
    delayMs: [0, 1],
  };
  const seed = Number(process.env.MESHWIRE_TEST_SEED ?? 20261123);
  t.log(`virtual network seed ${seed}`);
  const net = new VirtualNetwork({ seed, clock: systemClock, defaults: lossy });
  const a = await virtualNode(net, 'va', '10.0.0.1');
  const b = await virtualNode(net, 'vb', '10.0.0.2');
  try {
    await unary(a.clients.peers, 'PutPeer', { id: 'vb', addresses: ['10.0.0.2:7401'] });
    const stream = serverStream<DeliveryBatch>(b.clients.messenger, 'Subscribe', {
      topics: ['loss.>'],
      maxBatch: 256,
      bufferSize: 65536,
    });
    const state = collect<WireDelivery>(stream);
    await subscribed(stream);
    const call = bidi<unknown, SendStreamResponse>(a.clients.messenger, 'SendStream');
    const acks: SendStreamResponse[] = [];
    call.on('data', (r: SendStreamResponse) => acks.push(r));
    const N = 10_000;
    for (let s = 0; s < N / 100; s++) {
      const messages = Array.from({ length: 100 }, (_, i) => ({
        topic: 'loss.x',
        payload: body(String(s * 100 + i)),
      }));
      call.write({ sequence: s, target: { peerId: 'vb' }, messages });
    }
    call.end();
    await new Promise(resolve => call.on('end', resolve));
    t.true(
      acks.every(x => x.errorCode === 0),
      `acks: ${JSON.stringify(acks.find(x => x.errorCode !== 0))}`
    );
    await waitFor(
      () => state.items.length >= N,
      60_000,
      `10,000 deliveries (got ${state.items.length})`
    );
    await waitFor(
      () =>
        [...b.server.node.router.subscriptions()].every(s => s.delivered === state.items.length),
      10_000,
      'every delivery b buffered to reach the client'
    );
    t.is(state.items.length, N);
    t.deepEqual(
      state.items.map(d => Number(d.message.payload.toString())),
      Array.from({ length: N }, (_, i) => i)
    );
    t.true(net.drops.total() > 0, 'the network really dropped packets');
    stream.cancel();
  } finally {
    await a.close();
    await b.close();
  }
});

test('a peer that never resolves: queued messages expire with a counted reason and a clear error', async t => {
  const a = await startTestNode({ nodeId: 'lonely' });
  try {
    // A DNS name that cannot resolve (.invalid is reserved, RFC 6761).
    await unary(a.clients.peers, 'PutPeer', { id: 'nowhere', addresses: ['nowhere.invalid:7401'] });
    const failFast = await t.throwsAsync<ServiceError>(
      unary(a.clients.messenger, 'Send', {
        target: { peerId: 'nowhere' },
        message: { topic: 't', payload: body('x') },
        failFast: true,
      })
    );
    t.is(failFast?.code, status.UNAVAILABLE);
    t.regex(failFast?.details ?? '', /not resolved yet/);
    const waited = await t.throwsAsync<ServiceError>(
      unary(
        a.clients.messenger,
        'Send',
        {
          target: { peerId: 'nowhere' },
          message: { topic: 't', payload: body('x') },
          ack: 'DELIVERED',
        },
        400
      )
    );
    t.is(waited?.code, status.DEADLINE_EXCEEDED);
    // ACCEPTED is queued, then expires (TTL = the call's deadline).
    const accepted = await unary<SendResponse>(
      a.clients.messenger,
      'Send',
      { target: { peerId: 'nowhere' }, message: { topic: 't', payload: body('y') } },
      2000
    );
    t.truthy(accepted.id);
    const cluster = a.server.node.cluster;
    await waitFor(
      () => (cluster?.dropCounts().unresolved_ttl_expired ?? 0) >= 1,
      15_000,
      'ttl drop'
    );
    const list = await unary<{ peers: Array<{ id: string; state: string; queueDepth: number }> }>(
      a.clients.peers,
      'ListPeers',
      {}
    );
    const p = list.peers.find(x => x.id === 'nowhere');
    t.is(p?.state, 'unresolved');
  } finally {
    await a.close();
  }
});

test('a flood that overruns a peer queue gets RESOURCE_EXHAUSTED; other clients keep working', async t => {
  const a = await startTestNode({ nodeId: 'flooder' });
  try {
    // A peer that does not answer: its sender stays in backoff and messages queue.
    await unary(a.clients.peers, 'PutPeer', { id: 'silent', addresses: ['127.0.0.1:9'] });
    // SendStream fills the queue fast: 500 messages per request.
    const call = bidi<unknown, SendStreamResponse>(a.clients.messenger, 'SendStream');
    const acks: SendStreamResponse[] = [];
    call.on('data', (r: SendStreamResponse) => acks.push(r));
    for (let s = 0; s < 30; s++) {
      const messages = Array.from({ length: 500 }, () => ({
        topic: 't',
        payload: Buffer.alloc(1024),
      }));
      call.write({ sequence: s, target: { peerId: 'silent' }, messages });
    }
    call.end();
    await new Promise(resolve => call.on('end', resolve));
    const exhausted = acks.find(x => x.errorCode !== 0);
    t.is(exhausted?.errorCode, status.RESOURCE_EXHAUSTED);
    t.regex(exhausted?.errorMessage ?? '', /queue for peer silent is full/);
    t.true((a.server.node.cluster?.dropCounts().sender_queue_full ?? 0) >= 1);
    // The node still serves local work.
    const sub = await openSubscription(a.clients.messenger, { topics: ['ok'] });
    await unary(a.clients.messenger, 'Send', { message: { topic: 'ok', payload: body('fine') } });
    await waitFor(() => sub.state.items.length === 1);
    t.pass();
  } finally {
    await a.close();
  }
});

test('unresolvedQueueBytes bounds what waits for an unresolved peer: RESOURCE_EXHAUSTED past it', async t => {
  const a = await startTestNode({ nodeId: 'waiter', unresolvedQueueBytes: 8192 });
  try {
    await unary(a.clients.peers, 'PutPeer', { id: 'later', addresses: ['later.invalid:7401'] });
    const call = bidi<unknown, SendStreamResponse>(a.clients.messenger, 'SendStream');
    const acks: SendStreamResponse[] = [];
    call.on('data', (r: SendStreamResponse) => acks.push(r));
    call.write({
      sequence: 1,
      target: { peerId: 'later' },
      messages: Array.from({ length: 20 }, () => ({ topic: 't', payload: Buffer.alloc(1024) })),
    });
    call.end();
    await new Promise(resolve => call.on('end', resolve));
    t.is(acks[0]?.errorCode, status.RESOURCE_EXHAUSTED);
    t.regex(acks[0]?.errorMessage ?? '', /queue for unresolved peer "later" is full/);
    t.true((a.server.node.cluster?.dropCounts().unresolved_queue_full ?? 0) >= 1);
  } finally {
    await a.close();
  }
});
