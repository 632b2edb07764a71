import { status } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import test from 'ava';
import type { TestNode } from '../../helpers/node';
import {
  bidi,
  clientStream,
  openSubscription,
  serverStream,
  startTestNode,
  subscribed,
  subscriptionId,
  unary,
  waitFor,
} from '../../helpers/node';
import type {
  DeliveryBatch,
  RequestResponse,
  RequestStreamResponse,
  SendResponse,
  SendStreamResponse,
  WireDelivery,
} from '../../../src/api';

let node: TestNode;
test.before(async () => {
  node = await startTestNode({ maxMessageBytes: 64 * 1024, requestTimeoutMs: 5000 });
});
test.after.always(async () => {
  await node.close();
});

const m = () => node.clients.messenger;
const body = (s: string) => Buffer.from(s);

/** Subscribes and waits for the response headers: the subscription is live. */
const subscribe = (req: Record<string, unknown>) => openSubscription(m(), req);

test.serial('send reaches wildcard subscribers and only them', async t => {
  const all = await subscribe({ topics: ['orders.>'] });
  const star = await subscribe({ topics: ['orders.*.created'] });
  const other = await subscribe({ topics: ['billing.>'] });
  const res = await unary<SendResponse>(m(), 'Send', {
    message: { topic: 'orders.eu.created', payload: body('o1'), headers: { k: 'v' } },
    ack: 'DELIVERED',
  });
  t.is(res.delivered, 2);
  t.truthy(res.id);
  await waitFor(() => all.state.items.length === 1 && star.state.items.length === 1);
  const d = all.state.items[0];
  t.is(d.message.payload.toString(), 'o1');
  t.is(d.message.id, res.id);
  t.is(d.message.headers.k, 'v');
  t.is(d.sourcePeer, 'test-node');
  t.is(other.state.items.length, 0);
  for (const s of [all, star, other]) s.stream.cancel();
});

test.serial('ACCEPTED ack returns the id and delivered 0', async t => {
  const res = await unary<SendResponse>(m(), 'Send', {
    message: { topic: 'nobody.here', payload: body('x') },
  });
  t.is(res.delivered, 0);
  t.true(res.id.length > 0);
});

test.serial('a queue group gets each message once across members', async t => {
  const members: Array<Awaited<ReturnType<typeof subscribe>>> = [];
  for (let i = 0; i < 3; i++)
    members.push(await subscribe({ topics: ['jobs.>'], queueGroup: 'workers' }));
  for (let i = 0; i < 30; i++) {
    await unary(m(), 'Send', { message: { topic: 'jobs.run', payload: body(String(i)) } });
  }
  await waitFor(() => members.reduce((n, s) => n + s.state.items.length, 0) === 30);
  const seen = members.flatMap(s => s.state.items.map(d => d.message.payload.toString())).sort();
  t.is(new Set(seen).size, 30);
  for (const s of members) t.true(s.state.items.length >= 5, 'each member gets a share');
  for (const s of members) s.stream.cancel();
});

async function responder(pattern: string, reply: (p: string) => string, queueGroup = '') {
  const sub = await subscribe({ topics: [pattern], queueGroup, maxBatch: 32 });
  sub.stream.on('data', (b: DeliveryBatch) => {
    for (const d of b.deliveries) {
      void unary(m(), 'Respond', {
        replyTo: d.replyTo,
        message: { topic: '', payload: body(reply(d.message.payload.toString())) },
      }).catch(() => undefined);
    }
  });
  return sub;
}

test.serial('request/respond round trip', async t => {
  const r = await responder('math.double', p => String(Number(p) * 2));
  const res = await unary<RequestResponse>(m(), 'Request', {
    message: { topic: 'math.double', payload: body('21') },
  });
  t.is(res.reply.payload.toString(), '42');
  t.is(res.reply.topic, 'math.double', 'a reply without a topic carries the request topic');
  t.is(res.responderPeer, 'test-node');
  r.stream.cancel();
});

test.serial('request with no responders fails at once with UNAVAILABLE', async t => {
  const err = await t.throwsAsync<ServiceError>(
    unary(m(), 'Request', { message: { topic: 'no.one', payload: body('x') }, timeoutMs: 60_000 })
  );
  t.is(err?.code, status.UNAVAILABLE);
  t.regex(err?.details ?? '', /no responders for "no.one"/);
});

test.serial('request times out with DEADLINE_EXCEEDED and the token is cleaned up', async t => {
  const silent = await subscribe({ topics: ['slow.svc'] });
  const err = await t.throwsAsync<ServiceError>(
    unary(m(), 'Request', { message: { topic: 'slow.svc', payload: body('x') }, timeoutMs: 150 })
  );
  t.is(err?.code, status.DEADLINE_EXCEEDED);
  await waitFor(() => silent.state.items.length === 1);
  const late = await t.throwsAsync<ServiceError>(
    unary(m(), 'Respond', {
      replyTo: silent.state.items[0].replyTo,
      message: { payload: body('late') },
    })
  );
  t.is(late?.code, status.NOT_FOUND);
  t.regex(late?.details ?? '', /the requester timed out/);
  t.is(node.server.node.replies.size, 0);
  silent.stream.cancel();
});

test.serial('the gRPC deadline bounds a request when it is sooner than timeout_ms', async t => {
  const silent = await subscribe({ topics: ['slow.two'] });
  const err = await t.throwsAsync<ServiceError>(
    unary(
      m(),
      'Request',
      { message: { topic: 'slow.two', payload: body('x') }, timeoutMs: 60_000 },
      200
    )
  );
  t.is(err?.code, status.DEADLINE_EXCEEDED);
  await waitFor(() => node.server.node.replies.size === 0, 2000, 'token cleanup');
  silent.stream.cancel();
  t.pass();
});

test.serial('SendStream keeps order and acks every request by sequence', async t => {
  const sub = await subscribe({ topics: ['seq.>'], maxBatch: 100, bufferSize: 10000 });
  const call = bidi<unknown, SendStreamResponse>(m(), 'SendStream');
  const acks: SendStreamResponse[] = [];
  call.on('data', (r: SendStreamResponse) => acks.push(r));
  const N = 50;
  for (let s = 0; s < N; s++) {
    const messages = [0, 1, 2, 3].map(i => ({ topic: 'seq.x', payload: body(String(s * 4 + i)) }));
    call.write({ sequence: s, messages, ack: s % 2 ? 'DELIVERED' : 'ACCEPTED' });
  }
  call.write({ sequence: 999, messages: [{ topic: 'bad topic', payload: body('x') }] });
  call.end();
  await new Promise(resolve => call.on('end', resolve));
  t.deepEqual(
    acks.map(a => a.sequence),
    [...Array.from({ length: N }, (_, i) => i), 999]
  );
  t.true(acks.slice(0, N).every(a => a.ids.length === 4 && a.errorCode === 0));
  t.is(acks[1].delivered, 4);
  t.is(acks[N].errorCode, status.INVALID_ARGUMENT);
  await waitFor(() => sub.state.items.length === N * 4);
  t.deepEqual(
    sub.state.items.map(d => Number(d.message.payload.toString())),
    Array.from({ length: N * 4 }, (_, i) => i)
  );
  t.true(sub.state.batches < N * 4, 'max_batch packs several deliveries per stream message');
  sub.stream.cancel();
});

test.serial('max_batch packs up to that many deliveries per stream message', async t => {
  const sub = await subscribe({ topics: ['batch.t'], maxBatch: 10, bufferSize: 1000 });
  const sizes: number[] = [];
  sub.stream.on('data', (b: DeliveryBatch) => sizes.push(b.deliveries.length));
  // One SendStream request offers all 25 at once, so the subscriber's buffer fills in one go.
  const call = bidi<unknown, SendStreamResponse>(m(), 'SendStream');
  const messages = Array.from({ length: 25 }, (_, i) => ({
    topic: 'batch.t',
    payload: body(String(i)),
  }));
  call.write({ sequence: 1, messages });
  call.end();
  call.on('data', () => undefined);
  await waitFor(() => sub.state.items.length === 25);
  t.deepEqual(sizes, [10, 10, 5]);
  sub.stream.cancel();
});

test.serial('RequestStream pipelines requests and RespondStream answers them', async t => {
  const sub = await subscribe({ topics: ['echo.>'], maxBatch: 64, bufferSize: 4096 });
  const responses = clientStream<unknown, { accepted: number; rejected: number }>(
    m(),
    'RespondStream'
  );
  sub.stream.on('data', (b: DeliveryBatch) => {
    for (const d of b.deliveries) {
      responses.call.write({
        replyTo: d.replyTo,
        message: { payload: Buffer.concat([body('re:'), d.message.payload]) },
      });
    }
  });
  const call = bidi<unknown, RequestStreamResponse>(m(), 'RequestStream');
  const got = new Map<string, RequestStreamResponse>();
  call.on('data', (r: RequestStreamResponse) => got.set(r.requestId, r));
  const N = 200;
  for (let i = 0; i < N; i++) {
    call.write({ requestId: `r${i}`, message: { topic: 'echo.x', payload: body(String(i)) } });
  }
  call.write({ requestId: '', message: { topic: 'echo.x', payload: body('x') } });
  call.end();
  await new Promise(resolve => call.on('end', resolve));
  t.is(got.size, N + 1);
  for (let i = 0; i < N; i++) {
    const r = got.get(`r${i}`);
    t.is(r?.errorCode, 0);
    t.is(r?.reply?.payload.toString(), `re:${i}`);
  }
  t.is(got.get('')?.errorCode, status.INVALID_ARGUMENT);
  responses.call.write({ replyTo: 'bogus', message: { payload: body('x') } });
  responses.call.end();
  const tally = await responses.result;
  t.is(tally.accepted, N);
  t.is(tally.rejected, 1);
  sub.stream.cancel();
});

const big = Buffer.alloc(16 * 1024, 7);

async function floodPaused(topic: string, policy: string) {
  const sub = await subscribe({
    topics: [topic],
    bufferSize: 4,
    maxBatch: 1,
    slowConsumerPolicy: policy,
  });
  sub.stream.pause();
  for (let i = 0; i < 120; i++) {
    await unary(m(), 'Send', { message: { topic, payload: Buffer.concat([body(`${i}|`), big]) } });
  }
  return sub;
}

const seq = (d: WireDelivery) => Number(d.message.payload.toString('utf8', 0, 8).split('|')[0]);

test.serial('slow consumer DROP_OLDEST: newest kept, drops reported in the stream', async t => {
  const sub = await floodPaused('slow.oldest', 'DROP_OLDEST');
  sub.stream.resume();
  await waitFor(
    () => sub.state.items.length > 0 && seq(sub.state.items[sub.state.items.length - 1]) === 119
  );
  t.true(sub.state.dropped > 0);
  t.true(sub.state.items.length < 120);
  sub.stream.cancel();
});

test.serial('slow consumer DROP_NEWEST: the newest are discarded', async t => {
  const sub = await floodPaused('slow.newest', 'DROP_NEWEST');
  sub.stream.resume();
  await waitFor(() => sub.state.dropped > 0);
  const held = [...node.server.node.router.subscriptions()].find(s => s.id === sub.id);
  await waitFor(() => sub.state.items.length === held?.delivered, 5000, 'all it buffered');
  t.true(sub.state.items.length < 120);
  t.false(sub.state.items.some(d => seq(d) === 119));
  sub.stream.cancel();
});

test.serial('slow consumer CLOSE: RESOURCE_EXHAUSTED naming the subscription', async t => {
  const sub = await floodPaused('slow.close', 'CLOSE');
  sub.stream.resume();
  await waitFor(() => sub.state.error !== undefined);
  t.is(sub.state.error?.code, status.RESOURCE_EXHAUSTED);
  t.regex(sub.state.error?.details ?? '', /subscription s\d+ \(slow.close\) fell behind/);
});

const invalid: Array<[string, string, unknown, RegExp]> = [
  ['empty topic', 'Send', { message: { topic: '', payload: body('x') } }, /topic is empty/],
  ['bad token', 'Send', { message: { topic: 'a.b c', payload: body('x') } }, /invalid token "b c"/],
  [
    'wildcard in a send topic',
    'Send',
    { message: { topic: 'a.>', payload: body('x') } },
    /wildcard/,
  ],
  [
    'payload over the maximum',
    'Send',
    { message: { topic: 'a', payload: Buffer.alloc(64 * 1024 + 1) } },
    /payload is 65537 bytes; the maximum is 65536/,
  ],
  [
    'message id over 256 bytes',
    'Send',
    { message: { id: 'i'.repeat(100_000), topic: 'a', payload: body('x') } },
    /message.id "i{100}…" \(100000 bytes\) is too long; at most 256 bytes/,
  ],
  [
    'header key over 256 bytes',
    'Send',
    { message: { topic: 'a', payload: body('x'), headers: { ['k'.repeat(300)]: 'v' } } },
    /header key "k{100}…" \(300 bytes\) is too long/,
  ],
  [
    'a 100 KB peer id is echoed in at most 100 characters',
    'Request',
    { target: { peerId: 'p'.repeat(100_000) }, message: { topic: 'a', payload: body('x') } },
    /peer id "p{100}…" \(100000 bytes\) is not valid/,
  ],
  [
    'reply_to that this cluster did not issue',
    'Respond',
    { replyTo: 'nope', message: { payload: body('x') } },
    /reply_to "nope" is not a reply token of this cluster/,
  ],
  [
    'reply_to over 512 bytes',
    'Respond',
    { replyTo: 'r'.repeat(100_000), message: { payload: body('x') } },
    /reply_to is 100000 bytes; reply tokens have at most 512/,
  ],
  ['missing message', 'Send', {}, /message is missing/],
  [
    'unknown ack mode',
    'Send',
    { message: { topic: 'a', payload: body('x') }, ack: 7 },
    /not a known ack mode/,
  ],
  ['missing reply_to', 'Respond', { message: { payload: body('x') } }, /reply_to is missing/],
  [
    'bad target address',
    'Send',
    { target: { address: 'nope' }, message: { topic: 'a', payload: body('x') } },
    /not a valid address/,
  ],
  [
    'bad peer id',
    'Request',
    { target: { peerId: 'bad id!' }, message: { topic: 'a', payload: body('x') } },
    /peer id "bad id!" is not valid/,
  ],
  [
    'request wildcard topic',
    'Request',
    { message: { topic: '*', payload: body('x') } },
    /wildcard/,
  ],
];
for (const [name, rpc, req, re] of invalid) {
  test(`INVALID_ARGUMENT: ${name}`, async t => {
    const err = await t.throwsAsync<ServiceError>(unary(m(), rpc, req));
    t.is(err?.code, status.INVALID_ARGUMENT);
    t.regex(err?.details ?? '', re);
  });
}

test('Subscribe with a bad pattern ends with INVALID_ARGUMENT', async t => {
  const stream = serverStream<DeliveryBatch>(m(), 'Subscribe', { topics: ['a.>.b'] });
  const err = await new Promise<ServiceError>(resolve => stream.on('error', resolve));
  t.is(err.code, status.INVALID_ARGUMENT);
  t.regex(err.details, /">" must be the last token/);
});

test('Send to another peer is UNAVAILABLE with a clear message', async t => {
  const err = await t.throwsAsync<ServiceError>(
    unary(m(), 'Send', {
      target: { peerId: 'elsewhere' },
      message: { topic: 'a', payload: body('x') },
    })
  );
  t.is(err?.code, status.UNAVAILABLE);
  t.regex(err?.details ?? '', /peer "elsewhere" is unknown/);
});

test('Send to this node by its own id delivers locally', async t => {
  const res = await unary<SendResponse>(m(), 'Send', {
    target: { peerId: 'test-node' },
    message: { topic: 'self.x', payload: body('x') },
    ack: 'DELIVERED',
  });
  t.is(res.delivered, 0);
});

test('an empty payload is a message like any other', async t => {
  const sub = serverStream<DeliveryBatch>(m(), 'Subscribe', { topics: ['empty.x'] });
  sub.on('error', () => undefined); // cancelled at the end
  // The response headers say the subscription is live: no probing.
  t.regex(subscriptionId(await subscribed(sub)), /^s\d+$/);
  const got = new Promise<DeliveryBatch>(resolve => sub.once('data', resolve));
  const res = await unary<SendResponse>(m(), 'Send', {
    message: { topic: 'empty.x', payload: Buffer.alloc(0) },
    ack: 'DELIVERED',
  });
  t.is(res.delivered, 1);
  const batch = await got;
  t.is(batch.deliveries[0].message.payload.length, 0);
  sub.cancel();
});
