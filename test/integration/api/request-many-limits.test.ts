/**
 * RequestMany's refusals and clean-up on an in-process node: topic permissions and the
 * per-client stream limit (auth on), a client cancel freeing the entry (a late reply gets
 * NOT_FOUND), and a real client that stops reading ending the call at the byte bound on
 * held replies (the count bound: test/unit/api/request-many-service.test.ts).
 */
import type { ClientReadableStream, ServiceError } from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import test from 'ava';
import type { WireMessage } from '../../../src/api/proto';
import {
  openSubscription,
  serverStream,
  startTestNode,
  subscribed,
  unary,
  waitFor,
} from '../../helpers/node';
import {
  ADMIN_TOKEN,
  ORDERS_TOKEN,
  startSecureNode,
  tempDir,
  TOKENS_YAML,
  writeTokens,
} from '../security/helpers';

interface Gathered {
  replies: string[];
  error?: ServiceError;
}

/** Runs a RequestMany to its end. */
function gather(call: ClientReadableStream<{ reply: WireMessage }>): Promise<Gathered> {
  const out: Gathered = { replies: [] };
  return new Promise(resolve => {
    call.on('data', r => out.replies.push(r.reply.payload.toString()));
    call.on('error', (err: ServiceError) => {
      out.error = err;
      resolve(out);
    });
    call.on('end', () => resolve(out));
  });
}

test('auth: a topic outside publish rights is PERMISSION_DENIED; past maxStreamsPerClient, RESOURCE_EXHAUSTED', async t => {
  const node = await startSecureNode({
    authTokensFile: writeTokens(tempDir(), TOKENS_YAML),
    maxStreamsPerClient: 1,
  });
  try {
    const orders = node.clients({ token: ORDERS_TOKEN });
    const denied = await gather(
      serverStream(orders.messenger, 'RequestMany', {
        message: { topic: 'billing.q' },
        timeoutMs: 1000,
      })
    );
    t.is(denied.error?.code, status.PERMISSION_DENIED);
    t.regex(denied.error?.details ?? '', /"billing\.q"/);
    const anonymous = await gather(
      serverStream(node.clients().messenger, 'RequestMany', { message: { topic: 'orders.q' } })
    );
    t.is(anonymous.error?.code, status.UNAUTHENTICATED);
    // One stream open (a RequestMany that waits for a silent subscriber of another
    // client): a second is refused.
    const silent = serverStream(node.clients({ token: ADMIN_TOKEN }).messenger, 'Subscribe', {
      topics: ['orders.held'],
    });
    silent.on('error', () => undefined);
    await subscribed(silent);
    const held = serverStream<{ reply: WireMessage }>(orders.messenger, 'RequestMany', {
      message: { topic: 'orders.held' },
      timeoutMs: 60_000,
    });
    held.on('error', () => undefined);
    await waitFor(
      () =>
        node.server.node.gathers.active === 1 ||
        node.server.node.gathers.ended.get('no_responders') === 1,
      10_000,
      'the first call'
    );
    const second = await gather(
      serverStream(orders.messenger, 'RequestMany', { message: { topic: 'orders.other' } })
    );
    t.is(second.error?.code, status.RESOURCE_EXHAUSTED);
    t.regex(second.error?.details ?? '', /streams_per_client/);
    held.cancel();
    silent.cancel();
  } finally {
    await node.close();
  }
});

test('cancel frees the gather: the entry is gone and a late reply gets NOT_FOUND', async t => {
  const node = await startTestNode();
  try {
    const m = node.clients.messenger;
    const { stream: sub, state } = await openSubscription(m, { topics: ['svc.cancel'] });
    const call = serverStream<{ reply: WireMessage }>(m, 'RequestMany', {
      message: { topic: 'svc.cancel' },
      timeoutMs: 60_000,
    });
    const ended = gather(call);
    await waitFor(() => state.items.length === 1, 10_000, 'the request delivered');
    const gathers = node.server.node.gathers;
    t.is(gathers.active, 1);
    t.is(node.server.node.replies.gatherCount, 1);
    call.cancel();
    t.is((await ended).error?.code, status.CANCELLED);
    await waitFor(() => gathers.active === 0, 10_000, 'the gather to end');
    t.is(gathers.ended.get('cancelled'), 1);
    t.is(node.server.node.replies.gatherCount, 0);
    const late = await unary(m, 'Respond', {
      replyTo: state.items[0].replyTo,
      message: { payload: Buffer.from('late') },
    }).catch((err: ServiceError) => err);
    t.is((late as ServiceError).code, status.NOT_FOUND);
    t.regex((late as ServiceError).details, /already ended/);
    sub.cancel();
  } finally {
    await node.close();
  }
});

test('the node stopping mid-gather ends the call with UNAVAILABLE, the replies so far received', async t => {
  const node = await startTestNode({ drainTimeoutMs: 300 });
  const m = node.clients.messenger;
  const { state } = await openSubscription(m, { topics: ['svc.stop'] });
  const { state: silentState } = await openSubscription(m, { topics: ['svc.stop'] });
  const ended = gather(
    serverStream(m, 'RequestMany', { message: { topic: 'svc.stop' }, timeoutMs: 60_000 })
  );
  await waitFor(() => state.items.length === 1 && silentState.items.length === 1, 10_000);
  await unary(m, 'Respond', {
    replyTo: state.items[0].replyTo,
    message: { payload: Buffer.from('before') },
  });
  await waitFor(() => node.server.node.gathers.replies === 1, 10_000, 'the first reply');
  const closing = node.close();
  const r = await ended;
  await closing;
  t.deepEqual(r.replies, ['before']);
  t.is(r.error?.code, status.UNAVAILABLE);
  t.regex(r.error?.details ?? '', /stopped during the RequestMany/);
  t.is(node.server.node.gathers.ended.get('node_stopped'), 1);
});

test('a real gRPC client that stops reading: large replies end the call with RESOURCE_EXHAUSTED at the byte bound, nothing held after', async t => {
  const node = await startTestNode();
  try {
    const mesh = node.server.node;
    const responders = Array.from({ length: 48 }, () =>
      mesh.subscribe({ patterns: ['svc.slow'], bufferSize: 4 })
    );
    const call = serverStream<{ reply: WireMessage }>(node.clients.messenger, 'RequestMany', {
      message: { topic: 'svc.slow' },
      timeoutMs: 60_000,
    });
    call.pause(); // the client reads nothing: HTTP/2 flow control pushes back on the node
    const ended = gather(call);
    await waitFor(() => mesh.gathers.active === 1, 10_000, 'the gather to start');
    const reply = { id: '', topic: '', payload: Buffer.alloc(1 << 20, 1), headers: {} };
    for (const r of responders) {
      let replyTo: string | undefined;
      await waitFor(
        () => (replyTo ??= r.take()?.deliveries[0]?.replyTo) !== undefined,
        10_000,
        'the request delivered'
      );
      if (mesh.gathers.active === 0) break; // ended at the bound: later replies are NOT_FOUND
      await mesh.respond(replyTo ?? '', reply);
    }
    await waitFor(() => mesh.gathers.ended.get('slow_client') === 1, 10_000, 'the bound');
    t.is(mesh.replies.gatherCount, 0, 'the entry is closed');
    call.resume();
    const r = await ended;
    t.is(r.error?.code, status.RESOURCE_EXHAUSTED);
    t.regex(
      r.error?.details ?? '',
      /^request_many: \d+ replies \(\d+ bytes; at most 1024 replies or 16777216 bytes\) wait for this client, which reads too slowly/
    );
    // Some went out before the stream said "behind"; the rest waited, within 16 MiB.
    t.true(r.replies.length > 0 && r.replies.length < 48, `${r.replies.length} replies`);
  } finally {
    await node.close();
  }
});
