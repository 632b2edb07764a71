/**
 * RpcMetrics (src/api/rpc-metrics.ts): known methods start at zero, calls are counted by
 * method and status name, and the number of series stays bounded.
 */
import { status } from '@grpc/grpc-js';
import test from 'ava';
import { MAX_RPC_SERIES, RpcMetrics, grpcCodeName } from '../../../src/api/rpc-metrics';

test('status names, known methods at zero, calls by method and code', t => {
  t.is(grpcCodeName(status.OK), 'OK');
  t.is(grpcCodeName(status.INVALID_ARGUMENT), 'INVALID_ARGUMENT');
  t.is(grpcCodeName(99), '99');
  const m = new RpcMetrics(['/messaging.v1.Messenger/Send', '/messaging.v1.Peers/ListPeers']);
  t.deepEqual(m.snapshot(), {
    'messaging.v1.Messenger/Send OK': 0,
    'messaging.v1.Peers/ListPeers OK': 0,
  });
  m.record('/messaging.v1.Messenger/Send', status.OK, 0.001);
  m.record('/messaging.v1.Messenger/Send', status.INVALID_ARGUMENT, 0.001);
  m.record('/messaging.v1.Messenger/Send', status.INVALID_ARGUMENT, 0.001);
  t.like(m.snapshot(), {
    'messaging.v1.Messenger/Send OK': 1,
    'messaging.v1.Messenger/Send INVALID_ARGUMENT': 2,
  });
});

test('past MAX_RPC_SERIES, new (method, code) pairs share method "other"; known ones still count', t => {
  const m = new RpcMetrics();
  for (let i = 0; i < MAX_RPC_SERIES + 10; i++) m.record(`/svc/M${i}`, status.OK, 0);
  m.record('/svc/M0', status.OK, 0);
  const snap = m.snapshot();
  t.is(Object.keys(snap).length, MAX_RPC_SERIES + 1);
  t.is(snap['other/other OK'], 10);
  t.is(snap['svc/M0 OK'], 2);
});
