import type { ClientDuplexStream, ClientReadableStream, ServiceError } from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import test from 'ava';
import type { DeliveryBatch } from '../../../src/api';
import {
  bidi,
  collect,
  serverStream,
  subscribed,
  subscriptionId,
  unary,
  waitFor,
} from '../../helpers/node';
import {
  ADMIN_TOKEN,
  LIMITED_TOKEN,
  ORDERS_TOKEN,
  startSecureNode,
  tempDir,
  TOKENS_YAML,
  writeTokens,
} from './helpers';

async function refused(p: Promise<unknown>): Promise<ServiceError> {
  try {
    await p;
  } catch (err) {
    return err as ServiceError;
  }
  throw new Error('call succeeded but should have been refused');
}

/** Waits for the first response or error of a bidi stream. */
function firstEvent(s: ClientDuplexStream<unknown, unknown>): Promise<'data' | ServiceError> {
  return new Promise(resolve => {
    s.once('data', () => resolve('data'));
    s.once('error', (e: ServiceError) => resolve(e));
  });
}

const tokensFile = (): string => writeTokens(tempDir(), TOKENS_YAML);

test('streams per client: the third stream is RESOURCE_EXHAUSTED, other clients and later streams work', async t => {
  const node = await startSecureNode({ authTokensFile: tokensFile(), maxStreamsPerClient: 2 });
  try {
    const limited = node.clients({ token: LIMITED_TOKEN });
    const open = (c = limited): ClientDuplexStream<unknown, unknown> => {
      const s = bidi<unknown, unknown>(c.messenger, 'SendStream');
      s.on('error', () => undefined);
      s.write({ sequence: 1, messages: [{ topic: 'a.b', payload: Buffer.from('x') }] });
      return s;
    };
    const s1 = open();
    const s2 = open();
    t.is(await firstEvent(s1), 'data');
    t.is(await firstEvent(s2), 'data');
    const third = await firstEvent(open());
    t.not(third, 'data');
    t.is((third as ServiceError).code, status.RESOURCE_EXHAUSTED);
    t.regex(
      (third as ServiceError).details,
      /streams_per_client.*token:limited.*at most 2.*maxStreamsPerClient/
    );
    // Another client is not affected.
    const admin = node.clients({ token: ADMIN_TOKEN });
    t.is(await firstEvent(open(admin)), 'data');
    // Closing a stream gives its slot back.
    s1.end();
    await waitFor(
      () => node.server.guard.limits.usage('token:limited').streams === 1,
      5000,
      'release'
    );
    t.is(await firstEvent(open()), 'data');
    t.is(node.server.guard.limits.rejected.get('streams_per_client'), 1);
  } finally {
    await node.close();
  }
});

test('subscriptions per client: over the limit is RESOURCE_EXHAUSTED; a cancelled one frees its slot', async t => {
  const node = await startSecureNode({
    authTokensFile: tokensFile(),
    maxSubscriptionsPerClient: 1,
  });
  try {
    const limited = node.clients({ token: LIMITED_TOKEN });
    const first = serverStream<DeliveryBatch>(limited.messenger, 'Subscribe', { topics: ['x.>'] });
    first.on('error', () => undefined);
    await subscribed(first);
    const second = collect(
      serverStream<DeliveryBatch>(limited.messenger, 'Subscribe', { topics: ['y'] })
    );
    await waitFor(() => second.error !== undefined, 5000, 'refusal');
    t.is(second.error?.code, status.RESOURCE_EXHAUSTED);
    t.regex(second.error?.details ?? '', /subscriptions_per_client.*maxSubscriptionsPerClient/);
    const orders = node.clients({ token: ORDERS_TOKEN });
    const other = serverStream<DeliveryBatch>(orders.messenger, 'Subscribe', {
      topics: ['orders.eu.status'],
    });
    other.on('error', () => undefined);
    await subscribed(other);
    first.cancel();
    await waitFor(
      () => node.server.guard.limits.usage('token:limited').subscriptions === 0,
      5000,
      'release'
    );
    const again = serverStream<DeliveryBatch>(limited.messenger, 'Subscribe', { topics: ['y'] });
    again.on('error', () => undefined);
    t.regex(subscriptionId(await subscribed(again)), /^s\d+$/);
    t.is(node.server.guard.limits.usage('token:limited').subscriptions, 1);
    again.cancel();
    other.cancel();
  } finally {
    await node.close();
  }
});

test('in-flight requests per client: Request and RequestStream past the limit are RESOURCE_EXHAUSTED', async t => {
  const node = await startSecureNode({ authTokensFile: tokensFile(), maxInFlightPerClient: 2 });
  try {
    const admin = node.clients({ token: ADMIN_TOKEN });
    // A responder that holds "hold" requests and answers "echo" ones.
    const held: string[] = [];
    const responder = serverStream<DeliveryBatch>(admin.messenger, 'Subscribe', {
      topics: ['hold', 'echo'],
    });
    responder.on('error', () => undefined);
    responder.on('data', (b: DeliveryBatch) => {
      for (const d of b.deliveries) {
        if (d.message.topic === 'hold') held.push(d.replyTo);
        else
          void unary(admin.messenger, 'Respond', {
            replyTo: d.replyTo,
            message: { payload: Buffer.from('ok') },
          });
      }
    });
    await subscribed(responder);
    const limited = node.clients({ token: LIMITED_TOKEN });
    const hold = { message: { topic: 'hold', payload: Buffer.from('h') }, timeoutMs: 10_000 };
    const p1 = unary(limited.messenger, 'Request', hold);
    const p2 = unary(limited.messenger, 'Request', hold);
    await waitFor(() => held.length === 2, 5000, 'two held requests');
    const e = await refused(unary(limited.messenger, 'Request', hold));
    t.is(e.code, status.RESOURCE_EXHAUSTED);
    t.regex(e.details, /in_flight_per_client.*maxInFlightPerClient/);
    const rs = bidi<unknown, { requestId: string; errorCode: number }>(
      limited.messenger,
      'RequestStream'
    );
    const out: Array<{ requestId: string; errorCode: number }> = [];
    rs.on('data', r => out.push(r));
    rs.write({ requestId: 'r1', message: { topic: 'echo', payload: Buffer.from('e') } });
    await waitFor(() => out.length === 1, 5000, 'stream refusal');
    t.is(out[0].errorCode, status.RESOURCE_EXHAUSTED);
    // Another client's requests flow.
    const r = await unary<{ reply: { payload: Buffer } }>(admin.messenger, 'Request', {
      message: { topic: 'echo', payload: Buffer.from('e') },
      timeoutMs: 5000,
    });
    t.is(r.reply.payload.toString(), 'ok');
    // Answer the held ones: the limited client can request again.
    for (const token of held)
      await unary(admin.messenger, 'Respond', {
        replyTo: token,
        message: { payload: Buffer.from('x') },
      });
    await Promise.all([p1, p2]);
    rs.write({ requestId: 'r2', message: { topic: 'echo', payload: Buffer.from('e') } });
    await waitFor(() => out.length === 2, 5000, 'stream reply');
    t.is(out[1].errorCode, 0);
    rs.end();
    responder.cancel();
  } finally {
    await node.close();
  }
});

test('memory budget: publishers get RESOURCE_EXHAUSTED while a stalled subscriber holds the budget, and metrics show it', async t => {
  const budget = 256 * 1024;
  const node = await startSecureNode(
    { memoryBudgetBytes: budget, maxMessageBytes: 64 * 1024 },
    true
  );
  try {
    const c = node.clients();
    const stalled: ClientReadableStream<DeliveryBatch> = serverStream<DeliveryBatch>(
      c.messenger,
      'Subscribe',
      {
        topics: ['big'],
        bufferSize: 10_000,
        maxBatch: 1,
      }
    );
    let received = 0;
    stalled.on('data', () => received++);
    stalled.on('error', () => undefined);
    stalled.pause();
    await subscribed(stalled);
    // Oversized messages have their own limit (maxMessageBytes): INVALID_ARGUMENT.
    const tooBig = await refused(
      unary(c.messenger, 'Send', { message: { topic: 'other', payload: Buffer.alloc(70 * 1024) } })
    );
    t.is(tooBig.code, status.INVALID_ARGUMENT);
    const payload = Buffer.alloc(32 * 1024, 7);
    let err: ServiceError | undefined;
    for (let i = 0; i < 2000 && !err; i++) {
      try {
        await unary(c.messenger, 'Send', { message: { topic: 'big', payload } });
      } catch (e) {
        err = e as ServiceError;
      }
    }
    t.is(err?.code, status.RESOURCE_EXHAUSTED);
    t.regex(err?.details ?? '', /memory_budget.*memoryBudgetBytes/);
    t.is(received, 0);
    t.true(node.server.guard.budget.used + payload.length + 1024 > budget);
    t.true(node.server.guard.budget.used <= budget);
    // Non-publishing calls still work, and reading frees the budget.
    const list = await unary<{ peers: unknown[] }>(c.peers, 'ListPeers', {});
    t.true(list.peers.length >= 1);
    stalled.resume();
    await waitFor(() => node.server.guard.budget.used === 0, 10_000, 'budget released');
    t.truthy(
      (await unary<{ id: string }>(c.messenger, 'Send', { message: { topic: 'big', payload } })).id
    );
    const text = await (await fetch(`http://127.0.0.1:${node.server.metricsPort}/metrics`)).text();
    t.regex(text, /meshwire_limits_rejected(_total)?\{limit="memory_budget"[^}]*\} [1-9]/);
    stalled.cancel();
  } finally {
    await node.close();
  }
});
