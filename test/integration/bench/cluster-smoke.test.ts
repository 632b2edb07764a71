/**
 * Keeps `make bench-cluster` from rotting: runs its smoke mode (one meshwire node, NATS and
 * two meshwire nodes, every scenario once and short, no network namespace, nothing written)
 * and checks that every figure came out. No speed is asserted: speed belongs in the
 * benchmark itself.
 */
import test from 'ava';
import { assertPositive, runSmoke } from '../../helpers/bench-smoke';

const EXPECTED = [
  'meshwire.request_p50_us',
  'meshwire.request_p99_us',
  'meshwire.request_rps_64',
  'meshwire.pubsub_mps_128',
  'nats.request_p50_us',
  'nats.request_p99_us',
  'nats.request_rps_64',
  'nats.pubsub_mps_128',
  'cluster.request_p50_us',
  'cluster.request_p99_us',
  'cluster.request_rps_64',
  'cluster.pubsub_mps_128',
];

const RATIOS = [
  'cluster_pubsub_mps_128_vs_single',
  'cluster_request_p50_vs_single',
  'cluster_request_rps_64_vs_single',
  'cluster_pubsub_mps_128_vs_nats',
];

test('bench-cluster --smoke measures two nodes, one node and NATS', async t => {
  const result = await runSmoke(t, 'cluster', 110_000);
  assertPositive(t, result.figures, EXPECTED, 'figure');
  assertPositive(t, result.ratios, RATIOS, 'ratio');
  // The difference target is present (its sign depends on the machine, not on the code).
  t.true(Number.isFinite(result.ratios['cluster_request_p50_minus_single_us']));
  // The cross-node pub/sub ran with flow control: the node dropped nothing.
  t.is(result.figures['cluster.pubsub_mps_128_dropped'], 0);
  t.true(result.figures['cluster.request_p99_us']! >= result.figures['cluster.request_p50_us']!);
  // No lossy figures in smoke mode (no namespace).
  t.false(Object.keys(result.figures).some(k => k.startsWith('loss1.')));
});
