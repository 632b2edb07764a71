import { writeFileSync } from 'node:fs';
import type { ServiceError } from '@grpc/grpc-js';
import type { Interceptor } from '@grpc/grpc-js';
import { credentials, InterceptingCall, makeGenericClientConstructor, status } from '@grpc/grpc-js';
import test from 'ava';
import { service as healthService } from 'grpc-health-check';
import type { DeliveryBatch } from '../../../src/api';
import { createClients } from '../../../src/api';
import {
  bidi,
  clientStream,
  collect,
  openSubscription,
  serverStream,
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

const msg = (topic: string): { message: { topic: string; payload: Buffer } } => ({
  message: { topic, payload: Buffer.from('p') },
});

const headerInterceptor =
  (value: string): Interceptor =>
  (options, nextCall) =>
    new InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set('authorization', value);
        next(metadata, listener);
      },
    });

async function refused(p: Promise<unknown>): Promise<ServiceError> {
  try {
    await p;
  } catch (err) {
    return err as ServiceError;
  }
  throw new Error('call succeeded but should have been refused');
}

test('no token, a wrong token and a malformed header are UNAUTHENTICATED; health stays open', async t => {
  const dir = tempDir();
  const node = await startSecureNode({ authTokensFile: writeTokens(dir, TOKENS_YAML) });
  try {
    const none = node.clients();
    const e1 = await refused(unary(none.messenger, 'Send', msg('orders.a')));
    t.is(e1.code, status.UNAUTHENTICATED);
    t.regex(e1.details, /no token/);
    const wrong = node.clients({ token: 'not-a-token-0123456789' });
    const e2 = await refused(unary(wrong.messenger, 'Send', msg('orders.a')));
    t.is(e2.code, status.UNAUTHENTICATED);
    t.notRegex(e2.details, /not-a-token/, 'the presented token is never echoed');
    const basic = createClients(node.address, {
      options: { interceptors: [headerInterceptor('Basic dXNlcjpwYXNz')] },
    });
    const e4 = await refused(unary(basic.messenger, 'Send', msg('orders.a')));
    basic.close();
    t.is(e4.code, status.UNAUTHENTICATED);
    t.regex(e4.details, /malformed/);
    const e3 = await refused(unary(wrong.peers, 'ListPeers', {}));
    t.is(e3.code, status.UNAUTHENTICATED);
    const sub = collect(
      serverStream<DeliveryBatch>(none.messenger, 'Subscribe', { topics: ['a'] })
    );
    await waitFor(() => sub.error !== undefined, 5000, 'subscribe refusal');
    t.is(sub.error?.code, status.UNAUTHENTICATED);
    t.is(node.server.node.router.subscriptionCount, 0);

    const Health = makeGenericClientConstructor(healthService, 'Health');
    const health = new Health(node.address, credentials.createInsecure());
    const h = await unary<{ status: string }>(health, 'check', { service: '' });
    t.is(h.status, 'SERVING');
    health.close();
    t.true((node.server.guard.rejected.get('unauthenticated') ?? 0) >= 4);
  } finally {
    await node.close();
  }
});

test('publish permissions: allow with wildcards, deny wins, the error names topic and rule', async t => {
  const node = await startSecureNode({ authTokensFile: writeTokens(tempDir(), TOKENS_YAML) });
  try {
    const orders = node.clients({ token: ORDERS_TOKEN });
    t.truthy((await unary<{ id: string }>(orders.messenger, 'Send', msg('orders.eu.created'))).id);
    t.truthy((await unary<{ id: string }>(orders.messenger, 'Send', msg('shared.x'))).id);
    const deny = await refused(unary(orders.messenger, 'Send', msg('orders.internal.audit')));
    t.is(deny.code, status.PERMISSION_DENIED);
    t.regex(deny.details, /"orders\.internal\.audit".*deny "orders\.internal\.>"/);
    const outside = await refused(unary(orders.messenger, 'Send', msg('shared.x.y')));
    t.is(outside.code, status.PERMISSION_DENIED);
    t.regex(outside.details, /"shared\.x\.y".*allow \["orders\.>", "shared\.\*"\]/);
    // Request is a publish too.
    const req = await refused(
      unary(orders.messenger, 'Request', { ...msg('billing.q'), timeoutMs: 500 })
    );
    t.is(req.code, status.PERMISSION_DENIED);
    // Invalid topics still get INVALID_ARGUMENT, not a permission answer.
    const bad = await refused(unary(orders.messenger, 'Send', msg('orders..x')));
    t.is(bad.code, status.INVALID_ARGUMENT);

    // SendStream: a refused item gets its status in the ack; the stream goes on.
    const s = bidi<unknown, { sequence: number; errorCode: number; errorMessage: string }>(
      orders.messenger,
      'SendStream'
    );
    const acks: Array<{ sequence: number; errorCode: number; errorMessage: string }> = [];
    s.on('data', a => acks.push(a));
    s.write({ sequence: 1, messages: [{ topic: 'orders.a', payload: Buffer.from('1') }] });
    s.write({ sequence: 2, messages: [{ topic: 'orders.internal.x', payload: Buffer.from('2') }] });
    s.write({ sequence: 3, messages: [{ topic: 'orders.b', payload: Buffer.from('3') }] });
    s.end();
    await waitFor(() => acks.length === 3, 5000, 'three acks');
    t.deepEqual(
      acks.map(a => a.errorCode),
      [0, status.PERMISSION_DENIED, 0]
    );

    // RequestStream: same, per entry.
    const rs = bidi<unknown, { requestId: string; errorCode: number }>(
      orders.messenger,
      'RequestStream'
    );
    const replies: Array<{ requestId: string; errorCode: number }> = [];
    rs.on('data', r => replies.push(r));
    rs.write({
      requestId: 'x',
      message: { topic: 'orders.internal.q', payload: Buffer.from('q') },
    });
    await waitFor(() => replies.length === 1, 5000, 'request stream refusal');
    t.is(replies[0].errorCode, status.PERMISSION_DENIED);
    rs.end();
  } finally {
    await node.close();
  }
});

test('subscribe permissions: a pattern must stay inside allow and outside deny; respond needs subscribe rights', async t => {
  const tokensYaml = `${TOKENS_YAML}  - name: mute
    token: mute-token-0123456789abcdef
    subscribe: { allow: [] }
`;
  const node = await startSecureNode({ authTokensFile: writeTokens(tempDir(), tokensYaml) });
  try {
    const orders = node.clients({ token: ORDERS_TOKEN });
    const ok = await openSubscription(orders.messenger, { topics: ['orders.eu.status'] });
    const admin = node.clients({ token: ADMIN_TOKEN });
    await unary(admin.messenger, 'Send', msg('orders.eu.status'));
    await waitFor(() => ok.state.items.length === 1, 5000, 'delivery');

    const cases: Array<[string[], RegExp]> = [
      // Both also match orders.secret.status, which is denied.
      [['orders.*.status'], /"orders\.\*\.status".*deny "orders\.secret\.status"/],
      [['orders.>'], /"orders\.>".*deny "orders\.secret\.status"/],
      [['*.eu.status'], /"\*\.eu\.status".*not every topic/],
      [['orders.eu.status', 'billing.>'], /"billing\.>"/],
      [['orders.*.*'], /"orders\.\*\.\*"/],
    ];
    for (const [topics, re] of cases) {
      const st = collect(serverStream<DeliveryBatch>(orders.messenger, 'Subscribe', { topics }));
      await waitFor(() => st.error !== undefined, 5000, `refusal of ${topics.join(',')}`);
      t.is(st.error?.code, status.PERMISSION_DENIED, topics.join(','));
      t.regex(st.error?.details ?? '', re);
    }
    // Union of allow patterns: replies.> is allowed as a whole.
    const rep = await openSubscription(orders.messenger, { topics: ['replies.*'] });
    t.regex(rep.id, /^s\d+$/);
    t.is(node.server.node.router.subscriptionCount, 2);

    const mute = node.clients({ token: 'mute-token-0123456789abcdef' });
    const e = await refused(
      unary(mute.messenger, 'Respond', { replyTo: 'x', message: { payload: Buffer.from('r') } })
    );
    t.is(e.code, status.PERMISSION_DENIED);
    const cs = clientStream<unknown, unknown>(mute.messenger, 'RespondStream');
    cs.call.end();
    const e2 = await refused(cs.result);
    t.is(e2.code, status.PERMISSION_DENIED);
  } finally {
    await node.close();
  }
});

test('Peers needs an admin token; a token removed from the file stops working after the reload', async t => {
  const dir = tempDir();
  const path = writeTokens(dir, TOKENS_YAML);
  const node = await startSecureNode({ authTokensFile: path });
  const handle = node.server.tokens;
  if (!handle) throw new Error('tokens handle missing');
  try {
    const limited = node.clients({ token: LIMITED_TOKEN });
    const e = await refused(unary(limited.peers, 'ListPeers', {}));
    t.is(e.code, status.PERMISSION_DENIED);
    t.regex(e.details, /admin/);
    const admin = node.clients({ token: ADMIN_TOKEN });
    const list = await unary<{ peers: unknown[] }>(admin.peers, 'ListPeers', {});
    t.true(list.peers.length >= 1);

    t.truthy((await unary<{ id: string }>(limited.messenger, 'Send', msg('any.topic'))).id);
    // Remove "limited" (and add an expired token, which is refused too).
    writeFileSync(
      path,
      TOKENS_YAML.replace(/ {2}- name: limited[\s\S]*$/, '') +
        `  - name: old\n    token: old-token-0123456789abcdef\n    expires: 2001-01-01T00:00:00Z\n`
    );
    await waitFor(() => handle.reloads >= 1, 5000, 'tokens reload');
    const gone = await refused(unary(limited.messenger, 'Send', msg('any.topic')));
    t.is(gone.code, status.UNAUTHENTICATED);
    const old = node.clients({ token: 'old-token-0123456789abcdef' });
    const exp = await refused(unary(old.messenger, 'Send', msg('any.topic')));
    t.is(exp.code, status.UNAUTHENTICATED);
    t.regex(exp.details, /expired/);

    // An invalid file is refused and the previous tokens stay in force.
    writeFileSync(path, 'tokens:\n  - name: broken\n    token: short\n');
    await waitFor(() => handle.failures >= 1, 5000, 'refused reload');
    t.truthy((await unary<{ id: string }>(admin.messenger, 'Send', msg('any.topic'))).id);
  } finally {
    await node.close();
  }
});

test('open streams of a removed token are ended with UNAUTHENTICATED; others stay open', async t => {
  const path = writeTokens(tempDir(), TOKENS_YAML);
  const node = await startSecureNode({ authTokensFile: path });
  try {
    const limited = node.clients({ token: LIMITED_TOKEN });
    const admin = node.clients({ token: ADMIN_TOKEN });
    const { state: doomed } = await openSubscription(limited.messenger, { topics: ['news.>'] });
    const { state: kept } = await openSubscription(admin.messenger, { topics: ['news.>'] });
    const rs = bidi<unknown, unknown>(limited.messenger, 'SendStream');
    let rsError: ServiceError | undefined;
    rs.on('error', (e: ServiceError) => (rsError = e));
    rs.on('data', () => undefined);
    rs.write({ sequence: 1, messages: [{ topic: 'news.a', payload: Buffer.from('1') }] });
    await unary(admin.messenger, 'Send', msg('news.a'));
    await waitFor(() => kept.items.length >= 1 && doomed.items.length >= 1, 5000, 'first delivery');
    t.is(node.server.guard.trackedStreams, 3);

    writeFileSync(path, TOKENS_YAML.replace(/ {2}- name: limited[\s\S]*$/, ''));
    await waitFor(() => doomed.error !== undefined && rsError !== undefined, 5000, 'streams ended');
    t.is(doomed.error?.code, status.UNAUTHENTICATED);
    t.regex(doomed.error?.details ?? '', /token "limited" was removed/);
    t.is(rsError?.code, status.UNAUTHENTICATED);
    await waitFor(
      () => node.server.node.router.subscriptionCount === 1,
      5000,
      'subscription closed'
    );
    t.deepEqual(node.server.guard.limits.usage('token:limited'), {
      streams: 0,
      subscriptions: 0,
      inFlight: 0,
    });
    await unary(admin.messenger, 'Send', msg('news.b'));
    const before = kept.items.length;
    await unary(admin.messenger, 'Send', msg('news.c'));
    await waitFor(() => kept.items.length > before, 5000, 'kept stream still delivers');
    t.is(node.server.guard.trackedStreams, 1);
    t.is(kept.error, undefined);
  } finally {
    await node.close();
  }
});
