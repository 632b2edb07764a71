import { connect } from 'node:http2';
import { join } from 'node:path';
import type {
  Client,
  ClientDuplexStream,
  ServiceClientConstructor,
  ServiceError,
} from '@grpc/grpc-js';
import { credentials, loadPackageDefinition, status } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import test from 'ava';
import type { RequestResponse } from '../../../src/api';
import { protoDir } from '../../../src/api';
import { openSubscription, startTestNode, unary, waitFor } from '../../helpers/node';

function grpcClient(
  protoFile: string,
  includeDir: string,
  path: string[],
  address: string
): Client {
  const def = loadSync(protoFile, {
    includeDirs: [includeDir],
    keepCase: true,
    defaults: true,
    enums: String,
  });
  let obj: unknown = loadPackageDefinition(def);
  for (const p of path) obj = (obj as Record<string, unknown>)[p];
  const Ctor = obj as ServiceClientConstructor;
  return new Ctor(address, credentials.createInsecure());
}

test('health answers SERVING, then NOT_SERVING while draining', async t => {
  const node = await startTestNode({ drainTimeoutMs: 5000 });
  const healthDir = join(require.resolve('grpc-health-check/package.json'), '..', 'proto');
  const health = grpcClient(
    'health/v1/health.proto',
    healthDir,
    ['grpc', 'health', 'v1', 'Health'],
    node.address
  );
  t.is((await unary<{ status: string }>(health, 'Check', { service: '' })).status, 'SERVING');
  t.is(
    (await unary<{ status: string }>(health, 'Check', { service: 'messaging.v1.Messenger' }))
      .status,
    'SERVING'
  );
  // Hold the drain open with an unanswered request, then look at health.
  const m = node.clients.messenger;
  const { state } = await openSubscription(m, { topics: ['h.q'] });
  const inflight = unary(m, 'Request', { message: { topic: 'h.q', payload: Buffer.from('q') } });
  await waitFor(() => state.items.length === 1);
  const shutdown = node.server.shutdown();
  t.is((await unary<{ status: string }>(health, 'Check', { service: '' })).status, 'NOT_SERVING');
  await unary(m, 'Respond', {
    replyTo: state.items[0].replyTo,
    message: { payload: Buffer.from('a') },
  });
  await inflight;
  await shutdown;
  health.close();
  node.clients.close();
});

test('server reflection lists the services and serves the proto', async t => {
  const node = await startTestNode();
  const reflDir = protoDir();
  const refl = grpcClient(
    'grpc/reflection/v1/reflection.proto',
    reflDir,
    ['grpc', 'reflection', 'v1', 'ServerReflection'],
    node.address
  );
  const call = (
    refl as unknown as {
      ServerReflectionInfo(): ClientDuplexStream<unknown, Record<string, unknown>>;
    }
  ).ServerReflectionInfo();
  const answers: Array<Record<string, unknown>> = [];
  call.on('data', (a: Record<string, unknown>) => answers.push(a));
  call.write({ list_services: '' });
  call.write({ file_containing_symbol: 'messaging.v1.Messenger' });
  call.end();
  await new Promise(resolve => call.on('end', resolve));
  const list = answers[0].list_services_response as { service: Array<{ name: string }> };
  const names = list.service.map(s => s.name);
  t.true(names.includes('messaging.v1.Messenger'));
  t.true(names.includes('messaging.v1.Peers'));
  const files = answers[1].file_descriptor_response as { file_descriptor_proto: Buffer[] };
  t.true(files.file_descriptor_proto.length > 0);
  t.true(Buffer.concat(files.file_descriptor_proto).includes('SendStreamRequest'));
  refl.close();
  await node.close();
});

test('graceful shutdown: new work refused, in-flight request finishes, streams end cleanly', async t => {
  const node = await startTestNode({ drainTimeoutMs: 5000 });
  const m = node.clients.messenger;
  const { state } = await openSubscription(m, { topics: ['svc.slow'] });
  const inflight = unary<RequestResponse>(m, 'Request', {
    message: { topic: 'svc.slow', payload: Buffer.from('q') },
    timeoutMs: 5000,
  });
  await waitFor(() => state.items.length === 1);
  const shutdown = node.server.shutdown();
  t.is(node.server.node.state, 'draining');
  const refused = await t.throwsAsync<ServiceError>(
    unary(m, 'Send', { message: { topic: 'x', payload: Buffer.from('x') } })
  );
  t.is(refused?.code, status.UNAVAILABLE);
  t.regex(refused?.details ?? '', /shutting down/);
  await unary(m, 'Respond', {
    replyTo: state.items[0].replyTo,
    message: { payload: Buffer.from('a') },
  });
  const reply = await inflight;
  t.is(reply.reply.payload.toString(), 'a');
  const result = await shutdown;
  t.true(result.drained);
  await waitFor(() => state.ended || state.error !== undefined);
  t.true(state.ended, 'subscriber stream ended cleanly, not with an error');
  node.clients.close();
});

test('drain timeout: a request that never gets a reply is failed at shutdown', async t => {
  const node = await startTestNode({ drainTimeoutMs: 200 });
  const m = node.clients.messenger;
  await openSubscription(m, { topics: ['svc.never'] });
  const inflight = unary(m, 'Request', {
    message: { topic: 'svc.never', payload: Buffer.from('q') },
    timeoutMs: 10_000,
  });
  await waitFor(() => node.server.node.inFlightCount === 1);
  const result = await node.server.shutdown();
  t.false(result.drained);
  const err = await t.throwsAsync<ServiceError>(inflight);
  t.is(err?.code, status.FAILED_PRECONDITION);
  node.clients.close();
});

test('Peers: put, list and delete; errors for bad input', async t => {
  const node = await startTestNode();
  const p = node.clients.peers;
  const put = await unary<{ peer: { id: string; addresses: string[]; source: string } }>(
    p,
    'PutPeer',
    {
      id: 'node-b',
      addresses: ['127.0.0.1:7411', '[::1]:7411'],
    }
  );
  t.deepEqual(put.peer.addresses, ['127.0.0.1:7411', '[::1]:7411']);
  t.is(put.peer.source, 'api');
  const list = await unary<{ peers: Array<{ id: string; state: string }> }>(p, 'ListPeers', {});
  t.deepEqual(
    list.peers.map(x => x.id),
    ['test-node', 'node-b']
  );
  t.is(list.peers[0].state, 'self');
  await unary(p, 'DeletePeer', { id: 'node-b' });
  const missing = await t.throwsAsync<ServiceError>(unary(p, 'DeletePeer', { id: 'node-b' }));
  t.is(missing?.code, status.NOT_FOUND);
  const bad = await t.throwsAsync<ServiceError>(
    unary(p, 'PutPeer', { id: 'x', addresses: ['nope'] })
  );
  t.is(bad?.code, status.INVALID_ARGUMENT);
  const empty = await t.throwsAsync<ServiceError>(unary(p, 'PutPeer', { id: 'x', addresses: [] }));
  t.is(empty?.code, status.INVALID_ARGUMENT);
  await node.close();
});

test('client HTTP/2 sessions get a 4 MiB stream window (high-rate publishers do not stall)', async t => {
  const node = await startTestNode();
  const session = connect(`http://${node.address}`);
  try {
    // The node sends a second SETTINGS frame with the wider window right after the first.
    const size = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no SETTINGS with a wider window')), 5000);
      const check = (s: { initialWindowSize?: number }): void => {
        if ((s.initialWindowSize ?? 0) > 65535) {
          clearTimeout(timer);
          resolve(s.initialWindowSize ?? 0);
        }
      };
      session.on('remoteSettings', check);
      session.on('error', reject);
    });
    t.is(size, 4 * 1024 * 1024);
  } finally {
    session.close();
    await node.close();
  }
});
