/**
 * Keeps `make bench-local` from rotting: runs its smoke mode (every scenario once, ~1 s
 * each, nothing written) and checks that every figure of every system came out. No
 * speed is asserted here: speed belongs in the benchmark itself.
 */
import test from 'ava';
import { assertPositive, runSmoke } from '../../helpers/bench-smoke';

const EXPECTED = [
  'grpc_floor.unary_p50_us',
  'grpc_floor.unary_p99_us',
  'grpc_floor.unary_rps_64',
  'grpc_floor.stream_mps_128',
  'nats.request_p50_us',
  'nats.request_p99_us',
  'nats.request_rps_64',
  'nats.pubsub_mps_128',
  'nats.pubsub_mps_16k',
  'meshwire.request_p50_us',
  'meshwire.request_p99_us',
  'meshwire.request_rps_64',
  'meshwire.pubsub_mps_128',
  'meshwire.pubsub_mps_16k',
];

const TARGET_RATIOS = [
  'request_p50_vs_floor_unary_p50',
  'pubsub_mps_128_vs_nats',
  'pubsub_mps_16k_vs_nats',
  'request_rps_64_vs_nats',
];

test('bench-local --smoke measures every scenario of meshwire, NATS and the gRPC floor', async t => {
  const result = await runSmoke(t, 'local', 100_000);
  assertPositive(t, result.figures, EXPECTED, 'figure');
  assertPositive(t, result.ratios, TARGET_RATIOS, 'ratio');
  // p99 is never below p50: a sign the histogram summary is read the right way round.
  t.true(result.figures['meshwire.request_p99_us']! >= result.figures['meshwire.request_p50_us']!);
  t.true(result.figures['nats.request_p99_us']! >= result.figures['nats.request_p50_us']!);
});
