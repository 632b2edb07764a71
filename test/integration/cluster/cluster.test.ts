import { status } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import test from 'ava';
import type {
  DeliveryBatch,
  RequestResponse,
  SendResponse,
  SendStreamResponse,
} from '../../../src/api';
import type { TestNode } from '../../helpers/node';
import { bidi, openSubscription, unary, waitFor } from '../../helpers/node';
import { startCluster, stopAll } from '../../helpers/cluster';

let nodes: TestNode[];
let a: TestNode, b: TestNode, c: TestNode;
test.before(async () => {
  nodes = await startCluster(['node-a', 'node-b', 'node-c'], { requestTimeoutMs: 5000 });
  [a, b, c] = nodes;
});
test.after.always(() => stopAll(nodes));

const body = (s: string) => Buffer.from(s);

/** The client has every delivery `node` buffered for subscription `id`: nothing more is on its way. */
const drained = (node: TestNode, id: string, received: number): boolean =>
  [...node.server.node.router.subscriptions()].some(s => s.id === id && s.delivered === received);

/** Subscribes on `node` and waits for the response headers: live there and on its peers. */
const subscribe = (node: TestNode, req: Record<string, unknown>) =>
  openSubscription(node.clients.messenger, { maxBatch: 64, bufferSize: 20000, ...req });

test.serial('Send to a peer id delivers on that node, with DELIVERED count', async t => {
  const sub = await subscribe(b, { topics: ['direct.>'] });
  const res = await unary<SendResponse>(a.clients.messenger, 'Send', {
    target: { peerId: 'node-b' },
    message: { topic: 'direct.x', payload: body('hello b'), headers: { h: '1' } },
    ack: 'DELIVERED',
  });
  t.is(res.delivered, 1);
  await waitFor(() => sub.state.items.length === 1);
  const d = sub.state.items[0];
  t.is(d.message.payload.toString(), 'hello b');
  t.is(d.message.headers.h, '1');
  t.is(d.sourcePeer, 'node-a');
  t.is(d.message.id, res.id);
  sub.stream.cancel();
});

test.serial('Send to a node by its UDP address', async t => {
  const sub = await subscribe(c, { topics: ['byaddr'] });
  const addr = c.server.node.peerAddress;
  const res = await unary<SendResponse>(a.clients.messenger, 'Send', {
    target: { address: `${addr.host}:${addr.port}` },
    message: { topic: 'byaddr', payload: body('x') },
    ack: 'DELIVERED',
  });
  t.is(res.delivered, 1);
  await waitFor(() => sub.state.items.length === 1);
  sub.stream.cancel();
});

test.serial('per-sender order across nodes (SendStream, 2,000 messages)', async t => {
  const sub = await subscribe(c, { topics: ['order.>'] });
  const call = bidi<unknown, SendStreamResponse>(a.clients.messenger, 'SendStream');
  const acks: SendStreamResponse[] = [];
  call.on('data', (r: SendStreamResponse) => acks.push(r));
  for (let s = 0; s < 100; s++) {
    const messages = Array.from({ length: 20 }, (_, i) => ({
      topic: 'order.x',
      payload: body(String(s * 20 + i)),
    }));
    call.write({ sequence: s, target: { peerId: 'node-c' }, messages });
  }
  call.end();
  await new Promise(resolve => call.on('end', resolve));
  t.true(acks.every(x => x.errorCode === 0));
  await waitFor(() => sub.state.items.length === 2000, 20_000);
  t.deepEqual(
    sub.state.items.map(d => Number(d.message.payload.toString())),
    Array.from({ length: 2000 }, (_, i) => i)
  );
  sub.stream.cancel();
});

test.serial(
  'no target: interest routing reaches only nodes with a matching subscriber',
  async t => {
    const onB = await subscribe(b, { topics: ['news.sports.*'] });
    const onC = await subscribe(c, { topics: ['news.weather.>'] });
    const r1 = await unary<SendResponse>(a.clients.messenger, 'Send', {
      message: { topic: 'news.sports.football', payload: body('goal') },
      ack: 'DELIVERED',
    });
    const r2 = await unary<SendResponse>(a.clients.messenger, 'Send', {
      message: { topic: 'news.weather.eu.rain', payload: body('rain') },
      ack: 'DELIVERED',
    });
    t.is(r1.delivered, 1);
    t.is(r2.delivered, 1);
    await waitFor(() => onB.state.items.length === 1 && onC.state.items.length === 1);
    t.is(onB.state.items[0].message.payload.toString(), 'goal');
    t.is(onC.state.items[0].message.payload.toString(), 'rain');
    // Node C has no interest in sports: it received nothing extra (the acks counted 1 each).
    await waitFor(() => drained(c, onC.id, onC.state.items.length), 5000, 'C drained');
    t.is(onC.state.items.length, 1);
    onB.stream.cancel();
    onC.stream.cancel();
    // Withdrawn interest: A forgets it.
    await waitFor(
      () => a.server.node.interest.of('node-b').every(i => i.pattern !== 'news.sports.*'),
      10_000
    );
  }
);

test.serial('a queue group spanning the cluster gets each message exactly once', async t => {
  const members = [
    await subscribe(b, { topics: ['work.>'], queueGroup: 'w' }),
    await subscribe(c, { topics: ['work.>'], queueGroup: 'w' }),
  ];
  const N = 200;
  for (let i = 0; i < N; i++) {
    await unary(a.clients.messenger, 'Send', {
      message: { topic: 'work.job', payload: body(String(i)) },
    });
  }
  await waitFor(() => members.reduce((n, m) => n + m.state.items.length, 0) >= N, 10_000);
  await waitFor(
    () =>
      drained(b, members[0].id, members[0].state.items.length) &&
      drained(c, members[1].id, members[1].state.items.length),
    5000,
    'B and C drained'
  );
  const got = members.flatMap(m => m.state.items.map(d => Number(d.message.payload.toString())));
  t.is(got.length, N);
  t.is(new Set(got).size, N);
  t.true(
    members.every(m => m.state.items.length > N / 5),
    'both members share the work'
  );
  // A local member is preferred: with one on A, A's member gets them all.
  const local = await subscribe(a, { topics: ['work.>'], queueGroup: 'w' });
  for (let i = 0; i < 20; i++)
    await unary(a.clients.messenger, 'Send', {
      message: { topic: 'work.job', payload: body('l') },
    });
  await waitFor(() => local.state.items.length === 20);
  for (const m of [...members, local]) m.stream.cancel();
});

test.serial('cross-node Request/Respond, by target and by interest', async t => {
  const sub = await subscribe(c, { topics: ['svc.echo'] });
  sub.stream.on('data', (batch: DeliveryBatch) => {
    for (const d of batch.deliveries) {
      void unary(c.clients.messenger, 'Respond', {
        replyTo: d.replyTo,
        message: { payload: Buffer.concat([body('echo:'), d.message.payload]) },
      });
    }
  });
  const byTarget = await unary<RequestResponse>(a.clients.messenger, 'Request', {
    target: { peerId: 'node-c' },
    message: { topic: 'svc.echo', payload: body('1') },
  });
  t.is(byTarget.reply.payload.toString(), 'echo:1');
  t.is(byTarget.responderPeer, 'node-c');
  const byInterest = await unary<RequestResponse>(b.clients.messenger, 'Request', {
    message: { topic: 'svc.echo', payload: body('2') },
  });
  t.is(byInterest.reply.payload.toString(), 'echo:2');
  t.is(byInterest.responderPeer, 'node-c');
  sub.stream.cancel();
});

test.serial('Request to a peer with no responder is UNAVAILABLE at once', async t => {
  const err = await t.throwsAsync<ServiceError>(
    unary(a.clients.messenger, 'Request', {
      target: { peerId: 'node-b' },
      message: { topic: 'nobody', payload: body('x') },
      timeoutMs: 20_000,
    })
  );
  t.is(err?.code, status.UNAVAILABLE);
  t.regex(err?.details ?? '', /no responders/);
});

test.serial(
  'Subscribe headers on C mean a Send by interest from A is delivered at once (20 fresh topics, no retries)',
  async t => {
    for (let i = 0; i < 20; i++) {
      // A pattern no node has seen before, so A learns of it only through this Subscribe.
      const pattern = i % 2 ? `ready.t${i}.>` : `ready.t${i}.x`;
      const topic = `ready.t${i}.x`;
      const sub = await subscribe(c, { topics: [pattern] });
      t.regex(sub.id, /^s\d+$/);
      const res = await unary<SendResponse>(a.clients.messenger, 'Send', {
        message: { topic, payload: body(String(i)) },
        ack: 'DELIVERED',
      });
      t.is(res.delivered, 1, `${topic} right after the headers of ${pattern} on node-c`);
      await waitFor(() => sub.state.items.length === 1);
      t.is(sub.state.items[0].message.payload.toString(), String(i));
      t.is(sub.state.items[0].sourcePeer, 'node-a');
      sub.stream.cancel();
    }
  }
);

test.serial(
  'ListPeers shows connected peers with RTT; DeletePeer removes one at runtime',
  async t => {
    const list = await unary<{
      peers: Array<{ id: string; state: string; srttUs: number; source: string }>;
    }>(a.clients.peers, 'ListPeers', {});
    const bInfo = list.peers.find(p => p.id === 'node-b');
    t.is(bInfo?.state, 'connected');
    t.true((bInfo?.srttUs ?? 0) > 0);
    t.is(bInfo?.source, 'api');
    await unary(a.clients.peers, 'DeletePeer', { id: 'node-b' });
    const err = await t.throwsAsync<ServiceError>(
      unary(a.clients.messenger, 'Send', {
        target: { peerId: 'node-b' },
        message: { topic: 't', payload: body('x') },
      })
    );
    t.is(err?.code, status.UNAVAILABLE);
    t.regex(err?.details ?? '', /unknown/);
    const addr = b.server.node.peerAddress;
    await unary(a.clients.peers, 'PutPeer', {
      id: 'node-b',
      addresses: [`${addr.host}:${addr.port}`],
    });
    const sub = await subscribe(b, { topics: ['back'] });
    const res = await unary<SendResponse>(a.clients.messenger, 'Send', {
      target: { peerId: 'node-b' },
      message: { topic: 'back', payload: body('x') },
      ack: 'DELIVERED',
    });
    t.is(res.delivered, 1);
    sub.stream.cancel();
  }
);

test('bad input: unknown peer, malformed address, invalid topic', async t => {
  const m = a.clients.messenger;
  const unknown = await t.throwsAsync<ServiceError>(
    unary(m, 'Send', { target: { peerId: 'ghost' }, message: { topic: 't', payload: body('x') } })
  );
  t.is(unknown?.code, status.UNAVAILABLE);
  const malformed = await t.throwsAsync<ServiceError>(
    unary(m, 'Send', {
      target: { address: '1.2.3.4' },
      message: { topic: 't', payload: body('x') },
    })
  );
  t.is(malformed?.code, status.INVALID_ARGUMENT);
  const topic = await t.throwsAsync<ServiceError>(
    unary(m, 'Send', {
      target: { peerId: 'node-b' },
      message: { topic: 'a..b', payload: body('x') },
    })
  );
  t.is(topic?.code, status.INVALID_ARGUMENT);
});
